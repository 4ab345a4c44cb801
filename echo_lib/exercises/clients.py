"""Scripted clients that attack a server under test: the load side of the harness of 09 and 11.

Clients are plain non-blocking sockets driven by one selector in the
checker's thread, so the checker never blocks: every wait is a ``select()``
with a timeout, and every round has a deadline. Payloads and chunk sizes come
from a seeded `random.Random`, so a run is the same every time.
"""

from __future__ import annotations

import contextlib
import random
import selectors
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from selectors import DefaultSelector as ClientSelector
from typing import Any

from ..driver.sockets import close_with_reset
from .serving import KiB, ServerRun

__all__ = ["Client", "close_all", "drive", "echo_clients"]

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
#: How long a select() of the client side waits at most, in seconds.
TICK = 0.05


@dataclass(eq=False)
class Client:
    """One scripted client: what it sends, how, and what came back.

    ``mode``: ``"echo"`` sends its payload, half-closes and reads to EOF;
    ``"idle"`` sends its payload and reads the echo, then stays connected;
    ``"reset"`` sends, reads one byte of echo, then resets (RST);
    ``"hog"`` sends its payload and never reads.
    """

    name: str
    payload: bytes
    chunks: list[int]
    read_size: int = 64 * KiB
    mode: str = "echo"
    rcvbuf: int | None = None
    sndbuf: int | None = None
    sock: socket.socket | None = None
    sent: int = 0
    sends: int = (
        0  # send() calls that took bytes: picks the next chunk size, whatever the kernel took
    )
    received: bytearray = field(default_factory=bytearray)
    eof: bool = False
    reset: bool = False
    peak: int = 0
    last_sent: float = (
        0.0  # time.monotonic() of the connect, then of the last send() that took bytes
    )

    @property
    def done(self) -> bool:
        """Nothing more will happen on this connection (a hog is done only once drained)."""
        if self.mode == "idle":
            return self.eof or self.reset or len(self.received) >= len(self.payload)
        return self.eof or self.reset or (self.mode == "reset" and self.sock is None)

    def drain(self, selector: selectors.BaseSelector) -> None:
        """Stop sending: half-close, and read what comes back until EOF."""
        if self.sock is None:
            return
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)
        with contextlib.suppress(KeyError):
            selector.unregister(self.sock)
        selector.register(self.sock, READ, self)

    @property
    def exact(self) -> bool:
        """Every byte came back, in order, and nothing more."""
        return self.mode in ("reset", "hog") or bytes(self.received) == self.payload

    def connect(self, address: tuple[str, int], selector: selectors.BaseSelector) -> None:
        """Connect (to a listening socket: the kernel completes it) and register for READ|WRITE."""
        sock = self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        for option, size in ((socket.SO_RCVBUF, self.rcvbuf), (socket.SO_SNDBUF, self.sndbuf)):
            if size is not None:
                sock.setsockopt(socket.SOL_SOCKET, option, size)
        sock.settimeout(5)
        sock.connect(address)
        self.last_sent = time.monotonic()
        sock.setblocking(False)
        selector.register(sock, WRITE if self.mode == "hog" else READ | WRITE, self)

    def on_ready(self, selector: selectors.BaseSelector, mask: int) -> None:
        """Send the next chunk and/or read once, as the script says."""
        if mask & WRITE:
            self._write(selector)
        if mask & READ and self.sock is not None:
            self._read(selector)

    def _write(self, selector: selectors.BaseSelector) -> None:
        size = self.chunks[self.sends % len(self.chunks)] if self.chunks else 256 * KiB
        try:
            self.sent += self.sock.send(memoryview(self.payload)[self.sent : self.sent + size])  # type: ignore[union-attr]
        except BlockingIOError:
            return
        except OSError:
            self.reset = True
            return self.close(selector)
        self.sends += 1
        self.peak, self.last_sent = max(self.peak, self.sent - len(self.received)), time.monotonic()
        if self.sent >= len(self.payload):
            self._all_sent(selector)

    def _all_sent(self, selector: selectors.BaseSelector) -> None:
        if self.mode == "hog":  # the server took everything: it buffers without bound
            selector.modify(self.sock, READ, self)
            return
        if self.mode == "echo":
            try:
                self.sock.shutdown(socket.SHUT_WR)  # type: ignore[union-attr]
            except OSError:  # ENOTCONN: a reset from the server got here first
                self.reset = True
                return self.close(selector)
        selector.modify(self.sock, READ, self)

    def _read(self, selector: selectors.BaseSelector) -> None:
        try:
            data = self.sock.recv(self.read_size)  # type: ignore[union-attr]
        except BlockingIOError:
            return
        except OSError:
            self.reset = True
            return self.close(selector)
        self.received += data
        self.eof = not data
        if (
            self.eof
            or (self.mode == "reset" and data)
            or (self.mode == "idle" and len(self.received) >= len(self.payload))
        ):
            self.close(
                selector,
                rst=self.mode == "reset" and bool(data),
                keep=self.mode == "idle" and not self.eof,
            )

    def close(
        self, selector: selectors.BaseSelector, *, rst: bool = False, keep: bool = False
    ) -> None:
        """Stop watching this client; close its socket unless ``keep`` (``rst``: with a reset)."""
        if self.sock is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            selector.unregister(self.sock)
        if keep:
            return
        if rst:
            close_with_reset(self.sock)
        else:
            self.sock.close()
        self.sock = None


