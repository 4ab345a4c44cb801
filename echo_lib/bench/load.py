"""The load: many non-blocking connections in one selectors loop, each echo checked byte for byte.

Runs inside the load child process (see `echo_lib.bench.children`), which the
parent drives through `Load`: ``connect`` more connections, ``exchange``
messages in ping-pong, ``close`` them all cleanly. Its own CPU is not counted.
"""

from __future__ import annotations

import os
import random
import selectors
import socket
import sys
import time

from ..driver.sockets import LOOPBACK
from .resources import RECV_SIZE, maxrss_kib

__all__ = ["PER_SOURCE", "Load", "connect_batch", "payload_for", "scale_size", "source_address"]

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
#: Connections per source address in the scale run: about a third of the 28,232 ports of
#: Linux's default ephemeral range (32768-60999) for one (source, destination), since
#: finding a free port slows down sharply as the range fills (19,700 from one
#: source took 45 s to connect, 10,000 took 3 s).
PER_SOURCE = 10_000


def payload_for(index: int, size: int) -> bytes:
    """``size`` bytes that start with the connection's number: no two alike."""
    head = b"%d:" % index
    return (head + random.Random(index).randbytes(max(size - len(head), 0)))[:size]


def scale_size(index: int) -> int:
    """Payload sizes of the scale run: 16 B to about 4 KiB, spread evenly."""
    return 16 + (index * 7919) % 4096


class _Pinger:
    """One load connection: its number and payload, what is still to send, what came back."""

    __slots__ = ("index", "sock", "payload", "rest", "got")

    def __init__(self, index: int, sock: socket.socket, payload: bytes) -> None:
        self.index, self.sock, self.payload = index, sock, payload
        self.rest, self.got = b"", bytearray()


class _PingPong:
    """Ping-pong on many non-blocking sockets from one selectors loop.

    Each connection sends its payload, waits for the whole echo, checks it
    byte for byte, and sends again, while the message budget and the time
    bound allow. Raises `TimeoutError` when nothing arrives for ``timeout``
    seconds, `ValueError` for a wrong echo, `ConnectionError` for an early EOF.
    """

    def __init__(self, socks: list[socket.socket], payloads: list[bytes]) -> None:
        self.sel = selectors.DefaultSelector()
        for index, (sock, payload) in enumerate(zip(socks, payloads, strict=True)):
            self.sel.register(sock, READ, _Pinger(index, sock, payload))
        self.budget, self.busy, self.done, self.stop_at = 0, 0, 0, 0.0

    def run(self, count: int, seconds: float, timeout: float) -> tuple[int, float]:
        """Exchange up to ``count`` messages for up to ``seconds``; return (done, wall s)."""
        start = time.perf_counter()
        self.budget, self.stop_at = count, start + seconds
        try:
            for key in list(self.sel.get_map().values()):
                self._next(key.data)
            while self.busy:
                self._step(timeout)
        finally:
            self.sel.close()
        return self.done, time.perf_counter() - start

    def _step(self, timeout: float) -> None:
        """One select() and what it found; raises `TimeoutError` if nothing did."""
        ready = self.sel.select(timeout)
        if not ready:
            raise TimeoutError(
                f"no echo arrived for {timeout:g} s ({self.busy} messages outstanding)"
            )
        for key, mask in ready:
            if mask & WRITE:
                self._send(key.data, key.data.rest)
            if mask & READ:
                self._receive(key.data)

    def _next(self, pinger: _Pinger) -> None:
        """Send this connection's next message, if the budget and the clock allow."""
        if self.budget > 0 and time.perf_counter() < self.stop_at:
            self.budget -= 1
            self.busy += 1
            self._send(pinger, pinger.payload)

    def _send(self, pinger: _Pinger, data: bytes) -> None:
        """Send what the kernel takes; ask for EVENT_WRITE only while some is left."""
        try:
            sent = pinger.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        was_waiting, pinger.rest = bool(pinger.rest), data[sent:]
        if bool(pinger.rest) != was_waiting:
            self.sel.modify(pinger.sock, READ | WRITE if pinger.rest else READ, pinger)

    def _receive(self, pinger: _Pinger) -> None:
        """Collect echo bytes; once the whole message is back, check it and go on."""
        chunk = pinger.sock.recv(RECV_SIZE)
        if not chunk:
            raise ConnectionError(
                f"connection {pinger.index}: the server closed it "
                f"after {len(pinger.got)} bytes of echo"
            )
        pinger.got += chunk
        if len(pinger.got) >= len(pinger.payload):
            if pinger.got != pinger.payload:
                raise ValueError(
                    f"wrong echo on connection {pinger.index}: sent {len(pinger.payload)} bytes, "
                    f"got {len(pinger.got)} that differ"
                )
            pinger.got.clear()
            self.done += 1
            self.busy -= 1
            self._next(pinger)


