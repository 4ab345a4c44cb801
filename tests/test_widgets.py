"""The widget front (`echo_lib.view.widgets`): outputs, error text, WidgetFront and ReportFront."""

from __future__ import annotations

import gc
import socket
import sys

import pytest

pytest.importorskip("ipywidgets")
matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import ipywidgets  # noqa: E402

from echo_lib import Timeline  # noqa: E402
from echo_lib.view.widgets import (  # noqa: E402
    ReportFront,
    describe_error,
    describe_exception,
    one_line_error,
    stream_output,
    timeline_output,
    weak_callback,
)


class Report(ReportFront):
    """The smallest ReportFront: Run calls ``job``."""

    def __init__(self, job: object) -> None:
        self.job = job
        self.run_button = ipywidgets.Button(description="Run")
        self.out = ipywidgets.Output()
        self._adopt(ipywidgets.VBox([self.run_button, self.out]))
        self.run_button.on_click(weak_callback(self.run))

    def run(self) -> object:
        return self._run_and_report("running ...", self.job, lambda _: stream_output("plot"))

    def __repr__(self) -> str:
        return "<Report>"


def test_stream_output_adds_one_newline_unless_told() -> None:
    assert stream_output("a")["text"] == "a\n"
    assert stream_output("a\n")["text"] == "a\n"
    assert stream_output("a\n", end="\n")["text"] == "a\n\n"


def test_error_texts() -> None:
    assert describe_exception(KeyError("x")) == "KeyError: 'x'"
    assert one_line_error(ValueError("bad\n  value")) == "bad value"
    assert one_line_error(OSError("refused")) == "OSError: refused"
    assert one_line_error(RuntimeError()) == "RuntimeError"
    with socket.socket() as sock:
        exc = KeyError(f"{sock!r} (FD {sock.fileno()}) is already registered")
        assert describe_error(exc, "sock") == "KeyError: sock is already registered"


def test_a_report_front_shows_the_result_and_a_failure_in_one_line() -> None:
    front = Report(lambda: 42)
    try:
        assert (
            front.text() == "not run yet" and front._repr_mimebundle_()["text/plain"] == "<Report>"
        )
        front.run_button.click()
        assert front.last == 42 and front.text() == "42"
        assert [o["text"] for o in front.out.outputs] == ["42\n", "plot\n"]
        front.job = lambda: 1 / 0
        assert front.run() is None and front.last is None
        assert front.text() == "run failed: ZeroDivisionError: division by zero"
        assert not front.run_button.disabled
    finally:
        front.close()
    assert front.closed and front.widget.comm is None
    assert "application/vnd.jupyter.widget-view+json" not in front._repr_mimebundle_()


def test_an_abandoned_front_closes_its_widgets() -> None:
    front = Report(lambda: None)
    widget = front.widget
    del front
    gc.collect()
    assert widget.comm is None


def test_timeline_output_is_a_png_or_one_line() -> None:
    timeline = Timeline()
    timeline.record("client-1", "connect")
    shown = timeline_output(timeline, "one event")
    assert shown["data"]["text/plain"] == "<timeline: one event>" and shown["data"]["image/png"]
    failed = timeline_output([object()], "bad")  # type: ignore[list-item]
    assert failed["text"].startswith("plot failed: ") and failed["text"].count("\n") == 1


def test_widgets_module_imports_with_the_standard_library_only() -> None:
    import subprocess

    code = (
        "import sys, echo_lib.view.widgets, echo_lib.view.plotting, echo_lib.lessons.scale, "
        "echo_lib.lessons.masks; "
        "print(sorted(m for m in ('ipywidgets', 'matplotlib', 'IPython') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"
