"""The exercises of 03-masks: the solutions pass, plausible mistakes are named."""

from __future__ import annotations

import selectors
import sys
from pathlib import Path

from echo_lib.exercises.masks import check_wanted_events

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "notebooks" / "solutions"))
from masks import wanted_events  # noqa: E402

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


def test_wanted_events_solution_passes() -> None:
    feedback = check_wanted_events(wanted_events)
    assert feedback.passed, str(feedback)
    assert str(feedback) == "✔ wanted_events: all checks passed"


def test_always_read_write_is_called_a_busy_loop() -> None:
    def always_both(has_pending_output: bool, can_accept_more: bool) -> int:
        return READ | WRITE

    text = str(check_wanted_events(always_both))
    assert (
        "wanted_events(has_pending_output=False, can_accept_more=True) returned READ|WRITE, "
        "expected READ: WRITE with nothing to send makes select() return at once, every time: a "
        "busy loop"
    ) in text
    assert "with nothing to read or send, select() returned at once 20 times out of 20" in text


def test_reading_with_a_full_buffer_is_caught() -> None:
    def no_backpressure(has_pending_output: bool, can_accept_more: bool) -> int:
        return READ | (WRITE if has_pending_output else 0)

    text = str(check_wanted_events(no_backpressure))
    assert (
        "wanted_events(has_pending_output=True, can_accept_more=False) returned READ|WRITE, "
        "expected WRITE" in text
    )
    assert (
        "wanted_events(has_pending_output=False, can_accept_more=False) returned READ, expected 0: "
        "nothing to send and no room: 0, and the caller unregisters (a key with no events still "
        "wakes on a hang-up)"
    ) in text
    assert "busy loop" not in text


def test_a_bool_is_not_a_mask() -> None:
    def as_bool(has_pending_output: bool, can_accept_more: bool) -> object:
        return can_accept_more

    text = str(check_wanted_events(as_bool))
    assert "returned False; return an int made of EVENT_READ and EVENT_WRITE" in text


def test_the_notebook_stub_reports_not_implemented() -> None:
    def stub(has_pending_output: bool, can_accept_more: bool) -> int:
        raise NotImplementedError("your code here")

    assert str(check_wanted_events(stub)) == (
        "✘ wanted_events: 1 problem\n"
        "  - wanted_events(has_pending_output=False, can_accept_more=False) raised "
        "NotImplementedError: your code here"
    )
