"""The checker of notebook 11 (the capstone): the learner's server against the gauntlet.

``check_server(serve)`` starts ``serve(listener, stop, selector=None)`` (the
contract is in `echo_lib.exercises.serving`) and attacks it in rounds, each
with a deadline, all seeded so that a run is the same every time:

=================  ==========================================================
crowd              300 clients at once, 1-16 KiB each, in random chunks
big                4 clients, 2-4 MiB each, through 16 KiB buffers: partial writes
half-close         40 clients send 128-256 KiB, half-close at once, read slowly
resets             20 clients reset mid-stream while 20 others are echoed
slow reader, hog   one client reads 1 KiB at a time; one sends 24 MiB, never reads
idle               50 clients connected and silent for half a second
=================  ==========================================================

Each round's figures (bytes exact, wall time, server CPU, the most bytes in
flight for one client, sockets left open, ``select()`` wake-ups) go into the
returned `GauntletFeedback`, which plots them as a scoreboard beside the
timeline of the learner's server. Problems name the mistake behind them.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..driver.wait import wait_until
from . import Feedback
from .clients import Client, close_all, drive, echo_clients
from .judges import IDLE, judge_idle, judge_round, judge_stop
from .scoreboard import GauntletFeedback, RoundResult
from .serving import KiB, MiB, ServerRun

__all__ = ["ROUNDS", "Round", "check_server", "play_round", "run_rounds"]

BUDGET = 20.0  # seconds for the whole gauntlet; each round has its own limit too
Serve = Callable[..., Any]


@dataclass(frozen=True)
class Round:
    """One round: its name, what it does, how to make its clients, its time limit in seconds."""

    name: str
    what: str
    clients: Callable[[random.Random], list[Client]]
    limit: float = 5.0
    inspect: Callable[[Feedback, ServerRun], object] | None = (
        None  # looks at the server while its clients are connected
    )


def _slow_reader_and_hog(rng: random.Random) -> list[Client]:
    slow = echo_clients(rng, "slow", 1, (MiB, MiB), read_size=KiB, rcvbuf=4 * KiB)
    hog = Client("hog", rng.randbytes(24 * MiB), [], mode="hog", sndbuf=64 * KiB, rcvbuf=64 * KiB)
    return [*slow, hog, *echo_clients(rng, "busy", 10, (64 * KiB, 256 * KiB))]


def _resets(rng: random.Random) -> list[Client]:
    resets = echo_clients(rng, "reset", 20, (64 * KiB, 128 * KiB), mode="reset", rcvbuf=4 * KiB)
    return [
        c
        for pair in zip(resets, echo_clients(rng, "calm", 20, (16 * KiB, 64 * KiB)), strict=True)
        for c in pair
    ]


def check_server(
    serve: Serve,
    *,
    seed: int = 11,
    rounds: tuple[Round, ...] | None = None,
    progress: Callable[[str], object] | None = None,
) -> GauntletFeedback:
    """Run ``serve`` through ``rounds`` (default: the whole gauntlet, `ROUNDS`); say what it found.

    ``progress``, if given, is called with one line per round as it ends
    (``print`` will do: the lines hold no timings). The gauntlet stops at the
    first round a dead or stuck server cannot finish; at most `BUDGET` seconds
    of rounds run. Raises `OSError` only if no listening socket can be made.
    """
    feedback = GauntletFeedback("your server against the gauntlet")
    run = run_rounds(
        feedback, serve, ROUNDS if rounds is None else rounds, seed=seed, progress=progress
    )
    judge_stop(feedback, run)
    return feedback


def run_rounds(
    feedback: GauntletFeedback,
    serve: Serve,
    rounds: tuple[Round, ...],
    *,
    seed: int,
    progress: Callable[[str], object] | None = None,
) -> ServerRun:
    """Play ``rounds`` against ``serve`` until one cannot finish; keep the timeline.

    Returns the (stopped) run.
    """
    rng, end = random.Random(seed), time.monotonic() + BUDGET
    with ServerRun(serve) as run:
        for number, spec in enumerate(rounds, 1):
            finished = play_round(run, spec, rng, min(end, time.monotonic() + spec.limit), feedback)
            if progress is not None:
                progress(
                    f"round {number}/{len(rounds)} {spec.name}: {spec.what}: "
                    f"{'✔' if finished else '✘'}"
                )
            if not finished or run.died_early:
                break
    feedback.events = run.selector.timeline.events()
    return run


def play_round(
    run: ServerRun, spec: Round, rng: random.Random, deadline: float, feedback: GauntletFeedback
) -> bool:
    """One round, judged; False if the round could not finish."""
    clients, since, cpu, start = (
        spec.clients(rng),
        run.selector.timeline.last_seq,
        run.cpu(),
        time.monotonic(),
    )
    try:
        finished = drive(run, clients, deadline)
        if finished and spec.inspect is not None:
            spec.inspect(feedback, run)
        wall = time.monotonic() - start
    finally:
        close_all(clients)
    left = _left_open(run)
    result = _result(spec, clients, wall, run.cpu_since(cpu), left, run.wakeups(since))
    result.events = (since, run.selector.timeline.last_seq)
    feedback.results.append(result)
    judge_round(feedback, run, spec.name, clients, finished, left)
    return finished and not run.died


def _result(
    spec: Round, clients: list[Client], wall: float, cpu: float | None, left: int, wakeups: int
) -> RoundResult:
    echoed = [c for c in clients if c.mode not in ("reset", "hog")]
    return RoundResult(
        spec.name,
        len(clients),
        sum(c.sent + len(c.received) for c in clients),
        all(c.exact for c in echoed),
        wall,
        cpu,
        max(c.peak for c in clients),
        left,
        wakeups,
    )


def _left_open(run: ServerRun, timeout: float = 2.0) -> int:
    """Sockets the server still holds once its clients have gone (``timeout`` s to close them)."""
    wait_until(lambda: not run.open_sockets() or run.died, timeout)
    return len(run.open_sockets())


# -- judging ----------------------------------------------------------------------


ROUNDS: tuple[Round, ...] = (
    Round(
        "crowd",
        "300 clients at once, 1-16 KiB each, random chunks",
        lambda rng: echo_clients(rng, "crowd", 300, (KiB, 16 * KiB), chunk=4 * KiB),
    ),
    Round(
        "big",
        "4 clients, 2-4 MiB each, through 16 KiB buffers",
        lambda rng: echo_clients(
            rng, "big", 4, (2 * MiB, 4 * MiB), read_size=16 * KiB, rcvbuf=16 * KiB
        ),
    ),
    Round(
        "half-close",
        "40 clients send 128-256 KiB, half-close, read 4 KiB at a time",
        lambda rng: echo_clients(
            rng, "half", 40, (128 * KiB, 256 * KiB), read_size=4 * KiB, rcvbuf=8 * KiB
        ),
    ),
    Round("resets", "20 clients reset mid-stream, 20 others are echoed", _resets),
    Round(
        "slow reader, hog",
        "1 KiB reads; 24 MiB sent, never read; 10 others",
        _slow_reader_and_hog,
        limit=8.0,
    ),
    Round(
        "idle",
        f"50 clients connected, silent for {IDLE} s",
        lambda rng: echo_clients(rng, "idle", 50, (100, 1000), mode="idle"),
        limit=4.0,
        inspect=judge_idle,
    ),
)
