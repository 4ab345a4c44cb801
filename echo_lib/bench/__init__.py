"""How much CPU does `EchoServer` spend per echoed message, next to its peers?

Run ``python -m echo_lib.bench`` (``--quick`` takes under 20 seconds,
``--json PATH`` keeps the numbers), or ``main(["--quick"])`` from a notebook.

What is measured, and why this way:

* Each server runs in its own child process (multiprocessing, "spawn"),
  binds 127.0.0.1 on port 0 and sends its port back over a pipe. The parent
  sends it "begin" and "end"; the server answers with the CPU seconds its
  whole process used in between (``time.process_time()``: user + sys, every
  thread) and the bytes it received. Messages echoed = bytes / message size,
  and that must equal the count the load process saw come back intact.
* The load is one more process: one selectors loop driving several
  connections (default 8) in ping-pong: each sends one message, waits for its
  whole echo, checks it byte for byte and sends the next, until a message
  count or a time bound is reached. Its own CPU is not counted.
* The peers, all measured in the same run: "raw-selectors", the floor for
  pure Python (DefaultSelector, accept, recv, send, a tiny buffer for partial
  writes: correct but minimal); `EchoServer` with ``record=False`` and
  ``record=True`` (its own loop thread, as users run it); asyncio Protocol;
  asyncio streams; ``socketserver.ThreadingTCPServer``; uvloop Protocol when
  uvloop is installed. An unmeasured warm-up round comes first; then the
  rounds are interleaved (round 1 of every server and size, then round 2...)
  so that a noisy neighbour hurts every server alike.
* The table shows medians over the rounds: µs of server CPU per message,
  the share of it spent in user space (``getrusage``, tick-sampled, so only
  a rough guide), the ratio to the raw loop, and messages per second of wall
  time. Every server's CPU includes its own sleeping and waking: a server that
  keeps up with the load sleeps after most messages, a slower one finds
  several sockets ready per ``select()``.

``--scale`` instead opens ``--connections`` (default 10000) concurrent
connections to one server, in batches that never overflow the listen backlog
(the parent waits until the server has accepted each batch). Each connection
sends a unique payload (16 B to 4 KiB) and checks its echo byte for byte.
It reports the wall time of each phase and the peak memory (``ru_maxrss``) of
the server and of the load process. ``RLIMIT_NOFILE`` is raised to the hard
limit where needed, in both processes.

Every wait has a timeout, the scale run a ``--deadline``, and every child
process is stopped (killed if need be) on the way out. Loopback only; Linux
and macOS (it needs the ``resource`` module).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import io
import json
import multiprocessing
import os
import platform
import random
import selectors
import socket
import socketserver
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
from multiprocessing.connection import Connection
from typing import Any, Protocol

from ..core.timeline import Timeline
from ..driver.implementations import resolve_selector
from ..driver.server import EchoServer

try:
    import resource
except ImportError:  # Windows: no RLIMIT_NOFILE, no getrusage()
    resource = None  # type: ignore[assignment]

__all__ = [
    "SCALE_SERVERS",
    "SERVER_KINDS",
    "TABLE_COLUMNS",
    "BenchOptions",
    "RecordedRun",
    "RecordingCost",
    "Row",
    "Sample",
    "ScaleResult",
    "check_recording",
    "check_scale",
    "check_targets",
    "ensure_nofile",
    "format_scale",
    "format_recording",
    "format_table",
    "format_targets",
    "main",
    "measure_drawing",
    "measure_recording",
    "parse_args",
    "record_scale_run",
    "run_benchmark",
    "run_scale",
]

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
RECV_SIZE = 1 << 16
HOST = "127.0.0.1"

#: Every server the benchmark knows, in table order; "raw-selectors" is the floor.
SERVER_KINDS: tuple[str, ...] = (
    "raw-selectors",
    "echoserver",
    "echoserver-record",
    "asyncio-protocol",
    "asyncio-streams",
    "socketserver-threads",
    "uvloop-protocol",
)
#: The servers a scale run can use: those that can count their open connections.
SCALE_SERVERS: tuple[str, ...] = ("echoserver", "echoserver-record", "raw-selectors")
FLOOR = "raw-selectors"
#: (server, the most CPU per message allowed, as a multiple of the raw loop's).
FLOOR_TARGETS: tuple[tuple[str, float], ...] = (("echoserver", 1.1), ("echoserver-record", 1.25))
#: (server, peer, the most CPU per message allowed, as a multiple of the peer's).
PEER_TARGETS: tuple[tuple[str, str, float], ...] = (("echoserver", "asyncio-protocol", 1.0),)
#: Recording itself: µs per event, bytes per event at steady state, and CPU
#: seconds to draw a million events to a PNG.
RECORD_US_TARGET, RECORD_BYTES_TARGET, DRAW_S_TARGET = 0.3, 48.0, 1.0
DRAW_EVENTS = 1_000_000
#: Connections per source address in the scale run: about a third of the 28,232 ports of
#: Linux's default ephemeral range (32768-60999) for one (source, destination), since
#: finding a free port slows down sharply as the range fills (19,700 from one
#: source took 45 s to connect, 10,000 took 3 s).
PER_SOURCE = 10_000
C100K = 100_000
TABLE_COLUMNS: tuple[str, ...] = (
    "server",
    "size",
    "µs CPU/msg",
    "user %",
    "× raw",
    "msgs/s (wall)",
    "echoed",
)

MAX_PINGPONG_CONNECTIONS = 1000  # one burst of connects, well under every server's backlog
CONNECT_BATCH = 500  # the scale run connects this many at a time
EXTRA_FDS = 256  # selector, pipes, listener, stdio: head room over one fd per connection
#: The unmeasured warm-up round keeps first-use costs out of the numbers:
#: bytecode specialisation, and glibc malloc's mmap threshold, which asyncio's
#: 256 KiB recv() buffers pay for (15 µs per message) until it has risen.
WARMUP_MESSAGES, WARMUP_SECONDS = 2_000, 0.1
REPLY_TIMEOUT = 30.0  # the longest any child may take to answer one command
IDLE_TIMEOUT = 900.0  # a child whose parent stays silent this long gives up


@dataclass(frozen=True)
class BenchOptions:
    """Everything one run depends on (see ``--help`` for each)."""

    rounds: int = 5
    connections: int = 8
    messages: int = 20_000
    seconds: float = 1.5
    sizes: tuple[int, ...] = (64, 16 * 1024)
    servers: tuple[str, ...] = SERVER_KINDS
    selector: str = "default"
    quick: bool = False
    scale: bool = False
    deadline: float = 120.0
    json: str | None = None
    quiet: bool = False


@dataclass(frozen=True)
class Sample:
    """One round of one server at one message size."""

    server: str
    size: int
    cpu_s: float
    user_s: float
    sys_s: float
    sent: int  # messages the load process saw echoed intact
    echoed: int  # messages the server received (bytes / size)
    wall_s: float

    @property
    def us_per_message(self) -> float:
        """Server CPU (user + sys) per echoed message, in µs."""
        return self.cpu_s / max(self.echoed, 1) * 1e6

    @property
    def user_share(self) -> float:
        """The part of the CPU time spent in user space, 0..1 (tick-sampled)."""
        total = self.user_s + self.sys_s
        return self.user_s / total if total > 0 else 0.0


@dataclass(frozen=True)
class Row:
    """Medians over the rounds of one server at one message size."""

    server: str
    size: int
    us_per_message: float | None = None
    user_share: float | None = None
    ratio_to_floor: float | None = None
    messages_per_s: float | None = None
    sent: int = 0
    echoed: int = 0
    note: str = ""
    samples: tuple[Sample, ...] = ()


@dataclass(frozen=True)
class ScaleResult:
    """One scale run: N concurrent connections, each echoing a unique payload."""

    server: str
    selector: str
    connections: int
    payload_bytes: int
    verified: int
    connect_s: float
    echo_s: float
    close_s: float
    wall_s: float
    server_maxrss_kib: int
    load_maxrss_kib: int
    server_cpu_s: float = 0.0  # the server process's CPU over the whole run
    sources: int = 1  # 127.x source addresses the load connected from
    events_recorded: int | None = None  # None: the server did not record
    events_dropped: int | None = None
    bytes_per_event: float | None = None


@dataclass(frozen=True)
class RecordingCost:
    """What recording costs by itself, measured in this process."""

    events: int
    us_per_event: float  # median over the rounds, CPU time, the move into columns included
    bytes_per_event: float  # columns and string table, at steady state (after wraparound)
    draw_events: int = 0
    draw_s: float | None = None  # CPU seconds to plot and write a PNG; None without matplotlib


# -- arguments ------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises `ValueError` instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ValueError(message)


def _positive_int(text: str) -> int:
    """Parse a count of at least 1 (argparse names the option in the error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value!r}")
    return value


