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

from collections import deque

from .checks import check_int

__all__ = ["DEFAULT_MAX_BUFFER", "SEND_CHUNK", "EchoConnection"]

DEFAULT_MAX_BUFFER = 1 << 20  # 1 MiB of pending echo per connection
SEND_CHUNK = 1 << 18  # hand the kernel at most 256 KiB per send() call


class EchoConnection:
    """Buffer state of one echo connection.

    Raises `ValueError` for a ``max_buffer`` below 1.
    """

    def __init__(self, max_buffer: int = DEFAULT_MAX_BUFFER) -> None:
        self.max_buffer = check_int("max_buffer", max_buffer, 1)
        self.bytes_received = 0
        self.bytes_sent = 0
        self.peer_eof = False
        # What ``recv()`` returned, not yet echoed, as received: no copies.
        # Only the head may be partly sent (then it is a memoryview).
        self._chunks: deque[bytes | memoryview] = deque()
        self._pending = 0

    def receive_data(self, data: bytes) -> None:
        """Feed what ``recv()`` returned; ``b""`` records the peer's EOF.

        Raises `RuntimeError` if data arrives after EOF.
        """
        if not data:
            self.peer_eof = True
        elif self.peer_eof:
            raise RuntimeError(f"received {len(data)!r} bytes after EOF")
        else:
            self._chunks.append(data)
            size = len(data)
            self._pending += size
            self.bytes_received += size

    # Called for every echoed message (issue 11), so the empty and the
    # one-chunk cases come first and cost one test each.
    def data_to_send(self, limit: int = SEND_CHUNK) -> bytes | memoryview:
        """The next bytes to hand to ``send()`` (at most ``limit``; empty if none).

        Usually the very object ``recv()`` returned; small chunks queued behind
        a slow reader are joined first, so that one ``send()`` takes them all.
        """
        chunks = self._chunks
        if not chunks:
            return b""
        head = chunks[0]
        if len(chunks) > 1 and len(head) < limit:
            self._join(limit)
            head = chunks[0]
        return head if len(head) <= limit else memoryview(head)[:limit]

    def _join(self, limit: int) -> None:
        parts, size = [], 0
        while self._chunks and size < limit:
            parts.append(self._chunks.popleft())
            size += len(parts[-1])
        self._chunks.appendleft(b"".join(parts))

    # On loopback send() nearly always takes everything (issue 11): that case
    # clears the queue at once instead of walking it.
    def sent(self, n: int) -> None:
        """Drop the first ``n`` pending bytes, which the kernel accepted.

        Raises `ValueError` if ``n`` is negative or more than is pending.
        """
        if n == self._pending:
            self._chunks.clear()
            self._pending = 0
            self.bytes_sent += n
            return
        if not 0 <= n < self._pending:
            raise ValueError(f"sent() got {n!r} bytes, but {self._pending} are pending")
        self._pending -= n
        self.bytes_sent += n
        chunks = self._chunks
        while n:
            head = chunks[0]
            if n < len(head):
                chunks[0] = memoryview(head)[n:]  # no copy
                return
            chunks.popleft()
            n -= len(head)

    @property
    def pending(self) -> int:
        """Bytes received but not yet echoed."""
        return self._pending

    @property
    def wants_read(self) -> bool:
        """Read while the peer may send more and the buffer has room."""
        return not self.peer_eof and self._pending < self.max_buffer

    @property
    def wants_write(self) -> bool:
        """Write exactly while output is pending."""
        return self._pending > 0

    @property
    def finished(self) -> bool:
        """The peer is done sending and every byte has been echoed."""
        return self.peer_eof and not self._pending

    def __repr__(self) -> str:
        state = "eof" if self.peer_eof else "open"
        return (
            f"<EchoConnection {state} pending={self.pending} "
            f"in={self.bytes_received} out={self.bytes_sent}>"
        )
