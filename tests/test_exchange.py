"""EchoExchange: the client's queue, byte counts and stop rule, tested without sockets."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from echo_lib.core.exchange import EchoExchange

SEED = (b"It will be repeated.", b"This is the message.  ")


def send_all(exchange: EchoExchange, sizes: list[int]) -> bytes:
    """Drain the queue as a kernel taking ``sizes[i]`` bytes (at most) per send() would."""
    out = bytearray()
    for i in range(100_000):
        if not exchange.wants_write:
            break
        piece = exchange.data_to_send()[: sizes[i % len(sizes)]]
        out += piece
        exchange.sent(len(piece))
    return bytes(out)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in zip(points, points[1:], strict=False) if b > a]


def test_a_new_exchange_wants_to_send_the_first_message() -> None:
    exchange = EchoExchange(SEED)
    assert exchange.wants_write and bytes(exchange.data_to_send()) == SEED[0]
    assert (exchange.expected, exchange.done, exchange.echoed) == (42, False, False)


def test_a_partial_send_keeps_the_rest_queued() -> None:
    exchange = EchoExchange([b"hello"])
    assert exchange.sent(2) is False
    assert bytes(exchange.data_to_send()) == b"llo" and exchange.bytes_sent == 2
    assert exchange.sent(3) is True
    assert not exchange.wants_write and exchange.bytes_sent == 5


def test_the_first_chunk_of_the_echo_does_not_end_the_exchange() -> None:
    # The seed's fault: it stops at the first non-empty recv().
    exchange = EchoExchange(SEED)
    send_all(exchange, [1000])
    exchange.receive_data(b"It will be")
    assert not exchange.done and exchange.missing == 32
    exchange.receive_data(b"".join(SEED)[10:])
    assert exchange.done and exchange.echoed and exchange.intact and exchange.missing == 0


def test_an_echo_cannot_finish_before_the_queue_is_sent() -> None:
    exchange = EchoExchange([b"ab", b"cd"])
    exchange.sent(2)
    exchange.receive_data(b"abcd")  # a confused server echoing ahead of us
    assert not exchange.echoed and not exchange.done
    exchange.sent(2)
    assert exchange.echoed


def test_eof_ends_the_exchange_and_says_what_is_missing() -> None:
    exchange = EchoExchange([b"abcdef"])
    send_all(exchange, [6])
    exchange.receive_data(b"abc")
    exchange.receive_data(b"")
    assert exchange.done and exchange.eof and not exchange.echoed and exchange.missing == 3


def test_an_error_ends_the_exchange() -> None:
    exchange = EchoExchange([b"abc"])
    exchange.fail("ConnectionResetError")
    assert exchange.done and exchange.error == "ConnectionResetError"
    assert "ConnectionResetError" in repr(exchange)


def test_changed_bytes_are_not_intact() -> None:
    exchange = EchoExchange([b"abc"])
    send_all(exchange, [3])
    exchange.receive_data(b"abX")
    assert exchange.done and not exchange.intact


def test_no_messages_or_empty_ones_are_echoed_at_once() -> None:
    exchange = EchoExchange([b"", b""])
    assert not exchange.wants_write and exchange.echoed and bytes(exchange.data_to_send()) == b""


def test_data_after_eof_is_an_error() -> None:
    exchange = EchoExchange([b"abc"])
    exchange.receive_data(b"")
    with pytest.raises(RuntimeError, match="after EOF"):
        exchange.receive_data(b"late")


@pytest.mark.parametrize("n", [-1, 4, True])
def test_sent_outside_the_head_names_the_value(n: int) -> None:
    exchange = EchoExchange([b"abc", b"de"])
    with pytest.raises(ValueError, match=f"nbytes .* got {n}"):
        exchange.sent(n)


@pytest.mark.parametrize("bad", ["text", [b"ok", "no"], 42])
def test_messages_that_are_not_bytes_are_refused(bad: object) -> None:
    with pytest.raises(TypeError, match="bytes"):
        EchoExchange(bad)


@given(
    st.lists(st.binary(max_size=200), max_size=12),
    st.lists(st.integers(1, 97), min_size=1, max_size=20),
    st.lists(st.integers(0, 10_000), max_size=30),
)
def test_any_send_sizes_and_any_chunking_of_the_echo_give_the_same_verdict(
    messages: list[bytes], sizes: list[int], cuts: list[int]
) -> None:
    exchange = EchoExchange(messages)
    payload = send_all(exchange, sizes)
    assert payload == b"".join(messages) and exchange.bytes_sent == len(payload)
    chunks = split(payload, cuts)
    for chunk in chunks[:-1]:
        exchange.receive_data(chunk)
        assert not exchange.done, "done before the last byte came back"
    for chunk in chunks[-1:]:
        exchange.receive_data(chunk)
    assert exchange.done and exchange.echoed and exchange.intact and exchange.missing == 0


@given(
    st.binary(min_size=1, max_size=300),
    st.lists(st.integers(0, 10_000), max_size=30),
    st.integers(0, 299),
)
def test_a_truncated_echo_then_eof_misses_exactly_the_rest(
    payload: bytes, cuts: list[int], keep: int
) -> None:
    keep %= len(payload)
    exchange = EchoExchange(payload)
    send_all(exchange, [len(payload)])
    for chunk in split(payload[:keep], cuts):
        exchange.receive_data(chunk)
    assert not exchange.done
    exchange.receive_data(b"")
    assert exchange.done and not exchange.echoed and exchange.missing == len(payload) - keep
    assert exchange.intact
