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
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..core.events import Event
from . import Feedback
from .serving import (
    Client,
    KiB,
    MiB,
    ServerRun,
    close_all,
    drive,
    echo_clients,
    serve_error_problem,
)

__all__ = [
    "MAX_HELD",
    "ROUNDS",
    "GauntletFeedback",
    "Round",
    "RoundResult",
    "check_server",
    "judge_idle",
    "judge_returned",
    "judge_stop",
    "play_round",
    "run_rounds",
]

WRITE = selectors.EVENT_WRITE
MAX_HELD = 4 * MiB  # the most a server may hold for one client that never reads
IDLE = 0.5  # seconds of silence in the idle round
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


@dataclass
class RoundResult:
    """What one round measured."""

    name: str
    clients: int
    bytes: int
    exact: bool
    wall: float
    cpu: float | None
    peak: int
    left_open: int
    wakeups: int
    events: tuple[int, int] = (
        0,
        0,
    )  # the round's timeline events: seq after the first, up to the last


def _slow_reader_and_hog(rng: random.Random) -> list[Client]:
    slow = echo_clients(rng, "slow", 1, (MiB, MiB), read_size=KiB, rcvbuf=4 * KiB)
    hog = Client("hog", rng.randbytes(24 * MiB), [], mode="hog", sndbuf=64 * KiB, rcvbuf=64 * KiB)
    return [*slow, hog, *echo_clients(rng, "busy", 10, (64 * KiB, 256 * KiB))]


def _resets(rng: random.Random) -> list[Client]:
    resets = echo_clients(rng, "reset", 20, (64 * KiB, 128 * KiB), mode="reset", rcvbuf=4 * KiB)
    return [
        c for pair in zip(resets, echo_clients(rng, "calm", 20, (16 * KiB, 64 * KiB))) for c in pair
    ]


class GauntletFeedback(Feedback):
    """`Feedback` with the figures of every round and the server's timeline; `plot()` draws the scoreboard."""

    def __init__(self, title: str) -> None:
        super().__init__(title)
        self.results: list[RoundResult] = []
        self.events: list[Event] = []

    def plot(self, round_name: str = "resets", *, lanes: int = 5, events: int = 300) -> Any:
        """The scoreboard table above one round's timeline: the loop's ``select()`` calls and its first
        ``lanes`` connections, at most ``events`` events. Returns the figure.

        Raises `ValueError` naming the round if no round of that name ran.
        """
        import matplotlib.pyplot as plt

        from ..view.plotting import plot_timeline

        shown = self.round_events(round_name)
        actors = [
            "your server",
            *list(dict.fromkeys(e.actor for e in shown if e.actor.startswith("socket-")))[:lanes],
        ]
        figure, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7.5), height_ratios=(1, 1.4))
        _draw_table(top, self.results)
        plot_timeline(
            shown[:events],
            bottom,
            actors=actors,
            title=f"your server in round {round_name!r}: {len(actors) - 1} connections",
        )
        figure.tight_layout()
        return figure

    def round_events(self, round_name: str) -> list[Event]:
        """The timeline events of the round called ``round_name``. Raises `ValueError` if none ran."""
        for result in self.results:
            if result.name == round_name:
                first, last = result.events
                return [e for e in self.events if first < e.seq <= last]
        raise ValueError(
            f"no round called {round_name!r} ran; the rounds were {[r.name for r in self.results]!r}"
        )


def _draw_table(ax: Any, results: list[RoundResult]) -> None:
    header = (
        "round",
        "clients",
        "bytes",
        "exact",
        "wall",
        "server CPU",
        "largest in flight",
        "fds left",
        "wake-ups",
    )
    rows = [(r.name, r.clients, f"{r.bytes / MiB:.1f} MiB", "✔" if r.exact else "✘", f"{r.wall:.2f} s",
             "n/a" if r.cpu is None else f"{r.cpu * 1000:.0f} ms", f"{r.peak / KiB:.0f} KiB", r.left_open, r.wakeups)
            for r in results]  # fmt: skip
    ax.axis("off")
    table = ax.table(
        cellText=rows or [("(no round ran)", *[""] * 8)], colLabels=header, loc="center"
    )
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.scale(1, 1.4)


