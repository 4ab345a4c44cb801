"""`SelectorLoop`: the seed's ``for key, mask in sel.select(): key.data(...)`` loop,
run in a background thread or one step at a time.

Every callback is stored as the key's ``data`` and called as ``data(key, mask)``.

Two ways to drive it:

* **threaded**: `start()` runs the loop in a daemon thread. The thread blocks in
  ``select()`` with no timeout, so it costs no CPU while idle. `stop()` may be
  called from any thread: it writes one byte to a wakeup socketpair (trio's
  trick) so that ``select()`` returns at once, joins the thread (with a
  timeout), then closes every registered socket and the selector. It is
  idempotent. Called from a callback (the loop's own thread), it lets that
  step end, and the thread closes everything as it exits.
* **deterministic**: no thread at all. `step()` runs exactly one ``select()``
  and its callbacks; `run_until()` steps until a condition holds. A server and
  its clients sharing one loop then produce the same event sequence on every
  run, which is what notebook outputs and the step-through widget rely on.

Either way, `call_later()` runs a function after a delay, between steps
(the server uses it to pause accepting when out of file descriptors).

A callback that raises stops the loop: the exception is recorded as an
``error`` event, kept in `exception`, and raised again by `stop()` (or
`run_until()`), in the caller's thread, because a background thread must never
print and an error must never pass silently.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import heapq
import itertools
import selectors
import socket
import time
import weakref
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from ..core.timeline import Timeline
from .implementations import SelectorFactory, resolve_selector, select
from .recording import RecordingSelector
from .runner import ThreadRunner

__all__ = ["Callback", "SelectorLoop", "stop_all"]

Callback = Callable[[selectors.SelectorKey, int], Any]

DEFAULT_TIMEOUT = 5.0


class SelectorLoop:
    """A selector plus the loop that dispatches its ready keys.

    ``selector`` is a class, a name such as ``"poll"``, or None for
    `selectors.DefaultSelector`. With ``record=True`` (the default) the
    selector is wrapped in a `RecordingSelector` writing to ``timeline``
    (a new one unless given); with ``record=False``, `timeline` is None.

    Raises `ValueError`/`TypeError` from `resolve_selector` for a bad selector.
    """

    #: Live loops, so that `stop_all()` can rescue a notebook whose state broke.
    _live: ClassVar[weakref.WeakSet[SelectorLoop]] = weakref.WeakSet()

    def __init__(
        self,
        selector: str | SelectorFactory | None = None,
        *,
        record: bool = True,
        timeline: Timeline | None = None,
        name: str = "loop",
    ) -> None:
        inner = resolve_selector(selector)()
        self.name = name
        self.timeline: Timeline | None = (
            (timeline if timeline is not None else Timeline()) if record else None
        )
        self.selector: selectors.BaseSelector = (
            RecordingSelector(inner, self.timeline, actor=name)
            if self.timeline is not None
            else inner
        )
        self._keys = _live_keys(inner, self.selector)
        self.exception: BaseException | None = None
        self._raised = self._stop_requested = False
        self.iterations = 0
        self._runner = ThreadRunner(self._run, name=name)
        self._closed = self._close_on_exit = False
        self._pending: deque[Callable[[], Any]] = deque()
        self._timers: list[tuple[float, int, Callable[[], Any]]] = []  # (when, order, fn): a heap
        self._timer_order = itertools.count()
        self._closers: list[Callable[[], Any]] = []
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.register(self._wake_r, selectors.EVENT_READ, self._on_wakeup, actor=None)
        SelectorLoop._live.add(self)

    # -- registration ---------------------------------------------------------

    def register(
        self, fileobj: Any, events: int, callback: Callback, *, actor: str | None = ""
    ) -> None:
        """Register ``fileobj`` with ``callback`` as its data, named ``actor`` on the timeline.

        From another thread while the loop runs, the registration is handed
        to the loop thread (selectors are not thread-safe) and this call waits
        for it, so that its error is raised here, in the caller.
        Raises `RuntimeError` on a closed loop, and what ``register()`` raises
        (`KeyError` for a file object already registered, `ValueError` for a
        bad one).
        """
        if self._closed:
            raise RuntimeError(
                f"{self!r} is closed; make a new SelectorLoop to register {fileobj!r}"
            )
        if isinstance(self.selector, RecordingSelector) and actor != "":
            self.selector.label(fileobj, actor)
        self._in_loop_thread(self.selector.register, fileobj, events, callback)

    def call_soon_threadsafe(self, function: Callable[[], Any]) -> None:
        """Run ``function()`` in the loop thread at its next wake-up."""
        self._pending.append(function)
        self._wake()

    def call_later(self, delay: float, function: Callable[[], Any]) -> None:
        """Run ``function()`` in the loop, after the first step at least ``delay`` s from now.

        Call it from the loop's own thread (a callback) or before `start()`.
        """
        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._timer_order), function))

    def add_closer(self, function: Callable[[], Any]) -> None:
        """Call ``function()`` when the loop closes, before its sockets are closed."""
        self._closers.append(function)

    def _in_loop_thread(self, function: Callable[..., Any], *args: Any) -> Any:
        if not self.running or self._runner.is_current():
            return function(*args)
        done: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self.call_soon_threadsafe(lambda: _settle(done, function, *args))
        try:
            return done.result(DEFAULT_TIMEOUT)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(
                f"{self!r} did not run {function.__name__}() within {DEFAULT_TIMEOUT!r} s"
            ) from None

    # -- deterministic mode ---------------------------------------------------

    # The ready list is a snapshot taken by select(); each callback may change
    # the registrations the later entries refer to. So every entry is looked up
    # again: a key an earlier callback unregistered is skipped; one it modified
    # gets its new data and only the events it still wants (kqueue's modify()
    # even makes a new key); and one whose fd now belongs to another file
    # object (closed, then reused by socket() or accept() in the same batch) is
    # a stale event for the old socket, skipped rather than delivered to the new
    # one. kqueue reports READ and WRITE of one fd as two entries, so one key
    # can be called twice in a batch; the second call sees the state the first
    # left behind. Due `call_later` timers run first, right after select().
    # Issue 11, once per wake-up: the timer helpers (and their clock reads) run
    # only while a timer is set; a key still the registered object needs no compare.
    def step(self, timeout: float | None = 0.0) -> int:
        """One ``select(timeout)``, the due `call_later` timers, then every ready key's callback.

        Returns how many (key, mask) entries were ready. The selector waits
        at most until the next timer is due. Keys are looked up again before
        each callback, by fd and file object (see above). A callback's
        exception is recorded (an ``error`` event, `exception`) and raised.
        """
        timers = self._timers
        try:
            ready = select(self.selector, self._until_next_timer(timeout) if timers else timeout)
            self.iterations += 1
            if timers:
                self._run_due_timers()
            keys = self._keys
            for key, mask in ready:
                live = keys.get(key.fd)
                if live is not key and (live is None or live.fileobj != key.fileobj):
                    continue  # unregistered, or its fd reused by another file object
                if wanted := mask & live.events:
                    live.data(live, wanted)
        except BaseException as exc:
            self._note_error(exc)
            self._raised = True  # the caller sees it now; stop() need not raise it again
            raise
        return len(ready)

    def _until_next_timer(self, timeout: float | None) -> float | None:
        """``timeout``, cut short to when the first timer is due (call only while one is set)."""
        wait = max(0.0, self._timers[0][0] - time.monotonic())
        return wait if timeout is None else min(timeout, wait)

    def _run_due_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            heapq.heappop(self._timers)[2]()

    def run_until(
        self,
        condition: Callable[[], bool],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        max_steps: int = 100_000,
    ) -> int:
        """Step until ``condition()`` is true; return the number of steps taken.

        Raises `TimeoutError` if it is still false after ``timeout`` seconds or
        ``max_steps`` steps, and re-raises an exception from a callback.
        """
        deadline = time.monotonic() + timeout
        for steps in range(max_steps + 1):
            if condition():
                return steps
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.step(min(remaining, 0.1))
        raise TimeoutError(f"{condition!r} still false after {steps} steps and {timeout!r} s")

    # -- threaded mode --------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._runner.running

    def start(self) -> SelectorLoop:
        """Run the loop in a daemon thread. Raises `RuntimeError` if closed or started."""
        if self._closed or self._runner.started:
            raise RuntimeError(f"{self!r} can only be started once")
        self._runner.start()
        return self

    def _run(self) -> None:
        try:
            while not self._stop_requested:
                self.step(None)
        except BaseException:  # step() kept it; a thread must not print, so stop() raises it
            self._raised = False
        finally:
            if self._close_on_exit:  # stop() or close() was called from a callback
                self._close_now()

    def request_stop(self) -> None:
        """Ask the loop to stop after the current step (any thread; no wait)."""
        self._stop_requested = True
        self._wake()

    def stop(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Stop the thread (if any), close everything, and re-raise a callback's error.

        From the loop's own thread (a callback), the loop stops and closes
        everything as soon as that callback's step ends; nothing is raised
        there. Idempotent. Raises `TimeoutError` if the thread does not end in time.
        """
        self.request_stop()
        if self._runner.is_current():
            self.close()
            return
        self._runner.join(timeout, owner=self)
        self.close()
        self.raise_if_failed()

    def raise_if_failed(self) -> None:
        """Raise the exception that stopped the loop, once; `exception` keeps it."""
        if self.exception is not None and not self._raised:
            self._raised = True
            raise self.exception

    def close(self) -> None:
        """Close the owners (`add_closer`), every registered file object and the selector.

        Does nothing while the thread runs, unless called from that thread:
        then the thread closes everything once the current step ends.
        """
        if self._closed:
            return
        if self.running:
            if self._runner.is_current():
                self._close_on_exit = True
                self.request_stop()
            return
        self._close_now()

    # `_closed` is set last: a close() interrupted half way (Ctrl-C arrives as
    # KeyboardInterrupt between any two lines) leaves the loop open and in
    # `_live`, so that stop_all() or a second close() finishes the job. Each
    # closer is taken off the list before it runs, so none runs twice.
    def _close_now(self) -> None:
        while self._closers:
            self._closers.pop(0)()
        keys = self.selector.get_map()
        for key in list(keys.values()) if keys is not None else ():
            self.selector.unregister(key.fileobj)
            _close(key.fileobj)
        self.selector.close()
        self._wake_w.close()
        self._closed = True
        SelectorLoop._live.discard(self)

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> SelectorLoop:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.stop()
        else:  # do not hide the exception already on its way out
            self.request_stop()
            self._join_quietly(DEFAULT_TIMEOUT)
            self.close()

    # -- internals ------------------------------------------------------------

    def _join_quietly(self, timeout: float) -> None:
        """Wait for the thread, if any and not this one; a thread still running is left as is."""
        if not self._runner.is_current():
            with contextlib.suppress(TimeoutError):
                self._runner.join(timeout)

    def _wake(self) -> None:
        # Already full of wake-ups, or closed: either way select() returns.
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _on_wakeup(self, key: selectors.SelectorKey, mask: int) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        while self._pending:
            self._pending.popleft()()

    def _note_error(self, exc: BaseException) -> None:
        if self.exception is None:
            self.exception = exc
        if self.timeline is not None:
            self.timeline.record(self.name, "error", detail=f"{type(exc).__name__}: {exc}")

    def __repr__(self) -> str:
        state = "closed" if self._closed else "running" if self.running else "idle"
        return f"<SelectorLoop {self.name!r} {state} on {type(_inner(self.selector)).__name__}>"


