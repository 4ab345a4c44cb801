"""EchoClient: the seed's client with a correct stop condition, and its errors."""

from __future__ import annotations

import re
import socket

import pytest

from echo_lib import DEFAULT_MESSAGES, EchoClient, EchoResult, EchoServer, SelectorLoop
from echo_lib.driver.sockets import close_with_reset

from .conftest import SelectorSpec, open_fds, wait_for


def free_port() -> int:
    """A port nothing listens on: bound, then closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_default_messages_are_the_seeds() -> None:
    assert DEFAULT_MESSAGES == (b"It will be repeated.", b"This is the message.  ")


def test_switches_to_read_only_once_the_queue_is_empty(loop_selector: SelectorSpec) -> None:
    # One loop for both, stepped: in threads the whole echo may arrive in the
    # same step as the last send, and the client then finishes without modify().
    with SelectorLoop(loop_selector) as loop:
        server = EchoServer(loop=loop).start()
        client = EchoClient(server.address, loop=loop).start()
        loop.run_until(lambda: client.done)
    events = loop.timeline.events("client")
    assert [e.detail for e in events if e.action == "modify"] == ["READ|WRITE → READ"]
    assert events[0].action == "connect" and events[-1].action == "close"


def test_an_echo_in_many_chunks_is_received_whole() -> None:
    """The seed's stop test ends after the first non-empty recv(); this client must not."""
    payload = b"0123456789" * 50_000
    with EchoServer(sndbuf=4096) as server:
        client = EchoClient(server.address, [payload], recv_size=4096)
        result = client.run()
    recvs = client.timeline.events("client", "recv")
    assert len(recvs) > 1 and result.complete and client.received_data == payload


def test_early_close_reports_what_is_missing() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = EchoClient(listener.getsockname(), [b"x" * 1000])
        client.start()
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(5)
            conn.sendall(conn.recv(10))  # echo 10 bytes, read the rest, close
            read_exactly(conn, 990)
        result = client.join(timeout=5)
    assert not result.complete and result.eof and result.missing == 990
    assert (
        str(result)
        == "client: sent 1000 bytes, received 10 bytes: 990 missing (server closed early)"
    )


def test_a_reset_is_reported() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = EchoClient(listener.getsockname(), [b"x" * 1000])
        client.start()
        conn, _ = listener.accept()
        close_with_reset(conn)
        result = client.join(timeout=5)
    assert not result.complete and result.error == "ConnectionResetError"
    assert str(result).endswith("1000 missing (ConnectionResetError)")


def read_exactly(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    for _ in range(n):
        if len(data) >= n:
            break
        data += sock.recv(n - len(data))
    return bytes(data)


def test_join_times_out_naming_what_is_missing() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts in the backlog, never echoes
        client = EchoClient(silent.getsockname(), [b"abc"]).start()
        with pytest.raises(TimeoutError, match="3 missing"):
            client.join(timeout=0.2)


def test_empty_message_list_finishes_at_once() -> None:
    with EchoServer() as server:
        assert EchoClient(server.address, []).run().complete


def test_result_text_and_flags() -> None:
    ok = EchoResult("c", 5, 5, 5, True, False)
    bad = EchoResult("c", 5, 5, 5, False, False)
    assert str(EchoResult("c", 5, 1, 5, True, False)).endswith("4 missing (not finished)")
    assert ok.complete and ok.missing == 0 and str(ok).endswith("complete")
    assert not bad.complete and str(bad).endswith("CORRUPTED")


def test_connecting_to_a_closed_port_names_the_address() -> None:
    port = free_port()
    with pytest.raises(ConnectionRefusedError, match=f"no server is listening on 127.0.0.1:{port}"):
        EchoClient(("127.0.0.1", port)).run()


@pytest.mark.parametrize("messages", ["text", [b"ok", "text"], [b"ok", 42], 42])
def test_a_message_that_is_not_bytes_is_named(messages: object) -> None:
    with pytest.raises(TypeError, match="must be bytes"):
        EchoClient(("127.0.0.1", 1), messages)


def test_one_bytes_object_is_one_message() -> None:
    assert EchoClient(("127.0.0.1", 1), b"hello", record=False).messages == [b"hello"]


@pytest.mark.parametrize("address", [("10.0.0.1", 80), ("127.0.0.1", 70000)])
def test_bad_address(address: tuple[str, int]) -> None:
    with pytest.raises(ValueError, match=repr(address[0]) if address[1] < 65536 else "70000"):
        EchoClient(address)


def test_clients_share_one_timeline_with_the_server() -> None:
    with EchoServer() as server:
        clients = [
            EchoClient(server.address, name=f"client-{i}", timeline=server.timeline).start()
            for i in (1, 2)
        ]
        results = [c.join(timeout=5) for c in clients]
        wait_for(lambda: server.connections == 0, what="connections to close")
    assert all(r.complete for r in results)
    assert {"server", "server/conn-1", "server/conn-2", "client-1", "client-2"} <= set(
        server.timeline.actors()
    )


def test_run_refuses_a_shared_loop() -> None:
    with SelectorLoop() as loop, pytest.raises(RuntimeError, match="start"):
        EchoClient(("127.0.0.1", 1), loop=loop).run()


# -- bad values: one clear error each, nothing opened -----------------------------


@pytest.mark.parametrize("timeout", [0, -1, 1e10, float("nan"), float("inf"), "5", True])
def test_a_bad_timeout_is_named(timeout: object) -> None:
    with pytest.raises(
        ValueError,
        match=rf"timeout must be a number of seconds above 0 .*, got {re.escape(repr(timeout))}",
    ):
        EchoClient(("127.0.0.1", 1), timeout=timeout)


def test_a_bad_timeout_for_join_is_named() -> None:
    with EchoServer() as server:
        client = EchoClient(server.address, [b"x"]).start()
        with pytest.raises(ValueError, match="timeout must be .*, got -1"):
            client.join(timeout=-1)
        assert client.join().complete


@pytest.mark.parametrize("recv_size", [0, -5, 2.0])
def test_a_bad_recv_size_is_named(recv_size: object) -> None:
    with pytest.raises(
        ValueError, match=rf"recv_size must be an int of at least 1, got {recv_size!r}"
    ):
        EchoClient(("127.0.0.1", 1), recv_size=recv_size)


def test_port_0_is_not_a_servers_port() -> None:
    with pytest.raises(ValueError, match="port must be the server's port, 1..65535, got 0"):
        EchoClient(("127.0.0.1", 0))


def test_a_client_on_a_closed_loop_is_a_clear_error_and_leaks_nothing() -> None:
    with EchoServer() as server:
        loop = SelectorLoop(name="gone")
        loop.stop()
        fds = open_fds()
        with pytest.raises(RuntimeError, match="'gone' closed.*is closed"):
            EchoClient(server.address, loop=loop).start()
        assert open_fds() == fds
