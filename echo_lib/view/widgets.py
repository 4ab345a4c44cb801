"""The one widget front of echo_lib: `WidgetFront`, `ReportFront`, and the outputs they show.

A lab in `echo_lib.lessons` is a small object, not a widget: it builds its
ipywidgets, hands the box to `WidgetFront._adopt`, displays as that box in
Jupyter (`_repr_mimebundle_`) with its own deterministic text repr (no ports,
fds or times), which is what nbval compares, and keeps every control and
output as an attribute for tests. `ReportFront` adds the usual Run button that
runs something and reports it. ipywidgets and matplotlib are imported inside
functions, so importing this module costs only the standard library.

Output goes into an `ipywidgets.Output` by replacing its ``outputs`` tuple
(`stream_output`, `display_output`, `timeline_output`): nbval handles neither
``clear_output`` nor ``update_display_data``. Figures are plain
`matplotlib.figure.Figure` objects, never pyplot ones, rendered to PNG bytes
here: nothing is left for pyplot to show in the next cell, and no IPython
shell is needed (``Output.append_display_data`` would create one).

Errors are shown as text in three forms, all without tracebacks:
`describe_exception` (``TypeName: message``), `one_line_error` (a
`ValueError`'s message alone, anything else with its type, on one line) and
`describe_error` (sockets named by their role instead of their repr and fd).
"""

from __future__ import annotations

import base64
import io
import re
import sys
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ..core.events import Event
from ..core.timeline import Timeline
from ..core.transcript import one_line

if TYPE_CHECKING:
    import ipywidgets

__all__ = [
    "ReportFront",
    "WidgetFront",
    "close_tree",
    "describe_error",
    "describe_exception",
    "display_output",
    "one_line_error",
    "stream_output",
    "timeline_output",
    "timeline_png",
    "weak_callback",
]

_T = TypeVar("_T")
_SOCKET_REPR = re.compile(r"<socket\.socket [^>]*>")
_FD_NOTE = re.compile(r" \(FD -?\d+\)")


# -- errors as text -------------------------------------------------------------


def describe_exception(exc: BaseException) -> str:
    """``TypeName: message``, the message as it is."""
    return f"{type(exc).__name__}: {exc}"


def one_line_error(exc: BaseException) -> str:
    """``exc`` as one line: a `ValueError`'s message alone, else ``TypeName: message``.

    Whitespace in the message is collapsed; an empty message leaves the type.
    """
    text = " ".join(str(exc).split())
    return text if text and isinstance(exc, ValueError) else one_line(exc)


def describe_error(exc: BaseException, name: str = "a socket") -> str:
    """``KeyError: sock is already registered``: the exception, with no fds or addresses.

    Every socket repr in the message becomes ``name``; ``(FD 7)`` notes go.
    """
    text = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
    text = _SOCKET_REPR.sub(name, _FD_NOTE.sub("", str(text)))
    return f"{type(exc).__name__}: {text}"


# -- outputs and widget plumbing ------------------------------------------------------


def stream_output(text: str, *, end: str | None = None) -> dict[str, Any]:
    """One stdout output for `ipywidgets.Output.outputs`.

    ``end`` None adds a newline unless ``text`` ends with one; a string is
    appended as it is (``"\\n"``: always one more newline).
    """
    if end is None:
        end = "" if text.endswith("\n") else "\n"
    return {"output_type": "stream", "name": "stdout", "text": text + end}


def display_output(data: dict[str, str]) -> dict[str, Any]:
    """One display_data output (mime type -> data) for `ipywidgets.Output.outputs`."""
    return {"output_type": "display_data", "data": data, "metadata": {}}


def weak_callback(method: Callable[[], object]) -> Callable[[object], None]:
    """A widget callback (it ignores its one argument) that does not keep ``method``'s object alive.

    ipywidgets keeps every open widget in a registry; a strong callback would
    keep the front end (and the sockets it owns) alive as long as its buttons.
    """
    ref = weakref.WeakMethod(method)  # type: ignore[arg-type]

    def callback(_widget: object) -> None:
        bound = ref()
        if bound is not None:
            bound()

    return callback


def close_tree(widget: ipywidgets.Widget) -> None:
    """Close ``widget`` and every widget inside it."""
    for child in getattr(widget, "children", ()):
        close_tree(child)
    widget.close()


