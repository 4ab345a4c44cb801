"""Input checks for the whole library, each written once.

Each raises with the name and the bad value shown, as `selectors` itself does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = [
    "MAX_TIMEOUT",
    "check_host",
    "check_int",
    "check_messages",
    "check_number",
    "check_port",
    "check_size",
    "check_timeout",
    "is_loopback",
]

_BytesLike = (bytes, bytearray, memoryview)

#: The longest timeout accepted, in seconds (a day). Far longer ones overflow
#: the C time types under ``socket.settimeout()`` and ``threading.Event.wait()``.
MAX_TIMEOUT = 86_400.0


def check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    """Return ``value`` if it is an int in ``low..high`` (no upper bound when ``high`` is None).

    Raises `ValueError` naming ``name`` and the bad value; a bool is not an int here.
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        allowed = f"of at least {low}" if high is None else f"in {low}..{high}"
        raise ValueError(f"{name} must be an int {allowed}, got {value!r}")
    return value


def check_number(name: str, value: object, low: float, high: float) -> float:
    """Return ``value`` as a float if it is a real number in ``low..high``.

    Raises `ValueError` naming ``name`` and the bad value (NaN is never in range).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValueError(f"{name} must be a number in {low:g}..{high:g}, got {value!r}")
    return float(value)


def check_port(port: object) -> int:
    """Return ``port`` if it is an int in 0..65535; raise `ValueError` otherwise."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an int in 0..65535, got {port!r}")
    return port


def check_size(name: str, value: object) -> int:
    """Return ``value`` if it is an int of at least 1; raise `ValueError` naming ``name`` otherwise.

    ``recv(0)`` returns ``b""``, which reads as EOF: a size of 0 would end every connection.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int of at least 1, got {value!r}")
    return value


def check_timeout(timeout: object, name: str = "timeout") -> float:
    """Return ``timeout`` as a float if it is a number of seconds in (0, `MAX_TIMEOUT`].

    Raises `ValueError` naming ``name`` and the bad value: 0 would make a
    blocking call non-blocking, a negative or huge value fails deep inside the
    socket module with a message that names neither.
    """
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not 0 < timeout <= MAX_TIMEOUT
    ):
        raise ValueError(
            f"{name} must be a number of seconds above 0 and at most {MAX_TIMEOUT:g}, got {timeout!r}"
        )
    return float(timeout)


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
            raise TypeError(
                f"each message must be bytes, got {_short(message)} ({type(message).__name__})"
            )
        checked.append(bytes(message))
    return checked


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
