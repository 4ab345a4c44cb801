"""Solutions to the exercises in 05-the-classic-echo-pair."""

import selectors

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE

#: Exercise 1: the seed's client stops at the first non-empty recv(), the first 14-byte piece.
predicted_bytes = 14


def should_stop(bytes_sent, bytes_received, data):
    """Stop at EOF, or once every byte sent has come back; not at the first chunk."""
    return not data or bytes_received == bytes_sent


def on_ready(mysel, connection, mask, pending):
    """Echo without sendall(); at EOF stop reading, flush what is owed, then close.

    The registration is the connection's state: READ while the client may
    still send, WRITE while an echo is pending. When neither is left, the
    connection is done.
    """
    reading = mysel.get_key(connection).events & READ
    if mask & READ:
        data = connection.recv(65536)
        if data:
            pending += data
        else:
            reading = 0  # EOF: the client is done sending, but its echo may still be owed
    if pending:
        try:
            sent = connection.send(pending)
        except BlockingIOError:
            sent = 0  # the kernel's buffer is full: try again when select() says WRITE
        del pending[:sent]
    wanted = reading | (WRITE if pending else 0)
    if not wanted:
        mysel.unregister(connection)
        connection.close()
    elif mysel.get_key(connection).events != wanted:  # modify() only when the mask changes
        mysel.modify(connection, wanted)
