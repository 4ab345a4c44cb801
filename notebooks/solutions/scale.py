"""Solutions to the exercises in 06-many-clients-and-big-messages."""

import selectors
import socket

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE

#: Exercise 1: reading pauses at max_buffer (16 KiB),
#: but the last recv() may bring recv_size (64 KiB) more.
predicted_kib = 16 + 64


def send_some(sock, data):
    """Send as much of ``data`` as the kernel takes now; return how many bytes that was."""
    view, sent = memoryview(data), 0
    while sent < len(view):
        try:
            n = sock.send(view[sent:])
        except BlockingIOError:
            break  # the buffer is full: the rest must wait for EVENT_WRITE
        sent += n
    return sent


def echo_many(address, payloads):
    """Echo each payload on its own connection, all at once on one selector; echoes in order."""
    sel = selectors.DefaultSelector()
    socks, echoes = [], [bytearray() for _ in payloads]
    try:
        for i, payload in enumerate(payloads):
            sock = socket.create_connection(address, timeout=5)
            sock.setblocking(False)
            socks.append(sock)
            sel.register(sock, READ | WRITE, [i, memoryview(payload)])
        while sel.get_map():
            for key, mask in sel.select(timeout=5):
                _on_ready(sel, key, mask, echoes)
    finally:
        sel.close()
        for sock in socks:
            sock.close()
    return [bytes(echo) for echo in echoes]


def _on_ready(sel, key, mask, echoes):
    sock, state = key.fileobj, key.data  # state: [index, what is left to send]
    if mask & WRITE:
        state[1] = state[1][send_some(sock, state[1]) :]
        if not state[1]:
            sock.shutdown(socket.SHUT_WR)  # all sent: EOF tells the server we are done
            sel.modify(sock, READ, state)
    if mask & READ:
        chunk = sock.recv(65536)
        echoes[state[0]] += chunk
        if not chunk:  # the server closed after echoing everything
            sel.unregister(sock)
