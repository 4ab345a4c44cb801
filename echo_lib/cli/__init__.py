"""``python -m echo_lib server|client``: the seed's two scripts, done right.

The console messages are the seed's (``starting up on ...``, ``waiting for I/O``,
``accept(...)``, ``read(...)``, ``  received b'...'``, ``client(...)``,
``  ready to write``, ...), but the work is done by `EchoServer` and
`EchoClient`, which never print: they record `Event`s on a timeline. The
commands (`cli.commands`) drive their `SelectorLoop` in the foreground, one
``step()`` at a time, and after each step turn the new events into the seed's
lines with `cli.lines.seed_lines()`, a pure function. So every line is printed
by the main thread, in the order things happened. The options and their checks
are in `cli.args`; this module holds `main`, which maps failures to exit codes.

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
import sys
from collections.abc import Sequence

from .args import EXIT_FAILURE, EXIT_USAGE, PROG, UsageError, build_parser, check_args
from .commands import CliError, run_client, run_server

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``python -m echo_lib server|client``; return the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    """Check the arguments, run the command, and turn each failure into one line and its code."""
    run = run_server if args.command == "server" else run_client
    try:
        check_args(args)
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
    """Print ``message`` as the one line on stderr; return ``code``."""
    print(f"error: {message}", file=sys.stderr)
    return code
