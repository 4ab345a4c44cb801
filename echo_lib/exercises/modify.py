"""Checkers for notebook 04 (modify): change a registration only when it must change."""

from __future__ import annotations

import selectors
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..core.connection import EchoConnection
from ..driver.client import EchoClient
from ..driver.recording import RecordingSelector
from ..driver.server import EchoServer
from . import DidNotReturn, Feedback, run_with_timeout

__all__ = ["check_on_writable", "check_update_registration"]

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
HANDLER = "the handler"  # the key's data: it must survive every modify()

UpdateRegistration = Callable[[selectors.BaseSelector, socket.socket, EchoConnection], object]
OnWritable = Callable[[selectors.BaseSelector, socket.socket, "deque[bytes]"], object]

# (what happened to the connection, how to make it happen, the mask wanted after it;
# None: unregistered)
_STORY: tuple[tuple[str, Callable[[EchoConnection], object], int | None], ...] = (
    ("for a new connection", lambda conn: None, READ),
    ("after receive_data(b'hello')", lambda conn: conn.receive_data(b"hello"), READ | WRITE),
    ("called again with nothing changed", lambda conn: None, READ | WRITE),
    (
        "after receive_data(b'world') filled the buffer (max_buffer=8)",
        lambda conn: conn.receive_data(b"world"),
        WRITE,
    ),
    ("after sent(6) made room", lambda conn: conn.sent(6), READ | WRITE),
    ("after sent(4) emptied the buffer", lambda conn: conn.sent(4), READ),
    (
        "after receive_data(b'bye') and EOF (receive_data(b''))",
        lambda conn: (conn.receive_data(b"bye"), conn.receive_data(b"")),
        WRITE,
    ),
    ("after sent(3) finished the echo", lambda conn: conn.sent(3), None),
)


def check_update_registration(update_registration: UpdateRegistration) -> Feedback:
    """Walk a connection through its states, calling ``update_registration(sel, sock, conn)``.

    It is called after each state; then it drives a real echo.

    After each call the socket must be registered for exactly the events the
    connection wants (READ while ``conn.wants_read``, WRITE while
    ``conn.wants_write``), unregistered when it wants nothing, with its data
    unchanged, and ``modify()`` must have been called only if the mask changed.
    """
    feedback = Feedback("update_registration")
    a, b = socket.socketpair()
    with a, b, RecordingSelector(selectors.DefaultSelector()) as sel:
        sel.label(a, "sock")
        sel.register(a, READ, HANDLER)
        conn = EchoConnection(max_buffer=8)
        for when, change, wanted in _STORY:
            change(conn)
            if not _story_step(feedback, update_registration, sel, a, conn, when, wanted):
                return feedback
    _check_real_echo(feedback, update_registration)
    return feedback


def _story_step(
    feedback: Feedback,
    update_registration: UpdateRegistration,
    sel: RecordingSelector,
    sock: socket.socket,
    conn: EchoConnection,
    when: str,
    wanted: int | None,
) -> bool:
    before = sel.get_map().get(sock)
    modifies = len(sel.timeline.events(action="modify"))
    try:
        run_with_timeout(update_registration, sel, sock, conn, timeout=2)
    except DidNotReturn:
        return feedback.expect(False, f"{when}, it never returned")
    except Exception as exc:
        hint = (
            ": with nothing wanted, unregister() instead" if "Invalid events: 0" in str(exc) else ""
        )
        return feedback.expect(False, f"{when}, it raised {type(exc).__name__}: {exc}{hint}")
    key = sel.get_map().get(sock)
    calls = len(sel.timeline.events(action="modify")) - modifies
    if wanted is None:
        return _judge_unregistered(feedback, when, key)
    if not feedback.expect(
        key is not None, f"{when}, the socket was unregistered, but it still wants {_name(wanted)}"
    ):
        return False
    return _judge_key(feedback, when, key, before, calls, wanted)


def _judge_unregistered(feedback: Feedback, when: str, key: selectors.SelectorKey | None) -> bool:
    """With nothing wanted, the socket is no longer registered."""
    return key is None or feedback.expect(
        False,
        f"{when}, the socket is still registered for {_name(key.events)}: with nothing "
        "wanted, unregister() it",
    )