def _positive_float(text: str) -> float:
    """Parse a finite number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def _sizes(text: str) -> tuple[int, ...]:
    """Parse ``64,16384`` into message sizes."""
    return tuple(_positive_int(part) for part in text.split(","))


def _servers(text: str) -> tuple[str, ...]:
    """Parse a comma-separated list of server kinds."""
    names = tuple(part.strip() for part in text.split(","))
    for name in names:
        if name not in SERVER_KINDS:
            raise argparse.ArgumentTypeError(
                f"unknown server {name!r}; expected some of {', '.join(SERVER_KINDS)}"
            )
    return names


def _selector(text: str) -> str:
    """Check a selector name (``epoll``, ``poll``, ``default``...) on this platform."""
    try:
        resolve_selector(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _build_parser() -> _Parser:
    """The command line; defaults that depend on --quick or --scale are filled in later."""
    parser = _Parser(prog="python -m echo_lib.bench", description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--quick", action="store_true", help="3 rounds of fewer messages: under 20 s in all")
    add("--rounds", type=_positive_int, help="rounds per server and size (default 5, quick 3)")
    add(
        "--connections",
        type=_positive_int,
        help=f"ping-pong connections (default 8, at most {MAX_PINGPONG_CONNECTIONS}); with --scale, concurrent connections (default 10000)",
    )
    add(
        "--messages",
        type=_positive_int,
        help="messages per round at most (default 20000, quick 5000)",
    )
    add(
        "--seconds",
        type=_positive_float,
        help="seconds per round at most (default 1.5, quick 0.25)",
    )
    add("--sizes", type=_sizes, help="message sizes in bytes, comma-separated (default 64,16384)")
    add("--servers", type=_servers, help=f"comma-separated, from {', '.join(SERVER_KINDS)}")
    add(
        "--selector",
        type=_selector,
        default="default",
        help="selector class for the selectors and asyncio servers, e.g. epoll or poll",
    )
    add(
        "--scale",
        action="store_true",
        help="the scale run instead: --connections concurrent connections, unique payloads",
    )
    add(
        "--deadline",
        type=_positive_float,
        default=120.0,
        help="seconds the whole scale run may take (default 120)",
    )
    add("--json", metavar="PATH", help="also write the results to PATH as JSON")
    add("--quiet", action="store_true", help="no progress lines on stderr")
    return parser


def parse_args(argv: Sequence[str] | None = None) -> BenchOptions:
    """Turn command-line arguments into `BenchOptions`.

    Raises `ValueError` naming the bad argument and its value, e.g. for
    ``--connections 0`` or a server that does not exist.
    """
    ns = _build_parser().parse_args(argv)
    quick, scale = ns.quick, ns.scale
    options = BenchOptions(
        rounds=ns.rounds or (3 if quick else 5),
        connections=ns.connections or (10_000 if scale else 8),
        messages=ns.messages or (5_000 if quick else 20_000),
        seconds=ns.seconds or (0.25 if quick else 1.5),
        sizes=ns.sizes or (64, 16 * 1024),
        servers=ns.servers or (SCALE_SERVERS[:2] if scale else SERVER_KINDS),
        selector=ns.selector,
        quick=quick,
        scale=scale,
        deadline=ns.deadline,
        json=ns.json,
        quiet=ns.quiet,
    )
    _check_combination(options)
    return options


def _check_combination(options: BenchOptions) -> None:
    """Raise `ValueError` for options that are fine alone but not together."""
    if options.scale:
        for name in options.servers:
            if name not in SCALE_SERVERS:
                raise ValueError(
                    f"argument --servers: --scale supports {', '.join(SCALE_SERVERS)}, got {name!r}"
                )
    elif options.connections > MAX_PINGPONG_CONNECTIONS:
        raise ValueError(
            f"argument --connections: the ping-pong benchmark takes at most {MAX_PINGPONG_CONNECTIONS}, "
            f"got {options.connections!r}; add --scale for the scale run"
        )


# -- limits -------------------------------------------------------------------------


def ensure_nofile(needed: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE to the hard limit if it is below ``needed``.

    Returns the soft limit now in force. Raises `RuntimeError` naming both
    numbers when even the hard limit is too low.
    """
    if resource is None:  # Windows: no descriptor limit to raise (select() takes 512 sockets)
        return needed
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return soft
    if hard != resource.RLIM_INFINITY and hard < needed:
        return _raise_hard_nofile(needed, hard)
    target = needed if hard == resource.RLIM_INFINITY else hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def _raise_hard_nofile(needed: int, hard: int) -> int:
    """Raise both limits to ``needed``: allowed to root (CAP_SYS_RESOURCE), up to fs.nr_open on Linux."""
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
    except (ValueError, OSError):
        raise RuntimeError(
            f"{needed} file descriptors are needed per process, but the hard limit RLIMIT_NOFILE "
            f"is {hard} and this process may not raise it (it lacks CAP_SYS_RESOURCE): raise it (ulimit -Hn, as root) "
            f"or use at most {max(hard - EXTRA_FDS, 1)} --connections"
        ) from None
    return needed


