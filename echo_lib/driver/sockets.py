"""Small socket helpers every layer above needs, each written once."""

from __future__ import annotations

import socket
import struct
import sys

__all__ = ["LINGER_ZERO", "LOOPBACK", "close_with_reset"]

LOOPBACK = "127.0.0.1"

# struct linger is two ints on POSIX and two unsigned shorts on Windows.
# On, with a zero timeout: close() then sends RST instead of FIN.
LINGER_ZERO = struct.pack("HH" if sys.platform == "win32" else "ii", 1, 0)


def close_with_reset(sock: socket.socket) -> None:
    """Close ``sock`` with RST instead of FIN (SO_LINGER on, zero seconds)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_ZERO)
    sock.close()
