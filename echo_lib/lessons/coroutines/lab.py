"""`StylesLab`, notebook 08's widget: pick a style and a client count, Run shows the timeline."""

from __future__ import annotations

from typing import Any

from ...view.widgets import ReportFront, describe_exception, timeline_output, weak_callback
from .observe import MAX_CLIENTS, check_clients
from .styles import STYLES, StyleRun, check_style, run_style

__all__ = ["StylesLab", "styles_lab"]


class StylesLab(ReportFront):
    """Choose a style and a number of clients, press Run: the selector's timeline and the results.

    Attributes: the controls `style` (ToggleButtons over `STYLES`), `clients`
    and `run_button`; the Output `out`; `widget`, the whole VBox; `last`, the
    last `StyleRun` (or None). Its text repr and `text()` are deterministic.
    """

    def __init__(self, style: str, clients: int) -> None:
        import ipywidgets as widgets

        css = {"description_width": "6em"}
        self.style = widgets.ToggleButtons(
            options=list(STYLES), value=style, description="style", style=css
        )
        self.clients = widgets.IntSlider(
            clients, min=1, max=MAX_CLIENTS, description="clients", style=css
        )
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.out = widgets.Output()
        self._adopt(widgets.VBox([self.style, self.clients, self.run_button, self.out]))
        self.run_button.on_click(weak_callback(self.run))
        self.last: StyleRun | None = None

    def run(self) -> StyleRun | None:
        """What Run does. Returns the `StyleRun`, or None if it failed (shown as one line)."""
        style, clients = self.style.value, self.clients.value
        doing = f"running the {style} server with {clients} clients ..."
        return self._run_and_report(doing, lambda: run_style(style, clients), _plot_output)

    def __repr__(self) -> str:
        last = "not run yet"
        if self.last is not None:
            last = f"last run: {self.last.style}, {len(self.last.results)} clients"
        return f"<StylesLab: {len(STYLES)} styles; {last}>"


def styles_lab(style: str = "callbacks", clients: int = 3) -> StylesLab:
    """The widget; raises `ValueError` for an unknown style, ``clients`` not in 1..`MAX_CLIENTS`."""
    return StylesLab(check_style(style), check_clients(clients))


def _plot_output(run: StyleRun) -> dict[str, Any]:
    """The run's selector timeline as a PNG display output, on a figure pyplot never sees."""
    title = f"{run.style}: what the selector did"
    return timeline_output(
        run.timeline, title, max_height=8.0, describe_error=describe_exception, end="\n"
    )
