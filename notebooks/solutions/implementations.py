"""Solutions to the exercises in 07-selector-implementations."""

import selectors
import socket
import statistics
import time


def pick_selector(n_sockets):
    """A selector class that can watch ``n_sockets`` sockets on this platform.

    DefaultSelector is the cheapest class the platform has: epoll, kqueue or
    devpoll where they exist, and none of them has a limit on descriptor
    numbers. It is SelectSelector only where nothing else exists (Windows),
    and there no other class could do better. Never choose SelectSelector by
    the count alone: FD_SETSIZE limits descriptor *numbers*, and a busy
    process hands out numbers above 1024 for its eleventh socket as well.
    """
    return selectors.DefaultSelector


def select_cost(selector_class, n_idle, calls=1000):
    """Median seconds per ``select(0)`` of ``selector_class()`` watching ``n_idle`` idle sockets."""
    pairs = [socket.socketpair() for _ in range((n_idle + 1) // 2)]
    socks = [sock for pair in pairs for sock in pair][:n_idle]
    try:
        with selector_class() as sel:
            for sock in socks:
                sel.register(sock, selectors.EVENT_READ)  # nobody writes to them: never ready
            times = []
            for _ in range(calls):
                start = time.perf_counter()
                sel.select(0)
                times.append(time.perf_counter() - start)
            return statistics.median(times)
    finally:
        for pair in pairs:
            for sock in pair:
                sock.close()


# Exercise 1: sockets at fds a 921, b 931, c 936, d 930, registered a, b, c, d,
# made readable b, d, a, c. epoll: the order they became ready; poll: the order
# they were registered; select: set order, fd % 8 = a 1, b 3, c 0, d 2.
ORDER_PREDICTION = {"EpollSelector": "bdac", "PollSelector": "abcd", "SelectSelector": "cadb"}
