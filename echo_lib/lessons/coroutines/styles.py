"""The four styles side by side: serve the same clients with each, compare what the selector did.

1. **callbacks**: `EchoServer`, the seed's style; ``key.data`` is a function.
2. **generators**: the crawler's `Scheduler`; ``key.data`` is a `Future`.
3. **asyncio Protocol**: `EchoProtocol`, called by the loop's transports.
4. **asyncio streams**: `handle_echo`, a coroutine with ``await``.

`run_style` runs one (every thread, loop and socket closed on return) into a
`StyleRun`; `compare` puts runs in a table that does not change between runs.
"""

from __future__ import annotations

import asyncio
import selectors
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ...core.events import Event
from ...core.timeline import Timeline
from ...driver.asyncio_thread import LoopThread
from ...driver.client import EchoResult
from ...driver.coroutines import Scheduler
from ...driver.recording import RecordingSelector
from ...driver.server import EchoServer
from .observe import TIMEOUT, ServerSelector, check_clients, run_clients
from .servers import EchoProtocol, echo_server, handle_echo

__all__ = ["SELECTOR_ACTIONS", "STYLES", "StyleRun", "compare", "run_style", "selector_events"]

STYLES: tuple[str, ...] = ("callbacks", "generators", "asyncio Protocol", "asyncio streams")
#: What a selector itself does; a timeline filtered to these is comparable across the styles.
SELECTOR_ACTIONS: tuple[str, ...] = ("register", "modify", "unregister", "select", "ready")


def selector_events(timeline: Timeline) -> list[Event]:
    """Only what the selector did (register, modify, unregister, select, ready)."""
    return timeline.events(action=SELECTOR_ACTIONS)


def check_style(style: object) -> str:
    """``style`` if it is one of `STYLES`; raise `ValueError` otherwise."""
    if style not in STYLES:
        raise ValueError(f"style must be one of {', '.join(map(repr, STYLES))}, got {style!r}")
    return style  # type: ignore[return-value]


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
        """How often the listener and each connection were registered, in words stable per run."""
        counts = self.registrations()
        listener = counts.pop("server", 0)
        if self.waits and sum(counts.values()) + listener == self.waits:  # once per yield
            return f"once per wait ({listener})", "once per wait"
        per_connection = set(counts.values())
        if len(per_connection) > 1:
            return _times(listener), "varies"
        return _times(listener), (_times(per_connection.pop()) if per_connection else "-")

    @property
    def polls(self) -> bool:
        """Did the loop ever call ``select(0)``, i.e. look without waiting?"""
        selects = self.timeline.events(action="select")
        return any(event.detail.startswith("poll") for event in selects)

    def __str__(self) -> str:
        listener, conn = self.registration_text()
        head = (
            f"{self.style} on {self.selector}: "
            f"listener registered {listener}, each connection {conn}"
        )
        return "\n".join([head, *map(str, self.results)])


def _times(count: int) -> str:
    return {0: "never", 1: "once", 2: "twice"}.get(count, f"{count} times")


def run_style(style: str, clients: int = 3, *, timeout: float = TIMEOUT) -> StyleRun:
    """Serve ``clients`` `EchoClient`s with one of `STYLES`; return what happened.

    Every thread, loop and socket is closed on return. Raises `ValueError` for
    an unknown style or a number of clients outside 1..`MAX_CLIENTS`.
    """
    check_clients(clients)
    if check_style(style) == "callbacks":
        timeline = Timeline()
        with EchoServer(timeline=timeline) as server:
            assert isinstance(server.loop.selector, RecordingSelector)
            inner = type(server.loop.selector.inner).__name__
            results = run_clients(server.address, clients, timeout=timeout)  # type: ignore[arg-type]
        return StyleRun(style, inner, tuple(results), _only_selector(timeline))
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
    sel: RecordingSelector,
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
    """A copy of ``timeline``, only the selector's events (EchoServer records its sockets too)."""
    events = selector_events(timeline)
    times = iter([0.0, *(event.t for event in events)])  # the copy's clock replays the times
    copy = Timeline(clock=lambda: next(times))
    for event in events:
        copy.record(event.actor, event.action, event.fd, event.mask, event.nbytes, event.detail)
    return copy


_HEADER = ("style", "selector", "listener registered", "each connection", "select(0) polls")


def compare(runs: Mapping[str, StyleRun] | Sequence[StyleRun]) -> str:
    """A table: each style's selector, registrations, whether it polls, whether echoes came back."""
    rows = list(runs.values()) if isinstance(runs, Mapping) else list(runs)
    table = [(*_HEADER, "echoes")]
    for run in rows:
        done = sum(result.complete for result in run.results)
        echoes = f"{done}/{len(run.results)} complete"
        polls = "yes" if run.polls else "no"
        table.append((run.style, run.selector, *run.registration_text(), polls, echoes))
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in table
    )
