"""Checkers for notebook 02 (registration): a callback in ``data``, and register/modify/unregister.

Both hand the learner's function a selector that watches how it is used: a
`RecordingSelector` (so each call is on a timeline) which also wraps a
callable ``data`` so that the checker can tell whether the callback was
called through the key, as the seed's loop does.
"""

from __future__ import annotations

import selectors
import socket
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from ..core.events import mask_name
from ..core.timeline import Timeline
from ..driver.recording import RecordingSelector
from ..driver.runner import ThreadRunner, run_later
from ..driver.sockets import LOOPBACK
from ..view.widgets import describe_error
from . import DidNotReturn, Feedback, run_with_timeout

__all__ = ["check_accept_one", "check_set_interest"]

JOIN_WAIT = 5.0  # seconds to wait for the helper thread that connects a client

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE

AcceptOne = Callable[[selectors.BaseSelector, socket.socket], Any]
SetInterest = Callable[[selectors.BaseSelector, socket.socket, int], Any]


def _name(events: int) -> str:
    return mask_name(events) if events else "0"


def _error(exc: BaseException, name: str = "a socket") -> str:
    if isinstance(exc, NotImplementedError):
        return "it raised NotImplementedError: replace the `raise` with your code"
    return f"it raised {describe_error(exc, name)}"


class _WatchedSelector(RecordingSelector):
    """A recording selector that also counts calls made through a callable ``data``."""

    def __init__(self) -> None:
        super().__init__(selectors.DefaultSelector(), Timeline())
        self.data_seen: list[Any] = []
        self.callback_calls = 0

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        self.data_seen.append(data)
        return super().register(fileobj, events, self._counted(data))

    def _counted(self, data: Any) -> Any:
        if not callable(data):
            return data

        def callback(*args: Any, **kwargs: Any) -> Any:
            self.callback_calls += 1
            return data(*args, **kwargs)

        return callback


# -- exercise 1: accept_one(sel, listener) ------------------------------------


def check_accept_one(accept_one: AcceptOne) -> Feedback:
    """Run ``accept_one(sel, listener)`` while a client connects 0.2 s later.

    It should register ``listener`` for EVENT_READ with a callback as data,
    wait in ``sel.select()``, call ``key.data(key.fileobj, mask)``, and return
    the accepted connection, non-blocking, after unregistering the listener.
    """
    feedback = Feedback("accept_one")
    with ExitStack() as stack:
        listener = stack.enter_context(socket.create_server((LOOPBACK, 0)))
        listener.setblocking(False)
        sel = stack.enter_context(_WatchedSelector())
        sel.label(listener, "listener")
        clients: list[socket.socket] = []
        connecting = _connect_later(stack, listener, clients)
        try:
            conn = run_with_timeout(accept_one, sel, listener, timeout=5)
        except DidNotReturn:
            feedback.expect(
                False, "it never returned: give select() a timeout, and return after one event"
            )
            return feedback
        except Exception as exc:
            feedback.expect(False, _error(exc))
            return feedback
        if isinstance(conn, socket.socket):
            stack.enter_context(conn)
        # The accept can finish before create_connection() has returned in the other thread.
        connecting.join(JOIN_WAIT)
        _check_accepted(feedback, sel, listener, conn, clients)
    return feedback


def _connect_later(
    stack: ExitStack, listener: socket.socket, clients: list[socket.socket]
) -> ThreadRunner:
    """Connect a client to ``listener`` 0.2 s from now; ``stack`` joins it and closes the client.

    A connect that fails is kept in the runner, not printed: the checker then
    reports that nothing arrived to accept.
    """
    address = listener.getsockname()[:2]
    runner = run_later(
        0.2,
        lambda: clients.append(socket.create_connection(address, timeout=5)),
        name="exercise-client",
    )
    stack.callback(lambda: [client.close() for client in clients])
    stack.callback(lambda: runner.join(JOIN_WAIT))
    return runner


def _check_accepted(
    feedback: Feedback,
    sel: _WatchedSelector,
    listener: socket.socket,
    conn: Any,
    clients: list[socket.socket],
) -> None:
    registrations = sel.timeline.events("listener", "register")
    if not feedback.expect(registrations, "it never registered the listener with sel.register()"):
        return
    _check_listener_use(feedback, sel, registrations[0].mask)
    if feedback.expect(
        isinstance(conn, socket.socket),
        f"it returned {type(conn).__name__}, expected the accepted socket",
    ):
        _check_connection(feedback, sel, listener, conn, clients)


def _check_listener_use(feedback: Feedback, sel: _WatchedSelector, events: int) -> None:
    """The listener was registered for READ with a callback, waited for, called through the key."""
    feedback.expect(
        events == READ,
        f"it registered the listener for {_name(events)}: a new connection makes it readable, "
        "register EVENT_READ",
    )
    feedback.expect(
        callable(sel.data_seen[0]),
        f"it registered the listener with data={sel.data_seen[0]!r}: store the accept callback as "
        "data",
    )
    feedback.expect(
        sel.timeline.events(action="select"),
        "it never called sel.select(): wait for the listener to be ready",
    )
    feedback.expect(
        sel.callback_calls > 0 or not callable(sel.data_seen[0]),
        "it never called the callback through the key: call key.data(key.fileobj, mask)",
    )


