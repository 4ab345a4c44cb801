"""Run a learner's ``serve(listener, stop)`` and drive clients at it: the harness of 09 and 11.

The contract, so that a server can be tested from outside: ``serve(listener,
stop, selector=None)`` runs its own selector loop until ``stop`` (a
`threading.Event`) is set, then unregisters and closes everything it opened,
closes its selector, and returns. ``listener`` is a bound, listening,
non-blocking TCP socket on 127.0.0.1 that the harness owns and closes.

The harness hands the learner a `TrackingSelector` (a `RecordingSelector`
that also remembers every file object registered with it): as the
``selector`` argument when ``serve`` accepts one, or else as what the first
``selectors.DefaultSelector()`` call returns while the server starts. From
it come the timeline, the count of ``select()`` wake-ups, the sockets left
open and the keys left registered. The server's CPU time is read from its
thread's CPU clock (``time.pthread_getcpuclockid``, where the platform has
it).

Clients are plain non-blocking sockets driven by one selector in the
checker's thread, so the checker never blocks: every wait is a ``select()``
with a timeout, and every round has a deadline. Payloads and chunk sizes come
from a seeded `random.Random`, so a run is the same every time.
"""

from __future__ import annotations

import contextlib
import inspect
import random
import selectors
import socket
import struct
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from selectors import DefaultSelector as ClientSelector
from typing import Any

from ..core.timeline import Timeline
from ..driver.recording import RecordingSelector

__all__ = [
    "Client",
    "ServerRun",
    "TrackingSelector",
    "drive",
    "echo_clients",
    "serve_error_problem",
]

KiB, MiB = 1 << 10, 1 << 20
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
Serve = Callable[..., Any]
LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST


