"""A scale run, as measured by ``python -m echo_lib.bench --scale``: time by phase, and memory."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_scale"]


_PHASES: tuple[tuple[str, str], ...] = (
    ("connect_s", "connect"),
    ("echo_s", "echo"),
    ("close_s", "close"),
)


def plot_scale(
    results: Iterable[Mapping[str, object] | object], *, title: str | None = None
) -> Figure:
    """Draw scale runs (the bench JSON's ``"scale"`` list, or `ScaleResult` s): time and memory.

    Left, each server's wall time split into its phases (connect, echo,
    close), with what was verified and recorded; right, the peak resident
    memory of the server and of the load process, with KiB per connection.
    Returns the figure; never calls ``plt.show()``.

    Raises `ValueError` for no results, `KeyError` naming a missing field.
    """
    import matplotlib.pyplot as plt

    rows = [dataclasses.asdict(r) if dataclasses.is_dataclass(r) else dict(r) for r in results]  # type: ignore[arg-type, call-overload]
    if not rows:
        raise ValueError("plot_scale needs at least one scale result, got none")
    figure, (times, memory) = plt.subplots(
        1, 2, figsize=(11.0, 1.6 + 0.9 * len(rows)), layout="constrained", width_ratios=(3, 2)
    )
    labels = [f"{row['server']}\n{row['connections']:,} connections" for row in rows]
    _scale_times(times, rows, labels)
    _scale_memory(memory, rows)
    widest = max(rows, key=lambda row: int(row["connections"]))  # type: ignore[call-overload]
    figure.suptitle(
        title
        or f"{widest['connections']:,} concurrent connections to one EchoServer thread "
        f"on {widest['selector']}"
    )
    return figure


def _scale_times(ax: Axes, rows: list[dict[str, object]], labels: list[str]) -> None:
    left = [0.0] * len(rows)
    for (field, phase), colour in zip(_PHASES, ("tab:blue", "tab:green", "tab:gray"), strict=True):
        widths = [float(row[field]) for row in rows]  # type: ignore[arg-type]
        ax.barh(range(len(rows)), widths, left=left, color=colour, label=phase)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    for lane, (row, end) in enumerate(zip(rows, left, strict=True)):
        ax.annotate(
            _scale_note(row),
            (end, lane),
            xytext=(4, 0),
            textcoords="offset points",
            va="center",
            fontsize="small",
        )
    ax.set_yticks(range(len(rows)), labels)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(0, max(left) * 1.9)
    ax.set_xlabel("wall seconds, by phase")
    ax.legend(
        loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize="small", frameon=False
    )


def _scale_note(row: dict[str, object]) -> str:
    recorded = row.get("events_recorded")
    kept = (
        "not recorded"
        if recorded is None
        else f"{recorded:,} events recorded, {row.get('events_dropped')} dropped"
    )
    return f"{row['verified']:,} byte-exact\n{kept}"


#: The memory panel's bars: (row field, whose, colour), one bar of each per run.
_MEMORY_BARS = (
    ("server_maxrss_kib", "server", "tab:purple"),
    ("load_maxrss_kib", "load", "tab:orange"),
)


def _scale_memory(ax: Axes, rows: list[dict[str, object]]) -> None:
    height = 0.38
    for offset, (field, who, colour) in enumerate(_MEMORY_BARS):
        lanes = [lane + (offset - 0.5) * height for lane in range(len(rows))]
        _memory_bars(ax, rows, field, lanes, height, colour, f"{who} process")
    ax.set_yticks(range(len(rows)), [""] * len(rows))
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(
        0,
        max(int(row[f]) for row in rows for f in ("server_maxrss_kib", "load_maxrss_kib"))
        / 1024
        * 1.8,
    )  # type: ignore[call-overload]
    ax.set_xlabel("peak resident memory, MiB")
    ax.legend(
        loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize="small", frameon=False
    )


def _memory_bars(
    ax: Axes,
    rows: list[dict[str, object]],
    field: str,
    lanes: list[float],
    height: float,
    colour: str,
    label: str,
) -> None:
    """One bar per run at ``lanes``: ``field`` in MiB, annotated with KiB per connection."""
    mib = [int(row[field]) / 1024 for row in rows]  # type: ignore[call-overload]
    ax.barh(lanes, mib, height=height, color=colour, label=label)
    for y, value, row in zip(lanes, mib, rows, strict=True):
        per = value * 1024 / max(int(row["connections"]), 1)  # type: ignore[call-overload]
        ax.annotate(
            f"{value:,.0f} MiB ({per:.1f} KiB/conn)",
            (value, y),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize="x-small",
        )
