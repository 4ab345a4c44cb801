"""Solutions to the exercises in 09-build-your-own-server.

The server itself is the one the notebook builds in seven steps; finished, it
is notebooks/solutions/capstone.py, and these solutions reuse its functions.
"""

import selectors
import time

from capstone import READ, Conn, close, on_ready, shut_down

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
    sel = selector if selector is not None else selectors.DefaultSelector()
    sel.register(listener, READ)
    try:
        while not stop.is_set():
            for key, mask in sel.select(timeout=0.05):
                if key.data is None:
                    on_accept_timed(sel, listener)
                else:
                    key.data.last = time.monotonic()
                    on_ready(sel, key, mask)
            close_idle(sel, time.monotonic())
    finally:
        shut_down(sel, listener)


def on_accept_timed(sel, listener):
    on_accept_batch(sel, listener)
    now = time.monotonic()
    for key in list(sel.get_map().values()):
        if key.data is not None and not hasattr(key.data, "last"):
            key.data.last = now  # a new connection: silent since now


def close_idle(sel, now):
    for key in list(sel.get_map().values()):
        if key.data is not None and now - key.data.last > IDLE_TIMEOUT:
            close(sel, key.fileobj)
