"""EchoServer against real loopback sockets, on every selector class the platform has."""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from echo_lib import EchoClient, EchoServer, SelectorLoop
from echo_lib.driver.sockets import LINGER_ZERO

from .conftest import SelectorSpec, open_fds, wait_for

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
MiB = 1 << 20


def recv_until_eof(sock: socket.socket, limit: int, timeout: float = 10.0) -> bytes:
    """Read until the peer closes (at most ``limit`` bytes, with a timeout)."""
    sock.settimeout(timeout)
    data = bytearray()
    while len(data) <= limit:
        chunk = sock.recv(1 << 16)
        if not chunk:
            return bytes(data)
        data += chunk
    raise AssertionError(f"peer sent more than {limit} bytes")


def test_echoes_the_seed_messages(loop_selector: SelectorSpec) -> None:
    with EchoServer(selector=loop_selector) as server:
        result = EchoClient(server.address, selector=loop_selector).run()
    assert result.complete and result.sent == result.received == 42
    assert server.timeline.bytes_moved("server") == {"recv": 42, "send": 42}


def test_binds_loopback_and_an_ephemeral_port() -> None:
    with EchoServer() as server:
        host, port = server.address
        assert host == "127.0.0.1" and 0 < port < 65536


def test_keeps_serving_after_a_client_leaves(loop_selector: SelectorSpec) -> None:
    with EchoServer(selector=loop_selector) as server:
        results = [EchoClient(server.address, [b"round %d" % i]).run() for i in range(3)]
        wait_for(lambda: server.connections == 0, what="connections to close")
        assert server.accepted == 3
    assert all(r.complete for r in results)


def test_a_connection_is_counted_gone_only_once_its_close_is_recorded() -> None:
    # A checker waits for `connections == 0`, then reads the timeline: every
    # close must be there by then. So when a close is recorded, its connection
    # still counts.
    with EchoServer() as server:
        record, counted = server._record, []

        def spy(actor: str, action: str, *args: object, **kwargs: object) -> None:
            if action == "close" and "/conn-" in actor:
                counted.append(server.connections)
            record(actor, action, *args, **kwargs)

        server._record = spy
        clients = [socket.create_connection(server.address, timeout=2) for _ in range(5)]
        wait_for(lambda: server.accepted == 5)
        for client in clients:
            client.close()
        wait_for(lambda: server.connections == 0)
        assert len(server.timeline.events("server", "close")) == 5
    assert sorted(counted) == [1, 2, 3, 4, 5]


def test_partial_writes_with_a_small_send_buffer(loop_selector: SelectorSpec) -> None:
    payload = bytes(range(256)) * (12 * 4096)  # 12 MiB
    with EchoServer(selector=loop_selector, sndbuf=4096) as server:
        result = EchoClient(server.address, [payload], rcvbuf=4096, timeout=30).run()
    assert result.complete and result.received == len(payload)
    sends = server.timeline.events("server", "send")
    assert any(e.detail == "partial" for e in sends), "a 4 KiB send buffer must force partial sends"
    modifies = [e.detail for e in server.timeline.events("server", "modify")]
    assert "READ → READ|WRITE" in modifies and "READ|WRITE → READ" in modifies


def test_half_close_flushes_the_pending_echo(loop_selector: SelectorSpec) -> None:
    payload = b"half-close " * 300_000  # 3.3 MB: more than the socket buffers hold
    with (
        EchoServer(selector=loop_selector) as server,
        socket.create_connection(server.address, timeout=10) as sock,
    ):
        received = bytearray()
        sender = threading.Thread(
            target=lambda: (sock.sendall(payload), sock.shutdown(socket.SHUT_WR))
        )
        sender.start()
        received += recv_until_eof(sock, len(payload))
        sender.join(timeout=10)
    assert bytes(received) == payload
    assert server.timeline.events("server/conn-1", "eof")


