"""The claims of 04-modify, per selector class, named after the section that makes them."""

from __future__ import annotations

import selectors
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from echo_lib import available_selectors

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    with a, b:
        yield a, b


class _KernelCalls:
    """Stands in for a poll-like selector's kernel object and counts the calls made to it."""

    def __init__(self, real: Any) -> None:
        self.real, self.calls = real, []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.real, name)

        def counted(*args: Any) -> Any:
            self.calls.append(name)
            return method(*args)

        return counted


# -- 1. modify() changes the events, the data, or both ------------------------------


def test_1_modify_returns_a_new_key_for_the_same_fd(
    sel: selectors.BaseSelector, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, _ = pair
    key = sel.register(a, READ, "on_read")
    new_key = sel.modify(a, READ | WRITE, "on_ready")
    assert (new_key.events, new_key.data) == (READ | WRITE, "on_ready")
    assert new_key is not key and new_key.fd == key.fd and sel.get_key(a) is new_key


def test_1_modify_without_data_throws_the_callback_away(
    sel: selectors.BaseSelector, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, _ = pair
    sel.register(a, READ, "on_read")
    assert sel.modify(a, READ | WRITE).data is None
    sel.modify(a, READ | WRITE, "on_ready")
    assert sel.modify(a, READ | WRITE).data is None, "even when the events do not change"


def test_1_only_a_change_of_events_reaches_the_kernel(
    selector_name: str, pair: tuple[socket.socket, socket.socket]
) -> None:
    cls = available_selectors()[selector_name]
    if not issubclass(cls, selectors._PollLikeSelector):
        pytest.skip(f"{selector_name} keeps no kernel object between calls")
    a, _ = pair
    with cls() as sel:
        sel.register(a, READ, "on_read")
        kernel = _KernelCalls(sel._selector)
        sel._selector = kernel
        sel.modify(a, READ, "on_read_v2")
        assert kernel.calls == [], "a change of data alone makes no system call"
        sel.modify(a, READ | WRITE, "on_read_v2")
        assert kernel.calls == ["modify"], "a change of events is one modify, in place"
        sel._selector = kernel.real


def test_1_select_and_kqueue_modify_by_unregister_and_register(
    selector_name: str, pair: tuple[socket.socket, socket.socket]
) -> None:
    cls = available_selectors()[selector_name]
    if issubclass(cls, selectors._PollLikeSelector):
        pytest.skip(f"{selector_name} modifies in place")
    calls: list[str] = []

    class Spy(cls):  # type: ignore[misc, valid-type]
        def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
            calls.append("register")
            return super().register(fileobj, events, data)

        def unregister(self, fileobj: Any) -> selectors.SelectorKey:
            calls.append("unregister")
            return super().unregister(fileobj)

    a, _ = pair
    with Spy() as sel:
        sel.register(a, READ)
        sel.modify(a, READ | WRITE)
        assert calls == ["register", "unregister", "register"]


# -- 2. The client's switch: READ|WRITE -> READ --------------------------------------


def test_2_the_switch_to_read_stops_the_write_reports(
    sel: selectors.BaseSelector, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, _ = pair
    sel.register(a, READ | WRITE)
    assert [[mask for _, mask in sel.select(0)] for _ in range(3)] == [[WRITE]] * 3
    sel.modify(a, READ)
    assert sel.select(0) == []


# -- 3. Backpressure: stop reading while the buffer is full --------------------------


def test_3_registered_for_write_only_a_full_socket_waits_without_spinning(
    sel: selectors.BaseSelector, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair
    a.setblocking(False)
    with pytest.raises(BlockingIOError):
        for _ in range(10_000):  # bounded: a socketpair buffer holds far less than 640 MiB
            a.send(b"x" * 65536)
    b.send(b"more input")  # unread input does not wake a key registered for WRITE only
    sel.register(a, WRITE)
    assert sel.select(0) == []
    b.setblocking(False)
    drained = 0
    while [mask for _, mask in sel.select(0)] != [WRITE]:  # the reader takes the echo
        drained += len(b.recv(65536))
        assert drained < 10_000 * 65536
    assert drained > 0


# -- 4. modify() needs a registered file object --------------------------------------


def test_4_modify_needs_a_registered_file_object(
    sel: selectors.BaseSelector, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, _ = pair
    with pytest.raises(KeyError, match="is not registered"):
        sel.modify(a, READ)
    sel.register(a, READ)
    sel.unregister(a)
    assert a not in sel.get_map()
    with pytest.raises(KeyError, match="is not registered"):
        sel.modify(a, READ)
