"""Claims notebook 06 (many clients and big messages) makes about sockets and selectors, by section.

Each selector claim runs on every selector class this platform has.
"""

from __future__ import annotations

import selectors
import socket

from echo_lib import EchoClient, EchoServer, SelectorLoop

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
KiB, MiB = 1 << 10, 1 << 20


def _fill(sock: socket.socket) -> int:
    """Send until the kernel takes no more; return how many bytes went."""
    sent = 0
    try:
        while True:
            sent += sock.send(bytes(64 * KiB))
    except BlockingIOError:
        return sent


def test_section_3_a_non_blocking_send_takes_only_what_fits() -> None:
    sock, peer = socket.socketpair()
    with sock, peer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * KiB)
        sock.setblocking(False)
        assert 0 < sock.send(bytes(MiB)) < MiB


def test_section_4_after_shut_wr_the_peer_reads_eof_and_can_still_send(selector_name: str) -> None:
    with (
        socket.create_server(("127.0.0.1", 0)) as listener,
        socket.create_connection(listener.getsockname()) as client,
    ):
        conn, _ = listener.accept()
        with conn, getattr(selectors, selector_name)() as sel:
            client.shutdown(socket.SHUT_WR)  # "I am done sending"; the client still reads
            sel.register(conn, READ)
            assert [mask for _, mask in sel.select(timeout=5)] == [READ]
            assert conn.recv(1024) == b""
            conn.sendall(b"the echo still owed")
            client.settimeout(5)
            assert client.recv(1024) == b"the echo still owed"


def test_section_5_registered_for_write_alone_a_full_socket_waits_without_spinning(
    selector_name: str,
) -> None:
    sock, peer = socket.socketpair()
    with sock, peer, getattr(selectors, selector_name)() as sel:
        sock.setblocking(False)
        assert _fill(sock) > 0
        sel.register(sock, WRITE)  # reading paused: WRITE only, and nothing can be written
        assert [sel.select(timeout=0.02) for _ in range(5)] == [
            []
        ] * 5  # each call waited its timeout out
        peer.setblocking(False)
        while True:  # the reader drains: WRITE comes back
            try:
                peer.recv(MiB)
            except BlockingIOError:
                break
        assert [mask for _, mask in sel.select(timeout=5)] == [WRITE]


def test_section_2_one_thread_serves_every_ready_connection_each_round(selector_name: str) -> None:
    """Every connection ready in a round is served in that round, one bounded recv() at a time."""
    upload = [b"x" * (256 * KiB), b"y" * (256 * KiB)]
    with SelectorLoop(selector_name) as loop:
        server = EchoServer(loop=loop).start()
        clients = [
            EchoClient(server.address, upload, name=f"client-{i}", loop=loop).start()
            for i in range(1, 5)
        ]
        loop.run_until(lambda: all(c.done for c in clients) and server.connections == 0, timeout=30)
    assert all(c.result().complete for c in clients)
    rounds: list[tuple[set[str], set[str]]] = []
    for event in loop.timeline.events():
        if event.action == "select":
            rounds.append((set(), set()))
        elif rounds and event.actor.startswith("server/") and event.action == "ready":
            rounds[-1][0].add(event.actor)
        elif (
            rounds and event.actor.startswith("server/") and event.action in ("recv", "send", "eof")
        ):
            rounds[-1][1].add(event.actor)
    assert all(ready <= served for ready, served in rounds)
    assert max(e.nbytes for e in loop.timeline.events("server", "recv")) <= 64 * KiB
