"""The markers mode of a timeline plot: one scatter per action, and mask labels.

Events are grouped by action, and each action is drawn with *one* scatter (a
PathCollection): 100,000 events cost at most a dozen artists, not 100,000, and
a dozen artists draw in well under a second. A ``register`` or ``modify`` gets
a small text label with the new mask (``READ|WRITE``, or ``READ|WRITE → READ``
for a modify, the old mask being tracked per actor and fd), along the top or
bottom edge of its lane. A label that would overlap the one before it on both
edges is skipped, and at most `MAX_ANNOTATIONS` are written.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from ..core.events import ACTIONS, Event, mask_name

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.collections import PathCollection

__all__ = [
    "MAX_ANNOTATIONS",
    "Layout",
    "action_order",
    "legend_outside",
    "action_style",
    "annotate_masks",
    "scatter_actions",
]

#: At most this many mask labels (register/modify) are written on a plot.
MAX_ANNOTATIONS = 60

# (action, marker, colour, row). Selector bookkeeping is green and drawn a
# little below the lane's centre line, waiting is grey and cyan and a little
# above it, and socket calls sit on it: bytes in are blue and point down,
# bytes out are red and point up. Arrows join sends and recvs on the centre line.
_STYLES: tuple[tuple[str, str, str, int], ...] = (
    ("register", "s", "tab:green", 1),
    ("modify", "D", "tab:olive", 1),
    ("unregister", "8", "tab:gray", 1),
    ("select", "|", "0.6", -1),
    ("ready", "o", "tab:cyan", -1),
    ("accept", "*", "tab:purple", 0),
    ("connect", "p", "tab:pink", 0),
    ("recv", "v", "tab:blue", 0),
    ("send", "^", "tab:red", 0),
    ("eof", "h", "tab:brown", 0),
    ("close", "x", "black", 0),
    ("error", "X", "red", 0),
)
_UNKNOWN_STYLE: tuple[str, str, int] = ("o", "0.3", 0)
_UNFILLED = frozenset("|x+_")


class Layout(NamedTuple):
    """Sizes that follow from the number of lanes and the height of the axes."""

    lane_points: float  # the height of one lane, in points
    band: float  # half the height that markers and labels use, in lanes (0.5 at most)


def scatter_actions(
    ax: Axes, events: list[Event], lane_of: dict[str, int], layout: Layout
) -> list[PathCollection]:
    """One scatter per action, in `ACTIONS` order (unknown actions last)."""
    points: dict[str, tuple[list[float], list[int]]] = {}
    for event in events:
        xs, ys = points.setdefault(event.action, ([], []))
        xs.append(event.t)
        ys.append(lane_of[event.actor])
    diameter = min(7.0, max(3.0, 0.4 * layout.lane_points))
    order = sorted(points, key=action_order)
    return [_scatter(ax, action, *points[action], diameter, 0.4 * layout.band) for action in order]


def _scatter(
    ax: Axes, action: str, xs: list[float], ys: list[int], diameter: float, row_height: float
) -> PathCollection:
    import numpy as np  # matplotlib's own dependency; arrays, not lists, keep scatter fast

    marker, colour, row = action_style(action)
    unfilled = marker in _UNFILLED
    return ax.scatter(
        np.asarray(xs, dtype=float),
        np.asarray(ys, dtype=float) + row * row_height,
        s=(diameter * (1.25 if unfilled else 1.0)) ** 2,
        marker=marker,
        color=colour,
        linewidths=1.2 if unfilled else 0.3,
        label=action,
        zorder=3.2 if action in ("eof", "error") else 3.0,  # rare and telling: keep them on top
        rasterized=len(xs) > 5000,
    )


def action_order(action: str) -> int:
    """Where ``action`` comes in legends: `ACTIONS` order, unknown actions last."""
    return ACTIONS.index(action) if action in ACTIONS else len(ACTIONS)


def legend_outside(ax: Axes, handles: list[Any], title: str, **options: Any) -> None:
    """The legend of either mode, beside the plot at its top right, small."""
    ax.legend(
        handles=handles,
        title=title,
        fontsize="small",
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        borderaxespad=0.0,
        **options,
    )


def action_style(action: str) -> tuple[str, str, int]:
    """(marker, colour, row) of ``action``."""
    return {name: (marker, colour, row) for name, marker, colour, row in _STYLES}.get(
        action, _UNKNOWN_STYLE
    )


# -- mask labels --------------------------------------------------------------


def annotate_masks(ax: Axes, events: list[Event], lane_of: dict[str, int], layout: Layout) -> None:
    """Label registers and modifies along a lane's top or bottom edge, skipping overlaps."""
    fontsize = min(7.0, max(5.0, 0.25 * layout.lane_points))
    left, right = ax.get_xlim()
    seconds_per_point = (right - left) / _width_points(ax)
    free: dict[tuple[int, int], float] = {}  # (lane, side) -> the time from which that edge is free
    placed = 0
    for t, lane, text in _mask_labels(events, lane_of):
        width = (0.7 * fontsize * len(text) + 4.0) * seconds_per_point
        start = t if t + width <= right else t - width  # near the right edge, write leftwards
        side = next((side for side in (-1, 1) if free.get((lane, side), -math.inf) <= start), 0)
        if not side:
            continue
        free[lane, side] = start + width
        _label(ax, text, (t, lane + side * layout.band), side, fontsize, leftwards=start < t)
        placed += 1
        if placed == MAX_ANNOTATIONS:
            return


def _width_points(ax: Axes) -> float:
    """The width of the axes in points, once the figure's layout engine (if any) has placed them."""
    root = ax.figure.figure  # the Figure itself, also when the axes sit in a SubFigure
    engine = root.get_layout_engine()
    if engine is not None:
        engine.execute(root)  # the legend outside takes its room now, not at the first draw
    return ax.bbox.width * 72.0 / ax.figure.dpi


def _label(
    ax: Axes, text: str, xy: tuple[float, float], side: int, fontsize: float, *, leftwards: bool
) -> None:
    """Write ``text`` inside the lane: hanging from its top edge (side -1) or on its bottom (+1)."""
    ax.annotate(
        text,
        xy,
        xytext=(-1 if leftwards else 1, side),
        textcoords="offset points",
        ha="right" if leftwards else "left",
        va="top" if side < 0 else "bottom",
        fontsize=fontsize,
        color="0.2",
        annotation_clip=True,
        clip_on=True,
        zorder=4,
    )


def _mask_labels(events: list[Event], lane_of: dict[str, int]) -> Iterator[tuple[float, int, str]]:
    """(t, lane, label) for each register and modify, in order."""
    masks: dict[tuple[str, int], int] = {}
    for event in events:
        key = (event.actor, event.fd)
        if event.action == "register":
            yield event.t, lane_of[event.actor], _mask_text(event.mask)
        elif event.action == "modify":
            before = _mask_text(masks[key]) + " " if key in masks else ""
            yield event.t, lane_of[event.actor], f"{before}→ {_mask_text(event.mask)}"
        if event.action in ("register", "modify"):
            masks[key] = event.mask
        elif event.action == "unregister":
            masks.pop(key, None)


def _mask_text(mask: int) -> str:
    try:
        return mask_name(mask)
    except ValueError:  # not READ/WRITE bits: show the number rather than fail the plot
        return f"mask={mask!r}"
