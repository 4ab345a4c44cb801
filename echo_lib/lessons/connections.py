"""The socket and signal set-ups notebook 10 needs, so that its cells show only the lesson.

Each helper makes one situation happen on loopback, on every run:

- `tcp_pair()`: both ends of one loopback TCP connection;
- `refusing_address()`: an address whose port answers a connect with RST
  (a socket bound to it that does not listen), held for a ``with`` block so no
  other program can take the port meanwhile;
- `unanswered_address()`: a listener whose accept queue is full, so that a new
  connect stays pending (Linux drops the SYN; see the function);
- `close_with_reset()`: close a socket so that the peer gets RST, not FIN;
- `outcome()`: what a call returned or raised, as one line of text;
- `handling()` and `interval_timer()`: a signal handler and a timer for the
  length of a ``with`` block, the previous ones restored after it.

What the notebook teaches (the non-blocking connect, framing, the errors, the
signal handlers, epoll's flags) stays in its cells.
"""

from __future__ import annotations

import contextlib
import errno
import signal
import socket
import struct
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any

__all__ = [
    "close_with_reset",
    "handling",
    "interval_timer",
    "outcome",
    "refusing_address",
    "tcp_pair",
    "unanswered_address",
]

Address = tuple[str, int]
Handler = Callable[[int, FrameType | None], Any]
LOOPBACK = "127.0.0.1"


def tcp_pair(timeout: float = 5.0) -> tuple[socket.socket, socket.socket]:
    """``(client, server)``: the two ends of a new loopback TCP connection, blocking.

    Raises `OSError` if the connection cannot be made within ``timeout`` seconds.
    """
    with socket.create_server((LOOPBACK, 0)) as listener:
        listener.settimeout(timeout)
        client = socket.create_connection(listener.getsockname(), timeout=timeout)
        try:
            server, _ = listener.accept()
        except OSError:
            client.close()
            raise
    client.settimeout(None)
    server.settimeout(None)
    return client, server


@contextlib.contextmanager
def refusing_address() -> Iterator[Address]:
    """A loopback address where nothing listens, so a connect to it is refused.

    A socket is bound to the port and kept, not listening, for the ``with``
    block: the kernel answers a SYN to it with RST (ECONNREFUSED), and no other
    program can start listening on the port meanwhile.
    """
    with socket.socket() as holder:
        holder.bind((LOOPBACK, 0))
        yield holder.getsockname()


@contextlib.contextmanager
def unanswered_address() -> Iterator[Address]:
    # A connect that neither succeeds nor fails for a while, on loopback.
    # listen(0) leaves room for one connection in the accept queue; one filler
    # connection takes it and is never accepted. Linux then drops the SYN of
    # every further connect to this port (tcp_conn_request: "accept queue
    # full"), so the client stays in SYN-SENT and retransmits for about two
    # minutes: long enough for any connect timeout to expire first. macOS and
    # Windows count the backlog differently; there a connect may complete.
    """A listening loopback address at which a new connect stays pending (Linux)."""
    with socket.socket() as listener, socket.socket() as filler:
        listener.bind((LOOPBACK, 0))
        listener.listen(0)
        filler.connect(listener.getsockname())
        yield listener.getsockname()


def close_with_reset(sock: socket.socket) -> None:
    """Close ``sock`` with RST instead of FIN: SO_LINGER on, with a zero timeout."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def outcome(call: Callable[[], object]) -> str:
    """What ``call()`` returned (its repr) or raised (the class and errno name).

    ``b''``, ``3``, ``BrokenPipeError (EPIPE)``. Only `OSError` is caught:
    anything else is a bug in the scenario and propagates.
    """
    try:
        return repr(call())
    except OSError as exc:
        name = (
            errno.errorcode.get(exc.errno, str(exc.errno)) if exc.errno is not None else "no errno"
        )
        return f"{type(exc).__name__} ({name})"


@contextlib.contextmanager
def handling(signum: int, handler: Handler) -> Iterator[None]:
    """Run ``handler`` for ``signum`` during the ``with`` block, then restore the old handler.

    Raises `ValueError` if not called from the main thread (only the main
    thread may set signal handlers), as `signal.signal` does.
    """
    previous = signal.signal(signum, handler)
    try:
        yield
    finally:
        signal.signal(signum, previous)


@contextlib.contextmanager
def interval_timer(delay: float, interval: float = 0.0) -> Iterator[None]:
    """SIGALRM after ``delay`` s, then every ``interval`` s, until the ``with`` block ends.

    Raises `ValueError` naming a bad value (``delay`` must be > 0, ``interval``
    >= 0), and `AttributeError` on Windows, which has no ``signal.setitimer``.
    """
    if not delay > 0 or not interval >= 0:
        raise ValueError(
            f"delay must be > 0 and interval >= 0, got delay={delay!r}, interval={interval!r}"
        )
    signal.setitimer(signal.ITIMER_REAL, delay, interval)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
