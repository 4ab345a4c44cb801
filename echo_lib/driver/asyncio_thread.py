"""`LoopThread`: an asyncio event loop in a `ThreadRunner` thread, stopped and closed with timeouts.

A notebook's main thread already runs the kernel's event loop, so
``asyncio.run()`` cannot be used there: the loop runs in a daemon thread
instead, and coroutines are handed to it with `LoopThread.run`. Errors the
loop reports are kept, never printed, and `LoopThread.stop` raises the first.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from typing import Any

from .runner import ThreadRunner

__all__ = ["LoopThread"]

TIMEOUT = 5.0  # run() and stop() give up after this long by default
GRACE = 0.5  # stop() lets running handlers finish this long before it cancels them

# Before Python 3.11, concurrent.futures.TimeoutError is its own class, not the
# builtin TimeoutError (3.11 made it an alias): catching only the builtin would
# let a timed-out run() escape as a type its callers do not expect.
_FUTURE_TIMEOUTS = (TimeoutError, concurrent.futures.TimeoutError)


def _result_within(future: concurrent.futures.Future[Any], timeout: float, what: str) -> Any:
    """``future.result(timeout)``, cancelled and raised as the builtin `TimeoutError` on timeout."""
    try:
        return future.result(timeout)
    except _FUTURE_TIMEOUTS:
        future.cancel()
        raise TimeoutError(f"{what} did not finish within {timeout!r} s") from None


class LoopThread:
    """An asyncio event loop running in a daemon thread, stopped and closed with timeouts.

    `run` runs a coroutine in the loop's thread and returns its result (an
    `asyncio.Server` it returns is closed again by `stop`). `stop` closes those
    servers, cancels every task (their ``finally`` blocks run), closes every
    transport still open, stops the thread and closes the loop (and with it
    the selector). Errors the loop reported (a failed callback, a task's
    exception nobody retrieved) are kept, never printed, and `stop` raises the
    first one as `RuntimeError`. Usable as a context manager.

    Raises `TypeError` for a loop that is not an `asyncio.AbstractEventLoop`.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop | None = None, name: str = "asyncio"
    ) -> None:
        if loop is not None and not isinstance(loop, asyncio.AbstractEventLoop):
            raise TypeError(f"loop must be an asyncio event loop, got {loop!r}")
        self.loop = loop if loop is not None else asyncio.SelectorEventLoop()
        self.errors: list[dict[str, Any]] = []
        self.loop.set_exception_handler(self._keep_error)
        self._servers: list[asyncio.AbstractServer] = []
        self._runner = ThreadRunner(self.loop.run_forever, name=name)

    def _keep_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        # Python 3.11's start_server() calls task.exception() on a handler task that stop()
        # cancelled, which raises CancelledError in a callback: our doing, not an error.
        if not isinstance(context.get("exception"), asyncio.CancelledError):
            self.errors.append(context)

    def start(self) -> LoopThread:
        """Start the thread. Raises `RuntimeError` if started before or closed."""
        if self.loop.is_closed() or self._runner.started:
            raise RuntimeError(f"{self!r} can only be started once")
        self._runner.start()
        return self

    @property
    def running(self) -> bool:
        return self._runner.running

    def run(self, coro: Any, timeout: float = TIMEOUT) -> Any:
        """Run ``coro`` in the loop's thread; return its result or raise its exception.

        Raises `RuntimeError` if the loop is not running, `TimeoutError` after ``timeout`` s.
        """
        if not self.running:
            with contextlib.suppress(AttributeError):
                coro.close()  # never awaited: close it, so that no warning is left behind
            raise RuntimeError(f"{self!r} is not running: start() it first")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        result = _result_within(future, timeout, "the coroutine")
        if isinstance(result, asyncio.AbstractServer):
            self._servers.append(result)
        return result

    def stop(self, timeout: float = TIMEOUT) -> None:
        """Close servers, tasks and transports; stop the thread; close the loop. Idempotent."""
        if self.running:
            shutdown = asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop)
            try:
                _result_within(shutdown, timeout, "the shutdown")
            finally:  # quietly: an error of the shutdown must not be replaced by this one
                self.loop.call_soon_threadsafe(self.loop.stop)
                with contextlib.suppress(TimeoutError):
                    self._runner.join(timeout)
            self._runner.join(0, owner=self)  # raises TimeoutError if the thread still runs
        if not self.loop.is_closed():
            self.loop.close()
        self.raise_if_failed()

    async def _shutdown(self) -> None:
        for server in self._servers:
            server.close()
        current = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not current]
        if tasks:  # a handler whose client just left is closing: let it finish, then cancel
            await asyncio.wait(tasks, timeout=GRACE)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        # A Protocol server's connections are transports with no task to cancel. The loop
        # keeps them in its private _transports map (fd -> transport); close those still open.
        for transport in list(getattr(self.loop, "_transports", {}).values()):
            transport.close()
        for server in self._servers:
            await server.wait_closed()
        for _ in range(3):  # let the close callbacks (connection_lost, sock.close) run
            await asyncio.sleep(0)
        await self.loop.shutdown_asyncgens()

    def raise_if_failed(self) -> None:
        """Raise the loop thread's own error, else the first error the loop reported, once.

        A reported error comes as `RuntimeError` (its cause the original exception).
        """
        self._runner.raise_if_failed()
        if self.errors:
            context = self.errors.pop(0)
            exc = context.get("exception")
            raise RuntimeError(f"the event loop reported: {context.get('message', '')}") from exc

    def __enter__(self) -> LoopThread:
        return self.start()

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.stop()
        else:
            with contextlib.suppress(Exception):
                self.stop()

    def __repr__(self) -> str:
        state = "closed" if self.loop.is_closed() else "running" if self.running else "idle"
        return f"<LoopThread {state} on {type(self.loop).__name__}>"
