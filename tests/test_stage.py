"""`echo_lib.stage`: turns, a program's runner and names, closing what a program left open."""

from __future__ import annotations

import selectors
import socket
import threading

import pytest

from echo_lib.driver.recording import RecordingSelector
from echo_lib.driver.sockets import peer_closed, recv_all, wait_listening
from echo_lib.stage.program import ProgramNamer, Runner
from echo_lib.stage.stage import Stage
from echo_lib.stage.turns import Turns


def test_turns_go_round_in_order_of_arrival_skipping_who_left() -> None:
    turns = Turns(timeout=0.1)
    for name in ("a", "b", "c"):
        turns.add(name)
    assert turns.holder is None
    turns.open()
    assert turns.holder == "a"
    turns.leave("b")
    turns.leave("a")
    assert turns.holder == "c"
    turns.pass_turn("c")  # alone now: keeps the turn, returns at once
    assert turns.holder == "c"
    with pytest.raises(ValueError, match="'a' is already on this stage"):
        turns.add("a")


def test_program_namer_names_the_program_then_its_connections() -> None:
    namer = ProgramNamer("server")
    assert [namer(object(), "") for _ in range(3)] == ["server", "server/conn-1", "server/conn-2"]


def test_a_runner_is_a_thread_runner_that_keeps_the_error_and_where() -> None:
    seen: list[object] = []

    def program() -> None:
        seen.append(threading.current_thread().name)
        raise LookupError("gone")

    runner = Runner(
        "prog",
        program,
        on_error=lambda exc, where: seen.append((type(exc), where)),
        on_exit=lambda: seen.append("exit"),
    )
    assert repr(runner) == "<Runner 'prog': not started>"
    runner.start().join()
    assert seen == [
        "echo_lib-prog",
        (LookupError, ' (in program(): raise LookupError("gone"))'),
        "exit",
    ]
    assert isinstance(runner.error, LookupError) and runner.error.__traceback__ is None
    assert repr(runner) == "<Runner 'prog': ended with LookupError>"
    with pytest.raises(LookupError) as raised:
        runner.raise_if_failed()
    # error is a copy without the traceback; the exception raised keeps where it happened
    assert raised.value.__traceback__ is not None


def test_the_stage_closes_every_socket_a_program_left_registered() -> None:
    mine, peer = socket.socketpair()

    def leaves_it_open(mysel: RecordingSelector) -> None:
        mysel.register(mine, selectors.EVENT_READ)

    with peer:
        stage = Stage()
        stage.start("prog", leaves_it_open)
        stage.join()
        assert mine.fileno() == -1
        assert [e.actor for e in stage.timeline.events(action="register")] == ["prog"]


def test_join_names_the_programs_still_running() -> None:
    release = threading.Event()
    stage = Stage(take_turns=False)
    stage.start("stuck", lambda: release.wait(5))
    try:
        with pytest.raises(TimeoutError, match="still running after 0.05 s: stuck"):
            stage.join(timeout=0.05)
    finally:
        release.set()
        stage.join()


def test_socket_helpers_read_all_and_see_the_peer_close() -> None:
    sock, peer = socket.socketpair()
    with sock, peer:
        peer.sendall(b"abc")
        assert not peer_closed(sock, wait=0.0)  # data waiting is not EOF
        assert recv_all(sock, 3) == b"abc"
        peer.close()
        assert peer_closed(sock)
        assert recv_all(sock, 3) == b""


def test_wait_listening_raises_when_nobody_listens() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        with pytest.raises(TimeoutError, match=r"listen\(\) called on the socket"):
            wait_listening(sock, timeout=0.05)
        sock.listen(1)
        wait_listening(sock, timeout=0.05)
