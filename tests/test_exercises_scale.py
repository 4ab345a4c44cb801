"""The exercises of notebook 06 (many clients, big messages): solutions pass, mistakes are named."""

from __future__ import annotations

import contextlib
import selectors
import socket
import sys
from functools import partial
from pathlib import Path

import pytest

from echo_lib.exercises.scale import (
    ECHO_MANY_PAYLOADS,
    check_echo_many,
    check_peak_prediction,
    check_send_some,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "notebooks" / "solutions"))
from scale import echo_many, predicted_kib, send_some  # noqa: E402

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


# -- exercise 2: send_some --------------------------------------------------------


def test_send_some_solution_passes() -> None:
    assert str(check_send_some(send_some)) == "✔ send_some: all checks passed"


def test_one_send_that_catches_blocking_io_error_passes_too() -> None:
    def once(sock: socket.socket, data: bytes) -> int:
        try:
            return sock.send(data)
        except BlockingIOError:
            return 0

    assert check_send_some(once).passed


def test_sendall_is_caught() -> None:
    def with_sendall(sock: socket.socket, data: bytes) -> int:
        sock.sendall(data)
        return len(data)

    text = str(check_send_some(with_sendall))
    assert (
        "with 1 MiB, it raised BlockingIOError: on a non-blocking socket, "
        "sendall() raises it once the buffer is full" in text
    )


def test_claiming_everything_was_sent_is_caught() -> None:
    def claims_all(sock: socket.socket, data: bytes) -> int:
        with contextlib.suppress(BlockingIOError):
            sock.send(data)
        return len(data)

    text = str(check_send_some(claims_all))
    assert (
        "with 1 MiB, it returned 1048576: a 4 KiB send buffer takes only part of 1048576 bytes; "
        "return how many send() took" in text
    )


def test_the_send_some_stub_is_reported() -> None:
    def stub(sock: socket.socket, data: bytes) -> int:
        raise NotImplementedError("your code here")

    assert str(check_send_some(stub)) == (
        "✘ send_some: 1 problem\n"
        "  - with a 100-byte message, it raised NotImplementedError: your code here"
    )


# -- exercise 3: echo_many --------------------------------------------------------


def test_echo_many_solution_passes() -> None:
    assert str(check_echo_many(echo_many)) == "✔ echo_many: all checks passed"


def test_the_payloads_cover_empty_small_and_big() -> None:
    sizes = sorted(len(p) for p in ECHO_MANY_PAYLOADS)
    assert len(ECHO_MANY_PAYLOADS) == 8 and sizes[0] == 0 and sizes[-1] == 1 << 20
    assert len(set(ECHO_MANY_PAYLOADS)) == 8


def _blocking_echo(sock: socket.socket, payload: bytes) -> bytes:
    """Blocking I/O on one socket: send it all, half-close, read until EOF."""
    sock.sendall(payload)
    sock.shutdown(socket.SHUT_WR)
    echo = bytearray()
    while chunk := sock.recv(65536):
        echo += chunk
    return bytes(echo)


def test_one_connection_after_another_is_caught() -> None:
    def one_by_one(address: tuple[str, int], payloads: list[bytes]) -> list[bytes]:
        echoes = []
        for payload in payloads:
            with socket.create_connection(address, timeout=5) as sock:
                echoes.append(_blocking_echo(sock, payload))
        return echoes

    text = str(check_echo_many(one_by_one))
    assert (
        "the connections were not all open at the same time "
        "(conn-2 was accepted after an earlier one had closed)" in text
    )


def test_stopping_at_the_first_chunk_is_caught() -> None:
    """The classic client's fault: stop after the first non-empty recv()."""

    def first_chunk(address: tuple[str, int], payloads: list[bytes]) -> list[bytes]:
        sel, echoes = selectors.DefaultSelector(), [b""] * len(payloads)
        socks = [socket.create_connection(address, timeout=5) for _ in payloads]
        try:
            for i, (sock, payload) in enumerate(zip(socks, payloads, strict=True)):
                sock.setblocking(False)
                sock.send(payload[:4096])
                sock.shutdown(socket.SHUT_WR)
                sel.register(sock, READ, i)
            while sel.get_map():
                for key, _ in sel.select(5):
                    echoes[key.data] = key.fileobj.recv(65536)
                    sel.unregister(key.fileobj)  # one recv() and done
        finally:
            sel.close()
            for sock in socks:
                sock.close()
        return echoes

    text = str(check_echo_many(first_chunk))
    assert (
        "payload 1 (1048576 bytes): got " in text and "bytes back: was it read until EOF?" in text
    )


