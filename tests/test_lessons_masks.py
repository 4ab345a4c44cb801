"""The stepper (`echo_lib.lessons.masks`), driven without a browser: click, read the text."""

from __future__ import annotations

import gc
import re
import selectors
import threading
import warnings

import pytest

pytest.importorskip("ipywidgets")
matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from echo_lib import SelectorLoop, available_selectors  # noqa: E402
from echo_lib.driver.implementations import SELECTOR_NAMES  # noqa: E402
from echo_lib.lessons.masks import StepThrough, step_through  # noqa: E402

KiB, MiB = 1 << 10, 1 << 20
DEFAULT = selectors.DefaultSelector.__name__
MISSING = [name for name in SELECTOR_NAMES if name not in available_selectors()]


def stdout_of(widget: StepThrough) -> str:
    """Everything the widget's Output shows as stdout."""
    return "".join(o["text"] for o in widget.out.outputs if o["output_type"] == "stream")


def key_map(text: str) -> dict[str, tuple[str, str]]:
    """actor -> (registered for, ready in this step), parsed from `StepThrough.text()`."""
    block = text.split("registered keys:\n", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    cells = [re.split(r"\s{2,}", line.strip()) for line in block]
    return {row[0]: (row[1], row[2]) for row in cells}


@pytest.fixture
def stepper() -> StepThrough:
    front = step_through()
    yield front
    front.close()


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
    try:
        assert repr(stepper) == "<StepThrough echo: 1 client x 1 message; step 0>"
    finally:
        stepper.close()


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
