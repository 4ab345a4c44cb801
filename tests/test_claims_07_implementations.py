"""What 07-selector-implementations says about the selector classes, checked on this platform.

Each test is named after the notebook section that makes the claim and runs
over every class the platform has (the ``selector_name`` fixture). A class the
notebook says nothing about (kqueue, devpoll: not on Linux) is skipped with
the reason, never passed silently.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from echo_lib import EchoClient, EchoServer, SelectorLoop, available_selectors
from echo_lib.driver.fds import MoreFds, SocketsAt, dup_to
from echo_lib.driver.implementations import FD_SETSIZE
from echo_lib.driver.selector_probes import ready_order

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
MESSAGES = [b"It will be repeated.", b"This is the message.  ", b"x" * 100_000]
# Section 3's sockets: registered a, b, c, d; made readable c, a, d, b. The fd
# numbers are chosen so that fd order (c, d, b, a), set order (b, c, a, d: fd
# modulo 8) and both other orders all differ.
NUMBERS = {"a": 907, "b": 904, "c": 898, "d": 901}
REGISTERED, READIED = "abcd", "cadb"


def _cls(name: str) -> type[selectors.BaseSelector]:
    return available_selectors()[name]


# -- 1. The classes this platform has ----------------------------------------------


def test_1_the_classes_default_selector_is_the_cheapest_available() -> None:
    assert selectors.DefaultSelector is next(iter(available_selectors().values()))


def test_1_the_classes_all_share_base_selector(selector_name: str) -> None:
    assert issubclass(_cls(selector_name), selectors.BaseSelector)


# -- 2. One scenario, every class, the same results ------------------------------


def _echo_run(cls: type[selectors.BaseSelector]) -> tuple[list[str], dict[str, int], str]:
    with SelectorLoop(cls) as loop:
        server = EchoServer(loop=loop).start()
        clients = [
            EchoClient(server.address, MESSAGES, name=f"client-{i}", loop=loop).start()
            for i in (1, 2, 3)
        ]
        loop.run_until(lambda: all(c.done for c in clients) and server.connections == 0)
    return (
        [str(c.result()) for c in clients],
        loop.timeline.bytes_moved("server"),
        loop.timeline.summary(),
    )


@pytest.fixture(scope="module")
def reference_run() -> tuple[list[str], dict[str, int], str]:
    return _echo_run(selectors.DefaultSelector)


def test_2_same_results_on_every_class(selector_name: str, reference_run: Any) -> None:
    results, moved, _ = _echo_run(_cls(selector_name))
    assert results == reference_run[0]
    assert all(line.endswith("complete") for line in results)
    assert moved == reference_run[1] == {"recv": 3 * 100_042, "send": 3 * 100_042}


def test_2_same_results_poll_listing_equals_epoll_listing() -> None:
    if not {"EpollSelector", "PollSelector"} <= set(available_selectors()):
        pytest.skip(
            "the claim compares PollSelector with EpollSelector; this platform lacks one of them"
        )
    assert _echo_run(selectors.PollSelector)[2] == _echo_run(selectors.EpollSelector)[2]


# -- 3. Three classes, three orders ------------------------------------------------


def _ready_order(
    cls: type[selectors.BaseSelector],
    socks: dict[str, socket.socket],
    peers: dict[str, socket.socket],
) -> list[str]:
    return ready_order(cls, socks, peers, REGISTERED, READIED)


@pytest.fixture
def numbered() -> Iterator[tuple[dict[str, socket.socket], dict[str, socket.socket]]]:
    with MoreFds(max(NUMBERS.values()) + 64), SocketsAt(NUMBERS) as (socks, peers):
        got = {name: sock.fileno() for name, sock in socks.items()}
        if got != NUMBERS:
            pytest.skip(
                f"could not place the sockets at {NUMBERS} (got {got}): descriptors in use or "
                "RLIMIT_NOFILE too low"
            )
        yield socks, peers


def _expected_order(selector_name: str, socks: dict[str, socket.socket]) -> list[str]:
    if selector_name == "EpollSelector":
        return list(READIED)  # the kernel's ready list: the order they became ready
    if selector_name == "PollSelector":
        return list(REGISTERED)  # the pollfd array, built from a dict: registration order
    if selector_name == "SelectSelector":
        by_fd = {sock.fileno(): name for name, sock in socks.items()}
        return [
            by_fd[fd] for fd in set(by_fd) | set()
        ]  # `r | w` in SelectSelector.select: set order
    pytest.skip(f"07 makes no claim about the order of {selector_name}")


def test_3_three_orders(selector_name: str, numbered: Any) -> None:
    socks, peers = numbered
    assert _ready_order(_cls(selector_name), socks, peers) == _expected_order(selector_name, socks)


def test_3_three_orders_set_order_is_fd_modulo_table_size_not_fd_order() -> None:
    fds = list(NUMBERS.values())
    assert list(set(fds)) == sorted(fds, key=lambda fd: fd % 8)  # 8 slots for up to 4 fds
    assert list(set(fds)) != sorted(fds)


def test_3_three_orders_are_three_different_orders(numbered: Any) -> None:
    socks, peers = numbered
    orders = {
        name: tuple(_ready_order(cls, socks, peers)) for name, cls in available_selectors().items()
    }
    assert len(set(orders.values())) == len(orders), orders


def test_3_three_orders_every_class_is_level_triggered(selector_name: str) -> None:
    """Unread bytes are reported on every select() until read (why section 3 reads them back)."""
    sock, peer = socket.socketpair()
    with sock, peer, _cls(selector_name)() as sel:
        sel.register(sock, READ)
        peer.send(b"xy")
        assert [len(sel.select(0)) for _ in range(3)] == [1, 1, 1]
        sock.recv(1)
        assert len(sel.select(0)) == 1  # one byte still waiting
        sock.recv(1)
        assert sel.select(0) == []


# -- 4. What an idle socket costs -------------------------------------------------


def test_4_idle_socket_registered_for_read_is_never_ready(selector_name: str) -> None:
    sock, peer = socket.socketpair()
    with sock, peer, _cls(selector_name)() as sel:
        sel.register(sock, READ)
        assert sel.select(0) == []
        sel.modify(sock, WRITE)  # the exercise's hint: for WRITE an idle socket is always ready
        assert [(key.fileobj, mask) for key, mask in sel.select(0)] == [(sock, WRITE)]


class _CountingEpoll:
    """A select.epoll that counts its control calls (each one epoll_ctl())."""

    def __init__(self, epoll: Any) -> None:
        self._epoll, self.calls = epoll, []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._epoll, name)
        if name in ("register", "modify", "unregister"):
            self.calls.append(name)
        return attr


def test_4_idle_cost_epoll_changes_its_kernel_list_with_one_call_each() -> None:
    if "EpollSelector" not in available_selectors():
        pytest.skip("epoll is Linux only")
    sock, peer = socket.socketpair()
    with sock, peer, selectors.EpollSelector() as sel:
        sel._selector = counting = _CountingEpoll(sel._selector)  # type: ignore[attr-defined]
        sel.register(sock, READ)
        sel.modify(sock, READ | WRITE)
        sel.unregister(sock)
        assert counting.calls == ["register", "modify", "unregister"]
        sel._selector = counting._epoll  # type: ignore[attr-defined]


# -- 5. select()'s limit: FD_SETSIZE -----------------------------------------------


@contextlib.contextmanager
def _socket_at(number: int) -> Iterator[socket.socket]:
    low, peer = (
        socket.socketpair()
    )  # connected and idle: never readable (an unconnected socket is: HUP)
    with MoreFds(number + 64) as fds, low, peer:
        if fds.limit is not None and fds.limit <= number:
            pytest.skip(f"RLIMIT_NOFILE ({fds.limit}) leaves no fd {number}")
        with dup_to(low, number) as high:
            if high.fileno() != number:
                pytest.skip(f"fd {number} is in use")
            yield high


def test_5_fd_setsize_is_a_number_limit_not_a_count(selector_name: str) -> None:
    """One socket at fd 1024: register() takes it; select() refuses it only on SelectSelector."""
    with _socket_at(FD_SETSIZE) as high, _cls(selector_name)() as sel:
        sel.register(high, READ)
        if selector_name == "SelectSelector":
            with pytest.raises(ValueError, match="filedescriptor out of range"):
                sel.select(0)
        else:
            assert sel.select(0) == []


def test_5_fd_setsize_is_1024_the_last_fd_select_takes_is_1023() -> None:
    with _socket_at(FD_SETSIZE - 1) as high, selectors.SelectSelector() as sel:
        sel.register(high, READ)
        assert sel.select(0) == []
