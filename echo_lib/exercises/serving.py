"""Run a learner's ``serve(listener, stop)`` in a thread and watch it: the harness of 09 and 11.

The contract, so that a server can be tested from outside: ``serve(listener,
stop, selector=None)`` runs its own selector loop until ``stop`` (a
`threading.Event`) is set, then unregisters and closes everything it opened,
closes its selector, and returns. ``listener`` is a bound, listening,
non-blocking TCP socket on 127.0.0.1 that the harness owns and closes.

The harness hands the learner a `RecordingSelector` made with ``track=True``
(it remembers every file object registered with it, see `tracking_selector`):
as the ``selector`` argument when ``serve`` accepts one, or else as what the
first ``selectors.DefaultSelector()`` call returns while the server starts.
From it come the timeline, the count of ``select()`` wake-ups, the sockets
left open and the keys left registered. The server's CPU time is read from its
thread's CPU clock (``time.pthread_getcpuclockid``, where the platform has
it).

The scripted clients that attack the server are in `echo_lib.exercises.clients`.
"""

from __future__ import annotations

import inspect
import selectors
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from selectors import DefaultSelector as _RealSelector  # not the stand-in of a server's start
from typing import Any

from ..core.timeline import Timeline
from ..driver.implementations import registered_keys
from ..driver.recording import RecordingSelector
from ..driver.runner import ThreadRunner
from ..driver.sockets import listening_socket
from ..driver.wait import wait_until

__all__ = [
    "KiB",
    "MiB",
    "ServerRun",
    "is_closed",
    "open_sockets",
    "serve_error_problem",
    "stale_keys",
    "tracking_selector",
]

KiB, MiB = 1 << 10, 1 << 20
Serve = Callable[..., Any]
#: How long `ServerRun` waits for the server's first registration.
START_WAIT = 1.0
#: How long `ServerRun.settle` waits for the server to return or go round its loop.
SETTLE_WAIT = 2.0


def tracking_selector(timeline: Timeline | None = None) -> RecordingSelector:
    """A `RecordingSelector` around a new default selector, as ``"your server"``, tracking."""
    return RecordingSelector(_RealSelector(), timeline, actor="your server", track=True)


def is_closed(selector: selectors.BaseSelector) -> bool:
    """Whether ``close()`` was called (a closed selector's map is None)."""
    return selector.get_map() is None


def open_sockets(selector: RecordingSelector, skip: object) -> list[Any]:
    """File objects ever registered with ``selector`` but ``skip``, still open (once each)."""
    unique = {id(f): f for f in list(selector.registered or ())}
    return [f for f in unique.values() if f is not skip and _fileno(f) >= 0]


def stale_keys(selector: selectors.BaseSelector) -> list[selectors.SelectorKey]:
    """Keys whose socket was closed while still registered."""
    return [key for key in registered_keys(selector) if _fileno(key.fileobj) < 0]


def _fileno(fileobj: Any) -> int:
    try:
        return fileobj if isinstance(fileobj, int) else fileobj.fileno()
    except (OSError, ValueError):
        return -1


# -- the server under test ----------------------------------------------------------


