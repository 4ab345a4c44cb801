"""Checker for notebook 03 (event masks): which events to ask for, given a connection's state."""

from __future__ import annotations

import selectors
import socket
import time
from collections.abc import Callable

from ..core.checks import is_int
from ..driver.client import EchoClient
from ..driver.sockets import LOOPBACK
from . import Feedback

__all__ = ["check_wanted_events"]

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE

WantedEvents = Callable[..., int]

# Why each wrong bit is wrong, keyed by (has_pending_output, can_accept_more).
_WHY = {
    (False, False): (
        "nothing to send and no room: 0, and the caller unregisters "
        "(a key with no events still wakes on a hang-up)"
    ),
    (False, True): (
        "WRITE with nothing to send makes select() return at once, every time: a busy loop"
    ),
    (True, False): "with a full buffer, stop reading (no READ) but keep writing (WRITE)",
    (True, True): "output is pending (WRITE) and there is room for more input (READ)",
}


def check_wanted_events(wanted_events: WantedEvents) -> Feedback:
    """Check the four cases of ``wanted_events(has_pending_output=..., can_accept_more=...)``.

    Then drive a real echo connection with the masks it returns.
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
        if not feedback.expect(
            _is_mask(got),
            f"{call} returned {got!r}; return an int made of EVENT_READ and EVENT_WRITE",
        ):
            return feedback
        feedback.expect(
            got == expected, f"{call} returned {_name(got)}, expected {_name(expected)}: {why}"
        )
    if wanted_events(has_pending_output=False, can_accept_more=True):
        _check_real_echo(feedback, wanted_events)  # what the masks do to a real connection
    return feedback


def _check_real_echo(feedback: Feedback, wanted_events: WantedEvents) -> None:
    payload = bytes(range(256)) * 800  # 200 KB: more than one recv(), more than the buffer limit
    with socket.create_server((LOOPBACK, 0)) as listener:
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
    feedback.expect(
        result.complete, f"a real echo driven by these masks did not complete: {result}"
    )
    spins = _idle_wakeups(wanted_events)
    feedback.expect(
        spins <= 2,
        f"with nothing to read or send, select() returned at once {spins} times out of 20",
    )


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
            wanted = wanted_events(
                has_pending_output=bool(pending), can_accept_more=not eof and len(pending) < limit
            )
            if wanted == 0:
                break
            if wanted != key.events:
                key = sel.modify(conn, wanted)


def _is_mask(value: object) -> bool:
    return is_int(value) and not value & ~(READ | WRITE)


def _name(mask: int) -> str:
    names = [name for bit, name in ((READ, "READ"), (WRITE, "WRITE")) if mask & bit]
    return "|".join(names) or "0"
