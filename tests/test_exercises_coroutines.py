"""08-from-callbacks-to-asyncio: solutions pass; plausible mistakes get their own message."""

from __future__ import annotations

import socket
import sys
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from echo_lib.driver.coroutines import Future, Scheduler
from echo_lib.exercises.coroutines import (
    check_awaitable_future,
    check_eager_echo_handler,
    check_protocol_prediction,
)
from echo_lib.lessons.coroutines import echo_handler

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "notebooks" / "solutions"))
import coroutines as solutions  # noqa: E402  (notebooks/solutions/coroutines.py)

Handler = Generator[Any, Any, None]


def only_problem(feedback: object) -> str:
    problems = feedback.problems  # type: ignore[attr-defined]
    assert len(problems) == 1, problems
    return problems[0]


# -- exercise 1 ---------------------------------------------------------------------------


def test_the_eager_handler_solution_passes() -> None:
    feedback = check_eager_echo_handler(solutions.eager_echo_handler)
    assert feedback.passed, str(feedback)
    assert str(feedback) == "✔ eager_echo_handler: all checks passed"


def test_the_notebook_stub_reports_not_implemented() -> None:
    def eager_echo_handler(sched: Scheduler, sock: socket.socket) -> Handler:
        with sock:
            while True:
                yield sched.readable(sock)
                data = sock.recv(65536)
                if not data:
                    return
                raise NotImplementedError("your code here")

    feedback = check_eager_echo_handler(eager_echo_handler)
    assert str(feedback) == (
        "✘ eager_echo_handler: 1 problem\n"
        "  - with 3 short echoes, eager_echo_handler raised NotImplementedError: your code here"
    )


def test_waiting_for_write_before_every_send_is_named() -> None:
    problem = only_problem(check_eager_echo_handler(echo_handler))
    assert problem.startswith("echo_handler waited for EVENT_WRITE before sending a short echo")


def test_send_without_waiting_meets_blocking_io_error_and_it_is_explained() -> None:
    def never_waits(sched: Scheduler, sock: socket.socket) -> Handler:
        with sock:
            while True:
                yield sched.readable(sock)
                data = sock.recv(65536)
                if not data:
                    return
                while data:  # 64 KiB into a 4 KiB send buffer, without ever waiting
                    data = data[sock.send(data) :]

    problem = only_problem(check_eager_echo_handler(never_waits))
    assert problem.startswith(
        "with a 2 MiB echo through small buffers, never_waits raised BlockingIOError"
    )
    assert "catch it, yield sched.writable(sock), and send the rest" in problem


def test_dropping_what_send_did_not_take_is_named() -> None:
    def send_once(sched: Scheduler, sock: socket.socket) -> Handler:
        with sock:
            while True:
                yield sched.readable(sock)
                data = sock.recv(65536)
                if not data:
                    return
                try:  # noqa: SIM105  (the learner's mistake, written as a learner would)
                    sock.send(data)
                except BlockingIOError:
                    pass

    problem = only_problem(check_eager_echo_handler(send_once))
    assert problem.startswith("the 2 MiB echo did not all come back")


def test_busy_waiting_on_send_is_named() -> None:
    def busy(sched: Scheduler, sock: socket.socket) -> Handler:
        with sock:
            while True:
                yield sched.readable(sock)
                data = sock.recv(65536)
                if not data:
                    return
                while data:
                    try:  # noqa: SIM105  (the learner's mistake, written as a learner would)
                        data = data[sock.send(data) :]
                    except BlockingIOError:
                        pass  # and try again at once: a busy loop

    problem = only_problem(check_eager_echo_handler(busy))
    assert problem.startswith(
        "busy echoed 2 MiB through a 4 KiB buffer without once waiting for EVENT_WRITE"
    )


def test_a_socket_left_open_is_named() -> None:
    def no_with(sched: Scheduler, sock: socket.socket) -> Handler:
        while True:
            yield sched.readable(sock)
            data = sock.recv(65536)
            if not data:
                return
            sock.send(data)

    assert (
        only_problem(check_eager_echo_handler(no_with))
        == "no_with returned but left its socket open: use `with sock:`"
    )


def test_a_plain_function_is_not_a_handler() -> None:
    def not_a_generator(sched: Scheduler, sock: socket.socket) -> None:
        return None

    problem = only_problem(check_eager_echo_handler(not_a_generator))
    assert "it must be a generator function (use yield)" in problem


# -- exercise 2 ---------------------------------------------------------------------------


def test_the_awaitable_future_solution_passes() -> None:
    feedback = check_awaitable_future(solutions.AwaitableFuture)
    assert feedback.passed, str(feedback)


def test_the_awaitable_future_stub_reports_not_implemented() -> None:
    class AwaitableFuture(Future):
        def __iter__(self) -> Any:
            raise NotImplementedError("your code here")

    assert str(check_awaitable_future(AwaitableFuture)) == (
        "✘ AwaitableFuture: 1 problem\n  - yield from future raised NotImplementedError: your "
        "code here"
    )


class ListIterator(Future):
    def __iter__(self) -> Any:
        return iter([self])


class YieldsTheResult(Future):
    def __iter__(self) -> Any:
        yield self.result
        return self.result


class YieldsTwice(Future):
    def __iter__(self) -> Any:
        yield self
        yield self
        return self.result


class ReturnsNothing(Future):
    def __iter__(self) -> Any:
        yield self


@pytest.mark.parametrize(
    ("future_class", "message"),
    [
        (ListIterator, "AwaitableFuture.__iter__ returned 'list_iterator'; make it a generator"),
        (
            YieldsTheResult,
            "yield from future handed the Task None; it must hand over the future itself",
        ),
        (YieldsTwice, "once resumed, yield from future yielded"),
        (
            ReturnsNothing,
            "once resumed, yield from future gave None; it must give the future's result (1)",
        ),
        (Future, "yield from future raised AttributeError"),
        (object, "AwaitableFuture must be a class that subclasses Future"),
    ],
)
def test_plausible_mistakes_get_the_specific_message(future_class: type, message: str) -> None:
    assert only_problem(check_awaitable_future(future_class)).startswith(message)


# -- exercise 1: predict (the protocol of generators and coroutines) ------------------------


def test_the_protocol_prediction_solution_passes() -> None:
    assert (
        str(check_protocol_prediction(solutions.PROTOCOL_PREDICTION))
        == "✔ protocol prediction: all checks passed"
    )


def test_a_coroutine_taken_for_a_generator_is_corrected() -> None:
    wrong = {
        **solutions.PROTOCOL_PREDICTION,
        "coroutine": {"next": True, "send": True, "iter": True, "__await__": True},
    }
    problems = check_protocol_prediction(wrong).problems
    assert len(problems) == 2
    assert problems[0].startswith("coroutine next: you predicted it works; it raises TypeError: ")
    assert "a native coroutine has no __next__: it is not an iterator" in problems[0]
    assert problems[1].startswith("coroutine iter: you predicted it works; it raises TypeError: ")


def test_an_empty_or_malformed_prediction_is_named() -> None:
    assert "generator next: predict True (it works) or False (it raises), got None" in str(
        check_protocol_prediction({})
    )
    assert "got 'yes'" in str(check_protocol_prediction({"generator": {"next": "yes"}}))
    assert "expected a dict such as" in str(check_protocol_prediction(["next"]))  # type: ignore[arg-type]
