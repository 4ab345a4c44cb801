"""The gauntlet's scoreboard: each round's figures, and `GauntletFeedback` that plots them.

`GauntletFeedback` is the `Feedback` of notebooks 09 and 11: the problems,
plus every round's `RoundResult` and the server's timeline, drawn by `plot()`
as a table above one round's timeline. matplotlib is imported only there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..core.events import Event
from . import Feedback
from .serving import KiB, MiB

__all__ = ["GauntletFeedback", "RoundResult"]


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


class GauntletFeedback(Feedback):
    """`Feedback` with every round's figures and the server's timeline; `plot()` draws them."""

    def __init__(self, title: str) -> None:
        super().__init__(title)
        self.results: list[RoundResult] = []
        self.events: list[Event] = []

    def plot(self, round_name: str = "resets", *, lanes: int = 5, events: int = 300) -> Any:
        """The scoreboard table above one round's timeline; returns the figure.

        The timeline shows the loop's ``select()`` calls and its first ``lanes``
        connections, at most ``events`` events.

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
        """The timeline events of the round ``round_name``. Raises `ValueError` if none ran."""
        for result in self.results:
            if result.name == round_name:
                first, last = result.events
                return [e for e in self.events if first < e.seq <= last]
        raise ValueError(
            f"no round called {round_name!r} ran; the rounds were "
            f"{[r.name for r in self.results]!r}"
        )


_HEADER = (
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


def _row(r: RoundResult) -> tuple[object, ...]:
    cpu = "n/a" if r.cpu is None else f"{r.cpu * 1000:.0f} ms"
    return (
        r.name,
        r.clients,
        f"{r.bytes / MiB:.1f} MiB",
        "✔" if r.exact else "✘",
        f"{r.wall:.2f} s",
        cpu,
        f"{r.peak / KiB:.0f} KiB",
        r.left_open,
        r.wakeups,
    )


def _draw_table(ax: Any, results: list[RoundResult]) -> None:
    rows = [_row(r) for r in results]
    ax.axis("off")
    table = ax.table(
        cellText=rows or [("(no round ran)", *[""] * 8)], colLabels=_HEADER, loc="center"
    )
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    table.scale(1, 1.4)
