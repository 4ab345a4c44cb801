"""Checker for notebook 01 (why multiplexing): wait for any of many sockets with a selector.

The exercise is about *how* a function waits, so besides what it returns the
checker measures the CPU time of the thread it runs in
(`time.thread_time`): a function that sleeps in ``select()`` uses a few
microseconds of CPU whatever the wait, one that asks ``recv()`` again and
again uses about as much CPU as wall time.
"""

from __future__ import annotations

import gc
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from ..driver.implementations import available_selectors
from ..driver.runner import ThreadRunner, run_later
from . import Feedback

__all__ = ["check_wait_for_any"]

WaitForAny = Callable[[list[socket.socket], float], Any]

DELAY = 0.3  # the peer's data arrives this long after the call
# CPU time above this share of the wait means the function spun. Sleeping in
# select() costs well under 0.1 %; a spinning loop gets 15-100 % even on a
# busy machine (it competes for a core), a loop that polls every millisecond
# about 3 %.
SPIN_RATIO = 0.02
GRACE = 3.0  # how long past its own timeout a function may take before we stop waiting


@dataclass
class _Call:
    """What one call did: its value or error, wall and CPU seconds, and its thread."""

    value: Any = None
    error: BaseException | None = None
    wall: float = 0.0
    cpu: float = 0.0
    runner: ThreadRunner | None = None

    @property
    def returned(self) -> bool:
        return self.runner is not None and self.runner.done


def _call(function: Callable[..., Any], *args: Any, timeout: float) -> _Call:
    """Call ``function(*args)`` in a thread, timing it; wait at most ``timeout`` s.

    The thread may still be running afterwards (see `_Call.returned`): the
    caller unblocks it (closing the sockets) and joins it.
    """
    call = _Call()

    def target() -> None:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            call.value = function(*args)
        except BaseException as exc:  # reported as feedback, never printed
            call.error = exc
        call.cpu, call.wall = time.thread_time() - cpu, time.perf_counter() - wall

    name = f"exercise-{getattr(function, '__name__', 'code')}"
    with _no_gc():
        call.runner = ThreadRunner(target, name=name).start()
        with suppress(TimeoutError):  # still running: the caller releases it
            call.runner.join(timeout)
    return call


