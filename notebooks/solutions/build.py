"""Solutions to the exercises in 09-build-your-own-server.

The server itself is the one the notebook builds in seven steps; finished, it
is notebooks/solutions/capstone.py, and these solutions reuse its functions.
"""

import time

from capstone import READ, Conn, close, serve

IDLE_TIMEOUT = 0.5  # seconds a connection may stay silent


def on_accept_batch(sel, listener):
    """Exercise 2: accept every waiting connection, up to 64, and stop at BlockingIOError."""
    for _ in range(64):
        try:
            sock, _address = listener.accept()
        except BlockingIOError:
            return  # no connection is waiting: the batch is over
        sock.setblocking(False)
        sel.register(sock, READ, Conn())


def serve_with_timeout(listener, stop, selector=None):
    """Exercise 3: the finished server, which also closes connections silent for IDLE_TIMEOUT."""
    serve(listener, stop, selector, after_select=close_idle)


def close_idle(sel, ready):
    """Note when each ready connection was last heard of; close those silent for too long."""
    now = time.monotonic()
    for key, _mask in ready:
        if key.data is not None:
            key.data.last = now
    for key in list(sel.get_map().values()):
        conn = key.data
        if conn is not None and now - vars(conn).setdefault("last", now) > IDLE_TIMEOUT:
            close(sel, key.fileobj)  # a new connection counts as heard of when first seen here
