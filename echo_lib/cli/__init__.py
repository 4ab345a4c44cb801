"""``python -m echo_lib server|client``: the seed's two scripts, done right.

The console messages are the seed's (``starting up on ...``, ``waiting for I/O``,
``accept(...)``, ``read(...)``, ``  received b'...'``, ``client(...)``,
``  ready to write``, ...), but the work is done by `EchoServer` and
`EchoClient`, which never print: they record `Event`s on a timeline. This
module drives their `SelectorLoop` in the foreground, one ``step()`` at a
time, and after each step turns the new events into the seed's lines with
`seed_lines()`, a pure function. So every line is printed by the main thread,
in the order things happened.

What it does right where the seed does not:

* ``--port 0`` (the default) lets the system pick a free port; the server
  prints it in its first line. ``127.0.0.1`` unless ``--allow-remote``.
* the server keeps serving after a client leaves, until Ctrl-C or SIGTERM
  (or, with ``--once``, until its first client has come and gone). It
  installs its own handler for both signals: a process started from a
  background job inherits SIGINT *ignored*, and the default SIGTERM kills
  at once without closing anything. Either signal ends it the same clean way;
* out of file descriptors, the server says so once and pauses accepting
  (see `EchoServer`) instead of printing the same error in a busy loop;
* the client stops when the whole echo is back, not after the first
  ``recv()``, and exits 1 saying how many bytes are missing if it never is.
* errors are one line on stderr with a way out, never a traceback. Exit
  codes: 0 ok, 1 runtime failure, 2 bad usage.

``waiting for I/O`` is printed before each ``select()``, as in the seed, except
after a ``select()`` that timed out with nothing ready: the loop wakes once a
second only so that Ctrl-C is seen everywhere (on Windows a ``select()`` is
not interrupted by it), and an idle server should not fill the screen.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import selectors
import signal
import sys
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator, Mapping, Sequence
from types import FrameType
from typing import Any, NoReturn, TextIO

from ..core.checks import MAX_TIMEOUT, check_port, check_timeout, is_loopback
from ..core.events import Event
from ..core.timeline import Timeline
from ..driver.client import DEFAULT_MESSAGES, EchoClient, EchoResult
from ..driver.implementations import SELECTOR_NAMES, SelectorFactory, resolve_selector
from ..driver.loop import SelectorLoop
from ..driver.server import EchoServer

__all__ = ["build_parser", "main", "seed_lines"]

PROG = "python -m echo_lib"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
SHOW_LIMIT = 64  # bytes shown of a message before "... (N bytes)"
STEP_TIMEOUT = 1.0  # seconds per select(): how soon Ctrl-C is seen everywhere
MAX_SIZE = 16 << 20  # --size limit: each step copies what came back so far
DEFAULT_TIMEOUT = 10.0
#: The order in which the seed sends its messages: it pop()s from the end of its list.
SEED_ORDER = tuple(reversed(DEFAULT_MESSAGES))
PATTERN = b"abcdefghijklmnopqrstuvwxyz0123456789"


class CliError(Exception):
    """A runtime failure, told in one line on stderr (exit 1)."""


class UsageError(Exception):
    """Bad usage found after parsing, told in one line on stderr (exit 2)."""


# -- the seed's messages, from events (pure) -----------------------------------


def seed_lines(
    event: Event,
    role: str,
    peers: Mapping[str, Any] | None = None,
    data: bytes | None = None,
) -> list[str]:
    """The seed's console lines for one event of the ``"server"`` or the ``"client"``.

    ``peers`` maps an actor (``"server/conn-1"``, ``"client"``) to the address
    of the socket at its other end; an ``accept`` event names its new actor in
    ``detail``. ``data`` is the start of the bytes a ``recv``/``send`` moved
    (at least `SHOW_LIMIT` of them, or all); without it only the count is shown.
    Events the seed prints nothing for give ``[]``.

    Raises `ValueError` for another role.
    """
    if role not in ("server", "client"):
        raise ValueError(f"role must be 'server' or 'client', got {role!r}")
    peer = _peer(event, peers or {})
    if role == "server":
        return _server_lines(event, peer, data)
    return _client_lines(event, peer, data)


def _peer(event: Event, peers: Mapping[str, Any]) -> str:
    actor = f"{event.actor}/{event.detail}" if event.action == "accept" else event.actor
    return repr(peers[actor]) if actor in peers else "<unknown address>"


def _server_lines(event: Event, peer: str, data: bytes | None) -> list[str]:
    connection = "/" in event.actor  # "server/conn-1"; the listener is "server"
    match event.action:
        case "accept":
            return [f"accept({peer})"]
        case "ready" if connection:
            return [f"read({peer})" if event.mask & selectors.EVENT_READ else f"write({peer})"]
        case "recv":
            return [f"  received {_shown(data, event.nbytes)}"]
        case "send" if event.detail == "partial":
            return [f"  sent {event.nbytes} bytes, not all: the rest waits for EVENT_WRITE"]
        case "close" if connection:
            return ["  closing"]
        case "error":
            return [f"  error: {event.detail}"]
    return []


def _client_lines(event: Event, peer: str, data: bytes | None) -> list[str]:
    match event.action:
        case "ready":
            return [f"client({peer})"]
        case "send":
            return ["  ready to write", f"  sending {_shown(data, event.nbytes)}"]
        case "modify":
            return ["  ready to write", "  switching to read-only"]
        case "recv":
            return ["  ready to read", f"  received {_shown(data, event.nbytes)}"]
        case "eof":
            return ["  ready to read", f"  the server closed the connection: {event.detail}"]
        case "error":
            return [f"  error: {event.detail}"]
    return []


def _shown(data: bytes | None, nbytes: int) -> str:
    """``b'...'`` as the seed prints it; a long message is cut, with its length."""
    if data is None:
        return f"{nbytes} bytes"
    if nbytes <= SHOW_LIMIT:
        return repr(data[:nbytes])
    return f"{data[:SHOW_LIMIT]!r}... ({nbytes} bytes)"


# -- the server ------------------------------------------------------------------


class _ServerTranscript:
    """Turns a server's events into the seed's lines, with peer addresses and bytes.

    `EchoServer` hands every chunk it receives to `on_recv`; events carry only
    counts, and the seed prints the bytes. The start of each chunk waits here,
    in order, for its `recv` event.
    """

    def __init__(self) -> None:
        self.server: EchoServer | None = None
        self.peers: dict[str, Any] = {}
        self.heads: dict[str, deque[bytes]] = defaultdict(deque)

    def on_recv(self, actor: str, data: bytes) -> None:
        self.heads[actor].append(data[:SHOW_LIMIT])

    def lines(self, events: Sequence[Event]) -> list[str]:
        assert self.server is not None
        self.peers.update(self.server.peer_addresses())  # a new peer is still open here
        lines: list[str] = []
        for event in events:
            data = self.heads[event.actor].popleft() if event.action == "recv" else None
            lines += seed_lines(event, "server", self.peers, data)
            if event.action == "close":
                self.peers.pop(event.actor, None)
                self.heads.pop(event.actor, None)
        return lines


def run_server(args: argparse.Namespace, out: TextIO) -> int:
    """Serve until Ctrl-C or SIGTERM (or, with ``--once``, until the first client is gone)."""
    with _stop_signals(), SelectorLoop(args.selector, name="server") as loop:
        transcript = _ServerTranscript()
        server, (host, port) = _start_server(args, loop, transcript)
        _write(out, [f"starting up on {host} port {port}"])
        try:
            _serve(server, loop, transcript, args.once, out)
        except KeyboardInterrupt:
            pass  # Ctrl-C or SIGTERM is how this server is meant to stop
        _write(out, ["shutting down"])
    return EXIT_OK


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """The handler for both stop signals: the main thread sees KeyboardInterrupt."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextlib.contextmanager
def _stop_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt in the block, whatever was inherited.

    Only the main thread may set handlers; elsewhere (a test calling `main()`
    from a thread) the block runs with the handlers it has.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {
        signum: signal.signal(signum, _interrupt) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)