def _nofile_for(connections: int) -> int:
    """File descriptors one process needs for ``connections`` sockets."""
    return connections + EXTRA_FDS


def _maxrss_kib() -> int:
    """This process's peak resident memory in KiB (macOS reports bytes).

    Raises `RuntimeError` on Windows, which has no `resource` module.
    """
    if resource is None:
        raise RuntimeError(
            f"peak memory needs the resource module, which {sys.platform} does not have"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def _user_sys() -> tuple[float, float]:
    """User and system CPU seconds of this process (the split is tick-sampled)."""
    if resource is None:  # Windows: os.times() has the same two numbers
        times = os.times()
        return times.user, times.system
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


# -- the servers (each runs inside its own child process) ----------------------------


class _Served(Protocol):
    """What the server process needs from each kind of server."""

    port: int

    def received(self) -> int: ...

    def connections(self) -> int: ...

    def close(self) -> None: ...


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


def _listener() -> socket.socket:
    """A non-blocking listening socket on 127.0.0.1 and a free port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HOST, 0))
    sock.listen(socket.SOMAXCONN)
    sock.setblocking(False)
    return sock


class _RawServer:
    """The floor: a minimal but correct selectors echo loop, in one thread.

    recv() once and send() at once; only when the kernel takes part of it is
    the rest kept (a tiny per-socket buffer) and EVENT_WRITE asked for, and
    reading pauses until it is flushed. A wakeup socketpair stops the loop.
    """

    def __init__(self, selector: str) -> None:
        self.listener, self.total = _listener(), 0
        self.port: int = self.listener.getsockname()[1]
        self.sel = resolve_selector(selector)()
        self._wake_r, self._wake_w = socket.socketpair()
        self._rest: dict[socket.socket, bytes] = {}
        self.sel.register(self.listener, READ, self._accept)
        self.sel.register(self._wake_r, READ, None)
        self._thread = threading.Thread(target=self._run, name="bench-raw", daemon=True)
        self._thread.start()

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
        """Wake the loop to stop, then close every socket and the selector."""
        self._wake_w.send(b"\0")
        self._thread.join(REPLY_TIMEOUT)
        for key in list(self.sel.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self.sel.close()
        self._wake_w.close()


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
        self._thread = threading.Thread(target=loop.run_forever, name="bench-asyncio", daemon=True)
        self._thread.start()

    async def _listen(self, streams: bool) -> asyncio.Server:
        """Listen with the same backlog as the others (asyncio's default is 100)."""
        if streams:
            return await asyncio.start_server(self._echo_stream, HOST, 0, backlog=socket.SOMAXCONN)
        return await self.loop.create_server(
            lambda: _EchoProtocol(self), HOST, 0, backlog=socket.SOMAXCONN
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
        self._thread.join(REPLY_TIMEOUT)
        self.server.close()
        self.loop.close()


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
        super().__init__((HOST, 0), _EchoHandler)
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
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="bench-threads", daemon=True
        )
        self._thread.start()

    def received(self) -> int:
        """Bytes received so far, over every handler."""
        return sum(tally[0] for tally in list(self.server.tallies))

    def connections(self) -> int:
        """Not counted here; the scale run uses the selectors servers."""
        raise NotImplementedError("socketserver does not count its connections here")

    def close(self) -> None:
        """Stop serve_forever() and close the listener."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(REPLY_TIMEOUT)


def _new_loop(kind: str, selector: str) -> asyncio.AbstractEventLoop:
    """A uvloop loop, or an asyncio selector loop on ``selector``."""
    if kind.startswith("uvloop"):
        import uvloop  # optional: only this row needs it

        return uvloop.new_event_loop()
    return asyncio.SelectorEventLoop(resolve_selector(selector)())


def _start_server(kind: str, selector: str, keep_all: bool = False) -> _Served:
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


# -- the child processes' command loops ----------------------------------------------


def _send_error(conn: Connection, exc: BaseException) -> None:
    """Tell the parent why this child failed, if it still listens."""
    try:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    except OSError:
        pass  # the parent is gone: nobody to tell


def _commands(conn: Connection) -> Iterator[tuple[Any, ...]]:
    """Each command from the parent, until "quit", EOF, or IDLE_TIMEOUT of silence."""
    while conn.poll(IDLE_TIMEOUT):
        try:
            message = conn.recv()
        except EOFError:
            return
        if message[0] == "quit":
            return
        yield message


def _server_process(
    conn: Connection, kind: str, selector: str, nofile: int, keep_all: bool = False
) -> None:
    """Child process: start the server, send its port, then answer commands."""
    server: _Served | None = None
    try:
        ensure_nofile(nofile)
        server = _start_server(kind, selector, keep_all)
        conn.send(("ok", server.port))
        _server_commands(server, conn)
    except BaseException as exc:  # reported to the parent, which raises it
        _send_error(conn, exc)
    finally:
        if server is not None:
            server.close()
        conn.close()


def _server_commands(server: _Served, conn: Connection) -> None:
    """ "begin"/"end" measure CPU and bytes between them; the rest serve the scale run."""
    mark = (0.0, 0.0, 0.0, 0)
    for command, *args in _commands(conn):
        if command == "begin":
            mark = (time.process_time(), *_user_sys(), server.received())
            conn.send(("ok",))
        elif command == "end":
            now = (time.process_time(), *_user_sys(), server.received())
            conn.send(("ok", *(b - a for a, b in zip(mark, now))))
        elif command == "wait_connections":
            conn.send(("ok", _wait_connections(server.connections, *args)))
        elif command == "maxrss":
            conn.send(("ok", _maxrss_kib()))
        elif command == "timeline":
            stats = getattr(server, "timeline_stats", None)
            conn.send(("ok", stats() if stats is not None else None))
        else:
            raise ValueError(f"unknown server command {command!r}")


def _wait_connections(open_now: Callable[[], int], count: int, timeout: float) -> int:
    """Wait until ``open_now()`` (a server's open connections) is exactly ``count``."""
    deadline, pause = time.monotonic() + timeout, threading.Event()
    while (now := open_now()) != count:
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"the server has {now} connections, not {count}, after {timeout:.1f} s"
            )
        pause.wait(0.002)
    return now


# -- the load process -----------------------------------------------------------------


def _payload(index: int, size: int) -> bytes:
    """``size`` bytes that start with the connection's number: no two alike."""
    head = b"%d:" % index
    return (head + random.Random(index).randbytes(max(size - len(head), 0)))[:size]


def _scale_size(index: int) -> int:
    """Payload sizes of the scale run: 16 B to about 4 KiB, spread evenly."""
    return 16 + (index * 7919) % 4096


class _Pinger:
    """One load connection: its number and payload, what is still to send, what came back."""

    __slots__ = ("index", "sock", "payload", "rest", "got")

    def __init__(self, index: int, sock: socket.socket, payload: bytes) -> None:
        self.index, self.sock, self.payload, self.rest, self.got = (
            index,
            sock,
            payload,
            b"",
            bytearray(),
        )


class _PingPong:
    """Ping-pong on many non-blocking sockets from one selectors loop.

    Each connection sends its payload, waits for the whole echo, checks it
    byte for byte, and sends again, while the message budget and the time
    bound allow. Raises `TimeoutError` when nothing arrives for ``timeout``
    seconds, `ValueError` for a wrong echo, `ConnectionError` for an early EOF.
    """

    def __init__(self, socks: list[socket.socket], payloads: list[bytes]) -> None:
        self.sel = selectors.DefaultSelector()
        for index, (sock, payload) in enumerate(zip(socks, payloads)):
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
                f"connection {pinger.index}: the server closed it after {len(pinger.got)} bytes of echo"
            )
        pinger.got += chunk
        if len(pinger.got) >= len(pinger.payload):
            if pinger.got != pinger.payload:
                raise ValueError(
                    f"wrong echo on connection {pinger.index}: sent {len(pinger.payload)} bytes, got {len(pinger.got)} that differ"
                )
            pinger.got.clear()
            self.done += 1
            self.busy -= 1
            self._next(pinger)


def _source_address(index: int) -> str | None:
    """The source address of load connection ``index``: 127.0.0.2, .3, ... on Linux, a new one every
    `PER_SOURCE` connections, so that 100,000 connections get past the ephemeral port range; None elsewhere
    (macOS has only 127.0.0.1 unless more are configured)."""
    return f"127.0.0.{2 + index // PER_SOURCE}" if sys.platform.startswith("linux") else None


def _connect_batch(port: int, count: int, timeout: float, first: int = 0) -> list[socket.socket]:
    """Open connections ``first`` .. ``first + count - 1`` at once (non-blocking connects); all or none."""
    socks: list[socket.socket] = []
    try:
        with selectors.DefaultSelector() as sel:
            for index in range(first, first + count):
                socks.append(_start_connect(port, _source_address(index)))
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
    sock.connect_ex((HOST, port))  # EINPROGRESS; the outcome is read once writable
    return sock


def _finish_connects(sel: selectors.BaseSelector, port: int, timeout: float) -> None:
    """Wait until every registered socket has connected; raise if one failed."""
    while sel.get_map():
        ready = sel.select(timeout)
        if not ready:
            raise TimeoutError(
                f"{len(sel.get_map())} connects to {HOST}:{port} unfinished after {timeout:g} s"
            )
        for key, _ in ready:
            error = key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)  # type: ignore[union-attr]
            if error:
                raise ConnectionError(f"connect to {HOST}:{port} failed: {os.strerror(error)}")
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
                        f"{len(sel.get_map())} connections not closed by the server after {timeout:g} s"
                    )
                for key, _ in ready:
                    if key.fileobj.recv(RECV_SIZE):  # type: ignore[union-attr]
                        raise ValueError("the server sent bytes after the last echo")
                    sel.unregister(key.fileobj)
    finally:
        for sock in socks:
            sock.close()


