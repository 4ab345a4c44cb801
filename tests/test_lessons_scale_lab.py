"""The echo lab (`echo_lib.lessons.scale`), driven without a browser: set controls, click, read."""

from __future__ import annotations

import base64
import re
import selectors
import sys

import pytest

pytest.importorskip("ipywidgets")
matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from echo_lib import available_selectors  # noqa: E402
from echo_lib.driver.implementations import SELECTOR_NAMES  # noqa: E402
from echo_lib.lessons.scale import (  # noqa: E402
    MAX_RUN_BYTES,
    EchoConfig,
    EchoLab,
    _run_echo,
    echo_lab,
)

KiB, MiB = 1 << 10, 1 << 20
DEFAULT = selectors.DefaultSelector.__name__
MISSING = [name for name in SELECTOR_NAMES if name not in available_selectors()]


def stdout_of(widget: EchoLab) -> str:
    """Everything the widget's Output shows as stdout."""
    return "".join(o["text"] for o in widget.out.outputs if o["output_type"] == "stream")


@pytest.fixture
def lab() -> EchoLab:
    front = echo_lab()
    yield front
    front.close()


# -- echo_lab -------------------------------------------------------------------


def test_lab_repr_before_a_run_is_deterministic(lab: EchoLab) -> None:
    assert (
        repr(lab)
        == f"<EchoLab: 3 clients x 2 messages of 1 KiB, {DEFAULT}, SO_SNDBUF system default; "
        "not run yet>"
    )
    assert lab.text() == "not run yet" and lab.last_results == [] and lab.out.outputs == ()


def test_lab_displays_as_its_widget_with_our_text(lab: EchoLab) -> None:
    bundle = lab._repr_mimebundle_()
    assert bundle["text/plain"] == repr(lab)
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == lab.widget.model_id


def test_lab_click_runs_three_clients_and_shows_summary_and_plot(lab: EchoLab) -> None:
    lab.clients.value, lab.messages.value, lab.payload.value = 3, 2, KiB
    lab.run_button.click()
    text = stdout_of(lab)
    assert text.splitlines()[:5] == [
        f"3 clients x 2 messages of 1 KiB, {DEFAULT}, SO_SNDBUF system default",
        "client-1: sent 2048 bytes, received 2048 bytes: complete",
        "client-2: sent 2048 bytes, received 2048 bytes: complete",
        "client-3: sent 2048 bytes, received 2048 bytes: complete",
        "total bytes echoed: 6144 of 6144",
    ]
    assert "connections accepted by the server: 3" in text
    assert re.search(r"^partial sends by the server: \d+$", text, re.M)
    assert re.search(r"^modify\(\) calls: \d+ by the server, \d+ by the clients$", text, re.M)
    assert [r.complete for r in lab.last_results] == [True, True, True] and lab.last_error is None
    assert repr(lab).endswith("; last run: 3 of 3 echoes complete, 6144 bytes>")
    assert not lab.run_button.disabled


def test_lab_plot_is_a_png_and_leaves_no_pyplot_figure(lab: EchoLab) -> None:
    figures_before = _pyplot_figures()
    lab.run()
    (image,) = [o for o in lab.out.outputs if o["output_type"] == "display_data"]
    assert base64.b64decode(image["data"]["image/png"]).startswith(b"\x89PNG\r\n\x1a\n")
    assert _pyplot_figures() == figures_before


def _pyplot_figures() -> list[int]:
    pyplot = sys.modules.get("matplotlib.pyplot")
    return [] if pyplot is None else pyplot.get_fignums()


def test_lab_run_returns_results_and_each_run_replaces_the_output(lab: EchoLab) -> None:
    lab.clients.value = 1
    first = lab.run()
    lab.clients.value = 2
    second = lab.run()
    assert [r.name for r in first] == ["client-1"] and [r.name for r in second] == [
        "client-1",
        "client-2",
    ]
    assert len(lab.out.outputs) == 2 and stdout_of(lab).count("total bytes echoed") == 1
    assert lab.last_timeline is not None and lab.last_timeline.counts("server")["accept"] == 2


def test_lab_small_send_buffer_still_echoes_everything() -> None:
    lab = echo_lab(clients=2, messages=2, payload=MiB, sndbuf=4 * KiB)
    try:
        results = lab.run()
    finally:
        lab.close()
    assert all(r.complete for r in results)
    assert f"total bytes echoed: {4 * MiB} of {4 * MiB}" in lab.text()
    assert "SO_SNDBUF 4 KiB" in lab.text()


@pytest.mark.skipif(not MISSING, reason="this platform has every selector class")
def test_lab_missing_selector_is_one_line_not_a_traceback() -> None:
    lab = echo_lab(selector=MISSING[0])
    try:
        assert lab.selector.value == MISSING[0] and MISSING[0] in lab.selector.options
        assert lab.run() == []
    finally:
        lab.close()
    text = stdout_of(lab)
    assert text.count("\n") == 1 and "Traceback" not in text
    assert text.startswith(f"run failed: {MISSING[0]} is not available on {sys.platform}")
    assert lab.last_error is not None and repr(lab).endswith("; last run failed>")


def test_lab_over_budget_is_refused_in_one_line() -> None:
    lab = echo_lab(clients=50, messages=20, payload=4 * MiB)
    try:
        assert lab.run() == []
    finally:
        lab.close()
    assert lab.text().startswith("run failed: 50 clients x 20 messages of 4 MiB")
    assert f"more than the {MAX_RUN_BYTES // MiB} MiB" in lab.text() and "\n" not in lab.text()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"clients": 0}, "clients must be an int in 1..50, got 0"),
        ({"messages": 21}, "messages must be an int in 1..20, got 21"),
        ({"payload": 1000}, "payload must be one of"),
        ({"sndbuf": 1234}, "sndbuf must be one of"),
        ({"selector": "nonsense"}, "unknown selector 'nonsense'"),
    ],
)
def test_lab_rejects_bad_defaults(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        echo_lab(**kwargs)


def test_lab_accepts_a_selector_class_or_short_name() -> None:
    for spec in (selectors.SelectSelector, "select"):
        lab = echo_lab(selector=spec)
        assert lab.selector.value == "SelectSelector"
        lab.close()


def test_lab_late_clients_give_partial_results_and_leave_nothing_open() -> None:
    config = EchoConfig(2, 8, 4 * MiB, DEFAULT, 4 * KiB)
    results, timeline = _run_echo(config, timeout=0.01)
    assert len(results) == 2 and not all(r.complete for r in results)
    assert any("not finished" in str(r) for r in results)
    assert timeline.counts("server")["accept"] >= 1


def test_lab_close_closes_the_widgets_and_refuses_to_run(lab: EchoLab) -> None:
    lab.close()
    lab.close()
    assert lab.closed and lab.widget.comm is None
    assert lab._repr_mimebundle_() == {"text/plain": repr(lab)}
    with pytest.raises(RuntimeError, match="closed"):
        lab.run()


def test_singular_counts_in_repr() -> None:
    lab = echo_lab(clients=1, messages=1, payload=16)
    try:
        assert repr(lab).startswith("<EchoLab: 1 client x 1 message of 16 B, ")
    finally:
        lab.close()
