"""Notebook 08: one echo server four ways, over the same kind of selector.

1. **callbacks**: `EchoServer`, the seed's style; ``key.data`` is a function.
2. **generators**: the 500 Lines crawler's design. ``key.data`` is a `Future`;
   a generator yields the Future it waits on, and the `Task` driving it sends
   the result back in when the selector reports the socket ready. `Scheduler`
   is the loop: ``select()``, then ``key.data.set_result(mask)``.
3. **asyncio Protocol**: `EchoProtocol`; the loop's transports call it.
4. **asyncio streams**: `handle_echo`, a coroutine with ``await``.

Plumbing that the lesson is not about, kept here so that the notebook's cells
stay short: `LoopThread` runs an asyncio event loop in a daemon thread (the
notebook's main thread already runs the kernel's loop, so ``asyncio.run()``
cannot be used there) and stops and closes it with timeouts;
`ServerSelector` is a `RecordingSelector` that names lanes the way
`EchoServer` does (``server``, ``server/conn-1``, ...) for every version, also
for asyncio, which registers plain fds, and for the scheduler, which
registers a socket again on every wait; `run_clients` checks a server with the
same `EchoClient` run every time; `peek_keys` says what ``key.data`` holds;
`run_style` and `compare` run and compare the four; `styles_lab` is the widget.

Threads never print: errors are kept and raised again, in the caller's
thread, by ``stop()``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import selectors
import socket
import threading
import time
import weakref
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.events import Event
from ..core.timeline import Timeline
from ..driver.client import DEFAULT_MESSAGES, EchoClient, EchoResult
from ..driver.recording import RecordingSelector
from ..driver.server import EchoServer
from ..view.widgets import ReportFront, describe_exception, timeline_output, weak_callback

__all__ = [
    "MAX_CLIENTS",
    "SELECTOR_ACTIONS",
    "STYLES",
    "EchoProtocol",
    "Future",
    "LoopThread",
    "Scheduler",
    "ServerSelector",
    "StyleRun",
    "StylesLab",
    "Task",
    "compare",
    "echo_handler",
    "echo_server",
    "handle_echo",
    "peek_keys",
    "run_clients",
    "run_style",
    "selector_events",
    "styles_lab",
]

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
STYLES: tuple[str, ...] = ("callbacks", "generators", "asyncio Protocol", "asyncio streams")
#: What a selector itself does; a timeline filtered to these is comparable across the four styles.
SELECTOR_ACTIONS: tuple[str, ...] = ("register", "modify", "unregister", "select", "ready")
MAX_CLIENTS = 6
TIMEOUT = 5.0  # every wait of a run gives up after this long
GRACE = 0.5  # LoopThread.stop() lets running handlers finish this long before it cancels them


# -- 2. the tiny scheduler: generators, Futures, Tasks (the 500 Lines crawler) ----------


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
                    f"{self.name} yielded {next_future!r}; yield sched.readable(sock) or sched.writable(sock)"
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
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._closed = False
        self.error: BaseException | None = None

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
        self._check_thread()
        task = Task(coro)
        self.tasks.append(task)
        return task

    def run_until(self, condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
        """Run in the calling thread until ``condition()``; raise `TimeoutError` after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while not condition():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{condition!r} still false after {timeout!r} s")
            self.run_once(min(left, 0.05))

    def start(self) -> Scheduler:
        """Run the loop in a daemon thread until `stop`. Raises `RuntimeError` if started or closed."""
        if self._thread is not None or self._closed:
            raise RuntimeError(f"{self!r} can only be started once")
        self._wake_r, self._wake_w = socket.socketpair()
        if isinstance(self.selector, RecordingSelector):
            self.selector.label(self._wake_r, None)  # plumbing: keep it off the timeline
        self.selector.register(self._wake_r, READ, Future())
        self._thread = threading.Thread(target=self._run, name="echo_lib-scheduler", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            while not self._stopping:
                self.run_once(None)
        except BaseException as exc:  # a thread must not print: stop() raises it
            self.error = exc

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def failures(self) -> list[Task]:
        """The tasks that ended with an exception, in the order they were spawned."""
        return [task for task in list(self.tasks) if task.exception is not None]

    def stop(self, timeout: float = TIMEOUT) -> None:
        """Stop the thread, close everything, then raise the loop's or a task's error, if any.

        Idempotent. Raises `TimeoutError` if the thread does not stop in time.
        """
        self._stopping = True
        if self._thread is not None:
            with contextlib.suppress(OSError):
                self._wake_w.send(b"\0")
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError(f"{self!r} did not stop within {timeout!r} s")
        self.close()
        self.raise_if_failed()

    def raise_if_failed(self) -> None:
        """Raise the loop's error, else the first task's; each only once."""
        error = self.error or next((task.exception for task in self.failures()), None)
        if error is not None:
            self.error = None
            for task in self.tasks:
                task.exception = None if task.exception is error else task.exception
            raise error

    def close(self) -> None:
        """Close every waiting task (its ``finally``/``with`` blocks run), every registered socket, the selector."""
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
        if self._thread is not None:
            self._wake_r.close()
            self._wake_w.close()

    def _check_thread(self) -> None:
        if self.running and threading.current_thread() is not self._thread:
            raise RuntimeError(
                "spawn() tasks before start(), or from inside a task: selectors are not thread-safe"
            )

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


def echo_server(sched: Scheduler, listener: socket.socket) -> Generator[Future, int, None]:
    """Accept forever; each connection gets its own task."""
    while True:
        yield sched.readable(listener)
        sock, _ = listener.accept()
        sock.setblocking(False)
        sched.spawn(echo_handler(sched, sock))


def echo_handler(sched: Scheduler, sock: socket.socket) -> Generator[Future, int, None]:
    """Echo until EOF: wait, recv; wait, send; until every byte is out."""
    with sock:
        while True:
            yield sched.readable(sock)
            data = sock.recv(65536)
            if not data:
                return
            while data:
                yield sched.writable(sock)
                data = data[sock.send(data) :]


# -- 3 and 4. asyncio: a Protocol, and streams ------------------------------------------


class EchoProtocol(asyncio.Protocol):
    """Called by the transport: bytes in, the same bytes out."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def eof_received(self) -> bool:
        return False  # the transport closes itself, after sending what is buffered


async def handle_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One coroutine per connection: read, write, drain, until EOF."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()
        await writer.wait_closed()


# Before Python 3.11, concurrent.futures.TimeoutError is its own class, not the
# builtin TimeoutError (3.11 made it an alias): catching only the builtin would
# let a timed-out run() escape as a type its callers do not expect.
_FUTURE_TIMEOUTS = (TimeoutError, concurrent.futures.TimeoutError)


def _result_within(future: concurrent.futures.Future[Any], timeout: float, what: str) -> Any:
    """``future.result(timeout)``; raises the builtin `TimeoutError` naming ``what`` on every Python, after cancelling it."""
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
        self._thread = threading.Thread(
            target=self.loop.run_forever, name=f"echo_lib-{name}", daemon=True
        )

    def _keep_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        # Python 3.11's start_server() calls task.exception() on a handler task that stop()
        # cancelled, which raises CancelledError in a callback: that is our doing, not an error.
        if not isinstance(context.get("exception"), asyncio.CancelledError):
            self.errors.append(context)

    def start(self) -> LoopThread:
        """Start the thread. Raises `RuntimeError` if started before or closed."""
        if self.loop.is_closed() or self._thread.ident is not None:
            raise RuntimeError(f"{self!r} can only be started once")
        self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

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
            try:
                _result_within(
                    asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop),
                    timeout,
                    "the shutdown",
                )
            finally:
                self.loop.call_soon_threadsafe(self.loop.stop)
                self._thread.join(timeout)
            if self._thread.is_alive():
                raise TimeoutError(f"{self!r} did not stop within {timeout!r} s")
        if not self.loop.is_closed():
            self.loop.close()
        self.raise_if_failed()

    async def _shutdown(self) -> None:
        for server in self._servers:
            server.close()
        current = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not current]
        if (
            tasks
        ):  # a handler whose client just left is closing: let it finish, then cancel the rest
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
        """Raise the first error the loop reported as `RuntimeError` (once)."""
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


# -- recording every version the same way ------------------------------------------------


class ServerSelector(RecordingSelector):
    """A `RecordingSelector` whose lanes read as `EchoServer`'s do, for any server code.

    Label the listening socket ``"server"`` before it is registered. Anything
    registered before it is plumbing and stays off the timeline (asyncio's
    self-pipe); anything new after it is ``server/conn-1``, ``server/conn-2``...
    A socket object keeps its name when it is unregistered and registered
    again (the scheduler does that on every wait); a plain fd (asyncio's
    registrations) gets a new name once it was unregistered.
    """

    def __init__(
        self, selector: selectors.BaseSelector | None = None, timeline: Timeline | None = None
    ) -> None:
        super().__init__(selector, timeline, actor="server")
        self._given: dict[int, str | None] = {}
        self._known: weakref.WeakKeyDictionary[Any, str | None] = weakref.WeakKeyDictionary()
        self._listening = False
        self._connections = 0

    def label(self, fileobj: Any, actor: str | None) -> None:
        super().label(fileobj, actor)
        self._given[selectors._fileobj_to_fd(fileobj)] = actor

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        super().label(fileobj, self._name(fileobj))
        return super().register(fileobj, events, data)

    def _name(self, fileobj: Any) -> str | None:
        fd = selectors._fileobj_to_fd(fileobj)
        if fd in self._given:
            name = self._given.pop(fd)
        elif not isinstance(fileobj, int) and fileobj in self._known:
            name = self._known[fileobj]
        elif not self._listening:
            name = None
        else:
            self._connections += 1
            name = f"server/conn-{self._connections}"
        self._listening = self._listening or name == "server"
        if not isinstance(fileobj, int):
            self._known[fileobj] = name
        return name


def selector_events(timeline: Timeline) -> list[Event]:
    """Only what the selector did (register, modify, unregister, select, ready)."""
    return timeline.events(action=SELECTOR_ACTIONS)


def run_clients(
    address: tuple[str, int],
    clients: int = 3,
    messages: Sequence[bytes] = DEFAULT_MESSAGES,
    *,
    timeout: float = TIMEOUT,
) -> list[EchoResult]:
    """Run ``clients`` `EchoClient`s at once (client-1, client-2, ...); return their results in order.

    Each runs its own loop in a thread; every thread is stopped on return. A
    client still waiting after ``timeout`` s gives its partial result.
    Raises `ValueError` for ``clients`` outside 1..`MAX_CLIENTS`.
    """
    _check_clients(clients)
    started: list[EchoClient] = []
    deadline = time.monotonic() + timeout
    try:
        for i in range(1, clients + 1):
            started.append(
                EchoClient(
                    address, messages, name=f"client-{i}", record=False, timeout=timeout
                ).start()
            )
        results = []
        for client in started:
            try:
                results.append(client.join(max(deadline - time.monotonic(), 0.01)))
            except TimeoutError:
                results.append(client.result())
        return results
    finally:
        for client in started:
            if client.loop is not None:
                client.loop.stop()


def peek_keys(
    selector: selectors.BaseSelector, address: tuple[str, int], *, timeout: float = TIMEOUT
) -> str:
    """What ``key.data`` holds for the listener and for a connection, while the server idles.

    Connects a plain socket and waits (at most ``timeout`` s) until the server
    has registered it, describes the two keys, then hangs up and waits until
    the server has let the connection go. The server must be idle otherwise.
    """
    with socket.create_connection(address, timeout=timeout):
        found: list[selectors.SelectorKey] = []
        _wait_until(lambda: _both_waiting(selector, found), timeout)
        lines = [
            f"listener:   {describe_data(found[0].data)}",
            f"connection: {describe_data(found[1].data)}",
        ]
    _wait_until(
        lambda: not _visible_keys(selector, lambda name: name.startswith("server/")), timeout
    )
    return "\n".join(lines)


def _both_waiting(selector: selectors.BaseSelector, found: list[selectors.SelectorKey]) -> bool:
    """True once the listener and a connection are registered and waiting; their keys go in ``found``."""
    listener = _visible_keys(selector, lambda name: name == "server")
    connection = _visible_keys(selector, lambda name: name.startswith("server/"))
    keys = listener[:1] + connection[:1]
    if len(keys) < 2 or any(isinstance(key.data, Future) and key.data.done for key in keys):
        return False
    found[:] = keys
    return True


def describe_data(data: object) -> str:
    """``key.data`` in a few words: a callback's name, a Future and its task, asyncio's Handles."""
    if isinstance(data, Future):
        waiting = [getattr(fn, "__self__", None) for fn in data._callbacks]
        tasks = ", ".join(task.name for task in waiting if isinstance(task, Task))
        return f"{data!r} -> Task.step of {tasks or 'nobody'}"
    if isinstance(data, tuple):
        return "(" + ", ".join(_handle(item) for item in data) + ")"
    if callable(data):
        return f"{getattr(data, '__qualname__', repr(data))}()"
    return repr(data)


def _handle(item: object) -> str:
    callback = getattr(item, "_callback", None)  # asyncio.Handle keeps its callback here
    if callback is None:
        return repr(item)
    return f"<{type(item).__name__} {getattr(callback, '__qualname__', '?')}()>"


def _visible_keys(
    selector: selectors.BaseSelector, wanted: Callable[[str], bool]
) -> list[selectors.SelectorKey]:
    for _ in range(100):  # the map may change while we read it: read it again
        try:
            keys = list(selector.get_map().values())
            break
        except RuntimeError:
            continue
    else:
        return []
    actor_of = getattr(selector, "actor_of", lambda fileobj: None)
    return [key for key in keys if (actor_of(key.fileobj) or "") and wanted(actor_of(key.fileobj))]


def _wait_until(condition: Callable[[], bool], timeout: float) -> None:
    deadline, pause = time.monotonic() + timeout, threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"still waiting after {timeout!r} s")
        pause.wait(0.005)


# -- the four styles side by side ---------------------------------------------------------


@dataclass(frozen=True)
class StyleRun:
    """One style's run: the clients' results and what its selector did."""

    style: str
    selector: str  # the class under the recording, e.g. EpollSelector
    results: tuple[EchoResult, ...]
    timeline: Timeline
    waits: int = 0  # the generator scheduler's waits; 0 for the others

    @property
    def complete(self) -> bool:
        return all(result.complete for result in self.results)

    def registrations(self) -> dict[str, int]:
        """``register()`` calls per lane: ``server`` (the listener) and each ``server/conn-N``."""
        counts: dict[str, int] = {}
        for event in self.timeline.events(action="register"):
            counts[event.actor] = counts.get(event.actor, 0) + 1
        return counts

    def registration_text(self) -> tuple[str, str]:
        """How often the listener and each connection were registered, in words that do not change between runs."""
        counts = self.registrations()
        listener = counts.pop("server", 0)
        if (
            self.waits and sum(counts.values()) + listener == self.waits
        ):  # the scheduler registers on every yield
            return f"once per wait ({listener})", "once per wait"
        per_connection = set(counts.values())
        if len(per_connection) > 1:
            return _times(listener), "varies"
        return _times(listener), (_times(per_connection.pop()) if per_connection else "-")

    @property
    def polls(self) -> bool:
        """Did the loop ever call ``select(0)``, i.e. look without waiting?"""
        return any(
            event.detail.startswith("poll") for event in self.timeline.events(action="select")
        )

    def __str__(self) -> str:
        listener, conn = self.registration_text()
        head = f"{self.style} on {self.selector}: listener registered {listener}, each connection {conn}"
        return "\n".join([head, *map(str, self.results)])


def _times(count: int) -> str:
    return {0: "never", 1: "once", 2: "twice"}.get(count, f"{count} times")


def run_style(style: str, clients: int = 3, *, timeout: float = TIMEOUT) -> StyleRun:
    """Serve ``clients`` `EchoClient`s with one of `STYLES`; return what happened.

    Every thread, loop and socket is closed on return. Raises `ValueError` for
    an unknown style or a number of clients outside 1..`MAX_CLIENTS`.
    """
    _check_clients(clients)
    if style == "callbacks":
        timeline = Timeline()
        with EchoServer(timeline=timeline) as server:
            inner = type(server.loop.selector.inner).__name__  # type: ignore[union-attr]
            results = run_clients(server.address, clients, timeout=timeout)  # type: ignore[arg-type]
        return StyleRun(style, inner, tuple(results), _only_selector(timeline))
    if style not in STYLES:
        raise ValueError(f"style must be one of {', '.join(map(repr, STYLES))}, got {style!r}")
    sel = ServerSelector(selectors.DefaultSelector())
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        sel.label(listener, "server")
        address = listener.getsockname()[:2]
        waits, results = _serve(
            style, sel, listener, lambda: run_clients(address, clients, timeout=timeout)
        )
    return StyleRun(style, type(sel.inner).__name__, tuple(results), sel.timeline, waits)


def _serve(
    style: str,
    sel: ServerSelector,
    listener: socket.socket,
    clients: Callable[[], list[EchoResult]],
) -> tuple[int, list[EchoResult]]:
    if style == "generators":
        with Scheduler(sel) as sched:
            sched.spawn(echo_server(sched, listener))
            sched.start()
            results = clients()
        return sched.waits, results
    with LoopThread(asyncio.SelectorEventLoop(sel)) as runner:
        if style == "asyncio Protocol":
            runner.run(runner.loop.create_server(EchoProtocol, sock=listener))
        else:
            runner.run(asyncio.start_server(handle_echo, sock=listener))
        return 0, clients()


def _only_selector(timeline: Timeline) -> Timeline:
    """A copy of ``timeline`` with only the selector's events (EchoServer also records its socket calls)."""
    events = selector_events(timeline)
    times = iter(
        [0.0, *(event.t for event in events)]
    )  # the copy's clock replays the original times
    copy = Timeline(clock=lambda: next(times))
    for event in events:
        copy.record(event.actor, event.action, event.fd, event.mask, event.nbytes, event.detail)
    return copy


def compare(runs: Mapping[str, StyleRun] | Sequence[StyleRun]) -> str:
    """A table: each style's selector class, its registrations, whether it polls, whether every echo came back."""
    rows = list(runs.values()) if isinstance(runs, Mapping) else list(runs)
    header = (
        "style",
        "selector",
        "listener registered",
        "each connection",
        "select(0) polls",
        "echoes",
    )
    table = [header]
    for run in rows:
        done = sum(result.complete for result in run.results)
        polls = "yes" if run.polls else "no"
        table.append(
            (
                run.style,
                run.selector,
                *run.registration_text(),
                polls,
                f"{done}/{len(run.results)} complete",
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in table
    )


def _check_clients(clients: object) -> None:
    if isinstance(clients, bool) or not isinstance(clients, int) or not 1 <= clients <= MAX_CLIENTS:
        raise ValueError(f"clients must be an int in 1..{MAX_CLIENTS}, got {clients!r}")


# -- the widget ------------------------------------------------------------------------------


class StylesLab(ReportFront):
    """Choose a style and a number of clients, press Run: the selector's timeline and the results.

    Attributes: the controls `style` (ToggleButtons over `STYLES`), `clients`
    and `run_button`; the Output `out`; `widget`, the whole VBox; `last`, the
    last `StyleRun` (or None). Its text repr and `text()` are deterministic.
    """

    def __init__(self, style: str, clients: int) -> None:
        import ipywidgets as widgets

        css = {"description_width": "6em"}
        self.style = widgets.ToggleButtons(
            options=list(STYLES), value=style, description="style", style=css
        )
        self.clients = widgets.IntSlider(
            clients, min=1, max=MAX_CLIENTS, description="clients", style=css
        )
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.out = widgets.Output()
        self._adopt(widgets.VBox([self.style, self.clients, self.run_button, self.out]))
        self.run_button.on_click(weak_callback(self.run))
        self.last: StyleRun | None = None

    def run(self) -> StyleRun | None:
        """What Run does. Returns the `StyleRun`, or None if it failed (shown as one line)."""
        style, clients = self.style.value, self.clients.value
        doing = f"running the {style} server with {clients} clients ..."
        return self._run_and_report(doing, lambda: run_style(style, clients), _plot_output)

    def __repr__(self) -> str:
        last = (
            "not run yet"
            if self.last is None
            else f"last run: {self.last.style}, {len(self.last.results)} clients"
        )
        return f"<StylesLab: {len(STYLES)} styles; {last}>"


def styles_lab(style: str = "callbacks", clients: int = 3) -> StylesLab:
    """The widget. Raises `ValueError` for an unknown style or ``clients`` outside 1..`MAX_CLIENTS`."""
    if style not in STYLES:
        raise ValueError(f"style must be one of {', '.join(map(repr, STYLES))}, got {style!r}")
    _check_clients(clients)
    return StylesLab(style, clients)


def _plot_output(run: StyleRun) -> dict[str, Any]:
    """The run's selector timeline as a PNG display output, drawn on a figure pyplot never sees."""
    title = f"{run.style}: what the selector did"
    return timeline_output(
        run.timeline, title, max_height=8.0, describe_error=describe_exception, end="\n"
    )
