"""The exercises of 01-why-multiplexing: the solutions pass, plausible mistakes are named."""

from __future__ import annotations

import select
import selectors
import socket
import sys
import time
from pathlib import Path

from echo_lib.exercises.multiplexing import check_wait_for_any, check_wait_for_data

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "notebooks" / "solutions"))
from multiplexing import wait_for_any, wait_for_data  # noqa: E402

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


def test_the_solutions_pass() -> None:
    assert str(check_wait_for_data(wait_for_data)) == "✔ wait_for_data: all checks passed"
    assert str(check_wait_for_any(wait_for_any)) == "✔ wait_for_any: all checks passed"


# -- wait_for_data ------------------------------------------------------------


def busy_wait(sock: socket.socket, timeout: float) -> bytes | None:
    """The notebook's busy loop: right answer, burning CPU."""
    sock.setblocking(False)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            return sock.recv(1024)
        except BlockingIOError:
            pass
    return None


def test_the_busy_loop_is_caught_spinning() -> None:
    text = str(check_wait_for_data(busy_wait))
    assert "with b'ping' arriving after 0.3 s it kept the CPU busy while waiting" in text
    assert "it spins; sleep in select()" in text


def test_the_untouched_stub_is_named() -> None:
    def stub(sock: socket.socket, timeout: float) -> bytes | None:
        raise NotImplementedError("your code here")

    assert "it raised NotImplementedError: replace the `raise` with your code" in str(check_wait_for_data(stub))


def test_a_zero_timeout_gives_up_at_once() -> None:
    def polls_once(sock: socket.socket, timeout: float) -> bytes | None:
        readable, _, _ = select.select([sock], [], [], 0)
        return sock.recv(1024) if readable else None

    text = str(check_wait_for_data(polls_once))
    assert "it returned None, expected b'ping': it gave up at once; pass the timeout to select()" in text


def test_a_blocking_recv_never_returns_and_is_released() -> None:
    def blocks(sock: socket.socket, timeout: float) -> bytes | None:
        return sock.recv(1024)

    text = str(check_wait_for_data(blocks))
    assert "with nothing arriving and a 0.3 s timeout it never returned: give select() the timeout" in text


def test_returning_empty_bytes_on_timeout_is_caught() -> None:
    def empty(sock: socket.socket, timeout: float) -> bytes:
        readable, _, _ = select.select([sock], [], [], timeout)
        return sock.recv(1024) if readable else b""

    assert "with nothing arriving and a 0.3 s timeout it returned b'', expected None" in str(check_wait_for_data(empty))


# -- wait_for_any -------------------------------------------------------------


def test_returning_keys_instead_of_sockets_is_caught() -> None:
    def keys(socks: list[socket.socket], timeout: float) -> list[selectors.SelectorKey]:
        with selectors.DefaultSelector() as sel:
            for sock in socks:
                sel.register(sock, READ)
            return [key for key, _ in sel.select(timeout)]

    assert "it returned SelectorKey items; return the sockets themselves (key.fileobj)" in str(check_wait_for_any(keys))


def test_registering_write_too_is_explained() -> None:
    def read_write(socks: list[socket.socket], timeout: float) -> list[socket.socket]:
        with selectors.DefaultSelector() as sel:
            for sock in socks:
                sel.register(sock, READ | WRITE)
            return [key.fileobj for key, _ in sel.select(timeout)]

    text = str(check_wait_for_any(read_write))
    assert "it returned [socks[0], socks[1], socks[2]], expected [socks[1], socks[2]]: was EVENT_WRITE registered too?" in text


def test_reading_the_data_is_caught() -> None:
    def reads(socks: list[socket.socket], timeout: float) -> list[socket.socket]:
        readable, _, _ = select.select(socks, [], [], timeout)
        for sock in readable:
            sock.recv(1024)
        return readable

    assert "the data on socks[1] was gone: only wait, leave reading to the caller" in str(check_wait_for_any(reads))


def test_no_timeout_never_returns_and_is_released() -> None:
    def no_timeout(socks: list[socket.socket], timeout: float) -> list[socket.socket]:
        with selectors.DefaultSelector() as sel:
            for sock in socks:
                sel.register(sock, READ)
            return [key.fileobj for key, _ in sel.select()]

    assert "with nothing arriving and a 0.3 s timeout it never returned: give select() the timeout" in str(check_wait_for_any(no_timeout))


def test_waiting_only_for_the_first_socket_is_caught() -> None:
    def first_only(socks: list[socket.socket], timeout: float) -> list[socket.socket]:
        readable, _, _ = select.select(socks[:1], [], [], timeout)
        return readable

    text = str(check_wait_for_any(first_only))
    assert "with data already waiting on socks[1] and socks[2] it" in text
