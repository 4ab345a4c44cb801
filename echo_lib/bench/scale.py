"""The scale run: N concurrent connections to one server, each echoing a unique payload.

The load connects in batches of `CONNECT_BATCH`, which never overflow the
listen backlog: after each batch the parent waits until the server has
accepted them all. Then every connection sends its payload (16 B to 4 KiB)
and checks its echo byte for byte, and all close. `run_scale` runs the
server in a child process and measures it; `record_scale_run` runs it in
this process and keeps every event it records (notebook 06).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from ..core.checks import check_int, check_timeout
from ..core.timeline import Timeline
from ..driver.implementations import resolve_selector
from ..driver.server import EchoServer
from .args import BenchOptions
from .children import REPLY_TIMEOUT, Child, load_process, server_process, wait_connections
from .load import PER_SOURCE, scale_size, source_address
from .resources import ensure_nofile, nofile_for
from .results import ScaleResult

__all__ = ["RecordedRun", "record_scale_run", "run_scale"]

CONNECT_BATCH = 500  # the scale run connects this many at a time


def run_scale(
    options: BenchOptions, kind: str = "echoserver", progress: Callable[[str], None] | None = None
) -> ScaleResult:
    """``options.connections`` concurrent connections to one server, each echoing a unique payload.

    Raises `RuntimeError` naming the limit if the file descriptors do not
    suffice or if a child fails (a wrong echo names its connection), and
    `TimeoutError` once ``options.deadline`` seconds have passed.
    """
    nofile, stop_at = nofile_for(options.connections), time.monotonic() + options.deadline
    ensure_nofile(nofile)  # fails early, naming the limit
    with ExitStack() as stack:
        server = Child(f"server {kind!r}", server_process, kind, options.selector, nofile, True)
        stack.callback(server.stop)
        load = Child("load process", load_process, nofile)
        stack.callback(load.stop)
        port, _ = server.answer("start"), load.answer("start")
        server.call("begin")
        times, verified = _scale_phases(
            _remote_wait(server), load, port, options.connections, stop_at, progress
        )
        cpu_s, stats = server.call("end")[0], server.call("timeline")
        peaks = (server.call("maxrss"), load.call("maxrss"))  # the peaks, also after closing
    return _scale_result(kind, options, times, verified, (*peaks, cpu_s), stats)


def _scale_result(
    kind: str,
    options: BenchOptions,
    times: list[float],
    verified: int,
    costs: tuple[int, int, float],
    stats: tuple[int, int, int] | None,
) -> ScaleResult:
    """The `ScaleResult` from the phase times, (server, load peak KiB, server CPU) and stats."""
    n = options.connections
    phases = _phase_seconds(times)
    server_maxrss, load_maxrss, cpu_s = costs
    return ScaleResult(
        server=kind,
        selector=resolve_selector(options.selector).__name__,
        connections=n,
        payload_bytes=_payload_bytes(n),
        verified=verified,
        connect_s=phases["connect"],
        echo_s=phases["echo"],
        close_s=phases["close"],
        wall_s=times[-1] - times[0],
        server_maxrss_kib=server_maxrss,
        load_maxrss_kib=load_maxrss,
        server_cpu_s=cpu_s,
        sources=len({source_address(index) for index in range(0, n, PER_SOURCE)}),
        **_recorded(stats),
    )


def _recorded(stats: tuple[int, int, int] | None) -> dict[str, Any]:
    """The recording fields of a `ScaleResult`, from (recorded, dropped, bytes of storage)."""
    if stats is None:
        return {}  # the server did not record: the fields stay None
    recorded, dropped, storage = stats
    per_event = storage / max(recorded - dropped, 1)
    return {"events_recorded": recorded, "events_dropped": dropped, "bytes_per_event": per_event}


def _phase_seconds(times: list[float]) -> dict[str, float]:
    """Wall seconds of "connect", "echo" and "close", from the four times around them."""
    spans = (later - earlier for earlier, later in zip(times, times[1:], strict=False))
    return dict(zip(("connect", "echo", "close"), spans, strict=True))


def _payload_bytes(connections: int) -> int:
    """The bytes the scale run's connections send in all (each echoes them once)."""
    return sum(scale_size(i) for i in range(connections))


# (count, timeout): wait until the server has ``count`` connections; return it.
_WaitOpen = Callable[[int, float], int]


def _remote_wait(server: Child) -> _WaitOpen:
    """`_WaitOpen` for a server in a child process."""
    return lambda count, timeout: server.call(
        "wait_connections", count, timeout, timeout=timeout + REPLY_TIMEOUT
    )


