"""Checkers for notebook 03 (event masks): which events to ask for, and waiting with a timeout."""

from __future__ import annotations

import os
import selectors
import socket
import threading
import time
from collections.abc import Callable

from ..client import EchoClient
from ..server import EchoServer
from . import DidNotReturn, Feedback, run_with_timeout

__all__ = ["check_wait_readable", "check_wanted_events"]

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE

WantedEvents = Callable[..., int]
WaitReadable = Callable[[socket.socket, float], bool]

# Why each wrong bit is wrong, keyed by (has_pending_output, can_accept_more).
_WHY = {
    (False, False): "nothing to send and no room: ask for nothing (0)",
    (False, True): "WRITE with nothing to send makes select() return at once, every time: a busy loop",
    (True, False): "with a full buffer, stop reading (no READ) but keep writing (WRITE)",
    (True, True): "output is pending (WRITE) and there is room for more input (READ)",
}


def check_wanted_events(wanted_events: WantedEvents) -> Feedback:
    """Check the four cases of ``wanted_events(has_pending_output=..., can_accept_more=...)``,
    then drive a real echo connection with the masks it returns.
    """
    feedback = Feedback("wanted_events")
    for (pending, room), why in _WHY.items():
        expected = (READ if room else 0) | (WRITE if pending else 0)
        call = f"wanted_events(has_pending_output={pending}, can_accept_more={room})"
        try:
            got = wanted_events(has_pending_output=pending, can_accept_more=room)
        except Exception as exc:
            feedback.expect(False, f"{call} raised {type(exc).__name__}: {exc}")
            return feedback
        if not feedback.expect(_is_mask(got), f"{call} returned {got!r}; return an int made of EVENT_READ and EVENT_WRITE"):
            return feedback
        feedback.expect(got == expected, f"{call} returned {_name(got)}, expected {_name(expected)}: {why}")
    if wanted_events(has_pending_output=False, can_accept_more=True):
        _check_real_echo(feedback, wanted_events)  # what the masks do to a real connection
    return feedback


def _check_real_echo(feedback: Feedback, wanted_events: WantedEvents) -> None:
    payload = bytes(range(256)) * 800  # 200 KB: more than one recv(), more than the buffer limit
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = EchoClient(listener.getsockname(), payload, record=False).start()
        listener.settimeout(5)
        conn, _ = listener.accept()
        with conn:
            _echo_by_hand(conn, wanted_events)
        try:
            result = client.join(timeout=5)
        except TimeoutError as exc:
            feedback.expect(False, f"a real echo driven by these masks stalled: {exc}")
            return
    feedback.expect(result.complete, f"a real echo driven by these masks did not complete: {result}")
    spins = _idle_wakeups(wanted_events)
    feedback.expect(spins <= 2, f"with nothing to read or send, select() returned at once {spins} times out of 20")


def _idle_wakeups(wanted_events: WantedEvents, tries: int = 20) -> int:
    """How many of ``tries`` short select()s return at once on an idle connection.

    The connection has nothing to read and the server nothing to send, so a
    correct mask makes every select() wait its full 10 ms; WRITE registered
    anyway makes each return at once (a connected socket is always writable).
    Counted here, not during the echo, because there the spin depends on timing.
    """
    a, b = socket.socketpair()
    with a, b, selectors.DefaultSelector() as sel:
        sel.register(a, wanted_events(has_pending_output=False, can_accept_more=True))
        return sum(bool(sel.select(timeout=0.01)) for _ in range(tries))


def _echo_by_hand(conn: socket.socket, wanted_events: WantedEvents, limit: int = 16_384) -> None:
    # A minimal echo server whose registration follows the learner's masks,
    # for at most 3 seconds.
    conn.setblocking(False)
    pending, eof = bytearray(), False
    deadline = time.monotonic() + 3
    with selectors.DefaultSelector() as sel:
        key = sel.register(conn, wanted_events(has_pending_output=False, can_accept_more=True))
        while not (eof and not pending) and time.monotonic() < deadline:
            ready = sel.select(timeout=2)
            if not ready:
                break  # stalled: the client's join() reports what is missing
            mask = ready[0][1]
            if mask & READ:
                data = conn.recv(65536)
                pending += data
                eof = not data
            if mask & WRITE and pending:
                del pending[: conn.send(pending)]
            wanted = wanted_events(has_pending_output=bool(pending), can_accept_more=not eof and len(pending) < limit)
            if wanted == 0:
                break
            if wanted != key.events:
                key = sel.modify(conn, wanted)


