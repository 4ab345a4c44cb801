"""EchoConnection: pure buffer logic, no sockets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from echo_lib import EchoConnection


def test_new_connection_wants_only_to_read() -> None:
    conn = EchoConnection()
    assert (conn.wants_read, conn.wants_write, conn.finished) == (True, False, False)


def test_received_data_is_pending_until_sent() -> None:
    conn = EchoConnection()
    conn.receive_data(b"hello")
    assert conn.wants_write and conn.data_to_send() == b"hello"
    conn.sent(2)
    assert conn.data_to_send() == b"llo" and conn.pending == 3
    conn.sent(3)
    assert not conn.wants_write and conn.bytes_sent == 5


def test_data_to_send_is_capped_by_limit() -> None:
    conn = EchoConnection()
    conn.receive_data(b"abcdef")
    assert conn.data_to_send(limit=4) == b"abcd"


def test_full_buffer_pauses_reading() -> None:
    conn = EchoConnection(max_buffer=4)
    conn.receive_data(b"abcd")
    assert not conn.wants_read and conn.wants_write
    conn.sent(1)
    assert conn.wants_read


def test_half_close_still_flushes_the_echo() -> None:
    conn = EchoConnection()
    conn.receive_data(b"bye")
    conn.receive_data(b"")
    assert conn.peer_eof and not conn.wants_read and conn.wants_write and not conn.finished
    conn.sent(3)
    assert conn.finished


def test_data_after_eof_is_an_error() -> None:
    conn = EchoConnection()
    conn.receive_data(b"")
    with pytest.raises(RuntimeError, match="after EOF"):
        conn.receive_data(b"late")


@pytest.mark.parametrize("n", [-1, 4])
def test_sent_more_than_pending_names_the_value(n: int) -> None:
    conn = EchoConnection()
    conn.receive_data(b"abc")
    with pytest.raises(ValueError, match=f"got {n}"):
        conn.sent(n)


@pytest.mark.parametrize("bad", [0, -5, 1.5, "10"])
def test_bad_max_buffer_names_the_value(bad: object) -> None:
    with pytest.raises(ValueError, match=repr(bad).replace(".", r"\.")):
        EchoConnection(max_buffer=bad)  # type: ignore[arg-type]


@given(
    st.lists(st.binary(max_size=300), max_size=30),
    st.lists(st.integers(1, 97), min_size=1, max_size=50),
)
def test_any_chunks_come_back_intact_in_any_send_sizes(
    chunks: list[bytes], sizes: list[int]
) -> None:
    conn = EchoConnection(max_buffer=1 << 20)
    echoed = bytearray()
    for chunk in chunks:
        conn.receive_data(chunk) if chunk else None
    conn.receive_data(b"")
    for i in range(10_000):
        if conn.finished:
            break
        piece = conn.data_to_send(limit=sizes[i % len(sizes)])
        echoed += piece
        conn.sent(len(piece))
    assert bytes(echoed) == b"".join(chunks) and conn.finished
