"""Solution to 11-capstone-the-gauntlet: a multi-client, non-blocking echo server on selectors.

It is the server written step by step in 09-build-your-own-server, in one piece:

* accept in a batch, make each socket non-blocking, register it for EVENT_READ
  with its own state object as ``key.data``;
* buffer what ``recv()`` returns and ``send()`` what the kernel takes, keeping
  the rest; EVENT_WRITE is registered only while output is pending, and
  ``modify()`` is called only when the wanted mask changes;
* stop reading while ``CAP`` bytes wait to be echoed (backpressure);
* at EOF keep flushing, and close once everything is echoed (half-close);
* a reset or a broken pipe closes that one connection;
* on stop, unregister then close every connection, unregister the listener
  (the caller owns it) and close the selector.
"""

import selectors

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
CAP = 256 * 1024  # most bytes held for one connection before it stops reading


class Conn:
    """One connection's state, kept as its key.data."""

    def __init__(self):
        self.out = bytearray()  # received, not yet echoed
        self.eof = False  # the peer sent EOF (maybe only a half-close)
        self.mask = READ  # what it is registered for now


def serve(listener, stop, selector=None, after_select=None):
    """Echo every client on ``listener`` until ``stop`` is set; then close what it opened.

    ``after_select(sel, ready)``, if given, runs after each round of events
    (09's exercise 3 closes idle connections there).
    """
    sel = selector if selector is not None else selectors.DefaultSelector()
    sel.register(listener, READ)
    try:
        while not stop.is_set():
            ready = sel.select(timeout=0.05)
            for key, mask in ready:
                if key.data is None:
                    on_accept(sel, listener)
                else:
                    on_ready(sel, key, mask)
            if after_select is not None:
                after_select(sel, ready)
    finally:
        shut_down(sel, listener)


def on_accept(sel, listener):
    for _ in range(64):
        try:
            sock, _address = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        sock.setblocking(False)
        sel.register(sock, READ, Conn())


def on_ready(sel, key, mask):
    sock, conn = key.fileobj, key.data
    if sock.fileno() < 0:
        return  # closed earlier in this round: kqueue lists READ and WRITE apart
    try:
        if mask & READ:
            on_readable(sock, conn)
        if conn.out:
            on_writable(sock, conn)
    except (ConnectionResetError, BrokenPipeError):
        return close(sel, sock)
    update(sel, sock, conn)


def on_readable(sock, conn):
    try:
        data = sock.recv(65536)
    except BlockingIOError:
        return
    conn.out += data
    conn.eof = not data


def on_writable(sock, conn):
    try:
        sent = sock.send(conn.out)
    except BlockingIOError:
        return
    del conn.out[:sent]


def update(sel, sock, conn):
    if conn.eof and not conn.out:
        return close(sel, sock)  # half-close: everything echoed, now close
    wanted = (READ if not conn.eof and len(conn.out) < CAP else 0) | (WRITE if conn.out else 0)
    if wanted != conn.mask:
        conn.mask = wanted
        sel.modify(sock, wanted, conn)


def close(sel, sock):
    sel.unregister(sock)
    sock.close()


def shut_down(sel, listener):
    for key in list(sel.get_map().values()):
        if key.fileobj is not listener:
            close(sel, key.fileobj)
    sel.unregister(listener)
    sel.close()
