"""The checkers' harness: learner code that ends the program, spins or blocks becomes feedback.

Every checker calls learner code through `run_with_timeout`. Whatever that
code does, the checker returns within a bounded wait, the kernel survives,
and a thread that could not be stopped is named.
"""

from __future__ import annotations

import os
import selectors
import socket
import sys
import threading
import time
from collections.abc import Callable

import pytest

from echo_lib.driver.implementations import registered_keys
from echo_lib.exercises import STOP_WAIT, DidNotReturn, EndedTheProgram, Feedback, run_with_timeout
from echo_lib.exercises.implementations import check_pick_selector
from echo_lib.exercises.serving import (
    ServerRun,
    is_closed,
    open_sockets,
    serve_error_problem,
    stale_keys,
    tracking_selector,
)
from echo_lib.exercises.start import check_echo_once


def exits(*args: object) -> bytes:
    sys.exit(3)


def interrupts(*args: object) -> bytes:
    raise KeyboardInterrupt


def spins(*args: object) -> bytes:
    while True:
        pass


@pytest.mark.parametrize(
    ("learner", "said"),
    [
        (exits, "it called sys.exit(3): an answer must return"),
        (interrupts, "it raised KeyboardInterrupt"),
    ],
)
def test_ending_the_program_comes_back_as_an_ordinary_error(learner: object, said: str) -> None:
    with pytest.raises(EndedTheProgram, match=said.replace("(", r"\(").replace(")", r"\)")):
        run_with_timeout(learner, timeout=5)
    feedback = check_echo_once(learner)
    assert not feedback.passed and f"it raised EndedTheProgram: {said}" in str(feedback)


def test_code_that_spins_forever_is_stopped_within_a_bounded_wait() -> None:
    started = time.monotonic()
    with pytest.raises(DidNotReturn, match="spins did not return within 0.2 s") as info:
        run_with_timeout(spins, timeout=0.2)
    assert info.value.note == "it was stopped" and not info.value.still_running
    assert time.monotonic() - started < 0.2 + STOP_WAIT + 5
    feedback = check_pick_selector(spins)
    assert "it never returned" in str(feedback) and "could not be stopped" not in str(feedback)


def test_a_thread_that_cannot_be_stopped_is_named() -> None:
    gate = threading.Event()

    def blocks() -> None:
        gate.wait(30)  # blocked in one C call: no Python bytecode runs, so no stop request lands

    try:
        with pytest.raises(DidNotReturn) as info:
            run_with_timeout(blocks, timeout=0.2)
        assert info.value.still_running
        assert (
            "could not be stopped and still runs in a background thread (echo_lib-exercise-blocks)"
            in info.value.note
        )
        feedback = Feedback("blocks")
        try:
            raise info.value
        except DidNotReturn:
            feedback.expect(False, "it never returned")
        assert "it never returned (it could not be stopped" in str(
            feedback
        ) and "restart the kernel" in str(feedback)
    finally:
        gate.set()
    info.value.runner.join(5)
    assert not info.value.runner.running, "the stop request lands once the call returns"


# -- the gauntlet's view of a learner's selector ------------------------------------


def test_a_tracking_selector_finds_sockets_left_open_and_keys_left_stale() -> None:
    (a, peer), b, c = socket.socketpair(), socket.socket(), socket.socket()
    sel = tracking_selector()
    try:
        sel.register(a, selectors.EVENT_READ)
        sel.unregister(a)
        sel.register(a, selectors.EVENT_READ)  # twice: still one socket left open
        sel.register(b, selectors.EVENT_READ)
        sel.register(c, selectors.EVENT_READ)
        c.close()  # closed while registered: its key is stale
        assert open_sockets(sel, skip=b) == [a]
        assert [key.fileobj for key in stale_keys(sel)] == [c]
        assert len(registered_keys(sel)) == 3 and not is_closed(sel)
        assert sel.actor == "your server"
    finally:
        sel.close()
        for sock in (a, peer, b):
            sock.close()
    assert is_closed(sel) and registered_keys(sel) == [] and open_sockets(sel, skip=None) == []


# -- settling: is the server alive after what its clients just saw? ------------------


