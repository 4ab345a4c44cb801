"""Checkers for notebook 08 (from callbacks to asyncio): generator coroutines on the tiny scheduler.

Both run the learner's code on `echo_lib.driver.coroutines.Scheduler`, in a
background thread, against real `EchoClient`s on loopback, and stop at the
first failure so that what they report is the same on every run.
"""

from __future__ import annotations

import contextlib
import inspect
import selectors
import socket
from collections.abc import Callable, Generator, Mapping
from types import MappingProxyType
from typing import Any

from ..driver.client import EchoClient, EchoResult
from ..driver.coroutines import Future, Scheduler
from ..driver.wait import wait_until
from . import Feedback

__all__ = [
    "OPERATIONS",
    "check_awaitable_future",
    "check_eager_echo_handler",
    "check_protocol_prediction",
]

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
Handler = Callable[[Scheduler, socket.socket], Generator[Any, Any, Any]]

BIG = 2 * 1024 * 1024  # the big client's payload: far more than the small buffers hold
SMALL_BUFFER = 4096  # the server's SO_SNDBUF and the big client's SO_RCVBUF
TIMEOUT = 5.0
SMALL_ECHOES = "with 3 clients sending 42 bytes each"
EAGER = (
    "waited for EVENT_WRITE before sending a short echo: the socket is almost always writable, "
    "so call send() at once and yield sched.writable(sock) only when it did not take everything"
)


# -- exercise 1: predict what a generator and a coroutine accept ----------------------

#: What the prediction is about: each is tried on a new generator and a new native coroutine.
OPERATIONS: Mapping[str, Callable[[Any], Any]] = MappingProxyType(
    {
        "next": next,
        "send": lambda obj: obj.send(None),
        "iter": iter,
        "__await__": lambda obj: obj.__await__(),
    }
)
_WHY = {
    "generator": {
        "next": "a generator is an iterator: next() runs it to its first yield",
        "send": "send(None) starts a generator, as Task does with ours",
        "iter": "a generator is its own iterator",
        "__await__": "a plain generator has no __await__, so await refuses it",
    },
    "coroutine": {
        "next": "a native coroutine has no __next__: it is not an iterator, "
        "not a generator in disguise",
        "send": "send() is how a Task drives a coroutine, as our Task drives a generator",
        "iter": "a coroutine has no __iter__ either, so a plain generator cannot `yield from` it",
        "__await__": "__await__() gives the iterator `await` drives, as `yield from` a generator",
    },
}


def _generator() -> Generator[int, None, None]:
    yield 1


async def _coroutine() -> int:
    return 1


