"""What one ``select(0)`` costs with many idle sockets, per selector class (notebook 07).

An idle socket is a connected socket that nobody writes to: registered for
EVENT_READ it is never ready, so every ``select(0)`` returns an empty list.
What it still costs depends on the class:

* ``select()`` and ``poll()`` hand the kernel the whole set of watched
  descriptors on every call, and the kernel looks at each one: the cost grows
  with the number of sockets.
* ``epoll`` (and kqueue, devpoll) keeps the set in the kernel between calls;
  a call only collects what became ready, so idle sockets cost (almost) nothing.
* ``select()`` also stops at FD_SETSIZE: it cannot watch a descriptor numbered
  1024 or more, so `SelectSelector` is measured only up to the last count whose
  descriptors all stay below it, plus one point at that limit.

How it is measured, and why this way: every class gets the same sockets (the
lowest-numbered ones first), made with ``socket.socketpair()`` (both ends are
idle sockets, and no port is used). Each point times batches of
``select(0)`` calls, a batch long enough (about 2 ms) for the clock, and
keeps the median of several batches. The clock is this thread's CPU time
(``time.thread_time()``: user and system), which stops while another process
has the CPU; on a busy machine, wall time would measure the neighbours too. A process may open only
RLIMIT_NOFILE descriptors: `MoreFds` raises the soft limit towards the hard
limit for the measurement and restores it afterwards.

`SelectCostLab` is the notebook's widget: pick a class and a number of idle
sockets, press Run, and the point joins the plot.
"""

from __future__ import annotations

import base64
import io
import os
import selectors
import socket
import statistics
import sys
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..driver.implementations import FD_SETSIZE, available_selectors
from ..view.widgets import display_output, stream_output, weak_callback, widget_bundle

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "COUNTS",
    "CostPoint",
    "CostTable",
    "IdleSockets",
    "MoreFds",
    "SelectCostLab",
    "SocketsAt",
    "dup_to",
    "measure_select_costs",
    "ready_order",
    "open_fd_count",
    "plot_select_costs",
    "select_cost",
    "select_cost_lab",
]

READ = selectors.EVENT_READ
#: The numbers of idle sockets measured by default.
COUNTS: tuple[int, ...] = (1, 10, 100, 1000, 10_000)
MAX_SOCKETS = 10_000
BATCH_SECONDS = 0.002  # one timed batch of select(0) calls lasts about this long
ROUNDS = 7  # batches per point; the median is kept
MAX_CALLS = 100_000  # calls per batch at most
FD_MARGIN = 64  # descriptors left free for everything else the process does


# -- descriptors ----------------------------------------------------------------


