"""Checkers for notebook 07 (selector implementations): pick a class that scales, measure one."""

from __future__ import annotations

import gc
import selectors
import socket
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from types import MappingProxyType
from typing import Any

from ..core.checks import is_number
from ..driver.fds import IdleSockets, MoreFds, SocketsAt, open_fd_count
from ..driver.implementations import FD_SETSIZE, available_selectors
from ..driver.selector_probes import ready_order
from . import DidNotReturn, Feedback, run_with_timeout

__all__ = [
    "PREDICT_NUMBERS",
    "PREDICT_READIED",
    "PREDICT_REGISTERED",
    "check_order_prediction",
    "check_pick_selector",
    "check_select_cost",
]

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
PickSelector = Callable[[int], Any]
SelectCost = Callable[[type, int], Any]

# (what the process looks like, sockets to watch, open fds up to FD_SETSIZE first?)
_PICK_CASES: tuple[tuple[str, int, bool], ...] = (
    ("10 sockets", 10, False),
    ("5000 sockets", 5000, False),
    ("10 sockets in a process that already has over 1024 fds open", 10, True),
)


# -- exercise 1: predict the orders ------------------------------------------------

# Four sockets at these fds, registered a, b, c, d, made readable b, d, a, c.
# The numbers make the four orders differ: readiness b d a c (epoll),
# registration a b c d (poll), fd modulo 8 c a d b (select's set), fd a d b c.
PREDICT_NUMBERS: Mapping[str, int] = MappingProxyType({"a": 921, "b": 931, "c": 936, "d": 930})
PREDICT_REGISTERED, PREDICT_READIED = "abcd", "bdac"
_READIED, _REGISTERED = ", ".join(PREDICT_READIED), ", ".join(PREDICT_REGISTERED)
_WHY = {
    "EpollSelector": f"epoll reports sockets in the order they became ready ({_READIED})",
    "PollSelector": f"poll reports them in the order they were registered ({_REGISTERED})",
    "SelectSelector": "select()'s ready fds come out of a Python set, "
    "ordered by fd modulo its table size (8 here): ",
}


def check_order_prediction(prediction: Mapping[str, Any]) -> Feedback:
    """Compare ``prediction`` (class name -> names in order, e.g. ``"abcd"``) with each class.

    Only the classes whose order notebook 07 explains are checked: epoll,
    poll and select, those of them this platform has.
    """
    feedback = Feedback("order prediction")
    if not isinstance(prediction, Mapping):
        feedback.expect(
            False, f"expected a dict such as {{'PollSelector': 'abcd'}}, got {prediction!r}"
        )
        return feedback
    orders, fds = _actual_orders()
    for name, order in orders.items():
        guess = prediction.get(name)
        if guess is None:
            add = f"add {name!r}: and the four letters in the order you expect"
            feedback.expect(False, f"no prediction for {name}: {add}")
            continue
        feedback.expect(
            list(guess) == order,
            f"{name}: you predicted {''.join(map(str, guess))!r}, it reported "
            f"{''.join(order)!r}: {_why(name, fds)}",
        )
    return feedback


def _why(name: str, fds: Mapping[str, int]) -> str:
    """Why ``name`` reports that order; for select(), each fd modulo 8 is part of it."""
    if name != "SelectSelector":
        return _WHY[name]
    return _WHY[name] + ", ".join(f"{n} {fd} % 8 = {fd % 8}" for n, fd in fds.items())


def _actual_orders() -> tuple[dict[str, list[str]], dict[str, int]]:
    """Each explained class's order, and the sockets' fds (PREDICT_NUMBERS where fcntl exists)."""
    classes = {name: cls for name, cls in available_selectors().items() if name in _WHY}
    with MoreFds(max(PREDICT_NUMBERS.values()) + 64), SocketsAt(PREDICT_NUMBERS) as (socks, peers):
        orders = {
            name: ready_order(cls, socks, peers, PREDICT_REGISTERED, PREDICT_READIED)
            for name, cls in classes.items()
        }
        return orders, {name: sock.fileno() for name, sock in socks.items()}