def _scale_phases(
    wait_open: _WaitOpen,
    load: Child,
    port: int,
    n: int,
    stop_at: float,
    progress: Callable[[str], None] | None,
) -> tuple[list[float], int]:
    """Connect, echo, close; return the times between the phases and the count verified."""
    times = [time.perf_counter()]
    _scale_connect(wait_open, load, port, n, stop_at, progress)
    times.append(time.perf_counter())
    verified, _ = load.call(
        "exchange", None, n, _left(stop_at), REPLY_TIMEOUT, timeout=_left(stop_at)
    )
    times.append(time.perf_counter())
    load.call("close", min(_left(stop_at), REPLY_TIMEOUT), timeout=_left(stop_at))
    wait_open(0, min(_left(stop_at), REPLY_TIMEOUT))
    times.append(time.perf_counter())
    return times, verified


def _scale_connect(
    wait_open: _WaitOpen,
    load: Child,
    port: int,
    n: int,
    stop_at: float,
    progress: Callable[[str], None] | None,
) -> None:
    """Connect in batches; after each, wait until the server has accepted them all."""
    total = 0
    while total < n:
        batch = min(CONNECT_BATCH, n - total)
        total = load.call(
            "connect", port, batch, min(_left(stop_at), REPLY_TIMEOUT), timeout=_left(stop_at)
        )
        wait_open(total, min(_left(stop_at), REPLY_TIMEOUT))
        if progress and (total % 2000 == 0 or total == n):
            progress(f"{total} connections open")


@dataclass(frozen=True)
class RecordedRun:
    """A scale run whose server ran in this process, recording into ``timeline``."""

    connections: int
    verified: int  # connections whose unique payload came back byte-exact
    payload_bytes: int
    phase_s: dict[str, float]  # wall seconds of "connect", "echo" and "close"
    timeline: Timeline

    def __str__(self) -> str:
        """What happened, without times: the same on every run that succeeds."""
        events = self.timeline.events()  # once: a 10,000-connection run has about 92,000
        accepts = sum(event.action == "accept" for event in events)
        moved = {
            action: sum(e.nbytes for e in events if e.action == action)
            for action in ("recv", "send")
        }
        closes = sum(e.action == "close" and "/" in e.actor for e in events)  # not the listener's
        return (
            f"{self.verified:,}/{self.connections:,} connections echoed "
            f"{self.payload_bytes:,} bytes byte-exact\n"
            f"recorded: {accepts:,} accepts, {moved['recv']:,} bytes in and {moved['send']:,} out, "
            f"{closes:,} connections closed; {self.timeline.dropped} events dropped"
        )


def record_scale_run(
    connections: int = 10_000,
    *,
    selector: str = "default",
    deadline: float = 60.0,
    timeline: Timeline | None = None,
) -> RecordedRun:
    """``connections`` concurrent connections to an `EchoServer` here, every event recorded.

    The server runs in its own loop thread here and records into ``timeline``
    (by default a new one that keeps every event); the load runs in a child
    process, as in the scale run: connect in batches, echo one unique payload
    per connection, close. Raises `ValueError` for fewer than 1 connection or
    a bad ``deadline``, `RuntimeError` naming the limit when the file
    descriptors do not suffice or the load fails, and `TimeoutError` after
    ``deadline`` seconds.
    """
    check_int("connections", connections, 1)
    nofile, stop_at = (
        nofile_for(connections),
        time.monotonic() + check_timeout(deadline, "deadline"),
    )
    ensure_nofile(nofile)
    timeline = timeline if timeline is not None else Timeline(maxlen=None)
    with ExitStack() as stack:
        server = stack.enter_context(EchoServer(selector=selector, timeline=timeline))
        load = Child("load process", load_process, nofile)
        stack.callback(load.stop)
        load.answer("start")
        wait_open = functools.partial(wait_connections, lambda: server.connections)
        port: int = server.address[1]  # type: ignore[index]
        times, verified = _scale_phases(wait_open, load, port, connections, stop_at, None)
    return RecordedRun(
        connections, verified, _payload_bytes(connections), _phase_seconds(times), timeline
    )


def _left(stop_at: float) -> float:
    """Seconds left before the deadline. Raises `TimeoutError` once it has passed."""
    left = stop_at - time.monotonic()
    if left <= 0:
        raise TimeoutError("the scale run passed its --deadline")
    return left
