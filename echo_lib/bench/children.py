"""The child processes: their command loops, and `Child`, the parent's handle on one.

Each server and the load run in a child process ("spawn"), so that one's CPU
time is its own. A child answers the parent's commands over a pipe, one
``("ok", ...)`` or ``("error", why)`` per command, until "quit", EOF, or
`IDLE_TIMEOUT` of silence. The parent waits at most `REPLY_TIMEOUT` for an
answer and stops every child (killing it if need be) on the way out.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from multiprocessing.connection import Connection
from typing import Any

from ..driver.wait import wait_until
from .load import Load
from .resources import ensure_nofile, maxrss_kib, user_sys
from .servers import Served, start_server

__all__ = [
    "REPLY_TIMEOUT",
    "Child",
    "load_process",
    "server_process",
    "start_children",
    "wait_connections",
]

REPLY_TIMEOUT = 30.0  # the longest any child may take to answer one command
IDLE_TIMEOUT = 900.0  # a child whose parent stays silent this long gives up


# -- inside a child ---------------------------------------------------------------------


def _send_error(conn: Connection, exc: BaseException) -> None:
    """Tell the parent why this child failed, if it still listens."""
    with contextlib.suppress(OSError):  # the parent is gone: nobody to tell
        conn.send(("error", f"{type(exc).__name__}: {exc}"))


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


def server_process(
    conn: Connection, kind: str, selector: str, nofile: int, keep_all: bool = False
) -> None:
    """Child process: start the server, send its port, then answer commands."""
    server: Served | None = None
    try:
        ensure_nofile(nofile)
        server = start_server(kind, selector, keep_all)
        conn.send(("ok", server.port))
        _server_commands(server, conn)
    except BaseException as exc:  # reported to the parent, which raises it
        _send_error(conn, exc)
    finally:
        if server is not None:
            server.close()
        conn.close()


def _server_commands(server: Served, conn: Connection) -> None:
    """ "begin"/"end" measure CPU and bytes between them; the rest serve the scale run."""
    mark = (0.0, 0.0, 0.0, 0)
    for command, *args in _commands(conn):
        if command == "begin":
            mark = (time.process_time(), *user_sys(), server.received())
            conn.send(("ok",))
        elif command == "end":
            now = (time.process_time(), *user_sys(), server.received())
            conn.send(("ok", *(b - a for a, b in zip(mark, now, strict=True))))
        elif command == "wait_connections":
            conn.send(("ok", wait_connections(server.connections, *args)))
        elif command == "maxrss":
            conn.send(("ok", maxrss_kib()))
        elif command == "timeline":
            stats = getattr(server, "timeline_stats", None)
            conn.send(("ok", stats() if stats is not None else None))
        else:
            raise ValueError(f"unknown server command {command!r}")


def wait_connections(open_now: Callable[[], int], count: int, timeout: float) -> int:
    """Wait until ``open_now()`` (a server's open connections) is exactly ``count``.

    Raises `TimeoutError` saying how many are open after ``timeout`` seconds.
    """
    if not wait_until(lambda: open_now() == count, timeout):
        raise TimeoutError(
            f"the server has {open_now()} connections, not {count}, after {timeout:.1f} s"
        )
    return count


def load_process(conn: Connection, nofile: int) -> None:
    """Child process: run the parent's load commands ("connect", "exchange", ...)."""
    load = Load()
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


# -- the parent's side -----------------------------------------------------------------


class Child:
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
        with contextlib.suppress(OSError):  # already gone
            self.conn.send(("quit",))

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the child to quit; kill it if it has not ended within ``timeout``."""
        self.request_quit()
        self.process.join(timeout)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout)
        self.conn.close()


def _stop_all(children: Iterable[Child]) -> None:
    """Stop children in parallel: ask them all to quit, then wait for (or kill) each."""
    children = list(children)
    for child in children:
        child.request_quit()
    for child in children:
        child.stop()


def start_children(
    stack: ExitStack, kinds: Sequence[str], selector: str, nofile: int
) -> tuple[Child, dict[str, Child], dict[str, int]]:
    """Start the load and every server at once; they are stopped when ``stack`` closes.

    Returns the load, the servers by kind, and their ports by kind.
    """
    servers: dict[str, Child] = {}
    stack.callback(_stop_all, servers.values())
    for kind in kinds:
        servers[kind] = Child(f"server {kind!r}", server_process, kind, selector, nofile)
    load = Child("load process", load_process, nofile)
    stack.callback(load.stop)
    load.answer("start")
    return load, servers, {kind: child.answer("start") for kind, child in servers.items()}
