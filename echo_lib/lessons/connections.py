"""The signal set-ups notebook 10 needs, so that its cells show only the lesson.

- `handling()` and `interval_timer()`: a signal handler and a timer for the
  length of a ``with`` block, the previous ones restored after it.

The loopback situations (a TCP pair, a refusing port, an unanswered connect,
a call's outcome) are in `echo_lib.driver.probes`, and a close that sends RST
is `echo_lib.driver.sockets.close_with_reset`: checkers use them too. What the
notebook teaches (the non-blocking connect, framing, the errors, the signal
handlers, epoll's flags) stays in its cells.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

from ..core.checks import MAX_TIMEOUT, check_number, check_timeout

__all__ = ["handling", "interval_timer"]

Handler = Callable[[int, FrameType | None], Any]


@contextlib.contextmanager
def handling(signum: int, handler: Handler) -> Iterator[None]:
    """Run ``handler`` for ``signum`` during the ``with`` block, then restore the old handler.

    Raises `ValueError` if not called from the main thread (only the main
    thread may set signal handlers), as `signal.signal` does.
    """
    previous = signal.signal(signum, handler)
    try:
        yield
    finally:
        signal.signal(signum, previous)


@contextlib.contextmanager
def interval_timer(delay: float, interval: float = 0.0) -> Iterator[None]:
    """SIGALRM after ``delay`` s, then every ``interval`` s, until the ``with`` block ends.

    Raises `ValueError` naming a bad value (``delay`` must be above 0,
    ``interval`` at least 0, both at most `MAX_TIMEOUT`), and `AttributeError`
    on Windows, which has no ``signal.setitimer``.
    """
    check_timeout(delay, "delay")
    check_number("interval", interval, 0, MAX_TIMEOUT)
    signal.setitimer(signal.ITIMER_REAL, delay, interval)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
