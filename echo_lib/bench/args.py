"""The benchmark's options: `BenchOptions`, the servers it knows, and the command line.

Each option's text is converted and range-checked by the argparse functions of
`echo_lib.core.checks`. A bad argument raises `ValueError` naming it (the
parser never exits); `echo_lib.bench.command.main` turns that into exit code 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass

from ..core.checks import arg_type, int_arg, list_arg, seconds_arg
from ..driver.implementations import resolve_selector

__all__ = [
    "FLOOR",
    "MAX_PINGPONG_CONNECTIONS",
    "SCALE_SERVERS",
    "SERVER_KINDS",
    "BenchOptions",
    "parse_args",
]

PROG = "python -m echo_lib.bench"
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
#: The server every other one is compared with.
FLOOR = "raw-selectors"
MAX_PINGPONG_CONNECTIONS = 1000  # one burst of connects, well under every server's backlog


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


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises `ValueError` instead of exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ValueError(message)


def _server_kind(text: str) -> str:
    """Check one server name against `SERVER_KINDS`."""
    if text not in SERVER_KINDS:
        raise ValueError(f"unknown server {text!r}; expected some of {', '.join(SERVER_KINDS)}")
    return text


def _selector_name(text: str) -> str:
    """Check a selector name (``epoll``, ``poll``, ``default``...) here; return the name."""
    resolve_selector(text)
    return text


def _build_parser() -> _Parser:
    """The command line; defaults that depend on --quick or --scale are filled in later."""
    parser = _Parser(
        prog=PROG,
        description="How much CPU does `EchoServer` spend per echoed message, next to its peers?",
    )
    _add_round_options(parser)
    _add_server_options(parser)
    parser.add_argument("--json", metavar="PATH", help="also write the results to PATH as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser


def _add_round_options(parser: argparse.ArgumentParser) -> None:
    """--quick, --rounds, --connections, --messages, --seconds, --sizes: what each round does."""
    add = parser.add_argument
    add("--quick", action="store_true", help="3 rounds of fewer messages: under 20 s in all")
    add(
        "--rounds",
        type=int_arg("rounds", 1),
        help="rounds per server and size (default 5, quick 3)",
    )
    add(
        "--connections",
        type=int_arg("connections", 1),
        help=f"ping-pong connections (default 8, at most {MAX_PINGPONG_CONNECTIONS}); "
        "with --scale, concurrent connections (default 10000)",
    )
    messages_help = "messages per round at most (default 20000, quick 5000)"
    add("--messages", type=int_arg("messages", 1), help=messages_help)
    seconds_help = "seconds per round at most (default 1.5, quick 0.25)"
    add("--seconds", type=seconds_arg("seconds"), help=seconds_help)
    sizes_help = "message sizes in bytes, comma-separated (default 64,16384)"
    add("--sizes", type=list_arg(int_arg("size", 1)), help=sizes_help)


def _add_server_options(parser: argparse.ArgumentParser) -> None:
    """--servers, --selector, --scale, --deadline: which servers, on what, and which run."""
    add = parser.add_argument
    servers_help = f"comma-separated, from {', '.join(SERVER_KINDS)}"
    add("--servers", type=list_arg(arg_type(_server_kind)), help=servers_help)
    add(
        "--selector",
        type=arg_type(_selector_name),
        default="default",
        help="selector class for the selectors and asyncio servers, e.g. epoll or poll",
    )
    scale_help = "the scale run instead: --connections concurrent connections, unique payloads"
    add("--scale", action="store_true", help=scale_help)
    deadline_help = "seconds the whole scale run may take (default 120)"
    add("--deadline", type=seconds_arg("deadline"), default=120.0, help=deadline_help)


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
            "argument --connections: the ping-pong benchmark takes at most "
            f"{MAX_PINGPONG_CONNECTIONS}, "
            f"got {options.connections!r}; add --scale for the scale run"
        )
