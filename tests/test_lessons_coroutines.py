"""08-from-callbacks-to-asyncio: the tiny scheduler, the asyncio loop thread, four styles, the lab.

No leaks: warnings are errors (pyproject), every test ends with its threads
joined (conftest), loops closed and as many fds open as before.
"""

from __future__ import annotations

import asyncio
import gc
import io
import selectors
import socket
import threading
from collections.abc import Generator, Iterator
from typing import Any

import pytest

from echo_lib import Timeline
from echo_lib.driver.asyncio_thread import LoopThread
from echo_lib.driver.coroutines import Future, Scheduler, Task
from echo_lib.lessons.coroutines import (
    STYLES,
    EchoProtocol,
    EchoServerLanes,
    ServerSelector,
    StyleRun,
    compare,
    describe_data,
    echo_server,
    handle_echo,
    peek_keys,
    run_clients,
    run_style,
)
from echo_lib.lessons.coroutines.observe import _both_waiting

from .conftest import open_fds, wait_for

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
COMPLETE = [f"client-{i}: sent 42 bytes, received 42 bytes: complete" for i in (1, 2, 3)]


@pytest.fixture(autouse=True)
def no_leaked_fds() -> Iterator[None]:
    """Every socket, selector and loop a test opens is closed by its end."""
    gc.collect()
    before = open_fds()
    yield
    gc.collect()
    wait_for(lambda: open_fds() <= before, 2.0, "the test's file descriptors to be closed")


# -- Future and Task ----------------------------------------------------------------------


def test_a_future_runs_its_callbacks_with_itself_when_the_result_arrives() -> None:
    future, seen = Future(), []
    future.add_done_callback(lambda f: seen.append((f, f.result)))
    assert repr(future) == "<Future pending>" and not future.done
    future.set_result(READ)
    assert seen == [(future, READ)]
    assert future.done and repr(future) == "<Future done: 1>"


def test_a_task_sends_each_result_in_and_waits_on_the_next_future() -> None:
    futures = [Future(), Future()]
    got: list[Any] = []

    def coro() -> Generator[Future, Any, None]:
        got.append((yield futures[0]))
        got.append((yield futures[1]))

    task = Task(coro())
    assert repr(task) == "<Task coro waiting>"
    futures[0].set_result("a")
    assert not task.done
    futures[1].set_result("b")
    assert got == ["a", "b"] and task.done and task.exception is None
    assert repr(task) == "<Task coro done>"


def test_a_task_keeps_the_exception_of_its_generator() -> None:
    future = Future()

    def coro() -> Generator[Future, Any, None]:
        yield future
        raise ValueError("boom")

    task = Task(coro())
    future.set_result(None)
    assert task.done and isinstance(task.exception, ValueError)
    assert repr(task) == "<Task coro failed>"


def test_a_task_refuses_a_yield_that_is_not_a_future_and_closes_the_generator() -> None:
    closed = []

    def coro() -> Generator[Any, Any, None]:
        try:
            yield 42
        finally:
            closed.append(True)

    task = Task(coro())
    assert isinstance(task.exception, TypeError)
    assert "coro yielded 42; yield sched.readable(sock) or sched.writable(sock)" in str(
        task.exception
    )
    assert closed == [True]


# -- the Scheduler ------------------------------------------------------------------------


def test_the_scheduler_registers_on_every_wait_and_hands_the_ready_mask_to_the_task() -> None:
    sel = ServerSelector(selectors.DefaultSelector())
    a, b = socket.socketpair()
    masks: list[int] = []

    def reader(sched: Scheduler) -> Generator[Future, int, None]:
        with a:
            for _ in range(2):
                masks.append((yield sched.readable(a)))
                a.recv(10)
            masks.append((yield sched.writable(a)))

    with b, Scheduler(sel) as sched:
        sel.label(a, "server")
        task = sched.spawn(reader(sched))
        b.send(b"x")
        sched.run_until(lambda: len(masks) == 1)
        b.send(b"y")
        sched.run_until(lambda: task.done)
    assert masks == [READ, READ, WRITE]
    assert sched.waits == 3
    assert [(e.action, e.mask) for e in sel.timeline.events(action=("register", "unregister"))] == [
        ("register", READ),
        ("unregister", READ),
    ] * 2 + [("register", WRITE), ("unregister", WRITE)]
    assert a.fileno() == -1


