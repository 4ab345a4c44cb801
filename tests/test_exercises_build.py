"""Notebook 09's seven steps, run from the notebook's own cells.

Each step's check passes the code of that step and rejects the code of the
step before it, naming the mistake the step fixes.

The cells are executed in a plain namespace (no kernel) in notebook order, so
what is tested is exactly the server a learner builds.
"""

from __future__ import annotations

import json
import linecache
import socket
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from echo_lib.exercises import build

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "09-build-your-own-server.ipynb"
sys.path.insert(0, str(ROOT / "notebooks" / "solutions"))
import build as solution  # noqa: E402  (notebooks/solutions/build.py)
import capstone  # noqa: E402  (notebooks/solutions/capstone.py)

CELLS = {
    c["id"]: "".join(c["source"])
    for c in json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    if c["cell_type"] == "code"
}
IMPORTS = "import selectors\nREAD, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE\n"


def run_cells(*sources: str) -> dict[str, Any]:
    """Run ``sources`` in one namespace, each as a cell whose lines tracebacks show (as IPython)."""
    namespace: dict[str, Any] = {"__name__": "notebook09"}
    for number, text in enumerate((IMPORTS, *sources)):
        filename = f"<notebook 09 cell {number}: {hash(text)}>"
        linecache.cache[filename] = (len(text), None, text.splitlines(keepends=True), filename)
        exec(compile(text, filename, "exec"), namespace)
    return namespace


def server_after(step: int) -> Callable[..., Any]:
    """The notebook's ``serve`` with the code cells of steps 1..``step`` run, in order."""
    return run_cells(*(CELLS[f"step-{number}-code"] for number in range(1, step + 1)))["serve"]


CHECKS: dict[int, Callable[[Callable[..., Any]], build.Feedback]] = {
    1: build.check_accept,
    2: build.check_state,
    3: build.check_buffered_writes,
    4: build.check_backpressure,
    5: build.check_half_close,
    6: build.check_resets,
    7: build.check_stop,
}

#: What each step's check says about the code of the step before it.
MISTAKES = {
    2: "connections share 1 key.data objects: each connection needs its own state (a new Conn() "
    "per accept)",
    3: "serve() died with BlockingIOError",
    4: "a client that never reads got 24.0 MiB into the server",
    5: "the echo stopped short at EOF: the server closed at EOF with echo still owed",
    6: "in round 'resets': serve() died with",
    7: "sockets were never unregistered: on stop, unregister() each socket, then close() it, then "
    "close the selector",
}


@pytest.mark.parametrize("step", sorted(CHECKS))
def test_each_step_passes_its_own_check(step: int) -> None:
    feedback = CHECKS[step](server_after(step))
    assert feedback.passed, str(feedback)
    assert any(
        e.action == "register" for e in feedback.events
    )  # the timeline of the learner's server


@pytest.mark.parametrize("step", sorted(MISTAKES))
def test_each_check_names_what_the_step_before_got_wrong(step: int) -> None:
    feedback = CHECKS[step](server_after(step - 1))
    assert not feedback.passed
    assert MISTAKES[step] in str(feedback)


def test_the_finished_server_is_the_capstone_solution_and_passes_every_step() -> None:
    for step, check in CHECKS.items():
        assert check(capstone.serve).passed, f"step {step}"


def test_step_1_names_a_connection_registered_for_write() -> None:
    namespace = run_cells(
        CELLS["step-1-code"].replace(
            'sel.register(sock, READ, "connection")',
            'sel.register(sock, READ | WRITE, "connection")',
        )
    )
    text = str(build.check_accept(namespace["serve"]))
    assert (
        "serve() died with BlockingIOError: [Errno 11] Resource temporarily unavailable in recv(): "
        "the socket had nothing to read. "
        "Was it registered for EVENT_WRITE too?" in text
    )


def test_step_1_names_a_blocking_socket() -> None:
    namespace = run_cells(CELLS["step-1-code"].replace("sock.setblocking(False)", "pass"))
    assert "5 accepted sockets were left blocking: call sock.setblocking(False)" in str(
        build.check_accept(namespace["serve"])
    )


def test_step_3_names_a_redundant_modify() -> None:
    namespace = run_cells(
        CELLS["step-1-code"],
        CELLS["step-2-code"],
        CELLS["step-3-code"].replace("if wanted != conn.mask:", "if True:"),
    )
    text = str(build.check_buffered_writes(namespace["serve"]))
    assert (
        "with the mask the socket already had (" in text
        and "): call it only when the wanted mask changes" in text
    )


def test_step_3_names_write_left_registered() -> None:
    namespace = run_cells(
        CELLS["step-1-code"],
        CELLS["step-2-code"],
        CELLS["step-3-code"].replace(
            "wanted = READ | (WRITE if conn.out else 0)", "wanted = READ | WRITE"
        ),
    )
    text = str(build.check_buffered_writes(namespace["serve"]))
    assert "connections were still registered for EVENT_WRITE after their echo was complete" in text


# -- the exercises ---------------------------------------------------------------------


def test_exercise_2_solution_passes_and_the_notebook_starting_point_is_named() -> None:
    assert str(build.check_on_accept(solution.on_accept_batch)) == "✔ on_accept: all checks passed"
    namespace = run_cells(CELLS["step-2-code"], CELLS["ex2"])
    text = str(build.check_on_accept(namespace["on_accept_batch"]))
    assert (
        text
        == "✘ on_accept: 1 problem\n  - one call registered 1 of the 5 waiting connections: loop "
        "on accept() until it raises BlockingIOError"
    )


def test_exercise_2_an_accept_loop_that_does_not_stop_is_named() -> None:
    def on_accept(sel: Any, listener: socket.socket) -> None:
        for _ in range(64):
            sock, _address = listener.accept()
            sock.setblocking(False)
            sel.register(sock, 1, None)

    text = str(build.check_on_accept(on_accept))
    assert (
        "on_accept raised BlockingIOError once no connection was left: catch it, that is the end "
        "of the batch" in text
    )


def test_exercise_3_solution_passes() -> None:
    assert (
        str(build.check_idle_timeout(solution.serve_with_timeout))
        == "✔ close idle connections: all checks passed"
    )


def test_exercise_3_a_server_that_never_closes_idle_connections_is_named() -> None:
    text = str(build.check_idle_timeout(capstone.serve))
    assert "4 silent connections were still open 3 s after the echo" in text


def test_exercise_3_closing_too_soon_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(solution, "IDLE_TIMEOUT", 0.05)
    text = str(build.check_idle_timeout(solution.serve_with_timeout))
    assert (
        "closed sooner than 0.5 s after its last byte: count silence from each connection's own "
        "last event" in text
    )


def test_exercise_3_the_notebook_stub_is_reported() -> None:
    namespace = run_cells(CELLS["ex3-code"])
    text = str(build.check_idle_timeout(namespace["serve_with_timeout"]))
    assert (
        text.startswith("✘ close idle connections: ")
        and "serve() died with NotImplementedError: your code here" in text
    )


def test_no_check_leaves_a_serve_thread_behind() -> None:
    build.check_stop(server_after(7))
    assert not [t for t in threading.enumerate() if t.name == "echo_lib-your-serve"]