def _outcome(kind: str, operation: str) -> str:
    """'' if ``operation`` works on a new ``kind`` (StopIteration counts), else the error raised."""
    obj = _generator() if kind == "generator" else _coroutine()
    try:
        OPERATIONS[operation](obj)
    except StopIteration:
        pass
    except (TypeError, AttributeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        obj.close()  # a coroutine never started would warn that it was never awaited
    return ""


def check_protocol_prediction(prediction: Mapping[str, Mapping[str, Any]]) -> Feedback:
    """Compare ``prediction[kind][operation]`` (True: it works) with what Python does, per kind."""
    feedback = Feedback("protocol prediction")
    if not isinstance(prediction, Mapping):
        example = "{'generator': {'next': True, ...}, ...}"
        feedback.expect(False, f"expected a dict such as {example}, got {prediction!r}")
        return feedback
    for kind in ("generator", "coroutine"):
        guesses = prediction.get(kind) or {}
        for operation in OPERATIONS:
            guess = guesses.get(operation) if isinstance(guesses, Mapping) else None
            if not isinstance(guess, bool):
                choices = "predict True (it works) or False (it raises)"
                feedback.expect(False, f"{kind} {operation}: {choices}, got {guess!r}")
                continue
            error = _outcome(kind, operation)
            said = "works" if guess else "raises"
            did = f"raises {error}" if error else "works"
            feedback.expect(
                guess == (not error),
                f"{kind} {operation}: you predicted it {said}; it {did}: {_WHY[kind][operation]}",
            )
    return feedback


class _Harness:
    """A listener, a scheduler in a thread, and an accept task that keeps every accepted socket."""

    def __init__(self, handler: Handler, scheduler: Scheduler, sndbuf: int | None = None) -> None:
        self.handler, self.sched = handler, scheduler
        self.accepted: list[socket.socket] = []
        self.handlers: list[Any] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        if sndbuf is not None:  # accepted sockets inherit it
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        self.listener.setblocking(False)
        self.address = self.listener.getsockname()[:2]

    def accept_loop(self) -> Generator[Future, int, None]:
        while True:
            yield self.sched.readable(self.listener)
            sock, _ = self.listener.accept()
            sock.setblocking(False)
            self.accepted.append(sock)
            coro = self.handler(self.sched, sock)
            if not isinstance(coro, Generator):
                raise TypeError(
                    f"{_name(self.handler)}(sched, sock) returned {coro!r}: it must be a "
                    "generator function (use yield)"
                )
            self.handlers.append(self.sched.spawn(coro))

    def __enter__(self) -> _Harness:
        self.sched.spawn(self.accept_loop())
        self.sched.start()
        return self

    def __exit__(self, *exc: object) -> None:
        try:  # failures were read before; stop() only cleans up here
            with contextlib.suppress(Exception):
                self.sched.stop()
        finally:
            for sock in self.accepted:
                sock.close()
            self.listener.close()

    def failure(self) -> BaseException | None:
        failed = self.sched.failures()
        return self.sched.error or (failed[0].exception if failed else None)

    def run_clients(self, clients: list[EchoClient], timeout: float = TIMEOUT) -> list[EchoResult]:
        """Start the clients; wait until all are done or a task failed; stop them; their results."""
        try:
            for client in clients:
                client.start()
            wait_until(lambda: all(c.done for c in clients) or self.failure() is not None, timeout)
        finally:
            for client in clients:
                if client.loop is not None:
                    client.loop.stop()
        return [client.result() for client in clients]

    def small_clients(self) -> list[EchoClient]:
        """The 3 clients sending the seed's two short messages."""
        return [EchoClient(self.address, name=f"client-{i}", record=False) for i in (1, 2, 3)]

    def handlers_finished(self, timeout: float = 2.0) -> bool:
        return wait_until(lambda: all(task.done for task in self.handlers), timeout)


def _name(function: object) -> str:
    return getattr(function, "__name__", "your handler")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# -- exercise 2: send first, wait for EVENT_WRITE only when needed ----------------------


class _CheckScheduler(Scheduler):
    """A Scheduler that counts the waits for EVENT_WRITE and hands out ``future_class`` Futures."""

    def __init__(self, future_class: type[Future] = Future) -> None:
        super().__init__()
        self.future_class, self.write_waits = future_class, 0
        self.masks: list[Any] = []  # what ``yield from`` gave a handler that keeps them

    def _wait(self, sock: socket.socket, events: int) -> Future:
        future = self.future_class()
        self.selector.register(sock, events, future)
        self.waits += 1
        self.write_waits += events == WRITE
        return future


def check_eager_echo_handler(handler: Handler) -> Feedback:
    """Run ``handler(sched, sock)`` on the tiny scheduler for each connection, against real clients.

    First 3 clients with the seed's two short messages: every echo must come
    back, and no send() should have waited for EVENT_WRITE (the socket is
    writable; send at once). Then one client sending 2 MiB through 4 KiB
    buffers: send() takes only part, or raises BlockingIOError, and the rest
    must go out once the socket is writable (waiting for EVENT_WRITE, not
    retrying in a loop). Each handler must return at EOF with its socket
    closed. Returns `Feedback` naming the first problem.
    """
    name = _name(handler)
    feedback, sched = Feedback(name), _CheckScheduler()
    with _Harness(handler, sched, sndbuf=SMALL_BUFFER) as harness:
        results = harness.run_clients(harness.small_clients())
        lost = f"not every echo came back: {_worst(results)}"
        (  # each check runs only if the one before it passed
            _no_failure(feedback, harness, name, "with 3 short echoes")
            and feedback.expect(all(r.complete for r in results), f"{SMALL_ECHOES}, {lost}")
            and feedback.expect(sched.write_waits == 0, f"{name} {EAGER}")
            and _closed_at_eof(feedback, harness, name)
            and _big_echo(feedback, harness, sched, name)
            and _closed_at_eof(feedback, harness, name)
        )
    return feedback


def _big_echo(feedback: Feedback, harness: _Harness, sched: _CheckScheduler, name: str) -> bool:
    """2 MiB through 4 KiB buffers: it must all come back, with waits for EVENT_WRITE."""
    big = EchoClient(harness.address, [b"x" * BIG], name="big", record=False, rcvbuf=SMALL_BUFFER)
    result = harness.run_clients([big])[0]
    partial = (
        "the 2 MiB echo did not all come back: with small buffers send() takes only part of "
        "the data; keep the rest and send it once the socket is writable"
    )
    busy = (
        f"{name} echoed 2 MiB through a 4 KiB buffer without once waiting for EVENT_WRITE: "
        "retrying send() in a loop busy-waits and blocks every other connection; "
        "yield sched.writable(sock) instead"
    )
    return (
        _no_failure(feedback, harness, name, "with a 2 MiB echo through small buffers")
        and feedback.expect(result.complete, partial)
        and feedback.expect(sched.write_waits > 0, busy)
    )


def _no_failure(feedback: Feedback, harness: _Harness, name: str, when: str) -> bool:
    exc = harness.failure()
    if exc is None:
        return True
    if isinstance(exc, BlockingIOError):
        return feedback.expect(
            False,
            f"{when}, {name} raised BlockingIOError: a non-blocking send() raises it when the "
            "kernel's buffer is full; catch it, yield sched.writable(sock), and send the rest",
        )
    return feedback.expect(False, f"{when}, {name} raised {_describe(exc)}")


def _closed_at_eof(feedback: Feedback, harness: _Harness, name: str) -> bool:
    if not feedback.expect(
        harness.handlers_finished(),
        f"{name} did not return after its client closed: at EOF (recv() returned b'') return",
    ):
        return False
    return feedback.expect(
        all(sock.fileno() < 0 for sock in harness.accepted),
        f"{name} returned but left its socket open: use `with sock:`",
    )


def _worst(results: list[EchoResult]) -> str:
    return next((str(r) for r in results if not r.complete), "")


# -- exercise 3: `result = yield from future`, the step before `await` --------------------


def check_awaitable_future(future_class: type[Future]) -> Feedback:
    """Check ``future_class.__iter__``: ``result = yield from future``, the step before ``await``.

    First without sockets: a generator doing ``yield from future`` must yield
    the future itself, then, once resumed, return the future's result. Then
    an echo handler written with ``mask = yield from sched.readable(sock)``
    runs on the scheduler against 3 real clients. Returns `Feedback` naming
    the first problem.
    """
    feedback = Feedback("AwaitableFuture")
    subclass = isinstance(future_class, type) and issubclass(future_class, Future)
    not_one = f"AwaitableFuture must be a class that subclasses Future, got {future_class!r}"
    if feedback.expect(subclass, not_one) and _yield_from_works(feedback, future_class):
        _echo_with_yield_from(feedback, future_class)
    return feedback


def _echo_with_yield_from(feedback: Feedback, future_class: type[Future]) -> None:
    """An echo handler using ``yield from sched.readable(sock)`` must serve 3 clients."""
    sched = _CheckScheduler(future_class)
    with _Harness(lambda s, sock: _yield_from_echo(s, sock, sched.masks), sched) as harness:
        results = harness.run_clients(harness.small_clients())
        exc = harness.failure()
        wrong = [mask for mask in sched.masks if mask not in (READ, WRITE)]
        (  # each check runs only if the one before it passed
            feedback.expect(
                exc is None,
                "an echo handler using `mask = yield from sched.readable(sock)` raised "
                f"{exc and _describe(exc)}",
            )
            and feedback.expect(
                all(r.complete for r in results), f"not every echo came back: {_worst(results)}"
            )
            and feedback.expect(
                not wrong,
                f"yield from sched.readable(sock) gave {wrong[:1]!r}; expected the ready mask "
                "(1 for READ, 2 for WRITE)",
            )
        )


def _yield_from_works(feedback: Feedback, future_class: type[Future]) -> bool:
    """Without sockets: ``yield from future`` hands the Task the future, then gives its result."""
    future = future_class()
    return _iter_is_a_generator(feedback, future) and _yields_itself(feedback, future)


def _iter_is_a_generator(feedback: Feedback, future: Future) -> bool:
    try:
        iterator = future.__iter__()  # type: ignore[attr-defined]
    except Exception as exc:
        return feedback.expect(False, f"yield from future raised {_describe(exc)}")
    if inspect.isgenerator(iterator):
        iterator.close()
    return feedback.expect(
        inspect.isgenerator(iterator),
        f"AwaitableFuture.__iter__ returned {type(iterator).__name__!r}; make it a generator "
        "(yield self, then return self.result) so that the Task's send() reaches it",
    )


def _yields_itself(feedback: Feedback, future: Future) -> bool:
    gen = _waiter(future)
    try:
        first = gen.send(None)
    except StopIteration:
        at_once = "yield from future returned at once: first yield the future itself"
        return feedback.expect(False, f"{at_once}, so that the Task waits on it")
    except Exception as exc:
        return feedback.expect(False, f"yield from future raised {_describe(exc)}")
    handed = f"yield from future handed the Task {first!r}; it must hand over the future itself"
    if not feedback.expect(first is future, f"{handed} (yield self)"):
        gen.close()
        return False
    future.set_result(READ)
    return _returns_result(feedback, gen, future)


def _waiter(future: Future) -> Generator[Any, Any, Any]:
    return (yield from future)  # type: ignore[misc]


def _returns_result(feedback: Feedback, gen: Generator[Any, Any, Any], future: Future) -> bool:
    try:
        again = gen.send(future.result)  # what Task.step does
    except StopIteration as stop:
        return feedback.expect(
            stop.value == READ,
            f"once resumed, yield from future gave {stop.value!r}; it must give the future's "
            f"result ({READ!r}): return self.result",
        )
    except Exception as exc:
        return feedback.expect(False, f"once resumed, yield from future raised {_describe(exc)}")
    gen.close()
    again_text = f"once resumed, yield from future yielded {again!r} again"
    return feedback.expect(False, f"{again_text}; it must return the result after one yield")


def _yield_from_echo(
    sched: Scheduler, sock: socket.socket, masks: list[Any]
) -> Generator[Any, Any, None]:
    """The lesson's echo handler, written with ``yield from``; records each mask it is given."""
    with sock:
        while True:
            masks.append((yield from sched.readable(sock)))  # type: ignore[misc]
            data = sock.recv(65536)
            if not data:
                return
            while data:
                masks.append((yield from sched.writable(sock)))  # type: ignore[misc]
                data = data[sock.send(data) :]