def test_connection_reset_closes_only_that_connection(loop_selector: SelectorSpec) -> None:
    with EchoServer(selector=loop_selector) as server:
        rude = socket.create_connection(server.address, timeout=5)
        rude.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_ZERO)
        rude.sendall(b"x" * 100_000)
        wait_for(lambda: server.accepted == 1, what="the accept")
        rude.close()  # SO_LINGER 0: the kernel sends RST instead of FIN
        wait_for(lambda: server.connections == 0, what="the reset connection to close")
        after = EchoClient(server.address).run()
    assert after.complete
    closes = server.timeline.events("server/conn-1", ("error", "close"))
    assert closes[-1].action == "close"


def test_a_client_that_never_reads_cannot_grow_the_server(loop_selector: SelectorSpec) -> None:
    cap = 64 * 1024
    with (
        EchoServer(
            selector=loop_selector, max_buffer=cap, recv_size=16 * 1024, sndbuf=4096
        ) as server,
        socket.socket() as hog,
    ):
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        hog.connect(server.address)
        send_until_server_buffer_is_full(hog, server, cap)
        iterations = server.loop.iterations
        threading.Event().wait(0.3)  # a measurement window, not synchronisation
        assert server.loop.iterations - iterations <= 2, "the server loop spins while stalled"
        assert server.buffered() <= cap + 16 * 1024
        modifies = [e.detail for e in server.timeline.events("server/conn-1", "modify")]
        assert modifies[-1].endswith("→ WRITE"), "reading must pause while the buffer is full"


def test_bytes_received_counts_what_the_open_connections_got() -> None:
    with SelectorLoop(record=False) as loop:
        server = EchoServer(loop=loop, record=False).start()
        assert server.bytes_received() == 0
        a, b = socket.create_connection(server.address), socket.create_connection(server.address)
        with a, b:
            a.sendall(b"x" * 10)
            b.sendall(b"y" * 32)
            loop.run_until(lambda: server.bytes_received() == 42)
            assert server.connections == 2
            a.shutdown(socket.SHUT_WR)
            loop.run_until(lambda: server.connections == 1)
            assert recv_until_eof(a, 10) == b"x" * 10
            assert server.bytes_received() == 32, "a closed connection no longer counts"


def send_until_server_buffer_is_full(hog: socket.socket, server: EchoServer, cap: int) -> None:
    """Send without ever reading until the server's echo buffer reaches ``cap`` (bounded)."""
    hog.setblocking(False)
    with selectors.DefaultSelector() as sel:
        sel.register(hog, WRITE)
        for _ in range(10_000):
            if server.buffered() >= cap:
                return
            if sel.select(timeout=0.01):
                with contextlib.suppress(BlockingIOError):
                    hog.send(b"\0" * 16384)
    pytest.fail(f"the server buffered only {server.buffered()} bytes")


def test_hundreds_of_concurrent_connections_with_big_payloads() -> None:
    sizes = [1, 4096, 100_000, 2 * MiB, 5 * MiB]
    with EchoServer(record=False) as server, SelectorLoop(record=False) as loop:
        clients = [
            EchoClient(
                server.address,
                [bytes([i % 251]) * sizes[i % len(sizes)]],
                loop=loop,
                name=f"client-{i}",
            )
            for i in range(250)
        ]
        for client in clients:
            client.start()
        loop.run_until(lambda: all(c.done for c in clients), timeout=60)
        results = [c.result() for c in clients]
        assert server.accepted == 250
    assert all(r.complete for r in results), [str(r) for r in results if not r.complete][:3]


@pytest.fixture(scope="module")
def shared_server() -> EchoServer:
    with EchoServer(record=False) as server:
        yield server


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.binary(max_size=5000), max_size=12))
def test_any_list_of_byte_strings_comes_back_intact(
    shared_server: EchoServer, messages: list[bytes]
) -> None:
    client = EchoClient(shared_server.address, messages, record=False)
    result = client.run()
    assert result.complete and client.received_data == b"".join(messages)


def deterministic_run(loop_selector: SelectorSpec) -> str:
    with SelectorLoop(loop_selector) as loop:
        server = EchoServer(loop=loop).start()
        clients = [
            EchoClient(server.address, loop=loop, name=f"client-{i}").start() for i in (1, 2)
        ]
        loop.run_until(lambda: all(c.done for c in clients) and server.connections == 0)
    return loop.timeline.summary()