@contextmanager
def _no_gc() -> Iterator[None]:
    """No garbage collection while a call is timed.

    A collection could run in the call's thread and count as its CPU: in a
    big process a full one takes longer than the spin threshold allows.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _error(call: _Call) -> str:
    error = call.error
    if isinstance(error, NotImplementedError):
        return "it raised NotImplementedError: replace the `raise` with your code"
    return f"it raised {type(error).__name__}: {error}"


def _spun(call: _Call) -> bool:
    return call.cpu > SPIN_RATIO * max(call.wall, DELAY)


def _release(call: _Call, *socks: socket.socket) -> bool:
    """Unblock a learner's thread stuck on these sockets, then join it.

    shutdown(), not close(): a shut-down socket is readable (EOF), which wakes
    a blocked recv() or select(); a closed one just leaves epoll's interest list.
    """
    for sock in socks:
        with suppress(OSError):  # already shut down, or never connected
            sock.shutdown(socket.SHUT_RDWR)
    if call.runner is not None:
        with suppress(TimeoutError):  # blocked for good: the feedback says it did not return
            call.runner.join(GRACE)
    return False


# -- exercise 3: wait_for_any(socks, timeout) ---------------------------------


def check_wait_for_any(wait_for_any: WaitForAny) -> Feedback:
    """Run ``wait_for_any(socks, timeout)`` on three socketpairs, three times.

    1. data already waiting on the 2nd and 3rd: it returns those two at once;
    2. nothing yet, data on the 1st after 0.3 s: it returns [1st] then;
    3. nothing at all, timeout 0.3 s: it returns [] after about 0.3 s.
    It must not read the data (the caller does) and must not spin.
    """
    feedback = Feedback("wait_for_any")
    for case in (_two_waiting, _one_arrives, _none_arrive):
        with ExitStack() as stack:
            pairs = [tuple(stack.enter_context(s) for s in socket.socketpair()) for _ in range(3)]
            if not case(
                feedback, wait_for_any, [m for m, _ in pairs], [p for _, p in pairs], stack
            ):
                break
    return feedback


def _names(socks: list[socket.socket], chosen: list[socket.socket]) -> str:
    return "[" + ", ".join(f"socks[{socks.index(s)}]" for s in chosen) + "]"


@contextmanager
def _selectors_made() -> Iterator[list[tuple[int, selectors.BaseSelector]]]:
    """Each selector made while the block runs, with the id of the thread that made it.

    The learner's function looks ``selectors.DefaultSelector`` (or another
    class) up when it runs, so for the length of one call the module's classes
    are swapped for subclasses that note each instance; afterwards a selector
    whose ``get_map()`` is not None was never closed. The checker closes those.
    """
    made: list[tuple[int, selectors.BaseSelector]] = []
    names = ["DefaultSelector", *available_selectors()]
    originals = {name: getattr(selectors, name) for name in names}
    tracked = {cls: _noting(cls, made) for cls in set(originals.values())}
    for name, cls in originals.items():
        setattr(selectors, name, tracked[cls])
    try:
        yield made
    finally:
        for name, cls in originals.items():
            setattr(selectors, name, cls)
        for _, sel in made:
            sel.close()


def _noting(
    cls: type[selectors.BaseSelector], made: list[tuple[int, selectors.BaseSelector]]
) -> type[selectors.BaseSelector]:
    def __init__(self: selectors.BaseSelector, *args: Any, **kwargs: Any) -> None:
        cls.__init__(self, *args, **kwargs)
        made.append((threading.get_ident(), self))

    return type(cls.__name__, (cls,), {"__init__": __init__})


def _left_open(call: _Call, made: list[tuple[int, selectors.BaseSelector]]) -> bool:
    ident = call.runner.ident if call.runner is not None else None
    return any(thread == ident and sel.get_map() is not None for thread, sel in made)


def _run_any(
    feedback: Feedback,
    wait_for_any: WaitForAny,
    socks: list[socket.socket],
    peers: list[socket.socket],
    timeout: float,
    when: str,
) -> _Call | None:
    with _selectors_made() as made:
        call = _call(wait_for_any, list(socks), timeout, timeout=timeout + GRACE)
        left_open = call.returned and _left_open(call, made)
    if not call.returned:
        feedback.expect(False, f"{when} it never returned: give select() the timeout")
        _release(call, *socks, *peers)
        return None
    if not feedback.expect(call.error is None, f"{when} {_error(call)}" if call.error else ""):
        return None
    if not feedback.expect(
        not left_open, f"{when} it left its selector open: close it (a `with` block does)"
    ):
        return None
    return call if _returned_sockets(feedback, call.value, socks, when) else None


def _returned_sockets(
    feedback: Feedback, value: object, socks: list[socket.socket], when: str
) -> bool:
    """``value`` is a list (or tuple) of some of ``socks`` themselves."""
    if not feedback.expect(
        isinstance(value, (list, tuple)),
        f"{when} it returned {type(value).__name__}; return a list of sockets",
    ):
        return False
    strangers = [item for item in value if not any(item is sock for sock in socks)]
    return feedback.expect(
        not strangers,
        f"{when} it returned {type(strangers[0]).__name__ if strangers else ''} items; return the "
        "sockets themselves (key.fileobj)",
    )


def _expect_sockets(
    feedback: Feedback,
    call: _Call,
    socks: list[socket.socket],
    wanted: list[int],
    when: str,
    unwanted_hint: str = "",
) -> bool:
    """The call returned exactly ``socks[i] for i in wanted``, in any order."""
    got = sorted(socks.index(s) for s in call.value)
    expected = "[" + ", ".join(f"socks[{i}]" for i in wanted) + "]"
    hint = unwanted_hint if set(got) - set(wanted) else ""
    return feedback.expect(
        got == wanted, f"{when} it returned {_names(socks, call.value)}, expected {expected}{hint}"
    )


def _unread(feedback: Feedback, socks: list[socket.socket], indexes: list[int], when: str) -> bool:
    for i in indexes:
        socks[i].setblocking(False)
        try:
            data = socks[i].recv(64)
        except BlockingIOError:
            data = b""
        if not feedback.expect(
            data == b"ping",
            f"{when} the data on socks[{i}] was gone: only wait, leave reading to the caller",
        ):
            return False
    return True


def _two_waiting(
    feedback: Feedback,
    wait_for_any: WaitForAny,
    socks: list[socket.socket],
    peers: list[socket.socket],
    stack: ExitStack,
) -> bool:
    when = "with data already waiting on socks[1] and socks[2]"
    peers[1].send(b"ping")
    peers[2].send(b"ping")
    call = _run_any(feedback, wait_for_any, socks, peers, 2.0, when)
    hint = ": was EVENT_WRITE registered too? A connected socket is always writable"
    if call is None or not _expect_sockets(feedback, call, socks, [1, 2], when, hint):
        return False
    if not feedback.expect(
        call.wall < 1.0,
        f"{when} it took {call.wall:.2f} s: return as soon as select() reports them",
    ):
        return False
    return _unread(feedback, socks, [1, 2], when)


def _one_arrives(
    feedback: Feedback,
    wait_for_any: WaitForAny,
    socks: list[socket.socket],
    peers: list[socket.socket],
    stack: ExitStack,
) -> bool:
    when = "with data arriving on socks[0] after 0.3 s"
    sender = run_later(DELAY, lambda: peers[0].send(b"ping"), name="exercise-peer")
    stack.callback(lambda: sender.join(DELAY + GRACE))
    call = _run_any(feedback, wait_for_any, socks, peers, 5.0, when)
    if call is None or not _expect_sockets(feedback, call, socks, [0], when):
        return False
    if not feedback.expect(
        not _spun(call),
        f"{when} it kept the CPU busy ({call.cpu:.2f} s of CPU in {call.wall:.2f} s): it spins",
    ):
        return False
    return _unread(feedback, socks, [0], when)


def _none_arrive(
    feedback: Feedback,
    wait_for_any: WaitForAny,
    socks: list[socket.socket],
    peers: list[socket.socket],
    stack: ExitStack,
) -> bool:
    when = "with nothing arriving and a 0.3 s timeout"
    call = _run_any(feedback, wait_for_any, socks, peers, DELAY, when)
    if call is None or not _expect_sockets(feedback, call, socks, [], when):
        return False
    return feedback.expect(
        call.wall >= DELAY * 0.8,
        f"{when} it returned after {call.wall:.2f} s: wait the whole timeout",
    )