def test_run_until_times_out_rather_than_hang() -> None:
    with Scheduler() as sched, pytest.raises(TimeoutError, match="still false"):
        sched.run_until(lambda: False, timeout=0.05)


def test_the_scheduler_in_a_thread_serves_three_clients_and_closes_everything() -> None:
    threads = threading.active_count()
    with socket.create_server(("127.0.0.1", 0)) as listener, Scheduler() as sched:
        listener.setblocking(False)
        sched.spawn(echo_server(sched, listener))
        sched.start()
        assert sched.running and "running" in repr(sched)
        results = run_clients(listener.getsockname())
    assert list(map(str, results)) == COMPLETE
    assert not sched.running and threading.active_count() == threads
    assert repr(sched).startswith("<Scheduler closed: 4 tasks")
    sched.stop()  # idempotent


def test_closing_the_scheduler_closes_waiting_tasks_and_their_sockets() -> None:
    a, b = socket.socketpair()
    finished = []

    def waiter(sched: Scheduler) -> Generator[Future, int, None]:
        try:
            with a:
                yield sched.readable(a)
        finally:
            finished.append(True)

    with b:
        with Scheduler() as sched:
            sched.spawn(waiter(sched))
            sched.start()
        assert finished == [True] and a.fileno() == -1


def test_a_failed_task_is_raised_by_stop_in_the_callers_thread_once() -> None:
    a, b = socket.socketpair()

    def broken(sched: Scheduler) -> Generator[Future, int, None]:
        with a:
            yield sched.readable(a)
            raise RuntimeError("boom")

    with b:
        sched = Scheduler()
        sched.spawn(broken(sched))
        sched.start()
        b.send(b"x")
        wait_for(lambda: bool(sched.failures()), what="the task to fail")
        with pytest.raises(RuntimeError, match="boom"):
            sched.stop()
        sched.stop()  # raised once only


def test_the_scheduler_thread_is_a_named_thread_runner_whose_loop_error_stop_raises_once() -> None:
    seen_in: list[str] = []

    class BrokenSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
        def select(self, timeout: float | None = None) -> list[Any]:
            seen_in.append(threading.current_thread().name)
            raise OSError("the selector broke")

    sched = Scheduler(BrokenSelector())
    sched.start()
    wait_for(lambda: not sched.running, what="the loop's thread to end")
    assert seen_in == ["echo_lib-scheduler"]
    assert isinstance(sched.error, OSError)  # kept, not printed
    with pytest.raises(OSError, match="the selector broke"):
        sched.stop()
    assert sched.error is None
    sched.stop()  # raised once only


def test_spawn_refuses_a_non_generator_and_another_thread_while_running() -> None:
    with Scheduler() as sched:
        with pytest.raises(TypeError, match="needs a generator"):
            sched.spawn(lambda: None)  # type: ignore[arg-type]
        sched.start()
        a, b = socket.socketpair()
        with a, b:

            def waiter() -> Generator[Future, int, None]:
                yield sched.readable(a)

            with pytest.raises(RuntimeError, match="before start"):
                sched.spawn(waiter())
        with pytest.raises(RuntimeError, match="only be started once"):
            sched.start()


# -- LoopThread ----------------------------------------------------------------------------


async def _answer() -> int:
    await asyncio.sleep(0)
    return 42


async def _fail() -> None:
    raise ValueError("boom")


def test_loop_thread_runs_coroutines_in_its_thread_and_closes_the_loop() -> None:
    threads = threading.active_count()
    with LoopThread() as runner:
        assert runner.running and "running" in repr(runner)
        assert runner.run(_answer()) == 42
        with pytest.raises(ValueError, match="boom"):
            runner.run(_fail())
    assert runner.loop.is_closed() and not runner.running
    assert threading.active_count() == threads
    runner.stop()  # idempotent


