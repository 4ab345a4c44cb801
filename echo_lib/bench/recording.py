"""What recording costs by itself, in this process: CPU and bytes per event, and a drawing."""

from __future__ import annotations

import io
import selectors
import statistics
import time

from ..core.timeline import Timeline
from .results import RecordingCost

__all__ = ["DRAW_EVENTS", "measure_drawing", "measure_recording"]

READ = selectors.EVENT_READ
DRAW_EVENTS = 1_000_000


def _record_messages(timeline: Timeline, messages: int) -> None:
    """The four events a recording EchoServer makes per echoed 64 B message, on 8 connections."""
    record = timeline.record
    peers = [(f"server/conn-{n}", 10 + n) for n in range(1, 9)]
    for _ in range(messages // len(peers)):
        for actor, fd in peers:
            record("server", "select", -1, 0, 1, "wait, 1 ready")
            record(actor, "ready", fd, READ)
            record(actor, "recv", fd, 0, 64)
            record(actor, "send", fd, 0, 64, "")


def measure_recording(events: int = 400_000, rounds: int = 5) -> RecordingCost:
    """CPU per event of `Timeline.record` (median of ``rounds``) and storage per event.

    Each round records ``events`` into a timeline that keeps a quarter of
    them, so the oldest are dropped (steady state); the clock stops after the
    pending events have been moved into the columns.
    """
    times, sizes = [], []
    for _ in range(rounds):
        timeline = Timeline(maxlen=events // 4)
        start = time.process_time()
        _record_messages(timeline, events // 4)
        len(timeline)  # moves what is pending: part of the cost
        times.append((time.process_time() - start) / events * 1e6)
        sizes.append(timeline.storage_bytes() / len(timeline))
    return RecordingCost(events, statistics.median(times), statistics.median(sizes))


def measure_drawing(events: int = DRAW_EVENTS) -> float | None:
    """CPU seconds for `plot_timeline` of ``events`` events on 10,000 actors, written as a PNG.

    None when matplotlib is not installed. Uses a `Figure` of its own, never
    pyplot, so that it leaves a notebook's backend alone.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    from ..view.plotting import plot_timeline

    timeline = Timeline(maxlen=None)
    record = timeline.record
    for n in range(events):
        record(f"server/conn-{n % 10_000}", ("ready", "recv", "send")[n % 3], n % 10_000, 0, 64)
    start = time.process_time()
    figure = Figure(figsize=(10.0, 14.0), layout="constrained")
    plot_timeline(timeline, figure.add_subplot(), title=f"{events:,} events")
    figure.savefig(io.BytesIO(), format="png")
    return time.process_time() - start
