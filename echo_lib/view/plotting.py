"""`plot_timeline`: one lane per actor, events as markers or as density, arrows for bytes.

matplotlib is imported inside functions, never when this module is imported:
echo_lib itself needs only the standard library.

This module checks the input, lays out the lanes and picks the mode; each mode
lives in its own module, which explains how it stays fast and legible:

- `echo_lib.view.markers`: one scatter per action, and mask labels;
- `echo_lib.view.flows`: arrows from each send to the recv that took its bytes;
- `echo_lib.view.density`: a heat strip per lane when there are more than
  `MAX_MARKERS` events in view (``mode="auto"``), and grouped lanes when there
  are more than `MAX_LANES` actors.

The legend says which mode is showing. ``window=(start, end)`` zooms in on a
stretch of seconds, where the markers, mask labels and arrows come back. A
`Timeline` that has dropped its oldest events (``maxlen``) gets no arrows,
because its byte streams no longer start at byte 0.
"""

from __future__ import annotations

import reprlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..core.events import Event
from ..core.timeline import Columns, Timeline
from .density import draw_density, group_lanes, lane_per_row
from .flows import draw_arrows
from .markers import Layout, annotate_masks, legend_outside, scatter_actions

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.axes import Axes

__all__ = ["MAX_MARKERS", "plot_timeline"]

#: With more events than this in view, ``mode="auto"`` draws density, not markers.
MAX_MARKERS = 20_000
_MODES = ("auto", "markers", "density")


def plot_timeline(
    timeline: Timeline | Iterable[Event],
    ax: Axes | None = None,
    *,
    actors: str | Iterable[str] | None = None,
    title: str | None = None,
    window: tuple[float, float] | None = None,
    mode: str = "auto",
) -> Axes:
    """Draw ``timeline`` on ``ax`` (on a new figure if None) and return the axes.

    One horizontal lane per actor, in order of first appearance with the first
    at the top; with ``actors``, exactly those lanes in that order (other
    actors' events are left out, a name with no events gets an empty lane).
    More than `echo_lib.view.density.MAX_LANES` actors are grouped into lanes of consecutive actors.
    x is seconds since the timeline started; ``window=(start, end)`` shows only
    that stretch. Each action has its own marker and colour; the legend,
    outside on the right, lists the actions present and names the mode.
    Registers and modifies are labelled with their mask (at most
    `MAX_ANNOTATIONS`), and grey arrows join each client send to the server
    recv that took in its bytes, and back (at most `MAX_ARROWS`). With
    ``mode="auto"``, more than `MAX_MARKERS` events in view are drawn as
    density instead (a heat strip per lane, see the module's docstring);
    ``"markers"`` or ``"density"`` force one. An empty timeline gives empty
    axes with a "no events" note. Never calls ``plt.show()``: in a notebook
    the figure shows at the end of the cell.

    Raises `TypeError` if ``timeline`` is not a `Timeline` or an iterable of
    `Event`, or if ``actors`` is not a string or an iterable of strings;
    `ValueError` for an unknown ``mode`` or a ``window`` that is not two
    increasing numbers.
    """
    _check_mode(mode)
    window = _check_window(window)
    columns, events = _as_columns(timeline)
    lanes, lane_of = group_lanes(_lanes_of(columns, actors))
    if ax is None:
        ax = _new_axes(len(lanes))
    layout = _layout(ax, len(lanes))
    _draw_lanes(ax, lanes, title, layout)
    rows = _rows_in_view(columns, lane_of, window)
    if not rows.size:
        ax.text(
            0.5, 0.5, "no events", transform=ax.transAxes, ha="center", va="center", color="0.4"
        )
        return ax
    if mode == "density" or (mode == "auto" and rows.size > MAX_MARKERS):
        draw_density(ax, columns, rows, lane_of, window)
        return ax
    events = events if events is not None else columns.events()
    _draw_markers(ax, timeline, events, [events[i] for i in rows.tolist()], lane_of, layout)
    return ax


def _draw_markers(
    ax: Axes,
    timeline: object,
    events: list[Event],
    shown: list[Event],
    lane_of: dict[str, int],
    layout: Layout,
) -> None:
    _set_xlim(ax, shown)
    handles = scatter_actions(ax, shown, lane_of, layout)
    if not isinstance(timeline, Timeline) or events[0].seq == 1:  # no events dropped
        draw_arrows(ax, events, lane_of)
    legend_outside(ax, handles, "action (one marker each)")
    annotate_masks(ax, shown, lane_of, layout)


