"""The echo protocol as pure buffer logic: no sockets, no selectors, no threads.

Following h11's sans-IO split, `EchoConnection` only answers questions about
state. The driver (`server.py`) does the I/O and asks:

* what did the peer send?             ``receive_data(data)``  (``b""`` means EOF)
* what should go out now?              ``data_to_send()``
* how much of it did the kernel take?  ``sent(n)``
* which events do I need?              ``wants_read``, ``wants_write``
* may I close?                         ``finished``

Three rules make the server correct where the classic example is not:

1. Output is buffered, so a partial ``send()`` never loses bytes and never
   blocks: ``wants_write`` is true exactly while output is pending.
2. Reading pauses while the buffer holds ``max_buffer`` bytes or more
   (backpressure): a client that never reads cannot make the server grow.
3. After the peer's EOF (a half-close, ``shutdown(SHUT_WR)``) the pending echo
   is still flushed; only then is the connection ``finished``.
"""

from __future__ import annotations

__all__ = ["DEFAULT_MAX_BUFFER", "SEND_CHUNK", "EchoConnection"]

DEFAULT_MAX_BUFFER = 1 << 20  # 1 MiB of pending echo per connection
SEND_CHUNK = 1 << 18  # hand the kernel at most 256 KiB per send() call


class EchoConnection:
    """Buffer state of one echo connection.

    Raises `ValueError` for a ``max_buffer`` below 1.
    """

    def __init__(self, max_buffer: int = DEFAULT_MAX_BUFFER) -> None:
        if not isinstance(max_buffer, int) or max_buffer < 1:
            raise ValueError(f"max_buffer must be a positive int, got {max_buffer!r}")
        self.max_buffer = max_buffer
        self.bytes_received = 0
        self.bytes_sent = 0
        self.peer_eof = False
        self._out = bytearray()

    def receive_data(self, data: bytes) -> None:
        """Feed what ``recv()`` returned; ``b""`` records the peer's EOF.

        Raises `RuntimeError` if data arrives after EOF.
        """
        if not data:
            self.peer_eof = True
        elif self.peer_eof:
            raise RuntimeError(f"received {len(data)!r} bytes after EOF")
        else:
            self._out += data
            self.bytes_received += len(data)

    def data_to_send(self, limit: int = SEND_CHUNK) -> bytes:
        """The next bytes to hand to ``send()`` (at most ``limit``; may be empty)."""
        return bytes(self._out[:limit]) if len(self._out) > limit else bytes(self._out)

    def sent(self, n: int) -> None:
        """Drop the first ``n`` pending bytes, which the kernel accepted.

        Raises `ValueError` if ``n`` is negative or more than is pending.
        """
        if not 0 <= n <= len(self._out):
            raise ValueError(f"sent() got {n!r} bytes, but {len(self._out)} are pending")
        del self._out[:n]  # O(1) at the front of a bytearray in CPython
        self.bytes_sent += n

    @property
    def pending(self) -> int:
        """Bytes received but not yet echoed."""
        return len(self._out)

    @property
    def wants_read(self) -> bool:
        """Read while the peer may send more and the buffer has room."""
        return not self.peer_eof and len(self._out) < self.max_buffer

    @property
    def wants_write(self) -> bool:
        """Write exactly while output is pending."""
        return bool(self._out)

    @property
    def finished(self) -> bool:
        """The peer is done sending and every byte has been echoed."""
        return self.peer_eof and not self._out

    def __repr__(self) -> str:
        state = "eof" if self.peer_eof else "open"
        return f"<EchoConnection {state} pending={self.pending} in={self.bytes_received} out={self.bytes_sent}>"