class _Load:
    """The load process's state: its open connections."""

    def __init__(self) -> None:
        self.socks: list[socket.socket] = []

    def connect(self, port: int, count: int, timeout: float) -> int:
        """Open ``count`` more connections; return how many are open."""
        self.socks += _connect_batch(port, count, timeout, len(self.socks))
        return len(self.socks)

    def exchange(
        self, size: int | None, count: int, seconds: float, timeout: float
    ) -> tuple[int, float]:
        """Ping-pong on every connection; ``size=None`` gives each its own scale-run size."""
        sizes = [size or _scale_size(i) for i in range(len(self.socks))]
        payloads = [_payload(i, n) for i, n in enumerate(sizes)]
        return _PingPong(self.socks, payloads).run(count, seconds, timeout)

    def close(self, timeout: float) -> int:
        """Close every connection cleanly; return how many."""
        socks, self.socks = self.socks, []
        _close_all(socks, timeout)
        return len(socks)

    def maxrss(self) -> int:
        """Peak resident memory of the load process, in KiB."""
        return _maxrss_kib()


def _load_process(conn: Connection, nofile: int) -> None:
    """Child process: run the parent's load commands ("connect", "exchange", ...)."""
    load = _Load()
    try:
        ensure_nofile(nofile)
        conn.send(("ok",))
        for command, *args in _commands(conn):
            if command not in ("connect", "exchange", "close", "maxrss"):
                raise ValueError(f"unknown load command {command!r}")
            conn.send(("ok", getattr(load, command)(*args)))
    except BaseException as exc:  # reported to the parent, which raises it
        _send_error(conn, exc)
    finally:
        for sock in load.socks:
            sock.close()
        conn.close()


# -- the parent's side: children ------------------------------------------------------