class TrackingSelector(RecordingSelector):
    """A `RecordingSelector` around a new `selectors.DefaultSelector` that keeps every registered file object."""

    def __init__(self, timeline: Timeline | None = None) -> None:
        super().__init__(ClientSelector(), timeline, actor="your server")
        self.fileobjs: dict[int, Any] = {}

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        self.fileobjs[id(fileobj)] = (
            fileobj  # first: closed for the server even if register() raises
        )
        return super().register(fileobj, events, data)

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called (a closed selector's map is None)."""
        return self.get_map() is None

    def open_sockets(self, skip: object) -> list[Any]:
        """Registered file objects, other than ``skip``, that are still open."""
        return [f for f in list(self.fileobjs.values()) if f is not skip and _fileno(f) >= 0]

    def keys(self) -> list[selectors.SelectorKey]:
        """A snapshot of the registered keys (empty once closed)."""
        for _ in range(100):  # the server thread may change the map while we copy it
            try:
                return list((self.get_map() or {}).values())
            except RuntimeError:
                continue
        return []

    def stale_keys(self) -> list[selectors.SelectorKey]:
        """Keys whose socket was closed while still registered."""
        return [key for key in self.keys() if _fileno(key.fileobj) < 0]


def _fileno(fileobj: Any) -> int:
    try:
        return fileobj if isinstance(fileobj, int) else fileobj.fileno()
    except (OSError, ValueError):
        return -1


# -- the server under test ----------------------------------------------------------


class ServerRun:
    """``serve(listener, stop, ...)`` in a daemon thread, with its listener and selector.

    Use as a context manager: on exit ``stop`` is set and the thread is given
    ``grace`` seconds to return (`returned_in_time` says whether it did); the
    listener is closed, and any socket the server left open is closed for it
    and counted in `left_open`. Raises `OSError` if the listener cannot bind
    or the selector cannot be made (then nothing is left open).
    """

    def __init__(
        self, serve: Serve, *, sndbuf: int = 16 * KiB, rcvbuf: int = 64 * KiB, grace: float = 2.0
    ) -> None:
        self.serve, self.grace = serve, grace
        self.listener = _listener(sndbuf, rcvbuf)
        self.address: tuple[str, int] = self.listener.getsockname()[:2]
        try:
            self.selector = TrackingSelector()
        except BaseException:
            self.listener.close()  # e.g. EMFILE: no fd left for the selector
            raise
        self.selector.label(self.listener, "listener")
        self.stop = threading.Event()
        self.returned = threading.Event()
        self.error: BaseException | None = None
        self.returned_in_time = True
        self.died_early = False  # serve returned or raised before stop was set
        self.left_open = 0
        self.thread = threading.Thread(target=self._run, name="your-serve", daemon=True)

    def _run(self) -> None:
        try:
            if _takes_selector(self.serve):
                self.serve(self.listener, self.stop, selector=self.selector)
            else:
                self.serve(self.listener, self.stop)
        except BaseException as exc:  # noqa: BLE001  handed to the checker
            self.error = exc
        finally:
            self.died_early = not self.stop.is_set()
            self.returned.set()

    def __enter__(self) -> ServerRun:
        try:
            with _default_selector_is(self.selector, unless=_takes_selector(self.serve)):
                self.thread.start()
                self._wait_started()
        except BaseException:  # e.g. no thread could be started: nothing else will close these
            self.selector.close()
            self.listener.close()
            raise
        return self

    def _wait_started(self) -> None:
        # The first registration (the listener's) shows the loop is up; a server
        # that never registers anything is judged by the rounds, not here.
        for _ in range(100):
            if self.selector.fileobjs or self.returned.wait(0.01):
                return

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.returned_in_time = self.returned.wait(self.grace)
        if self.returned_in_time:
            for sock in self.selector.open_sockets(skip=self.listener):
                self.left_open += 1
                sock.close()
            if not self.selector.closed:
                self.selector.close()
        self.listener.close()

    @property
    def died(self) -> bool:
        """``serve`` has returned (or raised) before ``stop`` was set."""
        return self.returned.is_set() and self.died_early

    def cpu(self) -> float | None:
        """CPU seconds the server's thread has used so far, if this platform can tell."""
        try:
            return time.clock_gettime(time.pthread_getcpuclockid(self.thread.ident))  # type: ignore[arg-type]
        except (AttributeError, OSError, TypeError):
            return None

    def wakeups(self, since: int = 0) -> int:
        """How many times ``select()`` returned, after timeline event ``since``."""
        return len(self.selector.timeline.events("your server", "select", since=since))


def _listener(sndbuf: int, rcvbuf: int) -> socket.socket:
    # Accepted sockets inherit the listener's buffer sizes (Linux, BSD): small
    # ones make the server's partial writes happen with payloads of a few MiB.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _takes_selector(serve: Serve) -> bool:
    try:
        return "selector" in inspect.signature(serve).parameters
    except (TypeError, ValueError):
        return False


@contextmanager
def _default_selector_is(selector: TrackingSelector, *, unless: bool) -> Iterator[None]:
    """While the server starts, its first ``selectors.DefaultSelector()`` is ``selector``."""
    if unless:
        yield
        return
    original, handed = selectors.DefaultSelector, []

    def factory() -> selectors.BaseSelector:
        if handed:
            return original()
        handed.append(selector)
        return selector

    selectors.DefaultSelector = factory  # type: ignore[misc,assignment]
    try:
        yield
    finally:
        selectors.DefaultSelector = original  # type: ignore[misc]


def serve_error_problem(error: BaseException) -> str:
    """What an exception that killed ``serve`` says about the server's code."""
    name = f"{type(error).__name__}: {error}"
    if isinstance(error, BlockingIOError) and "recv" in _failing_line(error):
        return (f"serve() died with {name} in recv(): the socket had nothing to read. Was it registered for "
                "EVENT_WRITE too? Register EVENT_READ only while there is nothing to send, and recv() only when mask & EVENT_READ")  # fmt: skip
    if isinstance(error, BlockingIOError):
        return (f"serve() died with {name}. sendall() (or a bare send()) on a non-blocking socket raises it when the "
                "send buffer is full: send() what fits, keep the rest, and wait for EVENT_WRITE")  # fmt: skip
    if isinstance(error, (ConnectionResetError, BrokenPipeError)):
        return (f"serve() died with {name}. A client that resets (or goes away) must only cost its own connection: "
                "catch ConnectionResetError and BrokenPipeError around recv() and send(), close that one, keep serving")  # fmt: skip
    if isinstance(error, KeyError) and "already registered" in str(error):
        return (f"serve() died with {name}. A new connection got the fd of a socket that was closed but never "
                "unregistered: unregister() a socket before you close() it")  # fmt: skip
    return f"serve() died with {name}"


def _failing_line(error: BaseException) -> str:
    """The source line where ``error`` was raised, if it can be found."""
    frames = traceback.extract_tb(error.__traceback__)
    return (frames[-1].line or "") if frames else ""


# -- clients -------------------------------------------------------------------------


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
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
        self.sock.close()
        self.sock = None


def echo_clients(rng: random.Random, prefix: str, count: int, sizes: tuple[int, int], *, chunk: int = 64 * KiB,
                 **options: Any) -> list[Client]:  # fmt: skip
    """``count`` clients named ``prefix-1``... with seeded payloads of ``sizes`` bytes sent in seeded random chunks."""
    clients = []
    for i in range(1, count + 1):
        payload = rng.randbytes(rng.randint(*sizes))
        chunks = [rng.randint(1, chunk) for _ in range(16)]
        clients.append(Client(f"{prefix}-{i}", payload, chunks, **options))
    return clients


def drive(run: ServerRun, clients: Iterable[Client], deadline: float) -> bool:
    """Connect ``clients`` and serve their scripts until all are done; False at ``deadline`` or if the server died.

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
            for key, mask in selector.select(0.05):
                key.data.on_ready(selector, mask)
        hogs = [c for c in clients if c.mode == "hog"]
        return _until_hogs_stall(run, hogs, selector, deadline) and _drain_hogs(
            run, hogs, selector, deadline
        )


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
        for key, mask in selector.select(0.05):
            key.data.on_ready(selector, mask)
    return True


def close_all(clients: Iterable[Client]) -> None:
    """Close every client's socket (idempotent)."""
    for client in clients:
        if client.sock is not None:
            client.sock.close()
            client.sock = None