def check_wait_readable(wait_readable: WaitReadable) -> Feedback:
    """Run ``wait_readable(sock, timeout)`` on a real connection to an echo server.

    It should wait (with a selector, not by reading) until ``sock`` is
    readable or ``timeout`` seconds pass, return True or False, leave the data
    where it is, and close what it opened.
    """
    feedback = Feedback("wait_readable")
    with EchoServer(record=False) as server, socket.create_connection(server.address, timeout=5) as sock:
        sock.setblocking(False)
        checks = (_nothing_to_read, _echo_waiting, _no_leak, _eof)
        for check in checks:
            if not check(feedback, wait_readable, sock):
                break
    return feedback


def _call(feedback: Feedback, wait_readable: WaitReadable, sock: socket.socket, timeout: float, when: str) -> tuple[object, float] | None:
    start = time.monotonic()
    try:
        result = run_with_timeout(wait_readable, sock, timeout, timeout=timeout + 3)
    except DidNotReturn:
        feedback.expect(False, f"{when}, wait_readable(sock, {timeout}) never returned: pass the timeout to select()")
        _release(sock, wait_readable)
        return None
    except Exception as exc:
        feedback.expect(False, f"{when}, wait_readable(sock, {timeout}) raised {type(exc).__name__}: {exc}")
        return None
    if not feedback.expect(isinstance(result, bool), f"{when}, it returned {result!r}; return True or False"):
        return None
    if not feedback.expect(sock.fileno() >= 0, f"{when}, it closed the socket: close only what you opened"):
        return None
    return result, time.monotonic() - start


def _nothing_to_read(feedback: Feedback, wait_readable: WaitReadable, sock: socket.socket) -> bool:
    outcome = _call(feedback, wait_readable, sock, 0.3, "with nothing to read")
    if outcome is None:
        return False
    result, elapsed = outcome
    if not feedback.expect(
        result is False,
        "with nothing to read it returned True: was EVENT_WRITE registered too? A connected socket is always writable",
    ):
        return False
    return feedback.expect(
        elapsed >= 0.25,
        f"with nothing to read and a 0.3 s timeout it gave up after {elapsed:.2f} s: "
        "wait up to the timeout (select(0) only polls)",
    )


def _echo_waiting(feedback: Feedback, wait_readable: WaitReadable, sock: socket.socket) -> bool:
    sock.send(b"ping")  # the server echoes it: our socket becomes readable
    outcome = _call(feedback, wait_readable, sock, 3, "with an echo on its way")
    if outcome is None:
        return False
    result, elapsed = outcome
    if not feedback.expect(result is True, "with an echo on its way it returned False: did it wait for EVENT_READ?"):
        return False
    feedback.expect(elapsed < 2, f"with an echo on its way it took {elapsed:.2f} s: return as soon as select() reports READ")
    outcome = _call(feedback, wait_readable, sock, 0, "with the echo still unread")
    if outcome is not None:
        feedback.expect(outcome[0] is True, "called again with the echo still unread it returned False: did it read the data?")
    data = _read_now(sock)
    return feedback.expect(
        data == b"ping", f"after it returned, the socket held {data!r} instead of b'ping': wait only, leave reading to the caller"
    )


def _no_leak(feedback: Feedback, wait_readable: WaitReadable, sock: socket.socket) -> bool:
    if not os.path.isdir("/proc/self/fd"):
        return True  # no portable way to count open descriptors here
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        if _call(feedback, wait_readable, sock, 0, "polling with timeout 0") is None:
            return False
    opened = len(os.listdir("/proc/self/fd")) - before
    return feedback.expect(
        opened <= 0,
        f"5 calls left {opened} file descriptors open: close the selector (`with selectors.DefaultSelector() as sel:`)",
    )


def _eof(feedback: Feedback, wait_readable: WaitReadable, sock: socket.socket) -> bool:
    sock.shutdown(socket.SHUT_WR)  # the server finishes the echo and closes: EOF is readable
    outcome = _call(feedback, wait_readable, sock, 3, "after the server closed the connection")
    if outcome is None:
        return False
    return feedback.expect(outcome[0] is True, "after the server closed the connection it returned False: EOF is readable too")


def _release(sock: socket.socket, function: Callable[..., object]) -> None:
    """Wake a learner's thread stuck in select(): EOF makes the socket readable."""
    sock.shutdown(socket.SHUT_RDWR)
    name = f"exercise-{getattr(function, '__name__', 'code')}"
    for thread in threading.enumerate():
        if thread.name == name:
            thread.join(1)


def _read_now(sock: socket.socket) -> bytes:
    try:
        return sock.recv(4096)
    except BlockingIOError:
        return b""


def _is_mask(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and not value & ~(READ | WRITE)


def _name(mask: int) -> str:
    names = [name for bit, name in ((READ, "READ"), (WRITE, "WRITE")) if mask & bit]
    return "|".join(names) or "0"
