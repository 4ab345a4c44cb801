"""Solution to the exercise in 00-start-here."""

import socket


def echo_once(address, message):
    """Send ``message`` to the echo server at ``address`` and return the echo."""
    with socket.create_connection(address, timeout=5) as sock:
        sock.sendall(message)
        sock.shutdown(socket.SHUT_WR)  # tell the server we are done sending
        reply = bytearray()
        while chunk := sock.recv(65536):
            reply += chunk
    return bytes(reply)
