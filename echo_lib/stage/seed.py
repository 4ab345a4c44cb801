"""The seed's programs, and the small ones written in its style, that a `Stage` runs.

`classic_server` and `classic_client` are the two scripts of the seed chapter
(PyMOTW's selectors chapter), turned into functions with three changes only,
each marked ``# changed:`` in the code: the sockets come in from the caller
(bound to port 0, so nothing collides), ``print`` becomes ``say`` (a thread
must never print in a notebook), and the loops stop at a deadline. A nested
function needs ``nonlocal`` where the script had ``global``. Notebook 05 shows
them cell for cell; a test checks that its cells hold this text.

The others stand for the servers and clients the faults and the exercises
need: a server that echoes in pieces (`chunked_echo_server`), one that closes
early (`closing_server`), a client that resets its connection
(`resetting_client`), the seed's client with a learner's stop test
(`stop_test_client`). Each takes, by parameter name, what a `Stage` gives:
``mysel``, ``say``, ``pause``.
"""

from __future__ import annotations

import selectors
import socket
import time

from ..driver.sockets import LINGER_ZERO, peer_closed, recv_all
from .turns import TURN_TIMEOUT

__all__ = [
    "accept_and_read",
    "chunked_echo_server",
    "classic_client",
    "classic_server",
    "closing_server",
    "resetting_client",
    "stop_test_client",
]

# The seed's programs, and the small ones written in its style, keep the seed's text
# (quotes and all): the formatter leaves them alone.
# fmt: off


def classic_server(server, mysel, say, seconds=5.0):
    """The seed's selectors_echo_server.py as a function.

    `server` is a TCP socket the caller created and bound (to port 0);
    `mysel` is the selector; `say` takes the place of print.
    """
    keep_running = True

    def read(connection, mask):
        "Callback for read events"
        nonlocal keep_running  # changed: a function's variable, not a global

        client_address = connection.getpeername()
        say('read({})'.format(client_address))
        data = connection.recv(1024)
        if data:
            # A readable client socket has data
            say('  received {!r}'.format(data))
            connection.sendall(data)
        else:
            # Interpret empty result as closed connection
            say('  closing')
            mysel.unregister(connection)
            connection.close()
            # Tell the main loop to stop
            keep_running = False

    def accept(sock, mask):
        "Callback for new connections"
        new_connection, addr = sock.accept()
        say('accept({})'.format(addr))
        new_connection.setblocking(False)
        mysel.register(new_connection, selectors.EVENT_READ, read)

    server_address = server.getsockname()  # changed: created and bound by the caller
    say('starting up on {} port {}'.format(*server_address))
    server.setblocking(False)
    server.listen(5)

    mysel.register(server, selectors.EVENT_READ, accept)

    deadline = time.monotonic() + seconds  # changed: the loop ends at a deadline
    while keep_running and time.monotonic() < deadline:
        say('waiting for I/O')
        for key, mask in mysel.select(timeout=1):
            callback = key.data
            callback(key.fileobj, mask)

    say('shutting down')
    mysel.close()


def classic_client(server_address, sock, mysel, say, seconds=5.0):
    """The seed's selectors_echo_client.py as a function.

    `server_address` is the server's (host, port); `sock` is a new TCP
    socket from the caller; `mysel` is the selector; `say` takes the place
    of print.
    """
    keep_running = True
    outgoing = [
        b'It will be repeated.',
        b'This is the message.  ',
    ]
    bytes_sent = 0
    bytes_received = 0

    # Connecting is a blocking operation, so call setblocking()
    # after it returns.
    say('connecting to {} port {}'.format(*server_address))
    sock.connect(server_address)  # changed: the socket comes from the caller
    sock.setblocking(False)

    # Set up the selector to watch for when the socket is ready
    # to send data as well as when there is data to read.
    mysel.register(
        sock,
        selectors.EVENT_READ | selectors.EVENT_WRITE,
    )

    deadline = time.monotonic() + seconds  # changed: the loop ends at a deadline
    while keep_running and time.monotonic() < deadline:
        say('waiting for I/O')
        for key, mask in mysel.select(timeout=1):
            connection = key.fileobj
            client_address = connection.getpeername()
            say('client({})'.format(client_address))

            if mask & selectors.EVENT_READ:
                say('  ready to read')
                data = connection.recv(1024)
                if data:
                    # A readable client socket has data
                    say('  received {!r}'.format(data))
                    bytes_received += len(data)

                # Interpret empty result as closed connection,
                # and also close when we have received a copy
                # of all of the data sent.
                keep_running = not (
                    data or
                    (bytes_received and
                     (bytes_received == bytes_sent))
                )

            if mask & selectors.EVENT_WRITE:
                say('  ready to write')
                if not outgoing:
                    # We are out of messages, so we no longer need to
                    # write anything. Change our registration to let
                    # us keep reading responses from the server.
                    say('  switching to read-only')
                    mysel.modify(sock, selectors.EVENT_READ)
                else:
                    # Send the next message.
                    next_msg = outgoing.pop()
                    say('  sending {!r}'.format(next_msg))
                    sock.sendall(next_msg)
                    bytes_sent += len(next_msg)

    say('shutting down')
    mysel.unregister(connection)
    connection.close()
    mysel.close()