def echo_clients(
    rng: random.Random,
    prefix: str,
    count: int,
    sizes: tuple[int, int],
    *,
    chunk: int = 64 * KiB,
    **options: Any,
) -> list[Client]:
    """``count`` clients ``prefix-1``... with seeded payloads of ``sizes`` bytes and chunks."""
    clients = []
    for i in range(1, count + 1):
        payload = rng.randbytes(rng.randint(*sizes))
        chunks = [rng.randint(1, chunk) for _ in range(16)]
        clients.append(Client(f"{prefix}-{i}", payload, chunks, **options))
    return clients


def drive(run: ServerRun, clients: Iterable[Client], deadline: float) -> bool:
    """Connect ``clients`` and play their scripts until all are done.

    Returns False at ``deadline`` or if the server died. Once the clients are
    done it waits for the server to settle (`ServerRun.settle`): their last
    moves may kill it, and their EOFs may be a dying server's cleanup.

    Hogs are measured once the server stops taking their bytes (no WRITE
    readiness for half a second after every other client is done) or they
    sent all; then they half-close and read their echo to EOF.
    """
    clients = list(clients)
    with ClientSelector() as selector:
        for client in clients:
            client.connect(run.address, selector)
        while not all(c.done for c in clients if c.mode != "hog"):
            if time.monotonic() > deadline or run.died:
                return False
            for key, mask in selector.select(TICK):
                key.data.on_ready(selector, mask)
        hogs = [c for c in clients if c.mode == "hog"]
        finished = _until_hogs_stall(run, hogs, selector, deadline) and _drain_hogs(
            run, hogs, selector, deadline
        )
    if finished:
        run.settle()
    return finished and not run.died


def _until_hogs_stall(
    run: ServerRun, hogs: list[Client], selector: selectors.BaseSelector, deadline: float
) -> bool:
    while hogs and time.monotonic() < deadline and not run.died:
        ready = selector.select(0.5)
        if not ready:
            break  # the server stopped reading from every hog
        for key, mask in ready:
            key.data.on_ready(selector, mask)
        hogs = [h for h in hogs if h.sent < len(h.payload)]
    return not run.died and time.monotonic() <= deadline


def _drain_hogs(
    run: ServerRun, hogs: list[Client], selector: selectors.BaseSelector, deadline: float
) -> bool:
    # A hog that closed with unread data would reset the connection, and a
    # server that has not yet learnt about resets (notebook 09, before step 6)
    # would die of it. So each hog ends politely: EOF, then it reads its echo.
    for hog in hogs:
        hog.drain(selector)
    while not all(h.done for h in hogs):
        if time.monotonic() > deadline or run.died:
            return False
        for key, mask in selector.select(TICK):
            key.data.on_ready(selector, mask)
    return True


def close_all(clients: Iterable[Client]) -> None:
    """Close every client's socket (idempotent)."""
    for client in clients:
        if client.sock is not None:
            client.sock.close()
            client.sock = None