async def _thread_name() -> str:
    return threading.current_thread().name


def test_loop_thread_runs_its_loop_in_a_thread_runner_named_after_it() -> None:
    with LoopThread(name="streams") as runner:
        assert runner.run(_thread_name()) == "echo_lib-streams"
    assert not runner.running and runner.loop.is_closed()


def test_loop_thread_times_out_rather_than_hang() -> None:
    with LoopThread() as runner, pytest.raises(TimeoutError, match="did not finish"):
        runner.run(asyncio.sleep(10), timeout=0.05)


def test_loop_thread_refuses_to_run_before_start_without_leaving_a_coroutine_behind() -> None:
    runner = LoopThread()
    try:
        with pytest.raises(RuntimeError, match="start"):
            runner.run(_answer())  # a never-awaited coroutine would warn (and warnings are errors)
    finally:
        runner.stop()
    with pytest.raises(RuntimeError, match="only be started once"):
        runner.start()
    with pytest.raises(TypeError, match="asyncio event loop"):
        LoopThread(loop=42)  # type: ignore[arg-type]


def test_loop_thread_keeps_errors_from_callbacks_and_raises_them_at_stop() -> None:
    runner = LoopThread().start()
    runner.loop.call_soon_threadsafe(lambda: 1 / 0)
    wait_for(lambda: bool(runner.errors), what="the loop to report the error")
    with pytest.raises(RuntimeError, match="the event loop reported") as info:
        runner.stop()
    assert isinstance(info.value.__cause__, ZeroDivisionError)


@pytest.mark.parametrize("style", ["protocol", "streams"])
def test_loop_thread_stop_closes_connections_that_are_still_open(style: str) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener, LoopThread() as runner:
        if style == "protocol":
            runner.run(runner.loop.create_server(EchoProtocol, sock=listener))
        else:
            runner.run(asyncio.start_server(handle_echo, sock=listener))
        idle = socket.create_connection(listener.getsockname(), timeout=5)
        with idle:
            idle.sendall(b"hi")
            assert idle.recv(10) == b"hi"
            runner.stop()  # the connection is still open: stop() must close it, quietly
            assert idle.recv(10) == b""  # the server's end was closed


# -- ServerSelector -----------------------------------------------------------------------


def test_the_lane_namer_needs_no_sockets() -> None:
    class File:  # any object with a fileno() will do; the namer never calls it
        pass

    name = EchoServerLanes()
    plumbing, listener, conn = File(), File(), File()
    assert name(plumbing, "") is None  # before the listener: hidden
    assert name(3, "") is None
    assert name(listener, "server") == "server"
    assert name(conn, "") == "server/conn-1"
    assert name(conn, "") == "server/conn-1"  # registered again: the same lane
    assert name(7, "") == "server/conn-2" and name(7, "") == "server/conn-3"  # plain fds: new
    assert name(listener, "") == "server" and name(conn, None) is None


def test_server_selector_names_lanes_like_echo_server() -> None:
    sel = ServerSelector(selectors.DefaultSelector())
    plumbing, listener, conn1, conn2 = (socket.socket() for _ in range(4))
    with plumbing, listener, conn1, conn2, sel:
        sel.register(plumbing, READ)  # before the listener: hidden
        sel.label(listener, "server")
        sel.register(listener, READ)
        sel.register(conn1, READ)
        sel.unregister(conn1)
        sel.register(conn1, WRITE)  # the same socket object keeps its name
        sel.register(conn2.fileno(), READ)  # a plain fd, as asyncio registers
        sel.unregister(listener)
        sel.register(listener, READ)
    assert [
        (e.actor, e.action) for e in sel.timeline.events(action=("register", "unregister"))
    ] == [
        ("server", "register"),
        ("server/conn-1", "register"),
        ("server/conn-1", "unregister"),
        ("server/conn-1", "register"),
        ("server/conn-2", "register"),
        ("server", "unregister"),
        ("server", "register"),
    ]


# -- the four styles ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs() -> dict[str, StyleRun]:
    return {style: run_style(style) for style in STYLES}