def test_deterministic_mode_repeats_exactly(loop_selector: SelectorSpec) -> None:
    first, second = deterministic_run(loop_selector), deterministic_run(loop_selector)
    assert first == second
    assert first.count("echo complete") == 2 and first.count("client-2       recv") >= 1
    if isinstance(loop_selector, str):
        # Under kqueue's reporting the READ entry may come before the WRITE one:
        # the whole echo is then back before the client would switch to READ only.
        assert "READ|WRITE → READ" in first


@pytest.mark.parametrize("port", [-1, 65536, "80", True, 1.5])
def test_bad_port_is_named(port: object) -> None:
    with pytest.raises(ValueError, match=f"got {port!r}".replace(".", r"\.")):
        EchoServer(port=port)  # type: ignore[arg-type]


@pytest.mark.parametrize("host", ["0.0.0.0", "", "192.168.1.10", "example.com"])
def test_non_loopback_host_needs_an_opt_in(host: str) -> None:
    with pytest.raises(ValueError, match=f"host {host!r} is not a loopback address"):
        EchoServer(host=host)


def test_missing_selector_class_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(selectors, "EpollSelector", raising=False)
    monkeypatch.setattr("sys.platform", "darwin")
    with pytest.raises(ValueError, match="EpollSelector is not available on darwin"):
        EchoServer(selector="epoll")


def test_unknown_selector_name() -> None:
    with pytest.raises(ValueError, match="unknown selector 'fastest'"):
        EchoServer(selector="fastest")


def test_port_in_use_raises_oserror() -> None:
    with EchoServer() as first:
        second = EchoServer(port=first.address[1])
        with pytest.raises(OSError):
            second.start()
        second.stop()


def test_stop_is_idempotent_and_closes_everything() -> None:
    server = EchoServer().start()
    sock = socket.create_connection(server.address, timeout=5)
    wait_for(lambda: server.connections == 1, what="the accept")
    server.stop()
    server.stop()
    assert sock.recv(10) == b""  # the server closed our connection
    sock.close()
    assert server.loop.closed and not server.loop.running


def test_on_recv_sees_every_chunk_in_order() -> None:
    chunks: list[tuple[str, bytes]] = []
    with SelectorLoop() as loop:
        server = EchoServer(
            loop=loop, on_recv=lambda actor, data: chunks.append((actor, data))
        ).start()
        client = EchoClient(server.address, [b"abc", b"defg"], loop=loop).start()
        loop.run_until(lambda: client.done)
    assert b"".join(data for _, data in chunks) == b"abcdefg"
    assert {actor for actor, _ in chunks} == {"server/conn-1"}


# -- fail well: out of fds, past FD_SETSIZE, stopped servers, bad values -----------


@contextlib.contextmanager
def fd_limit(soft: int) -> Iterator[None]:
    """Lower this process's soft RLIMIT_NOFILE to ``soft`` for the block (POSIX only)."""
    resource = pytest.importorskip("resource", reason="Windows has no fd limit to lower")
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, before[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, before)


def free_fds_below(limit: int) -> int:
    """How many fds below ``limit`` are not open (the ones accept() can still get)."""
    return limit - len([fd for fd in map(int, os.listdir("/proc/self/fd")) if fd < limit])


@pytest.mark.skipif(
    not os.path.isdir("/proc/self/fd"), reason="counts fds in /proc/self/fd (Linux)"
)
def test_out_of_fds_the_server_backs_off_says_so_once_and_recovers() -> None:
    with SelectorLoop("epoll" if hasattr(selectors, "EpollSelector") else None) as loop:
        server = EchoServer(loop=loop, accept_retry_delay=0.5).start()
        clients = [socket.create_connection(server.address, timeout=5) for _ in range(4)]
        limit = max(map(int, os.listdir("/proc/self/fd"))) + 1
        clients += [
            socket.create_connection(server.address, timeout=5)
            for _ in range(free_fds_below(limit) + 1)
        ]
        for sock in clients:
            sock.sendall(b"ping")
            sock.shutdown(socket.SHUT_WR)
        steps, started = 0, time.monotonic()
        with fd_limit(limit):
            while steps < 200 and time.monotonic() - started < 0.4:  # well within the 0.5 s pause
                loop.step(0.0)
                steps += 1
        listener_ready = len(loop.timeline.events("server", "ready"))
        errors = loop.timeline.events("server", "error")
        assert steps >= 5 and listener_ready == 1, (
            f"the listener was reported ready in {listener_ready} of {steps} steps"
        )
        assert (
            len(errors) == 1
            and "EMFILE" in errors[0].detail
            and "not accepting for 0.5 s" in errors[0].detail
        )
        loop.run_until(lambda: server.accepted == len(clients) and server.connections == 0)
        assert len(loop.timeline.events("server", "error")) == 1, "said once"
    for sock in clients:
        with sock:
            assert recv_until_eof(sock, 4) == b"ping", "every connection was served after the pause"