def test_echoes_out_of_order_are_named() -> None:
    def reversed_order(address: tuple[str, int], payloads: list[bytes]) -> list[bytes]:
        return echo_many(address, payloads)[::-1]

    text = str(check_echo_many(reversed_order))
    assert text == (
        "✘ echo_many: 1 problem\n"
        "  - every echo came back, but not in payload order: "
        "echoes[i] must be the echo of payloads[i]"
    )


def test_the_echo_many_stub_is_reported() -> None:
    def stub(address: tuple[str, int], payloads: list[bytes]) -> list[bytes]:
        raise NotImplementedError("your code here")

    assert (
        str(check_echo_many(stub))
        == "✘ echo_many: 1 problem\n  - it raised NotImplementedError: your code here"
    )


def test_all_open_then_each_in_turn_with_blocking_calls_is_caught() -> None:
    """No selector: every connection opened first, then each served to the end with blocking I/O."""

    def in_turn(address: tuple[str, int], payloads: list[bytes]) -> list[bytes]:
        socks = [socket.create_connection(address, timeout=5) for _ in payloads]
        echoes = []
        try:
            for sock, payload in zip(socks, payloads, strict=True):
                echoes.append(_blocking_echo(sock, payload))
        finally:
            for sock in socks:
                sock.close()
        return echoes

    assert str(check_echo_many(in_turn)) == (
        "✘ echo_many: 1 problem\n"
        "  - all connections were open at once, but the server served them one at a time "
        "(each connection's echo was finished before the next one sent a byte): "
        "blocking calls on one socket after another; "
        "register them all with one selector and serve whichever is ready"
    )


def _echo_by_length(
    address: tuple[str, int], payloads: list[bytes], opened: list[socket.socket]
) -> list[bytes]:
    """All at once on one selector, but each echo read by its length: no half-close, no close."""
    echoes = [bytearray() for _ in payloads]
    with selectors.DefaultSelector() as sel:
        for i, payload in enumerate(payloads):
            opened.append(socket.create_connection(address, timeout=5))
            opened[-1].setblocking(False)
            sel.register(opened[-1], READ | WRITE, [i, memoryview(payload)])
        while sel.get_map():
            for key, mask in sel.select(5):
                sock, (i, rest) = key.fileobj, key.data
                if mask & WRITE:
                    key.data[1] = rest[sock.send(rest) :] if rest else rest
                    if not key.data[1]:
                        sel.modify(sock, READ, key.data)
                if mask & READ:
                    echoes[i] += sock.recv(65536)
                if len(echoes[i]) == len(payloads[i]):
                    sel.unregister(sock)
    return [bytes(echo) for echo in echoes]


def test_sockets_left_open_are_named() -> None:
    """Right echoes, but the sockets still open when it returns: the server still holds them."""
    opened: list[socket.socket] = []
    try:
        text = str(check_echo_many(partial(_echo_by_length, opened=opened)))
    finally:
        for sock in opened:
            sock.close()
    assert text == (
        "✘ echo_many: 1 problem\n  - 8 connections were still open afterwards: close every socket"
    )


# -- exercise 1: the prediction -----------------------------------------------------


def test_the_right_peak_prediction_passes_and_the_run_keeps_the_bound() -> None:
    assert str(check_peak_prediction(predicted_kib)) == "✔ prediction: all checks passed"


def test_predicting_max_buffer_alone_is_told_about_the_last_recv() -> None:
    assert str(check_peak_prediction(16)) == (
        "✘ prediction: 1 problem\n"
        "  - you predicted 16 KiB: the server checks its buffer before each recv(), "
        "and one recv() can bring up to recv_size (64 KiB) more than max_buffer"
    )


def test_predicting_too_much_is_told_that_reading_stops() -> None:
    assert (
        "you predicted 1024 KiB: reading stops while the buffer holds max_buffer (16 KiB) or more"
        in str(check_peak_prediction(1024))
    )


@pytest.mark.parametrize("guess", [..., "80", 80.0, False])
def test_a_peak_prediction_that_is_not_an_int_is_named(guess: object) -> None:
    assert str(check_peak_prediction(guess)) == (
        f"✘ prediction: 1 problem\n  - predict a number of KiB (an int), got {guess!r}"
    )
