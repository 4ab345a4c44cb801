"""`EchoExchange`: the echo client's queue, byte counts and stop rule, with no sockets.

The seed's client stops after the first non-empty ``recv()``, so an echo that
arrives in two chunks is half lost. The rule here: the client is done when
every queued byte has gone out and as many bytes have come back, or at the
server's EOF, or after an error; never earlier. Like `EchoConnection` on the
server side, this class only answers questions; the driver
(`driver/client.py`) does the I/O and asks:

* what should go out now?              ``data_to_send()``
* how much of it did the kernel take?  ``sent(n)``
* what came back?                      ``receive_data(data)``  (``b""`` means EOF)
* the socket failed                    ``fail(reason)``
* is anything left to send?            ``wants_write``
* may I stop?                          ``done`` (``echoed``: every byte is back)
"""

from __future__ import annotations

from collections import deque

from .checks import check_int, check_messages

__all__ = ["EchoExchange"]


class EchoExchange:
    """What one echo client has to send, has sent and got back.

    ``messages`` is bytes or a list of bytes (see `check_messages`, which
    raises `TypeError` for anything else). Empty messages send nothing.
    """

    def __init__(self, messages: object) -> None:
        self.messages = check_messages(messages)
        self.payload = b"".join(self.messages)
        self.expected = len(self.payload)
        self.bytes_sent = 0
        self.received = bytearray()
        self.eof = False
        self.error = ""
        # The head may be partly sent: then it is the unsent tail of a message.
        self._queue: deque[memoryview] = deque(memoryview(m) for m in self.messages if m)

    # -- sending ------------------------------------------------------------------

    @property
    def wants_write(self) -> bool:
        """Bytes are still queued to send."""
        return bool(self._queue)

    def data_to_send(self) -> memoryview:
        """The unsent rest of the next message (empty when nothing is queued)."""
        return self._queue[0] if self._queue else memoryview(b"")

    def sent(self, nbytes: int) -> bool:
        """Record that ``send()`` took ``nbytes`` of `data_to_send()`; return whether all of it.

        Raises `ValueError` for a count outside 0..len(data_to_send()).
        """
        head = self.data_to_send()
        check_int("nbytes", nbytes, 0, len(head))
        self.bytes_sent += nbytes
        if nbytes < len(head):
            self._queue[0] = head[nbytes:]
            return False
        if self._queue:
            self._queue.popleft()
        return True

    # -- receiving ----------------------------------------------------------------

    def receive_data(self, data: bytes) -> None:
        """Feed what ``recv()`` returned; ``b""`` records the server's EOF.

        Raises `RuntimeError` if data arrives after EOF.
        """
        if not data:
            self.eof = True
        elif self.eof:
            raise RuntimeError(f"received {len(data)!r} bytes after EOF")
        else:
            self.received += data

    def fail(self, reason: str) -> None:
        """Record that the socket failed (``reason``: the error's name); the exchange is done."""
        self.error = reason or "error"

    # -- verdict ------------------------------------------------------------------

    @property
    def bytes_received(self) -> int:
        return len(self.received)

    @property
    def missing(self) -> int:
        """Bytes sent or queued that have not come back (negative if more came back)."""
        return self.expected - len(self.received)

    @property
    def intact(self) -> bool:
        """Everything received so far is the start of what was sent, unchanged."""
        return self.payload.startswith(self.received)

    @property
    def echoed(self) -> bool:
        """Nothing is left to send and at least every byte sent has come back."""
        return not self._queue and len(self.received) >= self.expected

    @property
    def done(self) -> bool:
        """The client may stop: everything echoed, or EOF, or an error."""
        return self.echoed or self.eof or bool(self.error)

    def __repr__(self) -> str:
        return (
            f"<EchoExchange sent {self.bytes_sent}/{self.expected}, "
            f"received {len(self.received)}{', eof' if self.eof else ''}"
            f"{', ' + self.error if self.error else ''}>"
        )
