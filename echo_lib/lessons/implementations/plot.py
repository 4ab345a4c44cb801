"""Draw a `CostTable`: CPU per empty ``select(0)`` by idle sockets, log-log, a line per class."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from ...driver.implementations import FD_SETSIZE
from .costs import CostTable

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["plot_select_costs", "select_costs_png"]

_STYLE = {
    "EpollSelector": ("tab:green", "o"),
    "KqueueSelector": ("tab:green", "o"),
    "DevpollSelector": ("tab:olive", "o"),
    "PollSelector": ("tab:blue", "s"),
    "SelectSelector": ("tab:red", "^"),
}


def plot_select_costs(
    table: CostTable, ax: Axes | None = None, *, title: str | None = None
) -> Axes:
    """Draw microseconds per ``select(0)`` against idle sockets, log-log, one line per class.

    A dotted line marks FD_SETSIZE when a class stopped there. Returns the axes.
    """
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7.5, 4.5), layout="constrained")
    for name in table.selectors():
        costs = sorted(table.costs(name).items())
        colour, marker = _STYLE.get(name, ("0.3", "o"))
        xs, ys = [n for n, _ in costs], [s * 1e6 for _, s in costs]
        ax.plot(xs, ys, marker=marker, color=colour, label=name)
    if any(point.at_limit for point in table.points):
        label = f"FD_SETSIZE ({FD_SETSIZE}): select() stops"
        ax.axvline(FD_SETSIZE, color="tab:red", linestyle=":", linewidth=1.2, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("idle sockets registered")
    ax.set_ylabel("CPU µs per select(0) (median)")
    ax.margins(0.08)
    ax.set_title(title or "What an empty select(0) costs")
    ax.grid(True, which="major", color="0.88")
    if table.points:
        ax.legend(loc="upper left")
    return ax


def select_costs_png(table: CostTable, title: str) -> bytes:
    """The cost plot on a pyplot-free figure, as PNG bytes (nothing is left for pyplot to show)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4.0), layout="constrained")
    plot_select_costs(table, fig.add_subplot(), title=title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()
