"""The exercise of 00-start-here: its solution passes, plausible mistakes are named."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from echo_lib.exercises import Feedback, run_with_timeout
from echo_lib.exercises.start import check_echo_once

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "notebooks" / "solutions"))
from start_here import echo_once  # noqa: E402


def test_the_solution_passes() -> None:
    feedback = check_echo_once(echo_once)
    assert feedback.passed, str(feedback)
    assert str(feedback) == "✔ echo_once: all checks passed"


def test_reading_exactly_the_message_length_passes() -> None:
    # With the empty message it returns as soon as it has connected, maybe
    # before the server's thread has accepted: that must not count as no connection.
    def exact(address: tuple[str, int], message: bytes) -> bytes:
        with socket.create_connection(address, timeout=5) as sock:
            sock.sendall(message)
            data = b""
            while len(data) < len(message):
                data += sock.recv(65536)
            return data

    for _ in range(20):
        feedback = check_echo_once(exact)
        assert feedback.passed, str(feedback)


def test_a_single_recv_is_caught() -> None:
    def one_recv(address: tuple[str, int], message: bytes) -> bytes:
        with socket.create_connection(address, timeout=5) as sock:
            sock.sendall(message)
            return sock.recv(1024)

    text = str(check_echo_once(one_recv))
    assert "with a 200000-byte message it returned 1024 bytes" in text


def test_waiting_for_eof_without_shutdown_is_a_timeout() -> None:
    def never_shuts_down(address: tuple[str, int], message: bytes) -> bytes:
        with socket.create_connection(address, timeout=1) as sock:
            sock.sendall(message)
            data = b""
            while chunk := sock.recv(
                65536
            ):  # the server waits for our EOF: socket.timeout after 1 s
                data += chunk
            return data

    text = str(check_echo_once(never_shuts_down))
    assert "with a 5-byte message it raised TimeoutError" in text


def test_returning_text_is_caught() -> None:
    def text_reply(address: tuple[str, int], message: bytes) -> str:
        with socket.create_connection(address, timeout=5) as sock:
            sock.sendall(message)
            sock.shutdown(socket.SHUT_WR)
            return sock.recv(65536).decode()

    assert "it returned str, expected bytes" in str(check_echo_once(text_reply))


def test_run_with_timeout_raises_the_functions_error_and_times_out() -> None:
    def boom() -> None:
        raise KeyError("x")

    try:
        run_with_timeout(boom)
    except KeyError:
        pass
    else:  # pragma: no cover
        raise AssertionError("the error was swallowed")
    feedback = Feedback("demo")
    feedback.expect(False, "first")
    feedback.expect(True, "never shown")
    assert str(feedback) == "✘ demo: 1 problem\n  - first"
