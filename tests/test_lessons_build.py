"""The claims notebooks 09 and 11 make about sockets and selectors, one test each, named after the
section that makes them; and the side-by-side display of section 8."""

from __future__ import annotations

import selectors
import socket

import pytest

from echo_lib import EchoServer
from echo_lib.driver.sockets import close_with_reset
from echo_lib.lessons.build import SideBySide, side_by_side
from echo_lib.view.source import Source

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
KiB, MiB = 1 << 10, 1 << 20


@pytest.fixture
def pair(tcp_pair: tuple[socket.socket, socket.socket]) -> tuple[socket.socket, socket.socket]:
    """A connected TCP pair on loopback: (client's end, server's accepted end), non-blocking."""
    for sock in tcp_pair:
        sock.setblocking(False)
    return tcp_pair


# -- 09 §1 Accept and register ----------------------------------------------------------


def test_09_accept_and_register_write_is_ready_at_once_and_on_every_select(
    selector_name: str, pair: tuple[socket.socket, socket.socket]
) -> None:
    _, conn = pair
    with getattr(selectors, selector_name)() as sel:
        sel.register(conn, READ | WRITE)
        for _ in range(3):  # nothing to send, yet ready every time: level-triggered
            assert [mask for _, mask in sel.select(0)] == [WRITE]


# -- 09 §3 Buffered writes ----------------------------------------------------------------


def test_09_buffered_writes_send_takes_part_then_raises_blocking_io_error(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    client, conn = pair
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * KiB)
    sent = conn.send(bytes(4 * MiB))
    assert 0 < sent < 4 * MiB  # what fitted, and how much
    with pytest.raises(BlockingIOError):
        while True:
            conn.send(bytes(MiB))


def test_09_buffered_writes_sendall_raises_blocking_io_error_too(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    _, conn = pair
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * KiB)
    with pytest.raises(BlockingIOError):
        conn.sendall(bytes(16 * MiB))


# -- 09 §5 Half-close -------------------------------------------------------------------


def test_09_half_close_recv_returns_empty_while_the_peer_still_reads(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    client, conn = pair
    client.sendall(b"last words")
    client.shutdown(socket.SHUT_WR)
    with selectors.DefaultSelector() as sel:
        sel.register(conn, READ)
        received = b""
        while True:
            assert sel.select(2), "no EOF within 2 s"
            chunk = conn.recv(4096)
            if not chunk:
                break
            received += chunk
        sel.register(client, READ)
        conn.sendall(received)  # the echo still goes out after EOF...
        assert sel.select(2)
        assert client.recv(4096) == b"last words"  # ...and the half-closed peer reads it


# -- 09 §6 Resets and broken pipes ------------------------------------------------------


def _wait_readable(sock: socket.socket, what: str) -> None:
    with selectors.DefaultSelector() as sel:
        sel.register(sock, READ)
        assert sel.select(2), f"{what} was not reported within 2 s"


def test_09_resets_recv_raises_connection_reset_error(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    client, conn = pair
    close_with_reset(client)
    _wait_readable(conn, "the reset")
    with pytest.raises(ConnectionResetError):
        conn.recv(4096)


def test_09_resets_close_with_unread_data_sends_a_reset(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    client, conn = pair
    conn.sendall(b"an echo the client never reads")
    _wait_readable(client, "the echo")
    client.close()  # unread data in its receive queue: RST, not FIN
    _wait_readable(conn, "the reset")
    with pytest.raises(ConnectionResetError):
        conn.recv(4096)


def test_09_resets_send_raises_connection_reset_or_broken_pipe(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    client, conn = pair
    close_with_reset(client)
    with pytest.raises((ConnectionResetError, BrokenPipeError)):
        for _ in range(100):  # the first send() may still be taken before the RST is seen
            conn.send(b"echo")
            with selectors.DefaultSelector() as sel:
                sel.register(conn, READ)
                sel.select(0.05)


# -- 09 §7 Stop: unregister, then close -------------------------------------------------


def test_09_stop_a_closed_registered_socket_blocks_its_fd_number(selector_name: str) -> None:
    with getattr(selectors, selector_name)() as sel:
        first = socket.socket()
        fd = first.fileno()
        sel.register(first, READ)
        first.close()  # without unregister()
        with socket.socket() as second:
            assert second.fileno() == fd  # the kernel reuses the lowest free number
            with pytest.raises(KeyError, match="is already registered"):
                sel.register(second, READ)
        assert len(sel.get_map()) == 1  # the stale key is still there


# -- 11 §3 The rounds ----------------------------------------------------------------------


def test_11_rounds_accepted_sockets_inherit_the_listeners_buffer_sizes() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * KiB)
        small = listener.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        with socket.create_connection(listener.getsockname(), timeout=2) as client:
            conn, _ = listener.accept()
            with conn:
                assert conn.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == small
                assert client.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) != small


# -- 09 §8 The same thing, packaged: side by side -----------------------------------------


def test_side_by_side_shows_each_column_under_its_title() -> None:
    def update(conn: object) -> None:
        return None

    shown = side_by_side(("yours", update), ("the library's", EchoServer._update_registration))
    assert isinstance(shown, SideBySide) and [title for title, _ in shown.columns] == [
        "yours",
        "the library's",
    ]
    assert repr(shown).startswith("# --- yours ---\ndef update(conn: object) -> None:")
    assert "def _update_registration(self, peer: _Peer) -> None:" in repr(shown)
    assert "<th style='text-align:left'>the library&#x27;s</th>" in shown._repr_html_()
    assert "-&gt; None" in shown._repr_html_()  # source is escaped, not rendered


def test_side_by_side_joins_a_tuple_and_takes_source_objects() -> None:
    shown = side_by_side(("two", (Source("a = 1"), Source("b = 2"))))
    assert shown.columns == [("two", "a = 1\n\nb = 2")]


def test_side_by_side_names_an_object_without_source() -> None:
    with pytest.raises(TypeError):
        side_by_side(("builtin", len))
