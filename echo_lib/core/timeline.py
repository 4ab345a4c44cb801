"""A thread-safe recorder of `Event`s that costs a few hundred nanoseconds and ~30 bytes each.

One `Timeline` may be shared by a server and any number of clients, each in its
own thread, so that one picture shows all of them. ``seq`` order is the order
in which events were recorded.

The timeline keeps at most ``maxlen`` events (the oldest are dropped and
counted in `dropped`), so a long-running server with recording on cannot grow
without bound.

How recording stays cheap (a recording server makes three or four events per
echoed message, so this is its hot path):

- `record` takes no lock and looks up no attribute: it is a closure (see
  `_recorder`) that reads the clock and extends a pending list with the
  event's seven values. ``list.extend`` with a tuple is one C call, atomic
  under the GIL (and guarded per list on free-threaded builds), so the list's
  order is the ``seq`` order. Every `BATCH`-th call, counted by ``next()`` on
  an `itertools.cycle` (one C call too), moves what is pending; the count
  decides only when a move happens, never what is kept.
- The move, also done before any read, runs under a lock. It takes the
  pending values with one slice and removes exactly those with one ``del``,
  so an extend racing with it is never lost. Each field becomes the packed
  bytes of an array: `struct` converts the values in C, the actor and detail
  strings become 32-bit ids in a string table (one C-level dict lookup each,
  through ``operator.itemgetter``) and the action an 8-bit one (a timeline
  knows at most 256 different actions). No Python loop runs per event.
- Stored events are a deque of immutable blocks of about `BATCH` events: 26
  bytes per event (clock reading 8, fd 4, nbytes 4, actor 4, detail 4,
  action 1, mask 1) instead of about 200 for a tuple, a float and a list
  slot. nbytes is a signed 32-bit number: Linux moves at most 0x7ffff000
  bytes in one send() or recv(), and a mask fits in a byte. ``seq`` is not
  stored: it is the position plus the number dropped before it.
- Dropping the oldest pops whole blocks once the newer ones hold ``maxlen``
  events, so nothing is moved or reallocated; reads start ``maxlen`` from the
  end. When the string table has doubled since it was last rebuilt (a
  long-running server meets a new actor per connection), it is rebuilt from
  the strings still in use.

Each event's time is read just before its append, outside any lock, so two
threads recording within the same microsecond may get ``t`` a hair out of
``seq`` order.
"""

from __future__ import annotations

import itertools
import struct
import sys
import threading
import time
import weakref
from array import array
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import repeat
from operator import itemgetter, sub
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
# The pending list starts with this many placeholders that are never moved.
# Emptying a list to below half its allocation makes CPython shrink it, and
# refilling it then reallocates and copies it a dozen times per batch: about
# a fifth of the cost of recording. Above the placeholders' count the list
# stays well over half full, so its allocation is kept from batch to batch.
_RESERVE = _BATCH_VALUES * 13 // 10
_new_event = tuple.__new__
#: What converting a bad value raises: the whole move is then redone one event at a time.
_BAD_VALUE = (TypeError, ValueError, OverflowError, struct.error)


#: Stored events: (rows, then one column's bytes per field in `_COLUMNS` order).
_Block = tuple[int, bytes, bytes, bytes, bytes, bytes, bytes, bytes]


def _array(code: str, data: bytes, first: int) -> array:
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
        )
        return list(map(_new_event, repeat(Event), rows))

    @classmethod
    def from_events(cls, events: Sequence[Event]) -> Columns:
        """The columns of a list of `Event`s (seq taken from the first one)."""
        strings: dict[str, int] = {}
        actions: dict[str, int] = {}
        flat = [value for event in events for value in event[1:]]
        columns = [
            array(code, data) for (_, code), data in zip(_COLUMNS, _convert(flat, strings, actions))
        ]
        return cls(events[0].seq if events else 1, *columns, tuple(strings), tuple(actions))


def _recorder(
    pending: list[object], clock: Callable[[], float], flush: weakref.WeakMethod
) -> Callable[..., None]:
    """The hot path of `Timeline.record`, as a closure: no attribute is looked up per event.

    It holds its timeline's ``_flush`` weakly, so that the timeline and its
    recorder form no reference cycle and are freed as soon as they are unused.
    """
    extend = pending.extend
    # Every BATCH-th call moves what is pending. ``next()`` on a cycle is one
    # atomic C call that returns a cached object, where ``len(pending)`` would
    # allocate an int (the list is longer than 256) on every call.
    ticks = itertools.cycle((True,) * (BATCH - 1) + (False,))

    def record(
        actor: str, action: str, fd: int = -1, mask: int = 0, nbytes: int = 0, detail: str = ""
    ) -> None:
        extend((clock(), actor, action, fd, mask, nbytes, detail))
        if not next(ticks):
            move = flush()
            if move is None:  # the timeline is gone: nobody can read these events
                del pending[_RESERVE:]
            else:
                move()

    return record


