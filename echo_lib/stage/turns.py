"""Turn-taking: whose turn it is (`Turns`), and a selector that hands it over (`TurnSelector`).

Programs on a stage take turns like players at one keyboard: a program runs
until its ``select()`` finds nothing ready within a short grace period, then
hands the turn to the next program and waits for it to come back. Threads
scheduled freely interleave differently on every run (the kernel decides when
each wakes up); taking turns fixes one of the legal interleavings, so a log is
the same text every run, which is what a notebook's committed output must be.
The grace period, rather than a zero timeout, absorbs bytes that the kernel
delivers a moment late on a busy machine. Every wait is bounded: a program
waits at most `TURN_TIMEOUT` for its turn, so nothing hangs.
"""

from __future__ import annotations

import selectors
import threading
from typing import Any

__all__ = ["GRACE", "MAX_WAIT", "TURN_TIMEOUT", "TurnSelector", "Turns"]

GRACE = 0.03  # seconds a turn's select() waits before it counts as "nothing ready"
MAX_WAIT = 1.0  # no select() on a stage waits longer than this (the seed's own timeout)
TURN_TIMEOUT = 5.0  # a program waits at most this long for its turn: never hang


class Turns:
    """Whose turn it is, among players in order of arrival (round robin)."""

    def __init__(self, timeout: float = TURN_TIMEOUT) -> None:
        self._cond = threading.Condition()
        self._players: list[str] = []
        self._left: set[str] = set()
        self._holder: str | None = None
        self._timeout = timeout

    def add(self, name: str) -> None:
        """Seat player ``name``. Raises `ValueError` if the name is taken."""
        with self._cond:
            if name in self._players:
                raise ValueError(f"a program named {name!r} is already on this stage")
            self._players.append(name)

    def open(self) -> None:
        """Give the first turn (to the first player still playing), unless someone has it."""
        with self._cond:
            if self._holder is None:
                self._holder = next((p for p in self._players if p not in self._left), None)
                self._cond.notify_all()

    def wait(self, name: str) -> None:
        """Block until it is ``name``'s turn (at most the timeout: never hang)."""
        with self._cond:
            self._cond.wait_for(lambda: self._holder == name, timeout=self._timeout)

    def pass_turn(self, name: str) -> None:
        """Hand the turn to the next player still playing, and wait for it to come back."""
        with self._cond:
            following = self._next(name)
            if following is None:
                return  # alone: keep playing
            self._holder = following
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._holder == name, timeout=self._timeout)

    def leave(self, name: str) -> None:
        """Player ``name`` is done; if it held the turn, the next player gets it."""
        with self._cond:
            self._left.add(name)
            if self._holder == name:
                self._holder = self._next(name)
                self._cond.notify_all()

    @property
    def holder(self) -> str | None:
        """Whose turn it is (None before `open()` and after everyone left)."""
        with self._cond:
            return self._holder

    def _next(self, name: str) -> str | None:
        index = self._players.index(name)
        for player in self._players[index + 1 :] + self._players[:index]:
            if player not in self._left:
                return player
        return None


class TurnSelector(selectors.BaseSelector):
    """Wrap a selector: a ``select()`` with nothing ready hands the turn over first.

    Every wait is capped at ``max_wait`` seconds. With ``turns=None`` it only caps.
    """

    def __init__(
        self,
        inner: selectors.BaseSelector,
        turns: Turns | None,
        player: str,
        *,
        grace: float = GRACE,
        max_wait: float = MAX_WAIT,
    ) -> None:
        self.inner, self.turns, self.player = inner, turns, player
        self.grace, self.max_wait = grace, max_wait

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if self.turns is not None and not self.inner.select(self.grace):
            self.turns.pass_turn(self.player)
        wait = self.max_wait if timeout is None else max(0.0, min(timeout, self.max_wait))
        return self.inner.select(wait)

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self.inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self.inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self.inner.modify(fileobj, events, data)

    def close(self) -> None:
        self.inner.close()

    def get_map(self) -> Any:
        return self.inner.get_map()