def accept_and_read(listener, pause, say, nbytes, seconds):
    """Listen, let the client connect and send, accept it, read `nbytes`: return (conn, data).

    `conn` is blocking, with a `seconds` timeout; `data` is shorter only if
    the client closed first.
    """
    listener.listen(1)
    pause()  # the client connects and sends while we wait
    conn, addr = listener.accept()
    say('accept({})'.format(addr))
    try:
        conn.settimeout(seconds)
        data = recv_all(conn, nbytes)  # all nbytes, unless the client closes first
    except BaseException:
        conn.close()
        raise
    say('  received {!r}'.format(data))
    return conn, data


def chunked_echo_server(listener, pause, say, nbytes=42, pieces=2, seconds=5.0):
    """Accept one client and echo its first `nbytes` bytes in `pieces` pieces.

    After each piece it hands the turn to the client (`pause`), so the
    client reads each piece before the next one is sent. It keeps the
    connection open until the client closes it.
    """
    conn, data = accept_and_read(listener, pause, say, nbytes, seconds)
    with conn:
        size = max(1, -(-len(data) // pieces))  # bytes per piece, rounded up
        for start in range(0, len(data), size):
            if peer_closed(conn):
                say('the client closed the connection: {} bytes never sent'.format(
                    len(data) - start))
                return
            say('sending bytes {}..{} of {}'.format(start, min(start + size, len(data)), len(data)))
            conn.sendall(data[start:start + size])
            pause()  # the client reads this piece before the next one is sent
        deadline = time.monotonic() + seconds
        while not peer_closed(conn) and time.monotonic() < deadline:
            pause()
        say('the client closed the connection')


def closing_server(listener, pause, say, nbytes=42, echo=0):
    """Accept one client, read its first `nbytes` bytes, echo `echo` of them, and close.

    With ``echo=0`` it stands for a server that died before it could echo:
    the kernel closes a dead program's sockets the same way.
    """
    conn, data = accept_and_read(listener, pause, say, nbytes, TURN_TIMEOUT)
    with conn:
        conn.sendall(data[:echo])  # the client reads it before the EOF that follows
    say('closed after echoing {} of {} bytes'.format(min(echo, len(data)), len(data)))


def resetting_client(server_address, sock, pause, say, message=b'hello'):
    """Connect, send `message`, then close with SO_LINGER 0: the kernel sends RST, not FIN."""
    say('connecting to {} port {}'.format(*server_address))
    sock.connect(server_address)
    sock.sendall(message)
    say('  sending {!r}'.format(message))
    pause()  # the server reads the message
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_ZERO)
    sock.close()
    say('reset the connection (SO_LINGER 0, then close)')


def stop_test_client(server_address, sock, mysel, should_stop, seconds=0.5):
    """The seed's client, quiet, with ``should_stop(sent, received, data)`` as its stop test.

    Returns what happened: bytes sent and received, and whether it stopped
    before its deadline (`seconds`).
    """
    keep_running = True
    outgoing = [b'It will be repeated.', b'This is the message.  ']
    bytes_sent = bytes_received = 0
    sock.connect(server_address)
    sock.setblocking(False)
    mysel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
    deadline = time.monotonic() + seconds
    while keep_running and time.monotonic() < deadline:
        for _key, mask in mysel.select(timeout=1):
            if mask & selectors.EVENT_READ:
                data = sock.recv(1024)
                bytes_received += len(data)
                keep_running = not should_stop(bytes_sent, bytes_received, data)
            if mask & selectors.EVENT_WRITE:
                if not outgoing:
                    mysel.modify(sock, selectors.EVENT_READ)
                else:
                    next_msg = outgoing.pop()
                    sock.sendall(next_msg)
                    bytes_sent += len(next_msg)
    mysel.unregister(sock)
    sock.close()
    return {'sent': bytes_sent, 'received': bytes_received, 'stopped': not keep_running}


# fmt: on
