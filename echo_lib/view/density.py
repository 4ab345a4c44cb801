"""The density mode of a timeline plot (a heat strip per lane), and grouped lanes for many actors.

Zoomed out, markers would overlap by the thousand, so `plot_timeline` switches
by itself to density: each lane becomes a heat strip, one thin row per action
present, the run cut into `DENSITY_BINS` time bins and each cell shaded by the
log of its event count. It is one image, drawn from the timeline's columns
with numpy, so a million events plot in well under a second.

With more than `MAX_LANES` actors, lanes are grouped into about
`GROUPED_LANES`: actors whose names differ only in their numbers
(``client-17``, ``server/conn-4``) form a family, and each family gets lanes in
proportion to its size, each lane holding a run of consecutive actors.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..core.timeline import Columns
from .markers import action_order, action_style, legend_outside

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.axes import Axes

__all__ = [
    "DENSITY_BINS",
    "GROUPED_LANES",
    "MAX_LANES",
    "draw_density",
    "group_lanes",
    "lane_per_row",
]

#: The time bins of a density plot.
DENSITY_BINS = 400
#: With more actors than this, lanes are grouped...
MAX_LANES = 64
#: ...into about this many lanes (at most 1.5 times as many: each family gets one at least).
GROUPED_LANES = 24

_DIGITS = re.compile(r"\d+")


def group_lanes(names: list[str]) -> tuple[list[str], dict[str, int]]:
    """(lane labels, actor -> lane): a lane per actor, or runs of actors when there are too many."""
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
    """Names differing only in their numbers, together; all in one family if there are too many."""
    families: dict[str, list[str]] = {}
    for name in names:
        families.setdefault(_DIGITS.sub("#", name), []).append(name)
    return list(families.values()) if len(families) <= GROUPED_LANES // 2 else [names]


def _runs(items: list[str], count: int) -> list[list[str]]:
    """``items`` cut into at most ``count`` runs of consecutive items, of near-equal length."""
    size = -(-len(items) // count)
    return [items[start : start + size] for start in range(0, len(items), size)]


# -- rows in view ------------------------------------------------------------------


def lane_per_row(columns: Columns, lane_of: dict[str, int]) -> np.ndarray:
    """The lane of each row, -1 for an actor that is not shown."""
    import numpy as np

    lookup = np.array([lane_of.get(text, -1) for text in columns.strings] or [-1], dtype=np.int64)
    return lookup[np.frombuffer(columns.actor, dtype=np.uint32)]


# -- density: a heat strip per lane ------------------------------------------------


def draw_density(
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
    lanes = max(lane_of.values()) + 1
    counts = _cell_counts(columns, rows, lane_of, (action_ids, bins), present)
    colours = [action_style(action)[1] for _, action in present]
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


def _cell_counts(
    columns: Columns,
    rows: np.ndarray,
    lane_of: dict[str, int],
    action_and_bin: tuple[np.ndarray, np.ndarray],
    present: list[tuple[int, str]],
) -> np.ndarray:
    """Events per (lane, action present) row and time bin: a (lanes * strips, bins) array."""
    import numpy as np

    action_ids, bins = action_and_bin
    strip_of = np.zeros(len(columns.actions), dtype=np.int64)
    strip_of[[index for index, _ in present]] = np.arange(len(present))
    lanes, strips = max(lane_of.values()) + 1, len(present)
    cells = (
        lane_per_row(columns, lane_of)[rows] * strips + strip_of[action_ids]
    ) * DENSITY_BINS + bins
    return np.bincount(cells, minlength=lanes * strips * DENSITY_BINS).reshape(
        lanes * strips, DENSITY_BINS
    )


def _actions_present(actions: tuple[str, ...], ids: list[int]) -> list[tuple[int, str]]:
    """(action id, action) of each action present, in `ACTIONS` order (unknown actions last)."""
    present = [(index, actions[index]) for index in ids]
    return sorted(present, key=lambda item: action_order(item[1]))


def _heat_image(counts: np.ndarray, colours: list[str], lanes: int) -> np.ndarray:
    """RGBA: each strip in its action's colour, opacity rising with log(count), clear if empty."""
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
        Patch(facecolor=colour, label=action)
        for (_, action), colour in zip(present, colours, strict=True)
    ]
    title = (
        f"action, as density\n(too many to mark:\n{events:,} events in\n"
        f"{DENSITY_BINS} bins of {_duration(span / DENSITY_BINS)};\ndarker = more)"
    )
    legend_outside(ax, handles, title, title_fontsize="small")


def _duration(seconds: float) -> str:
    for unit, scale in (("s", 1.0), ("ms", 1e-3)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e6:.3g} µs"
