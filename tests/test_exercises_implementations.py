"""The exercises of 07-selector-implementations: solutions pass, plausible mistakes are named."""

from __future__ import annotations

import selectors
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from echo_lib.exercises.implementations import (
    check_order_prediction,
    check_pick_selector,
    check_select_cost,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "notebooks" / "solutions"))
from implementations import ORDER_PREDICTION, pick_selector, select_cost  # noqa: E402

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
needs_select_limit = pytest.mark.skipif(
    sys.platform == "win32", reason="FD_SETSIZE is a count on Windows"
)


# -- exercise 1: pick_selector ---------------------------------------------------


def test_pick_selector_solution_passes() -> None:
    assert str(check_pick_selector(pick_selector)) == "✔ pick_selector: all checks passed"


@needs_select_limit
def test_select_everywhere_fails_at_5000() -> None:
    text = str(check_pick_selector(lambda n: selectors.SelectSelector))
    assert (
        "for 5000 sockets, SelectSelector failed: ValueError: filedescriptor out of range in "
        "select()" in text
    )


@needs_select_limit
def test_choosing_by_count_fails_in_a_busy_process() -> None:
    text = str(
        check_pick_selector(
            lambda n: selectors.SelectSelector if n < 1000 else selectors.DefaultSelector
        )
    )
    assert (
        "for 10 sockets in a process that already has over 1024 fds open, SelectSelector failed"
        in text
    )
    assert "FD_SETSIZE limits fd numbers, not how many sockets" in text


def test_an_instance_is_not_a_class() -> None:
    name = selectors.DefaultSelector.__name__
    text = str(check_pick_selector(lambda n: selectors.DefaultSelector()))
    assert (
        f"for 10 sockets, it returned a selector object ({name}()), expected the class: return "
        f"selectors.{name}, without ()" in text
    )


def test_a_name_is_not_a_class() -> None:
    assert "it returned the string 'epoll', expected a class such as selectors.PollSelector" in str(
        check_pick_selector(lambda n: "epoll")
    )


def test_the_notebook_stub_is_reported() -> None:
    def stub(n_sockets: int) -> type:
        raise NotImplementedError("your code here")

    assert str(check_pick_selector(stub)) == (
        "✘ pick_selector: 1 problem\n  - for 10 sockets, it raised NotImplementedError: your "
        "code here"
    )


# -- exercise 2: select_cost -----------------------------------------------------


def _on_idle(
    cls: type, n: int, measure: Callable[[selectors.BaseSelector], float], events: int = READ
) -> float:
    """``measure(sel)`` with n idle socket pairs registered on a new ``cls()``; all closed after."""
    pairs = [socket.socketpair() for _ in range(n)]
    try:
        with cls() as sel:
            for a, _ in pairs:
                sel.register(a, events)
            return measure(sel)
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def _timed(
    cls: type,
    n: int,
    *,
    events: int = READ,
    calls: int = 200,
    timeout: float = 0,
    per_call: bool = True,
) -> float:
    def measure(sel: selectors.BaseSelector) -> float:
        start = time.perf_counter()
        for _ in range(calls):
            sel.select(timeout)
        total = time.perf_counter() - start
        return total / calls if per_call else total

    return _on_idle(cls, n, measure, events)


def test_select_cost_solution_passes() -> None:
    assert str(check_select_cost(select_cost)) == "✔ select_cost: all checks passed"


def test_the_total_instead_of_one_call_is_caught() -> None:
    text = str(check_select_cost(lambda cls, n: _timed(cls, n, per_call=False)))
    assert "with PollSelector and 100 idle sockets, it returned" in text
    assert "return the time of one call, not of all of them" in text


def test_registering_for_write_is_caught() -> None:
    text = str(check_select_cost(lambda cls, n: _timed(cls, n, events=READ | WRITE)))
    assert (
        "100 sockets were registered for WRITE: an idle connected socket is always writable" in text
    )


def test_a_timeout_is_caught() -> None:
    text = str(check_select_cost(lambda cls, n: _timed(cls, n, calls=100, timeout=0.001)))
    assert (
        "it called select(0.001): with a timeout, select() on idle sockets waits that long; time "
        "select(0)" in text
    )


def test_too_few_calls_are_caught() -> None:
    text = str(check_select_cost(lambda cls, n: _timed(cls, n, calls=1)))
    assert "it timed only 1 select() call: time many (at least 100), then take the median" in text


def test_unclosed_selector_and_sockets_are_caught() -> None:
    def leaky(cls: type, n: int) -> float:
        pairs = [socket.socketpair() for _ in range(n)]
        sel = cls()
        for a, _ in pairs:
            sel.register(a, READ)
        return statistics.median(_one(sel) for _ in range(200))

    text = str(check_select_cost(leaky))
    assert "the selector was not closed: `with selector_class() as sel:` closes it" in text
    assert "sockets were never closed (Python closed them later, with a ResourceWarning)" in text


def _one(sel: selectors.BaseSelector) -> float:
    start = time.perf_counter()
    sel.select(0)
    return time.perf_counter() - start


def test_a_mean_instead_of_the_median_is_caught() -> None:
    """The total over the call count is a mean: the checker's burst of slow calls gives it away."""
    text = str(check_select_cost(lambda cls, n: _timed(cls, n, calls=1000)))
    assert "with PollSelector and 100 idle sockets, it returned" in text
    assert "near the mean of the calls" in text and "rather than their median" in text
    assert "return statistics.median() of the times" in text


def test_a_mean_of_per_call_times_is_caught() -> None:
    def mean_of_calls(cls: type, n: int) -> float:
        return _on_idle(cls, n, lambda sel: statistics.fmean(_one(sel) for _ in range(500)))

    assert "near the mean of the calls" in str(check_select_cost(mean_of_calls))


def test_a_median_of_batch_means_passes() -> None:
    """The median of batches of 100 calls is a median too: the burst spoils one batch only."""

    def median_of_batches(cls: type, n: int) -> float:
        return _on_idle(cls, n, lambda sel: statistics.median(_batch(sel, 100) for _ in range(7)))

    assert str(check_select_cost(median_of_batches)) == "✔ select_cost: all checks passed"


def _batch(sel: selectors.BaseSelector, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        sel.select(0)
    return (time.perf_counter() - start) / calls


# -- exercise 1: predict the orders ------------------------------------------------


def test_order_prediction_solution_passes() -> None:
    assert str(check_order_prediction(ORDER_PREDICTION)) == "✔ order prediction: all checks passed"


def test_predicting_fd_order_for_select_is_corrected() -> None:
    text = str(check_order_prediction({**ORDER_PREDICTION, "SelectSelector": "adbc"}))
    assert "SelectSelector: you predicted 'adbc', it reported 'cadb'" in text
    assert (
        "ordered by fd modulo its table size (8 here): a 921 % 8 = 1, b 931 % 8 = 3, c 936 % 8 = "
        "0, d 930 % 8 = 2" in text
    )


def test_predicting_registration_order_for_epoll_is_corrected() -> None:
    text = str(check_order_prediction({**ORDER_PREDICTION, "EpollSelector": "abcd"}))
    assert (
        "EpollSelector: you predicted 'abcd', it reported 'bdac': epoll reports sockets in the "
        "order they became ready" in text
    )


def test_a_missing_prediction_and_a_non_dict_are_named() -> None:
    assert "no prediction for PollSelector" in str(check_order_prediction({}))
    assert "expected a dict such as {'PollSelector': 'abcd'}, got 'abcd'" in str(
        check_order_prediction("abcd")
    )  # type: ignore[arg-type]
