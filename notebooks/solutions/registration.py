"""Solutions to the exercises in 02-registration."""

import selectors


def on_accept(sock, mask):
    """The accept callback: take the waiting connection and make it non-blocking."""
    conn, addr = sock.accept()
    conn.setblocking(False)
    return conn


def accept_one(sel, listener):
    """Register ``listener`` (data: ``on_accept``), dispatch one event, return the connection."""
    sel.register(listener, selectors.EVENT_READ, on_accept)
    try:
        for key, mask in sel.select(timeout=5):
            return key.data(key.fileobj, mask)
    finally:
        sel.unregister(listener)


def set_interest(sel, sock, events):
    """Make ``sel`` watch ``sock`` for exactly ``events`` (0: not at all); no call for no change."""
    key = sel.get_map().get(sock)
    if key is None:
        if events:
            sel.register(sock, events)
    elif not events:
        sel.unregister(sock)
    elif events != key.events:
        sel.modify(sock, events, key.data)
