"""Solutions to the exercises in 10-connections-framing-and-errors."""

import errno
import selectors
import socket
import struct

predictions = {
    "connect_ex": "EINPROGRESS",
    "so_error": "ECONNREFUSED",
    "unread": "ConnectionResetError",
    "after_reset": "b''",
    "second_send": "BrokenPipeError",
}


def connect_with_timeout(address, timeout):
    """A connected non-blocking socket, or ConnectionRefusedError/OSError/TimeoutError."""
    sock = socket.socket()
    try:
        sock.setblocking(False)
        err = sock.connect_ex(address)
        if err not in (0, errno.EINPROGRESS):
            raise OSError(err, errno.errorcode[err])
        with selectors.DefaultSelector() as sel:
            sel.register(sock, selectors.EVENT_WRITE)
            if not sel.select(timeout):
                raise TimeoutError(f"connect to {address!r} took more than {timeout} s")
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err == errno.ECONNREFUSED:
            raise ConnectionRefusedError(err, "connection refused")
        if err:
            raise OSError(err, errno.errorcode[err])
        return sock
    except BaseException:
        sock.close()
        raise


class FrameDecoder:
    """Length-prefixed frames (4-byte big-endian length, then payload) from any chunks."""

    HEADER = struct.Struct("!I")

    def __init__(self):
        self.buffer = bytearray()

    def feed(self, data):
        self.buffer += data
        messages = []
        while len(self.buffer) >= self.HEADER.size:
            (length,) = self.HEADER.unpack_from(self.buffer)
            end = self.HEADER.size + length
            if len(self.buffer) < end:
                break
            messages.append(bytes(self.buffer[self.HEADER.size : end]))
            del self.buffer[:end]
        return messages

    def eof(self):
        if self.buffer:
            raise EOFError(f"the stream ended inside a frame: {len(self.buffer)} bytes left over")
