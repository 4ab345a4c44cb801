"""Loopback situations made to order: a TCP pair, a refusing port, an unanswered connect.

Each helper makes one situation happen on loopback, on every run, for the
lesson of notebook 10 and for its checkers alike:

- `tcp_pair()`: both ends of one loopback TCP connection;
- `refusing_address()`: an address whose port answers a connect with RST
  (a socket bound to it that does not listen), held for a ``with`` block so no
  other program can take the port meanwhile;
- `unanswered_address()`: a listener whose accept queue is full, so that a new
  connect stays pending (Linux drops the SYN; see the function);
- `outcome()`: what a call returned or raised, as one line of text.

A close that sends RST instead of FIN is `driver.sockets.close_with_reset`.
"""

from __future__ import annotations

import contextlib
import errno
import socket
from collections.abc import Callable, Iterator

from ..core.checks import check_timeout
from .sockets import LOOPBACK

__all__ = ["Address", "outcome", "refusing_address", "tcp_pair", "unanswered_address"]

Address = tuple[str, int]


def tcp_pair(timeout: float = 5.0) -> tuple[socket.socket, socket.socket]:
    """``(client, server)``: the two ends of a new loopback TCP connection, blocking.

    Raises `ValueError` for a bad ``timeout`` and `OSError` if the connection
    cannot be made within ``timeout`` seconds.
    """
    timeout = check_timeout(timeout)
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


# A connect that neither succeeds nor fails for a while, on loopback.
# listen(0) leaves room for one connection in the accept queue; one filler
# connection takes it and is never accepted. Linux then drops the SYN of
# every further connect to this port (tcp_conn_request: "accept queue
# full"), so the client stays in SYN-SENT and retransmits for about two
# minutes: long enough for any connect timeout to expire first. macOS and
# Windows count the backlog differently; there a connect may complete.
@contextlib.contextmanager
def unanswered_address() -> Iterator[Address]:
    """A listening loopback address at which a new connect stays pending (Linux)."""
    with socket.socket() as listener, socket.socket() as filler:
        listener.bind((LOOPBACK, 0))
        listener.listen(0)
        filler.connect(listener.getsockname())
        yield listener.getsockname()


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
