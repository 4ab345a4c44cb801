"""The servers under test, each started inside its own child process and counting what it receives.

"raw-selectors" (the floor: a minimal but correct selectors loop), `EchoServer`
with and without recording, asyncio Protocol and streams, uvloop Protocol,
and ``socketserver.ThreadingTCPServer``. Each runs in a `ThreadRunner`
(EchoServer in its own loop thread), so the child's main thread stays free to
answer the parent; `start_server` picks one by name.
"""

from __future__ import annotations

import asyncio
import selectors
import socket
import socketserver
from typing import Any, Protocol

from ..core.timeline import Timeline
from ..driver.implementations import resolve_selector
from ..driver.runner import ThreadRunner
from ..driver.server import EchoServer
from ..driver.sockets import LOOPBACK, listening_socket
from .args import SERVER_KINDS
from .resources import RECV_SIZE

__all__ = ["Served", "start_server"]

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
STOP_TIMEOUT = 10.0  # seconds a server's thread may take to end once asked to


class Served(Protocol):
    """What the server process needs from each kind of server."""

    port: int

    def received(self) -> int:
        """Bytes received so far, over every connection."""
        ...

    def connections(self) -> int:
        """Open connections; `NotImplementedError` for a server that does not count them."""
        ...

    def close(self) -> None:
        """Stop the server's thread and close everything; raise what ended the thread early."""
        ...


class _EchoLibServer:
    """`echo_lib.EchoServer` as users run it: ``start()`` and its own loop thread."""

    def __init__(self, record: bool, selector: str, keep_all: bool = False) -> None:
        timeline = Timeline(maxlen=None) if record and keep_all else None
        self.server = EchoServer(selector=selector, record=record, timeline=timeline).start()
        self.port: int = self.server.address[1]  # type: ignore[index]

    def timeline_stats(self) -> tuple[int, int, int] | None:
        """(events recorded, events dropped, bytes of storage), or None when not recording."""
        timeline = self.server.timeline
        return (
            None
            if timeline is None
            else (timeline.last_seq, timeline.dropped, timeline.storage_bytes())
        )

    def received(self) -> int:
        """Bytes received by the open connections (they stay open for the whole measured window)."""
        return self.server.bytes_received()

    def connections(self) -> int:
        """Open connections."""
        return self.server.connections

    def close(self) -> None:
        """Stop the loop thread and close everything."""
        self.server.stop()


class _RawServer:
    """The floor: a minimal but correct selectors echo loop, in one thread.

    recv() once and send() at once; only when the kernel takes part of it is
    the rest kept (a tiny per-socket buffer) and EVENT_WRITE asked for, and
    reading pauses until it is flushed. A wakeup socketpair stops the loop.
    """

    def __init__(self, selector: str) -> None:
        self.listener, self.total = listening_socket(), 0
        self.port: int = self.listener.getsockname()[1]
        self.sel = resolve_selector(selector)()
        self._wake_r, self._wake_w = socket.socketpair()
        self._rest: dict[socket.socket, bytes] = {}
        self.sel.register(self.listener, READ, self._accept)
        self.sel.register(self._wake_r, READ, None)
        self._runner = ThreadRunner(self._run, name="bench-raw").start()

    def _run(self) -> None:
        """The seed's loop: call each ready key's callback, until woken to stop."""
        select = self.sel.select
        while True:
            for key, mask in select():
                if key.data is None:
                    return
                key.data(key.fileobj, mask)

    def _accept(self, listener: socket.socket, mask: int) -> None:
        """Accept one connection and register it for reading."""
        try:
            sock, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        sock.setblocking(False)
        self.sel.register(sock, READ, self._echo)

    def _echo(self, sock: socket.socket, mask: int) -> None:
        """Readable: echo what came; writable: flush what was left over."""
        if mask & WRITE:
            if self._send(sock, self._rest.pop(sock)):
                self.sel.modify(sock, READ, self._echo)
            return
        try:
            data = sock.recv(RECV_SIZE)
        except OSError:
            data = b""
        if not data:
            self.sel.unregister(sock)
            return sock.close()
        self.total += len(data)
        if not self._send(sock, data):
            self.sel.modify(sock, WRITE, self._echo)

    def _send(self, sock: socket.socket, data: bytes) -> bool:
        """Send what the kernel takes and keep the rest; True if nothing is left."""
        try:
            sent = sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            sent = len(data)  # reset: drop the echo; the next recv() sees the end
        if sent < len(data):
            self._rest[sock] = data[sent:]
            return False
        return True

    def received(self) -> int:
        """Bytes received so far."""
        return self.total

    def connections(self) -> int:
        """Open connections (registered sockets less the listener and the wakeup)."""
        return len(self.sel.get_map()) - 2

    def close(self) -> None:
        """Wake the loop to stop, close every socket and the selector; raise what ended the loop."""
        self._wake_w.send(b"\0")
        try:
            self._runner.join(STOP_TIMEOUT)
        finally:
            for key in list(self.sel.get_map().values()):
                key.fileobj.close()  # type: ignore[union-attr]
            self.sel.close()
            self._wake_w.close()
        self._runner.raise_if_failed()


