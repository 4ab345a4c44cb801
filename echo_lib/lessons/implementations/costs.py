"""What ``select(0)`` costs with many idle sockets, per selector class: measured into a `CostTable`.

Every class gets the same idle sockets (`driver.fds.IdleSockets`, the
lowest-numbered ones first); each point is `driver.probes.select_cost`, the
median CPU time per call. `SelectSelector` stops at FD_SETSIZE: it is
measured only up to the last count whose descriptors all stay below it, plus
one point at that limit. `CostTable.verdicts()` says what the numbers show in
sentences that do not change from run to run (wide margins, no raw times).
"""

from __future__ import annotations

import selectors
import socket
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from ...driver.fds import IdleSockets, MoreFds, open_fd_count
from ...driver.implementations import FD_SETSIZE, available_selectors
from ...driver.selector_probes import ROUNDS, select_cost

__all__ = ["COUNTS", "FD_MARGIN", "CostPoint", "CostTable", "measure_select_costs", "room"]

#: The numbers of idle sockets measured by default.
COUNTS: tuple[int, ...] = (1, 10, 100, 1000, 10_000)
MAX_SOCKETS = 10_000
FD_MARGIN = 64  # descriptors left free for everything else the process does


@dataclass(frozen=True)
class CostPoint:
    """One measurement: ``selector`` watching ``sockets`` idle sockets, ``seconds`` CPU a call."""

    selector: str
    sockets: int
    seconds: float
    at_limit: bool = False  # the last count below FD_SETSIZE (asked for, or added to show it)

    def __str__(self) -> str:
        cost = _duration(self.seconds)
        return f"{self.selector}, {sockets_text(self.sockets)}: {cost} per select(0)"


def sockets_text(count: int) -> str:
    """E.g. ``1 idle socket``, ``10,000 idle sockets``."""
    return f"{count:,} idle socket{'s' * (count != 1)}"


def _duration(seconds: float) -> str:
    """E.g. ``4.2 ms``, ``180 µs``, ``0.55 µs``."""
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    micro = seconds * 1e6
    if micro >= 100:
        return f"{micro:.0f} µs"
    return f"{micro:.2g} µs" if micro < 1 else f"{micro:.1f} µs"


@dataclass
class CostTable:
    """Every point of a measurement, and notes on what could not be measured."""

    points: list[CostPoint] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def selectors(self) -> list[str]:
        """The classes measured, in order."""
        return list(dict.fromkeys(point.selector for point in self.points))

    def costs(self, selector: str) -> dict[int, float]:
        """Seconds per ``select(0)`` by number of idle sockets, for one class."""
        return {point.sockets: point.seconds for point in self.points if point.selector == selector}

    def growth(self, selector: str, low: int, high: int) -> float | None:
        """How many times slower ``selector`` is with ``high`` idle sockets than with ``low``.

        None when either was not measured (or too fast for this platform's CPU clock).
        """
        costs = self.costs(selector)
        if low not in costs or high not in costs or costs[low] <= 0:
            return None
        return costs[high] / costs[low]

    def last(self, selector: str) -> CostPoint | None:
        """The point with the most sockets for ``selector``."""
        points = [point for point in self.points if point.selector == selector]
        return max(points, key=lambda point: point.sockets, default=None)

    def verdicts(self) -> list[str]:
        """Deterministic sentences about the measurement: comparisons with wide margins."""
        lines = []
        for name in self.selectors():
            if name == "SelectSelector":
                lines += _select_verdicts(self)
            elif name == "PollSelector":
                claim = "is over 10x slower with 10,000 idle sockets than with 10"
                lines.append(_grows(self, name, claim, lambda g: g > 10))
            else:
                claim = "grows less than 3x from 10 to 10,000 idle sockets"
                lines.append(_grows(self, name, claim, lambda g: g < 3))
        return [*lines, *_versus(self), *self.notes]

    def __str__(self) -> str:
        limit = " (the limit: FD_SETSIZE)"
        lines = [str(point) + (limit if point.at_limit else "") for point in self.points]
        return "\n".join(lines + self.notes)


