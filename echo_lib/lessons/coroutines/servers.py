"""One echo server, written three ways past callbacks: generators, an asyncio Protocol, streams.

The callbacks version is `EchoServer` itself. Each here is shown whole in
notebook 08: the generator pair runs on the crawler's `Scheduler`, the other
two on an asyncio loop.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Generator

from ...driver.coroutines import Future, Scheduler

__all__ = ["EchoProtocol", "echo_handler", "echo_server", "handle_echo"]


# -- 2. generators on the tiny scheduler (the 500 Lines crawler) ---------------------------


def echo_server(sched: Scheduler, listener: socket.socket) -> Generator[Future, int, None]:
    """Accept forever; each connection gets its own task."""
    while True:
        yield sched.readable(listener)
        sock, _ = listener.accept()
        sock.setblocking(False)
        sched.spawn(echo_handler(sched, sock))


def echo_handler(sched: Scheduler, sock: socket.socket) -> Generator[Future, int, None]:
    """Echo until EOF: wait, recv; wait, send; until every byte is out."""
    with sock:
        while True:
            yield sched.readable(sock)
            data = sock.recv(65536)
            if not data:
                return
            while data:
                yield sched.writable(sock)
                data = data[sock.send(data) :]


# -- 3 and 4. asyncio: a Protocol, and streams ------------------------------------------


class EchoProtocol(asyncio.Protocol):
    """Called by the transport: bytes in, the same bytes out."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def eof_received(self) -> bool:
        return False  # the transport closes itself, after sending what is buffered


async def handle_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """One coroutine per connection: read, write, drain, until EOF."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()
        await writer.wait_closed()
