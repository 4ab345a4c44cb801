"""Draw a timeline: one lane per actor, one marker per event, arrows for bytes.

matplotlib is imported inside `plot_timeline`, never when this module is
imported: echo_lib itself needs only the standard library.

How the picture stays fast and legible, whatever the size of the timeline:

- Events are grouped by action, and each action is drawn with *one* scatter
  (a PathCollection): 100,000 events cost at most a dozen artists, not
  100,000, and a dozen artists draw in well under a second.
- A ``register`` or ``modify`` gets a small text label with the new mask
  (``READ|WRITE``, or ``READ|WRITE → READ`` for a modify, the old mask being
  tracked per actor and fd), along the top or bottom edge of its lane. A
  label that would overlap the one before it on both edges is skipped, and
  at most `MAX_ANNOTATIONS` are written.
- Arrows show bytes travelling. Clients (actors without a ``/`` that
  ``connect`` or move bytes and never ``accept``) are paired with server
  connections (actors with a ``/``, like ``server/conn-1``) in the order each
  first appears, because a listener accepts connections in the order they
  arrive. Within a pair each direction is a byte stream: a ``send`` of the
  stream's bytes [a, b) points at the ``recv`` that took in byte a, so chunks
  that are split or merged on the way still pair up, and a send whose bytes
  never arrived (the counts differ) gets no arrow. Pairs are found by bytes,
  not by time: a send is recorded after ``send()`` returns, so the peer's
  thread may record the matching recv first and its arrow leans back a little.
  A `Timeline` that has dropped its oldest events (``maxlen``) gets no arrows,
  because its streams no longer start at byte 0. All arrows are one quiver of
  at most `MAX_ARROWS`, spread evenly over the run.
"""

from __future__ import annotations

import itertools
import math
import reprlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, NamedTuple

from .events import ACTIONS, Event, mask_name
from .timeline import Timeline

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.collections import PathCollection

__all__ = ["MAX_ANNOTATIONS", "MAX_ARROWS", "plot_timeline"]

#: At most this many mask labels (register/modify) are written on a plot.
MAX_ANNOTATIONS = 60
#: At most this many byte-flow arrows are drawn on a plot.
MAX_ARROWS = 200

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

_Flow = tuple[Event, Event]


class _Layout(NamedTuple):
    """Sizes that follow from the number of lanes and the height of the axes."""

    lane_points: float  # the height of one lane, in points
    band: float  # half the height that markers and labels use, in lanes (0.5 at most)