def _grows(table: CostTable, name: str, claim: str, test: Callable[[float], bool]) -> str:
    growth = table.growth(name, 10, MAX_SOCKETS)
    if growth is None:
        return f"{name}: 10 and 10,000 idle sockets were not both measured"
    return f"{name} {claim}: {test(growth)}"


def _versus(table: CostTable, count: int = 1000) -> list[str]:
    """Each scanning class (poll, select) against the first that keeps its set in the kernel."""
    scanning = ("PollSelector", "SelectSelector")
    names = table.selectors()
    fast = next((name for name in names if name not in scanning), None)
    if fast is None or table.costs(fast).get(count, 0) <= 0:
        return []
    base = table.costs(fast)[count]
    return [
        f"with {count:,} idle sockets, {name} is over 10x slower than {fast}: "
        f"{table.costs(name)[count] / base > 10}"
        for name in names
        if name in scanning and count in table.costs(name)
    ]


def _select_verdicts(table: CostTable) -> list[str]:
    last = table.last("SelectSelector")
    if last is None or table.costs("SelectSelector").get(10, 0) <= 0:
        return ["SelectSelector: not measured"]
    growth = last.seconds / table.costs("SelectSelector")[10]
    stopped = last.at_limit and last.sockets < FD_SETSIZE
    return [
        f"SelectSelector stopped below FD_SETSIZE ({FD_SETSIZE}): {stopped}",
        f"SelectSelector at its last point is over 10x slower than at 10: {growth > 10}",
    ]


def measure_select_costs(
    classes: Iterable[type[selectors.BaseSelector]] | None = None,
    counts: Sequence[int] = COUNTS,
    rounds: int = ROUNDS,
) -> CostTable:
    """Time ``select(0)`` for each class and each number of idle sockets; return a `CostTable`.

    ``classes`` defaults to every class this platform has. `SelectSelector`
    stops at FD_SETSIZE (one extra point at the limit). Counts the process
    cannot open, even with RLIMIT_NOFILE raised to its hard limit, are left
    out and named in the table's notes. Every socket is closed and the limit
    restored on return.
    """
    classes = list(available_selectors().values()) if classes is None else list(classes)
    table = CostTable()
    wanted = sorted(set(counts))
    with MoreFds(max(wanted) + open_fd_count() + FD_MARGIN) as fds:
        fits = room(fds.limit)
        if wanted[-1] > fits:
            too_many = ", ".join(f"{n:,}" for n in wanted if n > fits)
            table.notes.append(f"{too_many} idle sockets: more than RLIMIT_NOFILE allows here")
            wanted = [n for n in wanted if n <= fits] or [1]
        with IdleSockets(max(wanted)) as socks:
            for cls in classes:
                table.points += measure_class(cls, socks, wanted, rounds)
    return table


def room(limit: int | None) -> int:
    """How many more sockets fit under the descriptor ``limit`` (None: no limit known)."""
    if limit is None:
        return MAX_SOCKETS
    return max(1, limit - open_fd_count() - FD_MARGIN)


def measure_class(
    cls: type[selectors.BaseSelector], socks: list[socket.socket], counts: list[int], rounds: int
) -> list[CostPoint]:
    """One point per count of ``socks`` for ``cls``; select() stops at FD_SETSIZE, marked."""
    points = []
    limited = cls is getattr(selectors, "SelectSelector", None) and sys.platform != "win32"
    below = sum(sock.fileno() < FD_SETSIZE for sock in socks) if limited else len(socks)
    for n in counts:
        if n > below:
            if points and points[-1].sockets == below:  # the count just measured is the limit
                points[-1] = replace(points[-1], at_limit=True)
            elif below:
                seconds = select_cost(cls, socks[:below], rounds)
                points.append(CostPoint(cls.__name__, below, seconds, at_limit=True))
            break
        points.append(CostPoint(cls.__name__, n, select_cost(cls, socks[:n], rounds)))
    return points
