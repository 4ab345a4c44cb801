"""Packed column storage of timeline events: values to packed bytes, and `Columns` snapshots.

A `Timeline` keeps its events as a deque of immutable blocks; each block holds
about `BATCH` events as one packed byte string per field:

- Each field becomes the packed bytes of an array: `struct` converts the
  values in C (`convert`), the actor and detail strings become 32-bit ids in
  a string table (one C-level dict lookup each, through
  ``operator.itemgetter``) and the action an 8-bit one (a timeline knows at
  most 256 different actions). No Python loop runs per event.
- 26 bytes per event (clock reading 8, fd 4, nbytes 4, actor 4, detail 4,
  action 1, mask 1) instead of about 200 for a tuple, a float and a list
  slot. nbytes is a signed 32-bit number: Linux moves at most 0x7ffff000
  bytes in one send() or recv(), and a mask fits in a byte. ``seq`` is not
  stored: it is the position plus the number dropped before it.

`Columns` is a snapshot of those blocks, joined, as arrays: what plots and big
summaries read, and what turns back into `Event` tuples at C speed.
"""

from __future__ import annotations

import struct
from array import array
from collections.abc import Sequence
from itertools import repeat
from operator import itemgetter
from typing import NamedTuple

from .events import Event

__all__ = ["BAD_VALUE", "FIELDS", "WIDTH", "Block", "Columns", "column_array", "convert"]

#: (field, array typecode) of each column, in `Event` order after ``seq``.
FIELDS: tuple[tuple[str, str], ...] = (
    ("t", "d"),
    ("actor", "I"),
    ("action", "B"),
    ("fd", "i"),
    ("mask", "B"),
    ("nbytes", "i"),
    ("detail", "I"),
)
WIDTH = len(FIELDS)
#: What converting a bad value raises: the whole move is then redone one event at a time.
BAD_VALUE = (TypeError, ValueError, OverflowError, struct.error)
_new_event = tuple.__new__

#: Stored events: (rows, then one column's bytes per field in `FIELDS` order).
Block = tuple[int, bytes, bytes, bytes, bytes, bytes, bytes, bytes]


def column_array(code: str, data: bytes, first: int) -> array:
    """The array of ``code`` held in ``data``, from item ``first`` on."""
    column = array(code)
    column.frombytes(memoryview(data)[first * column.itemsize :])
    return column


class Columns(NamedTuple):
    """A snapshot of a timeline as columns: what plots and big summaries read.

    ``actor`` and ``detail`` hold indexes into ``strings``, ``action`` into
    ``actions``; ``t`` holds seconds since the timeline started. Row ``i``
    has ``seq`` equal to ``first_seq + i``.
    """

    first_seq: int
    t: array
    actor: array
    action: array
    fd: array
    mask: array
    nbytes: array
    detail: array
    strings: tuple[str, ...]
    actions: tuple[str, ...]

    @property
    def rows(self) -> int:
        """How many events (``len()`` stays the tuple's: its number of fields)."""
        return len(self.t)

    def events(self) -> list[Event]:
        """The rows as `Event` tuples, built at C speed (about 0.2 µs each)."""
        text = self.strings.__getitem__
        rows = zip(
            range(self.first_seq, self.first_seq + len(self.t)),
            self.t,
            map(text, self.actor),
            map(self.actions.__getitem__, self.action),
            self.fd,
            self.mask,
            self.nbytes,
            map(text, self.detail),
            strict=True,
        )
        return list(map(_new_event, repeat(Event), rows))

    @classmethod
    def from_events(cls, events: Sequence[Event]) -> Columns:
        """The columns of a list of `Event`s (seq taken from the first one)."""
        strings: dict[str, int] = {}
        actions: dict[str, int] = {}
        flat = [value for event in events for value in event[1:]]
        columns = [
            array(code, data)
            for (_, code), data in zip(FIELDS, convert(flat, strings, actions), strict=True)
        ]
        return cls(events[0].seq if events else 1, *columns, tuple(strings), tuple(actions))


def convert(flat: list[object], strings: dict[str, int], actions: dict[str, int]) -> list[bytes]:
    """The bytes to append to each column for ``flat``, the values of whole events in a row.

    Strings are replaced by their ids in ``strings`` (actors, details) or
    ``actions``, new ids given as needed. Raises `TypeError`, `ValueError`,
    `OverflowError` or `struct.error` for a bad value.
    """
    rows = len(flat) // WIDTH
    return [
        _pack("d", rows, flat[0::WIDTH]),
        _pack("I", rows, _ids(strings, flat[1::WIDTH])),
        bytes(_ids(actions, flat[2::WIDTH])),  # ValueError past 255: at most 256 actions
        _pack("i", rows, flat[3::WIDTH]),
        bytes(flat[4::WIDTH]),
        _pack("i", rows, flat[5::WIDTH]),
        _pack("I", rows, _ids(strings, flat[6::WIDTH])),
    ]


def _ids(table: dict[str, int], texts: list[object]) -> Sequence[int]:
    """Each text's id in ``table``, new ids given as needed.

    One C-level lookup per text in a plain dict (a dict subclass with
    ``__missing__`` takes twice as long). Raises `TypeError` for a text that
    is not a string.
    """
    if not texts:
        return ()
    lookup = itemgetter(*texts) if len(texts) > 1 else lambda table: (table[texts[0]],)
    try:
        return lookup(table)
    except KeyError:  # new strings: rare, so a Python loop will do
        for text in texts:
            if text not in table:
                if not isinstance(text, str):
                    raise TypeError(
                        f"actor, action and detail must be strings, got {text!r}"
                    ) from None
                table[text] = len(table)
        return lookup(table)


def _pack(code: str, count: int, values: Sequence[object]) -> bytes:
    """``count`` values as the bytes of an array of ``code``.

    `struct` converts each value in a few nanoseconds, where ``array(code,
    values)`` parses each one as a function argument and takes about 25.
    Raises `struct.error` for a value of the wrong type or out of range.
    """
    return struct.pack(f"{count}{code}", *values)
