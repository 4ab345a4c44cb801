"""The 500 Lines crawler's runtime: `Future`, `Task`, and a `Scheduler` over any selector.

A generator waits on a socket with ``yield sched.readable(sock)`` (or
``writable``): that registers the socket with a new `Future` as its
``key.data``. `Scheduler.run_once` selects, unregisters each ready socket and
sets its Future's result (the ready mask), which steps the `Task` waiting on
it. The scheduler can run in the calling thread (`run_until`) or in one
`ThreadRunner` thread (`start` ... `stop`); errors are kept, never printed,
and `stop` raises them in the caller's thread.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import time
from collections.abc import Callable, Generator
from typing import Any

from .recording import RecordingSelector
from .runner import ThreadRunner

__all__ = ["Future", "Scheduler", "Task"]

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
TIMEOUT = 5.0  # run_until() and stop() give up after this long by default


class Future:
    """A result that is not there yet; its callbacks run when it arrives."""

    def __init__(self) -> None:
        self.result: Any = None
        self.done = False
        self._callbacks: list[Callable[[Future], Any]] = []

    def add_done_callback(self, fn: Callable[[Future], Any]) -> None:
        self._callbacks.append(fn)

    def set_result(self, result: Any) -> None:
        self.result, self.done = result, True
        for fn in self._callbacks:
            fn(self)

    def __repr__(self) -> str:
        return f"<Future done: {self.result!r}>" if self.done else "<Future pending>"

    @property
    def callbacks(self) -> tuple[Callable[[Future], Any], ...]:
        """The callbacks waiting for the result (a `Task`'s ``step``, usually)."""
        return tuple(self._callbacks)


class Task:
    """Drive a generator: send each Future's result in, wait on the next Future it yields."""

    def __init__(self, coro: Generator[Any, Any, Any]) -> None:
        self.coro = coro
        self.done = False
        self.exception: BaseException | None = None
        self.step(Future())  # start it: the first send() must be None

    def step(self, future: Future) -> None:
        try:
            next_future = self.coro.send(future.result)
            if not isinstance(next_future, Future):
                raise TypeError(
                    f"{self.name} yielded {next_future!r}; "
                    "yield sched.readable(sock) or sched.writable(sock)"
                )
        except StopIteration:
            self.done = True
            return
        except Exception as exc:  # kept for the scheduler, which raises it in stop()
            self.done, self.exception = True, exc
            self.coro.close()
            return
        next_future.add_done_callback(self.step)

    @property
    def name(self) -> str:
        return getattr(self.coro, "__name__", "task")

    def __repr__(self) -> str:
        state = "failed" if self.exception else "done" if self.done else "waiting"
        return f"<Task {self.name} {state}>"


class Scheduler:
    """The crawler's event loop: a selector whose keys carry Futures.

    A task waits on a socket with ``yield sched.readable(sock)`` (or
    ``writable``): that registers the socket with a new Future as its data.
    `run_once` selects, unregisters each ready socket and sets its Future's
    result (the ready mask), which steps the task waiting on it.

    Raises `TypeError` from `spawn` for something that is not a generator.
    """

    def __init__(self, selector: selectors.BaseSelector | None = None) -> None:
        self.selector = selector if selector is not None else selectors.DefaultSelector()
        self.tasks: list[Task] = []
        self.waits = 0  # how many times a task waited on a socket
        self._runner: ThreadRunner | None = None
        self._stopping = False
        self._closed = False
        self._error_raised = False

    def readable(self, sock: socket.socket) -> Future:
        return self._wait(sock, READ)

    def writable(self, sock: socket.socket) -> Future:
        return self._wait(sock, WRITE)

    def _wait(self, sock: socket.socket, events: int) -> Future:
        future = Future()
        self.selector.register(sock, events, future)
        self.waits += 1
        return future

    def run_once(self, timeout: float | None = None) -> int:
        ready = self.selector.select(timeout)
        for key, mask in ready:
            self.selector.unregister(key.fileobj)
            key.data.set_result(mask)
        return len(ready)

    # -- plumbing: run in a thread, stop, close (not the lesson) -----------------------

    def spawn(self, coro: Generator[Any, Any, Any]) -> Task:
        """Wrap ``coro`` in a `Task`, which runs it up to its first ``yield``; keep the task."""
        if not isinstance(coro, Generator):
            raise TypeError(
                f"spawn() needs a generator (call a function that uses yield), got {coro!r}"
            )
        if self.running and not self._runner.is_current():  # type: ignore[union-attr]
            raise RuntimeError(
                "spawn() tasks before start(), or from inside a task: selectors are not thread-safe"
            )
        task = Task(coro)
        self.tasks.append(task)
        return task

    def run_until(self, condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
        """Run in the calling thread until ``condition()``; `TimeoutError` after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{condition!r} still false after {timeout!r} s")
            self.run_once(min(left, 0.05))

    def start(self) -> Scheduler:
        """Run the loop in a daemon thread until `stop`. `RuntimeError` if started or closed."""
        if self._runner is not None or self._closed:
            raise RuntimeError(f"{self!r} can only be started once")
        self._wake_r, self._wake_w = socket.socketpair()
        if isinstance(self.selector, RecordingSelector):
            self.selector.label(self._wake_r, None)  # plumbing: keep it off the timeline
        self.selector.register(self._wake_r, READ, Future())
        self._runner = ThreadRunner(self._run, name="scheduler").start()
        return self

    def _run(self) -> None:
        while not self._stopping:
            self.run_once(None)

    @property
    def running(self) -> bool:
        return self._runner is not None and self._runner.running

    @property
    def error(self) -> BaseException | None:
        """The exception that ended the loop's thread, until `raise_if_failed` raised it."""
        runner = self._runner
        return None if runner is None or self._error_raised else runner.exception

    def failures(self) -> list[Task]:
        """The tasks that ended with an exception, in the order they were spawned."""
        return [task for task in list(self.tasks) if task.exception is not None]

    def stop(self, timeout: float = TIMEOUT) -> None:
        """Stop the thread, close everything, then raise the loop's or a task's error, if any.

        Idempotent. Raises `TimeoutError` if the thread does not stop in time.
        """
        self._stopping = True
        if self._runner is not None:
            with contextlib.suppress(OSError):
                self._wake_w.send(b"\0")
            self._runner.join(timeout, owner=self)
        self.close()
        self.raise_if_failed()

    def raise_if_failed(self) -> None:
        """Raise the loop's error, else the first task's; each only once."""
        error = self.error
        if error is not None:
            self._error_raised = True
            raise error
        failed = self.failures()
        if failed:
            error, failed[0].exception = failed[0].exception, None
            raise error  # type: ignore[misc]

    def close(self) -> None:
        """Close each waiting task (its ``finally`` runs), each registered socket, the selector."""
        if self._closed or self.running:
            return
        self._closed = True
        for task in self.tasks:
            if not task.done:
                with contextlib.suppress(Exception):
                    task.coro.close()
        for key in list(self.selector.get_map().values()):
            self.selector.unregister(key.fileobj)
            with contextlib.suppress(OSError):
                key.fileobj.close()
        self.selector.close()
        if self._runner is not None:
            self._wake_r.close()
            self._wake_w.close()

    def __enter__(self) -> Scheduler:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.stop()
        else:  # do not hide the exception already on its way out
            with contextlib.suppress(Exception):
                self.stop()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self.running else "idle"
        return f"<Scheduler {state}: {len(self.tasks)} tasks, {self.waits} waits>"
