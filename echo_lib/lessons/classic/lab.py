"""Notebook 05's fault lab: pick a fault and a version, press Run, see the timeline and outcome."""

from __future__ import annotations

from typing import Any

from ...core.events import Event
from ...core.timeline import Timeline
from ...core.transcript import one_line
from ...view.widgets import WidgetFront, stream_output, timeline_output, weak_callback
from .faults import FAULTS, VERSIONS, Outcome, run_fault

__all__ = ["FaultLab", "fault_lab"]


def _plot_events(timeline: Timeline) -> list[Event]:
    return [e for e in timeline.events() if e.action not in ("log", "select")]


class FaultLab(WidgetFront):
    """Pick a fault and a version, press Run: the timeline and the outcome.

    Attributes: the controls `fault`, `version`, `run_button`, the `out`
    Output, `widget` (the whole VBox), `last` (the last `Outcome`). `run()`
    does what the button does and returns the outcome's text; `choose()`
    sets the controls. Displays as the widget, with a deterministic text repr.
    """

    def __init__(self, fault: int = 1, version: str = "classic", *, plot: bool = True) -> None:
        import ipywidgets as widgets

        self.plot = plot
        options = [(f"{n}. {name}", n) for n, (name, _) in FAULTS.items()]
        self.fault = widgets.Dropdown(options=options, value=fault, description="fault")
        self.version = widgets.ToggleButtons(
            options=list(VERSIONS), value=version, description="version"
        )
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.out = widgets.Output()
        self._adopt(widgets.VBox([self.fault, self.version, self.run_button, self.out]))
        self.run_button.on_click(weak_callback(self.run))
        self.last: Outcome | None = None
        self._text = "not run yet"

    def choose(self, fault: int, version: str) -> FaultLab:
        """Set the controls. Raises `ValueError` for an unknown fault or version."""
        _check_choice(fault, version)
        self.fault.value, self.version.value = fault, version
        return self

    def run(self) -> str:
        """Run the chosen scenario; show its timeline and outcome; return the outcome's text."""
        fault, version = self.fault.value, self.version.value
        what = FAULTS[fault][1]
        try:
            self.last = run_fault(fault, version)
        except Exception as exc:  # shown, not raised: this runs from a button
            self.last, self._text = (
                None,
                f"fault {fault}, {version}: the run failed: {one_line(exc)}",
            )
            self.out.outputs = (stream_output(self._text),)
            return self._text
        self._text = f"{self.last.text()}\n(the fault: {what})"
        outputs = [stream_output(self._text)]
        if self.plot:
            outputs.insert(0, self._figure(self.last))
        self.out.outputs = tuple(outputs)
        return self._text

    def _figure(self, outcome: Outcome) -> dict[str, Any]:
        title = f"fault {outcome.fault}: {FAULTS[outcome.fault][0]} ({outcome.version})"
        events = _plot_events(outcome.timeline)
        return timeline_output(
            events, title, row_height=0.35, max_height=8.0, dpi=90, describe_error=one_line
        )

    def text(self) -> str:
        """What the output shows as text: the last outcome, or ``not run yet``."""
        return self._text

    def __repr__(self) -> str:
        last = f"last run: {self.last.verdict}" if self.last else "not run yet"
        fault = f"fault {self.fault.value} ({FAULTS[self.fault.value][0]})"
        return f"<FaultLab: {fault}, {self.version.value}; {last}>"


def fault_lab(fault: int = 1, version: str = "classic") -> FaultLab:
    """The fault lab, starting at ``fault`` (1-5) and ``version`` ("classic" or "fixed")."""
    _check_choice(fault, version)
    return FaultLab(fault, version)


def _check_choice(fault: int, version: str) -> None:
    if fault not in FAULTS or version not in VERSIONS:
        raise ValueError(
            f"expected a fault in {sorted(FAULTS)} and a version in {VERSIONS}, "
            f"got {fault!r}, {version!r}"
        )
