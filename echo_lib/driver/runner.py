"""`ThreadRunner`: one function in a daemon thread, its outcome kept for the caller.

Every background thread in echo_lib is one of these: the `SelectorLoop`, an
asyncio loop in notebook 08, a seed program on a stage, the crawler's
scheduler. Each has the same four needs, met here once:

* the thread is a daemon named ``echo_lib-<name>``, so a forgotten one never
  keeps the kernel alive and shows up by name in a thread dump;
* what the function returns is kept in `result`;
* what it raises is kept in `exception`, never printed (ipykernel sends a
  background thread's output to whichever cell happens to run), and
  `raise_if_failed()` raises it once, in the caller's thread;
* `join()` waits with a timeout and raises `TimeoutError` naming the thread,
  so nothing waits forever.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

__all__ = ["ThreadRunner", "run_later"]

DEFAULT_JOIN = 5.0


class ThreadRunner:
    """Run ``target()`` once in a daemon thread called ``echo_lib-{name}``.

    Raises `TypeError` for a ``target`` that is not callable.
    """

    def __init__(self, target: Callable[[], Any], *, name: str) -> None:
        if not callable(target):
            raise TypeError(f"target must be callable, got {target!r}")
        self.name = name
        self.result: Any = None
        self.exception: BaseException | None = None
        self._target = target
        self._raised = False
        self._thread = threading.Thread(target=self._run, name=f"echo_lib-{name}", daemon=True)

    def start(self) -> ThreadRunner:
        """Start the thread. Raises `RuntimeError` if it was started before."""
        if self._thread.ident is not None:
            raise RuntimeError(f"{self!r} can only be started once")
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self.result = self._target()
        except BaseException as exc:  # kept for the caller's thread: a thread must never print
            self.exception = exc

    @property
    def started(self) -> bool:
        return self._thread.ident is not None

    @property
    def ident(self) -> int | None:
        """The thread's identifier (as `threading.get_ident` gives it), None before `start()`."""
        return self._thread.ident

    @property
    def thread_name(self) -> str:
        """The thread's name as a thread dump shows it: ``echo_lib-<name>``."""
        return self._thread.name

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    @property
    def done(self) -> bool:
        return self.started and not self._thread.is_alive()

    def is_current(self) -> bool:
        """Whether the caller runs in this runner's thread (a callback of its own loop)."""
        return threading.current_thread() is self._thread

    def join(self, timeout: float = DEFAULT_JOIN, *, owner: object = None) -> Any:
        """Wait for the thread; return `result`.

        Raises `TimeoutError` if it still runs after ``timeout`` s, naming
        ``owner`` (the loop or scheduler the thread serves) or else the thread.
        A runner never started returns at once.
        """
        if self.started and not self.is_current():
            self._thread.join(timeout)
            if self._thread.is_alive():
                if owner is not None:
                    raise TimeoutError(f"{owner!r} did not stop within {timeout!r} s")
                raise TimeoutError(f"{self.name} is still running after {timeout!r} s")
        return self.result

    def raise_if_failed(self) -> None:
        """Raise the exception that ended the thread, once; `exception` keeps it."""
        if self.exception is not None and not self._raised:
            self._raised = True
            raise self.exception

    def __repr__(self) -> str:
        if not self.started:
            state = "not started"
        elif self.running:
            state = "running"
        else:
            state = f"ended with {type(self.exception).__name__}" if self.exception else "done"
        return f"<ThreadRunner {self.name!r}: {state}>"


def run_later(delay: float, function: Callable[[], Any], *, name: str) -> ThreadRunner:
    """Call ``function()`` in a started `ThreadRunner`, ``delay`` seconds from now.

    The thread waits, then calls: what `threading.Timer` does, but as a daemon
    whose error is kept for the caller instead of printed into a notebook cell.
    """
    pause = threading.Event()

    def later() -> Any:
        pause.wait(delay)
        return function()

    return ThreadRunner(later, name=name).start()