def plot_timeline(
    timeline: Timeline | Iterable[Event],
    ax: Axes | None = None,
    *,
    actors: str | Iterable[str] | None = None,
    title: str | None = None,
) -> Axes:
    """Draw ``timeline`` on ``ax`` (on a new figure if None) and return the axes.

    One horizontal lane per actor, in order of first appearance with the first
    at the top; with ``actors``, exactly those lanes in that order (other
    actors' events are left out, a name with no events gets an empty lane).
    x is seconds since the timeline started. Each action has its own marker
    and colour; the legend, outside on the right, lists the actions present.
    Registers and modifies are labelled with their mask (at most
    `MAX_ANNOTATIONS`), and grey arrows join each client send to the server
    recv that took in its bytes, and back (at most `MAX_ARROWS`). An empty
    timeline gives empty axes with a "no events" note. Never calls
    ``plt.show()``: in a notebook the figure shows at the end of the cell.

    Raises `TypeError` if ``timeline`` is not a `Timeline` or an iterable of
    `Event`, or if ``actors`` is not a string or an iterable of strings.
    """
    events = _as_events(timeline)
    lanes = _lanes(events, actors)
    if ax is None:
        ax = _new_axes(len(lanes))
    layout = _layout(ax, len(lanes))
    lane_of = {actor: lane for lane, actor in enumerate(lanes)}
    shown = [event for event in events if event.actor in lane_of]
    _draw_lanes(ax, lanes, title, layout)
    if not shown:
        ax.text(0.5, 0.5, "no events", transform=ax.transAxes, ha="center", va="center", color="0.4")
        return ax
    _set_xlim(ax, shown)
    handles = _scatter_actions(ax, shown, lane_of, layout)
    if not isinstance(timeline, Timeline) or events[0].seq == 1:  # no events dropped
        _draw_arrows(ax, events, lane_of)
    ax.legend(handles=handles, title="action", fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    _annotate_masks(ax, shown, lane_of, layout)
    return ax


# -- input --------------------------------------------------------------------


def _as_events(timeline: object) -> list[Event]:
    if isinstance(timeline, Timeline):
        return timeline.events()
    if isinstance(timeline, (str, bytes)):
        raise TypeError(f"timeline must be a Timeline or an iterable of Event, got {_short(timeline)}")
    try:
        items = iter(timeline)  # type: ignore[call-overload]
    except TypeError:
        raise TypeError(f"timeline must be a Timeline or an iterable of Event, got {_short(timeline)}") from None
    events: list[Event] = []
    for index, item in enumerate(items):
        if not isinstance(item, Event):
            raise TypeError(f"timeline item {index} must be an Event, got {_short(item)}")
        events.append(item)
    return events


def _lanes(events: list[Event], actors: str | Iterable[str] | None) -> list[str]:
    if actors is None:
        return list(dict.fromkeys(event.actor for event in events))
    if isinstance(actors, str):
        return [actors]
    try:
        names = list(actors)
    except TypeError:
        raise TypeError(f"actors must be a string or an iterable of strings, got {_short(actors)}") from None
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


def _layout(ax: Axes, lanes: int) -> _Layout:
    """Measure one lane; in a tall lane, markers and labels keep within 40 points."""
    lane_points = ax.bbox.height * 72.0 / ax.figure.dpi / max(lanes, 1)
    return _Layout(lane_points, 0.5 * min(1.0, 40.0 / max(lane_points, 1e-9)))


def _draw_lanes(ax: Axes, lanes: list[str], title: str | None, layout: _Layout) -> None:
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


# -- markers ------------------------------------------------------------------


def _scatter_actions(ax: Axes, events: list[Event], lane_of: dict[str, int], layout: _Layout) -> list[PathCollection]:
    """One scatter per action, in `ACTIONS` order (unknown actions last)."""
    points: dict[str, tuple[list[float], list[int]]] = {}
    for event in events:
        xs, ys = points.setdefault(event.action, ([], []))
        xs.append(event.t)
        ys.append(lane_of[event.actor])
    diameter = min(7.0, max(3.0, 0.4 * layout.lane_points))
    order = sorted(points, key=lambda action: ACTIONS.index(action) if action in ACTIONS else len(ACTIONS))
    return [_scatter(ax, action, *points[action], diameter, 0.4 * layout.band) for action in order]


def _scatter(ax: Axes, action: str, xs: list[float], ys: list[int], diameter: float, row_height: float) -> PathCollection:
    import numpy as np  # matplotlib's own dependency; arrays, not lists, keep scatter fast

    marker, colour, row = {name: (marker, colour, row) for name, marker, colour, row in _STYLES}.get(action, _UNKNOWN_STYLE)
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


# -- mask labels --------------------------------------------------------------


def _annotate_masks(ax: Axes, events: list[Event], lane_of: dict[str, int], layout: _Layout) -> None:
    """Label registers and modifies along a lane's top or bottom edge; skip labels that would overlap."""
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


def _label(ax: Axes, text: str, xy: tuple[float, float], side: int, fontsize: float, *, leftwards: bool) -> None:
    """Write ``text`` just inside the lane: hanging from its top edge (side -1) or standing on its bottom edge (+1)."""
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


# -- byte-flow arrows ---------------------------------------------------------


def _draw_arrows(ax: Axes, events: list[Event], lane_of: dict[str, int]) -> None:
    flows = [(s, r) for s, r in _flows(events) if s.actor in lane_of and r.actor in lane_of]
    flows = _spread(flows, MAX_ARROWS)
    if not flows:
        return
    ax.quiver(
        [send.t for send, _ in flows],
        [lane_of[send.actor] for send, _ in flows],
        [recv.t - send.t for send, recv in flows],
        [lane_of[recv.actor] - lane_of[send.actor] for send, recv in flows],
        angles="xy",
        scale_units="xy",
        scale=1.0,
        color="0.35",
        alpha=0.55,
        width=0.0018,
        headwidth=5.0,
        headlength=6.0,
        headaxislength=5.5,
        zorder=3.5,
    )


def _spread(items: list[_Flow], cap: int) -> list[_Flow]:
    """At most ``cap`` items, evenly spaced over the list."""
    if len(items) <= cap:
        return items
    return [items[index * len(items) // cap] for index in range(cap)]


def _flows(events: list[Event]) -> list[_Flow]:
    """Every (send, recv) pair that moved the same bytes, by send order."""
    streams: dict[tuple[str, str], list[Event]] = {}
    for event in events:
        if event.action in ("send", "recv") and event.nbytes > 0:
            streams.setdefault((event.actor, event.action), []).append(event)
    actors = list(dict.fromkeys(event.actor for event in events))
    flows: list[_Flow] = []
    connections = [actor for actor in actors if "/" in actor]  # server/conn-1, ... in order of accept
    for client, conn in zip(_clients(events, actors), connections):
        flows += _match(streams.get((client, "send"), []), streams.get((conn, "recv"), []))
        flows += _match(streams.get((conn, "send"), []), streams.get((client, "recv"), []))
    return sorted(flows, key=lambda flow: flow[0].seq)


def _clients(events: list[Event], actors: list[str]) -> list[str]:
    """Of ``actors``, those without a ``/`` that connect or move bytes and never accept."""
    did = {(event.actor, event.action) for event in events}
    return [
        actor
        for actor in actors
        if "/" not in actor
        and (actor, "accept") not in did
        and any((actor, action) in did for action in ("connect", "send", "recv"))
    ]


def _match(sends: list[Event], recvs: list[Event]) -> list[_Flow]:
    """Pair each send with the recv that took in its first byte (one byte stream)."""
    ends = list(itertools.accumulate(recv.nbytes for recv in recvs))
    flows: list[_Flow] = []
    index, start = 0, 0
    for send in sends:
        while index < len(ends) and ends[index] <= start:
            index += 1
        if index == len(ends):
            break
        flows.append((send, recvs[index]))
        start += send.nbytes
    return flows
