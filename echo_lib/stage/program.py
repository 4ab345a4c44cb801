"""One program on a stage: its thread (`Runner`), its ``say``, and how its sockets are named.

A program gets, by parameter name, what it asks for. ``say`` (a `Say`) records
a line; lines the seed prints about bytes and connections also become
``recv``/``send``/``accept``/``connect``/``close`` events (`LineReader` reads
them), so a plot can draw them. ``mysel`` is a `RecordingSelector` whose
`ProgramNamer` names the first registration after the program and the next
ones ``<name>/conn-1``, ``<name>/conn-2``... When a program returns or raises,
its `Runner` leaves its turn and has its sockets closed; an exception is kept,
logged with where it happened, and never printed from the thread.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from ..core.timeline import Timeline
from ..core.transcript import LineReader, where
from ..driver.runner import ThreadRunner
from .turns import TURN_TIMEOUT, Turns

__all__ = ["ProgramNamer", "Runner", "Say"]

Log = Callable[[str, str], None]  # log(program, line)

# Frames of the machinery between the thread and the program: not "where" it failed.
_MACHINERY = ("_run", "_play", "<lambda>")


class ProgramNamer:
    """A `RecordingSelector` namer: ``prog`` for the first registration, then ``prog/conn-N``."""

    def __init__(self, program: str) -> None:
        self.program = program
        self.count = 0

    def __call__(self, fileobj: Any, given: str | None) -> str:
        self.count += 1
        return self.program if self.count == 1 else f"{self.program}/conn-{self.count - 1}"


class Say:
    """A program's ``say``: logs the line; lines about bytes and connections also become events."""

    def __init__(self, actor: str, log: Log, timeline: Timeline) -> None:
        self.actor, self._log, self._timeline = actor, log, timeline
        self._reader = LineReader(actor)

    def __call__(self, text: object) -> None:
        line = str(text)
        action, who, nbytes, detail = self._reader.event(line)
        self._log(self.actor, line)
        self._timeline.record(who, action, nbytes=nbytes, detail=detail)


class Runner(ThreadRunner):
    """One program in a daemon thread: `join()` it, then read `error` and `where`.

    On a turn-taking stage (``turns``) it waits for its turn before it
    starts and leaves the turn when it ends. ``on_error(exc, where)`` is
    called in the thread when the program raises; ``on_exit()`` when it ends
    either way (the stage closes the program's sockets there).
    """

    def __init__(
        self,
        name: str,
        program: Callable[[], Any],
        *,
        turns: Turns | None = None,
        on_error: Callable[[BaseException, str], None] | None = None,
        on_exit: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(self._play, name=name)
        self._program, self._turns = program, turns
        self._on_error, self._on_exit = on_error, on_exit
        self.where = ""

    def _play(self) -> Any:
        try:
            if self._turns is not None:
                self._turns.wait(self.name)
            return self._program()
        except BaseException as exc:  # kept by ThreadRunner for the main thread, never printed
            self.where = where(exc, skip=_MACHINERY)
            if self._on_error is not None:
                self._on_error(exc, self.where)
            raise
        finally:
            if self._on_exit is not None:
                self._on_exit()
            if self._turns is not None:
                self._turns.leave(self.name)

    @property
    def error(self) -> BaseException | None:
        """The exception that ended the program, without the thread's traceback (or None)."""
        if self.exception is None:
            return None
        try:  # a copy: the kept exception keeps its traceback for raise_if_failed()
            return copy.copy(self.exception).with_traceback(None)
        except Exception:  # an exception type that cannot be copied
            return self.exception

    def join(self, timeout: float = TURN_TIMEOUT) -> Any:
        """Wait for the program; return its result. Raises `TimeoutError` if it is still running."""
        return super().join(timeout)

    def __repr__(self) -> str:
        if self.running or not self.started:
            state = "running" if self.running else "not started"
        else:
            state = f"ended with {type(self.exception).__name__}" if self.exception else "done"
        return f"<Runner {self.name!r}: {state}>"