# -- exercise 2: pick_selector ---------------------------------------------------


def check_pick_selector(pick_selector: PickSelector) -> Feedback:
    """Call ``pick_selector(n)`` and make the class it returns watch ``n`` real sockets.

    The cases: 10 sockets, 5000 sockets, and 10 sockets in a process that
    already holds more than FD_SETSIZE descriptors (so the new ones are
    numbered above 1024). Each class must be a selector class this platform
    has, and its ``select(0)`` must work with every socket registered.
    """
    feedback = Feedback("pick_selector")
    for label, count, crowded in _PICK_CASES:
        if crowded and sys.platform == "win32":
            continue  # Windows' select() limit is a count, not a descriptor number
        cls = _picked(feedback, pick_selector, count, label)
        if cls is None or not _watches(feedback, cls, count, crowded, label):
            break
    return feedback


def _picked(feedback: Feedback, pick_selector: PickSelector, count: int, label: str) -> type | None:
    try:
        picked = run_with_timeout(pick_selector, count, timeout=2)
    except DidNotReturn:
        feedback.expect(False, f"for {label}, it never returned")
        return None
    except Exception as exc:
        feedback.expect(False, f"for {label}, it raised {type(exc).__name__}: {exc}")
        return None
    problem = _not_a_class(picked)
    if problem:
        feedback.expect(False, f"for {label}, {problem}")
        return None
    return picked


def _not_a_class(picked: object) -> str:
    """Why ``picked`` is not a usable selector class ('' if it is one)."""
    if isinstance(picked, selectors.BaseSelector):
        picked.close()
        name = type(picked).__name__
        return (
            f"it returned a selector object ({name}()), expected the class: return "
            f"selectors.{name}, without ()"
        )
    if isinstance(picked, str):
        return f"it returned the string {picked!r}, expected a class such as selectors.PollSelector"
    if not (isinstance(picked, type) and issubclass(picked, selectors.BaseSelector)):
        return f"it returned {picked!r}, expected a selector class such as selectors.PollSelector"
    if picked not in available_selectors().values():
        return (
            f"it returned {picked.__name__}, which this platform cannot use; it has "
            f"{', '.join(available_selectors())}"
        )
    return ""


def _watches(feedback: Feedback, cls: type, count: int, crowded: bool, label: str) -> bool:
    """Register ``count`` idle sockets on ``cls()`` and select(0); note the failure, if any.

    A machine whose RLIMIT_NOFILE hard limit is too low for the case cannot
    run it; that is no fault of the learner's, so the case is skipped.
    """
    with MoreFds(open_fd_count() + FD_SETSIZE + count + 128), ExitStack() as stack:
        try:
            stack.enter_context(_Crowd(crowded))
            socks = stack.enter_context(IdleSockets(count))
        except OSError:
            return True
        try:
            with cls() as sel:
                for sock in socks:
                    sel.register(sock, READ)
                sel.select(0)
        except (ValueError, OSError) as exc:
            high = " (FD_SETSIZE limits fd numbers, not how many sockets: a busy process hands out"
            hint = f"{high} high ones)" if crowded else ""
            return feedback.expect(
                False, f"for {label}, {cls.__name__} failed: {type(exc).__name__}: {exc}{hint}"
            )
    return True


class _Crowd:
    """``with _Crowd(True):`` hold spare sockets until each new descriptor is FD_SETSIZE or more."""

    def __init__(self, active: bool) -> None:
        self.active = active
        self.sockets: list[socket.socket] = []

    def __enter__(self) -> _Crowd:
        try:
            while self.active and (not self.sockets or self.sockets[-1].fileno() < FD_SETSIZE):
                self.sockets.extend(socket.socketpair())
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for sock in self.sockets:
            sock.close()
        self.sockets = []