def check_server(serve: Serve, *, seed: int = 11, rounds: tuple[Round, ...] | None = None,
                 progress: Callable[[str], object] | None = None) -> GauntletFeedback:  # fmt: skip
    """Run ``serve`` through ``rounds`` (default: the whole gauntlet, `ROUNDS`) and return what it found.

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


def run_rounds(feedback: GauntletFeedback, serve: Serve, rounds: tuple[Round, ...], *, seed: int,
               progress: Callable[[str], object] | None = None) -> ServerRun:  # fmt: skip
    """Play ``rounds`` against ``serve`` until one cannot finish; keep the timeline; return the (stopped) run."""
    rng, end = random.Random(seed), time.monotonic() + BUDGET
    with ServerRun(serve) as run:
        for number, spec in enumerate(rounds, 1):
            finished = play_round(run, spec, rng, min(end, time.monotonic() + spec.limit), feedback)
            if progress is not None:
                progress(
                    f"round {number}/{len(rounds)} {spec.name}: {spec.what}: {'✔' if finished else '✘'}"
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
    result = _result(spec, clients, wall, _cpu_since(run, cpu), left, run.wakeups(since))
    result.events = (since, run.selector.timeline.last_seq)
    feedback.results.append(result)
    _judge_round(feedback, run, spec, clients, finished, left)
    return finished and not run.died


def _result(
    spec: Round, clients: list[Client], wall: float, cpu: float | None, left: int, wakeups: int
) -> RoundResult:
    echoed = [c for c in clients if c.mode not in ("reset", "hog")]
    return RoundResult(spec.name, len(clients), sum(c.sent + len(c.received) for c in clients),
                       all(c.exact for c in echoed), wall, cpu, max(c.peak for c in clients), left, wakeups)  # fmt: skip


def _cpu_since(run: ServerRun, before: float | None) -> float | None:
    now = run.cpu()
    return None if now is None or before is None else now - before


def _left_open(run: ServerRun, timeout: float = 2.0) -> int:
    """Sockets the server still holds once its clients have gone (given ``timeout`` s to close them)."""
    pause, deadline = threading.Event(), time.monotonic() + timeout
    while (
        (left := len(run.selector.open_sockets(skip=run.listener)))
        and time.monotonic() < deadline
        and not run.died
    ):
        pause.wait(0.01)
    return left


# -- judging ----------------------------------------------------------------------


def _judge_round(
    feedback: Feedback,
    run: ServerRun,
    spec: Round,
    clients: list[Client],
    finished: bool,
    left: int,
) -> None:
    if run.died:
        why = (
            "serve() returned before stop was set"
            if run.error is None
            else serve_error_problem(run.error)
        )
        feedback.expect(False, f"in round {spec.name!r}: {why}")
        return
    if not finished:
        _judge_stuck(feedback, spec, clients)
    _judge_clients(feedback, spec, clients)
    _judge_hog(feedback, run, clients)
    stale = run.selector.stale_keys()
    feedback.expect(not stale, f"in round {spec.name!r}: {_sockets(len(stale))} closed but still registered: "
                    "closing without unregister() leaves a key for a dead fd; unregister(), then close()")  # fmt: skip
    feedback.expect(not left or stale, f"in round {spec.name!r}: {_sockets(left)} still open after their clients "
                    "left: at EOF (once the echo is flushed) or on an error, unregister and close the socket")  # fmt: skip


def _judge_stuck(feedback: Feedback, spec: Round, clients: list[Client]) -> None:
    stuck = [c for c in clients if c.mode != "hog" and not c.done]
    if not stuck:
        feedback.expect(
            False,
            f"round {spec.name!r} ran out of time waiting for the server to stop reading from the hog",
        )
        return
    first = stuck[0]
    feedback.expect(False, f"round {spec.name!r} ran out of time: {len(stuck)} of {len(clients)} clients were still waiting "
                    f"({first.name} had sent {first.sent} of {len(first.payload)} bytes and got {len(first.received)} back). "
                    "Is every ready socket served, and is EVENT_WRITE registered while output waits?")  # fmt: skip


def _judge_clients(feedback: Feedback, spec: Round, clients: list[Client]) -> None:
    """One problem per kind of wrong echo, with how many clients it hit and the first of them."""
    kinds: dict[str, list[str]] = {}
    for client in clients:
        if client.mode not in ("reset", "hog") and client.done and not client.exact:
            kind, example = _what_went_wrong(client)
            kinds.setdefault(kind, []).append(example)
    for kind, examples in kinds.items():
        count = f"{len(examples)} client{'s' if len(examples) > 1 else ''}"
        feedback.expect(
            False,
            f"in round {spec.name!r}, {count} ({examples[0]}{', ...' if len(examples) > 1 else ''}): {kind}",
        )


def _what_went_wrong(client: Client) -> tuple[str, str]:
    got, want = len(client.received), len(client.payload)
    example = f"{client.name} got {got} of {want} bytes back"
    if client.reset:
        return "the server reset the connection before the echo was complete", example
    if got < want and client.mode == "echo":
        return ("the echo stopped short at EOF: the server closed at EOF with echo still owed; after a half-close "
                "keep flushing, and close only when nothing is pending"), example  # fmt: skip
    at = next(
        (i for i, (a, b) in enumerate(zip(client.received, client.payload)) if a != b),
        min(got, want),
    )
    return ("the echo differs from what was sent: bytes that a partial send() did not take were lost or sent twice",
            f"{example}, the first wrong one at offset {at}")  # fmt: skip


def _judge_hog(feedback: Feedback, run: ServerRun, clients: list[Client]) -> None:
    for hog in (c for c in clients if c.mode == "hog"):
        held = hog.sent - _kernel_allowance(run, hog)
        feedback.expect(held <= MAX_HELD, f"a client that never reads got {hog.sent / MiB:.1f} MiB into the server, about "
                        f"{max(held, 0) / MiB:.1f} MiB of it held in memory (the limit is {MAX_HELD // MiB} MiB): unbounded "
                        "buffering; stop reading (drop EVENT_READ) while a connection has more than a cap waiting")  # fmt: skip


def _kernel_allowance(run: ServerRun, hog: Client) -> int:
    """What the kernel's buffers can hold between the hog and the server's memory (both directions, both ends)."""
    sizes = (hog.sndbuf or 0, hog.rcvbuf or 0)
    listener = run.listener
    if listener.fileno() >= 0:
        sizes += (
            listener.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF),
            listener.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
        )
    return 2 * sum(sizes)


def judge_idle(feedback: Feedback, run: ServerRun) -> None:
    """Half a second of silence: a loop that sleeps in select() wakes only for its timeout."""
    since, cpu = run.selector.timeline.last_seq, run.cpu()
    threading.Event().wait(IDLE)  # the measuring window itself, not a synchronisation
    writers = [k for k in run.selector.keys() if k.events & WRITE]
    ready = len(run.selector.timeline.events(None, "ready", since=since))
    wakeups, used = run.wakeups(since), _cpu_since(run, cpu)
    spent = "" if used is None else f", using {used * 1000:.0f} ms of CPU"
    if feedback.expect(not writers and ready <= 10, f"with every client silent for {IDLE} s, select() woke {wakeups} times "
                       f"and reported {ready} sockets ready{spent}, and {len(writers)} connections were registered for EVENT_WRITE: keeping "
                       "EVENT_WRITE registered with nothing to send spins the loop; modify() back to EVENT_READ once drained"):  # fmt: skip
        feedback.expect(wakeups <= 200, f"with every client silent for {IDLE} s, select() returned {wakeups} times{spent}: "
                        "the loop polls; give select() a timeout (e.g. 0.05 s) instead of 0")  # fmt: skip


def judge_returned(feedback: Feedback, run: ServerRun) -> bool:
    """Did ``serve`` return once ``stop`` was set, without an error? (Steps 1-6 of notebook 09 ask no more.)"""
    if not feedback.expect(run.returned_in_time, f"serve() did not return within {run.grace:g} s after stop was set: "
                           "check stop.is_set() every time round the loop, and give select() a timeout"):  # fmt: skip
        return False
    if run.error is not None and not run.died_early:
        feedback.expect(False, f"while stopping, {serve_error_problem(run.error)}")
    return True


def judge_stop(feedback: Feedback, run: ServerRun) -> None:
    """A clean stop: every socket unregistered, then closed, and the selector closed."""
    if not judge_returned(feedback, run):
        return
    counts = run.selector.timeline.counts()
    if run.selector.timeline.dropped == 0 and counts["register"] > counts["unregister"]:
        feedback.expect(False, f"{_sockets(counts['register'] - counts['unregister'])} never unregistered: on stop, "
                        "unregister() each socket, then close() it, then close the selector")  # fmt: skip
    feedback.expect(
        not run.left_open,
        f"after serve() returned, {_sockets(run.left_open)} still open: close every connection on stop",
    )
    feedback.expect(run.selector.closed, "serve() returned without closing its selector")


def _sockets(count: int) -> str:
    return f"{count} socket was" if count == 1 else f"{count} sockets were"


ROUNDS: tuple[Round, ...] = (
    Round(
        "crowd",
        "300 clients at once, 1-16 KiB each, random chunks",
        lambda rng: echo_clients(rng, "crowd", 300, (KiB, 16 * KiB), chunk=4 * KiB),
    ),  # fmt: skip
    Round(
        "big",
        "4 clients, 2-4 MiB each, through 16 KiB buffers",
        lambda rng: echo_clients(
            rng, "big", 4, (2 * MiB, 4 * MiB), read_size=16 * KiB, rcvbuf=16 * KiB
        ),
    ),  # fmt: skip
    Round(
        "half-close",
        "40 clients send 128-256 KiB, half-close, read 4 KiB at a time",
        lambda rng: echo_clients(
            rng, "half", 40, (128 * KiB, 256 * KiB), read_size=4 * KiB, rcvbuf=8 * KiB
        ),
    ),  # fmt: skip
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
    ),  # fmt: skip
)
