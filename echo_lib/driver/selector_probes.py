"""Probing a selector class: the order one ``select(0)`` reports, and what an empty one costs.

Both are for notebook 07 and its checkers. The cost is the median CPU time
of this thread (``time.thread_time()``: user and system) per ``select(0)``,
timed in batches long enough (about `BATCH_SECONDS`) for the clock. CPU time,
not wall time: while another process has the CPU this thread's clock stops,
so a busy machine disturbs the result much less.
"""

from __future__ import annotations

import selectors
import socket
import statistics
import time
from collections.abc import Sequence

__all__ = ["BATCH_SECONDS", "ROUNDS", "ready_order", "select_cost", "time_select"]

READ = selectors.EVENT_READ
BATCH_SECONDS = 0.002  # one timed batch of select(0) calls lasts about this long
ROUNDS = 7  # batches per measurement; the median is kept
MAX_CALLS = 100_000  # calls per batch at most


def ready_order(
    selector_class: type[selectors.BaseSelector],
    socks: dict[str, socket.socket],
    peers: dict[str, socket.socket],
    registered: str,
    readied: str,
) -> list[str]:
    """The names in the order one ``select(0)`` reports them (section 3 of notebook 07).

    Registers ``socks`` for READ in the order of ``registered`` (each name is
    its key's data), sends one byte from ``peers`` in the order of
    ``readied``, selects once, then reads every byte back so that the
    sockets are idle again for the next class.
    """
    with selector_class() as sel:
        for name in registered:
            sel.register(socks[name], READ, name)
        for name in readied:
            peers[name].send(b"!")
        order = [key.data for key, _ in sel.select(0)]
    for name in readied:
        socks[name].recv(1)
    return order


def _batch_cost(sel: selectors.BaseSelector, calls: int) -> float:
    start = time.thread_time()
    for _ in range(calls):
        sel.select(0)
    return (time.thread_time() - start) / calls


def time_select(sel: selectors.BaseSelector, rounds: int = ROUNDS) -> float:
    """Median CPU seconds per ``sel.select(0)``, over ``rounds`` batches of `BATCH_SECONDS`."""
    calls = 1
    while calls < MAX_CALLS:  # find a batch that lasts BATCH_SECONDS (this warms up too)
        per_call = _batch_cost(sel, calls)
        if per_call * calls >= BATCH_SECONDS:
            break
        grown = calls * 10 if per_call <= 0 else max(2 * calls, int(BATCH_SECONDS / per_call) + 1)
        calls = min(MAX_CALLS, grown)
    return statistics.median(_batch_cost(sel, calls) for _ in range(rounds))


def select_cost(
    selector_class: type[selectors.BaseSelector],
    sockets: Sequence[socket.socket],
    rounds: int = ROUNDS,
) -> float:
    """Median seconds per ``select(0)`` of a new ``selector_class()`` watching ``sockets`` for READ.

    The selector is closed on return. Raises `ValueError` if a socket was
    ready (it is not idle), and whatever the selector raises (e.g. CPython's
    ``ValueError: filedescriptor out of range in select()``).
    """
    with selector_class() as sel:
        for sock in sockets:
            sel.register(sock, READ)
        if sel.select(0):
            raise ValueError("a socket was ready: idle sockets must have nothing to read")
        return time_select(sel, rounds)
