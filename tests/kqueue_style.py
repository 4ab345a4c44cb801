"""`KqueueStyleSelector`: kqueue's way of reporting, on Linux, for the test suites.

macOS's and the BSDs' `selectors.DefaultSelector` is `KqueueSelector`. Three
things it does differently from epoll and poll matter to a loop:

* READ and WRITE of one fd are two kernel filters, so ``select()`` returns
  them as two separate ``(key, EVENT_READ)`` and ``(key, EVENT_WRITE)``
  entries, never one ``(key, EVENT_READ | EVENT_WRITE)`` (CPython gh-110038);
* the ready list comes in whatever order the kernel returns the filters;
* ``modify()`` is the base class's unregister plus register, so every change
  of events makes a new key.

This class reproduces all three over ``select.poll()``: it splits each fd's
events into one entry per filter, shuffles the list with a seeded
`random.Random` (so a run repeats exactly) or puts it in the order a test
asks for, and keeps `_BaseSelectorImpl`'s ``modify()``. The keys it returns
are looked up at ``select()`` time, as `KqueueSelector` does.
"""

from __future__ import annotations

import math
import random
import select
import selectors
from collections.abc import Callable
from typing import Any

__all__ = ["KqueueStyleSelector"]

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
Entry = tuple[selectors.SelectorKey, int]
_POLL_READ = select.POLLIN | select.POLLPRI | select.POLLHUP | select.POLLERR
_POLL_WRITE = select.POLLOUT | select.POLLHUP | select.POLLERR


class KqueueStyleSelector(selectors._BaseSelectorImpl):
    """Poll-based, but reporting as `selectors.KqueueSelector` does (see the module)."""

    def __init__(
        self, seed: int = 0, order: Callable[[list[Entry]], list[Entry]] | None = None
    ) -> None:
        super().__init__()
        self._poll = select.poll()
        self._order = order if order is not None else _shuffler(seed)
        self.splits = 0  # how many fds came back as two entries

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        key = super().register(fileobj, events, data)
        try:
            self._poll.register(
                key.fd,
                (select.POLLIN if events & READ else 0) | (select.POLLOUT if events & WRITE else 0),
            )
        except BaseException:
            super().unregister(fileobj)
            raise
        return key

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        key = super().unregister(fileobj)
        self._poll.unregister(key.fd)
        return key

    # modify() is deliberately not overridden: _BaseSelectorImpl.modify() is
    # unregister() + register(), exactly as KqueueSelector inherits it.

    def select(self, timeout: float | None = None) -> list[Entry]:
        ms = None if timeout is None else max(0, math.ceil(timeout * 1000))
        ready = []
        for fd, revents in self._poll.poll(ms):
            key = self._fd_to_key.get(fd)
            if key is None:
                continue
            filters = [
                m
                for m, bits in ((READ, _POLL_READ), (WRITE, _POLL_WRITE))
                if revents & bits and key.events & m
            ]
            self.splits += len(filters) > 1
            ready.extend((key, m) for m in filters)
        return self._order(ready)

    def close(self) -> None:
        super().close()
        self._poll = None  # type: ignore[assignment]


def _shuffler(seed: int) -> Callable[[list[Entry]], list[Entry]]:
    """A seeded shuffle: any order, the same one on every run."""
    generator = random.Random(seed)

    def shuffled(ready: list[Entry]) -> list[Entry]:
        generator.shuffle(ready)
        return ready

    return shuffled
