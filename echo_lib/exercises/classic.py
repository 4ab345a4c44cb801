"""Checkers for notebook 05 (the classic echo pair): a prediction, a stop test, buffered sends.

`check_prediction` runs the learner's copy of the seed's client against a
server that echoes in three pieces and compares what it received with the
learner's guess. `check_should_stop` runs the seed's client with the learner's stop test in
place of the seed's, against servers on a turn-taking `Stage` (so every run
interleaves the same way and the numbers it reports are exact).
`check_buffered_echo` runs the learner's connection callback in a server
thread, against a client that sends megabytes before it reads anything and
one that half-closes while its echo is still owed.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from ..core.checks import is_int
from ..driver.sockets import LOOPBACK, finish_echo, send_without_reading
from ..driver.wait import wait_until
from ..stage.seed import chunked_echo_server, classic_client, closing_server, stop_test_client
from ..stage.stage import Stage
from . import Feedback

__all__ = ["check_buffered_echo", "check_prediction", "check_should_stop"]

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
MESSAGES = (b"It will be repeated.", b"This is the message.  ")
TOTAL = sum(map(len, MESSAGES))
CLIENT_SECONDS = 0.5  # the client's deadline: a correct client is done long before
MAX_WAIT = 0.1  # no select() of the client waits longer, so that the deadline is kept

ShouldStop = Callable[[int, int, bytes], object]
OnReady = Callable[[selectors.BaseSelector, socket.socket, int, bytearray], object]


# -- exercise 1: predict what the seed's client receives --------------------------------


def check_prediction(
    predicted_bytes: object, client: Callable[..., Any] = classic_client
) -> Feedback:
    """Run ``client`` (the seed's, by default) against a server that echoes 42 bytes in 3 pieces.

    ``predicted_bytes`` is the learner's guess of how many bytes the client
    receives before it stops. Raises nothing: a wrong guess, or one that is
    not a whole number, is feedback.
    """
    feedback = Feedback("prediction")
    whole = is_int(predicted_bytes)
    if not feedback.expect(whole, f"predict a number of bytes (an int), got {predicted_bytes!r}"):
        return feedback
    stage = Stage(max_wait=MAX_WAIT)
    with socket.socket() as listener, socket.socket() as sock:
        listener.bind((LOOPBACK, 0))
        stage.start("server", chunked_echo_server, listener, nbytes=TOTAL, pieces=3)
        run = stage.start("client", client, listener.getsockname(), sock, seconds=CLIENT_SECONDS)
        stage.join(timeout=CLIENT_SECONDS + 5)
    if not feedback.expect(
        run.error is None, f"the client raised {type(run.error).__name__}: {run.error}{run.where}"
    ):
        return feedback
    received = stage.timeline.bytes_moved("client")["recv"]
    why = (
        "keep_running = not (data or ...) is False after the first recv() that returns any bytes"
        if received < TOTAL
        else "this client's stop test waits for the whole echo"
    )
    feedback.expect(
        predicted_bytes == received,
        f"you predicted {predicted_bytes} bytes; the client received {received} of {TOTAL}: {why}",
    )
    return feedback


# -- exercise 2: the client's stop test -----------------------------------------------


def _run_client(
    server: Callable[..., Any], should_stop: ShouldStop, **server_kwargs: Any
) -> tuple[dict[str, Any] | None, str]:
    """One run of the learner's client against ``server``: (stats, error text)."""
    stage = Stage(max_wait=MAX_WAIT)
    with socket.socket() as listener, socket.socket() as sock:
        listener.bind((LOOPBACK, 0))
        stage.start("server", server, listener, **server_kwargs)
        client = stage.start(
            "client",
            stop_test_client,
            listener.getsockname(),
            sock,
            should_stop=should_stop,
            seconds=CLIENT_SECONDS,
        )
        stage.join(timeout=CLIENT_SECONDS + 5)
    if client.error is not None:
        exc = client.error
        return None, f"should_stop raised {type(exc).__name__}: {exc}"
    return client.result, ""


def check_should_stop(should_stop: ShouldStop) -> Feedback:
    """Run the seed's client with ``should_stop`` as its stop test, against three servers.

    1. A server that echoes the 42 bytes in three pieces of 14, handing the
       client the turn after each, and keeps the connection open until the
       client closes it: the client must get all 42 bytes, then stop.
    2. A server that echoes 21 bytes and closes, and one that closes without
       echoing anything: the client must stop at EOF (``recv()`` returns
       ``b""``) instead of looping until its deadline.
    """
    feedback = Feedback("should_stop")
    stats, error = _run_client(chunked_echo_server, should_stop, nbytes=TOTAL, pieces=3)
    if not feedback.expect(not error, error):
        return feedback
    _judge_chunked(feedback, stats)
    for echo in (TOTAL // 2, 0):
        stats, error = _run_client(closing_server, should_stop, echo=echo)
        if not feedback.expect(not error, error):
            return feedback
        feedback.expect(stats["stopped"], _no_stop_at_eof(echo))
    return feedback


def _judge_chunked(feedback: Feedback, stats: dict[str, Any]) -> None:
    """The client against the echo in three pieces: it must get all of it, then stop."""
    received, lost = stats["received"], TOTAL - stats["received"]
    if stats["stopped"]:
        feedback.expect(
            lost == 0,
            f"with the echo in 3 pieces of 14 bytes, the client stopped after {received} of "
            f"{TOTAL} bytes: {lost} bytes lost",
        )
    elif lost == 0:
        feedback.expect(
            False,
            f"all {TOTAL} bytes came back but the client did not stop: it waited until its "
            f"{CLIENT_SECONDS:g} s deadline (the server keeps the connection open until the "
            "client closes it)",
        )
    else:
        feedback.expect(
            False,
            f"with the echo in 3 pieces of 14 bytes, the client got {received} of {TOTAL} bytes "
            "and never stopped",
        )


def _no_stop_at_eof(echo: int) -> str:
    what = (
        f"after {echo} of {TOTAL} bytes"
        if echo
        else "without echoing a byte (as a server that died would)"
    )
    return (
        f"when the server closed the connection {what}, the client did not stop: "
        "select() kept reporting READ and recv() kept returning b'' until the deadline "
        "(EOF stays readable: b'' means the peer closed, stop whatever the counts say)"
    )


# -- exercise 3: buffered sends instead of sendall(), and the echo owed after a half-close --

PAYLOAD = 2 * (1 << 20)
HALF_CLOSE_PAYLOAD = 1 << 20
SMALL_BUFFER = 4096
IDLE_ROUNDS = 10  # select() rounds watched while the first connection sits idle
SELECT_TIMEOUT = 0.02


class _Stats:
    """What the server harness saw, shared with the checker's thread."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.rounds = 0
        self.idle = 0
        self.pending: dict[socket.socket, bytearray] = {}
        self.still_registered = 0

    def pending_bytes(self) -> int:
        with self.lock:
            return sum(len(buffer) for buffer in self.pending.values())

    def conns(self) -> list[socket.socket]:
        with self.lock:
            return list(self.pending)


def _buffered_server(listener, mysel, on_ready, stats, seconds=10.0):
    """Accept connections; pass their events to ``on_ready(mysel, connection, mask, pending)``."""
    listener.listen(5)
    listener.setblocking(False)
    mysel.register(listener, READ)
    deadline = time.monotonic() + seconds
    while not stats.stop.is_set() and time.monotonic() < deadline:
        for key, mask in mysel.select(timeout=SELECT_TIMEOUT):
            if key.fileobj is listener:
                # A closed socket still registered would clash with the new one's fd.
                _drop_stale(mysel, stats)
                conn, _ = listener.accept()
                conn.setblocking(False)
                with stats.lock:
                    stats.pending[conn] = bytearray()
                mysel.register(conn, READ)
            else:
                pending = stats.pending[key.fileobj]
                stats.idle += bool(mask & WRITE and not pending)
                on_ready(mysel, key.fileobj, mask, pending)
        stats.rounds += 1
    _drop_stale(mysel, stats)


def _drop_stale(mysel: selectors.BaseSelector, stats: _Stats) -> None:
    """Count, then unregister, the connections the learner closed but left registered."""
    for conn in stats.conns():
        if conn.fileno() < 0 and _registered(mysel, conn):
            stats.still_registered += 1
            mysel.unregister(conn)


def _registered(sel: selectors.BaseSelector, sock: socket.socket) -> bool:
    try:
        return sock in sel.get_map()
    except (ValueError, KeyError, TypeError):
        return False


def check_buffered_echo(on_ready: OnReady) -> Feedback:
    """Run ``on_ready(mysel, connection, mask, pending)`` as the server's connection callback.

    The harness accepts connections and registers each for EVENT_READ with
    an empty ``pending`` bytearray (the same one on every call). Two clients,
    one after the other, each with a small receive buffer:

    1. sends 2 MiB before it reads anything, reads the echo, sits idle for
       a few select() rounds, then closes: the echo must come back whole,
       with no ``BlockingIOError``; EVENT_WRITE must not stay registered
       with nothing to send; the connection must be unregistered and closed;
    2. sends 1 MiB, then ``shutdown(SHUT_WR)`` while most of its echo is
       still owed, and reads until EOF: the server must send the whole echo
       before it closes.
    """
    feedback = Feedback("on_ready")
    stats = _Stats()
    stage = Stage(take_turns=False)
    with socket.socket() as listener, socket.socket() as reader, socket.socket() as half:
        listener.setsockopt(
            socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER
        )  # the connection inherits it
        listener.bind((LOOPBACK, 0))
        server = stage.start("server", _buffered_server, listener, on_ready=on_ready, stats=stats)
        try:
            first = _drive_client(reader, listener, _pattern(PAYLOAD), stats, server)
            second = _half_close_client(half, listener, _pattern(HALF_CLOSE_PAYLOAD), stats, server)
        finally:
            stats.stop.set()
            stage.join(timeout=5)
    if server.error is not None:
        return _report_error(feedback, server.error, server.where)
    _judge_first(feedback, *first, stats)
    _judge_half_close(feedback, *second)
    return feedback


def _pattern(size: int) -> bytes:
    return (bytes(range(256)) * (size // 256 + 1))[:size]


def _drive_client(
    reader: socket.socket, listener: socket.socket, payload: bytes, stats: _Stats, server: Any
) -> tuple[bytes, bytes, int, bool]:
    """The slow client: send without reading, read the echo, idle, close.

    Returns (echo, payload, idle wake-ups while it sat idle, server closed).
    """
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
    reader.settimeout(5)
    wait_until(
        lambda: (
            listener.fileno() < 0 or listener.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        ),
        5,
    )
    reader.connect(listener.getsockname())
    sent = send_without_reading(reader, payload)
    wait_until(
        lambda: stats.pending_bytes() > 0 or server.done, 2
    )  # the server holds output it cannot send yet
    echo = finish_echo(reader, payload, sent, timeout=1.0)
    idle_before, rounds_before = stats.idle, stats.rounds
    wait_until(
        lambda: stats.rounds >= rounds_before + IDLE_ROUNDS or server.done, 2
    )  # an idle connection: a busy loop shows now
    idle = stats.idle - idle_before
    conn = next(iter(stats.conns()), None)
    reader.close()
    closed = wait_until(lambda: conn is None or conn.fileno() < 0 or server.done, 1)
    return echo, payload, idle, closed


def _half_close_client(
    half: socket.socket, listener: socket.socket, payload: bytes, stats: _Stats, server: Any
) -> tuple[bytes, bytes, int]:
    """Send everything, shut down writing while the echo is owed, read until EOF.

    Returns (echo, payload, bytes still pending when the server closed the connection).
    """
    if server.done:
        return b"", payload, 0
    half.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
    half.settimeout(5)
    half.connect(listener.getsockname())
    echo = finish_echo(half, payload, 0, timeout=1.0, half_close=True)
    conns = stats.conns()
    conn = conns[-1] if len(conns) > 1 else None
    owed = len(stats.pending[conn]) if conn is not None and conn.fileno() < 0 else 0
    return echo, payload, owed


def _report_error(feedback: Feedback, exc: BaseException, where: str) -> Feedback:
    hint = ""
    if isinstance(exc, BlockingIOError):
        hint = (
            ": sendall() on a non-blocking socket gives up when the kernel's buffer is full; "
            "send() what it takes and keep the rest in pending"
        )
    elif isinstance(exc, TypeError) and "NoneType" in str(exc):
        hint = ": use the pending bytearray the harness passes in"
    where = "" if isinstance(exc, NotImplementedError) else where
    feedback.expect(False, f"on_ready raised {type(exc).__name__}: {exc}{where}{hint}")
    return feedback


def _judge_first(
    feedback: Feedback, echo: bytes, payload: bytes, idle: int, closed: bool, stats: _Stats
) -> None:
    _judge_echo(feedback, echo, payload, stats)
    feedback.expect(
        idle < IDLE_ROUNDS // 2,
        f"select() reported the idle connection writable in {idle} of {IDLE_ROUNDS} rounds with "
        "nothing pending: "
        "a busy loop; drop EVENT_WRITE with modify() once pending is empty",
    )
    if feedback.expect(
        closed,
        "after the client closed, the connection stayed open: when recv() returns b'' and nothing "
        "is pending, unregister and close it",
    ):
        feedback.expect(
            not stats.still_registered,
            "the connection was closed but is still registered: call mysel.unregister(connection) "
            "before connection.close()",
        )


def _judge_half_close(feedback: Feedback, echo: bytes, payload: bytes, owed: int) -> None:
    if owed:
        feedback.expect(
            False,
            f"a client that half-closed (shutdown(SHUT_WR)) got {len(echo)} of {len(payload)} "
            f"bytes back: the server closed at EOF with {owed} bytes still owed; at EOF stop "
            "reading, send what is pending, and close only once it is empty",
        )
    elif len(echo) != len(payload) or echo != payload:
        feedback.expect(
            False,
            f"a client that half-closed (shutdown(SHUT_WR)) got {len(echo)} of {len(payload)} "
            "bytes back, then no EOF: keep EVENT_WRITE while pending is not empty, and close "
            "once it is",
        )


def _judge_echo(feedback: Feedback, echo: bytes, payload: bytes, stats: _Stats) -> None:
    if len(echo) < len(payload):
        left = stats.pending_bytes()
        why = (
            f"; {left} bytes were still pending on the server: register EVENT_WRITE while output "
            "is pending, so select() says when to send more"
            if left
            else ""
        )
        feedback.expect(False, f"the client got {len(echo)} of {len(payload)} bytes back{why}")
    elif echo != payload:
        first = next(i for i, (a, b) in enumerate(zip(echo, payload, strict=False)) if a != b)
        feedback.expect(False, f"the echo came back changed: the first wrong byte is byte {first}")