def _convert(flat: list[object], strings: dict[str, int], actions: dict[str, int]) -> list[bytes]:
    """The bytes to append to each column for ``flat``, the values of whole events in a row.

    Strings are replaced by their ids in ``strings`` (actors, details) or
    ``actions``, new ids given as needed. Raises `TypeError`, `ValueError`,
    `OverflowError` or `struct.error` for a bad value.
    """
    rows = len(flat) // _WIDTH
    return [
        _pack("d", rows, flat[0::_WIDTH]),
        _pack("I", rows, _ids(strings, flat[1::_WIDTH])),
        bytes(_ids(actions, flat[2::_WIDTH])),  # ValueError past 255: at most 256 actions
        _pack("i", rows, flat[3::_WIDTH]),
        bytes(flat[4::_WIDTH]),
        _pack("i", rows, flat[5::_WIDTH]),
        _pack("I", rows, _ids(strings, flat[6::_WIDTH])),
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
        self._pending: list[object] = [None] * _RESERVE  # then 7 values per event, flat
        self._clock = clock
        self._start = clock()
        self._new_columns()
        self._recorder = _recorder(self._pending, clock, weakref.WeakMethod(self._flush))
        if type(self).record is Timeline.record:  # a subclass's own record() stays in charge
            self.record = self._recorder  # type: ignore[method-assign]

    def _new_columns(self) -> None:
        self._strings: dict[str, int] = {}  # actor and detail -> id
        self._actions: dict[str, int] = {}  # action -> id
        self._blocks: deque[_Block] = deque()  # oldest first
        self._stored = 0  # rows in the blocks
        self._cut = 0  # events removed from the front of the blocks
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
        self._recorder(actor, action, fd, mask, nbytes, detail)

    def _flush(self) -> None:
        with self._lock:
            self._move_pending()

    def _move_pending(self) -> None:
        """Move the pending values into the columns; call with the lock held."""
        pending = self._pending
        count = len(pending) - _RESERVE
        count -= count % _WIDTH  # whole events only (extend is atomic, but be sure)
        if not count:
            return
        batch = pending[_RESERVE : _RESERVE + count]
        del pending[_RESERVE : _RESERVE + count]  # values appended meanwhile land after these: kept
        try:
            self._append_rows(batch)
        except _BAD_VALUE:
            self._append_checked(batch)
        self._trim()

    def _append_rows(self, flat: list[object]) -> None:
        added = len(flat) // _WIDTH
        columns = _convert(flat, self._strings, self._actions)
        blocks, rows = self._blocks, added
        if blocks and blocks[-1][0] < BATCH:  # a read moved only a few: grow that block
            last = blocks.pop()
            rows, columns = last[0] + added, [b"".join(pair) for pair in zip(last[1:], columns)]
        blocks.append((rows, *columns))
        self._stored += added

    def _append_checked(self, flat: list[object]) -> None:
        """One event at a time: keep the good ones, then raise for the first bad one."""
        bad: list[tuple[BaseException, list[object]]] = []
        for start in range(0, len(flat), _WIDTH):
            row = flat[start : start + _WIDTH]
            try:
                self._append_rows(row)
            except _BAD_VALUE as exc:
                bad.append((exc, row))
        if bad:
            exc, row = bad[0]
            raise TypeError(
                f"cannot record event {tuple(row[1:])!r} ({len(bad)} bad in all): {exc}"
            ) from exc

    def _trim(self) -> None:
        """Drop the oldest blocks that hold only events beyond ``maxlen``."""
        if self.maxlen is None:
            return
        blocks = self._blocks
        while self._stored - blocks[0][0] >= self.maxlen:
            rows = blocks.popleft()[0]
            self._stored -= rows
            self._cut += rows
        if len(self._strings) > 2 * self._strings_kept + 1024:
            self._compact_strings()

    def _compact_strings(self) -> None:
        """Rebuild the string table from the strings the blocks still use."""
        old = tuple(self._strings)
        self._strings = strings = {}

        def renumbered(ids: bytes) -> bytes:
            return array(
                "I", [strings.setdefault(old[i], len(strings)) for i in array("I", ids)]
            ).tobytes()

        self._blocks = deque(
            (rows, t, renumbered(actor), action, fd, mask, nbytes, renumbered(detail))
            for rows, t, actor, action, fd, mask, nbytes, detail in self._blocks
        )
        self._strings_kept = len(strings)

    def _view(self) -> tuple[int, int]:
        """(first row, first seq) of the visible rows; call with the lock held."""
        first = max(0, self._stored - self.maxlen) if self.maxlen is not None else 0
        return first, self._cut + first + 1

    def columns(self) -> Columns:
        """A snapshot of the visible events as `Columns`."""
        with self._lock:
            self._move_pending()
            first, first_seq = self._view()
            joined = (
                [b"".join(column) for column in list(zip(*self._blocks))[1:]]
                if self._blocks
                else [b""] * _WIDTH
            )
            start, strings, actions = self._start, tuple(self._strings), tuple(self._actions)
        t, *rest = (_array(code, data, first) for (_, code), data in zip(_COLUMNS, joined))
        return Columns(first_seq, array("d", map(sub, t, repeat(start))), *rest, strings, actions)

    @property
    def last_seq(self) -> int:
        """The sequence number of the newest event (0 before the first)."""
        with self._lock:
            self._move_pending()
            return self._cut + self._stored

    @property
    def dropped(self) -> int:
        """How many of the oldest events were discarded because of ``maxlen``."""
        with self._lock:
            self._move_pending()
            return self._cut + self._view()[0]

    def storage_bytes(self) -> int:
        """Bytes held by the stored blocks and the string tables."""
        with self._lock:
            self._move_pending()
            columns = sys.getsizeof(self._blocks) + sum(
                sum(map(sys.getsizeof, block)) for block in self._blocks
            )
            strings = sum(
                map(sys.getsizeof, (self._strings, self._actions, *self._strings, *self._actions))
            )
        return columns + strings

    def clear(self) -> None:
        """Forget every event and restart the clock and the sequence numbers."""
        with self._lock:
            del self._pending[_RESERVE:]
            self._new_columns()
            self._start = self._clock()

    def __len__(self) -> int:
        with self._lock:
            self._move_pending()
            first, _ = self._view()
            return self._stored - first

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
            snapshot = snapshot[max(0, since - snapshot[0].seq + 1) :]
        if actor is None and actions is None:
            return snapshot
        return [
            e
            for e in snapshot
            if _actor_matches(e.actor, actor) and (actions is None or e.action in actions)
        ]

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
