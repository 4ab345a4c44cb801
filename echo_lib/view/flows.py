"""Byte flows: which send's bytes each recv took in, drawn as one quiver of arrows.

Clients (actors without a ``/`` that ``connect`` or move bytes and never
``accept``) are paired with server connections (actors with a ``/``, like
``server/conn-1``) in the order each first appears, because a listener accepts
connections in the order they arrive. Within a pair each direction is a byte
stream: a ``send`` of the stream's bytes [a, b) points at the ``recv`` that took
in byte a, so chunks that are split or merged on the way still pair up, and a
send whose bytes never arrived (the counts differ) gets no arrow. Pairs are
found by bytes, not by time: a send is recorded after ``send()`` returns, so the
peer's thread may record the matching recv first and its arrow leans back a
little. All arrows are one quiver of at most `MAX_ARROWS`, spread evenly over
the run.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from ..core.events import Event

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["MAX_ARROWS", "Flow", "draw_arrows", "flows"]

#: At most this many byte-flow arrows are drawn on a plot.
MAX_ARROWS = 200

Flow = tuple[Event, Event]


def draw_arrows(ax: Axes, events: list[Event], lane_of: dict[str, int]) -> None:
    """One quiver: an arrow from each shown send to the recv that took its first byte."""
    shown = [(s, r) for s, r in flows(events) if s.actor in lane_of and r.actor in lane_of]
    shown = _spread(shown, MAX_ARROWS)
    if not shown:
        return
    ax.quiver(
        [send.t for send, _ in shown],
        [lane_of[send.actor] for send, _ in shown],
        [recv.t - send.t for send, recv in shown],
        [lane_of[recv.actor] - lane_of[send.actor] for send, recv in shown],
        angles="xy",
        scale_units="xy",
        scale=1.0,
        color="0.35",
        alpha=0.55,
        width=0.0018,
        headwidth=5.0,
        headlength=6.0,
        headaxislength=5.5,
        zorder=3.5,
    )


def _spread(items: list[Flow], cap: int) -> list[Flow]:
    """At most ``cap`` items, evenly spaced over the list."""
    if len(items) <= cap:
        return items
    return [items[index * len(items) // cap] for index in range(cap)]


def flows(events: list[Event]) -> list[Flow]:
    """Every (send, recv) pair that moved the same bytes, by send order."""
    streams: dict[tuple[str, str], list[Event]] = {}
    for event in events:
        if event.action in ("send", "recv") and event.nbytes > 0:
            streams.setdefault((event.actor, event.action), []).append(event)
    actors = list(dict.fromkeys(event.actor for event in events))
    flows: list[Flow] = []
    connections = [
        actor for actor in actors if "/" in actor
    ]  # server/conn-1, ... in order of accept
    for client, conn in zip(_clients(events, actors), connections, strict=False):
        flows += _match(streams.get((client, "send"), []), streams.get((conn, "recv"), []))
        flows += _match(streams.get((conn, "send"), []), streams.get((client, "recv"), []))
    return sorted(flows, key=lambda flow: flow[0].seq)


def _clients(events: list[Event], actors: list[str]) -> list[str]:
    """Of ``actors``, those without a ``/`` that connect or move bytes and never accept."""
    did = {(event.actor, event.action) for event in events}
    return [
        actor
        for actor in actors
        if "/" not in actor
        and (actor, "accept") not in did
        and any((actor, action) in did for action in ("connect", "send", "recv"))
    ]


def _match(sends: list[Event], recvs: list[Event]) -> list[Flow]:
    """Pair each send with the recv that took in its first byte (one byte stream)."""
    ends = list(itertools.accumulate(recv.nbytes for recv in recvs))
    flows: list[Flow] = []
    index, start = 0, 0
    for send in sends:
        while index < len(ends) and ends[index] <= start:
            index += 1
        if index == len(ends):
            break
        flows.append((send, recvs[index]))
        start += send.nbytes
    return flows