class _Child:
    """A child process ("spawn") and the parent's end of its pipe."""

    def __init__(self, name: str, target: Callable[..., None], *args: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self.name = name
        self.conn, child_end = context.Pipe()
        self.process = context.Process(
            target=target, args=(child_end, *args), name=name, daemon=True
        )
        self.process.start()
        child_end.close()

    def call(self, *message: Any, timeout: float = REPLY_TIMEOUT) -> Any:
        """Send a command and return its answer (see `answer`)."""
        self.conn.send(message)
        return self.answer(str(message[0]), timeout)

    def answer(self, what: str, timeout: float = REPLY_TIMEOUT) -> Any:
        """The child's answer. Raises `TimeoutError`, or `RuntimeError` if it failed or died."""
        if not self.conn.poll(timeout):
            raise TimeoutError(f"{self.name} gave no answer to {what!r} within {timeout:g} s")
        try:
            reply = self.conn.recv()
        except EOFError:
            self.process.join(1.0)
            raise RuntimeError(
                f"{self.name} exited (code {self.process.exitcode}) during {what!r}"
            ) from None
        if reply[0] == "error":
            raise RuntimeError(f"{self.name} failed during {what!r}: {reply[1]}")
        return reply[1] if len(reply) == 2 else tuple(reply[1:])

    def request_quit(self) -> None:
        """Ask the child to quit, without waiting."""
        try:
            self.conn.send(("quit",))
        except OSError:
            pass  # already gone

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the child to quit; kill it if it has not ended within ``timeout``."""
        self.request_quit()
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout)
        self.conn.close()


def _stop_all(children: Iterable[_Child]) -> None:
    """Stop children in parallel: ask them all to quit, then wait for (or kill) each."""
    children = list(children)
    for child in children:
        child.request_quit()
    for child in children:
        child.stop()


def _start_children(
    stack: ExitStack, kinds: Sequence[str], selector: str, nofile: int
) -> tuple[_Child, dict[str, _Child], dict[str, int]]:
    """Start the load and every server at once; they are stopped when ``stack`` closes.

    Returns the load, the servers by kind, and their ports by kind.
    """
    servers: dict[str, _Child] = {}
    stack.callback(_stop_all, servers.values())
    for kind in kinds:
        servers[kind] = _Child(f"server {kind!r}", _server_process, kind, selector, nofile)
    load = _Child("load process", _load_process, nofile)
    stack.callback(load.stop)
    load.answer("start")
    return load, servers, {kind: child.answer("start") for kind, child in servers.items()}


# -- the benchmark --------------------------------------------------------------------


def _available(kind: str) -> bool:
    """False only for uvloop when it is not installed."""
    return not kind.startswith("uvloop") or importlib.util.find_spec("uvloop") is not None


def _measure(
    server: _Child, load: _Child, kind: str, port: int, size: int, options: BenchOptions
) -> Sample:
    """One round: connect, warm up, then CPU and counts over the measured exchange, close."""
    timeout = options.seconds + REPLY_TIMEOUT
    load.call("connect", port, options.connections, REPLY_TIMEOUT / 2)
    load.call(
        "exchange", size, 2 * options.connections, timeout, REPLY_TIMEOUT / 2, timeout=timeout
    )
    server.call("begin")
    sent, wall = load.call(
        "exchange", size, options.messages, options.seconds, REPLY_TIMEOUT / 2, timeout=timeout
    )
    cpu, user, system, received = server.call("end")
    load.call("close", REPLY_TIMEOUT / 2)
    return Sample(kind, size, cpu, user, system, sent, int(received) // size, wall)


def run_benchmark(
    options: BenchOptions, progress: Callable[[str], None] | None = None
) -> list[Row]:
    """Measure every available server in ``options``; return one `Row` per server and size.

    An unmeasured warm-up round first, then the rounds, interleaved. Raises
    `RuntimeError` naming the limit if the file descriptors do not suffice,
    and `RuntimeError` or `TimeoutError` naming a child that fails or hangs.
    """
    kinds = [kind for kind in options.servers if _available(kind)]
    nofile = _nofile_for(options.connections)
    ensure_nofile(nofile)  # fails early, naming the limit
    with ExitStack() as stack:
        load, servers, ports = _start_children(stack, kinds, options.selector, nofile)
        warm = replace(
            options,
            messages=min(options.messages, WARMUP_MESSAGES),
            seconds=min(options.seconds, WARMUP_SECONDS),
        )
        for size in options.sizes:
            for kind in kinds:
                _measure(servers[kind], load, kind, ports[kind], size, warm)
        samples = []
        for number in range(1, options.rounds + 1):
            for size in options.sizes:
                for kind in kinds:
                    samples.append(_measure(servers[kind], load, kind, ports[kind], size, options))
                    if progress:
                        progress(_progress_line(number, options.rounds, samples[-1]))
    return _summarise(samples, options)


def _progress_line(number: int, rounds: int, sample: Sample) -> str:
    """One line per measurement, for stderr."""
    return (
        f"round {number}/{rounds}  {sample.server:<22} {_size_name(sample.size):>8}"
        f"  {sample.us_per_message:8.1f} µs/msg  ({sample.user_share:.0%} user)"
    )


def _summarise(samples: list[Sample], options: BenchOptions) -> list[Row]:
    """One `Row` per size and server, in table order."""
    rows = []
    for size in options.sizes:
        floor = _median_us(samples, FLOOR, size)
        for kind in options.servers:
            mine = tuple(s for s in samples if s.server == kind and s.size == size)
            rows.append(_row(kind, size, mine, floor))
    return rows


def _row(kind: str, size: int, mine: tuple[Sample, ...], floor: float | None) -> Row:
    """The medians of one server's samples at one size, and whether the counts agree."""
    if not mine:
        return Row(kind, size, note="not installed" if not _available(kind) else "not measured")
    us = statistics.median(s.us_per_message for s in mine)
    user = statistics.median(s.user_share for s in mine)
    rate = statistics.median(s.sent / s.wall_s for s in mine)
    sent, echoed = sum(s.sent for s in mine), sum(s.echoed for s in mine)
    note = "" if sent == echoed else f"COUNT MISMATCH: load {sent}, server {echoed}"
    return Row(kind, size, us, user, us / floor if floor else None, rate, sent, echoed, note, mine)


def _median_us(samples: list[Sample], kind: str, size: int) -> float | None:
    """The median µs per message of one server at one size, if measured."""
    mine = [s.us_per_message for s in samples if s.server == kind and s.size == size]
    return statistics.median(mine) if mine else None


def _size_name(size: int) -> str:
    """``64 B``, ``16 KiB``."""
    return f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} B"


