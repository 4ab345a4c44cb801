"""Small socket helpers every layer above needs, each written once.

Besides the constants, `listening_socket` and `close_with_reset`, these are the moves a lesson's
own client makes around a server under test: `send_without_reading` (a client
that does not read), `finish_echo` (send the rest, read the echo, maybe
half-close), `peer_closed` (has the other end gone?), `recv_all` and
`wait_listening` (has another thread called ``listen()``?).
"""

from __future__ import annotations

import contextlib
import os
import select
import selectors
import socket
import struct
import sys

from .wait import wait_until

__all__ = [
    "LINGER_ZERO",
    "LOOPBACK",
    "close_with_reset",
    "finish_echo",
    "listening_socket",
    "peer_closed",
    "recv_all",
    "send_without_reading",
    "wait_listening",
]

LOOPBACK = "127.0.0.1"

# struct linger is two ints on POSIX and two unsigned shorts on Windows.
# On, with a zero timeout: close() then sends RST instead of FIN.
LINGER_ZERO = struct.pack("HH" if sys.platform == "win32" else "ii", 1, 0)

RECV_SIZE = 256 << 10  # what finish_echo() asks one recv() for
PEER_WAIT = 0.03  # seconds peer_closed() waits for the peer's EOF or reset


def listening_socket(
    host: str = LOOPBACK,
    port: int = 0,
    backlog: int = socket.SOMAXCONN,
    *,
    sndbuf: int | None = None,
    rcvbuf: int | None = None,
) -> socket.socket:
    """A non-blocking TCP socket listening on ``(host, port)``: IPv6 when ``host`` has a colon.

    ``sndbuf`` and ``rcvbuf`` are set before ``listen()``, so accepted sockets
    inherit them (Linux, BSD). Raises the `OSError` of ``bind()`` (e.g. the
    port is in use); nothing is left open then.
    """
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        # SO_REUSEADDR lets a restarted server bind while old connections sit in
        # TIME_WAIT. On Windows it would let another socket take the port over,
        # so, like asyncio's create_server(), set it on POSIX only.
        if os.name == "posix":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        for option, size in ((socket.SO_SNDBUF, sndbuf), (socket.SO_RCVBUF, rcvbuf)):
            if size is not None:
                sock.setsockopt(socket.SOL_SOCKET, option, size)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def close_with_reset(sock: socket.socket) -> None:
    """Close ``sock`` with RST instead of FIN (SO_LINGER on, zero seconds)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_ZERO)
    sock.close()


def wait_listening(sock: socket.socket, timeout: float = 5.0) -> None:
    """Wait until another thread has called ``sock.listen()``.

    Raises `TimeoutError` if it has not after ``timeout`` seconds.
    """
    wait_until(
        lambda: sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN),
        timeout,
        what="listen() called on the socket",
    )


def recv_all(conn: socket.socket, nbytes: int) -> bytes:
    """What a blocking ``recv(nbytes, MSG_WAITALL)`` gives, without that flag (Windows).

    Shorter than ``nbytes`` only if the peer closed first.
    """
    data = bytearray()
    while len(data) < nbytes and (chunk := conn.recv(nbytes - len(data))):
        data += chunk
    return bytes(data)


def peer_closed(conn: socket.socket, wait: float = PEER_WAIT) -> bool:
    """True once the peer has closed ``conn`` (EOF or reset); waits at most ``wait`` s."""
    readable, _, _ = select.select([conn], [], [], wait)
    if not readable:
        return False
    try:
        return conn.recv(1, socket.MSG_PEEK) == b""
    except OSError:  # reset by the peer
        return True


def send_without_reading(sock: socket.socket, payload: bytes) -> int:
    """Send what the kernel takes right now, read nothing; return how many bytes went."""
    sock.setblocking(False)
    view, sent = memoryview(payload), 0
    try:
        while sent < len(payload):
            sent += sock.send(view[sent:])
    except BlockingIOError:
        pass  # every buffer on the way is full: a client that does not read stops here
    except ConnectionResetError:
        pass  # the server is gone: its sockets were closed with our bytes unread
    return sent


def finish_echo(
    sock: socket.socket, payload: bytes, sent: int, timeout: float = 5.0, half_close: bool = False
) -> bytes:
    """Send the rest of ``payload`` and read the whole echo; return the bytes received.

    With ``half_close``, shut down the sending side once everything is sent
    and read until the server closes (EOF). Stops early if nothing moves for
    ``timeout`` seconds.
    """
    sock.setblocking(False)
    view, received = memoryview(payload), bytearray()
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
        while len(received) < len(payload) or half_close:
            ready = sel.select(timeout)
            if not ready:
                break
            for _key, mask in ready:
                if mask & selectors.EVENT_WRITE:
                    sent = _send_rest(sel, sock, view, sent, half_close)
                if mask & selectors.EVENT_READ:
                    chunk = _recv_some(sock)
                    if chunk == b"":
                        return bytes(received)  # EOF, or the server is gone
                    received += chunk or b""
    return bytes(received)


def _send_rest(
    sel: selectors.BaseSelector, sock: socket.socket, view: memoryview, sent: int, half: bool
) -> int:
    """Send what fits; once all is sent, stop asking for WRITE (and shut down writing if asked)."""
    sent = _send_some(sock, view, sent) if sent < len(view) else sent
    if sent == len(view):
        sel.modify(sock, selectors.EVENT_READ)
        if half:
            _shutdown_quietly(sock)
    return sent


def _shutdown_quietly(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # the server is gone already; reading will say so
        sock.shutdown(socket.SHUT_WR)


def _send_some(sock: socket.socket, view: memoryview, sent: int) -> int:
    try:
        return sent + sock.send(view[sent:])
    except BlockingIOError:
        return sent
    except ConnectionError:  # the server is gone; what came back is what counts
        return len(view)


def _recv_some(sock: socket.socket) -> bytes | None:
    """What one ``recv()`` gives: bytes, b"" at EOF or reset, None if nothing is there after all."""
    try:
        return sock.recv(RECV_SIZE)
    except BlockingIOError:
        return None
    except ConnectionError:
        return b""
