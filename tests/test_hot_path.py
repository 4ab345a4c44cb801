"""The hot paths (SelectorLoop.step, EchoServer's handlers, RecordingSelector.select,
EchoConnection) record exactly the events they always did.

They are written for speed (issue 11), so each scripted exchange here is
compared with the whole event list it produced before that: same actors,
actions, masks, byte counts and details, in the same order. Fds differ from
run to run, so each is replaced by its order of first appearance (-1 stays).
Loopback delivers a sent byte before ``send()`` returns, so every step below
finds exactly what the script just did, on every selector class.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
from collections.abc import Iterator

import pytest

from echo_lib import EchoServer, RecordingSelector, SelectorLoop, Timeline, resolve_selector
from echo_lib.core.connection import EchoConnection
from echo_lib.driver.implementations import FdSetSizeError
from echo_lib.driver.sockets import close_with_reset, recv_all
from echo_lib.driver.wait import run_with_timeout

from .conftest import SelectorSpec

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
Row = tuple[str, str, int, int, int, str]


def rows(timeline: Timeline) -> list[Row]:
    """The events as (actor, action, fd, mask, nbytes, detail), fds numbered 0, 1, 2..."""
    fds: dict[int, int] = {-1: -1}
    return [
        (e.actor, e.action, fds.setdefault(e.fd, len(fds) - 1), e.mask, e.nbytes, e.detail)
        for e in timeline.events()
    ]


def step(loop: SelectorLoop) -> int:
    """One step that must find something ready (a wait, so the detail says "wait")."""
    ready = loop.step(timeout=5.0)
    assert ready, "nothing was ready"
    return ready


@pytest.fixture
def served(loop_selector: SelectorSpec) -> Iterator[tuple[SelectorLoop, EchoServer]]:
    loop = SelectorLoop(loop_selector, name="loop")
    server = EchoServer(loop=loop, name="server").start()
    try:
        yield loop, server
    finally:
        loop.close()


def connect(loop: SelectorLoop, server: EchoServer) -> socket.socket:
    client = socket.create_connection(server.address)
    client.settimeout(5.0)
    step(loop)
    return client


ACCEPTED: list[Row] = [
    ("server", "register", 0, READ, 0, ""),
    ("loop", "select", -1, 0, 1, "wait, 1 ready"),
    ("server", "ready", 0, READ, 0, ""),
    ("server", "accept", 1, 0, 0, "conn-1"),
    ("server/conn-1", "register", 1, READ, 0, ""),
]


def test_an_echo_then_a_half_close(served: tuple[SelectorLoop, EchoServer]) -> None:
    loop, server = served
    client = connect(loop, server)
    with client:
        for message in (b"hello", b"world!"):
            client.sendall(message)
            step(loop)
            assert client.recv(100) == message
        client.shutdown(socket.SHUT_WR)
        step(loop)
        assert client.recv(100) == b""
    assert server.connections == 0 and loop.iterations == 4
    assert rows(loop.timeline) == [
        *ACCEPTED,
        ("loop", "select", -1, 0, 1, "wait, 1 ready"),
        ("server/conn-1", "ready", 1, READ, 0, ""),
        ("server/conn-1", "recv", 1, 0, 5, ""),
        ("server/conn-1", "send", 1, 0, 5, ""),
        ("loop", "select", -1, 0, 1, "wait, 1 ready"),
        ("server/conn-1", "ready", 1, READ, 0, ""),
        ("server/conn-1", "recv", 1, 0, 6, ""),
        ("server/conn-1", "send", 1, 0, 6, ""),
        ("loop", "select", -1, 0, 1, "wait, 1 ready"),
        ("server/conn-1", "ready", 1, READ, 0, ""),
        ("server/conn-1", "eof", 1, 0, 0, "0 bytes still to echo"),
        ("server/conn-1", "unregister", 1, READ, 0, ""),
        ("server/conn-1", "close", 1, 0, 0, "echo complete"),
    ]


def test_a_reset_is_an_error_then_a_close(served: tuple[SelectorLoop, EchoServer]) -> None:
    loop, server = served
    client = connect(loop, server)
    close_with_reset(client)
    step(loop)
    assert server.connections == 0
    assert rows(loop.timeline)[len(ACCEPTED) :] == [
        ("loop", "select", -1, 0, 1, "wait, 1 ready"),
        ("server/conn-1", "ready", 1, READ, 0, ""),
        ("server/conn-1", "error", 1, 0, 0, "ConnectionResetError"),
        ("server/conn-1", "unregister", 1, READ, 0, ""),
        ("server/conn-1", "close", 1, 0, 0, "after ConnectionResetError"),
    ]


class _ServerSends:
    """Script what ``send()`` does on the server's end of one connection (its fd).

    Every call on that fd is counted; the first ``len(script)`` go through
    ``script`` (an exception to raise, or how many bytes to let through),
    the rest are real. Every other socket's ``send()`` is untouched.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, fd: int, *script: object) -> None:
        self.fd, self.script, self.calls = fd, list(script), 0
        real = socket.socket.send

        def send(sock: socket.socket, data: bytes, *flags: int) -> int:
            if sock.fileno() != self.fd:
                return real(sock, data, *flags)
            self.calls += 1
            what = self.script.pop(0) if self.script else None
            if isinstance(what, type) and issubclass(what, OSError):
                raise what("scripted")
            return real(sock, data[:what] if isinstance(what, int) else data, *flags)

        monkeypatch.setattr(socket.socket, "send", send)


