"""Run the ``server`` and ``client`` commands in the foreground, printing the seed's lines.

Each drives a `SelectorLoop` one ``step()`` at a time in the main thread and,
after each step, prints the lines of the events it recorded (see
`echo_lib.cli.lines`). A runtime failure is raised as `CliError`, one line.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from types import FrameType
from typing import TextIO

from ..core.events import Event
from ..core.timeline import Timeline
from ..driver.client import DEFAULT_MESSAGES, EchoClient, EchoResult
from ..driver.loop import SelectorLoop
from ..driver.server import EchoServer
from .args import EXIT_OK, PROG
from .lines import ClientTranscript, ServerTranscript

__all__ = ["CliError", "run_client", "run_server"]

STEP_TIMEOUT = 1.0  # seconds per select(): how soon Ctrl-C is seen everywhere
#: The order in which the seed sends its messages: it pop()s from the end of its list.
SEED_ORDER = tuple(reversed(DEFAULT_MESSAGES))
PATTERN = b"abcdefghijklmnopqrstuvwxyz0123456789"


class CliError(Exception):
    """A runtime failure, told in one line on stderr (exit 1)."""


# -- the server ------------------------------------------------------------------


def run_server(args: argparse.Namespace, out: TextIO) -> int:
    """Serve until Ctrl-C or SIGTERM (or, with ``--once``, until the first client is gone)."""
    with _stop_signals(), SelectorLoop(args.selector, name="server") as loop:
        transcript = ServerTranscript()
        server, (host, port) = _start_server(args, loop, transcript)
        _write(out, [f"starting up on {host} port {port}"])
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C or SIGTERM: how it is meant to stop
            _serve(server, loop, transcript, args.once, out)
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
    args: argparse.Namespace, loop: SelectorLoop, transcript: ServerTranscript
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
    """Why ``listen()`` failed, with a way out when the port is taken."""
    in_use = {errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", errno.EADDRINUSE)}
    if exc.errno in in_use:
        return (
            f"port {port} on {host} is already in use; "
            "try --port 0 to let the system pick a free port"
        )
    return f"cannot listen on {host} port {port}: {exc.strerror or exc}"


def _serve(
    server: EchoServer, loop: SelectorLoop, transcript: ServerTranscript, once: bool, out: TextIO
) -> None:
    """Step and print until stopped, or with ``once`` until the first client has come and gone."""
    idle = False
    while not (once and server.accepted and not server.connections):
        if not idle:
            _write(out, ["waiting for I/O"])
        idle = loop.step(STEP_TIMEOUT) == 0
        _write(out, transcript.lines(_drain(loop.timeline)))


# -- the client ------------------------------------------------------------------


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
        transcript = ClientTranscript(client, b"".join(messages))
        finished = _exchange(client, loop, transcript, args.timeout, out)
        _write(out, ["shutting down"])
    return _verdict(client.result(), finished, args.timeout)


def _messages(args: argparse.Namespace) -> list[bytes]:
    """The payload: ``--size`` generated bytes, the ``--message`` texts, or the seed's two."""
    if args.size is not None:
        return [(PATTERN * (args.size // len(PATTERN) + 1))[: args.size]]
    if args.message is not None:
        return [text.encode("utf-8", "surrogateescape") for text in args.message]
    return list(SEED_ORDER)


def _connect(client: EchoClient, host: str, port: int) -> None:
    """Start the client; a refused or failed connect becomes a `CliError` saying what to do."""
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
    transcript: ClientTranscript,
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
            "the echo differs from what was sent "
            f"({result.received} of {result.expected} bytes back)"
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
    """Write ``lines`` and flush, so each step's lines show at once."""
    if lines:
        out.write("".join(line + "\n" for line in lines))
        out.flush()
