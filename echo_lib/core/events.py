"""What happened, as plain data: one `Event` per thing a selector or a socket did.

No I/O lives here. An `Event` is immutable, so a timeline can be shared between
threads and handed to a plot or a test without copies.

`Event` is a `typing.NamedTuple` rather than a frozen dataclass: a server with
recording on creates several of them per echoed message, and a named tuple is
built about three times faster while being just as immutable and readable.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["ACTIONS", "EVENT_READ", "EVENT_WRITE", "Event", "mask_name"]

# The two mask bits, with the values `selectors` gives them on every platform
# (it defines them as 1 << 0 and 1 << 1). The core names them itself so that it
# imports nothing that does I/O; tests/test_timeline.py checks the values match.
EVENT_READ = 1 << 0
EVENT_WRITE = 1 << 1

#: Every action a timeline knows, in the order a connection usually meets them.
ACTIONS: tuple[str, ...] = (
    "register",
    "modify",
    "unregister",
    "select",
    "ready",
    "accept",
    "connect",
    "recv",
    "send",
    "eof",
    "close",
    "error",
)


class Event(NamedTuple):
    """One thing that happened.

    seq:    global sequence number within its timeline (1, 2, 3, ...)
    t:      seconds since the timeline started
    actor:  who did it, e.g. ``"server"``, ``"server/conn-1"``, ``"client-1"``
    action: one of `ACTIONS`
    fd:     the file descriptor involved, or -1
    mask:   the selector events involved (``EVENT_READ``/``EVENT_WRITE`` bits)
    nbytes: bytes moved (recv/send) or keys ready (select), else 0
    detail: a short free-form note
    """

    seq: int
    t: float
    actor: str
    action: str
    fd: int = -1
    mask: int = 0
    nbytes: int = 0
    detail: str = ""


def mask_name(mask: int) -> str:
    """Spell an events mask the way people say it.

    >>> mask_name(EVENT_READ | EVENT_WRITE)
    'READ|WRITE'
    >>> mask_name(0)
    '-'

    Raises `ValueError` for a mask with bits other than READ and WRITE.
    """
    if mask & ~(EVENT_READ | EVENT_WRITE):
        raise ValueError(f"mask must combine EVENT_READ and EVENT_WRITE, got {mask!r}")
    names = [name for bit, name in ((EVENT_READ, "READ"), (EVENT_WRITE, "WRITE")) if mask & bit]
    return "|".join(names) or "-"
