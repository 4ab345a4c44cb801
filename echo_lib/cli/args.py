"""The ``python -m echo_lib`` parser: its ``server`` and ``client`` commands, and usage checks.

A usage error is one line on stderr and exit code 2 (`EXIT_USAGE`), from
argparse itself or, for what only the whole command line shows, `UsageError`.
Each option's text is converted and range-checked by the argparse functions of
`echo_lib.core.checks`, so ``--port 70000`` is worded as ``port=70000`` is.
"""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from ..core.checks import arg_type, int_arg, is_loopback, port_arg, seconds_arg
from ..driver.implementations import SELECTOR_NAMES, resolve_selector

__all__ = [
    "EXIT_FAILURE",
    "EXIT_OK",
    "EXIT_USAGE",
    "PROG",
    "UsageError",
    "build_parser",
    "check_args",
]

PROG = "python -m echo_lib"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
MAX_SIZE = 16 << 20  # --size limit: each step copies what came back so far
DEFAULT_TIMEOUT = 10.0


class UsageError(Exception):
    """Bad usage found after parsing, told in one line on stderr (exit 2)."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line, exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message}; see {self.prog} --help\n")


SELECTOR_HELP = (
    "the selector class: default (selectors.DefaultSelector, the platform's best), "
    f"{', '.join(n.removesuffix('Selector').lower() for n in SELECTOR_NAMES)}; "
    "a class this platform lacks is an error naming it (default: default)"
)
SERVER_PORT_HELP = (
    "the port to listen on, 0..65535 (default: 0: the system picks a free port, "
    "and the server prints it in its first line, 'starting up on 127.0.0.1 port N'; "
    "the seed's fixed 10000 collides when two servers run)"
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
        "--port", type=port_arg, default=port, required=port is None, help=port_help
    )
    parser.add_argument(
        "--selector",
        metavar="NAME",
        type=arg_type(resolve_selector),
        default="default",
        help=SELECTOR_HELP,
    )
    parser.add_argument("--allow-remote", action="store_true", help=REMOTE_HELP)


def _add_server(commands: Any) -> None:
    """The ``server`` command and its options."""
    what = "Echo every byte back, to any number of clients."
    server = commands.add_parser("server", help="run the echo server", description=what)
    _add_common(server, "the address to listen on", SERVER_PORT_HELP, 0)
    server.add_argument("--once", action="store_true", help=ONCE_HELP)


def _add_client(commands: Any) -> None:
    """The ``client`` command and its options."""
    what = "Send messages and wait until all of the echo is back."
    client = commands.add_parser("client", help="run the echo client", description=what)
    _add_common(client, "the server's address", CLIENT_PORT_HELP, None)
    payload = client.add_mutually_exclusive_group()
    payload.add_argument("--message", metavar="TEXT", action="append", help=MESSAGE_HELP)
    payload.add_argument("--size", metavar="N", type=int_arg("size", 1, MAX_SIZE), help=SIZE_HELP)
    client.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=seconds_arg(),
        default=DEFAULT_TIMEOUT,
        help=TIMEOUT_HELP,
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


def check_args(args: argparse.Namespace) -> None:
    """Raise `UsageError` for what only the whole line shows: a remote host, a client on port 0."""
    if not (args.allow_remote or is_loopback(args.host)):
        reach = "listen there" if args.command == "server" else "connect to it"
        raise UsageError(
            f"host {args.host!r} is not a loopback address; "
            f"pass --allow-remote to {reach} on purpose"
        )
    if args.command == "client" and args.port == 0:
        raise UsageError(
            "--port 0 only lets a server pick a free port; "
            "give the client the N the server printed in 'starting up on 127.0.0.1 port N'"
        )
