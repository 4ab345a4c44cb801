"""SelectorLoop and RecordingSelector: threads, stopping, errors, recording, leaks."""

from __future__ import annotations

import os
import selectors
import socket
import sys
import threading
import time

import pytest

from echo_lib import (
    EchoClient,
    EchoServer,
    RecordingSelector,
    SelectorLoop,
    Timeline,
    resolve_selector,
    stop_all,
)
from echo_lib.driver.loop import Callback
from echo_lib.driver.runner import ThreadRunner, run_later

from .conftest import LOOP_SELECTORS, SelectorSpec, open_fds, wait_for

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


def test_recording_selector_records_plain_selectors_code(loop_selector: SelectorSpec) -> None:
    sel = RecordingSelector(resolve_selector(loop_selector)())
    a, b = socket.socketpair()
    with sel, a, b:
        sel.register(a, READ, "callback")
        sel.modify(a, READ | WRITE, "callback")
        ready = sel.select(timeout=1)
        sel.unregister(a)
    assert [(key.data, mask) for key, mask in ready] == [("callback", WRITE)]
    assert [e.action for e in sel.timeline] == [
        "register",
        "modify",
        "select",
        "ready",
        "unregister",
    ]
    assert sel.timeline.events(action="modify")[0].detail == "READ → READ|WRITE"
    assert sel.timeline.actors() == ["socket-1", "selector"]


def test_recording_selector_keeps_the_selectors_errors() -> None:
    a, b = socket.socketpair()
    with RecordingSelector() as sel, a, b:
        sel.register(a, READ)
        with pytest.raises(KeyError, match="already registered"):
            sel.register(a, READ)
        with pytest.raises(KeyError, match="is not registered"):
            sel.modify(b, READ)
        with pytest.raises(ValueError, match="Invalid events"):
            sel.register(b, 0)
    assert [e.action for e in sel.timeline] == ["register"]


def test_labels_name_and_hide_file_objects() -> None:
    a, b = socket.socketpair()
    with RecordingSelector() as sel, a, b:
        sel.label(a, "listener")
        sel.label(b, None)
        sel.register(a, READ)
        sel.register(b, WRITE)
        assert sel.select(timeout=0)  # b is writable, but hidden: nothing recorded
    assert sel.timeline.summary().splitlines() == ["   1  listener  register    READ"]


def test_stop_works_from_another_thread_and_is_idempotent() -> None:
    loop = SelectorLoop().start()
    assert loop.running
    stopper = threading.Thread(target=loop.stop)
    stopper.start()
    stopper.join(timeout=5)
    loop.stop()
    assert not loop.running and loop.closed


def test_a_failing_callback_stops_the_loop_and_is_raised_by_stop() -> None:
    a, b = socket.socketpair()
    loop = SelectorLoop()
    loop.register(a, READ, lambda key, mask: 1 / 0, actor="boom")
    loop.start()
    b.send(b"x")
    wait_for(lambda: not loop.running, what="the loop to stop")
    with pytest.raises(ZeroDivisionError):
        loop.stop()
    loop.stop()  # raised once; a second stop is quiet
    b.close()
    assert a.fileno() == -1, "stop() closes every registered socket"
    assert loop.timeline.events("loop", "error")[0].detail.startswith("ZeroDivisionError")


def test_register_from_another_thread_reaches_the_loop_thread() -> None:
    a, b = socket.socketpair()
    got = threading.Event()
    seen: list[str] = []

    def on_ready(key: selectors.SelectorKey, mask: int) -> None:
        seen.append(threading.current_thread().name)
        key.fileobj.recv(10)
        got.set()

    with SelectorLoop(name="bg") as loop:
        loop.start()
        loop.register(a, READ, on_ready, actor="a")
        b.send(b"x")
        assert got.wait(timeout=5)
    b.close()
    assert seen == ["echo_lib-bg"]


def test_run_until_times_out() -> None:
    with SelectorLoop() as loop, pytest.raises(TimeoutError, match="still false"):
        loop.run_until(lambda: False, timeout=0.05)


