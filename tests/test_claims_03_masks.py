"""The claims of 03-masks, per selector class, named after the section that makes them.

kqueue (macOS, the BSDs) reports READ and WRITE of one socket as two separate
entries; the notebook says so, and the combined-mask test below pins down what
this platform's classes do instead.
"""

from __future__ import annotations

import errno
import selectors
import socket
import time

import pytest

from echo_lib.driver.sockets import close_with_reset

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


@pytest.fixture
def pair(tcp_pair: tuple[socket.socket, socket.socket]) -> tuple[socket.socket, socket.socket]:
    """Two ends of one loopback TCP connection: (client, server side)."""
    return tcp_pair


def _masks(sel: selectors.BaseSelector, timeout: float = 0) -> list[int]:
    return [mask for _, mask in sel.select(timeout)]


# -- 1. EVENT_READ and EVENT_WRITE are bits ------------------------------------


def test_1_bits_a_registration_needs_at_least_one_event(sel: selectors.BaseSelector) -> None:
    assert (READ, WRITE, READ & WRITE) == (1, 2, 0)
    with socket.socket() as sock, pytest.raises(ValueError, match="Invalid events: 0"):
        sel.register(sock, 0)


# -- 2. Registered events and the ready mask -------------------------------------


def test_2_ready_mask_is_a_subset_and_one_combined_entry_here(
    sel: selectors.BaseSelector, pair: tuple[socket.socket, socket.socket]
) -> None:
    client, server_side = pair
    sel.register(client, READ | WRITE)
    assert _masks(sel, 1) == [WRITE]
    server_side.send(b"hello")
    started = time.monotonic()
    while _masks(sel) != [READ | WRITE]:  # loopback delivers at once; bounded all the same
        assert time.monotonic() - started < 5, "the data never made the socket readable"
    assert len(sel.select(0)) == 1, "epoll, poll and select report one (key, READ|WRITE) entry"


# -- 3. A connected socket is always writable: the WRITE busy loop ----------------


def test_3_always_writable_write_fires_on_every_call(
    sel: selectors.BaseSelector, pair: tuple[socket.socket, socket.socket]
) -> None:
    client, _ = pair
    sel.register(client, READ | WRITE)
    assert all(_masks(sel, 5) == [WRITE] for _ in range(200))
    sel.modify(client, READ)
    assert _masks(sel) == []


# -- 4. What makes a socket readable ---------------------------------------------


def test_4_readable_a_listener_with_a_connection_waiting(sel: selectors.BaseSelector) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        sel.register(listener, READ)
        assert _masks(sel) == []
        with socket.create_connection(listener.getsockname(), timeout=5):
            assert _masks(sel, 5) == [READ]
            listener.accept()[0].close()


def test_4_readable_end_of_file_and_recv_returns_empty(
    sel: selectors.BaseSelector, pair: tuple[socket.socket, socket.socket]
) -> None:
    client, server_side = pair
    sel.register(server_side, READ)
    client.close()
    assert _masks(sel, 5) == [READ]
    assert server_side.recv(1024) == b""
    assert _masks(sel) == [READ], "EOF stays readable: ignore it and the loop spins"


def test_4_readable_a_reset_is_a_pending_error(
    sel: selectors.BaseSelector, pair: tuple[socket.socket, socket.socket]
) -> None:
    client, server_side = pair
    sel.register(server_side, READ)
    close_with_reset(client)  # SO_LINGER 0: close() sends RST instead of FIN
    assert _masks(sel, 5) == [READ]
    with pytest.raises(OSError) as peer_error:
        server_side.getpeername()
    assert peer_error.value.errno == errno.ENOTCONN
    with pytest.raises(ConnectionResetError):
        server_side.recv(1024)
    assert server_side.recv(1024) == b"", "the error is reported once, then EOF"


# -- 5. How long select() waits: None, 0, or seconds -------------------------------


def test_5_how_long_a_positive_timeout_waits_and_returns_empty(
    sel: selectors.BaseSelector, pair: tuple[socket.socket, socket.socket]
) -> None:
    client, _ = pair
    sel.register(client, READ)
    assert sel.select(0) == []
    started = time.monotonic()
    assert sel.select(0.1) == []
    assert time.monotonic() - started >= 0.099


# -- 6. Level-triggered: unread data keeps firing -------------------------------


def test_6_level_triggered_unread_data_keeps_firing(
    sel: selectors.BaseSelector, pair: tuple[socket.socket, socket.socket]
) -> None:
    client, server_side = pair
    sel.register(client, READ)
    server_side.send(b"ping")
    assert [_masks(sel, 5) for _ in range(5)] == [[READ]] * 5
    assert client.recv(1024) == b"ping"
    assert _masks(sel) == []
