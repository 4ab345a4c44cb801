"""Checkers for the notebooks' exercises.

Each checker runs the learner's code against real sockets (a real
`EchoServer` on loopback where a server is needed) and returns `Feedback`
that says specifically what is wrong, not just "incorrect". One module per
notebook topic; the solutions in ``notebooks/solutions/`` pass every checker
and are tested (tests/test_exercises.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["DidNotReturn", "Feedback", "run_with_timeout"]

T = TypeVar("T")


class DidNotReturn(TimeoutError):
    """The learner's code was still running when the checker stopped waiting."""


class Feedback:
    """What a checker found: passed, or a list of specific problems.

    Displays as a short report, e.g.::

        ✘ echo_once: 2 problems
          - the reply was b'hel', expected b'hello'
          - the socket was left open
    """

    def __init__(self, title: str) -> None:
        self.title = title
        self.problems: list[str] = []

    def expect(self, condition: object, problem: str) -> bool:
        """Note ``problem`` unless ``condition`` holds; return whether it held."""
        if not condition:
            self.problems.append(problem)
        return bool(condition)

    @property
    def passed(self) -> bool:
        return not self.problems

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        if self.passed:
            return f"✔ {self.title}: all checks passed"
        count = f"{len(self.problems)} problem{'s' if len(self.problems) > 1 else ''}"
        return "\n".join([f"✘ {self.title}: {count}", *(f"  - {p}" for p in self.problems)])

    __repr__ = __str__


def run_with_timeout(function: Callable[..., T], *args: Any, timeout: float = 5.0) -> T:
    """Call ``function(*args)`` in a daemon thread and wait at most ``timeout`` s.

    Learner code may block forever (a blocking ``recv()`` on a socket that
    never gets data, a ``select()`` with no timeout); the checker must not.
    Raises `DidNotReturn` (a `TimeoutError`) naming the function, or whatever
    the function raised (which may itself be a `socket.timeout`).
    """
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = function(*args)
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target, name=f"exercise-{getattr(function, '__name__', 'code')}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise DidNotReturn(f"{getattr(function, '__name__', function)!s} did not return within {timeout:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
