"""Notebook 11's gauntlet: the reference server passes; each typical broken one fails, named.

Each broken server is the reference solution (notebooks/solutions/capstone.py)
with one function replaced, loaded as a fresh module so that the others keep
working unchanged.
"""

from __future__ import annotations

import importlib.util
import selectors
import socket
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from echo_lib.exercises.capstone import ROUNDS, check_server
from echo_lib.exercises.judges import MAX_HELD
from echo_lib.exercises.scoreboard import GauntletFeedback

SOLUTION = Path(__file__).resolve().parent.parent / "notebooks" / "solutions" / "capstone.py"
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


def variant(**replace: Any) -> ModuleType:
    """A fresh copy of the reference solution with some of its names replaced."""
    spec = importlib.util.spec_from_file_location("capstone_variant", SOLUTION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, value in replace.items():
        setattr(module, name, value)
    return module


def problems(feedback: GauntletFeedback) -> str:
    assert not feedback.passed, "the broken server passed the gauntlet"
    return "\n".join(feedback.problems)


# -- the reference solution ---------------------------------------------------------


def test_the_reference_solution_passes_every_round() -> None:
    lines: list[str] = []
    feedback = check_server(variant().serve, progress=lines.append)
    assert str(feedback) == "✔ your server against the gauntlet: all checks passed"
    assert [r.name for r in feedback.results] == [r.name for r in ROUNDS]
    assert all(r.exact and r.left_open == 0 for r in feedback.results)
    assert lines[0] == "round 1/6 crowd: 300 clients at once, 1-16 KiB each, random chunks: ✔"


def test_the_rounds_are_what_the_gauntlet_promises() -> None:
    feedback = check_server(variant().serve)
    by_name = {r.name: r for r in feedback.results}
    assert by_name["crowd"].clients == 300  # hundreds of concurrent clients
    assert by_name["big"].bytes > 2 * 4 * 2 * (1 << 20)  # payloads of several MiB, both ways
    accepts = [e for e in feedback.events if e.action == "register" and e.actor != "listener"]
    assert len(accepts) == sum(r.clients for r in feedback.results)
    partial = check_server(variant().serve, rounds=ROUNDS[1:2])
    assert partial.passed and len(partial.results) == 1


def test_a_serve_without_a_selector_parameter_gets_the_recording_selector_as_default() -> None:
    solution = variant()
    feedback = check_server(
        lambda listener, stop: solution.serve(listener, stop), rounds=ROUNDS[:1]
    )
    assert feedback.passed
    assert any(e.action == "select" for e in feedback.events)
    assert selectors.DefaultSelector is not None and isinstance(
        selectors.DefaultSelector(), selectors.BaseSelector
    )


def test_the_scoreboard_plots_a_table_and_the_timeline() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    feedback = check_server(variant().serve, rounds=ROUNDS[:2])
    figure = feedback.plot("big", lanes=3)
    try:
        table, timeline = figure.axes[:2]
        texts = [cell.get_text().get_text() for cell in table.tables[0].get_celld().values()]
        assert {"crowd", "big", "server CPU", "fds left", "largest in flight"} <= set(texts)
        assert timeline.get_title() == "your server in round 'big': 3 connections"
        assert [label.get_text() for label in timeline.get_yticklabels()] == [
            "your server",
            "socket-301",
            "socket-302",
            "socket-303",
        ]
    finally:
        plt.close(figure)
    with pytest.raises(
        ValueError, match=r"no round called 'idle' ran; the rounds were \['crowd', 'big'\]"
    ):
        feedback.plot("idle")


# -- the six typical broken servers ---------------------------------------------------


def test_sendall_on_a_non_blocking_socket_is_named() -> None:
    def on_writable(sock: socket.socket, conn: Any) -> None:
        sock.sendall(conn.out)
        conn.out.clear()

    text = problems(check_server(variant(on_writable=on_writable).serve))
    assert "serve() died with BlockingIOError" in text
    assert (
        "sendall() (or a bare send()) on a non-blocking socket raises it when the send buffer is "
        "full" in text
    )


def test_closing_at_eof_with_echo_still_owed_is_named() -> None:
    module = variant()

    def update(sel: selectors.BaseSelector, sock: socket.socket, conn: Any) -> None:
        if conn.eof:  # the mistake: the pending echo is dropped
            return module.close(sel, sock)
        wanted = (READ if len(conn.out) < module.CAP else 0) | (WRITE if conn.out else 0)
        if wanted != conn.mask:
            conn.mask = wanted
            sel.modify(sock, wanted, conn)

    module.update = update
    text = problems(check_server(module.serve))
    assert "in round 'half-close', " in text
    assert "the echo stopped short at EOF: the server closed at EOF with echo still owed" in text


def test_keeping_event_write_registered_is_named() -> None:
    module = variant()

    def update(sel: selectors.BaseSelector, sock: socket.socket, conn: Any) -> None:
        if conn.eof and not conn.out:
            return module.close(sel, sock)
        wanted = (READ if not conn.eof and len(conn.out) < module.CAP else 0) | WRITE  # the mistake
        if wanted != conn.mask:
            conn.mask = wanted
            sel.modify(sock, wanted, conn)

    module.update = update
    feedback = check_server(module.serve)
    text = problems(feedback)
    assert (
        "50 connections were registered for EVENT_WRITE: keeping EVENT_WRITE registered with "
        "nothing to send spins the loop" in text
    )
    idle = feedback.results[-1]
    assert idle.name == "idle" and idle.wakeups > 200  # counted, not timed: the loop spun


def test_unbounded_buffering_is_named() -> None:
    text = problems(check_server(variant(CAP=1 << 40).serve))
    assert "a client that never reads got 24.0 MiB into the server" in text
    assert (
        f"(the limit is {MAX_HELD >> 20} MiB): unbounded buffering; stop reading (drop EVENT_READ)"
        in text
    )


def without_except(module: ModuleType) -> ModuleType:
    """``module`` with the mistake of an ``on_ready`` that lets a peer's reset escape."""

    def on_ready(sel: selectors.BaseSelector, key: selectors.SelectorKey, mask: int) -> None:
        sock, conn = key.fileobj, key.data  # the mistake: no except for a peer that resets
        if mask & READ:
            module.on_readable(sock, conn)
        if conn.out:
            module.on_writable(sock, conn)
        module.update(sel, sock, conn)

    module.on_ready = on_ready
    return module


def test_dying_on_connection_reset_error_is_named() -> None:
    module = without_except(variant())
    text = problems(check_server(module.serve))
    assert (
        text.startswith("in round 'resets': serve() died with ConnectionResetError")
        or "in round 'resets': serve() died with BrokenPipeError" in text
    )
    assert (
        "catch ConnectionResetError and BrokenPipeError around recv() and send(), close that one, "
        "keep serving" in text
    )


def test_a_server_dying_slowly_is_judged_in_the_round_that_killed_it() -> None:
    # Its cleanup closes every socket, so the clients finish, but its thread
    # returns a while later (descheduled, or slow to close). The round must
    # still say it died, not that the calm clients' echo stopped short.
    module = without_except(variant())
    shut_down = module.shut_down

    def slow_shut_down(sel: selectors.BaseSelector, listener: socket.socket) -> None:
        shut_down(sel, listener)
        threading.Event().wait(0.3)  # the delay under test, between cleanup and return

    module.shut_down = slow_shut_down
    feedback = check_server(module.serve)
    assert [r.name for r in feedback.results] == ["crowd", "big", "half-close", "resets"]
    assert problems(feedback).startswith("in round 'resets': serve() died with ")


def test_closing_without_unregister_is_named() -> None:
    text = problems(check_server(variant(close=lambda sel, sock: sock.close()).serve))
    assert (
        "closing without unregister() leaves a key for a dead fd; unregister(), then close()"
        in text
    )


# -- more ways to go wrong, each reported, none hanging -------------------------------


class Polling(selectors.BaseSelector):
    """A selector whose select() never waits: the loop around it polls."""

    def __init__(self, inner: selectors.BaseSelector) -> None:
        self.inner = inner

    def register(self, *args: Any) -> selectors.SelectorKey:
        return self.inner.register(*args)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self.inner.unregister(fileobj)

    def modify(self, *args: Any) -> selectors.SelectorKey:
        return self.inner.modify(*args)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        return self.inner.select(0)

    def close(self) -> None:
        self.inner.close()

    def get_map(self) -> Any:
        return self.inner.get_map()


def test_a_polling_loop_is_named() -> None:
    module = variant()
    feedback = check_server(
        lambda listener, stop, selector: module.serve(listener, stop, Polling(selector)),
        rounds=ROUNDS[-1:],
    )
    assert "the loop polls; give select() a timeout (e.g. 0.05 s) instead of 0" in problems(
        feedback
    )


def test_a_serve_that_ignores_stop_is_reported_not_waited_on() -> None:
    release = threading.Event()

    def stubborn(
        listener: socket.socket, stop: threading.Event, selector: selectors.BaseSelector
    ) -> None:
        selector.register(listener, READ)
        selector.unregister(listener)
        selector.close()
        release.wait(30)  # never looks at stop

    try:
        text = problems(check_server(stubborn, rounds=ROUNDS[-1:]))
    finally:
        release.set()
    for thread in threading.enumerate():
        if thread.name == "echo_lib-your-serve":
            thread.join(5)
    assert "serve() did not return within 2 s after stop was set" in text


def test_a_serve_that_returns_at_once_is_reported() -> None:
    def quitter(
        listener: socket.socket, stop: threading.Event, selector: selectors.BaseSelector
    ) -> None:
        selector.close()

    text = problems(check_server(quitter))
    assert text.startswith("in round 'crowd': serve() returned before stop was set")


def test_the_notebook_stub_is_reported() -> None:
    def stub(
        listener: socket.socket, stop: threading.Event, selector: selectors.BaseSelector
    ) -> None:
        raise NotImplementedError("your code here")

    assert str(check_server(stub)) == (
        "✘ your server against the gauntlet: 1 problem\n  - in round 'crowd': serve() died with "
        "NotImplementedError: your code here"
    )


@pytest.mark.parametrize("seed", [1, 2])
def test_another_seed_is_another_deterministic_run(seed: int) -> None:
    first = check_server(variant().serve, seed=seed, rounds=ROUNDS[:1])
    second = check_server(variant().serve, seed=seed, rounds=ROUNDS[:1])
    assert first.passed and first.results[0].bytes == second.results[0].bytes
