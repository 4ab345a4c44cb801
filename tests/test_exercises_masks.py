"""The exercises of 03-masks: the solutions pass, plausible mistakes are named."""

from __future__ import annotations

import selectors
import socket
import sys
from pathlib import Path

from echo_lib.exercises.masks import check_wait_readable, check_wanted_events

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "notebooks" / "solutions"))
from masks import wait_readable, wanted_events  # noqa: E402

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
        "wanted_events(has_pending_output=False, can_accept_more=True) returned READ|WRITE, expected READ: "
        "WRITE with nothing to send makes select() return at once, every time: a busy loop"
    ) in text
    assert "with nothing to read or send, select() returned at once 20 times out of 20" in text


def test_reading_with_a_full_buffer_is_caught() -> None:
    def no_backpressure(has_pending_output: bool, can_accept_more: bool) -> int:
        return READ | (WRITE if has_pending_output else 0)

    text = str(check_wanted_events(no_backpressure))
    assert "wanted_events(has_pending_output=True, can_accept_more=False) returned READ|WRITE, expected WRITE" in text
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
        "  - wanted_events(has_pending_output=False, can_accept_more=False) raised NotImplementedError: your code here"
    )


def test_wait_readable_solution_passes() -> None:
    feedback = check_wait_readable(wait_readable)
    assert feedback.passed, str(feedback)


def test_registering_write_too_returns_true_at_once() -> None:
    def with_write(sock: socket.socket, timeout: float) -> bool:
        with selectors.DefaultSelector() as sel:
            sel.register(sock, READ | WRITE)
            return bool(sel.select(timeout))

    assert "with nothing to read it returned True: was EVENT_WRITE registered too?" in str(check_wait_readable(with_write))


def test_polling_instead_of_waiting_is_caught() -> None:
    def polls(sock: socket.socket, timeout: float) -> bool:
        with selectors.DefaultSelector() as sel:
            sel.register(sock, READ)
            return bool(sel.select(0))

    text = str(check_wait_readable(polls))
    assert "with nothing to read and a 0.3 s timeout it gave up after" in text
    assert "wait up to the timeout (select(0) only polls)" in text


def test_a_selector_left_open_is_a_leak() -> None:
    kept = []  # keeps the leaked selectors alive, as a learner's global list would

    def leaks(sock: socket.socket, timeout: float) -> bool:
        sel = selectors.DefaultSelector()
        kept.append(sel)
        sel.register(sock, READ)
        return bool(sel.select(timeout))

    try:
        text = str(check_wait_readable(leaks))
    finally:
        for sel in kept:
            sel.close()
    assert "5 calls left 5 file descriptors open: close the selector" in text


def test_reading_the_data_is_caught() -> None:
    def reads(sock: socket.socket, timeout: float) -> bool:
        with selectors.DefaultSelector() as sel:
            sel.register(sock, READ)
            if sel.select(timeout):
                sock.recv(1024)
                return True
            return False

    assert "wait only, leave reading to the caller" in str(check_wait_readable(reads))


def test_ignoring_the_timeout_never_returns_and_the_thread_is_released() -> None:
    def blocks(sock: socket.socket, timeout: float) -> bool:
        with selectors.DefaultSelector() as sel:
            sel.register(sock, READ)
            return bool(sel.select(None))

    text = str(check_wait_readable(blocks))
    assert "with nothing to read, wait_readable(sock, 0.3) never returned: pass the timeout to select()" in text


def test_returning_the_ready_list_is_not_a_bool() -> None:
    def returns_list(sock: socket.socket, timeout: float) -> object:
        with selectors.DefaultSelector() as sel:
            sel.register(sock, READ)
            return sel.select(timeout)

    assert "with nothing to read, it returned []; return True or False" in str(check_wait_readable(returns_list))
