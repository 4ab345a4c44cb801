"""A thread-safe recorder of `Event`s that costs a few hundred nanoseconds and ~30 bytes each.

One `Timeline` may be shared by a server and any number of clients, each in its
own thread, so that one picture shows all of them. ``seq`` order is the order
in which events were recorded.

The timeline keeps at most ``maxlen`` events (the oldest are dropped and
counted in `dropped`), so a long-running server with recording on cannot grow
without bound.

How recording stays cheap (a recording server makes three or four events per
echoed message, so this is its hot path):

- `record` takes no lock. It reads the clock and extends a pending list with
  the event's seven values; ``list.extend`` with a tuple is atomic (under the
  GIL, and guarded per list on free-threaded builds), so the list's order is
  the ``seq`` order.
- Every `BATCH` events, or before any read, the pending values are moved, under
  a lock, into columns: one `array.array` per field, with the actor and detail
  strings interned as 32-bit ids and the action as an 8-bit one (a timeline
  knows at most 256 different actions). ``del pending[:n]`` removes exactly
  the values that were moved, so an extend racing with it is never lost. The
  move is done by C-level slices, ``map`` and ``array.extend``, not a Python loop.
- The columns hold 26 bytes per event (clock reading 8, fd 4, nbytes 4,
  actor 4, detail 4, action 1, mask 1) instead of about 200 for a tuple, a
  float and a list slot. nbytes is a signed 32-bit number: Linux moves at
  most 0x7ffff000 bytes in one send() or recv(), and a mask fits in a byte.
  ``seq`` is not stored: it is the position plus the number dropped before it.
- When the columns hold `maxlen` plus an eighth more, the oldest are cut in
  one go; until then reads simply start ``maxlen`` from the end. When the
  string table has doubled since it was last rebuilt (a long-running server
  meets a new actor per connection), it is rebuilt from the strings still in use.

Each event's time is read just before its append, outside any lock, so two
threads recording within the same microsecond may get ``t`` a hair out of
``seq`` order.
"""

from __future__ import annotations

import sys
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import repeat
from operator import sub
from typing import NamedTuple

from .events import ACTIONS, Event, mask_name

__all__ = ["BATCH", "DEFAULT_MAXLEN", "Columns", "Timeline"]

#: Enough for a 10,000-connection run kept whole (about 92,000 events), at about 33 MB at most.
DEFAULT_MAXLEN = 1_000_000
#: Pending events are moved into the columns this many at a time.
BATCH = 2048
#: (field, array typecode) of each column, in `Event` order after ``seq``.
_COLUMNS: tuple[tuple[str, str], ...] = (
    ("t", "d"),
    ("actor", "I"),
    ("action", "B"),
    ("fd", "i"),
    ("mask", "B"),
    ("nbytes", "i"),
    ("detail", "I"),
)
_WIDTH = len(_COLUMNS)
_BATCH_VALUES = BATCH * _WIDTH
_STRING_FIELDS = frozenset({"actor", "detail"})  # ids into the string table; actions have their own
_new_event = tuple.__new__


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
        )
        return list(map(_new_event, repeat(Event), rows))

    @classmethod
    def from_events(cls, events: Sequence[Event]) -> Columns:
        """The columns of a list of `Event`s (seq taken from the first one)."""
        strings, actions = _Strings(), _Strings()
        intern = _interners(strings, actions)
        fields = list(zip(*events)) if events else [()] * 8
        columns = [array(code, map(intern[name], values) if name in intern else values)
                   for (name, code), values in zip(_COLUMNS, fields[1:])]
        return cls(events[0].seq if events else 1, *columns, tuple(strings), tuple(actions))


def _interners(strings: _Strings, actions: _Strings) -> dict[str, Callable[[str], int]]:
    """field -> the function that gives a string's id: actors and details share a table."""
    return {"actor": strings.__getitem__, "action": actions.__getitem__, "detail": strings.__getitem__}


class _Strings(dict[str, int]):
    """Interned strings: ``table[text]`` is its id, new ids given on first sight."""

    def __missing__(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"actor, action and detail must be strings, got {text!r}")
        self[text] = number = len(self)
        return number


