"""Watching any echo server the same way: lanes named as `EchoServer`'s, clients, ``key.data``.

`ServerSelector` gives a `RecordingSelector` whose lanes read ``server``,
``server/conn-1``, ... for every version: also for asyncio, which registers
plain fds, and for the scheduler, which registers a socket again on every
wait. `run_clients` checks a server with the same `EchoClient` run every
time; `peek_keys` says what ``key.data`` holds while the server idles.
"""

from __future__ import annotations

import selectors
import socket
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

from ...core.checks import check_int
from ...core.timeline import Timeline
from ...driver.client import DEFAULT_MESSAGES, EchoClient, EchoResult
from ...driver.coroutines import Future, Task
from ...driver.implementations import registered_keys
from ...driver.recording import RecordingSelector
from ...driver.wait import wait_until

__all__ = [
    "MAX_CLIENTS",
    "EchoServerLanes",
    "ServerSelector",
    "check_clients",
    "describe_data",
    "peek_keys",
    "run_clients",
]

MAX_CLIENTS = 6
TIMEOUT = 5.0  # every wait of a run gives up after this long


class EchoServerLanes:
    """A `RecordingSelector` namer: lanes as `EchoServer` names them, for any server code.

    Label the listening socket ``"server"`` before it is registered. Anything
    registered before it is plumbing and stays off the timeline (asyncio's
    self-pipe); anything new after it is ``server/conn-1``, ``server/conn-2``...
    A socket object keeps its name when it is unregistered and registered
    again (the scheduler does that on every wait); a plain fd (asyncio's
    registrations) gets a new name once it was unregistered.
    """

    def __init__(self) -> None:
        self._known: weakref.WeakKeyDictionary[Any, str | None] = weakref.WeakKeyDictionary()
        self._listening = False
        self._connections = 0

    def __call__(self, fileobj: Any, given: str | None) -> str | None:
        if given != "":
            name = given
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


def ServerSelector(  # named like the class it once was: notebook 08 calls it so
    selector: selectors.BaseSelector | None = None, timeline: Timeline | None = None
) -> RecordingSelector:
    """A `RecordingSelector` around ``selector`` whose lanes read as `EchoServer`'s do."""
    return RecordingSelector(selector, timeline, actor="server", namer=EchoServerLanes())


def check_clients(clients: object) -> int:
    """``clients`` if it is an int in 1..`MAX_CLIENTS`; raise `ValueError` otherwise."""
    return check_int("clients", clients, 1, MAX_CLIENTS)


def run_clients(
    address: tuple[str, int],
    clients: int = 3,
    messages: Sequence[bytes] = DEFAULT_MESSAGES,
    *,
    timeout: float = TIMEOUT,
) -> list[EchoResult]:
    """Run ``clients`` `EchoClient`s at once (client-1, client-2, ...); return their results.

    Each runs its own loop in a thread; every thread is stopped on return. A
    client still waiting after ``timeout`` s gives its partial result.
    Raises `ValueError` for ``clients`` outside 1..`MAX_CLIENTS`.
    """
    check_clients(clients)
    started: list[EchoClient] = []
    deadline = time.monotonic() + timeout
    try:
        for i in range(1, clients + 1):
            client = EchoClient(
                address, messages, name=f"client-{i}", record=False, timeout=timeout
            )
            started.append(client.start())
        return [_result(client, deadline) for client in started]
    finally:
        for client in started:
            if client.loop is not None:
                client.loop.stop()


def _result(client: EchoClient, deadline: float) -> EchoResult:
    try:
        return client.join(max(deadline - time.monotonic(), 0.01))
    except TimeoutError:
        return client.result()


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
        wait_until(lambda: _both_waiting(selector, found), timeout, what="both keys registered")
        lines = [
            f"listener:   {describe_data(found[0].data)}",
            f"connection: {describe_data(found[1].data)}",
        ]
    wait_until(lambda: not _connections(selector), timeout, what="the connection let go")
    return "\n".join(lines)


def _both_waiting(selector: selectors.BaseSelector, found: list[selectors.SelectorKey]) -> bool:
    """True once the listener and a connection are registered and waiting (keys in ``found``).

    A coroutine registers its Future before it yields it, and only then does
    its Task add ``step`` to it: until that callback is there, nobody waits yet.
    """
    listener = _visible_keys(selector, lambda name: name == "server")
    keys = listener[:1] + _connections(selector)[:1]
    if len(keys) < 2 or any(_not_waited_on(key.data) for key in keys):
        return False
    found[:] = keys
    return True


def _not_waited_on(data: object) -> bool:
    """A Future already done, or one no Task has yet added its ``step`` to."""
    return isinstance(data, Future) and (data.done or not data.callbacks)


def describe_data(data: object) -> str:
    """``key.data`` in a few words: a callback's name, a Future and its task, asyncio's Handles."""
    if isinstance(data, Future):
        waiting = [getattr(fn, "__self__", None) for fn in data.callbacks]
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


def _connections(selector: selectors.BaseSelector) -> list[selectors.SelectorKey]:
    return _visible_keys(selector, lambda name: name.startswith("server/"))


def _visible_keys(
    selector: selectors.BaseSelector, wanted: Callable[[str], bool]
) -> list[selectors.SelectorKey]:
    keys = registered_keys(selector)
    actor_of = getattr(selector, "actor_of", lambda fileobj: None)
    return [key for key in keys if (actor_of(key.fileobj) or "") and wanted(actor_of(key.fileobj))]
