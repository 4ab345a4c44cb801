"""The claims of 01-why-multiplexing, per selector class, named after the section making them."""

from __future__ import annotations

import selectors
import socket
import threading
import time
from contextlib import ExitStack

from echo_lib import available_selectors

READ = selectors.EVENT_READ


# -- Busy-waiting burns the CPU ------------------------------------------------------


def test_busy_waiting_burns_the_cpu_a_selector_sleeps_instead(selector_name: str) -> None:
    # CPU time of this thread, not wall time: a thread asleep in the kernel uses
    # none, however loaded the machine is.
    a, b = socket.socketpair()
    timer = threading.Timer(0.3, b.send, (b"ping",))
    with a, b, available_selectors()[selector_name]() as sel:
        sel.register(a, READ)
        timer.start()
        cpu = time.thread_time()
        ready = sel.select(timeout=5)
        cpu = time.thread_time() - cpu
        timer.join()
    assert [key.fileobj for key, _ in ready] == [a]
    assert cpu < 0.3 * 0.02, f"{cpu:.4f} s of CPU while waiting 0.3 s"


# -- select() waits for many sockets at once ---------------------------------------


def test_select_waits_for_many_sockets_and_returns_the_ready_ones(selector_name: str) -> None:
    with ExitStack() as stack:
        pairs = [tuple(stack.enter_context(s) for s in socket.socketpair()) for _ in range(3)]
        sel = stack.enter_context(available_selectors()[selector_name]())
        for i, (mine, _) in enumerate(pairs):
            sel.register(mine, READ, data=i)
        assert sel.select(timeout=0.05) == []
        pairs[1][1].send(b"x")
        pairs[2][1].send(b"x")
        assert sorted(key.data for key, _ in sel.select(timeout=5)) == [1, 2]