def test_every_style_gives_the_same_results(runs: dict[str, StyleRun]) -> None:
    for run in runs.values():
        assert list(map(str, run.results)) == COMPLETE, run.style
        assert run.complete and run.selector == type(selectors.DefaultSelector()).__name__


def test_the_comparison_is_the_same_on_every_run(runs: dict[str, StyleRun]) -> None:
    if type(selectors.DefaultSelector()).__name__ != "EpollSelector":
        pytest.skip("the table names the selector class: this text is Linux's")
    assert compare(runs).splitlines() == [
        "style             selector       listener registered  each connection  select(0) polls  echoes",  # noqa: E501
        "callbacks         EpollSelector  once                 once             no               3/3 complete",  # noqa: E501
        "generators        EpollSelector  once per wait (4)    once per wait    no               3/3 complete",  # noqa: E501
        "asyncio Protocol  EpollSelector  once                 once             yes              3/3 complete",  # noqa: E501
        "asyncio streams   EpollSelector  once                 once             yes              3/3 complete",  # noqa: E501
    ]
    assert compare(list(runs.values())) == compare(runs)


def test_style_timelines_hold_only_what_the_selector_did(runs: dict[str, StyleRun]) -> None:
    for run in runs.values():
        actions = {e.action for e in run.timeline.events()}
        assert actions <= {"register", "modify", "unregister", "select", "ready"}, run.style
        assert run.timeline.actors()[0] == "server"
        assert set(run.timeline.actors()) == {
            "server",
            "server/conn-1",
            "server/conn-2",
            "server/conn-3",
        }
        times = [e.t for e in run.timeline.events()]
        assert times == sorted(times) and times[-1] > 0


def test_the_callbacks_timeline_keeps_the_servers_own_times() -> None:
    run = run_style("callbacks", 1)
    assert run.timeline.events()[-1].t > 1e-4  # the copy replays the recorded times, not its own


def test_str_of_a_run_is_the_labs_text(runs: dict[str, StyleRun]) -> None:
    assert str(runs["generators"]).splitlines() == [
        f"generators on {runs['generators'].selector}: listener registered once per wait (4), "
        "each connection once per wait",
        *COMPLETE,
    ]


@pytest.mark.parametrize(
    ("style", "clients"), [("nope", 3), ("callbacks", 0), ("generators", 7), ("callbacks", True)]
)
def test_run_style_refuses_bad_arguments(style: str, clients: object) -> None:
    with pytest.raises(ValueError):
        run_style(style, clients)  # type: ignore[arg-type]


def test_run_clients_refuses_a_bad_count_and_gives_partial_results_on_timeout() -> None:
    with pytest.raises(ValueError, match="clients"):
        run_clients(("127.0.0.1", 9), 0)
    with socket.create_server(
        ("127.0.0.1", 0)
    ) as silent:  # accepts (the kernel does), never answers
        results = run_clients(silent.getsockname(), 2, timeout=0.2)
    assert [str(r) for r in results] == [
        f"client-{i}: sent 42 bytes, received 0 bytes: 42 missing (not finished)" for i in (1, 2)
    ]


# -- what key.data holds ------------------------------------------------------------------


def _peek(style: str) -> str:
    sel = ServerSelector(selectors.DefaultSelector())
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.setblocking(False)
        sel.label(listener, "server")
        address = listener.getsockname()
        if style == "generators":
            with Scheduler(sel) as sched:
                sched.spawn(echo_server(sched, listener))
                sched.start()
                return peek_keys(sel, address)
        with LoopThread(asyncio.SelectorEventLoop(sel)) as runner:
            if style == "asyncio Protocol":
                runner.run(runner.loop.create_server(EchoProtocol, sock=listener))
            else:
                runner.run(asyncio.start_server(handle_echo, sock=listener))
            return peek_keys(sel, address)