def open_fd_count() -> int:
    """How many file descriptors this process has open (an estimate where the OS cannot list them)."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(folder))
        except OSError:
            continue
    return 256


class MoreFds:
    """``with MoreFds(needed):`` raise RLIMIT_NOFILE's soft limit to ``needed``, restore it on exit.

    The soft limit never goes above the hard limit, nor down. `limit` is the
    soft limit in force inside the block (None where the `resource` module
    does not exist, e.g. on Windows). A class, not a generator: an exception
    raised inside the block keeps its own traceback.
    """

    def __init__(self, needed: int) -> None:
        self.needed = needed
        self.limit: int | None = None
        self._saved: tuple[int, int] | None = None

    def __enter__(self) -> MoreFds:
        try:
            import resource
        except ImportError:  # Windows: no RLIMIT_NOFILE to raise
            return self
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.limit = soft
        if soft != resource.RLIM_INFINITY and soft < self.needed:
            wanted = self.needed if hard == resource.RLIM_INFINITY else min(self.needed, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            self._saved, self.limit = (soft, hard), wanted
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_NOFILE, self._saved)
            self._saved = None


class IdleSockets:
    """``with IdleSockets(n) as socks:`` n connected sockets that nobody writes to.

    They are the ends of ``n / 2`` socket pairs (for an odd ``n`` the last
    peer is kept open but not listed), sorted by descriptor number, and all
    closed on exit (also when opening fails half way). Raises
    `OSError` (EMFILE) naming the limit when the process may not open so many.
    """

    def __init__(self, count: int) -> None:
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive int, got {count!r}")
        self.count = count
        self.sockets: list[socket.socket] = []
        self._spare: socket.socket | None = None

    def __enter__(self) -> list[socket.socket]:
        try:
            while len(self.sockets) < self.count:
                self.sockets.extend(socket.socketpair())
        except OSError as exc:
            self.close()
            raise OSError(
                exc.errno,
                f"could not open {self.count} idle sockets: {exc.strerror} (see RLIMIT_NOFILE)",
            ) from None
        if len(self.sockets) > self.count:
            self._spare = (
                self.sockets.pop()
            )  # kept open: closing it would make its peer readable (EOF)
        self.sockets.sort(key=lambda sock: sock.fileno())
        return self.sockets

    def close(self) -> None:
        """Close every socket (idempotent)."""
        for sock in [*self.sockets, *([self._spare] if self._spare is not None else [])]:
            sock.close()
        self.sockets, self._spare = [], None

    def __exit__(self, *exc: object) -> None:
        self.close()


class SocketsAt:
    """``with SocketsAt({"a": 899, ...}) as (socks, peers):`` sockets with chosen descriptor numbers.

    For each name, a socket pair is made and one end is duplicated
    (``fcntl(F_DUPFD)``) to the lowest free descriptor at or above the
    number asked for; ``socks[name]`` is that duplicate, ``peers[name]`` the
    other end (write to it to make ``socks[name]`` readable). Everything is
    closed on exit. Where `fcntl` does not exist (Windows) the numbers are
    whatever the system gives. The numbers must stay below RLIMIT_NOFILE.
    """

    def __init__(self, numbers: dict[str, int]) -> None:
        self.numbers = dict(numbers)
        self._open: list[socket.socket] = []

    def __enter__(self) -> tuple[dict[str, socket.socket], dict[str, socket.socket]]:
        socks, peers = {}, {}
        try:
            for name, number in self.numbers.items():
                end, peer = socket.socketpair()
                self._open += [end, peer]
                socks[name], peers[name] = _duplicate(end, number), peer
                self._open.append(socks[name])
        except BaseException:
            self.__exit__()
            raise
        return socks, peers

    def __exit__(self, *exc: object) -> None:
        for sock in self._open:
            sock.close()
        self._open = []


def _duplicate(sock: socket.socket, number: int) -> socket.socket:
    try:
        return dup_to(sock, number)
    except NotImplementedError:  # Windows: no control over the numbers
        return sock.dup()


def dup_to(sock: socket.socket, number: int) -> socket.socket:
    """The same socket as a new descriptor: the lowest free one numbered ``number`` or more.

    This is ``fcntl(fd, F_DUPFD, number)``, wrapped in a new socket object (close it).
    Raises `NotImplementedError` where `fcntl` does not exist (Windows, whose
    sockets are handles, not small numbers), and `OSError` (EINVAL) when
    ``number`` is not below RLIMIT_NOFILE.
    """
    try:
        import fcntl
    except ImportError:
        raise NotImplementedError(
            f"{sys.platform} has no fcntl: its socket handles cannot be given a number; "
            "there select() takes at most 512 sockets, whatever their handles"
        ) from None
    return socket.socket(fileno=fcntl.fcntl(sock.fileno(), fcntl.F_DUPFD, number))


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


# -- timing ---------------------------------------------------------------------


def _batch_cost(sel: selectors.BaseSelector, calls: int) -> float:
    start = time.thread_time()
    for _ in range(calls):
        sel.select(0)
    return (time.thread_time() - start) / calls


def time_select(sel: selectors.BaseSelector, rounds: int = ROUNDS) -> float:
    """Median CPU seconds per ``sel.select(0)``, over ``rounds`` batches of about `BATCH_SECONDS` each.

    CPU time of this thread (user and system), not wall time: while another
    process has the CPU, this thread's clock stops, so a busy machine
    disturbs the result much less.
    """
    calls = 1
    while calls < MAX_CALLS:  # find a batch that lasts BATCH_SECONDS (this warms up too)
        per_call = _batch_cost(sel, calls)
        if per_call * calls >= BATCH_SECONDS:
            break
        calls = min(
            MAX_CALLS,
            calls * 10 if per_call <= 0 else max(2 * calls, int(BATCH_SECONDS / per_call) + 1),
        )
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


# -- a whole measurement --------------------------------------------------------


@dataclass(frozen=True)
class CostPoint:
    """One measurement: ``selector`` watching ``sockets`` idle sockets, ``seconds`` of CPU per ``select(0)``."""

    selector: str
    sockets: int
    seconds: float
    at_limit: bool = (
        False  # the last count below FD_SETSIZE (asked for, or added to show the limit)
    )

    def __str__(self) -> str:
        return f"{self.selector}, {_sockets(self.sockets)}: {_duration(self.seconds)} per select(0)"


def _sockets(count: int) -> str:
    return f"{count:,} idle socket{'s' * (count != 1)}"


def _duration(seconds: float) -> str:
    """E.g. ``4.2 ms``, ``180 µs``, ``0.55 µs``."""
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.1f} ms"
    micro = seconds * 1e6
    return (
        f"{micro:.0f} µs" if micro >= 100 else f"{micro:.2g} µs" if micro < 1 else f"{micro:.1f} µs"
    )


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
        """How many times slower ``selector`` is with ``high`` idle sockets than with ``low`` (None: not measured)."""
        costs = self.costs(selector)
        if low not in costs or high not in costs or costs[low] <= 0:
            return None  # not measured, or too fast for this platform's CPU clock
        return costs[high] / costs[low]

    def last(self, selector: str) -> CostPoint | None:
        """The point with the most sockets for ``selector``."""
        points = [point for point in self.points if point.selector == selector]
        return max(points, key=lambda point: point.sockets, default=None)

    def verdicts(self) -> list[str]:
        """Deterministic sentences about the measurement: comparisons with wide margins, no raw times."""
        lines = []
        for name in self.selectors():
            if name == "SelectSelector":
                lines += _select_verdicts(self)
            elif name == "PollSelector":
                lines.append(
                    _grows(
                        self,
                        name,
                        "is over 10x slower with 10,000 idle sockets than with 10",
                        lambda g: g > 10,
                    )
                )
            else:
                lines.append(
                    _grows(
                        self,
                        name,
                        "grows less than 3x from 10 to 10,000 idle sockets",
                        lambda g: g < 3,
                    )
                )
        return [*lines, *_versus(self), *self.notes]

    def __str__(self) -> str:
        lines = [
            str(point) + (" (the limit: FD_SETSIZE)" if point.at_limit else "")
            for point in self.points
        ]
        return "\n".join(lines + self.notes)


def _grows(table: CostTable, name: str, claim: str, test: Callable[[float], bool]) -> str:
    growth = table.growth(name, 10, MAX_SOCKETS)
    if growth is None:
        return f"{name}: 10 and 10,000 idle sockets were not both measured"
    return f"{name} {claim}: {test(growth)}"


def _versus(table: CostTable, count: int = 1000) -> list[str]:
    """Each scanning class (poll, select) against the first class that keeps its set in the kernel."""
    scanning = ("PollSelector", "SelectSelector")
    names = table.selectors()
    fast = next((name for name in names if name not in scanning), None)
    if fast is None or table.costs(fast).get(count, 0) <= 0:
        return []
    base = table.costs(fast)[count]
    return [
        f"with {count:,} idle sockets, {name} is over 10x slower than {fast}: {table.costs(name)[count] / base > 10}"
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
        room = _room(fds.limit)
        if wanted[-1] > room:
            table.notes.append(
                f"{', '.join(f'{n:,}' for n in wanted if n > room)} idle sockets: more than RLIMIT_NOFILE allows here"
            )
            wanted = [n for n in wanted if n <= room] or [1]
        with IdleSockets(max(wanted)) as socks:
            for cls in classes:
                table.points += _measure_class(cls, socks, wanted, rounds)
    return table


def _room(limit: int | None) -> int:
    if limit is None:
        return MAX_SOCKETS
    return max(1, limit - open_fd_count() - FD_MARGIN)


def _measure_class(
    cls: type[selectors.BaseSelector], socks: list[socket.socket], counts: list[int], rounds: int
) -> list[CostPoint]:
    points = []
    limited = cls is getattr(selectors, "SelectSelector", None) and sys.platform != "win32"
    below = sum(sock.fileno() < FD_SETSIZE for sock in socks) if limited else len(socks)
    for n in counts:
        if n > below:
            if (
                points and points[-1].sockets == below
            ):  # the count just measured is the limit itself
                points[-1] = replace(points[-1], at_limit=True)
            elif below:
                points.append(
                    CostPoint(
                        cls.__name__, below, select_cost(cls, socks[:below], rounds), at_limit=True
                    )
                )
            break
        points.append(CostPoint(cls.__name__, n, select_cost(cls, socks[:n], rounds)))
    return points


# -- the picture ----------------------------------------------------------------

_STYLE = {
    "EpollSelector": ("tab:green", "o"),
    "KqueueSelector": ("tab:green", "o"),
    "DevpollSelector": ("tab:olive", "o"),
    "PollSelector": ("tab:blue", "s"),
    "SelectSelector": ("tab:red", "^"),
}


def plot_select_costs(
    table: CostTable, ax: Axes | None = None, *, title: str | None = None
) -> Axes:
    """Draw microseconds per ``select(0)`` against idle sockets, log-log, one line per class.

    A dotted line marks FD_SETSIZE when a class stopped there. Returns the axes.
    """
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7.5, 4.5), layout="constrained")
    for name in table.selectors():
        costs = sorted(table.costs(name).items())
        colour, marker = _STYLE.get(name, ("0.3", "o"))
        ax.plot(
            [n for n, _ in costs],
            [s * 1e6 for _, s in costs],
            marker=marker,
            color=colour,
            label=name,
        )
    if any(point.at_limit for point in table.points):
        ax.axvline(
            FD_SETSIZE,
            color="tab:red",
            linestyle=":",
            linewidth=1.2,
            label=f"FD_SETSIZE ({FD_SETSIZE}): select() stops",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("idle sockets registered")
    ax.set_ylabel("CPU µs per select(0) (median)")
    ax.margins(0.08)
    ax.set_title(title or "What an empty select(0) costs")
    ax.grid(True, which="major", color="0.88")
    if table.points:
        ax.legend(loc="upper left")
    return ax


# -- the widget -----------------------------------------------------------------


class SelectCostLab:
    """Pick a selector class and a number of idle sockets; Run measures one point and plots every point so far.

    `run()` does what the button does and returns the new `CostPoint` (None
    when the class cannot watch that many sockets here, e.g. SelectSelector
    past FD_SETSIZE: the lab says so). `points` holds every point measured;
    `text()` is what the lab shows. Its repr names the settings and the
    number of points, never a time.

    Raises `ValueError` for a class this platform lacks or a count that is
    not offered.
    """

    def __init__(self, selector: str, sockets: int) -> None:
        self._widget: _CostWidget | None = None
        self.selector, self.sockets = selector, sockets
        self.table = CostTable()
        self.lines: list[str] = []

    @property
    def selector(self) -> str:
        """The class measured by `run()`, by name; setting it moves the dropdown too."""
        return self._selector

    @selector.setter
    def selector(self, name: str) -> None:
        names = list(available_selectors())
        if name not in names:
            raise ValueError(f"selector must be one of {', '.join(names)}, got {name!r}")
        self._selector = name
        if self._widget is not None and self._widget.selector.value != name:
            self._widget.selector.value = name

    @property
    def sockets(self) -> int:
        """How many idle sockets `run()` registers; setting it moves the dropdown too."""
        return self._sockets

    @sockets.setter
    def sockets(self, count: int) -> None:
        if count not in COUNTS:
            raise ValueError(f"sockets must be one of {', '.join(map(str, COUNTS))}, got {count!r}")
        self._sockets = count
        if self._widget is not None and self._widget.sockets.value != count:
            self._widget.sockets.value = count

    @property
    def points(self) -> list[CostPoint]:
        return self.table.points

    def run(self) -> CostPoint | None:
        """Measure ``select(0)`` for the chosen class and number of idle sockets; add the point."""
        cls = available_selectors()[self.selector]
        limited = self.selector == "SelectSelector" and sys.platform != "win32"
        if limited and self.sockets >= FD_SETSIZE:  # no need to open them to know
            return self._say(
                f"SelectSelector cannot watch {_sockets(self.sockets)}: they need fds up to {self.sockets - 1} at least, "
                f"and select() only takes fds below FD_SETSIZE ({FD_SETSIZE})"
            )
        with MoreFds(self.sockets + open_fd_count() + FD_MARGIN) as fds:
            if self.sockets > _room(fds.limit):
                return self._say(f"{_sockets(self.sockets)}: more than RLIMIT_NOFILE allows here")
            with IdleSockets(self.sockets) as socks:
                if limited and socks[-1].fileno() >= FD_SETSIZE:
                    return self._say(
                        f"SelectSelector cannot watch {_sockets(self.sockets)} here: the highest is fd "
                        f"{socks[-1].fileno()}, and select() only takes fds below FD_SETSIZE ({FD_SETSIZE})"
                    )
                point = CostPoint(self.selector, self.sockets, select_cost(cls, socks))
        self.table.points = [
            p for p in self.points if (p.selector, p.sockets) != (point.selector, point.sockets)
        ] + [point]
        self._say(str(point))
        return point

    def _say(self, line: str) -> None:
        self.lines.append(line)
        if self._widget is not None:
            self._widget.show(self)
        return None

    def text(self) -> str:
        """Every line the lab has shown, oldest first (times in them vary from run to run)."""
        return "\n".join(self.lines) if self.lines else "no point measured yet"

    def clear(self) -> None:
        """Forget every point."""
        self.table, self.lines = CostTable(), []
        if self._widget is not None:
            self._widget.show(self)

    @property
    def widget(self) -> Any:
        """The ipywidgets front end, built on first use."""
        if self._widget is None:
            self._widget = _CostWidget(self)
        return self._widget

    def _repr_mimebundle_(self, include: object = None, exclude: object = None) -> dict[str, Any]:
        return widget_bundle(self.widget.box, repr(self))

    def __repr__(self) -> str:
        count = len(self.points)
        return f"<SelectCostLab: {self.selector}, {_sockets(self.sockets)}; {count} point{'s' * (count != 1)} measured>"


class _CostWidget:
    """Dropdowns, Run and Clear buttons, and an Output written by replacing its outputs (nbval handles no clear_output)."""

    def __init__(self, lab: SelectCostLab) -> None:
        import ipywidgets as widgets

        style = {"description_width": "10em"}
        self.selector = widgets.Dropdown(
            options=list(available_selectors()),
            value=lab.selector,
            description="selector class",
            style=style,
        )
        self.sockets = widgets.Dropdown(
            options=[(f"{n:,}", n) for n in COUNTS],
            value=lab.sockets,
            description="idle sockets",
            style=style,
        )
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.clear_button = widgets.Button(description="Clear", icon="trash")
        self.out = widgets.Output()
        self.box = widgets.VBox(
            [
                self.selector,
                self.sockets,
                widgets.HBox([self.run_button, self.clear_button]),
                self.out,
            ]
        )
        ref = weakref.ref(lab)  # the buttons must not keep the lab alive
        self.run_button.on_click(weak_callback(lab.run))
        self.clear_button.on_click(weak_callback(lab.clear))
        self.selector.observe(lambda change: _set(ref, selector=change["new"]), names="value")
        self.sockets.observe(lambda change: _set(ref, sockets=change["new"]), names="value")

    def show(self, lab: SelectCostLab) -> None:
        outputs = [stream_output(lab.text(), end="\n")]
        if lab.points:
            png = base64.b64encode(_png(lab.table)).decode("ascii")
            outputs.append(display_output({"image/png": png, "text/plain": "<select() cost plot>"}))
        self.out.outputs = tuple(outputs)


def _png(table: CostTable) -> bytes:
    """The cost plot on a pyplot-free figure, as PNG bytes (nothing is left for pyplot to show)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4.0), layout="constrained")
    plot_select_costs(table, fig.add_subplot(), title="select(0) cost, measured here")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def _set(ref: weakref.ref[SelectCostLab], **settings: Any) -> None:
    lab = ref()
    if lab is not None:
        for name, value in settings.items():
            setattr(lab, name, value)


def select_cost_lab(selector: str | None = None, sockets: int = 1000) -> SelectCostLab:
    """A `SelectCostLab` starting at ``selector`` (default: DefaultSelector's class) and ``sockets``; display it for the widget.

    Raises `ValueError` for a class this platform lacks or a count not in `COUNTS`.
    """
    return SelectCostLab(selector or selectors.DefaultSelector.__name__, sockets)
