"""Draw a timeline: one lane per actor, one marker per event (or a heat strip), arrows for bytes.

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

Zoomed out, markers would overlap by the thousand, so the picture switches by
itself (``mode="auto"``) to density: with more than `MAX_MARKERS` events in
view, each lane becomes a heat strip, one thin row per action present, the run
cut into `DENSITY_BINS` time bins and each cell shaded by the log of its event
count. It is one image, drawn from the timeline's columns with numpy, so a
million events plot in well under a second. The legend says which mode is
showing. ``window=(start, end)`` zooms in on a stretch of seconds, where the
markers, mask labels and arrows come back. With more than `MAX_LANES` actors,
lanes are grouped into about `GROUPED_LANES`: actors whose names differ only in their numbers
(``client-17``, ``server/conn-4``) form a family, and each family gets lanes
in proportion to its size, each lane holding a run of consecutive actors.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import re
import reprlib
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, NamedTuple

from ..core.events import ACTIONS, Event, mask_name
from ..core.timeline import Columns, Timeline

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.axes import Axes
    from matplotlib.collections import PathCollection
    from matplotlib.figure import Figure

__all__ = [
    "DENSITY_BINS",
    "GROUPED_LANES",
    "MAX_ANNOTATIONS",
    "MAX_ARROWS",
    "MAX_LANES",
    "MAX_MARKERS",
    "plot_scale",
    "plot_timeline",
]

#: At most this many mask labels (register/modify) are written on a plot.
MAX_ANNOTATIONS = 60
#: At most this many byte-flow arrows are drawn on a plot.
MAX_ARROWS = 200
#: With more events than this in view, ``mode="auto"`` draws density, not markers.
MAX_MARKERS = 20_000
#: The time bins of a density plot.
DENSITY_BINS = 400
#: With more actors than this, lanes are grouped...
MAX_LANES = 64
#: ...into about this many lanes (at most 1.5 times as many: each family of actors gets one at least).
GROUPED_LANES = 24
_MODES = ("auto", "markers", "density")

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
    window: tuple[float, float] | None = None,
    mode: str = "auto",
) -> Axes:
    """Draw ``timeline`` on ``ax`` (on a new figure if None) and return the axes.

    One horizontal lane per actor, in order of first appearance with the first
    at the top; with ``actors``, exactly those lanes in that order (other
    actors' events are left out, a name with no events gets an empty lane).
    More than `MAX_LANES` actors are grouped into lanes of consecutive actors.
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
    lanes, lane_of = _group_lanes(_lanes_of(columns, actors))
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
        _draw_density(ax, columns, rows, lane_of, window)
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
    layout: _Layout,
) -> None:
    _set_xlim(ax, shown)
    handles = _scatter_actions(ax, shown, lane_of, layout)
    if not isinstance(timeline, Timeline) or events[0].seq == 1:  # no events dropped
        _draw_arrows(ax, events, lane_of)
    ax.legend(
        handles=handles,
        title="action (one marker each)",
        fontsize="small",
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        borderaxespad=0.0,
    )
    _annotate_masks(ax, shown, lane_of, layout)


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


# -- many actors: grouped lanes -------------------------------------------------

_DIGITS = re.compile(r"\d+")


