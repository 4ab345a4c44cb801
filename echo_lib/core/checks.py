"""Input checks for the whole library, each written once, also as argparse ``type=`` functions.

Each raises with the name and the bad value shown, as `selectors` itself does.
"""

from __future__ import annotations

import argparse
import ipaddress
from collections.abc import Callable, Iterable
from typing import TypeVar

__all__ = [
    "MAX_TIMEOUT",
    "arg_type",
    "check_host",
    "check_int",
    "check_messages",
    "check_number",
    "check_port",
    "check_size",
    "check_timeout",
    "int_arg",
    "is_int",
    "is_loopback",
    "is_number",
    "list_arg",
    "number_arg",
    "port_arg",
    "seconds_arg",
]

T = TypeVar("T")

_BytesLike = (bytes, bytearray, memoryview)

#: The longest timeout accepted, in seconds (a day). Far longer ones overflow
#: the C time types under ``socket.settimeout()`` and ``threading.Event.wait()``.
MAX_TIMEOUT = 86_400.0


def is_int(value: object) -> bool:
    """Whether ``value`` is an int and not a bool (``True`` is an int to Python, not to us)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> bool:
    """Whether ``value`` is an int or a float, and not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    """Return ``value`` if it is an int in ``low..high`` (no upper bound when ``high`` is None).

    Raises `ValueError` naming ``name`` and the bad value; a bool is not an int here.
    """
    if not is_int(value) or value < low or (high is not None and value > high):
        raise _must(name, _int_rule(low, high), value)
    return value


def check_number(name: str, value: object, low: float, high: float) -> float:
    """Return ``value`` as a float if it is a real number in ``low..high``.

    Raises `ValueError` naming ``name`` and the bad value (NaN is never in range).
    """
    if not is_number(value) or not low <= value <= high:
        raise _must(name, _number_rule(low, high), value)
    return float(value)


def check_port(port: object) -> int:
    """Return ``port`` if it is an int in 0..65535; raise `ValueError` otherwise."""
    return check_int("port", port, 0, 65535)


def check_size(name: str, value: object) -> int:
    """Return ``value`` if it is an int of at least 1; raise `ValueError` naming ``name`` otherwise.

    ``recv(0)`` returns ``b""``, which reads as EOF: a size of 0 would end every connection.
    """
    return check_int(name, value, 1)


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
        raise _must(name, _SECONDS_RULE, timeout)
    return float(timeout)


# The rule each range check states, and the one way its message is worded:
# "NAME must be RULE, got VALUE". The argparse functions below word their
# errors the same way, showing the text as typed.
_SECONDS_RULE = f"a number of seconds above 0 and at most {MAX_TIMEOUT:g}"


def _int_rule(low: int, high: int | None) -> str:
    return f"an int of at least {low}" if high is None else f"an int in {low}..{high}"


def _number_rule(low: float, high: float) -> str:
    return f"a number in {low:g}..{high:g}"


def _must(name: str, rule: str, got: object) -> ValueError:
    return ValueError(f"{name} must be {rule}, got {got!r}")


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


# -- the same checks as argparse ``type=`` functions ---------------------------------
# argparse calls ``type(text)`` for an option's text and, when it raises
# `argparse.ArgumentTypeError`, prints "argument --NAME: " and its message.
# Each function here parses the text, applies the check above, and on any
# failure (text that does not parse, or a value out of range) words the error
# as that check does, with the text as typed: "size must be an int in
# 1..16777216, got '0'".


def arg_type(check: Callable[[str], T]) -> Callable[[str], T]:
    """An argparse ``type=`` function from ``check(text)``, which raises `ValueError` for bad text.

    The `ValueError`'s message becomes argparse's, unchanged.
    """

    def convert(text: str) -> T:
        try:
            return check(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = getattr(check, "__name__", "argument")
    return convert


def _parsed(
    name: str, rule: str, parse: Callable[[str], object], check: Callable[[object], T]
) -> Callable[[str], T]:
    """``type=`` function: ``check(parse(text))``, any failure worded as "NAME must be RULE"."""

    def convert(text: str) -> T:
        try:
            return check(parse(text))
        except ValueError:
            raise argparse.ArgumentTypeError(str(_must(name, rule, text))) from None

    convert.__name__ = name
    return convert


def int_arg(name: str, low: int, high: int | None = None) -> Callable[[str], int]:
    """``type=`` for an int option in ``low..high`` (no upper bound when ``high`` is None)."""
    return _parsed(name, _int_rule(low, high), int, lambda value: check_int(name, value, low, high))


def number_arg(name: str, low: float, high: float) -> Callable[[str], float]:
    """``type=`` for a number option in ``low..high`` (NaN is never in range)."""
    return _parsed(
        name, _number_rule(low, high), float, lambda value: check_number(name, value, low, high)
    )


def seconds_arg(name: str = "timeout") -> Callable[[str], float]:
    """``type=`` for a number of seconds in (0, `MAX_TIMEOUT`], as `check_timeout` takes."""
    return _parsed(name, _SECONDS_RULE, float, lambda value: check_timeout(value, name))


#: ``type=`` for a port, 0..65535, as `check_port` takes.
port_arg: Callable[[str], int] = int_arg("port", 0, 65535)


def list_arg(item: Callable[[str], T]) -> Callable[[str], tuple[T, ...]]:
    """``type=`` for comma-separated items, each converted by ``item`` (a ``type=`` function)."""

    def convert(text: str) -> tuple[T, ...]:
        return tuple(item(part.strip()) for part in text.split(","))

    convert.__name__ = f"list of {getattr(item, '__name__', 'items')}"
    return convert