def stop_all(timeout: float = DEFAULT_TIMEOUT) -> int:
    """Stop every live loop (and so every server and client); return how many.

    The one-step reset for a notebook whose state broke; errors that stopped a
    loop are not raised here.
    """
    loops = list(SelectorLoop._live)
    for loop in loops:
        loop.request_stop()
    for loop in loops:
        loop._join_quietly(timeout)
        loop.close()
    return len(loops)


def _settle(
    future: concurrent.futures.Future[Any], function: Callable[..., Any], *args: Any
) -> None:
    """Run ``function(*args)`` and hand its result or exception to ``future``."""
    try:
        future.set_result(function(*args))
    except BaseException as exc:  # the caller's error, raised in the caller's thread
        future.set_exception(exc)


# fd -> live key, to skip keys an earlier callback unregistered. The stdlib
# selectors keep this dict (`_fd_to_key`); ``get_map()`` is the same data
# behind four Python-level calls per lookup.
def _live_keys(
    inner: selectors.BaseSelector, outer: selectors.BaseSelector
) -> Mapping[int, selectors.SelectorKey]:
    """The fd -> key mapping of ``inner``, the cheapest way there is to read it."""
    fd_to_key = getattr(inner, "_fd_to_key", None)
    return outer.get_map() if fd_to_key is None else fd_to_key


def _inner(selector: selectors.BaseSelector) -> selectors.BaseSelector:
    return selector.inner if isinstance(selector, RecordingSelector) else selector


def _close(fileobj: Any) -> None:
    close = getattr(fileobj, "close", None)
    if close is not None:
        close()