def _check_mode(mode: str) -> None:
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {', '.join(_MODES)}, got {mode!r}")


def _check_window(window: object) -> tuple[float, float] | None:
    if window is None:
        return None
    try:
        start, end = (float(value) for value in window)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise ValueError(f"window must be (start, end) in seconds, got {_short(window)}") from None
    if not start < end:
        raise ValueError(f"window must start before it ends, got {_short(window)}")
    return start, end


def _as_events(timeline: object) -> list[Event]:
    if isinstance(timeline, Timeline):
        return timeline.events()
    if isinstance(timeline, (str, bytes)):
        raise TypeError(
            f"timeline must be a Timeline or an iterable of Event, got {_short(timeline)}"
        )
    try:
        items = iter(timeline)  # type: ignore[call-overload]
    except TypeError:
        raise TypeError(
            f"timeline must be a Timeline or an iterable of Event, got {_short(timeline)}"
        ) from None
    events: list[Event] = []
    for index, item in enumerate(items):
        if not isinstance(item, Event):
            raise TypeError(f"timeline item {index} must be an Event, got {_short(item)}")
        events.append(item)
    return events


def _as_columns(timeline: object) -> tuple[Columns, list[Event] | None]:
    """The timeline as columns, and as events when they were given as events."""
    if isinstance(timeline, Timeline):
        return timeline.columns(), None
    events = _as_events(timeline)
    return Columns.from_events(events), events


def _lanes_of(columns: Columns, actors: str | Iterable[str] | None) -> list[str]:
    if actors is None:
        return [columns.strings[index] for index in dict.fromkeys(columns.actor)]
    if isinstance(actors, str):
        return [actors]
    try:
        names = list(actors)
    except TypeError:
        raise TypeError(
            f"actors must be a string or an iterable of strings, got {_short(actors)}"
        ) from None
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"actors must hold strings (actor names), got {_short(name)}")
    return list(dict.fromkeys(names))


def _short(value: object) -> str:
    """``repr(value)``, cut short so that a huge list does not flood the message."""
    shortener = reprlib.Repr()
    shortener.maxstring = shortener.maxother = 80
    return shortener.repr(value)


# -- axes and lanes -----------------------------------------------------------


def _new_axes(lanes: int) -> Axes:
    import matplotlib.pyplot as plt

    height = min(max(1.2 + 0.3 * lanes, 3.2), 14.0)
    _, ax = plt.subplots(figsize=(10.0, height), layout="constrained")
    return ax


def _layout(ax: Axes, lanes: int) -> Layout:
    """Measure one lane; in a tall lane, markers and labels keep within 40 points."""
    lane_points = ax.bbox.height * 72.0 / ax.figure.dpi / max(lanes, 1)
    return Layout(lane_points, 0.5 * min(1.0, 40.0 / max(lane_points, 1e-9)))


def _draw_lanes(ax: Axes, lanes: list[str], title: str | None, layout: Layout) -> None:
    ax.set_xlabel("seconds since the timeline started")
    if title is not None:
        ax.set_title(title)
    if not lanes:
        ax.set_yticks([])
        return
    fontsize = min(10.0, max(5.0, 0.6 * layout.lane_points))
    ax.set_yticks(range(len(lanes)), lanes, fontsize=fontsize)
    ax.set_yticks([lane + 0.5 for lane in range(len(lanes) - 1)], minor=True)
    ax.tick_params(axis="y", which="minor", length=0)
    ax.grid(axis="y", which="minor", color="0.88", linewidth=0.8)
    ax.set_ylim(len(lanes) - 0.5, -0.5)


def _set_xlim(ax: Axes, events: list[Event]) -> None:
    first = min(event.t for event in events)
    last = max(event.t for event in events)
    pad = (last - first) * 0.03 or 1e-3
    ax.set_xlim(first - pad, last + pad)


def _rows_in_view(
    columns: Columns, lane_of: dict[str, int], window: tuple[float, float] | None
) -> np.ndarray:
    """Indexes of the rows whose actor has a lane and whose time is inside ``window``."""
    import numpy as np

    keep = lane_per_row(columns, lane_of) >= 0
    if window is not None:
        t = np.frombuffer(columns.t, dtype=np.float64)
        keep &= (t >= window[0]) & (t <= window[1])
    return np.flatnonzero(keep)