def test_step_skips_a_key_unregistered_earlier_in_the_same_step() -> None:
    a1, b1 = socket.socketpair()
    a2, b2 = socket.socketpair()
    calls: list[str] = []
    with SelectorLoop() as loop, b1, b2:

        def first(key: selectors.SelectorKey, mask: int) -> None:
            calls.append("first")
            for sock in (a1, a2):
                loop.selector.unregister(sock)
                sock.close()

        loop.register(a1, WRITE, first)
        loop.register(a2, WRITE, lambda key, mask: calls.append("second"))
        assert loop.step(timeout=1) == 2
    assert calls == ["first"]


def test_stop_all_stops_every_live_loop_and_frees_threads_and_ports() -> None:
    threads, fds = threading.active_count(), open_fds()
    servers = [EchoServer().start() for _ in range(3)]
    hanging = socket.create_connection(
        servers[0].address, timeout=5
    )  # a client that never finishes
    client = EchoClient(servers[1].address, [b"x" * 10]).start()
    wait_for(lambda: servers[0].connections == 1, what="the accept")
    assert stop_all() >= 4
    assert all(s.loop.closed for s in servers) and client.loop.closed
    assert hanging.recv(10) == b""  # the server side was closed
    hanging.close()
    assert (threading.active_count(), open_fds()) == (threads, fds)
    for server in servers:  # every port is free again for a new server
        with EchoServer(port=server.address[1], record=False) as again:
            assert again.address == server.address


@pytest.mark.parametrize("loop_selector", LOOP_SELECTORS)
def test_200_start_stop_cycles_leave_no_threads_or_fds(loop_selector: SelectorSpec) -> None:
    EchoClient(EchoServer(selector=loop_selector).start().address).run()  # warm up lazy imports
    stop_all()
    threads, fds = threading.active_count(), open_fds()
    for _ in range(200):
        with EchoServer(selector=loop_selector) as server:
            EchoClient(server.address, [b"ping"], selector=loop_selector).run()
    assert (threading.active_count(), open_fds()) == (threads, fds)


def test_recording_off_means_no_timeline() -> None:
    with EchoServer(record=False) as server:
        assert EchoClient(server.address, record=False).run().complete
    assert server.timeline is None


def test_a_given_timeline_is_used() -> None:
    timeline = Timeline()
    with EchoServer(timeline=timeline) as server:
        EchoClient(server.address, timeline=timeline).run()
    assert server.timeline is timeline and timeline.events("client", "recv")


def test_select_past_fd_setsize_is_explained() -> None:
    import resource

    from echo_lib.driver.implementations import FD_SETSIZE, FdSetSizeError

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < FD_SETSIZE + 64:
        pytest.skip(f"the fd limit ({hard}) is too low to pass FD_SETSIZE")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, FD_SETSIZE + 64), hard))
    socks = [socket.socket() for _ in range(FD_SETSIZE + 8)]
    try:
        high = max(socks, key=lambda s: s.fileno())
        with SelectorLoop("select") as loop:
            loop.register(high, READ, lambda key, mask: None, actor="high")
            with pytest.raises(
                FdSetSizeError, match=r"cannot watch fd \d{4,}: .* use PollSelector"
            ) as info:
                loop.step(0)
            assert int(str(info.value).split("fd ")[1].split(":")[0]) >= FD_SETSIZE
            loop.selector.unregister(high)
    finally:
        for sock in socks:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# -- stale keys: an fd closed, then reused, within one batch ---------------------