def _group_lanes(names: list[str]) -> tuple[list[str], dict[str, int]]:
    """(lane labels, actor -> lane): one lane per actor, or runs of actors when there are too many."""
    if len(names) <= MAX_LANES:
        return names, {name: lane for lane, name in enumerate(names)}
    labels: list[str] = []
    lane_of: dict[str, int] = {}
    for members in _families(names):
        for run in _runs(members, max(1, GROUPED_LANES * len(members) // len(names))):
            lane_of.update(dict.fromkeys(run, len(labels)))
            labels.append(run[0] if len(run) == 1 else f"{run[0]} … {run[-1]} ({len(run)})")
    return labels, lane_of


def _families(names: list[str]) -> list[list[str]]:
    """Names that differ only in their numbers, together; all in one family if there are too many."""
    families: dict[str, list[str]] = {}
    for name in names:
        families.setdefault(_DIGITS.sub("#", name), []).append(name)
    return list(families.values()) if len(families) <= GROUPED_LANES // 2 else [names]


def _runs(items: list[str], count: int) -> list[list[str]]:
    """``items`` cut into at most ``count`` runs of consecutive items, of near-equal length."""
    size = -(-len(items) // count)
    return [items[start : start + size] for start in range(0, len(items), size)]


# -- rows in view ------------------------------------------------------------------


def _lane_per_row(columns: Columns, lane_of: dict[str, int]) -> np.ndarray:
    """The lane of each row, -1 for an actor that is not shown."""
    import numpy as np

    lookup = np.array([lane_of.get(text, -1) for text in columns.strings] or [-1], dtype=np.int64)
    return lookup[np.frombuffer(columns.actor, dtype=np.uint32)]


def _rows_in_view(
    columns: Columns, lane_of: dict[str, int], window: tuple[float, float] | None
) -> np.ndarray:
    """Indexes of the rows whose actor has a lane and whose time is inside ``window``."""
    import numpy as np

    keep = _lane_per_row(columns, lane_of) >= 0
    if window is not None:
        t = np.frombuffer(columns.t, dtype=np.float64)
        keep &= (t >= window[0]) & (t <= window[1])
    return np.flatnonzero(keep)


# -- density: a heat strip per lane ------------------------------------------------


def _draw_density(
    ax: Axes,
    columns: Columns,
    rows: np.ndarray,
    lane_of: dict[str, int],
    window: tuple[float, float] | None,
) -> None:
    """One image: a row per (lane, action present), a column per time bin, shaded by log count."""
    import numpy as np

    t = np.frombuffer(columns.t, dtype=np.float64)[rows]
    first, last = window if window is not None else (float(t.min()), float(t.max()))
    span = (last - first) or 1e-3
    bins = np.clip(((t - first) * (DENSITY_BINS / span)).astype(np.int64), 0, DENSITY_BINS - 1)
    action_ids = np.frombuffer(columns.action, dtype=np.uint8)[rows]
    present = _actions_present(columns.actions, np.unique(action_ids).tolist())
    strip_of = np.zeros(len(columns.actions), dtype=np.int64)
    strip_of[[index for index, _ in present]] = np.arange(len(present))
    lanes, strips = max(lane_of.values()) + 1, len(present)
    cells = (
        _lane_per_row(columns, lane_of)[rows] * strips + strip_of[action_ids]
    ) * DENSITY_BINS + bins
    counts = np.bincount(cells, minlength=lanes * strips * DENSITY_BINS).reshape(
        lanes * strips, DENSITY_BINS
    )
    colours = [_style(action)[1] for _, action in present]
    ax.imshow(
        _heat_image(counts, colours, lanes),
        extent=(first, first + span, lanes - 0.5, -0.5),
        aspect="auto",
        interpolation="nearest",
        zorder=2,
    )
    ax.set_xlim(first - 0.03 * span, first + 1.03 * span)
    ax.set_ylim(lanes - 0.5, -0.5)
    _density_legend(ax, present, colours, rows.size, span)


def _actions_present(actions: tuple[str, ...], ids: list[int]) -> list[tuple[int, str]]:
    """(action id, action) of each action present, in `ACTIONS` order (unknown actions last)."""
    present = [(index, actions[index]) for index in ids]
    return sorted(
        present, key=lambda item: ACTIONS.index(item[1]) if item[1] in ACTIONS else len(ACTIONS)
    )


def _heat_image(counts: np.ndarray, colours: list[str], lanes: int) -> np.ndarray:
    """RGBA: each strip in its action's colour, opacity rising with log(count), clear where nothing happened."""
    import numpy as np
    from matplotlib.colors import to_rgba_array

    image = np.empty((*counts.shape, 4))
    image[..., :3] = np.tile(to_rgba_array(colours)[:, :3], (lanes, 1))[:, None, :]
    scale = np.log1p(counts) / np.log1p(max(int(counts.max()), 1))
    image[..., 3] = np.where(counts > 0, 0.2 + 0.8 * scale, 0.0)
    return image


def _density_legend(
    ax: Axes, present: list[tuple[int, str]], colours: list[str], events: int, span: float
) -> None:
    from matplotlib.patches import Patch

    handles = [
        Patch(facecolor=colour, label=action) for (_, action), colour in zip(present, colours)
    ]
    title = f"action, as density\n(too many to mark:\n{events:,} events in\n{DENSITY_BINS} bins of {_duration(span / DENSITY_BINS)};\ndarker = more)"
    ax.legend(
        handles=handles,
        title=title,
        fontsize="small",
        title_fontsize="small",
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        borderaxespad=0.0,
    )


def _duration(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e6:.3g} µs"


# -- markers ------------------------------------------------------------------


def _scatter_actions(
    ax: Axes, events: list[Event], lane_of: dict[str, int], layout: _Layout
) -> list[PathCollection]:
    """One scatter per action, in `ACTIONS` order (unknown actions last)."""
    points: dict[str, tuple[list[float], list[int]]] = {}
    for event in events:
        xs, ys = points.setdefault(event.action, ([], []))
        xs.append(event.t)
        ys.append(lane_of[event.actor])
    diameter = min(7.0, max(3.0, 0.4 * layout.lane_points))
    order = sorted(
        points, key=lambda action: ACTIONS.index(action) if action in ACTIONS else len(ACTIONS)
    )
    return [_scatter(ax, action, *points[action], diameter, 0.4 * layout.band) for action in order]


def _scatter(
    ax: Axes, action: str, xs: list[float], ys: list[int], diameter: float, row_height: float
) -> PathCollection:
    import numpy as np  # matplotlib's own dependency; arrays, not lists, keep scatter fast

    marker, colour, row = _style(action)
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


def _style(action: str) -> tuple[str, str, int]:
    """(marker, colour, row) of ``action``."""
    return {name: (marker, colour, row) for name, marker, colour, row in _STYLES}.get(
        action, _UNKNOWN_STYLE
    )


# -- mask labels --------------------------------------------------------------


def _annotate_masks(
    ax: Axes, events: list[Event], lane_of: dict[str, int], layout: _Layout
) -> None:
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


def _label(
    ax: Axes, text: str, xy: tuple[float, float], side: int, fontsize: float, *, leftwards: bool
) -> None:
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
    connections = [
        actor for actor in actors if "/" in actor
    ]  # server/conn-1, ... in order of accept
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


# -- a scale run, as measured by ``python -m echo_lib.bench --scale`` -----------------

_PHASES: tuple[tuple[str, str], ...] = (
    ("connect_s", "connect"),
    ("echo_s", "echo"),
    ("close_s", "close"),
)


def plot_scale(
    results: Iterable[Mapping[str, object] | object], *, title: str | None = None
) -> Figure:
    """Draw scale runs (the ``"scale"`` list of the bench's JSON, or `ScaleResult` s): time and memory.

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
        or f"{widest['connections']:,} concurrent connections to one EchoServer thread on {widest['selector']}"
    )
    return figure


def _scale_times(ax: Axes, rows: list[dict[str, object]], labels: list[str]) -> None:
    left = [0.0] * len(rows)
    for (field, phase), colour in zip(_PHASES, ("tab:blue", "tab:green", "tab:gray")):
        widths = [float(row[field]) for row in rows]  # type: ignore[arg-type]
        ax.barh(range(len(rows)), widths, left=left, color=colour, label=phase)
        left = [a + b for a, b in zip(left, widths)]
    for lane, (row, end) in enumerate(zip(rows, left)):
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


def _scale_memory(ax: Axes, rows: list[dict[str, object]]) -> None:
    height = 0.38
    for offset, (field, who, colour) in enumerate(
        (("server_maxrss_kib", "server", "tab:purple"), ("load_maxrss_kib", "load", "tab:orange"))
    ):
        mib = [int(row[field]) / 1024 for row in rows]  # type: ignore[call-overload]
        lanes = [lane + (offset - 0.5) * height for lane in range(len(rows))]
        ax.barh(lanes, mib, height=height, color=colour, label=f"{who} process")
        for y, value, row in zip(lanes, mib, rows):
            per = value * 1024 / max(int(row["connections"]), 1)  # type: ignore[call-overload]
            ax.annotate(
                f"{value:,.0f} MiB ({per:.1f} KiB/conn)",
                (value, y),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize="x-small",
            )
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
