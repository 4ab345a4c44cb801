"""Shared fixtures: every selector class this platform has, and leak checks."""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import threading
from collections.abc import Callable, Iterator

import pytest

from echo_lib import SelectorLoop, available_selectors
from echo_lib.driver.wait import wait_until

from .kqueue_style import KqueueStyleSelector

SELECTOR_NAMES = list(available_selectors())
#: Every class, plus kqueue's way of reporting events: for the suites that drive a loop.
SelectorSpec = str | type[selectors.BaseSelector]
LOOP_SELECTORS: list[SelectorSpec] = [*SELECTOR_NAMES, KqueueStyleSelector]


@pytest.fixture(params=SELECTOR_NAMES)
def selector_name(request: pytest.FixtureRequest) -> str:
    """Each selector class the platform has, by name (EpollSelector, PollSelector, ...)."""
    return request.param


@pytest.fixture
def sel(selector_name: str) -> Iterator[selectors.BaseSelector]:
    """An open instance of each selector class the platform has, closed after the test."""
    with available_selectors()[selector_name]() as selector:
        yield selector


@pytest.fixture(params=LOOP_SELECTORS, ids=lambda s: s if isinstance(s, str) else s.__name__)
def loop_selector(request: pytest.FixtureRequest) -> SelectorSpec:
    """Each selector class by name, then `KqueueStyleSelector` (split, shuffled entries)."""
    return request.param


@pytest.fixture
def tcp_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """Two ends of a loopback TCP connection, 5 s timeouts: (client, server side), closed after."""
    with contextlib.ExitStack() as stack:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            listener.settimeout(5)
            client = stack.enter_context(
                socket.create_connection(listener.getsockname(), timeout=5)
            )
            server_side = stack.enter_context(listener.accept()[0])
        server_side.settimeout(5)  # a claim that turns false fails in 5 s instead of hanging
        yield client, server_side


def open_fds() -> int:
    """How many file descriptors this process has open (Linux, macOS)."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        if os.path.isdir(folder):
            return len(os.listdir(folder))
    pytest.skip("no /proc/self/fd or /dev/fd to count open file descriptors")


@pytest.fixture(autouse=True)
def no_leaked_loops() -> Iterator[None]:
    """Fail a test that leaves a selector loop or a thread running; clean up after it."""
    before = set(SelectorLoop._live)
    threads = threading.active_count()
    yield
    leaked = set(SelectorLoop._live) - before
    for loop in leaked:
        with contextlib.suppress(Exception):
            loop.stop()
    assert not leaked, f"the test left {sorted(map(repr, leaked))} open"
    assert threading.active_count() <= threads, "a test left a thread running"


def wait_for(condition: Callable[[], bool], timeout: float = 5.0, what: str = "") -> None:
    """Poll ``condition`` until true; fail after ``timeout`` seconds (never hangs)."""
    if not wait_until(condition, timeout):
        pytest.fail(f"timed out after {timeout} s waiting for {what or condition!r}")