def test_a_stale_event_never_reaches_a_socket_that_reused_the_fd(
    loop_selector: SelectorSpec,
) -> None:
    # Both a and b are readable. Whichever callback runs first closes the other
    # socket and puts a new socket c on its fd (dup2 makes the reuse certain).
    # The other's READ, still in this batch, belongs to the closed socket: c
    # must not be called with it. c is readable too, so a wrong call would count.
    (a, a_peer), (b, b_peer), (c, c_peer) = (
        socket.socketpair(),
        socket.socketpair(),
        socket.socketpair(),
    )
    calls: list[str] = []
    with SelectorLoop(loop_selector) as loop, a_peer, b_peer, c_peer:

        def replace(other: socket.socket, name: str) -> Callback:
            def callback(key: selectors.SelectorKey, mask: int) -> None:
                calls.append(name)
                if len(calls) == 1:
                    fd = other.fileno()
                    loop.selector.unregister(other)
                    other.close()
                    os.dup2(c.fileno(), fd)
                    loop.register(
                        socket.socket(fileno=fd),
                        READ,
                        lambda key, mask: calls.append("c"),
                        actor="c",
                    )

            return callback

        loop.register(a, READ, replace(b, "a"), actor="a")
        loop.register(b, READ, replace(a, "b"), actor="b")
        for peer in (a_peer, b_peer, c_peer):
            peer.send(b"x")
        loop.step(timeout=1)
        assert calls in (["a"], ["b"]), "the stale READ of the closed socket reached the new one"
        assert loop.step(timeout=1) >= 1 and calls[-1] == "c", (
            "the new socket is served from the next select()"
        )
    c.close()


# -- stopping from anywhere ------------------------------------------------------


def test_stop_from_a_callback_closes_everything_once_the_step_ends() -> None:
    a, b = socket.socketpair()
    loop = SelectorLoop(name="self-stop")
    loop.register(a, READ, lambda key, mask: loop.stop(), actor="a")
    loop.start()
    b.send(b"x")
    wait_for(lambda: loop.closed, what="the loop to close itself")
    loop._runner.join(5)
    assert not loop.running and a.fileno() == -1, "the registered socket is closed"
    assert loop._wake_w.fileno() == -1 and loop._wake_r.fileno() == -1, "the wakeup pair is closed"
    assert loop not in SelectorLoop._live
    b.close()


def test_a_close_interrupted_by_ctrl_c_is_finished_by_stop_all() -> None:
    a, b = socket.socketpair()
    interrupts = [KeyboardInterrupt()]

    def closer() -> None:
        if interrupts:
            raise interrupts.pop()

    loop = SelectorLoop(name="interrupted")
    loop.register(a, READ, lambda key, mask: None)
    loop.add_closer(closer)
    with pytest.raises(KeyboardInterrupt):
        loop.close()
    assert not loop.closed and loop in SelectorLoop._live, (
        "a half-done close must not pass for a closed loop"
    )
    assert stop_all() >= 1
    assert loop.closed and a.fileno() == -1 and loop._wake_r.fileno() == -1
    b.close()


def test_registering_a_registered_socket_from_another_thread_raises_in_the_caller() -> None:
    a, b = socket.socketpair()
    with SelectorLoop(name="bg") as loop, b:
        loop.register(a, READ, lambda key, mask: None)
        loop.start()
        with pytest.raises(KeyError, match="already registered"):
            loop.register(a, READ, lambda key, mask: None)
        assert loop.running and loop.exception is None, (
            "the caller's mistake must not kill the loop"
        )


def test_registering_on_a_closed_loop_is_a_clear_error() -> None:
    loop = SelectorLoop(name="gone")
    loop.stop()
    with socket.socket() as sock, pytest.raises(RuntimeError, match="'gone' closed.*is closed"):
        loop.register(sock, READ, lambda key, mask: None)


def test_call_later_runs_after_its_delay_and_bounds_the_wait() -> None:
    ran: list[int] = []
    with SelectorLoop() as loop:
        loop.call_later(0.05, lambda: ran.append(loop.iterations))
        assert loop.step(0.0) == 0 and not ran, "not due yet"
        loop.run_until(lambda: bool(ran), timeout=5)
        assert loop.iterations <= 3, "a blocking step waits for the timer instead of spinning"


