"""Input checks shared by the server, the client and the CLI.

Each raises with the bad value shown, as `selectors` itself does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["check_host", "check_messages", "check_port", "is_loopback"]

_BytesLike = (bytes, bytearray, memoryview)


def check_port(port: object) -> int:
    """Return ``port`` if it is an int in 0..65535; raise `ValueError` otherwise."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an int in 0..65535, got {port!r}")
    return port


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and every 127.0.0.0/8 or ::1 address."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(host: object, allow_remote: bool = False) -> str:
    """Return ``host`` if it is loopback, or any string with ``allow_remote=True``.

    Raises `TypeError` for a non-string and `ValueError` for a non-loopback
    host without the opt-in: a teaching server must not listen on a network
    by accident.
    """
    if not isinstance(host, str):
        raise TypeError(f"host must be a str, got {host!r}")
    if not (allow_remote or is_loopback(host)):
        raise ValueError(
            f"host {host!r} is not a loopback address; use '127.0.0.1', "
            "or pass allow_remote=True to reach other machines on purpose"
        )
    return host


def check_messages(messages: object) -> list[bytes]:
    """Return ``messages`` as a list of bytes; one bytes object counts as one message.

    Raises `TypeError` naming the first message that is not bytes-like.
    """
    if isinstance(messages, _BytesLike):
        return [bytes(messages)]
    if isinstance(messages, str) or not isinstance(messages, Iterable):
        raise TypeError(f"messages must be bytes or a list of bytes, got {_short(messages)}")
    checked = []
    for message in messages:
        if not isinstance(message, _BytesLike):
            raise TypeError(f"each message must be bytes, got {_short(message)} ({type(message).__name__})")
        checked.append(bytes(message))
    return checked


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