class ServerRun:
    """``serve(listener, stop, ...)`` in a daemon thread, with its listener and selector.

    Use as a context manager: on exit ``stop`` is set and the thread is given
    ``grace`` seconds to return (`returned_in_time` says whether it did); the
    listener is closed, and any socket the server left open is closed for it
    and counted in `left_open`. Raises `OSError` if the listener cannot bind
    or the selector cannot be made (then nothing is left open).
    """

    def __init__(
        self, serve: Serve, *, sndbuf: int = 16 * KiB, rcvbuf: int = 64 * KiB, grace: float = 2.0
    ) -> None:
        self.serve, self.grace = serve, grace
        # Accepted sockets inherit the listener's buffer sizes (Linux, BSD): small
        # ones make the server's partial writes happen with payloads of a few MiB.
        self.listener = listening_socket(backlog=1024, sndbuf=sndbuf, rcvbuf=rcvbuf)
        self.address: tuple[str, int] = self.listener.getsockname()[:2]
        try:
            self.selector = tracking_selector()
        except BaseException:
            self.listener.close()  # e.g. EMFILE: no fd left for the selector
            raise
        self.selector.label(self.listener, "listener")
        self.stop = threading.Event()
        self.returned = threading.Event()
        self.returned_in_time = True
        self.died_early = False  # serve returned or raised before stop was set
        self.error: BaseException | None = None  # what serve() raised, if it raised
        self.left_open = 0
        self.runner = ThreadRunner(self._run, name="your-serve")

    def _run(self) -> None:
        # What serve() raises is kept in `error` (never printed), before `returned`
        # is set: whoever sees the server dead also sees why.
        try:
            if _takes_selector(self.serve):
                self.serve(self.listener, self.stop, selector=self.selector)
            else:
                self.serve(self.listener, self.stop)
        except BaseException as exc:
            self.error = exc
        finally:
            self.died_early = not self.stop.is_set()
            self.returned.set()

    def __enter__(self) -> ServerRun:
        try:
            with _default_selector_is(self.selector, unless=_takes_selector(self.serve)):
                self.runner.start()
                self._wait_started()
        except BaseException:  # e.g. no thread could be started: nothing else will close these
            self.selector.close()
            self.listener.close()
            raise
        return self

    def _wait_started(self) -> None:
        # The first registration (the listener's) shows the loop is up; a server
        # that never registers anything is judged by the rounds, not here.
        wait_until(lambda: self.selector.registered or self.returned.is_set(), START_WAIT)

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.returned_in_time = self.returned.wait(self.grace) and self._joined()
        if self.returned_in_time:
            for sock in self.open_sockets():
                self.left_open += 1
                sock.close()
            if not is_closed(self.selector):
                self.selector.close()
        self.listener.close()

    def _joined(self) -> bool:
        """Once ``serve`` has returned, its thread ends too: wait for that (the grace again)."""
        try:
            self.runner.join(self.grace)
        except TimeoutError:
            return False
        return True

    @property
    def died(self) -> bool:
        """``serve`` has returned (or raised) before ``stop`` was set."""
        return self.returned.is_set() and self.died_early

    def open_sockets(self) -> list[Any]:
        """Sockets the server registered (the listener aside) and has not closed."""
        return open_sockets(self.selector, skip=self.listener)

    def registered_keys(self) -> list[selectors.SelectorKey]:
        """A snapshot of the keys registered with the server's selector (empty once closed)."""
        return registered_keys(self.selector)

    def stale_keys(self) -> list[selectors.SelectorKey]:
        """Keys of the server's selector whose socket was closed while still registered."""
        return stale_keys(self.selector)

    def cpu(self) -> float | None:
        """CPU seconds the server's thread has used so far, if this platform can tell."""
        try:
            clock = time.pthread_getcpuclockid(self.runner.ident)  # type: ignore[arg-type]
            return time.clock_gettime(clock)
        except (AttributeError, OSError, TypeError):
            return None

    def cpu_since(self, before: float | None) -> float | None:
        """CPU seconds used since the `cpu()` reading ``before``, if both can be told."""
        now = self.cpu()
        return None if now is None or before is None else now - before

    def wakeups(self, since: int = 0) -> int:
        """How many times ``select()`` returned, after timeline event ``since``."""
        return len(self._selects(since))

    def _selects(self, since: int) -> list[int]:
        """How many ready sockets each ``select()`` after timeline event ``since`` reported."""
        columns = self.selector.timeline.columns()
        try:
            select, me = columns.actions.index("select"), columns.strings.index("your server")
        except ValueError:  # no select() recorded yet
            return []
        start = max(0, since - columns.first_seq + 1)
        rows = zip(
            columns.action[start:], columns.actor[start:], columns.nbytes[start:], strict=True
        )
        return [ready for action, actor, ready in rows if action == select and actor == me]

    def settle(self, timeout: float = SETTLE_WAIT) -> bool:
        """Wait until ``serve`` has returned or has handled all that happened before now.

        What the clients just did (a reset, a close) may yet kill the server,
        and what they just saw (every socket closed) may be a dying server's
        cleanup, a moment before its thread returns. A ``select()`` that
        started after now reports everything still pending; once it found
        nothing, or the one after it was called, the loop has outlived it all.
        The first ``select()`` recorded after now may have started before.
        Returns False if neither happened within ``timeout`` s.
        """
        since = self.selector.timeline.last_seq
        return wait_until(lambda: self.returned.is_set() or _handled(self._selects(since)), timeout)


def _handled(selects: list[int]) -> bool:
    """Given the ready counts of the selects since a moment: did a whole one start after it?"""
    return len(selects) >= 3 or 0 in selects[1:]


def _takes_selector(serve: Serve) -> bool:
    try:
        return "selector" in inspect.signature(serve).parameters
    except (TypeError, ValueError):
        return False


@contextmanager
def _default_selector_is(selector: RecordingSelector, *, unless: bool) -> Iterator[None]:
    """While the server starts, its first ``selectors.DefaultSelector()`` is ``selector``."""
    if unless:
        yield
        return
    original, handed = selectors.DefaultSelector, []

    def factory() -> selectors.BaseSelector:
        if handed:
            return original()
        handed.append(selector)
        return selector

    selectors.DefaultSelector = factory  # type: ignore[misc,assignment]
    try:
        yield
    finally:
        selectors.DefaultSelector = original  # type: ignore[misc]


# Why a server dies, in words for the learner: one hint per kind of exception.
_IN_RECV = (
    "the socket had nothing to read. Was it registered for EVENT_WRITE too? "
    "Register EVENT_READ only while there is nothing to send, and recv() only when "
    "mask & EVENT_READ"
)
_BLOCKING = (
    "sendall() (or a bare send()) on a non-blocking socket raises it when the send buffer "
    "is full: send() what fits, keep the rest, and wait for EVENT_WRITE"
)
_RESET = (
    "A client that resets (or goes away) must only cost its own connection: catch "
    "ConnectionResetError and BrokenPipeError around recv() and send(), close that one, "
    "keep serving"
)
# Worded like the stale-key judge: whichever way this mistake shows (a stale
# key after a round, or this KeyError within it), the learner reads one diagnosis.
_STALE_FD = (
    "A new connection got the fd of a socket that was closed but still registered: "
    "closing without unregister() leaves a key for a dead fd; unregister(), then close()"
)


def serve_error_problem(error: BaseException) -> str:
    """What an exception that killed ``serve`` says about the server's code."""
    name = f"{type(error).__name__}: {error}"
    if isinstance(error, BlockingIOError) and "recv" in _failing_line(error):
        return f"serve() died with {name} in recv(): {_IN_RECV}"
    if isinstance(error, BlockingIOError):
        return f"serve() died with {name}. {_BLOCKING}"
    if isinstance(error, (ConnectionResetError, BrokenPipeError)):
        return f"serve() died with {name}. {_RESET}"
    if isinstance(error, KeyError) and "already registered" in str(error):
        return f"serve() died with {name}. {_STALE_FD}"
    return f"serve() died with {name}"


def _failing_line(error: BaseException) -> str:
    """The source line where ``error`` was raised, if it can be found."""
    frames = traceback.extract_tb(error.__traceback__)
    return (frames[-1].line or "") if frames else ""
