"""The library under kqueue's way of reporting, on any platform.

`KqueueStyleSelector` (tests/kqueue_style.py) reports READ and WRITE of one fd
as two entries, in shuffled order, and modifies by unregister + register, as
macOS's and the BSDs' `selectors.DefaultSelector` does. The loop, server and
client suites run through it (the ``loop_selector`` fixture); these tests pin
down the selector itself and the stale keys a split batch can hold.
"""

from __future__ import annotations

import os
import selectors
import socket

import pytest

from echo_lib import EchoClient, EchoServer, SelectorLoop

from .kqueue_style import Entry, KqueueStyleSelector

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


def test_read_and_write_of_one_fd_come_as_two_entries() -> None:
    a, b = socket.socketpair()
    with a, b, KqueueStyleSelector() as sel:
        sel.register(a, READ | WRITE, "a")
        b.send(b"x")
        ready = sel.select(timeout=1)
        assert sorted(mask for key, mask in ready) == [READ, WRITE]
        assert {key.fileobj for key, mask in ready} == {a} and sel.splits == 1


def test_modify_is_unregister_plus_register() -> None:
    a, b = socket.socketpair()
    with a, b, KqueueStyleSelector() as sel:
        before = sel.register(a, READ, "a")
        after = sel.modify(a, READ | WRITE, "a")
        assert after is not before and sel.get_key(a) is after


def test_the_order_is_shuffled_but_repeats_for_a_seed() -> None:
    pairs = [socket.socketpair() for _ in range(8)]
    orders = []
    for _ in range(2):
        with KqueueStyleSelector(seed=3) as sel:
            for a, _ in pairs:
                sel.register(a, WRITE, a.fileno())
            orders.append([key.data for key, mask in sel.select(timeout=1)])
    for a, b in pairs:
        a.close()
        b.close()
    assert orders[0] == orders[1] and orders[0] != sorted(orders[0])


def first_by(*wanted: tuple[object, int]) -> object:
    """An ``order`` putting the (fileobj, mask) entries given first, in that order."""

    def order(ready: list[Entry]) -> list[Entry]:
        rank = {pair: i for i, pair in enumerate(wanted)}
        return sorted(ready, key=lambda entry: rank.get((entry[0].fileobj, entry[1]), len(rank)))

    return order


def test_an_fd_closed_by_an_earlier_callback_in_the_batch_is_skipped() -> None:
    a, b = socket.socketpair()
    calls: list[int] = []
    sel = KqueueStyleSelector(order=first_by((a, READ), (a, WRITE)))
    with SelectorLoop(lambda: sel) as loop, b:

        def on_ready(key: selectors.SelectorKey, mask: int) -> None:
            calls.append(mask)
            loop.selector.unregister(a)
            a.close()

        loop.register(a, READ | WRITE, on_ready, actor="a")
        b.send(b"x")
        assert loop.step(timeout=1) == 2, "READ and WRITE came as two entries"
    assert calls == [READ], "the WRITE entry of the closed socket must be skipped"


def test_an_fd_reused_by_accept_in_the_batch_gets_no_stale_event() -> None:
    # Batch: [x READ] closes x; [listener READ] accepts a socket that takes x's
    # fd; [x WRITE] is x's, not the new socket's.
    x, x_peer = socket.socketpair()
    listener = socket.create_server(("127.0.0.1", 0))
    calls: list[str] = []
    sel = KqueueStyleSelector(order=first_by((x, READ), (listener, READ), (x, WRITE)))
    with (
        SelectorLoop(lambda: sel) as loop,
        x_peer,
        socket.create_connection(listener.getsockname()),
    ):
        old_fd = x.fileno()

        def on_x(key: selectors.SelectorKey, mask: int) -> None:
            calls.append("x")
            loop.selector.unregister(x)
            x.close()

        def on_accept(key: selectors.SelectorKey, mask: int) -> None:
            conn, _ = listener.accept()
            if conn.fileno() != old_fd:  # a lower fd was free: put it where x was
                os.dup2(conn.fileno(), old_fd)
                conn.close()
                conn = socket.socket(fileno=old_fd)
            loop.register(
                conn, READ | WRITE, lambda key, mask: calls.append("accepted"), actor="accepted"
            )
            calls.append("accept")

        loop.register(x, READ | WRITE, on_x, actor="x")
        loop.register(listener, READ, on_accept, actor="listener")
        x_peer.send(b"x")
        assert loop.step(timeout=1) == 3
        assert calls == ["x", "accept"], "x's WRITE must not reach the socket that took its fd"
        assert loop.step(timeout=1) >= 1 and calls[-1] == "accepted"


@pytest.mark.parametrize("seed", range(8))
def test_the_echo_is_whole_in_any_order(seed: int) -> None:
    with SelectorLoop(lambda: KqueueStyleSelector(seed=seed)) as loop:
        server = EchoServer(loop=loop, sndbuf=4096).start()
        messages = [b"a" * 50_000, b"b" * 70_000]
        clients = [
            EchoClient(server.address, messages, loop=loop, name=f"c{i}").start() for i in range(3)
        ]
        loop.run_until(lambda: all(c.done for c in clients) and server.connections == 0)
        assert all(c.result().complete for c in clients), [str(c.result()) for c in clients]
        assert loop.selector.inner.splits > 0, "the run had split READ/WRITE entries to survive"