def format_table(rows: Sequence[Row]) -> str:
    """The results as a fixed-width text table, one line per server and size."""
    lines = [_line(TABLE_COLUMNS)]
    for row in rows:
        if row.us_per_message is None:
            lines.append(f"{row.server:<22}{_size_name(row.size):>8}  {row.note}")
            continue
        ratio = f"{row.ratio_to_floor:.2f}" if row.ratio_to_floor is not None else "n/a"
        echoed = f"{row.echoed}/{row.sent}" + (" MISMATCH" if row.note else "")
        cells = (
            f"{row.us_per_message:.1f}",
            f"{row.user_share:.0%}",
            ratio,
            f"{row.messages_per_s:,.0f}",
            echoed,
        )
        lines.append(_line((row.server, _size_name(row.size), *cells)))
    return "\n".join(lines)


def _line(cells: Sequence[str]) -> str:
    """One table line: the server left-aligned, the rest right-aligned."""
    widths = (8, 13, 8, 7, 15, 15)
    return f"{cells[0]:<22}" + "".join(f"{cell:>{width}}" for cell, width in zip(cells[1:], widths))


def check_targets(rows: Sequence[Row]) -> list[tuple[str, bool | None, str]]:
    """Each target as (description, met, the numbers); met is None if not measured."""
    by = {(row.server, row.size): row for row in rows}
    results = []
    for size in sorted({row.size for row in rows}):
        for kind, limit in FLOOR_TARGETS:
            ratio = getattr(by.get((kind, size)), "ratio_to_floor", None)
            text = f"{kind} ≤ {limit:g}× {FLOOR} CPU/msg at {_size_name(size)}"
            results.append(_verdict(text, ratio, ratio is not None and ratio <= limit, "×"))
        for kind, peer, limit in PEER_TARGETS:
            theirs, mine = _us(by, peer, size), _us(by, kind, size)
            ratio = mine / theirs if theirs and mine else None
            text = f"{kind} ≤ {limit:g}× {peer} CPU/msg at {_size_name(size)}"
            results.append(_verdict(text, ratio, ratio is not None and ratio <= limit, "×"))
    return results


def check_recording(cost: RecordingCost) -> list[tuple[str, bool | None, str]]:
    """The recording targets as (description, met, the numbers)."""
    return [
        _verdict(
            f"Timeline.record ≤ {RECORD_US_TARGET} µs/event",
            cost.us_per_event,
            cost.us_per_event <= RECORD_US_TARGET,
            " µs",
        ),
        _verdict(
            f"Timeline storage ≤ {RECORD_BYTES_TARGET:.0f} bytes/event",
            cost.bytes_per_event,
            cost.bytes_per_event <= RECORD_BYTES_TARGET,
            " B",
        ),
        _verdict(
            f"plot_timeline of {cost.draw_events:,} events to PNG ≤ {DRAW_S_TARGET:.0f} s CPU",
            cost.draw_s,
            cost.draw_s is not None and cost.draw_s <= DRAW_S_TARGET,
            " s",
        ),
    ]


def _us(by: dict[tuple[str, int], Row], kind: str, size: int) -> float | None:
    """The median µs per message of one row, if there is one."""
    row = by.get((kind, size))
    return row.us_per_message if row is not None else None


def _verdict(text: str, value: float | None, met: bool, unit: str) -> tuple[str, bool | None, str]:
    """(text, met or None when not measured, the value with its unit)."""
    if value is None:
        return text, None, "not measured"
    return text, met, f"{value:.2f}{unit}"


def format_targets(
    rows: Sequence[Row], verdicts: Sequence[tuple[str, bool | None, str]] = ()
) -> str:
    """One line per target (those of ``rows``, then ``verdicts``): met, MISSED or n/a (not measured)."""
    marks = {True: "met   ", False: "MISSED", None: "n/a   "}
    return "\n".join(
        f"{marks[met]}  {text}: {numbers}"
        for text, met, numbers in [*check_targets(rows), *verdicts]
    )


# -- recording by itself ----------------------------------------------------------------


