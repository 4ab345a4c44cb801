"""Solutions to the exercises in 05-the-classic-echo-pair."""

import selectors

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


def should_stop(bytes_sent, bytes_received, data):
    """Stop at EOF, or once every byte sent has come back; not at the first chunk."""
    return not data or bytes_received == bytes_sent


def on_ready(mysel, connection, mask, pending):
    """Echo without sendall(): keep what send() did not take, and ask for EVENT_WRITE only while some is left."""
    if mask & READ:
        data = connection.recv(65536)
        if not data:  # the client closed: we are done with this connection
            mysel.unregister(connection)
            connection.close()
            return
        pending += data
    if pending:
        try:
            sent = connection.send(pending)
        except BlockingIOError:
            sent = 0  # the kernel's buffer is full: try again when select() says WRITE
        del pending[:sent]
    wanted = (READ | WRITE) if pending else READ
    if mysel.get_key(connection).events != wanted:  # modify() only when the mask changes
        mysel.modify(connection, wanted)
