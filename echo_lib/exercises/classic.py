"""Checkers for notebook 05 (the classic echo pair): a stop test, and buffered sends.

`check_should_stop` runs the seed's client with the learner's stop test in
place of the seed's, against servers on a turn-taking `Stage` (so every run
interleaves the same way and the numbers it reports are exact).
`check_buffered_echo` runs the learner's connection callback in a server
thread, against a client that sends megabytes before it reads anything.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from ..lessons.classic import Stage, chunked_echo_server, finish_echo, send_without_reading
from . import Feedback

__all__ = ["check_buffered_echo", "check_should_stop"]

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
LOCALHOST = "127.0.0.1"
MESSAGES = (b"It will be repeated.", b"This is the message.  ")
TOTAL = sum(map(len, MESSAGES))
CLIENT_SECONDS = 1.5  # the client's deadline: a correct client is done long before

ShouldStop = Callable[[int, int, bytes], object]
OnReady = Callable[[selectors.BaseSelector, socket.socket, int, bytearray], object]


# -- exercise 1: the client's stop test -----------------------------------------------


def _client(server_address, sock, mysel, say, should_stop, seconds=CLIENT_SECONDS):
    """The seed's client, with ``should_stop(bytes_sent, bytes_received, data)`` as its stop test.

    Returns what happened: bytes sent and received, how many recv() calls
    returned b"", and whether it stopped before its deadline.
    """
    keep_running = True
    outgoing = list(MESSAGES)
    bytes_sent = bytes_received = empty_reads = 0
    sock.connect(server_address)
    sock.setblocking(False)
    mysel.register(sock, READ | WRITE)
    deadline = time.monotonic() + seconds
    while keep_running and time.monotonic() < deadline:
        for key, mask in mysel.select(timeout=1):
            if mask & READ:
                data = sock.recv(1024)
                bytes_received += len(data)
                empty_reads += not data
                keep_running = not should_stop(bytes_sent, bytes_received, data)
            if mask & WRITE:
                if not outgoing:
                    mysel.modify(sock, READ)
                else:
                    next_msg = outgoing.pop()
                    sock.sendall(next_msg)
                    bytes_sent += len(next_msg)
    mysel.unregister(sock)
    sock.close()
    return {"sent": bytes_sent, "received": bytes_received, "empty_reads": empty_reads, "stopped": not keep_running}


def _half_then_close(listener, pause, say, nbytes=TOTAL):
    """Accept one client, echo the first half of its bytes, then close the connection."""
    listener.listen(1)
    pause()
    conn, _ = listener.accept()
    with conn:
        conn.settimeout(5)
        data = conn.recv(nbytes, socket.MSG_WAITALL)
        conn.sendall(data[: len(data) // 2])
        pause()
    say("closed after {} of {} bytes".format(len(data) // 2, len(data)))


def _run_client(server: Callable[..., Any], should_stop: ShouldStop, **server_kwargs: Any) -> tuple[dict[str, Any] | None, str]:
    """One run of the learner's client against ``server``: (stats, error text)."""
    stage = Stage()
    with socket.socket() as listener, socket.socket() as sock:
        listener.bind((LOCALHOST, 0))
        stage.start("server", server, listener, **server_kwargs)
        client = stage.start("client", _client, listener.getsockname(), sock, should_stop=should_stop)
        stage.join(timeout=CLIENT_SECONDS + 5)
    if client.error is not None:
        exc = client.error
        return None, f"should_stop raised {type(exc).__name__}: {exc}"
    return client.result, ""


def check_should_stop(should_stop: ShouldStop) -> Feedback:
    """Run the seed's client with ``should_stop`` as its stop test, against two servers.

    1. A server that echoes the 42 bytes in three pieces of 14, handing the
       client the turn after each, and keeps the connection open until the
       client closes it: the client must get all 42 bytes, then stop.
    2. A server that echoes 21 bytes and closes: the client must stop at EOF
       (``recv()`` returns ``b""``) instead of looping until its deadline.
    """
    feedback = Feedback("should_stop")
    stats, error = _run_client(chunked_echo_server, should_stop, nbytes=TOTAL, pieces=3)
    if not feedback.expect(not error, error):
        return feedback
    received, lost = stats["received"], TOTAL - stats["received"]
    if stats["stopped"]:
        feedback.expect(lost == 0, f"with the echo in 3 pieces of 14 bytes, the client stopped after {received} of {TOTAL} bytes: {lost} bytes lost")
    elif lost == 0:
        feedback.expect(False, f"all {TOTAL} bytes came back but the client did not stop: it waited until its {CLIENT_SECONDS:g} s deadline (the server keeps the connection open until the client closes it)")
    else:
        feedback.expect(False, f"with the echo in 3 pieces of 14 bytes, the client got {received} of {TOTAL} bytes and never stopped")
    stats, error = _run_client(_half_then_close, should_stop)
    if not feedback.expect(not error, error):
        return feedback
    feedback.expect(
        stats["stopped"],
        f"when the server closed the connection after {stats['received']} of {TOTAL} bytes, the client did not stop: "
        "recv() kept returning b'' until the deadline (b'' means the peer closed: stop)",
    )
    return feedback


# -- exercise 2: buffered sends instead of sendall() ---------------------------------------

PAYLOAD = 2 * (1 << 20)
SMALL_BUFFER = 4096
IDLE_LIMIT = 20  # wake-ups "writable with nothing to send" that count as a busy loop