def _record_messages(timeline: Timeline, messages: int) -> None:
    """The four events a recording EchoServer makes per echoed 64 B message, on 8 connections."""
    record = timeline.record
    peers = [(f"server/conn-{n}", 10 + n) for n in range(1, 9)]
    for _ in range(messages // len(peers)):
        for actor, fd in peers:
            record("server", "select", -1, 0, 1, "wait, 1 ready")
            record(actor, "ready", fd, READ)
            record(actor, "recv", fd, 0, 64)
            record(actor, "send", fd, 0, 64, "")


def measure_recording(events: int = 400_000, rounds: int = 5) -> RecordingCost:
    """CPU per event of `Timeline.record` (median of ``rounds``) and storage per event.

    Each round records ``events`` into a timeline that keeps a quarter of
    them, so the oldest are dropped (steady state); the clock stops after the
    pending events have been moved into the columns.
    """
    times, sizes = [], []
    for _ in range(rounds):
        timeline = Timeline(maxlen=events // 4)
        start = time.process_time()
        _record_messages(timeline, events // 4)
        len(timeline)  # moves what is pending: part of the cost
        times.append((time.process_time() - start) / events * 1e6)
        sizes.append(timeline.storage_bytes() / len(timeline))
    return RecordingCost(events, statistics.median(times), statistics.median(sizes))


def measure_drawing(events: int = DRAW_EVENTS) -> float | None:
    """CPU seconds for `plot_timeline` of ``events`` events on 10,000 actors, written as a PNG.

    None when matplotlib is not installed. Uses a `Figure` of its own, never
    pyplot, so that it leaves a notebook's backend alone.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return None
    from ..view.plotting import plot_timeline

    timeline = Timeline(maxlen=None)
    record = timeline.record
    for n in range(events):
        record(f"server/conn-{n % 10_000}", ("ready", "recv", "send")[n % 3], n % 10_000, 0, 64)
    start = time.process_time()
    figure = Figure(figsize=(10.0, 14.0), layout="constrained")
    plot_timeline(timeline, figure.add_subplot(), title=f"{events:,} events")
    figure.savefig(io.BytesIO(), format="png")
    return time.process_time() - start


# -- the scale run --------------------------------------------------------------------


def run_scale(
    options: BenchOptions, kind: str = "echoserver", progress: Callable[[str], None] | None = None
) -> ScaleResult:
    """``options.connections`` concurrent connections to one server, each echoing a unique payload.

    Raises `RuntimeError` naming the limit if the file descriptors do not
    suffice or if a child fails (a wrong echo names its connection), and
    `TimeoutError` once ``options.deadline`` seconds have passed.
    """
    nofile, stop_at = _nofile_for(options.connections), time.monotonic() + options.deadline
    ensure_nofile(nofile)  # fails early, naming the limit
    with ExitStack() as stack:
        server = _Child(f"server {kind!r}", _server_process, kind, options.selector, nofile, True)
        stack.callback(server.stop)
        load = _Child("load process", _load_process, nofile)
        stack.callback(load.stop)
        port, _ = server.answer("start"), load.answer("start")
        server.call("begin")
        times, verified = _scale_phases(
            _remote_wait(server), load, port, options.connections, stop_at, progress
        )
        cpu_s, stats = server.call("end")[0], server.call("timeline")
        peaks = (
            server.call("maxrss"),
            load.call("maxrss"),
        )  # ru_maxrss: the peak, also after closing
    connect_s, echo_s, close_s = (b - a for a, b in zip(times, times[1:]))
    n = options.connections
    recorded = (
        (stats[0], stats[1], stats[2] / max(stats[0] - stats[1], 1))
        if stats
        else (None, None, None)
    )
    sources = len({_source_address(index) for index in range(0, n, PER_SOURCE)})
    return ScaleResult(
        kind,
        resolve_selector(options.selector).__name__,
        n,
        sum(_scale_size(i) for i in range(n)),
        verified,
        connect_s,
        echo_s,
        close_s,
        times[-1] - times[0],
        *peaks,
        cpu_s,
        sources,
        *recorded,
    )


_WaitOpen = Callable[
    [int, float], int
]  # (count, timeout): wait until the server has count connections


def _remote_wait(server: _Child) -> _WaitOpen:
    """`_WaitOpen` for a server in a child process."""
    return lambda count, timeout: server.call(
        "wait_connections", count, timeout, timeout=timeout + REPLY_TIMEOUT
    )


def _scale_phases(
    wait_open: _WaitOpen,
    load: _Child,
    port: int,
    n: int,
    stop_at: float,
    progress: Callable[[str], None] | None,
) -> tuple[list[float], int]:
    """Connect, echo, close; return the times between the phases and the count verified."""
    times = [time.perf_counter()]
    _scale_connect(wait_open, load, port, n, stop_at, progress)
    times.append(time.perf_counter())
    verified, _ = load.call(
        "exchange", None, n, _left(stop_at), REPLY_TIMEOUT, timeout=_left(stop_at)
    )
    times.append(time.perf_counter())
    load.call("close", min(_left(stop_at), REPLY_TIMEOUT), timeout=_left(stop_at))
    wait_open(0, min(_left(stop_at), REPLY_TIMEOUT))
    times.append(time.perf_counter())
    return times, verified


def _scale_connect(
    wait_open: _WaitOpen,
    load: _Child,
    port: int,
    n: int,
    stop_at: float,
    progress: Callable[[str], None] | None,
) -> None:
    """Connect in batches; after each, wait until the server has accepted them all."""
    total = 0
    while total < n:
        batch = min(CONNECT_BATCH, n - total)
        total = load.call(
            "connect", port, batch, min(_left(stop_at), REPLY_TIMEOUT), timeout=_left(stop_at)
        )
        wait_open(total, min(_left(stop_at), REPLY_TIMEOUT))
        if progress and (total % 2000 == 0 or total == n):
            progress(f"{total} connections open")


@dataclass(frozen=True)
class RecordedRun:
    """A scale run whose server ran in this process, recording into ``timeline``."""

    connections: int
    verified: int  # connections whose unique payload came back byte-exact
    payload_bytes: int
    phase_s: dict[str, float]  # wall seconds of "connect", "echo" and "close"
    timeline: Timeline

    def __str__(self) -> str:
        """What happened, without times: the same on every run that succeeds."""
        events = self.timeline.events()  # once: a 10,000-connection run has about 92,000
        accepts = sum(event.action == "accept" for event in events)
        moved = {
            action: sum(e.nbytes for e in events if e.action == action)
            for action in ("recv", "send")
        }
        closes = sum(e.action == "close" and "/" in e.actor for e in events)  # not the listener's
        return (
            f"{self.verified:,}/{self.connections:,} connections echoed {self.payload_bytes:,} bytes byte-exact\n"
            f"recorded: {accepts:,} accepts, {moved['recv']:,} bytes in and {moved['send']:,} out, "
            f"{closes:,} connections closed; {self.timeline.dropped} events dropped"
        )


def record_scale_run(
    connections: int = 10_000,
    *,
    selector: str = "default",
    deadline: float = 60.0,
    timeline: Timeline | None = None,
) -> RecordedRun:
    """``connections`` concurrent connections to an `EchoServer` in this process, every event recorded.

    The server runs in its own loop thread here and records into ``timeline``
    (by default a new one that keeps every event); the load runs in a child
    process, as in the scale run: connect in batches, echo one unique payload
    per connection, close. Raises `ValueError` for fewer than 1 connection,
    `RuntimeError` naming the limit when the file descriptors do not suffice
    or the load fails, and `TimeoutError` after ``deadline`` seconds.
    """
    if isinstance(connections, bool) or not isinstance(connections, int) or connections < 1:
        raise ValueError(f"connections must be a positive int, got {connections!r}")
    nofile, stop_at = _nofile_for(connections), time.monotonic() + deadline
    ensure_nofile(nofile)
    timeline = timeline if timeline is not None else Timeline(maxlen=None)
    with ExitStack() as stack:
        server = stack.enter_context(EchoServer(selector=selector, timeline=timeline))
        load = _Child("load process", _load_process, nofile)
        stack.callback(load.stop)
        load.answer("start")
        wait_open = lambda count, timeout: _wait_connections(
            lambda: server.connections, count, timeout
        )  # noqa: E731
        times, verified = _scale_phases(
            wait_open, load, server.address[1], connections, stop_at, None
        )  # type: ignore[index]
    phases = dict(zip(("connect", "echo", "close"), (b - a for a, b in zip(times, times[1:]))))
    return RecordedRun(
        connections, verified, sum(_scale_size(i) for i in range(connections)), phases, timeline
    )


def _left(stop_at: float) -> float:
    """Seconds left before the deadline. Raises `TimeoutError` once it has passed."""
    left = stop_at - time.monotonic()
    if left <= 0:
        raise TimeoutError("the scale run passed its --deadline")
    return left


def format_scale(result: ScaleResult) -> str:
    """A short report of one scale run."""
    recorded = (
        "  not recording"
        if result.events_recorded is None
        else f"  recorded {result.events_recorded:,} events ({result.events_dropped:,} dropped), "
        f"{result.bytes_per_event:.1f} bytes per event"
    )
    return (
        f"{result.server} on {result.selector}: {result.verified}/{result.connections} connections echoed "
        f"{result.payload_bytes:,} bytes byte-exact, from {result.sources} source address(es)\n"
        f"  wall {result.wall_s:.2f} s (connect {result.connect_s:.2f} s, echo {result.echo_s:.2f} s, "
        f"close {result.close_s:.2f} s); server CPU {result.server_cpu_s:.2f} s\n"
        f"  peak RSS: server {result.server_maxrss_kib / 1024:.1f} MiB, load {result.load_maxrss_kib / 1024:.1f} MiB\n"
        f"{recorded}"
    )


def check_scale(results: Sequence[ScaleResult]) -> list[tuple[str, bool | None, str]]:
    """The scale targets: recording overhead, nothing dropped, bytes per event, C100K."""
    by = {result.server: result for result in results}
    plain, recording = by.get("echoserver"), by.get("echoserver-record")
    overhead = (
        recording.server_cpu_s / plain.server_cpu_s
        if plain and recording and plain.server_cpu_s
        else None
    )
    kept = recording.events_dropped == 0 if recording else False
    per_event = recording.bytes_per_event if recording else None
    c100k = (
        recording is not None
        and recording.connections >= C100K
        and recording.verified == recording.connections
        and kept
    )
    return [
        _verdict(
            "recording overhead ≤ 1.25× server CPU (echoserver-record / echoserver, whole run)",
            overhead,
            overhead is not None and overhead <= FLOOR_TARGETS[1][1],
            "×",
        ),
        (
            "the recording server keeps every event",
            kept if recording else None,
            f"{recording.events_recorded:,} recorded, {recording.events_dropped:,} dropped"
            if recording
            else "not measured",
        ),
        _verdict(
            f"≤ {RECORD_BYTES_TARGET:.0f} bytes per recorded event",
            per_event,
            per_event is not None and per_event <= RECORD_BYTES_TARGET,
            " B",
        ),
        (
            f"C100K: {C100K:,} concurrent connections, byte-exact, recorded",
            c100k if recording and recording.connections >= C100K else None,
            f"{recording.verified:,}/{recording.connections:,} connections"
            if recording
            else "not measured",
        ),
    ]


# -- the command line -----------------------------------------------------------------


def _machine() -> dict[str, Any]:
    """What the numbers depend on, for the JSON file."""
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "rlimit_nofile": resource.getrlimit(resource.RLIMIT_NOFILE)
        if resource is not None
        else None,  # (soft, hard)
        "uvloop": "installed"
        if importlib.util.find_spec("uvloop") is not None
        else "not installed",
    }


def _write_json(path: str, options: BenchOptions, results: dict[str, Any]) -> None:
    """Write the options, the machine and the results to ``path``."""
    document = {"options": asdict(options), "machine": _machine(), **results}
    with open(path, "w", encoding="utf-8") as out:
        json.dump(document, out, indent=2, default=str)
        out.write("\n")


def _run_bench_command(
    options: BenchOptions, progress: Callable[[str], None] | None
) -> dict[str, Any]:
    """Run the benchmark, print the table and the targets; return the JSON results.

    Recording by itself (and drawing) is measured when echoserver-record is
    among the servers.
    """
    start, load_before = time.perf_counter(), os.getloadavg()[0]
    rows = run_benchmark(options, progress)
    cost = None
    if "echoserver-record" in options.servers:
        cost = replace(
            measure_recording(100_000 if options.quick else 400_000),
            draw_events=DRAW_EVENTS,
            draw_s=measure_drawing(),
        )
    verdicts = check_recording(cost) if cost is not None else []
    print(
        format_table(rows),
        *([format_recording(cost)] if cost else []),
        format_targets(rows, verdicts),
        sep="\n\n",
    )
    print(
        f"\n{options.rounds} rounds of at most {options.messages} messages or {options.seconds:g} s, "
        f"{options.connections} connections, in {time.perf_counter() - start:.1f} s "
        f"(load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after)"
    )
    targets = [
        {"target": text, "met": met, "value": value}
        for text, met, value in [*check_targets(rows), *verdicts]
    ]
    return {
        "rows": [asdict(row) for row in rows],
        "recording": asdict(cost) if cost else None,
        "targets": targets,
    }


def format_recording(cost: RecordingCost) -> str:
    """Recording by itself, in two lines."""
    drawn = (
        f"{cost.draw_s:.2f} s CPU" if cost.draw_s is not None else "not measured (no matplotlib)"
    )
    return (
        f"recording: {cost.us_per_event:.3f} µs and {cost.bytes_per_event:.1f} bytes per event "
        f"(median of rounds of {cost.events:,} events, oldest dropped)\n"
        f"drawing: plot_timeline of {cost.draw_events:,} events to a PNG in {drawn}"
    )


def _run_scale_command(
    options: BenchOptions, progress: Callable[[str], None] | None
) -> dict[str, Any]:
    """Run the scale run once per server; print each report and the targets; return the JSON results."""
    results = []
    for kind in options.servers:
        results.append(run_scale(options, kind, progress))
        print(format_scale(results[-1]))
    verdicts = check_scale(results)
    print("\n" + format_targets([], verdicts))
    targets = [{"target": text, "met": met, "value": value} for text, met, value in verdicts]
    return {"scale": [asdict(result) for result in results], "targets": targets}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or the scale run) and print the results; return the exit status.

    2 for bad arguments, 1 if the run fails; the reason goes to stderr.
    """
    try:
        options = parse_args(argv)
    except ValueError as exc:
        print(f"python -m echo_lib.bench: error: {exc}", file=sys.stderr)
        return 2
    progress = None if options.quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    try:
        command = _run_scale_command if options.scale else _run_bench_command
        results = command(options, progress)
    except (RuntimeError, TimeoutError, OSError) as exc:
        print(f"python -m echo_lib.bench: error: {exc}", file=sys.stderr)
        return 1
    if options.json:
        _write_json(options.json, options, results)
    return 0