def _start_server(
    args: argparse.Namespace, loop: SelectorLoop, transcript: _ServerTranscript
) -> tuple[EchoServer, tuple[str, int]]:
    """The started server and the address it is bound to (the real port)."""
    server = EchoServer(
        args.host,
        args.port,
        loop=loop,
        allow_remote=args.allow_remote,
        name="server",
        on_recv=transcript.on_recv,
    )
    transcript.server = server
    try:
        server.start()
    except OSError as exc:
        raise CliError(_bind_error(exc, args.host, args.port)) from None
    return server, server.address or (args.host, args.port)


def _bind_error(exc: OSError, host: str, port: int) -> str:
    in_use = {errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", errno.EADDRINUSE)}
    if exc.errno in in_use:
        return f"port {port} on {host} is already in use; try --port 0 to let the system pick a free port"
    return f"cannot listen on {host} port {port}: {exc.strerror or exc}"


def _serve(
    server: EchoServer, loop: SelectorLoop, transcript: _ServerTranscript, once: bool, out: TextIO
) -> None:
    idle = False
    while not (once and server.accepted and not server.connections):
        if not idle:
            _write(out, ["waiting for I/O"])
        idle = loop.step(STEP_TIMEOUT) == 0
        _write(out, transcript.lines(_drain(loop.timeline)))


# -- the client ------------------------------------------------------------------


class _ClientTranscript:
    """Turns a client's events into the seed's lines, with the bytes they moved."""

    def __init__(self, client: EchoClient, payload: bytes) -> None:
        self.client, self.payload = client, payload
        # EchoClient does not expose getpeername(); the address it connected to will do.
        self.peers = {client.name: client.address}
        self.sent = self.received = 0

    def lines(self, events: Sequence[Event]) -> list[str]:
        # One copy of what came back per step, and only in a step that received.
        echoed = self.client.received_data if any(e.action == "recv" for e in events) else b""
        lines: list[str] = []
        for event in events:
            lines += seed_lines(event, "client", self.peers, self._data(event, echoed))
        return lines

    def _data(self, event: Event, echoed: bytes) -> bytes | None:
        """The start of the bytes a send/recv moved: they follow the ones already seen."""
        if event.action == "send":
            start, self.sent = self.sent, self.sent + event.nbytes
            return self.payload[start : start + SHOW_LIMIT]
        if event.action == "recv":
            start, self.received = self.received, self.received + event.nbytes
            return echoed[start : start + SHOW_LIMIT]
        return None


def run_client(args: argparse.Namespace, out: TextIO) -> int:
    """Send the messages, print the exchange, and check that all of it came back."""
    messages = _messages(args)
    with SelectorLoop(args.selector, name="client") as loop:
        address = (args.host, args.port)
        client = EchoClient(
            address, messages, loop=loop, timeout=args.timeout, allow_remote=args.allow_remote
        )
        _write(out, [f"connecting to {args.host} port {args.port}"])
        _connect(client, args.host, args.port)
        transcript = _ClientTranscript(client, b"".join(messages))
        finished = _exchange(client, loop, transcript, args.timeout, out)
        _write(out, ["shutting down"])
    return _verdict(client.result(), finished, args.timeout)


def _messages(args: argparse.Namespace) -> list[bytes]:
    if args.size is not None:
        return [(PATTERN * (args.size // len(PATTERN) + 1))[: args.size]]
    if args.message is not None:
        return [text.encode("utf-8", "surrogateescape") for text in args.message]
    return list(SEED_ORDER)


def _connect(client: EchoClient, host: str, port: int) -> None:
    try:
        client.start()
    except ConnectionRefusedError:
        raise CliError(
            f"no server is listening on {host}:{port}; start one with: {PROG} server --port {port}"
        ) from None
    except OSError as exc:
        raise CliError(f"cannot connect to {host} port {port}: {exc.strerror or exc}") from None


def _exchange(
    client: EchoClient,
    loop: SelectorLoop,
    transcript: _ClientTranscript,
    timeout: float,
    out: TextIO,
) -> bool:
    """Step until the echo is back or the server closed; False if ``timeout`` ran out."""
    deadline, idle = time.monotonic() + timeout, False
    while not client.done:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        if not idle:
            _write(out, ["waiting for I/O"])
        idle = loop.step(min(STEP_TIMEOUT, remaining)) == 0
        _write(out, transcript.lines(_drain(loop.timeline)))
    return True


def _verdict(result: EchoResult, finished: bool, timeout: float) -> int:
    """`EXIT_OK` if the whole echo came back; else raise `CliError` saying what is missing."""
    if result.complete:
        return EXIT_OK
    got = f"{result.missing} of {result.expected} bytes missing"
    if not result.intact:
        raise CliError(
            f"the echo differs from what was sent ({result.received} of {result.expected} bytes back)"
        )
    if not finished:
        raise CliError(f"timed out after {timeout:g} s with {got}")
    if result.error:
        raise CliError(f"{result.error}: the connection failed with {got}")
    raise CliError(f"the server closed the connection with {got}")


# -- shared helpers ----------------------------------------------------------------


def _drain(timeline: Timeline | None) -> list[Event]:
    """The events since the last call; the timeline is emptied so it cannot grow."""
    if timeline is None:
        return []
    events = timeline.events()
    timeline.clear()
    return events


def _write(out: TextIO, lines: Sequence[str]) -> None:
    if lines:
        out.write("".join(line + "\n" for line in lines))
        out.flush()


# -- the command line ----------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message}; see {self.prog} --help\n")


def _port_arg(text: str) -> int:
    try:
        return check_port(int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be an int in 0..65535, got {text!r}") from None


def _selector_arg(name: str) -> SelectorFactory:
    try:
        return resolve_selector(name)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _size_arg(text: str) -> int:
    try:
        size = int(text)
    except ValueError:
        size = 0
    if not 1 <= size <= MAX_SIZE:
        raise argparse.ArgumentTypeError(f"size must be an int in 1..{MAX_SIZE}, got {text!r}")
    return size


def _timeout_arg(text: str) -> float:
    try:
        return check_timeout(float(text))
    except ValueError:
        what = f"a number of seconds above 0 and at most {MAX_TIMEOUT:g}"
        raise argparse.ArgumentTypeError(f"timeout must be {what}, got {text!r}") from None


SELECTOR_HELP = (
    "the selector class: default (selectors.DefaultSelector, the platform's best), "
    f"{', '.join(n.removesuffix('Selector').lower() for n in SELECTOR_NAMES)}; "
    "a class this platform lacks is an error naming it (default: default)"
)
SERVER_PORT_HELP = (
    "the port to listen on, 0..65535 (default: 0: the system picks a free port, and the server prints it "
    "in its first line, 'starting up on 127.0.0.1 port N'; the seed's fixed 10000 collides when two servers run)"
)
REMOTE_HELP = (
    "allow a HOST that is not a loopback address (by default only this machine can be reached)"
)
CLIENT_PORT_HELP = "the server's port: the N it printed in 'starting up on ... port N'"
ONCE_HELP = (
    "exit once the first client has closed and no other is connected (for tests); "
    "without it the server runs until Ctrl-C"
)
MESSAGE_HELP = (
    "send TEXT (UTF-8); repeat to send several, in order (default: the seed's two messages)"
)
SIZE_HELP = (
    f"send one generated payload of N bytes (1..{MAX_SIZE}), to see an echo come back in chunks"
)
TIMEOUT_HELP = f"give up if the whole echo is not back in time (default: {DEFAULT_TIMEOUT:g})"


def _add_common(
    parser: argparse.ArgumentParser, host_help: str, port_help: str, port: int | None
) -> None:
    """--host, --port (required when ``port`` is None), --selector, --allow-remote."""
    parser.add_argument("--host", default="127.0.0.1", help=f"{host_help} (default: 127.0.0.1)")
    parser.add_argument(
        "--port", type=_port_arg, default=port, required=port is None, help=port_help
    )
    parser.add_argument(
        "--selector", metavar="NAME", type=_selector_arg, default="default", help=SELECTOR_HELP
    )
    parser.add_argument("--allow-remote", action="store_true", help=REMOTE_HELP)


def _add_server(commands: Any) -> None:
    what = "Echo every byte back, to any number of clients."
    server = commands.add_parser("server", help="run the echo server", description=what)
    _add_common(server, "the address to listen on", SERVER_PORT_HELP, 0)
    server.add_argument("--once", action="store_true", help=ONCE_HELP)


def _add_client(commands: Any) -> None:
    what = "Send messages and wait until all of the echo is back."
    client = commands.add_parser("client", help="run the echo client", description=what)
    _add_common(client, "the server's address", CLIENT_PORT_HELP, None)
    payload = client.add_mutually_exclusive_group()
    payload.add_argument("--message", metavar="TEXT", action="append", help=MESSAGE_HELP)
    payload.add_argument("--size", metavar="N", type=_size_arg, help=SIZE_HELP)
    timeout = DEFAULT_TIMEOUT
    client.add_argument(
        "--timeout", metavar="SECONDS", type=_timeout_arg, default=timeout, help=TIMEOUT_HELP
    )


EPILOG = f"""\
examples:
  {PROG} server              # prints: starting up on 127.0.0.1 port 45678
  {PROG} client --port 45678

exit codes: 0 ok, 1 runtime failure (one line on stderr), 2 bad usage"""


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m echo_lib`` parser, with its ``server`` and ``client`` commands."""
    parser = _Parser(
        prog=PROG,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="The echo server and client of the classic selectors chapter, done right.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{server,client}")
    _add_server(commands)
    _add_client(commands)
    return parser


def _check_args(args: argparse.Namespace) -> None:
    if not (args.allow_remote or is_loopback(args.host)):
        reach = "listen there" if args.command == "server" else "connect to it"
        raise UsageError(
            f"host {args.host!r} is not a loopback address; pass --allow-remote to {reach} on purpose"
        )
    if args.command == "client" and args.port == 0:
        raise UsageError(
            "--port 0 only lets a server pick a free port; give the client the N the server printed "
            "in 'starting up on 127.0.0.1 port N'"
        )


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m echo_lib server|client``; return the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    run = run_server if args.command == "server" else run_client
    try:
        _check_args(args)
        return run(args, sys.stdout)
    except UsageError as exc:
        return _fail(f"{exc}; see {PROG} {args.command} --help", EXIT_USAGE)
    except CliError as exc:
        return _fail(str(exc), EXIT_FAILURE)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_FAILURE)
    except OSError as exc:
        return _fail(f"{type(exc).__name__}: {exc}", EXIT_FAILURE)


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return code
