"""The ipywidgets front ends, driven without a browser: set controls, click, read the text."""

from __future__ import annotations

import base64
import gc
import re
import selectors
import sys
import threading
import warnings

import pytest

pytest.importorskip("ipywidgets")
matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from echo_lib import SelectorLoop, available_selectors  # noqa: E402
from echo_lib.driver.implementations import SELECTOR_NAMES  # noqa: E402
from echo_lib.view.widgets import (  # noqa: E402
    MAX_RUN_BYTES,
    EchoConfig,
    EchoLab,
    StepThrough,
    _run_echo,
    echo_lab,
    step_through,
)

KiB, MiB = 1 << 10, 1 << 20
DEFAULT = selectors.DefaultSelector.__name__
MISSING = [name for name in SELECTOR_NAMES if name not in available_selectors()]


def stdout_of(widget: EchoLab | StepThrough) -> str:
    """Everything the widget's Output shows as stdout."""
    return "".join(o["text"] for o in widget.out.outputs if o["output_type"] == "stream")


def key_map(text: str) -> dict[str, tuple[str, str]]:
    """actor -> (registered for, ready in this step), parsed from `StepThrough.text()`."""
    block = text.split("registered keys:\n", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    cells = [re.split(r"\s{2,}", line.strip()) for line in block]
    return {row[0]: (row[1], row[2]) for row in cells}


@pytest.fixture
def lab() -> EchoLab:
    front = echo_lab()
    yield front
    front.close()


@pytest.fixture
def stepper() -> StepThrough:
    front = step_through()
    yield front
    front.close()


# -- echo_lab -------------------------------------------------------------------


def test_lab_repr_before_a_run_is_deterministic(lab: EchoLab) -> None:
    assert (
        repr(lab)
        == f"<EchoLab: 3 clients x 2 messages of 1 KiB, {DEFAULT}, SO_SNDBUF system default; not run yet>"
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


# -- step_through ---------------------------------------------------------------


def test_step_zero_shows_the_setup(stepper: StepThrough) -> None:
    text = stepper.text()
    assert text.startswith("step 0: nothing selected yet\n")
    assert key_map(text) == {
        "server": ("READ", "-"),
        "client-1": ("READ|WRITE", "-"),
        "client-2": ("READ|WRITE", "-"),
    }
    assert "events while setting up:" in text and stepper.steps == 0 and not stepper.done


def test_first_step_listener_ready_for_read_clients_for_write(stepper: StepThrough) -> None:
    assert stepper.step() == 3
    text = stepper.text()
    keys = key_map(text)
    assert keys["server"] == ("READ", "READ")
    assert keys["client-1"] == keys["client-2"] == ("READ|WRITE", "WRITE")
    assert keys["server/conn-1"] == keys["server/conn-2"] == ("READ", "-")
    assert text.startswith("step 1: 3 ready\n") and "events in step 1:" in text
    assert re.search(r"^ +\d+  server +accept +conn-1$", text, re.M)
    assert " register " in text and " connect " not in text, "only this step's events"


def test_step_events_are_exactly_the_new_ones(stepper: StepThrough) -> None:
    stepper.step()
    stepper.step()
    listed = [
        int(line.split()[0])
        for line in stepper.text().split("events in step 2:\n", 1)[1].splitlines()
    ]
    seqs = [e.seq for e in stepper.timeline.events()]
    assert (
        listed == seqs[seqs.index(listed[0]) :]
        and stepper.timeline.events()[listed[0] - 1].action == "select"
    )


def test_stepping_reaches_done(selector_name: str) -> None:
    stepper = step_through(selector=selector_name)
    try:
        while not stepper.done and stepper.steps < 50:
            stepper.step()
        assert stepper.done and stepper.steps < 50
        assert stepper.text().split("\n", 1)[0].endswith("; done: all echoes complete")
        assert all(c.result().complete for c in stepper.clients) and stepper.server.connections == 0
        assert key_map(stepper.text())["server"][0] == "READ", "the listener stays registered"
    finally:
        stepper.close()


def test_a_step_after_done_polls_and_finds_nothing(stepper: StepThrough) -> None:
    stepper.run_to_end()
    assert stepper.step() == 0
    assert "poll, nothing ready" in stepper.text() and stepper.done


def _texts(selector: str | None, clients: int) -> list[str]:
    stepper = step_through(clients=clients, selector=selector)
    try:
        texts = [stepper.text()]
        while not stepper.done and stepper.steps < 50:
            stepper.step()
            texts.append(stepper.text())
        return texts
    finally:
        stepper.close()


@pytest.mark.parametrize("clients", [1, 3])
def test_two_fresh_runs_show_identical_text(selector_name: str, clients: int) -> None:
    first, second = _texts(selector_name, clients), _texts(selector_name, clients)
    assert first == second and len(first) > 3


def test_text_has_no_ports_fds_or_times(stepper: StepThrough) -> None:
    port = str(stepper.server.address[1])
    stepper.run_to_end()
    text = stepper.text() + stdout_of(stepper) + stepper.status.value + repr(stepper)
    assert "127.0.0.1" not in text and port not in text and "0x" not in text


def test_buttons_step_run_and_reset(stepper: StepThrough) -> None:
    initial = stepper.text()
    stepper.step_button.click()
    assert stepper.steps == 1 and stepper.status.value == "step 1: 3 ready"
    stepper.run_button.click()
    assert stepper.done and "done" in stepper.status.value
    old_loop = stepper.loop
    stepper.reset_button.click()
    assert stepper.steps == 0 and not stepper.done and stepper.text() == initial
    assert old_loop.closed and not stepper.loop.closed


def test_run_to_end_is_bounded() -> None:
    stepper = step_through(clients=1, messages=[b"x" * (8 * MiB)])
    try:
        assert stepper.run_to_end(max_steps=3) == 3 and not stepper.done
        assert "events in steps 1-3:" in stepper.text()
        with pytest.raises(ValueError, match="max_steps must be an int in 1..1000, got 1001"):
            stepper.run_to_end(max_steps=1001)
        stepper.run_to_end()
        assert stepper.done and stepper.clients[0].result().complete
    finally:
        stepper.close()


def test_output_is_replaced_not_appended(stepper: StepThrough) -> None:
    for _ in range(3):
        stepper.step()
        html, stream = stepper.out.outputs
        assert (
            html["data"]["text/html"].startswith("<table>")
            and html["data"]["text/plain"] in stepper.text()
        )
        assert stream["text"].startswith(f"events in step {stepper.steps}:")


def test_repr_is_deterministic(stepper: StepThrough) -> None:
    assert repr(stepper) == "<StepThrough echo: 2 clients x 2 messages; step 0>"
    stepper.run_to_end()
    assert (
        repr(stepper) == f"<StepThrough echo: 2 clients x 2 messages; step {stepper.steps}, done>"
    )
    assert stepper._repr_mimebundle_()["text/plain"] == repr(stepper)


def test_a_failing_callback_is_one_line_and_stops_stepping(stepper: StepThrough) -> None:
    def boom() -> None:
        raise RuntimeError("boom\nsecond line")

    stepper.clients[0].on_writable = boom  # type: ignore[method-assign]
    stepper.step()
    assert (
        stepper.status.value
        == "step 1: error: RuntimeError: boom second line (Reset to start over)"
    )
    assert stepper.error is not None and repr(stepper).endswith(", error>")
    assert stepper.step() == 0 and stepper.run_to_end() == 0 and stepper.steps == 1
    stepper.reset()
    assert stepper.error is None and stepper.run_to_end() > 0 and stepper.done


def test_singular_counts_in_repr() -> None:
    stepper = step_through(clients=1, messages=b"one")
    lab = echo_lab(clients=1, messages=1, payload=16)
    try:
        assert repr(stepper) == "<StepThrough echo: 1 client x 1 message; step 0>"
        assert repr(lab).startswith("<EchoLab: 1 client x 1 message of 16 B, ")
    finally:
        stepper.close()
        lab.close()


def test_close_releases_sockets_and_threads() -> None:
    threads = threading.active_count()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stepper = step_through(clients=3)
        loop = stepper.loop
        stepper.step()
        stepper.close()
        stepper.close()
        gc.collect()
    assert loop.closed and loop not in SelectorLoop._live
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert threading.active_count() == threads
    assert repr(stepper).endswith(", closed>")
    with pytest.raises(RuntimeError, match="closed"):
        stepper.step()
    with pytest.raises(RuntimeError, match="closed"):
        stepper.reset()


def test_an_abandoned_stepper_closes_its_sockets() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        stepper = step_through()
        stepper.step()
        loop, widget = stepper.loop, stepper.widget
        del stepper
        gc.collect()
    assert loop.closed and widget.comm is None
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"scenario": "chat"}, ValueError, "scenario must be one of 'echo', got 'chat'"),
        ({"clients": 0}, ValueError, "clients must be an int in 1..50, got 0"),
        ({"messages": "text"}, TypeError, "messages must be bytes or a list of bytes"),
        ({"selector": "nonsense"}, ValueError, "unknown selector 'nonsense'"),
    ],
)
def test_step_through_rejects_bad_arguments(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=re.escape(message)):
        step_through(**kwargs)


@pytest.mark.skipif(not MISSING, reason="this platform has every selector class")
def test_step_through_missing_selector_raises_before_opening_anything() -> None:
    live = set(SelectorLoop._live)
    with pytest.raises(ValueError, match="is not available on"):
        step_through(selector=MISSING[0])
    assert set(SelectorLoop._live) == live


def test_widgets_module_imports_with_the_standard_library_only() -> None:
    import subprocess

    code = "import sys, echo_lib.view.widgets; print(sorted(m for m in ('ipywidgets', 'matplotlib', 'IPython') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"


def test_rerunning_the_cell_stops_the_previous_scenario() -> None:
    first = step_through(clients=1)
    out_cache = [first]  # IPython's Out keeps the widget of the previous run alive
    old_loop, live = first.loop, len(SelectorLoop._live)
    second = step_through(clients=1)
    try:
        assert first.closed and old_loop.closed, "the previous run's loop and sockets are closed"
        assert len(SelectorLoop._live) == live, "one scenario replaced by one, not one more"
        other = step_through(clients=2)  # different settings: another cell, left alone
        assert not second.closed
        other.close()
        second.run_to_end()
        assert second.done
    finally:
        second.close()
    assert out_cache[0] is first