class Timeline:
    """Record events from any thread; read them back filtered or summarised.

    Raises `ValueError` for a ``maxlen`` below 1.
    """

    def __init__(
        self,
        *,
        maxlen: int | None = DEFAULT_MAXLEN,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if maxlen is not None and maxlen < 1:
            raise ValueError(f"maxlen must be at least 1 or None, got {maxlen!r}")
        self.maxlen = maxlen
        self._lock = threading.Lock()
        self._pending: list[object] = []  # 7 values per event, flat
        self._clock = clock
        self._start = clock()
        self._new_columns()

    def _new_columns(self) -> None:
        self._strings = _Strings()
        self._actions = _Strings()
        self._columns = [array(code) for _, code in _COLUMNS]
        self._cut = 0  # events removed from the front of the columns
        self._strings_kept = 0  # strings in use at the last compaction

    def record(
        self,
        actor: str,
        action: str,
        fd: int = -1,
        mask: int = 0,
        nbytes: int = 0,
        detail: str = "",
    ) -> None:
        """Append one event. Safe to call from any thread; takes no lock.

        Raises `TypeError` (at the next read, or in the recording thread
        every `BATCH` events) for an actor, action or detail that is not a
        string, an fd or nbytes that is not a 32-bit int, a mask outside
        0..255, or a 257th different action; the bad event is left out.
        """
        pending = self._pending
        pending.extend((self._clock(), actor, action, fd, mask, nbytes, detail))
        if len(pending) >= _BATCH_VALUES:
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            self._move_pending()

    def _move_pending(self) -> None:
        """Move the pending values into the columns; call with the lock held."""
        pending = self._pending
        count = len(pending)
        count -= count % _WIDTH  # whole events only (extend is atomic, but be sure)
        if not count:
            return
        batch = pending[:count]
        del pending[:count]  # values appended meanwhile land after ``count``: kept
        try:
            self._append_rows(batch)
        except (TypeError, OverflowError):
            self._append_checked(batch)
        self._trim()

    def _append_rows(self, flat: list[object]) -> None:
        intern = _interners(self._strings, self._actions)
        converted = [
            array(code, map(intern[name], flat[index::_WIDTH]) if name in intern else flat[index::_WIDTH])
            for index, (name, code) in enumerate(_COLUMNS)
        ]
        for column, values in zip(self._columns, converted):  # all or nothing
            column.extend(values)

    def _append_checked(self, flat: list[object]) -> None:
        """One event at a time: keep the good ones, then raise for the first bad one."""
        bad: list[tuple[BaseException, list[object]]] = []
        for start in range(0, len(flat), _WIDTH):
            row = flat[start : start + _WIDTH]
            try:
                self._append_rows(row)
            except (TypeError, OverflowError) as exc:
                bad.append((exc, row))
        if bad:
            exc, row = bad[0]
            raise TypeError(f"cannot record event {tuple(row[1:])!r} ({len(bad)} bad in all): {exc}") from exc

    def _trim(self) -> None:
        """Cut the oldest rows once an eighth more than ``maxlen`` are stored."""
        if self.maxlen is None:
            return
        excess = len(self._columns[0]) - self.maxlen
        if excess <= max(self.maxlen // 8, BATCH):
            return
        for column in self._columns:
            del column[:excess]
        self._cut += excess
        if len(self._strings) > 2 * self._strings_kept + 1024:
            self._compact_strings()

    def _compact_strings(self) -> None:
        """Rebuild the string table from the strings the columns still use."""
        old = tuple(self._strings)
        self._strings = strings = _Strings()
        for name, column in zip((name for name, _ in _COLUMNS), self._columns):
            if name in _STRING_FIELDS:
                column[:] = array(column.typecode, [strings[old[i]] for i in column])
        self._strings_kept = len(strings)

    def _view(self) -> tuple[int, int]:
        """(first index, first seq) of the visible rows; call with the lock held."""
        stored = len(self._columns[0])
        first = max(0, stored - self.maxlen) if self.maxlen is not None else 0
        return first, self._cut + first + 1

    def columns(self) -> Columns:
        """A snapshot of the visible events as `Columns`."""
        with self._lock:
            self._move_pending()
            first, first_seq = self._view()
            t, *rest = (column[first:] for column in self._columns)
            start, strings, actions = self._start, tuple(self._strings), tuple(self._actions)
        return Columns(first_seq, array("d", map(sub, t, repeat(start))), *rest, strings, actions)

    @property
    def last_seq(self) -> int:
        """The sequence number of the newest event (0 before the first)."""
        with self._lock:
            self._move_pending()
            return self._cut + len(self._columns[0])

    @property
    def dropped(self) -> int:
        """How many of the oldest events were discarded because of ``maxlen``."""
        with self._lock:
            self._move_pending()
            return self._cut + self._view()[0]

    def storage_bytes(self) -> int:
        """Bytes held by the columns (their allocated capacity) and the string table."""
        with self._lock:
            self._move_pending()
            columns = sum(column.buffer_info()[1] * column.itemsize for column in self._columns)
            strings = sum(map(sys.getsizeof, (self._strings, self._actions, *self._strings, *self._actions)))
        return columns + strings

    def clear(self) -> None:
        """Forget every event and restart the clock and the sequence numbers."""
        with self._lock:
            del self._pending[: len(self._pending)]
            self._new_columns()
            self._start = self._clock()

    def __len__(self) -> int:
        with self._lock:
            self._move_pending()
            first, _ = self._view()
            return len(self._columns[0]) - first

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events())

    def events(
        self,
        actor: str | None = None,
        action: str | Iterable[str] | None = None,
        *,
        since: int = 0,
    ) -> list[Event]:
        """A snapshot of the events, optionally filtered.

        ``actor`` matches an actor exactly or as a prefix up to a ``/``
        (``"server"`` matches ``"server/conn-1"`` too). ``action`` is one action
        or several. ``since`` keeps only events whose ``seq`` is greater.
        Raises `ValueError` for an action that does not exist.
        """
        actions = _action_set(action)
        snapshot = self.columns().events()
        if since > 0 and snapshot:
            snapshot = snapshot[max(0, since - snapshot[0].seq + 1):]
        if actor is None and actions is None:
            return snapshot
        return [e for e in snapshot if _actor_matches(e.actor, actor) and (actions is None or e.action in actions)]

    def actors(self) -> list[str]:
        """Every actor, in order of first appearance."""
        snapshot = self.columns()
        return [snapshot.strings[i] for i in dict.fromkeys(snapshot.actor)]

    def counts(self, actor: str | None = None) -> Counter[str]:
        """How many events of each action (optionally for one actor)."""
        return Counter(e.action for e in self.events(actor=actor))

    def bytes_moved(self, actor: str | None = None) -> dict[str, int]:
        """Total bytes received and sent, e.g. ``{"recv": 40, "send": 40}``."""
        moved = {"recv": 0, "send": 0}
        for e in self.events(actor=actor, action=("recv", "send")):
            moved[e.action] += e.nbytes
        return moved

    def summary(
        self,
        actor: str | None = None,
        action: str | Iterable[str] | None = None,
        *,
        since: int = 0,
        limit: int | None = None,
    ) -> str:
        """A deterministic plain-text listing: no times, no fds, no addresses.

        One line per event: sequence number, actor, action, mask, bytes, detail.
        ``since`` keeps only events after that sequence number. With ``limit``,
        only the first ``limit`` lines and a count of the rest.
        """
        events = self.events(actor=actor, action=action, since=since)
        shown = events if limit is None else events[:limit]
        width = max((len(e.actor) for e in shown), default=5)
        lines = [_summary_line(e, width) for e in shown]
        if len(shown) < len(events):
            lines.append(f"... and {len(events) - len(shown)} more events")
        return "\n".join(lines) if lines else "(no events)"

    def __repr__(self) -> str:
        return f"<Timeline: {len(self)} events, {len(self.actors())} actors>"


def _summary_line(event: Event, width: int) -> str:
    mask = mask_name(event.mask) if event.mask else ""
    nbytes = str(event.nbytes) if event.action in ("recv", "send", "select") else ""
    line = f"{event.seq:>4}  {event.actor:<{width}}  {event.action:<10}  {mask:<10}  {nbytes:>7}  {event.detail}"
    return line.rstrip()


def _actor_matches(actual: str, wanted: str | None) -> bool:
    return wanted is None or actual == wanted or actual.startswith(wanted + "/")


def _action_set(action: str | Iterable[str] | None) -> frozenset[str] | None:
    if action is None:
        return None
    actions = frozenset([action] if isinstance(action, str) else action)
    unknown = sorted(actions - set(ACTIONS))
    if unknown:
        raise ValueError(f"unknown action {unknown[0]!r}; expected one of {', '.join(ACTIONS)}")
    return actions
