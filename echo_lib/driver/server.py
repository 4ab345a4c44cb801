"""`EchoServer`: the seed's echo server, done right, on a `SelectorLoop`.

The buffer logic lives in `EchoConnection` (no I/O); this module only moves
bytes between sockets and that logic, then asks which events it wants now.

How one connection moves, and why each step is there:

* ``on_accept``: accept, make the socket non-blocking, register EVENT_READ.
  The server keeps serving after any client leaves.
* ``on_readable``: ``recv()`` once. Bytes go to the echo buffer; ``b""`` is the
  peer's EOF (maybe only a half-close: its echo is still owed). Then try to
  send at once (``_echo_now``): on loopback one ``send()`` usually drains
  everything without ever registering EVENT_WRITE.
* ``on_writable``: send what is pending; ``send()`` may take only part of it,
  so never ``sendall()`` on a non-blocking socket.
* after each, the wanted mask is computed from state (trio's
  ``_update_registrations``): READ while the peer may send and the buffer
  has room, WRITE while output is pending, and ``modify()`` is called only
  when that mask changes. With nothing wanted, the echo is done: close.
* a reset or any other socket error closes that one connection and is
  recorded as an ``error`` event; the server goes on.

Running out of resources must not turn into a busy loop. When ``accept()``
fails with EMFILE, ENFILE, ENOBUFS or ENOMEM (out of file descriptors or
memory), the connection stays in the listen backlog, so the listener stays
readable and every ``select()`` would return at once. As asyncio's
``_accept_connection`` does, the server then stops watching the listener for
`ACCEPT_RETRY_DELAY` seconds, says so once (one ``error`` event until an
accept succeeds again), and retries. A `selectors.SelectSelector` cannot
watch an fd past its `FD_SETSIZE`: the connection that would cross it is
closed at once (refused), the others are served, and that too is said once.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import selectors
import socket
from collections.abc import Callable
from typing import Any

from ..core.checks import check_host, check_port, check_size, check_timeout
from ..core.connection import DEFAULT_MAX_BUFFER, EchoConnection
from ..core.timeline import Timeline
from .implementations import SelectorFactory, resolve_selector, select_has_room, select_limit
from .loop import DEFAULT_TIMEOUT, SelectorLoop
from .sockets import listening_socket

__all__ = ["ACCEPT_RETRY_DELAY", "RECV_SIZE", "EchoServer"]

RECV_SIZE = 1 << 16
#: Seconds without watching the listener after accept() ran out of resources (asyncio's value).
ACCEPT_RETRY_DELAY = 1.0
_OUT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


class _Peer:
    """One accepted connection: its socket, its buffer state, its registration."""

    __slots__ = ("sock", "fd", "conn", "actor", "address", "events", "callback")

    def __init__(self, sock: socket.socket, conn: EchoConnection, actor: str, address: Any) -> None:
        self.sock, self.conn, self.actor, self.address = sock, conn, actor, address
        self.events = READ
        self.fd = sock.fileno()  # kept: fileno() is a call, and -1 once closed
        self.callback: Any = None


class EchoServer:
    """Echo every byte back to its sender, to any number of clients at once.

    ``on_recv(actor, data)``, if given, sees every chunk a connection
    receives, in the loop's thread (the CLI prints them, as the seed does).

    ``host`` must be loopback unless ``allow_remote=True``; ``port=0`` lets
    the kernel choose a free port (see `address`). With ``loop=None`` the
    server runs its own `SelectorLoop` in a background thread; given a loop,
    it only registers on it and the caller drives it (deterministic mode).

    ``accept_retry_delay`` is how long the listener is left unwatched after
    ``accept()`` ran out of file descriptors or memory.

    Raises `ValueError` for a bad port, ``recv_size`` or ``accept_retry_delay``,
    a non-loopback host without the opt-in, or a selector this platform lacks;
    when started, `RuntimeError` on a closed loop or a server that already
    ran, and `OSError` from ``bind()`` (e.g. the port is in use).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        selector: str | SelectorFactory | None = None,
        record: bool = True,
        timeline: Timeline | None = None,
        loop: SelectorLoop | None = None,
        max_buffer: int = DEFAULT_MAX_BUFFER,
        recv_size: int = RECV_SIZE,
        sndbuf: int | None = None,
        backlog: int = socket.SOMAXCONN,
        allow_remote: bool = False,
        name: str = "server",
        on_recv: Callable[[str, bytes], Any] | None = None,
        accept_retry_delay: float = ACCEPT_RETRY_DELAY,
    ) -> None:
        self.host, self.port = check_host(host, allow_remote), check_port(port)
        self.on_recv = on_recv
        EchoConnection(max_buffer)  # validates max_buffer before anything is opened
        self.name, self.max_buffer, self.sndbuf, self.backlog = name, max_buffer, sndbuf, backlog
        self.recv_size = check_size("recv_size", recv_size)
        self.accept_retry_delay = check_timeout(accept_retry_delay, "accept_retry_delay")
        # Our own loop is made by start(), after bind() succeeded, so that a
        # server that never starts (or cannot bind) holds no sockets.
        self._own_loop = loop is None
        self._selector = resolve_selector(selector)
        self.loop: SelectorLoop | None = loop
        if loop is not None:
            self.timeline = loop.timeline
        else:
            self.timeline = (timeline if timeline is not None else Timeline()) if record else None
        self._record = self.timeline.record if self.timeline is not None else _ignore
        self._peers: dict[socket.socket, _Peer] = {}
        self._numbers = itertools.count(1)
        self._listener: socket.socket | None = None
        self.address: tuple[str, int] | None = None
        self.accepted = self.refused = 0
        self._short_of_resources = False  # said once, until an accept succeeds again

    # -- lifecycle --------------------------------------------------------------

    def _check_can_start(self) -> None:
        if self._listener is not None:
            stopped = "has stopped; make a new EchoServer to serve again"
            raise RuntimeError(f"{self!r} {stopped if self.stopped else 'is already started'}")
        if self.loop is not None and self.loop.closed:
            raise RuntimeError(
                f"{self.loop!r} is closed; give the server an open loop, or none to have its own"
            )

    def start(self) -> EchoServer:
        """Bind, listen, register, and (with its own loop) start the thread.

        Raises `RuntimeError` if started before or if the given loop is
        closed, and `OSError` from ``bind()``; nothing is left open then.
        """
        self._check_can_start()
        self._listener = listening_socket(self.host, self.port, self.backlog)
        try:
            self.address = self._listener.getsockname()[:2]
            if self.loop is None:
                record = self.timeline is not None
                self.loop = SelectorLoop(
                    self._selector, record=record, timeline=self.timeline, name=self.name
                )
            self.loop.add_closer(self.close)
            self.loop.register(self._listener, READ, self.on_accept, actor=self.name)
        except BaseException:
            self._listener.close()
            raise
        if self._own_loop:
            self.loop.start()
        return self

    @property
    def stopped(self) -> bool:
        """Started, then stopped (its listener is closed); it cannot serve again."""
        return self._listener is not None and self._listener.fileno() < 0

    def stop(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Close every connection and the listener; stop the own loop's thread.

        Idempotent. Re-raises an unexpected error that stopped the loop.
        """
        if self._own_loop and self.loop is not None:
            self.loop.stop(timeout)
        else:
            self.close()

    def close(self) -> None:
        """Close the connections and the listener, recording each close."""
        for peer in list(self._peers.values()):
            self._close(peer, "server stopping")
        if self._listener is not None and self._listener.fileno() >= 0:
            self._unregister(self._listener)
            self._listener.close()
            self._record(self.name, "close", detail="listener")

    def __enter__(self) -> EchoServer:
        """Start the server unless it runs already. Raises `RuntimeError` once it has stopped."""
        if self.stopped:
            raise RuntimeError(f"{self!r} has stopped; make a new EchoServer to serve again")
        return self if self._listener is not None else self.start()

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None or not self._own_loop or self.loop is None:
            self.stop()
        else:
            self.loop.__exit__(exc_type, *exc)

    @property
    def connections(self) -> int:
        """How many connections are open now."""
        return len(self._peers)

    def peer_addresses(self) -> dict[str, Any]:
        """The address of each open connection, by actor name (a snapshot)."""
        return {peer.actor: peer.address for peer in list(self._peers.values())}

    def bytes_received(self) -> int:
        """Bytes received by the connections open now, echoed or still buffered (a snapshot)."""
        return sum(peer.conn.bytes_received for peer in list(self._peers.values()))

    def buffered(self) -> int:
        """Bytes waiting to be echoed, over all connections (a snapshot)."""
        return sum(peer.conn.pending for peer in list(self._peers.values()))

    # -- handlers, named after the state that calls them -----------------------

    def on_accept(self, key: selectors.SelectorKey, mask: int) -> None:
        """The listener is readable: connections are waiting. Take up to a batch."""
        for _ in range(64):
            try:
                sock, addr = self._listener.accept()  # type: ignore[union-attr]
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                return self._accept_failed(key.fd, exc)
            self._short_of_resources = False
            self._add_peer(sock, addr)

    def _accept_failed(self, fd: int, exc: OSError) -> None:
        """Record a failed accept(); out of resources, stop watching the listener for a while."""
        if exc.errno not in _OUT_OF_RESOURCES:  # e.g. ECONNABORTED: that one connection is gone
            self._record(self.name, "error", fd, detail=f"accept: {exc}")
            return
        self._unregister(self._listener)  # type: ignore[arg-type]
        self.loop.call_later(self.accept_retry_delay, self._resume_accepting)  # type: ignore[union-attr]
        if not self._short_of_resources:
            self._short_of_resources = True
            why = f"{exc.strerror} ({errno.errorcode.get(exc.errno, exc.errno)})"
            pause = f"not accepting for {self.accept_retry_delay:g} s at a time until it works"
            self._record(self.name, "error", fd, detail=f"accept: {why}; {pause} again")

    def _resume_accepting(self) -> None:
        loop, listener = self.loop, self._listener
        if loop is not None and listener is not None and listener.fileno() >= 0 and not loop.closed:
            loop.register(listener, READ, self.on_accept, actor=self.name)

    def _add_peer(self, sock: socket.socket, addr: Any) -> None:
        if not select_has_room(self.loop.selector, sock.fileno()):  # type: ignore[union-attr]
            return self._refuse(sock)
        sock.setblocking(False)
        if self.sndbuf is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.sndbuf)
        peer = _Peer(
            sock, EchoConnection(self.max_buffer), f"{self.name}/conn-{next(self._numbers)}", addr
        )
        self._peers[sock] = peer
        self.accepted += 1
        self._record(self.name, "accept", sock.fileno(), detail=peer.actor.rsplit("/", 1)[-1])
        # The key's data runs once per ready event. A READ-only registration is
        # only ever called with READ (the loop masks what is ready with what is
        # wanted), so that case goes straight to on_readable: one call fewer.
        # (It stays a lambda: the coroutine lesson shows its name.)
        peer.callback = lambda key, mask: (
            self.on_readable(peer) if mask == READ else self._on_ready(peer, mask)
        )
        self.loop.register(sock, READ, peer.callback, actor=peer.actor)

    def _refuse(self, sock: socket.socket) -> None:
        """Close a connection the selector cannot watch; say why the first time only."""
        self.refused += 1
        if self.refused == 1:
            why = select_limit(self.loop.selector, sock.fileno())  # type: ignore[union-attr]
            self._record(self.name, "error", sock.fileno(), detail=f"refusing connections: {why}")
        sock.close()

    def _on_ready(self, peer: _Peer, mask: int) -> None:
        if mask & READ:
            self.on_readable(peer)
        if mask & WRITE and peer.sock in self._peers:
            self.on_writable(peer)

    # Once per echoed message (issue 11): `_echo_now` echoes with one send(),
    # without on_writable's loop; the recv is recorded before that send() is
    # made, so no thread can record the echo's arrival before it. EOF and
    # ``on_recv`` go the general way, `on_writable`, which sees that all is
    # echoed from two counters (bytes_sent == bytes_received).
    def on_readable(self, peer: _Peer) -> None:
        """Data (or EOF) arrived: buffer it, try to echo it, update the mask."""
        try:
            data = peer.sock.recv(self.recv_size)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            return self._fail(peer, exc)
        peer.conn.receive_data(data)
        if data and self.on_recv is None:
            return self._echo_now(peer, len(data))
        if self.timeline is not None:
            if data:
                self._record(peer.actor, "recv", peer.fd, 0, len(data))
            else:
                pending = f"{peer.conn.pending} bytes still to echo"
                self._record(peer.actor, "eof", peer.fd, detail=pending)
        if data:
            self.on_recv(peer.actor, data)  # type: ignore[misc]
        self.on_writable(peer)

    def _echo_now(self, peer: _Peer, size: int) -> None:
        """Echo the ``size`` bytes just received with one send(), recording both."""
        record = None if self.timeline is None else self._record
        if record is not None:
            record(peer.actor, "recv", peer.fd, 0, size)
        conn = peer.conn
        chunk = conn.data_to_send()
        try:
            sent = peer.sock.send(chunk)
        except (BlockingIOError, InterruptedError):
            return self._update_registration(peer)  # the kernel is full: wait for EVENT_WRITE
        except OSError as exc:
            return self._fail(peer, exc)
        conn.sent(sent)
        partial = sent < len(chunk)
        if record is not None:
            record(peer.actor, "send", peer.fd, 0, sent, "partial" if partial else "")
        if partial:
            self._update_registration(peer)  # the kernel is full: wait for EVENT_WRITE
        elif conn.bytes_sent != conn.bytes_received:
            self.on_writable(peer)  # more was queued behind that chunk
        elif peer.events != READ:
            self._update_registration(peer)

    def on_writable(self, peer: _Peer) -> None:
        """Send what the kernel will take now, then update the mask."""
        conn, send = peer.conn, peer.sock.send
        record = None if self.timeline is None else self._record
        while chunk := conn.data_to_send():
            try:
                sent = send(chunk)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                return self._fail(peer, exc)
            conn.sent(sent)
            size = len(chunk)
            if record is not None:
                record(peer.actor, "send", peer.fd, 0, sent, "" if sent == size else "partial")
            if sent < size or conn.bytes_sent == conn.bytes_received:
                break  # the kernel is full, or everything is echoed
        if conn.bytes_sent == conn.bytes_received and peer.events == READ and not conn.peer_eof:
            return  # all echoed and still reading: the mask is already right
        self._update_registration(peer)

    def _update_registration(self, peer: _Peer) -> None:
        conn = peer.conn
        if conn.finished:
            return self._close(peer, "echo complete")
        wanted = (READ if conn.wants_read else 0) | (WRITE if conn.wants_write else 0)
        if wanted != peer.events:
            peer.events = wanted
            self.loop.selector.modify(peer.sock, wanted, peer.callback)

    # -- closing ----------------------------------------------------------------

    def _fail(self, peer: _Peer, exc: OSError) -> None:
        self._record(peer.actor, "error", peer.sock.fileno(), detail=type(exc).__name__)
        self._close(peer, f"after {type(exc).__name__}")

    def _close(self, peer: _Peer, why: str) -> None:
        self._unregister(peer.sock)
        fd = peer.sock.fileno()
        peer.sock.close()
        self._record(peer.actor, "close", fd, detail=why)
        self._peers.pop(peer.sock, None)  # last: `connections` drops once the close is recorded

    def _unregister(self, sock: socket.socket) -> None:
        # Never registered, or the selector is already closed: nothing to undo.
        with contextlib.suppress(KeyError, ValueError, RuntimeError):
            self.loop.selector.unregister(sock)

    def __repr__(self) -> str:
        where = f"{self.address[0]}:{self.address[1]}" if self.address else "not started"
        return f"<EchoServer {self.name!r} {where}, {self.connections} connections>"


def _ignore(*args: Any, **kwargs: Any) -> None:
    """The recorder used when recording is off."""