def _server_side(loop: SelectorLoop, client: socket.socket) -> int:
    """The fd of the server's end of ``client``'s connection (recording or not)."""
    for key in list(loop.selector.get_map().values()):
        with contextlib.suppress(OSError):  # the listener has no peer
            if key.fileobj.getpeername() == client.getsockname():  # type: ignore[union-attr]
                return key.fd
    raise AssertionError(f"no registered socket is connected to {client.getsockname()}")


def _sent_on_write(nbytes: int) -> list[Row]:
    """The rows of an echo's last ``nbytes`` waiting for, then sent on, EVENT_WRITE."""
    return [
        ("server/conn-1", "modify", 1, READ | WRITE, 0, "READ → READ|WRITE"),
        ("loop", "select", -1, 0, 1, "wait, 1 ready"),
        ("server/conn-1", "ready", 1, WRITE, 0, ""),
        ("server/conn-1", "send", 1, 0, nbytes, ""),
        ("server/conn-1", "modify", 1, READ, 0, "READ|WRITE → READ"),
    ]


def test_a_send_refused_at_once_keeps_the_echo_for_event_write(
    served: tuple[SelectorLoop, EchoServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    loop, server = served
    client = connect(loop, server)
    sends = _ServerSends(monkeypatch, _server_side(loop, client), BlockingIOError)
    with client:
        client.sendall(b"hello")
        step(loop)
        assert sends.calls == 1 and server.buffered() == 5  # no second try into a full kernel
        step(loop)
        assert client.recv(100) == b"hello" and sends.calls == 2
    assert rows(loop.timeline)[len(ACCEPTED) :] == [
        ("loop", "select", -1, 0, 1, "wait, 1 ready"),
        ("server/conn-1", "ready", 1, READ, 0, ""),
        ("server/conn-1", "recv", 1, 0, 5, ""),
        *_sent_on_write(5),
    ]


def test_a_partial_send_at_once_sends_the_rest_on_event_write(
    served: tuple[SelectorLoop, EchoServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    loop, server = served
    client = connect(loop, server)
    sends = _ServerSends(monkeypatch, _server_side(loop, client), 2)
    with client:
        client.sendall(b"hello")
        step(loop)
        assert sends.calls == 1 and server.buffered() == 3
        step(loop)
        assert recv_all(client, 5) == b"hello" and sends.calls == 2
    assert rows(loop.timeline)[len(ACCEPTED) + 2 :] == [
        ("server/conn-1", "recv", 1, 0, 5, ""),
        ("server/conn-1", "send", 1, 0, 2, "partial"),
        *_sent_on_write(3),
    ]


@pytest.mark.parametrize("error", [BrokenPipeError, ConnectionResetError])
def test_a_send_that_fails_at_once_records_the_recv_then_closes(
    served: tuple[SelectorLoop, EchoServer], monkeypatch: pytest.MonkeyPatch, error: type
) -> None:
    loop, server = served
    client = connect(loop, server)
    _ServerSends(monkeypatch, _server_side(loop, client), error)
    with client:
        client.sendall(b"hello")
        step(loop)
    assert server.connections == 0
    name = error.__name__
    assert rows(loop.timeline)[len(ACCEPTED) + 2 :] == [
        ("server/conn-1", "recv", 1, 0, 5, ""),
        ("server/conn-1", "error", 1, 0, 0, name),
        ("server/conn-1", "unregister", 1, READ, 0, ""),
        ("server/conn-1", "close", 1, 0, 0, f"after {name}"),
    ]


def test_a_recv_is_recorded_before_its_echo_is_sent(
    served: tuple[SelectorLoop, EchoServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another thread sharing the timeline (a client) can only record the
    # echo's arrival after send() was called, so it comes after this recv.
    loop, server = served
    client = connect(loop, server)
    fd, real, last = _server_side(loop, client), socket.socket.send, []

    def send(sock: socket.socket, data: bytes, *flags: int) -> int:
        if sock.fileno() == fd:
            last.append(loop.timeline.events(actor="server/conn-1")[-1].action)  # type: ignore[union-attr]
        return real(sock, data, *flags)

    monkeypatch.setattr(socket.socket, "send", send)
    with client:
        client.sendall(b"hello")
        step(loop)
        assert client.recv(100) == b"hello"
    assert last == ["recv"]
    recv, sent = loop.timeline.events(action={"recv", "send"})  # type: ignore[union-attr]
    assert recv.seq + 1 == sent.seq and recv.t < sent.t


@pytest.mark.parametrize("error", [BlockingIOError, BrokenPipeError])
def test_without_recording_a_refused_or_failed_echo_is_handled(
    monkeypatch: pytest.MonkeyPatch, error: type
) -> None:
    loop = SelectorLoop(record=False)
    server = EchoServer(loop=loop).start()
    try:
        client = connect(loop, server)
        with client:
            fd = _server_side(loop, client)
            _ServerSends(monkeypatch, fd, error)
            client.sendall(b"hello")
            step(loop)
            if error is BlockingIOError:  # kept, and sent on EVENT_WRITE
                assert server.buffered() == 5
                step(loop)
                assert client.recv(100) == b"hello" and server.buffered() == 0
            else:  # that connection is closed, the server goes on
                assert server.connections == 0 and client.recv(100) == b""
    finally:
        loop.close()


def test_two_connections_ready_at_once_share_one_select(
    served: tuple[SelectorLoop, EchoServer],
) -> None:
    loop, server = served
    first, second = connect(loop, server), connect(loop, server)
    with first, second:
        first.sendall(b"one")
        second.sendall(b"two!")
        assert step(loop) == 2
        assert (first.recv(100), second.recv(100)) == (b"one", b"two!")
    events = rows(loop.timeline)[2 * len(ACCEPTED) - 1 :]
    assert events[0] == ("loop", "select", -1, 0, 2, "wait, 2 ready")
    # The ready order is the selector's; each connection's events keep theirs.
    assert sorted(events[1:3]) == [
        ("server/conn-1", "ready", 1, READ, 0, ""),
        ("server/conn-2", "ready", 2, READ, 0, ""),
    ]
    assert [row for row in events[3:] if row[0] == "server/conn-2"] == [
        ("server/conn-2", "recv", 2, 0, 4, ""),
        ("server/conn-2", "send", 2, 0, 4, ""),
    ]
    assert len(events) == 7


def test_partial_sends_and_backpressure_keep_every_byte_and_mask(
    served: tuple[SelectorLoop, EchoServer],
) -> None:
    loop, _ = served
    server = EchoServer(
        loop=loop, name="slow", sndbuf=4096, max_buffer=100_000, recv_size=30_000
    ).start()
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect(server.address)
    client.setblocking(False)
    step(loop)
    payload = bytes(range(256)) * 1200  # 307,200 bytes
    sent = client.send(payload)
    loop.run_until(lambda: server.buffered() >= 100_000)
    echoed = bytearray()

    def read_all() -> bool:
        with contextlib.suppress(BlockingIOError):
            echoed.extend(client.recv(1 << 16))
        return len(echoed) >= sent

    with client:
        loop.run_until(read_all, timeout=10.0)
        client.shutdown(socket.SHUT_WR)
        loop.run_until(lambda: server.connections == 0)
    assert bytes(echoed) == payload[:sent]
    events = [row for row in rows(loop.timeline) if row[0] == "slow/conn-1"]
    actions = [row[1] for row in events]
    assert sum(row[4] for row in events if row[1] == "recv") == sent
    assert sum(row[4] for row in events if row[1] == "send") == sent
    assert all(row[4] <= 30_000 for row in events if row[1] == "recv")
    assert any(row[5] == "partial" for row in events if row[1] == "send")
    modifies = [row[5] for row in events if row[1] == "modify"]
    assert modifies[:2] == ["READ → READ|WRITE", "READ|WRITE → WRITE"]
    assert modifies[-1] == "READ|WRITE → READ" or modifies[-1] == "WRITE → READ"
    assert actions[-3:] == ["eof", "unregister", "close"]
    assert events[-1][5] == "echo complete"


def test_recording_selector_names_hides_and_counts_in_one_select(selector_name: str) -> None:
    sel = RecordingSelector(resolve_selector(selector_name)(), actor="sel")
    pairs = [socket.socketpair() for _ in range(4)]
    try:
        sel.label(pairs[1][0], None)  # hidden
        sel.label(pairs[2][0], "named")
        for a, _ in pairs:
            sel.register(a, READ)
        assert sel.select(timeout=0) == []
        pairs[1][1].send(b"x")
        assert len(sel.select(timeout=None)) == 1  # only the hidden one: no event at all
        for _, b in pairs:
            b.send(b"x")
        assert len(sel.select(timeout=1.5)) == 4
        sel.unregister(pairs[3][0])
        assert len(sel.select(timeout=0.0)) == 3
    finally:
        sel.close()
        for a, b in pairs:
            a.close()
            b.close()
    events = rows(sel.timeline)
    # The ready order is the selector's own: compare each select's ready rows as a set.
    assert events[:5] == [
        ("socket-1", "register", 0, READ, 0, ""),
        ("named", "register", 1, READ, 0, ""),
        ("socket-2", "register", 2, READ, 0, ""),
        ("sel", "select", -1, 0, 0, "poll, nothing ready"),
        ("sel", "select", -1, 0, 3, "wait, 3 ready"),
    ]
    assert sorted(events[5:8]) == [
        ("named", "ready", 1, READ, 0, ""),
        ("socket-1", "ready", 0, READ, 0, ""),
        ("socket-2", "ready", 2, READ, 0, ""),
    ]
    assert events[8:10] == [
        ("socket-2", "unregister", 2, READ, 0, ""),
        ("sel", "select", -1, 0, 2, "poll, 2 ready"),
    ]
    assert sorted(events[10:]) == [
        ("named", "ready", 1, READ, 0, ""),
        ("socket-1", "ready", 0, READ, 0, ""),
    ]


def test_recording_selector_names_a_key_it_did_not_register_when_it_is_ready() -> None:
    inner = selectors.DefaultSelector()
    sel = RecordingSelector(inner, actor="sel")
    a, b = socket.socketpair()
    with sel, a, b:
        inner.register(a, READ)  # behind the recorder's back: no name yet
        b.send(b"x")
        assert len(sel.select(timeout=0)) == 1
        assert len(sel.select(timeout=0)) == 1  # named once, then reused
    assert rows(sel.timeline) == [
        ("sel", "select", -1, 0, 1, "poll, 1 ready"),
        ("socket-1", "ready", 0, READ, 0, ""),
        ("sel", "select", -1, 0, 1, "poll, 1 ready"),
        ("socket-1", "ready", 0, READ, 0, ""),
    ]


def test_a_due_timer_cuts_a_blocking_step_short_and_runs_after_select() -> None:
    loop = SelectorLoop(name="loop")
    ran: list[str] = []
    try:
        loop.call_later(0.0, lambda: ran.append(f"due, after {len(loop.timeline)} events"))
        loop.call_later(60.0, lambda: ran.append("not due"))
        assert run_with_timeout(loop.step, None, timeout=5.0) == 0
        assert loop.step(0.0) == 0
    finally:
        loop.close()
    assert ran == ["due, after 1 events"] and loop.iterations == 2
    assert rows(loop.timeline) == [("loop", "select", -1, 0, 0, "poll, nothing ready")] * 2


def test_without_recording_the_same_exchange_echoes_and_closes(loop_selector: SelectorSpec) -> None:
    loop = SelectorLoop(loop_selector, record=False)
    server = EchoServer(loop=loop).start()
    try:
        client = connect(loop, server)
        with client:
            client.sendall(b"hello")
            step(loop)
            assert client.recv(100) == b"hello"
            assert server.bytes_received() == 5 and server.buffered() == 0
            client.sendall(b"bye")
            client.shutdown(socket.SHUT_WR)
            loop.run_until(lambda: server.connections == 0)
            assert client.recv(100) == b"bye"
    finally:
        loop.close()
    assert loop.timeline is None and server.timeline is None


class _RefusingSelector(selectors.SelectSelector):
    """select() fails as CPython's does on Windows with more than FD_SETSIZE sockets."""

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        raise ValueError("too many file descriptors in select()")


@pytest.mark.parametrize("record", [True, False], ids=["recording", "plain"])
def test_a_select_error_is_raised_once_and_made_clear(record: bool) -> None:
    loop = SelectorLoop(_RefusingSelector, record=record, name="loop")
    try:
        with pytest.raises(FdSetSizeError, match="FD_SETSIZE") as info:
            loop.step(0.0)
    finally:
        loop.close()
    cause = info.value.__cause__
    # Only CPython's error behind the clear one: no "during handling of..." chain.
    assert isinstance(cause, ValueError) and cause.__context__ is None
    assert loop.iterations == 0 and loop.exception is info.value
    if record:
        assert [row[:2] for row in rows(loop.timeline)] == [("loop", "error")]


# -- EchoConnection's shortcuts (everything sent at once, one chunk) ------------------


def test_sending_everything_at_once_empties_the_buffer() -> None:
    conn = EchoConnection()
    for chunk in (b"ab", b"cd", b"e"):
        conn.receive_data(chunk)
    assert conn.data_to_send() == b"abcde"
    conn.sent(5)
    assert (conn.pending, conn.bytes_sent, conn.data_to_send()) == (0, 5, b"")
    conn.sent(0)
    assert conn.bytes_sent == 5 and not conn.wants_write


def test_a_partial_send_keeps_the_rest_in_order() -> None:
    conn = EchoConnection()
    conn.receive_data(b"hello")
    conn.sent(2)
    conn.receive_data(b" world")
    assert bytes(conn.data_to_send(limit=4)) == b"llo "
    conn.sent(4)
    assert conn.data_to_send() == b"world" and conn.pending == 5
    with pytest.raises(ValueError, match="got 6 bytes, but 5 are pending"):
        conn.sent(6)
    conn.receive_data(b"")
    assert not conn.finished
    conn.sent(5)
    assert conn.finished and (conn.bytes_received, conn.bytes_sent) == (11, 11)


def test_one_big_chunk_is_handed_out_a_limit_at_a_time() -> None:
    conn = EchoConnection()
    conn.receive_data(b"x" * 10)
    chunk = conn.data_to_send(limit=4)
    assert isinstance(chunk, memoryview) and bytes(chunk) == b"xxxx"
    conn.sent(4)
    assert bytes(conn.data_to_send(limit=4)) == b"xxxx" and conn.pending == 6
