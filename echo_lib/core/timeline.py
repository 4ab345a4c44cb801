"""`Timeline`: a thread-safe recorder of `Event`s costing a few hundred nanoseconds each.

One `Timeline` may be shared by a server and any number of clients, each in its
own thread, so that one picture shows all of them. ``seq`` order is the order
in which events were recorded.

The timeline keeps at most ``maxlen`` events (the oldest are dropped and
counted in `dropped`), so a long-running server with recording on cannot grow
without bound.

How recording stays cheap (a recording server makes three or four events per
echoed message, so this is its hot path):

- `record` takes no lock and looks up no attribute: it is a closure (see
  `core.recorder`) that reads the clock and extends a pending list with the
  event's seven values. ``list.extend`` with a tuple is one C call, atomic
  under the GIL (and guarded per list on free-threaded builds), so the list's
  order is the ``seq`` order. Every `BATCH`-th call, counted by ``next()`` on
  an `itertools.cycle` (one C call too), moves what is pending; the count
  decides only when a move happens, never what is kept.
- The move, also done before any read, runs under a lock. It takes the
  pending values with one slice and removes exactly those with one ``del``,
  so an extend racing with it is never lost, and packs them into a block of
  columns (`core.columns`: about 26 bytes per event, no Python loop per event).
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

import sys
import threading
import time
import weakref
from array import array
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from itertools import repeat
from operator import sub

from .checks import check_int
from .columns import BAD_VALUE, FIELDS, WIDTH, Block, Columns, column_array, convert
from .events import ACTIONS, Event, mask_name
from .recorder import BATCH, RESERVE, recorders

__all__ = ["BATCH", "DEFAULT_MAXLEN", "Columns", "Timeline"]

#: Enough for a 10,000-connection run kept whole (about 92,000 events), at about 33 MB at most.
DEFAULT_MAXLEN = 1_000_000


class Timeline:
    """Record events from any thread; read them back filtered or summarised.

    Raises `ValueError` naming a ``maxlen`` that is not None or an int of at least 1.
    """

    def __init__(
        self,
        *,
        maxlen: int | None = DEFAULT_MAXLEN,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.maxlen = None if maxlen is None else check_int("maxlen", maxlen, 1)
        self._lock = threading.Lock()
        self._pending: list[object] = [None] * RESERVE  # then 7 values per event, flat
        self.clock = clock  #: what events are timed with (`record_flat` takes its readings)
        self._start = clock()
        self._new_columns()
        self._recorder, recorder_flat = recorders(
            self._pending, clock, weakref.WeakMethod(self._flush)
        )
        if type(self).record is Timeline.record:  # a subclass's own record() stays in charge
            self.record = self._recorder  # type: ignore[method-assign]
            self.record_flat = recorder_flat  # type: ignore[method-assign]

    def _new_columns(self) -> None:
        self._strings: dict[str, int] = {}  # actor and detail -> id
        self._actions: dict[str, int] = {}  # action -> id
        self._blocks: deque[Block] = deque()  # oldest first
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

    def record_flat(self, values: list[object]) -> None:
        """Append several events at once, given flat: `WIDTH` values per event.

        Each is ``t, actor, action, fd, mask, nbytes, detail``, ``t`` read from
        `clock`; as safe and as checked as `record`, which a subclass's events go through.
        """
        for start in range(0, len(values), WIDTH):
            _, actor, action, fd, mask, nbytes, detail = values[start : start + WIDTH]
            self.record(actor, action, fd, mask, nbytes, detail)  # type: ignore[arg-type]

    def _flush(self) -> None:
        with self._lock:
            self._move_pending()

    def _move_pending(self) -> None:
        """Move the pending values into the columns; call with the lock held."""
        pending = self._pending
        count = len(pending) - RESERVE
        count -= count % WIDTH  # whole events only (extend is atomic, but be sure)
        if not count:
            return
        batch = pending[RESERVE : RESERVE + count]
        del pending[RESERVE : RESERVE + count]  # values appended meanwhile land after these: kept
        try:
            self._append_rows(batch)
        except BAD_VALUE:
            self._append_checked(batch)
        self._trim()

    def _append_rows(self, flat: list[object]) -> None:
        added = len(flat) // WIDTH
        columns = convert(flat, self._strings, self._actions)
        blocks, rows = self._blocks, added
        if blocks and blocks[-1][0] < BATCH:  # a read moved only a few: grow that block
            last = blocks.pop()
            rows, columns = (
                last[0] + added,
                [b"".join(pair) for pair in zip(last[1:], columns, strict=True)],
            )
        blocks.append((rows, *columns))
        self._stored += added

    def _append_checked(self, flat: list[object]) -> None:
        """One event at a time: keep the good ones, then raise for the first bad one."""
        bad: list[tuple[BaseException, list[object]]] = []
        for start in range(0, len(flat), WIDTH):
            row = flat[start : start + WIDTH]
            try:
                self._append_rows(row)
            except BAD_VALUE as exc:
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
                [b"".join(column) for column in list(zip(*self._blocks, strict=True))[1:]]
                if self._blocks
                else [b""] * WIDTH
            )
            start, strings, actions = self._start, tuple(self._strings), tuple(self._actions)
        t, *rest = (
            column_array(code, data, first) for (_, code), data in zip(FIELDS, joined, strict=True)
        )
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
            del self._pending[RESERVE:]
            self._new_columns()
            self._start = self.clock()

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
    line = (
        f"{event.seq:>4}  {event.actor:<{width}}  {event.action:<10}  {mask:<10}  "
        f"{nbytes:>7}  {event.detail}"
    )
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