class _EchoProtocol(asyncio.Protocol):
    """The asyncio documentation's echo protocol, counting what it receives."""

    def __init__(self, owner: _AsyncioServer) -> None:
        self.owner = owner
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport to write to."""
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        """Echo it."""
        self.owner.total += len(data)
        self.transport.write(data)  # type: ignore[union-attr]


class _AsyncioServer:
    """An asyncio (or uvloop) echo server, Protocol or streams, in a loop thread."""

    def __init__(self, loop: asyncio.AbstractEventLoop, streams: bool) -> None:
        self.loop, self.total = loop, 0
        self.server = loop.run_until_complete(self._listen(streams))
        self.port: int = self.server.sockets[0].getsockname()[1]
        self._runner = ThreadRunner(loop.run_forever, name="bench-asyncio").start()

    async def _listen(self, streams: bool) -> asyncio.Server:
        """Listen with the same backlog as the others (asyncio's default is 100)."""
        if streams:
            return await asyncio.start_server(
                self._echo_stream, LOOPBACK, 0, backlog=socket.SOMAXCONN
            )
        return await self.loop.create_server(
            lambda: _EchoProtocol(self), LOOPBACK, 0, backlog=socket.SOMAXCONN
        )

    async def _echo_stream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """The streams echo: read, write, drain, until EOF."""
        try:
            while data := await reader.read(RECV_SIZE):
                self.total += len(data)
                writer.write(data)
                await writer.drain()
        except OSError:
            pass  # a reset ends this connection only
        finally:
            writer.close()

    def received(self) -> int:
        """Bytes received so far."""
        return self.total

    def connections(self) -> int:
        """Not counted here; the scale run uses the selectors servers."""
        raise NotImplementedError("asyncio servers do not count their connections here")

    def close(self) -> None:
        """Stop the loop thread, then close the server and the loop."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        try:
            self._runner.join(STOP_TIMEOUT)
        finally:  # the listener and the loop are closed even if the thread hangs
            self.server.close()
            if not self._runner.running:
                self.loop.close()
        self._runner.raise_if_failed()


class _EchoHandler(socketserver.BaseRequestHandler):
    """One thread per connection: blocking recv(), sendall()."""

    def handle(self) -> None:
        """Echo until EOF, counting the bytes in this handler's own tally."""
        tally = [0]
        self.server.tallies.append(tally)  # type: ignore[attr-defined]
        while data := self.request.recv(RECV_SIZE):
            tally[0] += len(data)
            self.request.sendall(data)


class _TallyServer(socketserver.ThreadingTCPServer):
    """ThreadingTCPServer that keeps each handler's tally and never prints."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = socket.SOMAXCONN  # the default, 5, drops 8 simultaneous SYNs: 1 s retries

    def __init__(self) -> None:
        super().__init__((LOOPBACK, 0), _EchoHandler)
        self.tallies: list[list[int]] = []
        self.errors = 0

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Count it: a background thread must not print a traceback."""
        self.errors += 1


class _ThreadedServer:
    """``socketserver.ThreadingTCPServer`` with ``serve_forever()`` in a thread."""

    def __init__(self) -> None:
        self.server = _TallyServer()
        self.port: int = self.server.server_address[1]
        self._runner = ThreadRunner(self.server.serve_forever, name="bench-threads").start()

    def received(self) -> int:
        """Bytes received so far, over every handler."""
        return sum(tally[0] for tally in list(self.server.tallies))

    def connections(self) -> int:
        """Not counted here; the scale run uses the selectors servers."""
        raise NotImplementedError("socketserver does not count its connections here")

    def close(self) -> None:
        """Stop serve_forever() (it looks every 0.5 s) and close the listener."""
        self.server.shutdown()
        self.server.server_close()
        self._runner.join(STOP_TIMEOUT)
        self._runner.raise_if_failed()


def _new_loop(kind: str, selector: str) -> asyncio.AbstractEventLoop:
    """A uvloop loop, or an asyncio selector loop on ``selector``."""
    if kind.startswith("uvloop"):
        import uvloop  # optional: only this row needs it

        return uvloop.new_event_loop()
    return asyncio.SelectorEventLoop(resolve_selector(selector)())


def start_server(kind: str, selector: str, keep_all: bool = False) -> Served:
    """Start the server named ``kind`` (a recording one keeps every event with ``keep_all``).

    Raises `ValueError` for an unknown kind.
    """
    if kind in ("echoserver", "echoserver-record"):
        return _EchoLibServer(
            record=kind == "echoserver-record", selector=selector, keep_all=keep_all
        )
    if kind == "raw-selectors":
        return _RawServer(selector)
    if kind in ("asyncio-protocol", "asyncio-streams", "uvloop-protocol"):
        return _AsyncioServer(_new_loop(kind, selector), streams=kind == "asyncio-streams")
    if kind == "socketserver-threads":
        return _ThreadedServer()
    raise ValueError(f"unknown server {kind!r}; expected one of {', '.join(SERVER_KINDS)}")