# -- exercise 3: select_cost -----------------------------------------------------


# A mean and a median of the same calls differ only when some calls are much
# slower than the rest, and on an idle machine they may not be. So the spy makes
# that happen: SLOW_CALLS consecutive select() calls, starting at call SLOW_FROM
# (after any warm-up), each take SLOW_SECONDS longer. That burst moves the
# median of 100 or more calls not at all (it also leaves most batches alone, so
# a median of batch means passes), but it lifts the mean by 50 ms / calls, tens
# of times a select(0) with a few idle sockets. The spy notes when each call
# begins; the gaps between entries are what the learner's clock sees (the call
# plus the loop around it). A returned value nearer the mean of the gaps than
# their median, in ratio, is a mean. A deliberate delay, not synchronisation:
# the load on the machine only makes the burst longer.
SLOW_FROM, SLOW_CALLS, SLOW_SECONDS = 10, 10, 0.005


class _Log:
    """A spied-on selector class: what it registered, select() timeouts and starts, ready, close."""

    def __init__(self) -> None:
        self.registered: dict[int, int] = {}
        self.timeouts: list[float | None] = []
        self.entries: list[float] = []
        self.ready = 0
        self.closed = 0

    def gaps(self) -> list[float]:
        """Seconds between the starts of consecutive select() calls."""
        return [
            later - earlier for earlier, later in zip(self.entries, self.entries[1:], strict=False)
        ]


def _spy(cls: type[selectors.BaseSelector], log: _Log) -> type[selectors.BaseSelector]:
    """A subclass of ``cls`` that writes into ``log``; it looks like ``cls`` (same name)."""

    class Spy(cls):  # type: ignore[misc, valid-type]
        def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
            key = super().register(fileobj, events, data)
            log.registered[key.fd] = events
            return key

        def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
            log.timeouts.append(timeout)
            log.entries.append(time.perf_counter())
            if SLOW_FROM <= len(log.entries) < SLOW_FROM + SLOW_CALLS:
                time.sleep(SLOW_SECONDS)  # the burst of slow calls (see SLOW_FROM)
            ready = super().select(timeout)
            log.ready += len(ready)
            return ready

        def close(self) -> None:
            log.closed += 1
            super().close()

    Spy.__name__, Spy.__qualname__ = cls.__name__, cls.__qualname__
    return Spy


def check_select_cost(select_cost: SelectCost) -> Feedback:
    """Run ``select_cost(selector_class, n_idle)``: PollSelector and 100, then the default and 10.

    It must register ``n_idle`` idle sockets for READ on a new selector,
    time at least 100 ``select(0)`` calls, return the seconds one call takes,
    and close the selector and every socket.
    """
    feedback = Feedback("select_cost")
    cases = [
        (getattr(selectors, "PollSelector", selectors.DefaultSelector), 100),
        (selectors.DefaultSelector, 10),
    ]
    for cls, count in cases:
        if not _check_cost_once(feedback, select_cost, cls, count):
            break
    return feedback


def _check_cost_once(feedback: Feedback, select_cost: SelectCost, cls: type, count: int) -> bool:
    label, log, before = f"with {cls.__name__} and {count} idle sockets", _Log(), open_fd_count()
    with warnings.catch_warnings(record=True) as caught, MoreFds(before + count + 128):
        warnings.simplefilter("always", ResourceWarning)
        started = time.perf_counter()
        try:
            value = run_with_timeout(select_cost, _spy(cls, log), count, timeout=5)
        except DidNotReturn:
            waits = [t for t in log.timeouts if t is None or t > 0]
            hint = (
                f": it called select({waits[0]!r}), which waits on idle sockets; call select(0)"
                if waits
                else ""
            )
            return feedback.expect(False, f"{label}, it never returned{hint}")
        except Exception as exc:
            return feedback.expect(False, f"{label}, it raised {type(exc).__name__}: {exc}")
        elapsed = time.perf_counter() - started
        # Sockets kept alive only by a reference cycle (an unclosed selector) close now, and warn.
        gc.collect()
    unclosed = sum(
        issubclass(w.category, ResourceWarning) and "socket" in str(w.message) for w in caught
    )
    return _judge(feedback, label, log, value, elapsed, count, unclosed, open_fd_count() - before)