def _check_connection(
    feedback: Feedback,
    sel: _WatchedSelector,
    listener: socket.socket,
    conn: socket.socket,
    clients: list[socket.socket],
) -> None:
    """The returned socket is the client's connection, non-blocking, and the listener is gone."""
    client = clients[0].getsockname() if clients else None
    feedback.expect(
        client is not None and _peer(conn) == client,
        "the socket it returned is not connected to the client: return the connection that "
        "listener.accept() gave",
    )
    feedback.expect(
        not conn.getblocking(),
        "the accepted connection is blocking: call conn.setblocking(False), as the seed's "
        "accept() does",
    )
    feedback.expect(
        listener not in sel.get_map(),
        "the listener is still registered: sel.unregister(listener) before returning",
    )


def _peer(sock: socket.socket) -> Any:
    try:
        return sock.getpeername()
    except OSError:  # not connected: a listener, or closed
        return None


# -- exercise 2: set_interest(sel, sock, events) --------------------------------

#: (events wanted, the one call that gets there from the step before; "" for none)
_STEPS: tuple[tuple[int, str], ...] = (
    (READ, "register"),
    (READ | WRITE, "modify"),
    (READ | WRITE, ""),
    (WRITE, "modify"),
    (0, "unregister"),
    (0, ""),
    (READ, "register"),
)


def check_set_interest(set_interest: SetInterest) -> Feedback:
    """Drive ``set_interest(sel, sock, events)`` through seven changes of mind.

    After each call, ``sel`` must watch ``sock`` for exactly ``events`` (not
    at all for 0), with one call where one call does: register when not
    registered, modify when registered, unregister for 0, nothing when
    nothing changes. Stops at the first step that goes wrong.
    """
    feedback = Feedback("set_interest")
    with ExitStack() as stack:
        sock, peer = (stack.enter_context(s) for s in socket.socketpair())
        sel = stack.enter_context(_WatchedSelector())
        before: int | None = None
        for wanted, verb in _STEPS:
            if not _step(feedback, set_interest, sel, sock, before, wanted, verb):
                break
            before = wanted or None
    return feedback


def _registered(sel: selectors.BaseSelector, sock: socket.socket) -> int | None:
    key = sel.get_map().get(sock)
    return None if key is None else key.events


def _step(
    feedback: Feedback,
    set_interest: SetInterest,
    sel: _WatchedSelector,
    sock: socket.socket,
    before: int | None,
    wanted: int,
    verb: str,
) -> bool:
    state = "not registered" if before is None else f"registered for {_name(before)}"
    call = f"with sock {state}, set_interest(sel, sock, {_name(wanted)})"
    sel.label(sock, "sock")  # RecordingSelector drops the label at each unregister
    seen = len(sel.timeline)
    try:
        run_with_timeout(set_interest, sel, sock, wanted, timeout=5)
    except DidNotReturn:
        return feedback.expect(False, f"{call} never returned")
    except Exception as exc:
        return feedback.expect(False, f"{call} {_error(exc, 'sock')}{_hint(exc, wanted)}")
    if not _check_state(feedback, call, _registered(sel, sock), wanted):
        return False
    return _check_calls(feedback, call, verb, _calls_since(sel, seen))


def _check_state(feedback: Feedback, call: str, now: int | None, wanted: int) -> bool:
    """``sock`` is registered for exactly ``wanted`` (not at all for 0)."""
    if wanted == 0:
        return feedback.expect(
            now is None,
            f"{call} left sock registered for {_name(now or 0)}, which still wakes select() on a "
            "hang-up or an error: with no events wanted, unregister it",
        )
    return feedback.expect(
        now == wanted,
        f"{call} left sock {'not registered' if now is None else 'registered for ' + _name(now)}",
    )


def _calls_since(sel: _WatchedSelector, seen: int) -> list[str]:
    """The register/modify/unregister calls after the first ``seen`` events."""
    return [
        e.action
        for e in sel.timeline.events()[seen:]
        if e.action in ("register", "modify", "unregister")
    ]


def _check_calls(feedback: Feedback, call: str, verb: str, calls: list[str]) -> bool:
    """One call where one call does (``verb``), none where nothing changes."""
    if verb == "modify" and "unregister" in calls:
        return feedback.expect(
            False, f"{call} unregistered and registered again: one sel.modify() does that"
        )
    if not verb and calls:
        return feedback.expect(
            False,
            f"{call} called sel.{calls[0]}() although nothing changes: compare with the key's "
            "events and make no call",
        )
    return feedback.expect(
        len(calls) <= 1, f"{call} made {len(calls)} calls ({', '.join(calls)}); one is enough"
    )


def _hint(exc: BaseException, wanted: int) -> str:
    message = describe_error(exc)
    if isinstance(exc, KeyError) and message.endswith("already registered"):
        return ": sock is registered already, so use sel.modify()"
    if isinstance(exc, KeyError) and message.endswith("not registered"):
        return ": check `sock in sel.get_map()` first"
    if isinstance(exc, ValueError) and wanted == 0:
        return ": with no events wanted, unregister instead"
    return ""
