"""`SelectCostLab`, notebook 07's widget: pick a class and a count, Run adds a point to the plot."""

from __future__ import annotations

import base64
import selectors
import sys
import weakref
from functools import partial
from typing import Any

from ...driver.fds import IdleSockets, MoreFds, open_fd_count
from ...driver.implementations import FD_SETSIZE, available_selectors
from ...driver.selector_probes import select_cost
from ...view.widgets import WidgetFront, display_output, stream_output, weak_callback
from .costs import COUNTS, FD_MARGIN, CostPoint, CostTable, room, sockets_text
from .plot import select_costs_png

__all__ = ["SelectCostLab", "select_cost_lab"]


class SelectCostLab(WidgetFront):
    """Pick a selector class and a number of idle sockets; Run measures a point and plots them all.

    `run()` does what the button does and returns the new `CostPoint` (None
    when the class cannot watch that many sockets here, e.g. SelectSelector
    past FD_SETSIZE: the lab says so). `points` holds every point measured;
    `text()` is what the lab shows. Its repr names the settings and the
    number of points, never a time. The controls are `selector_menu`,
    `sockets_menu`, `run_button` and `clear_button`; the Output is `out`.

    Raises `ValueError` for a class this platform lacks or a count not offered.
    """

    def __init__(self, selector: str, sockets: int) -> None:
        import ipywidgets as widgets

        self.table, self.lines = CostTable(), []  # the lines shown so far, oldest first
        self._selector, self._sockets = _checked_selector(selector), _checked_sockets(sockets)
        menu = partial(widgets.Dropdown, style={"description_width": "10em"})
        names, counts = list(available_selectors()), [(f"{n:,}", n) for n in COUNTS]
        self.selector_menu = menu(options=names, value=selector, description="selector class")
        self.sockets_menu = menu(options=counts, value=sockets, description="idle sockets")
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.clear_button = widgets.Button(description="Clear", icon="trash")
        self.out = widgets.Output()
        buttons = widgets.HBox([self.run_button, self.clear_button])
        self._adopt(widgets.VBox([self.selector_menu, self.sockets_menu, buttons, self.out]))
        self.run_button.on_click(weak_callback(self.run))
        self.clear_button.on_click(weak_callback(self.clear))
        ref = weakref.ref(self)  # the dropdowns must not keep the lab alive
        self.selector_menu.observe(lambda c: _set(ref, "selector", c["new"]), names="value")
        self.sockets_menu.observe(lambda c: _set(ref, "sockets", c["new"]), names="value")

    @property
    def selector(self) -> str:
        """The class measured by `run()`, by name; setting it moves the dropdown too."""
        return self._selector

    @selector.setter
    def selector(self, name: str) -> None:
        self._selector = self.selector_menu.value = _checked_selector(name)

    @property
    def sockets(self) -> int:
        """How many idle sockets `run()` registers; setting it moves the dropdown too."""
        return self._sockets

    @sockets.setter
    def sockets(self, count: int) -> None:
        self._sockets = self.sockets_menu.value = _checked_sockets(count)

    @property
    def points(self) -> list[CostPoint]:
        return self.table.points

    def run(self) -> CostPoint | None:
        """Measure ``select(0)`` for the chosen class and number of idle sockets; add the point."""
        refusal = self._cannot_watch()
        if refusal is not None:
            return self._say(refusal)
        with MoreFds(self.sockets + open_fd_count() + FD_MARGIN) as fds:
            if self.sockets > room(fds.limit):
                return self._say(
                    f"{sockets_text(self.sockets)}: more than RLIMIT_NOFILE allows here"
                )
            with IdleSockets(self.sockets) as socks:
                refusal = self._cannot_watch(socks[-1].fileno())
                if refusal is not None:
                    return self._say(refusal)
                cls = available_selectors()[self.selector]
                point = CostPoint(self.selector, self.sockets, select_cost(cls, socks))
        same = (point.selector, point.sockets)
        self.table.points = [p for p in self.points if (p.selector, p.sockets) != same] + [point]
        self._say(str(point))
        return point

    def _cannot_watch(self, highest: int | None = None) -> str | None:
        """Why select() cannot watch the sockets (``highest``: their top fd, once open), or None."""
        if self.selector != "SelectSelector" or sys.platform == "win32":
            return None
        what, limit = f"SelectSelector cannot watch {sockets_text(self.sockets)}", FD_SETSIZE
        if highest is None and self.sockets >= limit:  # no need to open them to know
            return (
                f"{what}: they need fds up to {self.sockets - 1} at least, "
                f"and select() only takes fds below FD_SETSIZE ({limit})"
            )
        if highest is not None and highest >= limit:
            return (
                f"{what} here: the highest is fd {highest}, "
                f"and select() only takes fds below FD_SETSIZE ({limit})"
            )
        return None

    def _say(self, line: str) -> None:
        self.lines.append(line)
        self._show()

    def _show(self) -> None:
        outputs = [stream_output(self.text(), end="\n")]
        if self.points:
            png = select_costs_png(self.table, "select(0) cost, measured here")
            plot = {"image/png": base64.b64encode(png).decode("ascii")}
            outputs.append(display_output({**plot, "text/plain": "<select() cost plot>"}))
        self.out.outputs = tuple(outputs)

    def text(self) -> str:
        """Every line the lab has shown, oldest first (times in them vary from run to run)."""
        return "\n".join(self.lines) if self.lines else "no point measured yet"

    def clear(self) -> None:
        """Forget every point."""
        self.table, self.lines = CostTable(), []
        self._show()

    def __repr__(self) -> str:
        count = len(self.points)
        settings = f"{self.selector}, {sockets_text(self.sockets)}"
        return f"<SelectCostLab: {settings}; {count} point{'s' * (count != 1)} measured>"


def _checked_selector(name: str) -> str:
    names = list(available_selectors())
    if name not in names:
        raise ValueError(f"selector must be one of {', '.join(names)}, got {name!r}")
    return name


def _checked_sockets(count: int) -> int:
    if count not in COUNTS:
        raise ValueError(f"sockets must be one of {', '.join(map(str, COUNTS))}, got {count!r}")
    return count


def _set(ref: weakref.ref[SelectCostLab], name: str, value: Any) -> None:
    lab = ref()
    if lab is not None and getattr(lab, name) != value:
        setattr(lab, name, value)


def select_cost_lab(selector: str | None = None, sockets: int = 1000) -> SelectCostLab:
    """A `SelectCostLab` at ``selector`` (default: DefaultSelector's class) and ``sockets``.

    Display it for the widget. Raises `ValueError` for a class this platform
    lacks or a count not in `COUNTS`.
    """
    return SelectCostLab(selector or selectors.DefaultSelector.__name__, sockets)
