"""A thread-safe recorder of `Event`s.

One `Timeline` may be shared by a server and any number of clients, each in its
own thread, so that one picture shows all of them. Sequence numbers are given
under a lock, so ``seq`` order is the order in which events were recorded.

The timeline keeps at most ``maxlen`` events (the oldest are dropped and
counted in `dropped`), so a long-running server with recording on cannot grow
without bound.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator

from .events import ACTIONS, Event, mask_name

__all__ = ["DEFAULT_MAXLEN", "Timeline"]

DEFAULT_MAXLEN = 200_000
_new_event = tuple.__new__


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
        self._lock = threading.Lock()
        self._events: deque[Event] = deque(maxlen=maxlen)
        self._clock = clock
        self._start = clock()
        self._seq = 0

    def record(
        self,
        actor: str,
        action: str,
        fd: int = -1,
        mask: int = 0,
        nbytes: int = 0,
        detail: str = "",
    ) -> Event:
        """Append one event and return it. Safe to call from any thread."""
        # The hot path of a recording server (three or four calls per echoed
        # message), so written for speed: acquire()/release() cost half of
        # ``with self._lock`` on 3.11, and tuple.__new__ skips the Python-level
        # Event.__new__ (a third cheaper).
        self._lock.acquire()
        try:
            self._seq += 1
            event = _new_event(Event, (self._seq, self._clock() - self._start, actor, action, fd, mask, nbytes, detail))
            self._events.append(event)
        finally:
            self._lock.release()
        return event

    @property
    def last_seq(self) -> int:
        """The sequence number of the newest event (0 before the first)."""
        with self._lock:
            return self._seq

    @property
    def dropped(self) -> int:
        """How many of the oldest events were discarded because of ``maxlen``."""
        with self._lock:
            return self._seq - len(self._events)

    def clear(self) -> None:
        """Forget every event and restart the clock and the sequence numbers."""
        with self._lock:
            self._events.clear()
            self._seq = 0
            self._start = self._clock()

    def __len__(self) -> int:
        return len(self._events)

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
        with self._lock:
            snapshot = list(self._events)
        return [
            e
            for e in snapshot
            if e.seq > since and _actor_matches(e.actor, actor) and (actions is None or e.action in actions)
        ]

    def actors(self) -> list[str]:
        """Every actor, in order of first appearance."""
        return list(dict.fromkeys(e.actor for e in self.events()))

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