def _judge(
    feedback: Feedback,
    label: str,
    log: _Log,
    value: Any,
    elapsed: float,
    count: int,
    unclosed: int,
    leaked: int,
) -> bool:
    ok = _expect_each(feedback, label, _call_checks(log, value, count))
    calls = len(log.timeouts)
    if ok and calls:
        ok = feedback.expect(
            value <= 2 * elapsed / calls,
            f"{label}, it returned {value:.3g} s, but all {calls} calls together took at most "
            f"{elapsed:.3g} s: return the time of one call, not of all of them",
        )
        ok = ok and _median_not_mean(feedback, label, log.gaps(), value)
    closing = [
        (log.closed, "the selector was not closed: `with selector_class() as sel:` closes it"),
        (
            not unclosed,
            f"{unclosed} sockets were never closed (Python closed them later, with a "
            "ResourceWarning): close every socket, e.g. in a finally block",
        ),
        (leaked <= 0, f"{leaked} file descriptors were left open afterwards"),
    ]
    return _expect_each(feedback, label, closing) and ok


# What _call_checks says when a check fails, after the numbers it names.
_POSITIVE = "expected a positive number of seconds per select(0) call"
_WRITABLE = (
    "an idle connected socket is always writable, so select() returns at once with all of them "
    "ready; register for EVENT_READ"
)
_IDLE = "idle sockets must have nothing to read (was something sent on them?)"
_WAITS = "with a timeout, select() on idle sockets waits that long; time select(0)"
_MANY = "time many (at least 100), then take the median"


def _call_checks(log: _Log, value: Any, count: int) -> list[tuple[object, str]]:
    """What the calls must have been: a number back, every socket registered for READ, select(0)."""
    calls, registered = len(log.timeouts), len(log.registered)
    writes = sum(bool(events & WRITE) for events in log.registered.values())
    waits = sorted({repr(t) for t in log.timeouts if t is None or t > 0})
    number = is_number(value) and value > 0
    return [
        (number, f"it returned {value!r}, {_POSITIVE}"),
        (registered == count, f"it registered {registered} sockets, expected {count}"),
        (not writes, f"{writes} sockets were registered for WRITE: {_WRITABLE}"),
        (writes or not log.ready, f"select() reported {log.ready} ready sockets: {_IDLE}"),
        (not waits, f"it called select({waits[0] if waits else ''}): {_WAITS}"),
        (calls >= 100, f"it timed only {calls} select() call{'s' * (calls != 1)}: {_MANY}"),
    ]


def _expect_each(feedback: Feedback, label: str, checks: list[tuple[object, str]]) -> bool:
    """Note every check that failed (not only the first); True if all passed."""
    passed = [feedback.expect(bool(ok), f"{label}, {why}") for ok, why in checks]
    return all(passed)


def _median_not_mean(feedback: Feedback, label: str, gaps: list[float], value: float) -> bool:
    """Note a ``value`` nearer (in ratio) to the mean of ``gaps`` than the median; see SLOW_FROM."""
    if len(gaps) < 2 * (SLOW_FROM + SLOW_CALLS):
        return True  # too few calls to tell; the count check has spoken
    median, mean = statistics.median(gaps), statistics.fmean(gaps)
    if mean < 4 * median or value * value < median * mean:
        return True
    return feedback.expect(
        False,
        f"{label}, it returned {value:.3g} s, near the mean of the calls ({mean:.3g} s) rather "
        f"than their median ({median:.3g} s): the checker made {SLOW_CALLS} calls slow, and a "
        "few slow calls pull a mean up; time each call and return statistics.median() of the times",
    )