def test_windows_too_many_sockets_error_is_an_fd_set_size_error() -> None:
    from echo_lib.driver.implementations import FdSetSizeError, select

    class WindowsLikeSelector(selectors.SelectSelector):
        def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
            raise ValueError("too many file descriptors in select()")  # CPython's text on Windows

    a, b = socket.socketpair()
    with a, b, WindowsLikeSelector() as sel:
        sel.register(a, READ)
        with pytest.raises(
            FdSetSizeError, match=r"SelectSelector cannot watch .*FD_SETSIZE \((512|1024)\)"
        ):
            select(sel, 0)


def test_fd_setsize_is_the_first_fd_select_refuses() -> None:
    from echo_lib.driver.implementations import FD_SETSIZE, FdSetSizeError, select

    if sys.platform == "win32":
        pytest.skip("on Windows the limit is a count of 512 sockets, not an fd number")
    resource = pytest.importorskip("resource")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < FD_SETSIZE + 8:
        pytest.skip(f"the fd limit ({hard}) is too low to pass FD_SETSIZE")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, FD_SETSIZE + 8), hard))
    a, b = socket.socketpair()
    try:
        for fd, fits in ((FD_SETSIZE - 1, True), (FD_SETSIZE, False)):
            os.dup2(a.fileno(), fd)
            with selectors.SelectSelector() as sel:
                sel.register(fd, READ)
                if fits:
                    assert select(sel, 0) == []
                else:
                    with pytest.raises(FdSetSizeError, match=f"cannot watch fd {fd}"):
                        select(sel, 0)
            os.close(fd)
    finally:
        a.close()
        b.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# -- ThreadRunner: the one way echo_lib runs a background thread -------------------


def test_a_runner_keeps_the_result_in_a_named_daemon_thread() -> None:
    seen: list[threading.Thread] = []
    runner = ThreadRunner(lambda: seen.append(threading.current_thread()) or 42, name="answer")
    assert (runner.started, runner.done, runner.ident) == (False, False, None)
    assert runner.start().join(5) == 42 and runner.result == 42
    assert seen[0].name == "echo_lib-answer" and seen[0].daemon
    assert runner.ident == seen[0].ident and runner.done and not runner.running
    with pytest.raises(RuntimeError, match="only be started once"):
        runner.start()


def test_a_runner_keeps_the_exception_and_raises_it_once() -> None:
    def fails() -> None:
        raise ValueError("boom")

    runner = ThreadRunner(fails, name="fails").start()
    runner.join(5)
    assert isinstance(runner.exception, ValueError) and "ValueError" in repr(runner)
    with pytest.raises(ValueError, match="boom"):
        runner.raise_if_failed()
    runner.raise_if_failed()  # once only
    assert isinstance(runner.exception, ValueError), "kept after raising"


def test_joining_a_runner_that_still_runs_names_it() -> None:
    release = threading.Event()
    runner = ThreadRunner(lambda: release.wait(5), name="waiter").start()
    try:
        with pytest.raises(TimeoutError, match="waiter is still running after 0.01 s"):
            runner.join(0.01)
        assert runner.running and not runner.is_current()
    finally:
        release.set()
        runner.join(5)


def test_a_runner_needs_a_callable() -> None:
    with pytest.raises(TypeError, match="target must be callable, got 42"):
        ThreadRunner(42, name="bad")  # type: ignore[arg-type]


def test_a_timeout_names_the_owner_the_thread_serves() -> None:
    release = threading.Event()
    runner = ThreadRunner(lambda: release.wait(5), name="served").start()
    try:
        with pytest.raises(TimeoutError, match=r"^<the owner> did not stop within 0.01 s$"):
            runner.join(0.01, owner=_Named("<the owner>"))
    finally:
        release.set()
        runner.join(5)


class _Named:
    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def test_run_later_calls_after_the_delay_and_keeps_an_error() -> None:
    started = time.monotonic()
    later = run_later(0.05, lambda: time.monotonic() - started, name="later")
    assert later.join(5) >= 0.05 and later.thread_name == "echo_lib-later"

    def fails() -> None:
        raise OSError("refused")

    failed = run_later(0, fails, name="fails-later")
    failed.join(5)
    assert isinstance(failed.exception, OSError)  # kept for the caller, never printed
