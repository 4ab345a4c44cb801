"""Checkers for the notebooks' exercises, one module per notebook, over a shared harness.

Each checker runs the learner's code against real sockets (a real
`EchoServer` on loopback where a server is needed) and returns `Feedback`
that says specifically what is wrong, not just "incorrect". The learner's
code runs through `run_with_timeout` (from `echo_lib.driver.wait`), so a
broken answer comes back as feedback, never as a hung kernel. The solutions in
``notebooks/solutions/`` pass every checker (tests/test_exercises_graded.py).
"""

from __future__ import annotations

import sys

from ..driver.wait import STOP_WAIT, DidNotReturn, EndedTheProgram, run_with_timeout

__all__ = ["STOP_WAIT", "DidNotReturn", "EndedTheProgram", "Feedback", "run_with_timeout"]


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

    # A checker writes its own words for code that never returned, inside
    # ``except DidNotReturn:``. When that code could not even be stopped, the
    # learner must hear it too: a thread still runs their code in the kernel.
    # So a problem noted while a DidNotReturn is being handled gets its note.
    def expect(self, condition: object, problem: str) -> bool:
        """Note ``problem`` unless ``condition`` holds; return whether it held."""
        if not condition:
            handling = sys.exc_info()[1]
            if isinstance(handling, DidNotReturn) and handling.still_running:
                problem = f"{problem} ({handling.note})"
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