def _widget_bundle(widget: ipywidgets.Widget | None, text: str) -> dict[str, Any]:
    """``widget``'s mime bundle (none for None) with ``text`` as its text/plain."""
    bundle: dict[str, Any] = {} if widget is None else dict(widget._repr_mimebundle_())
    bundle["text/plain"] = text
    return bundle


def timeline_png(
    timeline: Timeline | Sequence[Event],
    title: str,
    *,
    width: float = 9.0,
    row_height: float = 0.3,
    max_height: float = 12.0,
    dpi: float = 96,
) -> bytes:
    """Plot ``timeline`` (or a list of events) on a pyplot-free figure and return it as PNG bytes.

    The figure is ``width`` inches wide and ``2 + row_height`` inches per
    actor high, at most ``max_height``.
    """
    from matplotlib.figure import Figure

    from .plotting import plot_timeline

    actors = (
        timeline.actors()
        if isinstance(timeline, Timeline)
        else dict.fromkeys(e.actor for e in timeline)
    )
    fig = Figure(figsize=(width, min(2.0 + row_height * len(actors), max_height)))
    try:
        plot_timeline(timeline, ax=fig.add_subplot(), title=title)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        if "matplotlib.pyplot" in sys.modules:  # in case plot_timeline involved pyplot
            sys.modules["matplotlib.pyplot"].close(fig)
    return buffer.getvalue()


def timeline_output(
    timeline: Timeline | Sequence[Event],
    title: str,
    *,
    describe_error: Callable[[BaseException], str] = one_line_error,
    end: str | None = None,
    **size: float,
) -> dict[str, Any]:
    """The timeline as a PNG display_data output (text/plain ``<timeline: TITLE>``).

    ``size`` is `timeline_png`'s ``width``, ``row_height``, ``max_height``
    and ``dpi``. If plotting fails: one stream output ``plot failed: ...``,
    the error as ``describe_error`` puts it (``end`` as in `stream_output`).
    """
    try:
        png = timeline_png(timeline, title, **size)
    except Exception as exc:  # the text next to the plot is still worth showing
        return stream_output(f"plot failed: {describe_error(exc)}", end=end)
    return display_output(
        {"image/png": base64.b64encode(png).decode("ascii"), "text/plain": f"<timeline: {title}>"}
    )


# -- the front --------------------------------------------------------------------


class WidgetFront:
    """Display as `widget`, with our own deterministic text (``repr(self)``) instead of its repr.

    A subclass builds its widgets, then calls ``self._adopt(box)``. The widgets
    are closed by `close()`, or when this object is garbage collected (give
    its buttons `weak_callback` callbacks, so they hold it only weakly).
    """

    widget: ipywidgets.Box

    def _adopt(self, widget: ipywidgets.Box) -> None:
        self.widget = widget
        self._widget_finalizer = weakref.finalize(self, close_tree, widget)

    @property
    def closed(self) -> bool:
        """True after `close()`."""
        return not self._widget_finalizer.alive

    def _repr_mimebundle_(self, include: object = None, exclude: object = None) -> dict[str, Any]:
        return _widget_bundle(None if self.closed else self.widget, repr(self))

    def close(self) -> None:
        """Close the widgets (idempotent)."""
        self._widget_finalizer()


class ReportFront(WidgetFront):
    """A `WidgetFront` whose Run button (`run_button`) runs something and reports it in `out`.

    `_run_and_report` does what Run does; `last` is the last result (None
    before a run and after a failed one), `text()` its report.
    """

    run_button: ipywidgets.Button
    out: ipywidgets.Output
    last: Any = None
    _text = "not run yet"

    def _run_and_report(
        self, doing: str, run: Callable[[], _T], plot: Callable[[_T], dict[str, Any]]
    ) -> _T | None:
        """Show ``doing``, call ``run()``, show ``str(result)`` and ``plot(result)``; return it.

        A failure is shown as one ``run failed: TypeName: message`` line and
        returns None. The button is disabled while ``run()`` runs.
        """
        self.run_button.disabled = True
        self.out.outputs = (stream_output(doing),)
        try:
            self.last = run()
        except Exception as exc:  # shown in the widget; the run closed its threads and sockets
            self.last, self._text = None, f"run failed: {describe_exception(exc)}"
            self.out.outputs = (stream_output(self._text, end="\n"),)
            return None
        finally:
            self.run_button.disabled = False
        self._text = str(self.last)
        self.out.outputs = (stream_output(self._text, end="\n"), plot(self.last))
        return self.last

    def text(self) -> str:
        """The report of the last run, or ``not run yet``."""
        return self._text