def _judge_key(
    feedback: Feedback,
    when: str,
    key: selectors.SelectorKey,
    before: selectors.SelectorKey | None,
    calls: int,
    wanted: int,
) -> bool:
    """The key has the wanted events, its data kept, through one modify() only if needed."""
    ok = feedback.expect(
        key.events == wanted,
        f"{when}, it is registered for {_name(key.events)}, expected {_name(wanted)}",
    )
    changed = before is None or before.events != wanted
    ok &= feedback.expect(
        calls == (1 if changed else 0) or not ok,
        f"{when}, modify() was called {_times(calls)}, expected {_times(int(changed))}: call it "
        "only when the mask changes",
    )
    ok &= feedback.expect(
        key.data == HANDLER,
        f"{when}, the key's data became {key.data!r}: pass key.data along, modify(sock, events, "
        "key.data)",
    )
    return ok


def _check_real_echo(feedback: Feedback, update_registration: UpdateRegistration) -> None:
    # A minimal echo server (EchoConnection decides, the learner registers)
    # against a real client whose 300 KB cannot pass a 16 KiB buffer at once.
    payload = bytes(range(256)) * 1200
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = EchoClient(listener.getsockname(), payload, record=False).start()
        listener.settimeout(5)
        sock, _ = listener.accept()
        with sock, RecordingSelector(selectors.DefaultSelector()) as sel:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            problem = _serve(sel, sock, update_registration)
        try:
            result = client.join(timeout=5)
        except TimeoutError as exc:
            result = None
            feedback.expect(False, f"a real echo driven by it stalled: {exc}")
    if problem:
        feedback.expect(False, f"in a real echo, {problem}")
        return
    if result is not None:
        feedback.expect(result.complete, f"a real echo driven by it did not complete: {result}")
    useless = _useless_modifies(sel)
    feedback.expect(
        not useless, f"in a real echo, {len(useless)} modify() calls did not change the mask"
    )


def _useless_modifies(sel: RecordingSelector) -> list[object]:
    """The modify() calls on ``sel``'s timeline that left the mask as it was."""
    return [
        e
        for e in sel.timeline.events(action="modify")
        if e.detail.split(" → ")[0] == e.detail.split(" → ")[-1]
    ]


def _serve(
    sel: RecordingSelector, sock: socket.socket, update_registration: UpdateRegistration
) -> str:
    """Echo on ``sock`` for at most 5 s; return what went wrong, or ''."""
    sock.setblocking(False)
    conn = EchoConnection(max_buffer=16384)
    sel.register(sock, READ, HANDLER)
    deadline = time.monotonic() + 5
    while sock in sel.get_map() and time.monotonic() < deadline:
        for _key, mask in sel.select(timeout=1):
            if mask & READ:
                conn.receive_data(sock.recv(4096))
            while conn.wants_write:
                try:
                    conn.sent(sock.send(conn.data_to_send()))
                except BlockingIOError:
                    break
            try:
                run_with_timeout(update_registration, sel, sock, conn, timeout=2)
            except Exception as exc:
                return f"it raised {type(exc).__name__}: {exc}"
            if conn.finished:
                return (
                    ""
                    if sock not in sel.get_map()
                    else "the socket was still registered after the echo finished"
                )
    return ""


def check_on_writable(on_writable: OnWritable) -> Feedback:
    """Run a client whose WRITE handler is ``on_writable(sel, sock, outgoing)`` against a server.

    ``outgoing`` is a deque of messages (bytes). The handler should send from
    the first message, keep what ``send()`` did not take at the front, and once
    ``outgoing`` is empty, ``modify()`` the socket to EVENT_READ, keeping
    its data. The echo must come back whole and in order.
    """
    feedback = Feedback("on_writable")
    messages = [b"first message, ", b"x" * 300_000, b", last message"]
    expected = b"".join(messages)
    with EchoServer(record=False) as server:
        run = _run_against(server.address, messages, len(expected), on_writable)
    if run.problem:
        feedback.expect(False, run.problem)
        return feedback
    _judge_echo(feedback, bytes(run.received), expected)
    _judge_switches(feedback, run)
    return feedback


@dataclass
class _ClientRun:
    """What the client's loop saw, for the judges of check_on_writable.

    The bytes back, how many WRITE events found nothing to send (idle), the wrong
    data values seen on keys, what went wrong ('' if nothing), its modify() details.
    """

    received: bytearray = field(default_factory=bytearray)
    idle: int = 0
    data_lost: list[object] = field(default_factory=list)
    problem: str = ""
    switches: list[str] = field(default_factory=list)


