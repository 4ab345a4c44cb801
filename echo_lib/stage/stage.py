"""`Stage`: seed-style programs in threads that take turns, recorded into one `Timeline`.

A `Stage` runs programs such as the seed's `classic_server` and
`classic_client` in daemon threads (`Runner`) and records what they say, and
what their selectors do, into one timeline. With ``take_turns=True`` (the
default) they take turns (see `turns`), so the log is the same text on every
run; the seed chapter prints no output for its pair, and the order of the log
(the client sends both messages before the server reads either) comes from the
turn-taking alone.

Each program gets, by parameter name, ``mysel`` (its own recording,
turn-taking selector), ``say`` and ``pause`` (hand the turn over, for
programs without a selector). When a program returns or raises, the stage
closes every socket ever registered on its selectors, as the kernel does when
a script's process exits.
"""

from __future__ import annotations

import inspect
import selectors
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from ..core.events import Event
from ..core.timeline import Timeline
from ..core.transcript import format_log, one_line
from ..driver.recording import RecordingSelector
from .program import ProgramNamer, Runner, Say
from .turns import GRACE, MAX_WAIT, TURN_TIMEOUT, Turns, TurnSelector

__all__ = ["Stage"]


class Stage:
    """Programs in daemon threads, recording into one `timeline`; see the module docstring.

    ``take_turns`` makes the interleaving (and so the log) the same on every
    run. Use it as a context manager, or call `join()`: either way every
    program is waited for and every socket it registered is closed.
    """

    def __init__(
        self, *, take_turns: bool = True, grace: float = GRACE, max_wait: float = MAX_WAIT
    ) -> None:
        self.timeline = Timeline()
        self.grace, self.max_wait = grace, max_wait
        self._turns = Turns() if take_turns else None
        self._lines: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._runners: dict[str, Runner] = {}
        self._selectors: dict[str, list[RecordingSelector]] = {}

    # -- what a program gets --------------------------------------------------------

    def selector(self, name: str) -> RecordingSelector:
        """A new ``mysel`` for program ``name``: recorded, turn-taking, closed when it ends."""
        sel = RecordingSelector(
            self.turn_selector(name),
            self.timeline,
            actor=name,
            namer=ProgramNamer(name),
            track=True,
        )
        with self._lock:
            self._selectors.setdefault(name, []).append(sel)
        return sel

    def turn_selector(self, name: str) -> TurnSelector:
        """A bare turn-taking selector for program ``name`` (for an `EchoClient`'s own loop)."""
        return TurnSelector(
            selectors.DefaultSelector(), self._turns, name, grace=self.grace, max_wait=self.max_wait
        )

    def say(self, name: str) -> Callable[[object], None]:
        """A ``say`` for program ``name``."""
        return Say(name, self._add_line, self.timeline)

    def pause(self, name: str) -> Callable[[], None]:
        """A ``pause`` for program ``name``: hand the turn over and wait for it to come back."""
        turns = self._turns
        return (lambda: turns.pass_turn(name)) if turns is not None else (lambda: None)

    # -- running ------------------------------------------------------------------

    def start(self, name: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Runner:
        """Run ``function(*args, **kwargs)`` as program ``name`` in a daemon thread.

        The function also gets ``mysel``, ``say`` and ``pause`` if it has
        parameters of those names (and they were not given). On a
        turn-taking stage the programs wait for `join()` to begin, so that
        all of them are on stage before the first turn. Raises `ValueError`
        if the name is taken.
        """
        if name in self._runners:
            raise ValueError(f"a program named {name!r} is already on this stage")
        parameters = inspect.signature(function).parameters
        for key, make in (("mysel", self.selector), ("say", self.say), ("pause", self.pause)):
            if key in parameters and key not in kwargs:
                kwargs[key] = make(name)
        runner = Runner(
            name,
            lambda: function(*args, **kwargs),
            turns=self._turns,
            on_error=lambda exc, where: self._report(name, exc, where),
            on_exit=lambda: self._release(name),
        )
        self._runners[name] = runner
        if self._turns is not None:
            self._turns.add(name)
        runner.start()
        return runner

    def join(self, timeout: float = TURN_TIMEOUT) -> None:
        """Wait for every program (``timeout`` in all). Raises `TimeoutError` naming the late ones.

        A program's exception is not raised here: see `Runner.error` and the log.
        """
        if self._turns is not None:
            self._turns.open()  # nobody runs before every program is on stage
        deadline = time.monotonic() + timeout
        late = []
        for runner in list(self._runners.values()):
            try:
                runner.join(max(deadline - time.monotonic(), 0.01))
            except TimeoutError:
                late.append(runner.name)
        if late:
            raise TimeoutError(f"still running after {timeout!r} s: {', '.join(late)}")

    def __enter__(self) -> Stage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.join()

    def _report(self, name: str, exc: BaseException, where: str) -> None:
        self._add_line(name, f"raised {one_line(exc)}{where}")
        self.timeline.record(name, "error", detail=one_line(exc))

    def _release(self, name: str) -> None:
        with self._lock:
            sels = list(self._selectors.get(name, []))
        for sel in sels:
            _close_everything(sel)

    def _add_line(self, actor: str, text: str) -> None:
        with self._lock:
            self._lines.append((actor, text))

    # -- reading what happened --------------------------------------------------------

    def lines(self, actor: str | None = None) -> list[tuple[str, str]]:
        """Every (program, line) said so far, in order; optionally one program's."""
        with self._lock:
            return [(a, t) for a, t in self._lines if actor is None or a == actor]

    def log(self, actor: str | None = None, *, last: int | None = None) -> str:
        """The log as text, the same on every run of a turn-taking stage.

        Ports become ``PORT`` (port 0 gives new ones each run), long byte
        strings are cut short, and a line repeated in a row is shown once
        with ``(repeated)``. With ``last``, only the last lines.
        """
        return format_log(self.lines(actor), last)

    def plot_events(self) -> list[Event]:
        """The events worth a plot: everything but plain log lines and select() calls."""
        return [e for e in self.timeline.events() if e.action not in ("log", "select")]

    def __repr__(self) -> str:
        return f"<Stage: {', '.join(map(repr, self._runners.values())) or 'no programs'}>"


def _close_everything(sel: RecordingSelector) -> None:
    """Close every socket ever registered on ``sel``, then ``sel`` (idempotent)."""
    for fileobj in sel.registered or ():
        close = getattr(fileobj, "close", None)
        if close is not None:
            close()
    with suppress(Exception):  # the program closed it already
        sel.close()
