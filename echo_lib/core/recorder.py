"""The hot path of recording: closures that append an event's values to a pending list.

`Timeline` owns the list and moves what is pending into its columns; these
closures only append, and ask for a move every `BATCH` events. The module
docstring of `core.timeline` explains why each line is written the way it is.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable

from .columns import WIDTH

__all__ = ["BATCH", "RESERVE", "recorders"]

#: Pending events are moved into the columns this many at a time.
BATCH = 2048
BATCH_VALUES = BATCH * WIDTH
# The pending list starts with this many placeholders that are never moved.
# Emptying a list to below half its allocation makes CPython shrink it, and
# refilling it then reallocates and copies it a dozen times per batch: about
# a fifth of the cost of recording. Above the placeholders' count the list
# stays well over half full, so its allocation is kept from batch to batch.
RESERVE = BATCH_VALUES * 13 // 10


def recorders(
    pending: list[object], clock: Callable[[], float], flush: weakref.WeakMethod
) -> tuple[Callable[..., None], Callable[[list[object]], None]]:
    """The hot paths of `Timeline.record` and `record_flat`, as closures.

    No attribute is looked up per event. They hold their timeline's
    ``_flush`` weakly, so that the timeline and its recorders form no
    reference cycle and are freed as soon as they are unused.
    """
    extend, move = pending.extend, _mover(pending, flush)
    # Every BATCH-th call moves what is pending. ``next()`` on a cycle is one
    # atomic C call that returns a cached object, where ``len(pending)`` would
    # allocate an int (the list is longer than 256) on every call.
    ticks = itertools.cycle((True,) * (BATCH - 1) + (False,))

    def record(
        actor: str, action: str, fd: int = -1, mask: int = 0, nbytes: int = 0, detail: str = ""
    ) -> None:
        extend((clock(), actor, action, fd, mask, nbytes, detail))
        if not next(ticks):
            move()

    # Several events in one extend: a select() and its ready keys share one
    # clock reading and one call. The ticks count calls, not events, so this
    # path moves what is pending by its length instead.
    limit = RESERVE + BATCH_VALUES

    def record_flat(values: list[object]) -> None:
        extend(values)
        if len(pending) >= limit:
            move()

    return record, record_flat


def _mover(pending: list[object], flush: weakref.WeakMethod) -> Callable[[], None]:
    """Move what is pending into the timeline's columns, or drop it if the timeline is gone."""

    def move() -> None:
        flush_now = flush()
        if flush_now is None:  # the timeline is gone: nobody can read these events
            del pending[RESERVE:]
        else:
            flush_now()

    return move
