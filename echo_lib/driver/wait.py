"""Waiting with a bound: poll until true, and call with a timeout. Each written once.

Nothing in echo_lib waits forever. `wait_until` polls a condition (for state
that has no event to wait on, such as another thread's ``listen()``);
`run_with_timeout` runs code that may block or spin (a learner's answer) in a
daemon thread and stops waiting for it after a timeout.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from .runner import ThreadRunner

__all__ = [
    "DEFAULT_WAIT",
    "STOP_WAIT",
    "DidNotReturn",
    "EndedTheProgram",
    "run_with_timeout",
    "wait_until",
]

T = TypeVar("T")

#: Seconds to wait for code to end once it has been asked to stop.
STOP_WAIT = 1.0

#: How long `wait_until` waits unless told otherwise, in seconds.
DEFAULT_WAIT = 5.0

#: How often `wait_until` looks again, in seconds.
POLL_INTERVAL = 0.002


def wait_until(
    condition: Callable[[], object], timeout: float = DEFAULT_WAIT, *, what: str | None = None
) -> bool:
    """Poll ``condition()`` until it is true (return True) or ``timeout`` s pass.

    Past the timeout it returns False, or with ``what`` (words for the
    condition) raises `TimeoutError` saying what was still not true.
    """
    deadline, pause = time.monotonic() + timeout, threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            if what is not None:
                raise TimeoutError(f"{what}: still not true after {timeout!r} s")
            return False
        pause.wait(POLL_INTERVAL)
    return True


class DidNotReturn(TimeoutError):
    """The learner's code was still running when the checker stopped waiting.

    `runner` is the `ThreadRunner` that ran it; `still_running` says whether
    it could not be stopped (see `run_with_timeout`), and `note` says so in words.
    """

    def __init__(self, message: str, runner: ThreadRunner, note: str) -> None:
        super().__init__(message)
        self.runner, self.note = runner, note

    @property
    def still_running(self) -> bool:
        return self.runner.running


class EndedTheProgram(RuntimeError):
    """Learner code called ``sys.exit()`` or raised `KeyboardInterrupt`: told as an ordinary error.

    A checker reports it like any other exception, instead of letting it end
    the kernel's cell (or, outside a notebook, the program).
    """


def run_with_timeout(function: Callable[..., T], *args: Any, timeout: float = 5.0) -> T:
    """Call ``function(*args)`` in a daemon thread and wait at most ``timeout`` s.

    Learner code may block forever (a blocking ``recv()`` on a socket that
    never gets data, a ``select()`` with no timeout) or spin; the checker must
    not. Code still running after ``timeout`` is asked to stop (`_stop`) and
    given `STOP_WAIT` more seconds. ``sys.exit()`` and `KeyboardInterrupt` in
    it come back as `EndedTheProgram`, never as the real thing.

    Raises `DidNotReturn` (a `TimeoutError`) naming the function and saying
    whether it was stopped or still runs; `EndedTheProgram`; or whatever else
    the function raised (which may itself be a `socket.timeout`).
    """
    name = str(getattr(function, "__name__", function))
    guard = threading.Lock()  # the stop request is sent only while target() can still catch it
    finished = threading.Event()

    def target() -> T | None:
        try:
            try:
                return function(*args)
            except (SystemExit, KeyboardInterrupt) as exc:
                raise EndedTheProgram(_ended(exc)) from None
            finally:
                with guard:
                    finished.set()
        except _StopRequested:
            return None  # asked to stop: the caller has already raised DidNotReturn

    runner = ThreadRunner(target, name=f"exercise-{name}").start()
    try:
        runner.join(timeout)
    except TimeoutError:
        note = _stop(runner, guard, finished)
        raise DidNotReturn(f"{name} did not return within {timeout:g} s", runner, note) from None
    runner.raise_if_failed()  # what the function raised, handed to the caller's thread
    return runner.result


def _ended(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        code = "" if exc.code is None else repr(exc.code)
        return f"it called sys.exit({code}): an answer must return, not end the program"
    return "it raised KeyboardInterrupt: an answer must return, not interrupt the program"


class _StopRequested(BaseException):
    """Raised inside learner code that ran too long.

    A BaseException, so that the learner's ``except Exception`` cannot keep it.
    """


# CPython can raise an exception in another thread: PyThreadState_SetAsyncExc
# schedules it, and the thread raises it the next time it runs Python
# bytecode. So a loop that spins in Python stops; code blocked inside one C
# call (recv() or select() with no timeout, a lock's acquire()) does not,
# until that call returns. Nothing else can stop a thread from outside:
# then the honest answer is to say that it still runs, and how to end it.
# The request is sent under ``guard`` and only if the learner's code has not
# finished, so that it always lands inside target()'s try, never after it.
def _stop(runner: ThreadRunner, guard: threading.Lock, finished: threading.Event) -> str:
    """Ask ``runner``'s thread to stop, wait `STOP_WAIT` s, and say in words whether it did."""
    with guard:
        if not finished.is_set():
            ident = ctypes.c_ulong(runner.ident or 0)
            stop = ctypes.py_object(_StopRequested)
            if ctypes.pythonapi.PyThreadState_SetAsyncExc(ident, stop) > 1:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ident, None)  # hit several: undo
    with contextlib.suppress(TimeoutError):
        runner.join(STOP_WAIT)
    if not runner.running:
        return "it was stopped"
    return (
        f"it could not be stopped and still runs in a background thread ({runner.thread_name}), "
        "probably blocked in a call with no timeout; restart the kernel to end it"
    )