def test_peek_keys_shows_what_key_data_holds_in_each_style() -> None:
    from echo_lib import EchoServer

    with EchoServer() as server:
        assert peek_keys(server.loop.selector, server.address) == (
            "listener:   EchoServer.on_accept()\nconnection: "
            "EchoServer._add_peer.<locals>.<lambda>()"
        )
    assert _peek("generators") == (
        "listener:   <Future pending> -> Task.step of echo_server\n"
        "connection: <Future pending> -> Task.step of echo_handler"
    )
    handles = (
        "listener:   (<Handle BaseSelectorEventLoop._accept_connection()>, None)\n"
        "connection: (<Handle _SelectorSocketTransport._read_ready()>, None)"
    )
    assert _peek("asyncio Protocol") == handles
    assert _peek("asyncio streams") == handles


def test_peek_keys_waits_until_a_task_waits_on_each_future() -> None:
    # A coroutine registers its Future, then yields it; its Task adds ``step``
    # to it only after that. peek_keys must not describe the key in between.
    sel = ServerSelector(selectors.DefaultSelector())
    with sel, socket.create_server(("127.0.0.1", 0)) as listener, socket.socket() as conn:
        sel.label(listener, "server")
        sel.label(conn, "server/conn-1")
        futures = [Future(), Future()]
        sel.register(listener, selectors.EVENT_READ, futures[0])
        sel.register(conn, selectors.EVENT_READ, futures[1])
        found: list[selectors.SelectorKey] = []
        futures[0].add_done_callback(lambda future: None)
        assert not _both_waiting(sel, found) and found == []
        futures[1].add_done_callback(lambda future: None)
        assert _both_waiting(sel, found) and [key.data for key in found] == futures


def test_describe_data_says_something_for_anything() -> None:
    assert describe_data(None) == "None"
    assert describe_data(Future()) == "<Future pending> -> Task.step of nobody"
    assert describe_data((None, None)) == "(None, None)"


# -- the lab --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fonts_loaded() -> None:
    """matplotlib keeps its font files open after drawing text: open them before counting fds."""
    pytest.importorskip("ipywidgets")
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure()
    figure.add_subplot().set_title("warm-up")
    figure.savefig(io.BytesIO(), format="png")


def test_the_lab_runs_the_chosen_style_and_shows_the_text_and_a_plot(fonts_loaded: None) -> None:
    from echo_lib.lessons.coroutines import styles_lab

    lab = styles_lab()
    try:
        assert repr(lab) == "<StylesLab: 4 styles; not run yet>" and lab.text() == "not run yet"
        assert lab._repr_mimebundle_()["text/plain"] == repr(lab)
        lab.style.value, lab.clients.value = "asyncio streams", 2
        lab.run_button.click()
        assert lab.text().splitlines()[1:] == COMPLETE[:2]
        assert lab.text().startswith("asyncio streams on ")
        assert [o["output_type"] for o in lab.out.outputs] == ["stream", "display_data"]
        assert "image/png" in lab.out.outputs[1]["data"]
        assert repr(lab) == "<StylesLab: 4 styles; last run: asyncio streams, 2 clients>"
    finally:
        lab.close()
    assert "application/vnd.jupyter.widget-view+json" not in lab._repr_mimebundle_()


def test_the_lab_shows_a_failure_as_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("ipywidgets")
    from echo_lib.lessons.coroutines import lab as lab_module

    def broken(style: str, clients: int) -> StyleRun:
        raise OSError("no sockets today")

    monkeypatch.setattr(lab_module, "run_style", broken)
    lab = lab_module.styles_lab("generators", 1)
    try:
        assert lab.run() is None
        assert lab.text() == "run failed: OSError: no sockets today"
        assert [o["output_type"] for o in lab.out.outputs] == ["stream"]
        assert not lab.run_button.disabled
    finally:
        lab.close()


def test_the_lab_refuses_bad_arguments() -> None:
    pytest.importorskip("ipywidgets")
    from echo_lib.lessons.coroutines import styles_lab

    with pytest.raises(ValueError, match="style must be one of"):
        styles_lab("threads")
    with pytest.raises(ValueError, match="clients"):
        styles_lab(clients=9)


def test_a_style_run_can_be_built_from_a_plain_timeline() -> None:
    run = StyleRun("x", "EpollSelector", (), Timeline())
    assert run.registration_text() == ("never", "-") and not run.polls and run.complete
