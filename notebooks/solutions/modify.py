"""Solutions to the exercises in 04-modify."""

import selectors

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


def update_registration(sel, sock, conn):
    """Register ``sock`` for exactly what ``conn`` wants; modify() only on a change."""
    key = sel.get_key(sock)
    wanted = (READ if conn.wants_read else 0) | (WRITE if conn.wants_write else 0)
    if not wanted:
        sel.unregister(sock)  # the echo is finished: nothing left to wait for
    elif wanted != key.events:
        sel.modify(sock, wanted, key.data)  # keep the data (the callback)


def on_writable(sel, sock, outgoing):
    """Send from the first queued message; switch to READ once nothing is left."""
    if not outgoing:
        sel.modify(sock, READ, sel.get_key(sock).data)
        return
    sent = sock.send(outgoing[0])
    if sent < len(outgoing[0]):
        outgoing[0] = outgoing[0][sent:]  # keep the rest, at the front
    else:
        outgoing.popleft()
