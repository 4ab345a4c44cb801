"""Every claim notebook 10 makes that this platform can show, one class per section.

The classes are named after the notebook's sections; where a claim concerns
the selector classes, the test runs on each one this platform has.
"""

from __future__ import annotations

import errno
import select
import selectors
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from echo_lib import resolve_selector
from echo_lib.driver.probes import outcome, refusing_address, tcp_pair, unanswered_address
from echo_lib.driver.sockets import close_with_reset
from echo_lib.lessons.connections import handling, interval_timer

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="the notebook shows this on Linux only"
)
has_setitimer = pytest.mark.skipif(
    not hasattr(signal, "setitimer"), reason="no signal.setitimer (Windows)"
)


def so_error(sock: socket.socket) -> str:
    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    return errno.errorcode.get(code, "0") if code else "0"


@pytest.fixture
def connecting() -> Iterator[socket.socket]:
    with socket.socket() as sock:
        sock.setblocking(False)
        yield sock


class TestNonBlockingConnect:
    def test_connect_ex_returns_einprogress_even_on_loopback(
        self, connecting: socket.socket
    ) -> None:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            assert errno.errorcode[connecting.connect_ex(listener.getsockname())] == "EINPROGRESS"

    def test_connect_raises_blocking_io_error_where_connect_ex_returns_the_errno(
        self, connecting: socket.socket
    ) -> None:
        with (
            socket.create_server(("127.0.0.1", 0)) as listener,
            pytest.raises(BlockingIOError) as raised,
        ):
            connecting.connect(listener.getsockname())
        assert raised.value.errno == errno.EINPROGRESS

    def test_writable_means_connected(self, connecting: socket.socket, selector_name: str) -> None:
        with (
            socket.create_server(("127.0.0.1", 0)) as listener,
            resolve_selector(selector_name)() as sel,
        ):
            connecting.connect_ex(listener.getsockname())
            sel.register(connecting, WRITE)
            assert [mask for _, mask in sel.select(timeout=5)] == [WRITE]
            assert so_error(connecting) == "0"
            assert connecting.getpeername() == listener.getsockname()

    def test_a_refused_connect_is_writable_too_and_so_error_says_econnrefused(
        self, connecting: socket.socket, selector_name: str
    ) -> None:
        with refusing_address() as address, resolve_selector(selector_name)() as sel:
            assert errno.errorcode[connecting.connect_ex(address)] == "EINPROGRESS"
            sel.register(connecting, WRITE)
            assert [mask for _, mask in sel.select(timeout=5)] == [WRITE]
            assert so_error(connecting) == "ECONNREFUSED"
            assert so_error(connecting) == "0", "reading SO_ERROR clears it"

    @linux_only
    def test_a_pending_connect_is_not_writable_until_the_selector_times_out(
        self, connecting: socket.socket, selector_name: str
    ) -> None:
        with unanswered_address() as address, resolve_selector(selector_name)() as sel:
            connecting.connect_ex(address)
            sel.register(connecting, WRITE)
            assert sel.select(timeout=0.2) == []
            assert so_error(connecting) == "0"
            with pytest.raises(OSError) as raised:
                connecting.getpeername()
            assert raised.value.errno == errno.ENOTCONN


def _pump(
    sender: socket.socket, receiver: socket.socket, message: bytes
) -> tuple[list[int], list[int]]:
    """Move ``message`` through one selector in this thread: the sizes of each send() and recv()."""
    sends, recvs, view = [], [], memoryview(message)
    with selectors.DefaultSelector() as sel:
        sel.register(sender, WRITE)
        sel.register(receiver, READ)
        for _ in range(100_000):  # bounded: 1 MiB moves in a few hundred rounds
            if sum(recvs) == len(message):
                break
            for key, _mask in sel.select(timeout=5):
                if key.fileobj is sender:
                    sends.append(sender.send(view[sum(sends) :]))
                    if sum(sends) == len(message):
                        sel.unregister(sender)
                else:
                    recvs.append(len(receiver.recv(len(message))))
    return sends, recvs


class TestOneSendIsNotOneRecv:
    def test_one_big_send_is_cut_into_many_recvs_through_small_buffers(self) -> None:
        client, server = tcp_pair()
        with client, server:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
            server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
            client.setblocking(False)
            server.setblocking(False)
            sends, recvs = _pump(client, server, bytes(1 << 20))
        assert sends[0] < 1 << 20, "the first send() accepted only part of the message"
        assert len(recvs) > 1 and max(recvs) < 1 << 20
        assert sum(recvs) == 1 << 20

    @linux_only
    def test_linux_doubles_the_buffer_size_asked_for(self) -> None:
        client, server = tcp_pair()
        with client, server:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
            assert client.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == 65536

    def test_small_sends_coalesce_into_one_recv(self) -> None:
        client, server = tcp_pair()
        with client, server:
            for message in (b"one", b"two", b"three"):
                client.sendall(message)
            server.settimeout(5)
            first = server.recv(1024)
        assert first == b"onetwothree"