class _Stats:
    """What the server harness saw, shared with the checker's thread."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.idle = 0
        self.pending: dict[socket.socket, bytearray] = {}
        self.still_registered = 0

    def pending_bytes(self) -> int:
        with self.lock:
            return sum(len(buffer) for buffer in self.pending.values())


def _buffered_server(listener, mysel, on_ready, stats, seconds=10.0):
    """Accept connections; hand every event on one to ``on_ready(mysel, connection, mask, pending)``."""
    listener.listen(5)
    listener.setblocking(False)
    mysel.register(listener, READ)
    deadline = time.monotonic() + seconds
    while not stats.stop.is_set() and time.monotonic() < deadline:
        for key, mask in mysel.select(timeout=0.05):
            if key.fileobj is listener:
                conn, _ = listener.accept()
                conn.setblocking(False)
                with stats.lock:
                    stats.pending[conn] = bytearray()
                mysel.register(conn, READ)
            else:
                pending = stats.pending[key.fileobj]
                stats.idle += bool(mask & WRITE and not pending)
                on_ready(mysel, key.fileobj, mask, pending)
    stats.still_registered = sum(_registered(mysel, conn) for conn in list(stats.pending))


def _registered(sel: selectors.BaseSelector, sock: socket.socket) -> bool:
    try:
        return sock in sel.get_map()
    except (ValueError, KeyError, TypeError):
        return False


def check_buffered_echo(on_ready: OnReady) -> Feedback:
    """Run ``on_ready(mysel, connection, mask, pending)`` as the server's connection callback.

    The harness accepts connections and registers each for EVENT_READ with
    an empty ``pending`` bytearray (the same one on every call). A client with
    a small receive buffer sends 2 MiB before it reads anything, then reads
    the echo and closes. The echo must come back whole, with no
    ``BlockingIOError``; EVENT_WRITE must not stay registered with nothing to
    send; and the connection must be unregistered and closed at EOF.
    """
    feedback = Feedback("on_ready")
    payload = bytes(range(256)) * (PAYLOAD // 256)
    stats = _Stats()
    stage = Stage(take_turns=False)
    with socket.socket() as listener, socket.socket() as reader:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)  # the connection inherits it
        listener.bind((LOCALHOST, 0))
        address = listener.getsockname()
        server = stage.start("server", _buffered_server, listener, on_ready=on_ready, stats=stats)
        try:
            echo, closed = _drive_client(reader, listener, address, payload, stats, server)
        finally:
            stats.stop.set()
            stage.join(timeout=5)
    if server.error is not None:
        return _report_error(feedback, server.error, server.where)
    _judge_echo(feedback, echo, payload, stats)
    feedback.expect(
        stats.idle <= IDLE_LIMIT,
        f"select() reported the connection writable {stats.idle} times with nothing pending: "
        "a busy loop; drop EVENT_WRITE with modify() once pending is empty",
    )
    if feedback.expect(closed, "after the client closed, the connection stayed open: when recv() returns b'', unregister and close it"):
        feedback.expect(
            not stats.still_registered,
            "the connection was closed but is still registered: call mysel.unregister(connection) before connection.close()",
        )
    return feedback


def _drive_client(
    reader: socket.socket, listener: socket.socket, address: Any, payload: bytes, stats: _Stats, server: Any
) -> tuple[bytes, bool]:
    """The slow client: send without reading, then read the echo, then close. Returns (echo, server closed)."""
    reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
    reader.settimeout(5)
    _wait(lambda: listener.fileno() < 0 or listener.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN), 5)
    reader.connect(address)
    sent = send_without_reading(reader, payload)
    _wait(lambda: stats.pending_bytes() > 0 or server.done, 2)  # the server holds output it cannot send yet
    echo = finish_echo(reader, payload, sent, timeout=1.0)
    time.sleep(0.1)  # an idle connection: a busy loop shows now
    reader.close()
    closed = _wait(lambda: all(conn.fileno() < 0 for conn in list(stats.pending)) or server.done, 1)
    return echo, closed


def _wait(condition: Callable[[], object], timeout: float) -> bool:
    deadline, pause = time.monotonic() + timeout, threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            return False
        pause.wait(0.005)
    return True


def _report_error(feedback: Feedback, exc: BaseException, where: str) -> Feedback:
    hint = ""
    if isinstance(exc, BlockingIOError):
        hint = ": sendall() on a non-blocking socket gives up when the kernel's buffer is full; send() what it takes and keep the rest in pending"
    elif isinstance(exc, TypeError) and "NoneType" in str(exc):
        hint = ": use the pending bytearray the harness passes in"
    where = "" if isinstance(exc, NotImplementedError) else where
    feedback.expect(False, f"on_ready raised {type(exc).__name__}: {exc}{where}{hint}")
    return feedback


def _judge_echo(feedback: Feedback, echo: bytes, payload: bytes, stats: _Stats) -> None:
    if len(echo) < len(payload):
        left = stats.pending_bytes()
        why = (
            f"; {left} bytes were still pending on the server: register EVENT_WRITE while output is pending, so select() says when to send more"
            if left
            else ""
        )
        feedback.expect(False, f"the client got {len(echo)} of {len(payload)} bytes back{why}")
    elif echo != payload:
        first = next(i for i, (a, b) in enumerate(zip(echo, payload)) if a != b)
        feedback.expect(False, f"the echo came back changed: the first wrong byte is byte {first}")