def test_select_selector_refuses_the_connection_past_fd_setsize_and_serves_the_others() -> None:
    from echo_lib.driver.implementations import FD_SETSIZE

    resource = pytest.importorskip("resource", reason="the POSIX limit is on fd numbers")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < FD_SETSIZE + 64:
        pytest.skip(f"the fd limit ({hard}) is too low to pass FD_SETSIZE")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, FD_SETSIZE + 64), hard))
    fillers: list[int] = []
    socks: list[socket.socket] = []
    try:
        with SelectorLoop("select") as loop:
            server = EchoServer(loop=loop).start()
            socks.append(socket.create_connection(server.address, timeout=5))
            loop.run_until(lambda: server.accepted == 1)
            while (fd := os.open(os.devnull, os.O_RDONLY)) < FD_SETSIZE - 4:
                fillers.append(fd)
            os.close(fd)
            socks += [socket.create_connection(server.address, timeout=5) for _ in range(4)]
            loop.run_until(lambda: server.accepted + server.refused == 5)
            assert server.refused >= 2 and all(
                peer.fd < FD_SETSIZE for peer in server._peers.values()
            )
            socks[0].sendall(b"still served")
            socks[0].shutdown(socket.SHUT_WR)
            loop.run_until(lambda: server.connections == 0)
            errors = loop.timeline.events("server", "error")
            assert len(errors) == 1 and f"FD_SETSIZE ({FD_SETSIZE})" in errors[0].detail, (
                "said once"
            )
        assert recv_until_eof(socks[0], 100) == b"still served"
        assert sum(recv_until_eof(sock, 100) == b"" for sock in socks[1:]) >= 2, (
            "a refused client sees EOF"
        )
    finally:
        for fd in fillers:
            os.close(fd)
        for sock in socks:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_entering_a_stopped_server_again_is_a_clear_error() -> None:
    server = EchoServer(name="once")
    with server:
        pass
    with pytest.raises(RuntimeError, match="'once' .* has stopped; make a new EchoServer"), server:
        pass
    with pytest.raises(RuntimeError, match="has stopped"):
        server.start()


@pytest.mark.parametrize("recv_size", [0, -1, 1.5, True])
def test_a_bad_recv_size_is_named(recv_size: object) -> None:
    with pytest.raises(
        ValueError, match=rf"recv_size must be an int of at least 1, got {recv_size!r}"
    ):
        EchoServer(recv_size=recv_size)


def test_a_server_on_a_closed_loop_is_a_clear_error_and_leaks_nothing() -> None:
    loop = SelectorLoop(name="gone")
    loop.stop()
    fds = open_fds()
    with pytest.raises(RuntimeError, match="'gone' closed.*is closed"):
        EchoServer(loop=loop).start()
    assert open_fds() == fds


def test_stop_from_an_on_recv_hook_closes_the_listener_and_the_loop() -> None:
    server = EchoServer(name="hooked", on_recv=lambda actor, data: server.stop())
    server.start()
    address = server.address
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(b"stop")
        wait_for(lambda: server.loop.closed, what="the loop to close from its own thread")
        assert recv_until_eof(sock, 4) in (b"", b"stop"), "the connection is closed too"
    server.loop._runner.join(5)
    assert server.stopped and server.loop not in SelectorLoop._live
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=5).close()