class TestLengthPrefixedMessages:
    def test_the_header_is_four_bytes_big_endian(self) -> None:
        header = struct.Struct("!I")
        assert header.size == 4 and header.pack(258) == b"\x00\x00\x01\x02"

    def test_the_largest_length_is_4_gib_minus_one(self) -> None:
        header = struct.Struct("!I")
        assert header.unpack(header.pack(2**32 - 1)) == (2**32 - 1,)
        with pytest.raises(struct.error):
            header.pack(2**32)


Prepare = Callable[[socket.socket, socket.socket], None]


def _fill(client: socket.socket, server: socket.socket) -> None:
    for _ in range(1000):
        if outcome(lambda: client.send(bytes(65536))).startswith("BlockingIOError"):
            return
    pytest.fail("the send buffer never filled")


def _unread(client: socket.socket, server: socket.socket) -> None:
    client.sendall(b"never read")
    server.recv(1, socket.MSG_PEEK)
    server.close()


def _sent_once(client: socket.socket, server: socket.socket) -> None:
    server.close()
    client.send(b"first")


# The notebook's table, row by row: (situation, what recv(1024) gives, what send(b"hello") gives),
# with the client non-blocking, as in a selector loop.
ROWS: list[tuple[str, Prepare, str, str]] = [
    ("connection_open", lambda client, server: None, "BlockingIOError (EAGAIN)", "5"),
    ("peer_half_closed", lambda client, server: server.shutdown(socket.SHUT_WR), "b''", "5"),
    ("peer_closed", lambda client, server: server.close(), "b''", "5"),
    ("peer_closed_after_we_sent", _sent_once, "b''", "BrokenPipeError (EPIPE)"),
    (
        "peer_reset",
        lambda client, server: close_with_reset(server),
        "ConnectionResetError (ECONNRESET)",
        "ConnectionResetError (ECONNRESET)",
    ),
    (
        "peer_closed_with_data_unread",
        _unread,
        "ConnectionResetError (ECONNRESET)",
        "ConnectionResetError (ECONNRESET)",
    ),
    (
        "we_shut_down_writing",
        lambda client, server: client.shutdown(socket.SHUT_WR),
        "BlockingIOError (EAGAIN)",
        "BrokenPipeError (EPIPE)",
    ),
    ("our_send_buffer_is_full", _fill, "BlockingIOError (EAGAIN)", "BlockingIOError (EAGAIN)"),
    (
        "we_closed_our_socket",
        lambda client, server: client.close(),
        "OSError (EBADF)",
        "OSError (EBADF)",
    ),
]


def _live(prepare: Prepare, call: Callable[[socket.socket], object]) -> str:
    client, server = tcp_pair()
    with client, server:
        client.setblocking(False)
        server.settimeout(5)
        prepare(client, server)
        return outcome(lambda: call(client))


class TestWhatRecvAndSendRaise:
    @pytest.mark.parametrize(
        ("situation", "prepare", "recv", "send"), ROWS, ids=[row[0] for row in ROWS]
    )
    def test_the_table_row(self, situation: str, prepare: Prepare, recv: str, send: str) -> None:
        assert _live(prepare, lambda sock: sock.recv(1024)) == recv
        assert _live(prepare, lambda sock: sock.send(b"hello")) == send

    def test_the_three_are_connection_errors(self) -> None:
        assert all(
            issubclass(cls, ConnectionError)
            for cls in (ConnectionResetError, BrokenPipeError, ConnectionRefusedError)
        )

    def test_after_a_reset_the_next_recv_returns_eof(self) -> None:
        client, server = tcp_pair()
        with client, server:
            close_with_reset(server)
            assert [outcome(lambda: client.recv(1024)) for _ in range(2)] == [
                "ConnectionResetError (ECONNRESET)",
                "b''",
            ]

    def test_python_ignores_sigpipe(self) -> None:
        assert signal.getsignal(signal.SIGPIPE) == signal.SIG_IGN

    @pytest.mark.skipif(not hasattr(select, "poll"), reason="no poll() here")
    def test_on_loopback_the_rst_is_back_before_send_returns(self) -> None:
        for _ in range(50):
            client, server = tcp_pair()
            with client, server:
                server.close()
                poller = select.poll()
                poller.register(client, select.POLLIN | select.POLLOUT)
                assert not poller.poll(0)[0][1] & select.POLLHUP
                client.send(b"first")
                assert poller.poll(0)[0][1] & select.POLLHUP, "the RST had not arrived yet"