def source_address(index: int) -> str | None:
    """The source address of load connection ``index``: 127.0.0.2, .3, ... on Linux.

    A new one every `PER_SOURCE` connections, so that 100,000 connections get
    past the ephemeral port range; None elsewhere (macOS has only 127.0.0.1
    unless more are configured).
    """
    return f"127.0.0.{2 + index // PER_SOURCE}" if sys.platform.startswith("linux") else None


def connect_batch(port: int, count: int, timeout: float, first: int = 0) -> list[socket.socket]:
    """Open connections ``first`` .. ``first + count - 1`` at once (non-blocking); all or none."""
    socks: list[socket.socket] = []
    try:
        with selectors.DefaultSelector() as sel:
            for index in range(first, first + count):
                socks.append(_start_connect(port, source_address(index)))
                sel.register(socks[-1], WRITE)
            _finish_connects(sel, port, timeout)
    except BaseException:
        for sock in socks:
            sock.close()
        raise
    return socks


def _start_connect(port: int, source: str | None = None) -> socket.socket:
    """A non-blocking socket, bound to ``source`` if given, with its connect() under way."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if source is not None:
        # IP_BIND_ADDRESS_NO_PORT (Linux 4.2+; 24 when Python does not name it)
        # picks the port at connect() time, per destination, so these bound
        # sockets do not use up the ports that other programs' connects need.
        sock.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24), 1)
        sock.bind((source, 0))
    sock.connect_ex((LOOPBACK, port))  # EINPROGRESS; the outcome is read once writable
    return sock


def _finish_connects(sel: selectors.BaseSelector, port: int, timeout: float) -> None:
    """Wait until every registered socket has connected; raise if one failed."""
    while sel.get_map():
        ready = sel.select(timeout)
        if not ready:
            raise TimeoutError(
                f"{len(sel.get_map())} connects to {LOOPBACK}:{port} unfinished after {timeout:g} s"
            )
        for key, _ in ready:
            error = key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)  # type: ignore[union-attr]
            if error:
                raise ConnectionError(f"connect to {LOOPBACK}:{port} failed: {os.strerror(error)}")
            sel.unregister(key.fileobj)


def _close_all(socks: list[socket.socket], timeout: float) -> None:
    """Half-close each socket and wait for the server's EOF, so that it has closed too."""
    try:
        with selectors.DefaultSelector() as sel:
            for sock in socks:
                sock.shutdown(socket.SHUT_WR)
                sel.register(sock, READ)
            while sel.get_map():
                ready = sel.select(timeout)
                if not ready:
                    raise TimeoutError(
                        f"{len(sel.get_map())} connections not closed by the server "
                        f"after {timeout:g} s"
                    )
                for key, _ in ready:
                    if key.fileobj.recv(RECV_SIZE):  # type: ignore[union-attr]
                        raise ValueError("the server sent bytes after the last echo")
                    sel.unregister(key.fileobj)
    finally:
        for sock in socks:
            sock.close()


class Load:
    """The load process's state: its open connections."""

    def __init__(self) -> None:
        self.socks: list[socket.socket] = []

    def connect(self, port: int, count: int, timeout: float) -> int:
        """Open ``count`` more connections; return how many are open."""
        self.socks += connect_batch(port, count, timeout, len(self.socks))
        return len(self.socks)

    def exchange(
        self, size: int | None, count: int, seconds: float, timeout: float
    ) -> tuple[int, float]:
        """Ping-pong on every connection; ``size=None`` gives each its own scale-run size."""
        sizes = [size or scale_size(i) for i in range(len(self.socks))]
        payloads = [payload_for(i, n) for i, n in enumerate(sizes)]
        return _PingPong(self.socks, payloads).run(count, seconds, timeout)

    def close(self, timeout: float) -> int:
        """Close every connection cleanly; return how many."""
        socks, self.socks = self.socks, []
        _close_all(socks, timeout)
        return len(socks)

    def maxrss(self) -> int:
        """Peak resident memory of the load process, in KiB."""
        return maxrss_kib()
