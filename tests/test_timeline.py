"""Timeline and Event: recording, filtering, deterministic summaries."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import echo_lib
from echo_lib import Event, Timeline, mask_name

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


def test_mask_names() -> None:
    assert [mask_name(m) for m in (0, READ, WRITE, READ | WRITE)] == [
        "-",
        "READ",
        "WRITE",
        "READ|WRITE",
    ]


def test_the_core_mask_bits_are_the_selectors_bits() -> None:
    # core/events.py names the bits itself so that the core imports no I/O module.
    from echo_lib.core import events

    assert (events.EVENT_READ, events.EVENT_WRITE) == (READ, WRITE)
    assert (READ, WRITE) == (selectors.EVENT_READ, selectors.EVENT_WRITE)


def test_mask_name_rejects_other_bits() -> None:
    with pytest.raises(ValueError, match="got 4"):
        mask_name(4)


def test_events_are_numbered_and_immutable() -> None:
    tl = Timeline()
    tl.record("server", "register", 3, READ)
    tl.record("client-1", "send", nbytes=5)
    first, second = tl.events()
    assert (first.seq, second.seq) == (1, 2) and second.t >= first.t >= 0
    with pytest.raises(AttributeError):
        first.seq = 9  # type: ignore[misc]
    assert isinstance(first, Event) and first.fd == 3


def test_filter_by_actor_prefix_and_action() -> None:
    tl = Timeline()
    for actor, action in [
        ("server", "accept"),
        ("server/conn-1", "recv"),
        ("serverless", "recv"),
        ("client-1", "send"),
    ]:
        tl.record(actor, action)
    assert [e.actor for e in tl.events(actor="server")] == ["server", "server/conn-1"]
    assert [e.actor for e in tl.events(action="recv")] == ["server/conn-1", "serverless"]
    assert [e.action for e in tl.events(action=["send", "accept"])] == ["accept", "send"]


def test_unknown_action_is_named() -> None:
    with pytest.raises(ValueError, match="'recieve'"):
        Timeline().events(action="recieve")


def test_summary_has_no_times_or_fds() -> None:
    tl = Timeline()
    tl.record("server", "register", 12345, READ)
    tl.record("server/conn-1", "modify", 777, READ | WRITE, detail="READ → READ|WRITE")
    tl.record("server/conn-1", "send", 777, nbytes=42, detail="partial")
    text = tl.summary()
    assert "12345" not in text and "777" not in text
    assert text.splitlines() == [
        "   1  server         register    READ",
        "   2  server/conn-1  modify      READ|WRITE           READ → READ|WRITE",
        "   3  server/conn-1  send                         42  partial",
    ]


def test_summary_limit_counts_the_rest() -> None:
    tl = Timeline()
    for _ in range(5):
        tl.record("a", "select")
    assert tl.summary(limit=2).splitlines()[-1] == "... and 3 more events"
    assert Timeline().summary() == "(no events)"


def test_maxlen_bounds_memory_and_counts_drops() -> None:
    tl = Timeline(maxlen=3)
    for _ in range(10):
        tl.record("a", "select")
    assert len(tl) == 3 and tl.dropped == 7 and [e.seq for e in tl] == [8, 9, 10]


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_bad_maxlen_names_the_value(bad: object) -> None:
    with pytest.raises(ValueError, match=f"maxlen must be an int of at least 1, got {bad}"):
        Timeline(maxlen=bad)  # type: ignore[arg-type]


def test_threads_get_unique_ordered_sequence_numbers() -> None:
    tl = Timeline()
    start = threading.Barrier(4)

    def work(name: str) -> None:
        start.wait(timeout=5)
        for _ in range(2000):
            tl.record(name, "send", nbytes=1)

    threads = [threading.Thread(target=work, args=(f"client-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert [e.seq for e in tl] == list(range(1, 8001))
    assert tl.bytes_moved() == {"recv": 0, "send": 8000}
    assert tl.actors() == sorted(tl.actors(), key=[e.actor for e in tl].index)


def test_clear_restarts_numbering() -> None:
    tl = Timeline()
    tl.record("a", "select")
    tl.clear()
    tl.record("a", "select")
    assert [e.seq for e in tl] == [1] and len(tl) == 1 and tl.dropped == 0


def test_since_keeps_only_newer_events() -> None:
    tl = Timeline()
    for action in ("register", "select", "ready"):
        tl.record("a", action)
    assert tl.last_seq == 3 and [e.action for e in tl.events(since=1)] == ["select", "ready"]
    assert tl.summary(since=2).split() == ["3", "a", "ready"]


# -- the lazy plot_timeline ---------------------------------------------------------


def test_import_echo_lib_leaves_matplotlib_and_ipywidgets_unimported() -> None:
    code = (
        "import sys, echo_lib\n"
        "assert 'plot_timeline' in echo_lib.__all__\n"
        "print(sorted(m for m in ('matplotlib', 'ipywidgets', 'echo_lib.view.plotting') "
        "if m in sys.modules))\n"
        "echo_lib.plot_timeline\n"
        "print('echo_lib.view.plotting' in sys.modules)\n"
    )
    root = str(Path(echo_lib.__file__).parent.parent)
    env = {**os.environ, "PYTHONPATH": root, "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    )
    assert done.stdout.split("\n")[:2] == ["[]", "True"], done.stdout + done.stderr


def test_echo_lib_plot_timeline_is_the_view_function_and_draws() -> None:
    import matplotlib.pyplot as plt

    from echo_lib.view.plotting import plot_timeline

    assert echo_lib.plot_timeline is plot_timeline
    tl = Timeline()
    tl.record("server", "select", nbytes=1)
    tl.record("server/conn-1", "recv", 5, READ, 5)
    ax = echo_lib.plot_timeline(tl)
    try:
        assert [label.get_text() for label in ax.get_yticklabels()] == ["server", "server/conn-1"]
    finally:
        plt.close(ax.figure)


def test_an_unknown_attribute_of_echo_lib_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'plot_timelines'"):
        echo_lib.plot_timelines  # noqa: B018