def _loop(on_ready: Callable[[], object] = lambda: None) -> Callable[..., None]:
    """A server that selects every 0.02 s and calls ``on_ready()`` when anything is ready."""

    def serve(
        listener: socket.socket, stop: threading.Event, selector: selectors.BaseSelector
    ) -> None:
        selector.register(listener, selectors.EVENT_READ)
        try:
            while not stop.is_set():
                if selector.select(0.02):
                    on_ready()
        finally:
            selector.unregister(listener)
            selector.close()

    return serve


def _fails_slowly() -> None:
    threading.Event().wait(0.1)  # handling it takes a while, then fails
    raise ConnectionResetError(104, "reset while handling it")


def _waits_then(event: threading.Event, error: BaseException | None) -> object:
    """A server that registers, waits for ``event`` without selecting, cleans up, then raises."""

    def serve(
        listener: socket.socket, stop: threading.Event, selector: selectors.BaseSelector
    ) -> None:
        selector.register(listener, selectors.EVENT_READ)
        event.wait(5)
        selector.unregister(listener)
        selector.close()
        if error is not None:
            raise error

    return serve


def test_settle_sees_a_live_loop_go_round_again() -> None:
    with ServerRun(_loop()) as run:
        since = run.selector.timeline.last_seq
        assert run.settle(timeout=5)
        assert run.wakeups(since) >= 2 and not run.died


def test_settle_waits_until_what_was_pending_has_been_handled() -> None:
    # The connection is ready before settle() starts; the select() that
    # reports it is recorded before its handler kills the server. Settling on
    # that select() alone would judge the server alive.
    with (
        ServerRun(_loop(on_ready=_fails_slowly)) as run,
        socket.create_connection(run.address, timeout=2),
    ):
        assert run.settle(timeout=5)
        assert run.died and isinstance(run.error, ConnectionResetError)


def test_settle_waits_for_a_dying_server_to_return() -> None:
    go = threading.Event()
    with ServerRun(_waits_then(go, ConnectionResetError(104, "reset"))) as run:
        go.set()
        assert run.settle(timeout=5)
        assert run.died and isinstance(run.error, ConnectionResetError)
        assert run.wakeups() == 0  # it never selected: only its return ended the wait


def test_settle_gives_up_on_a_server_that_neither_selects_nor_returns() -> None:
    release = threading.Event()
    try:
        with ServerRun(_waits_then(release, None)) as run:
            assert not run.settle(timeout=0.1)
            assert not run.died and run.wakeups() == 0
            run.stop.set()  # before the release: its return is then not a death
            release.set()
    finally:
        release.set()
    assert not run.died and run.returned_in_time


def test_a_stale_fd_that_killed_serve_is_named_like_a_stale_key() -> None:
    # Closing without unregister() shows as stale keys after a round, or, if a
    # new connection gets the dead fd first, as register()'s KeyError: one diagnosis.
    sel, (a, b), other = selectors.DefaultSelector(), socket.socketpair(), socket.socket()
    with sel, b, other:
        sel.register(a, selectors.EVENT_READ)
        fd = a.fileno()
        a.close()  # the mistake: still registered
        os.dup2(other.fileno(), fd)  # a new socket on the dead fd, as accept() would give
        with socket.socket(fileno=fd) as reused, pytest.raises(KeyError) as info:
            sel.register(reused, selectors.EVENT_READ)
    text = serve_error_problem(info.value)
    assert text.startswith("serve() died with KeyError: ")
    assert text.endswith(
        "closing without unregister() leaves a key for a dead fd; unregister(), then close()"
    )


def test_a_reset_that_killed_serve_is_explained() -> None:
    text = serve_error_problem(ConnectionResetError(104, "Connection reset by peer"))
    assert text.startswith("serve() died with ConnectionResetError: [Errno 104]")
    assert text.endswith("close that one, keep serving")


def test_registered_keys_is_a_snapshot_and_empty_once_closed() -> None:
    sel = selectors.DefaultSelector()
    a, b = socket.socketpair()
    with a, b:
        sel.register(a, selectors.EVENT_READ)
        keys = registered_keys(sel)
        sel.register(b, selectors.EVENT_READ)
        assert [k.fileobj for k in keys] == [a] and len(registered_keys(sel)) == 2
        sel.close()
        assert registered_keys(sel) == []