@has_setitimer
class TestSignalsAndEINTR:
    def test_select_is_retried_with_a_recomputed_timeout(self, selector_name: str) -> None:
        # SIGALRM every 20 ms, 50 times (1 s), then the handler stops the timer.
        # If select() started its 0.2 s over after each signal, it could not
        # return before the signals stop; with the timeout recomputed it
        # returns [] after 0.2 s, with signals still to come.
        fired: list[int] = []

        def count(signum: int, frame: object) -> None:
            fired.append(signum)
            if len(fired) == 50:
                signal.setitimer(signal.ITIMER_REAL, 0)

        a, b = socket.socketpair()
        with a, b, resolve_selector(selector_name)() as sel, handling(signal.SIGALRM, count):
            sel.register(a, READ)
            start = time.monotonic()
            with interval_timer(0.02, 0.02):
                ready = sel.select(timeout=0.2)
                during = len(fired)
            elapsed = time.monotonic() - start
        assert ready == [] and elapsed >= 0.2
        assert 1 <= during < 50, f"{during} signals arrived during select()"

    def test_ctrl_c_raises_keyboard_interrupt_inside_select(self) -> None:
        # SIGINT with Python's default handler, sent by a thread once the main
        # thread's innermost frame is the selector's select(): no timing guess.
        main = threading.main_thread().ident

        def send_sigint_once_in_select() -> None:
            for _ in range(1000):
                frame = sys._current_frames().get(main)
                if frame is not None and frame.f_code.co_name == "select":
                    signal.pthread_kill(main, signal.SIGINT)
                    return
                threading.Event().wait(0.005)

        a, b = socket.socketpair()
        sender = threading.Thread(target=send_sigint_once_in_select)
        with (
            a,
            b,
            selectors.DefaultSelector() as sel,
            handling(signal.SIGINT, signal.default_int_handler),
        ):
            sel.register(a, READ)
            sender.start()
            try:
                with pytest.raises(KeyboardInterrupt) as raised:
                    sel.select(timeout=10)
            finally:
                sender.join(10)
        assert raised.traceback[-1].name == "select"

    def test_a_handler_that_raises_ends_select_with_its_exception(self, selector_name: str) -> None:
        def interrupt(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        a, b = socket.socketpair()
        with a, b, resolve_selector(selector_name)() as sel, handling(signal.SIGALRM, interrupt):
            sel.register(a, READ)
            start = time.monotonic()
            with pytest.raises(KeyboardInterrupt), interval_timer(0.05):
                sel.select(timeout=10)
            assert time.monotonic() - start < 10
            assert sel.get_map()[a].events == READ, "the selector is intact after the interrupt"

    def test_the_handler_runs_in_the_main_thread_and_a_background_select_goes_on(self) -> None:
        ran_in: list[str] = []
        result: dict[str, object] = {}
        a, b = socket.socketpair()

        def background_loop() -> None:
            with selectors.DefaultSelector() as sel:
                sel.register(a, READ)
                started.set()
                result["ready"] = sel.select(timeout=0.3)

        started = threading.Event()
        with (
            a,
            b,
            handling(
                signal.SIGINT, lambda signum, frame: ran_in.append(threading.current_thread().name)
            ),
        ):
            loop = threading.Thread(target=background_loop, name="loop")
            loop.start()
            assert started.wait(5)
            signal.pthread_kill(loop.ident, signal.SIGINT)
            loop.join(5)
        assert not loop.is_alive()
        assert ran_in == ["MainThread"] and result == {"ready": []}


def drain(sock: socket.socket) -> int:
    """Read until BlockingIOError; how many bytes that took."""
    total = 0
    with pytest.raises(BlockingIOError):
        for _ in range(1000):
            total += len(sock.recv(4096))
    return total


@pytest.mark.skipif(not hasattr(select, "epoll"), reason="select.epoll is Linux only")
class TestEdgeTriggeredEpollAndOneshot:
    @staticmethod
    def reports(flags: int) -> list[int]:
        """How many events ``epoll.poll(0)`` gives after each of the notebook's steps."""
        a, b = socket.socketpair()
        counts = []
        with a, b, select.epoll() as ep:
            a.setblocking(False)
            ep.register(a.fileno(), flags)
            steps = [
                lambda: b.send(b"x" * 100),
                lambda: None,
                lambda: a.recv(10),
                lambda: b.send(b"y"),
                lambda: drain(a),
                lambda: b.send(b"z"),
                lambda: ep.modify(a.fileno(), flags),
            ]
            for step in steps:
                step()
                counts.append(len(ep.poll(0)))
        return counts

    def test_level_triggered_reports_while_data_is_unread(self) -> None:
        assert self.reports(select.EPOLLIN) == [1, 1, 1, 1, 0, 1, 1]

    def test_edge_triggered_reports_once_per_arrival(self) -> None:
        assert self.reports(select.EPOLLIN | select.EPOLLET) == [1, 0, 0, 1, 0, 1, 1]

    def test_oneshot_reports_once_until_modify_rearms_it(self) -> None:
        assert self.reports(select.EPOLLIN | select.EPOLLONESHOT) == [1, 0, 0, 0, 0, 0, 1]

    def test_selectors_refuses_epoll_flags(self, selector_name: str) -> None:
        a, b = socket.socketpair()
        with (
            a,
            b,
            resolve_selector(selector_name)() as sel,
            pytest.raises(ValueError, match="Invalid events"),
        ):
            sel.register(a, READ | select.EPOLLET)

    def test_selectors_reports_unread_data_at_every_select(self, selector_name: str) -> None:
        a, b = socket.socketpair()
        with a, b, resolve_selector(selector_name)() as sel:
            sel.register(a, READ)
            b.send(b"x" * 100)
            counts = []
            for _ in range(3):
                counts.append(len(sel.select(timeout=0)))
                a.recv(10)
        assert counts == [1, 1, 1]