def _run_against(
    address: tuple[str, int], messages: list[bytes], total: int, on_writable: OnWritable
) -> _ClientRun:
    """Connect a client to ``address`` and run its loop with ``messages`` to send."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)  # partial sends, for sure
    with sock, RecordingSelector(selectors.DefaultSelector()) as sel:
        sock.settimeout(5)
        sock.connect(address)
        sock.setblocking(False)
        sel.label(sock, "client")
        sel.register(sock, READ | WRITE, HANDLER)
        run = _run_client(sel, sock, deque(messages), total, on_writable)
        key = sel.get_map().get(sock)
        run.data_lost += [key.data] if key is not None and key.data != HANDLER else []
    run.switches = [e.detail for e in sel.timeline.events("client", "modify")]
    return run


def _judge_switches(feedback: Feedback, run: _ClientRun) -> None:
    """One switch to EVENT_READ, at once, keeping the key's data."""
    idle_text = (
        f"select() reported the socket writable {_times(run.idle)} with nothing left to send"
    )
    if not feedback.expect(run.switches, f"it never switched to EVENT_READ: {idle_text}"):
        return
    feedback.expect(
        run.switches == ["READ|WRITE → READ"],
        f"it called modify() {_times(len(run.switches))} ({', '.join(run.switches)}): once, "
        "READ|WRITE → READ, is enough",
    )
    feedback.expect(run.idle <= 2, f"{idle_text}: switch to EVENT_READ at once")
    if run.data_lost:
        feedback.expect(
            False,
            f"after modify() the key's data was {run.data_lost[0]!r}: pass key.data along, "
            "modify(sock, EVENT_READ, key.data)",
        )


def _run_client(
    sel: RecordingSelector,
    sock: socket.socket,
    outgoing: deque[bytes],
    total: int,
    on_writable: OnWritable,
) -> _ClientRun:
    """The client's loop with the learner's WRITE handler, for at most 5 s.

    It goes on for 0.2 s after the whole echo is back, or until the socket is
    no longer registered for WRITE, so that the handler gets its chance to switch.
    Stops at the first problem.
    """
    run = _ClientRun()
    deadline, grace, quiet = time.monotonic() + 5, None, 0
    while time.monotonic() < (deadline if grace is None else grace) and quiet < 5:
        if len(run.received) >= total:
            if not sel.get_key(sock).events & WRITE:
                break
            grace = grace or time.monotonic() + 0.2
        ready = sel.select(timeout=0.2)
        quiet = 0 if ready else quiet + 1  # a second of nothing: the rest will never come
        for key, mask in ready:
            if not _on_event(run, sel, sock, key, mask, outgoing, on_writable):
                return run
    return run


def _on_event(
    run: _ClientRun,
    sel: RecordingSelector,
    sock: socket.socket,
    key: selectors.SelectorKey,
    mask: int,
    outgoing: deque[bytes],
    on_writable: OnWritable,
) -> bool:
    """Handle one ready event into ``run``; False once something went wrong."""
    if key.data != HANDLER:
        run.data_lost.append(key.data)
    if mask & WRITE:
        run.idle += not outgoing
        run.problem = _call_on_writable(on_writable, sel, sock, outgoing)
        if run.problem:
            return False
    if mask & READ:
        try:
            chunk = sock.recv(65536)
        except BlockingIOError:
            return True
        if not chunk:
            run.problem = "the server closed the connection early"
            return False
        run.received += chunk
    return True


def _call_on_writable(
    on_writable: OnWritable, sel: RecordingSelector, sock: socket.socket, outgoing: deque[bytes]
) -> str:
    """Call the learner's handler; return what went wrong, or ''."""
    try:
        run_with_timeout(on_writable, sel, sock, outgoing, timeout=2)
    except BlockingIOError as exc:
        why = "sendall() cannot wait on a non-blocking socket: send() once and keep the rest"
        return f"it raised BlockingIOError ({exc}): {why}"
    except Exception as exc:
        return f"it raised {type(exc).__name__}: {exc}"
    return ""


def _judge_echo(feedback: Feedback, received: bytes, expected: bytes) -> None:
    if received == expected:
        return
    if len(received) == len(expected) and sorted(received) == sorted(expected):
        feedback.expect(
            False,
            "the echo came back in another order: send the messages first to last (pop() takes "
            "the last one)",
        )
    elif len(received) < len(expected):
        feedback.expect(
            False,
            f"{len(expected) - len(received)} of {len(expected)} bytes never came back: "
            "after a partial send(), keep the unsent rest at the front of outgoing",
        )
    else:
        feedback.expect(
            False,
            f"{len(received) - len(expected)} bytes too many came back: is a message sent twice?",
        )


def _name(mask: int | None) -> str:
    if mask is None:
        return "nothing (unregistered)"
    names = [name for bit, name in ((READ, "READ"), (WRITE, "WRITE")) if mask & bit]
    return "|".join(names) or "0 (no events)"


def _times(n: int) -> str:
    return {0: "never", 1: "once"}.get(n, f"{n} times")
