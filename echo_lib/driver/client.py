"""`EchoClient`: the seed's echo client, done right.

The shape is the seed's: connect (a blocking call, so with a timeout), go
non-blocking, register READ|WRITE, send from a queue while writable, and
``modify()`` to READ only once the queue is empty, so the selector stops
reporting a socket that is always writable.

What it fixes: the seed's stop test ends the loop after the first non-empty
``recv()``, so an echo that arrives in two chunks is half lost. The queue, the
byte counts and the stop rule live in `core.exchange.EchoExchange` (no
sockets): this client stops exactly when every byte sent has come back, or at
EOF, and its `EchoResult` says what is missing. ``send()`` may take only part
of a message; the rest stays queued.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from dataclasses import dataclass

from ..core.checks import check_host, check_port, check_size, check_timeout
from ..core.exchange import EchoExchange
from ..core.timeline import Timeline
from .implementations import SelectorFactory, resolve_selector
from .loop import DEFAULT_TIMEOUT, SelectorLoop

__all__ = ["DEFAULT_MESSAGES", "EchoClient", "EchoResult"]

#: The seed's two messages.
DEFAULT_MESSAGES = (b"It will be repeated.", b"This is the message.  ")
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


def _new_timeline(record: bool, timeline: Timeline | None) -> Timeline | None:
    return (timeline if timeline is not None else Timeline()) if record else None


@dataclass(frozen=True)
class EchoResult:
    """What one client sent and got back."""

    name: str
    sent: int
    received: int
    expected: int
    intact: bool
    eof: bool
    error: str = ""

    @property
    def missing(self) -> int:
        """Bytes sent but not echoed back."""
        return self.expected - self.received

    @property
    def complete(self) -> bool:
        """Every byte came back, unchanged."""
        return self.received == self.expected and self.intact

    def __str__(self) -> str:
        if self.complete:
            return f"{self.name}: sent {self.sent} bytes, received {self.received} bytes: complete"
        why = self.error or ("server closed early" if self.eof else "not finished")
        damage = "" if self.intact else ", CORRUPTED"
        return (
            f"{self.name}: sent {self.sent} bytes, received {self.received} bytes: "
            f"{self.missing} missing ({why}){damage}"
        )


class EchoClient:
    """Send ``messages`` to an echo server at ``address`` and check the echo.

    ``run()`` blocks and returns an `EchoResult`; ``start()``/``join()`` do the
    same in the background. Given ``loop``, the client only registers on it
    and the caller drives the loop (deterministic mode).

    ``timeout`` bounds the connect and the wait for the echo: seconds, above
    0 and at most `MAX_TIMEOUT`.

    Raises `TypeError` for a message that is not bytes, `ValueError` for a bad
    port (0 included: a client needs the port a server listens on), a bad
    ``timeout`` or ``recv_size``, or a non-loopback host without
    ``allow_remote=True``; when started, `RuntimeError` on a closed loop, and
    `ConnectionRefusedError` naming the address when nothing listens there.
    """

    def __init__(
        self,
        address: tuple[str, int],
        messages: object = DEFAULT_MESSAGES,
        *,
        selector: str | SelectorFactory | None = None,
        record: bool = True,
        timeline: Timeline | None = None,
        loop: SelectorLoop | None = None,
        name: str = "client",
        timeout: float = DEFAULT_TIMEOUT,
        recv_size: int = 1 << 16,
        sndbuf: int | None = None,
        rcvbuf: int | None = None,
        allow_remote: bool = False,
    ) -> None:
        host, port = address
        self.address = (check_host(host, allow_remote), _check_server_port(port))
        self.exchange = EchoExchange(messages)
        self.messages = self.exchange.messages
        self.name, self.sndbuf, self.rcvbuf = name, sndbuf, rcvbuf
        self.timeout, self.recv_size = check_timeout(timeout), check_size("recv_size", recv_size)
        self.expected = self.exchange.expected
        # Our own loop is made when the client starts, so that a client that
        # never starts (or fails to connect) holds no sockets.
        self._own_loop = loop is None
        self._selector = resolve_selector(selector)
        self.loop: SelectorLoop | None = loop
        self.timeline = loop.timeline if loop is not None else _new_timeline(record, timeline)
        self._sock: socket.socket | None = None
        self._done = threading.Event()

    # -- lifecycle --------------------------------------------------------------

    def start(self) -> EchoClient:
        """Connect and register; with its own loop, run it in a background thread."""
        self._open()
        if self._own_loop:
            self.loop.start()
        return self

    def _open(self) -> None:
        if self._sock is not None:
            raise RuntimeError(f"{self!r} is already started")
        if self.loop is not None and self.loop.closed:
            raise RuntimeError(
                f"{self.loop!r} is closed; give the client an open loop, or none to have its own"
            )
        self._sock = self._connect()
        try:
            if self.loop is None:
                record = self.timeline is not None
                self.loop = SelectorLoop(
                    self._selector, record=record, timeline=self.timeline, name=self.name
                )
            self.loop.add_closer(self.close)
            self._record("connect", detail=f"{len(self.messages)} messages, {self.expected} bytes")
            self.loop.register(self._sock, READ | WRITE, self._on_ready, actor=self.name)
        except BaseException:
            self._sock.close()
            raise

    def _connect(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.address[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._tune(sock)
            sock.settimeout(self.timeout)
            sock.connect(self.address)
            sock.setblocking(False)
        except ConnectionRefusedError as exc:
            sock.close()
            raise ConnectionRefusedError(
                exc.errno, f"no server is listening on {self.address[0]}:{self.address[1]!r}"
            ) from None
        except BaseException:
            sock.close()
            raise
        return sock

    def _tune(self, sock: socket.socket) -> None:
        if self.sndbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sndbuf)
        if self.rcvbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)

    def run(self, timeout: float | None = None) -> EchoResult:
        """Connect, echo everything, close; return the result.

        Runs in the calling thread with its own loop. Raises `TimeoutError`
        naming what is missing if the echo is not back within ``timeout``.
        """
        if not self._own_loop:
            raise RuntimeError(
                "run() drives its own loop; with a shared loop use start() and loop.run_until()"
            )
        self._open()
        try:
            self.loop.run_until(self._done.is_set, timeout=self._timeout(timeout))
        except TimeoutError:
            raise TimeoutError(f"{self.name} timed out: {self.result()}") from None
        finally:
            self.loop.stop()
        return self.result()

    def join(self, timeout: float | None = None) -> EchoResult:
        """Wait for the echo (at most ``timeout`` s), stop, and return the result.

        Raises `TimeoutError` naming what is missing.
        """
        if self.loop is None:
            raise RuntimeError(f"{self!r} was never started")
        finished = self._done.wait(self._timeout(timeout))
        if self._own_loop:
            self.loop.stop()
        if not finished:
            raise TimeoutError(f"{self.name} timed out: {self.result()}")
        return self.result()

    def _timeout(self, timeout: float | None) -> float:
        return self.timeout if timeout is None else check_timeout(timeout)

    @property
    def done(self) -> bool:
        """The echo is complete, or the server closed the connection."""
        return self._done.is_set()

    def result(self) -> EchoResult:
        """What was sent and received so far."""
        ex = self.exchange
        return EchoResult(
            self.name, ex.bytes_sent, ex.bytes_received, ex.expected, ex.intact, ex.eof, ex.error
        )

    @property
    def received_data(self) -> bytes:
        """Every byte echoed back so far."""
        return bytes(self.exchange.received)

    def close(self) -> None:
        """Unregister and close the socket (idempotent)."""
        if self._sock is None or self._sock.fileno() < 0 or self.loop is None:
            return
        # Already unregistered, or the selector is closed: nothing to undo.
        with contextlib.suppress(KeyError, ValueError, RuntimeError):
            self.loop.selector.unregister(self._sock)
        fd = self._sock.fileno()
        self._sock.close()
        self._record("close", fd)

    # -- handlers -----------------------------------------------------------------

    def _on_ready(self, key: selectors.SelectorKey, mask: int) -> None:
        if mask & WRITE:
            self.on_writable()
        if mask & READ and not self._done.is_set():
            self.on_readable()

    def on_writable(self) -> None:
        """Send the next queued bytes; once the queue is empty, switch to READ only."""
        if not self.exchange.wants_write:
            self.loop.selector.modify(self._sock, READ, self._on_ready)
            if self.exchange.echoed:
                self._finish()  # nothing to send at all
            return
        try:
            sent = self._sock.send(self.exchange.data_to_send())  # type: ignore[union-attr]
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            return self._fail(exc)
        whole = self.exchange.sent(sent)
        self._record("send", nbytes=sent, detail="" if whole else "partial")

    def on_readable(self) -> None:
        """Count echoed bytes; finish when all are back, or at EOF."""
        try:
            data = self._sock.recv(self.recv_size)  # type: ignore[union-attr]
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            return self._fail(exc)
        self.exchange.receive_data(data)
        if not data:
            self._record("eof", detail=f"{self.exchange.missing} bytes never came back")
            return self._finish()
        self._record("recv", nbytes=len(data))
        if self.exchange.echoed:
            self._finish()

    def _fail(self, exc: OSError) -> None:
        self.exchange.fail(type(exc).__name__)
        self._record("error", detail=self.exchange.error)
        self._finish()

    def _finish(self) -> None:
        self.close()
        self._done.set()
        if self._own_loop:
            self.loop.request_stop()

    def _record(
        self, action: str, fd: int | None = None, nbytes: int = 0, detail: str = ""
    ) -> None:
        if self.timeline is not None:
            fd = self._sock.fileno() if fd is None and self._sock is not None else fd
            self.timeline.record(self.name, action, -1 if fd is None else fd, 0, nbytes, detail)

    def __repr__(self) -> str:
        return f"<EchoClient {self.name!r} to {self.address[0]}:{self.address[1]}, {self.result()}>"


def _check_server_port(port: object) -> int:
    """`check_port`, and not 0: port 0 asks for a free port, which only a server can use."""
    if check_port(port) == 0:
        raise ValueError(
            "port must be the server's port, 1..65535, got 0 (0 lets a server pick a free one)"
        )
    return port  # type: ignore[return-value]
