"""The ping-pong benchmark: server CPU per echoed message, in rounds, summarised into `Row`s.

One round of one server at one size (`_measure`): the load connects, warms
up, then the server reports its CPU and the bytes it received over the
measured exchange, and the load closes. An unmeasured warm-up round comes
first; then the rounds are interleaved (round 1 of every server and size,
then round 2...) so that a noisy neighbour hurts every server alike.
"""

from __future__ import annotations

import importlib.util
import statistics
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace

from .args import FLOOR, BenchOptions
from .children import REPLY_TIMEOUT, Child, start_children
from .report import size_name
from .resources import ensure_nofile, nofile_for
from .results import Row, Sample

__all__ = ["run_benchmark"]

#: The unmeasured warm-up round keeps first-use costs out of the numbers:
#: bytecode specialisation, and glibc malloc's mmap threshold, which asyncio's
#: 256 KiB recv() buffers pay for (15 µs per message) until it has risen.
WARMUP_MESSAGES, WARMUP_SECONDS = 2_000, 0.1


def _available(kind: str) -> bool:
    """False only for uvloop when it is not installed."""
    return not kind.startswith("uvloop") or importlib.util.find_spec("uvloop") is not None


def _measure(
    server: Child, load: Child, kind: str, port: int, size: int, options: BenchOptions
) -> Sample:
    """One round: connect, warm up, then CPU and counts over the measured exchange, close."""
    timeout = options.seconds + REPLY_TIMEOUT
    load.call("connect", port, options.connections, REPLY_TIMEOUT / 2)
    load.call(
        "exchange", size, 2 * options.connections, timeout, REPLY_TIMEOUT / 2, timeout=timeout
    )
    server.call("begin")
    sent, wall = load.call(
        "exchange", size, options.messages, options.seconds, REPLY_TIMEOUT / 2, timeout=timeout
    )
    cpu, user, system, received = server.call("end")
    load.call("close", REPLY_TIMEOUT / 2)
    return Sample(kind, size, cpu, user, system, sent, int(received) // size, wall)


def run_benchmark(
    options: BenchOptions, progress: Callable[[str], None] | None = None
) -> list[Row]:
    """Measure every available server in ``options``; return one `Row` per server and size.

    An unmeasured warm-up round first, then the rounds, interleaved. Raises
    `RuntimeError` naming the limit if the file descriptors do not suffice,
    and `RuntimeError` or `TimeoutError` naming a child that fails or hangs.
    """
    kinds = [kind for kind in options.servers if _available(kind)]
    nofile = nofile_for(options.connections)
    ensure_nofile(nofile)  # fails early, naming the limit
    with ExitStack() as stack:
        load, servers, ports = start_children(stack, kinds, options.selector, nofile)
        warm = replace(
            options,
            messages=min(options.messages, WARMUP_MESSAGES),
            seconds=min(options.seconds, WARMUP_SECONDS),
        )
        for size in options.sizes:
            for kind in kinds:
                _measure(servers[kind], load, kind, ports[kind], size, warm)
        samples = []
        for number in range(1, options.rounds + 1):
            for size in options.sizes:
                for kind in kinds:
                    samples.append(_measure(servers[kind], load, kind, ports[kind], size, options))
                    if progress:
                        progress(_progress_line(number, options.rounds, samples[-1]))
    return _summarise(samples, options)


def _progress_line(number: int, rounds: int, sample: Sample) -> str:
    """One line per measurement, for stderr."""
    return (
        f"round {number}/{rounds}  {sample.server:<22} {size_name(sample.size):>8}"
        f"  {sample.us_per_message:8.1f} µs/msg  ({sample.user_share:.0%} user)"
    )


def _summarise(samples: list[Sample], options: BenchOptions) -> list[Row]:
    """One `Row` per size and server, in table order."""
    rows = []
    for size in options.sizes:
        floor = _median_us(samples, FLOOR, size)
        for kind in options.servers:
            mine = tuple(s for s in samples if s.server == kind and s.size == size)
            rows.append(_row(kind, size, mine, floor))
    return rows


def _row(kind: str, size: int, mine: tuple[Sample, ...], floor: float | None) -> Row:
    """The medians of one server's samples at one size, and whether the counts agree."""
    if not mine:
        return Row(kind, size, note="not installed" if not _available(kind) else "not measured")
    us = statistics.median(s.us_per_message for s in mine)
    user = statistics.median(s.user_share for s in mine)
    rate = statistics.median(s.sent / s.wall_s for s in mine)
    sent, echoed = sum(s.sent for s in mine), sum(s.echoed for s in mine)
    note = "" if sent == echoed else f"COUNT MISMATCH: load {sent}, server {echoed}"
    return Row(kind, size, us, user, us / floor if floor else None, rate, sent, echoed, note, mine)


def _median_us(samples: list[Sample], kind: str, size: int) -> float | None:
    """The median µs per message of one server at one size, if measured."""
    mine = [s.us_per_message for s in samples if s.server == kind and s.size == size]
    return statistics.median(mine) if mine else None
