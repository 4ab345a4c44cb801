"""The claims of 02-registration, per selector class, named after the section that makes them.

Each test runs on every selector class this platform has (the ``selector_name``
fixture), and asserts what the notebook says that class does. Where the
classes differ, the expected outcome is a table keyed by class name, the same
table the notebook prints.
"""

from __future__ import annotations

import errno
import selectors
import socket
import time

import pytest

from echo_lib import available_selectors

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


def _selector(name: str) -> selectors.BaseSelector:
    return available_selectors()[name]()


def _select_outcome(sel: selectors.BaseSelector) -> object:
    """``[(data, mask), ...]`` of one ``select(0)``, or the errno it raised."""
    try:
        return [(key.data, mask) for key, mask in sel.select(0)]
    except OSError as exc:
        return errno.errorcode[exc.errno]


# -- Mistakes that raise ------------------------------------------------------


def test_mistakes_that_raise_register_twice_no_events_closed_socket(selector_name: str) -> None:
    sock, peer = socket.socketpair()
    closed = socket.socket()
    closed.close()
    with sock, peer, _selector(selector_name) as sel:
        sel.register(sock, READ)
        with pytest.raises(KeyError, match="is already registered"):
            sel.register(sock, WRITE)
        with pytest.raises(ValueError, match="Invalid events: 0"):
            sel.register(peer, 0)
        with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
            sel.register(closed, READ)
        with pytest.raises(KeyError, match="is not registered"):
            sel.unregister(peer)


#: what ``modify(sock, 0)`` does: (the key's events after it, or the error; still registered)
MODIFY_TO_NOTHING = {
    "EpollSelector": (0, True),
    "PollSelector": (0, True),
    "DevpollSelector": (0, True),
    "SelectSelector": ("ValueError", False),
}


def test_mistakes_that_raise_modify_to_no_events(selector_name: str) -> None:
    a, b = socket.socketpair()
    with a, b, _selector(selector_name) as sel:
        sel.register(a, READ, "callback")
        try:
            outcome: object = sel.modify(a, 0).events
        except ValueError:
            outcome = "ValueError"
        assert (outcome, a in sel.get_map()) == MODIFY_TO_NOTHING[selector_name]


def test_mistakes_that_raise_an_empty_mask_still_wakes_after_a_hangup(selector_name: str) -> None:
    # epoll(7) always reports EPOLLHUP and EPOLLERR, poll(2) POLLHUP, POLLERR and
    # POLLNVAL, whatever was asked for; selectors hands them on as (key, 0).
    if MODIFY_TO_NOTHING[selector_name][0] != 0:
        pytest.skip(f"{selector_name} refuses modify(sock, 0)")
    a, b = socket.socketpair()
    with a, _selector(selector_name) as sel:
        sel.register(a, READ, "callback")
        assert sel.modify(a, 0).data is None, "modify() without data resets key.data"
        assert sel.select(0) == []
        b.close()
        for _ in range(3):  # after the hang-up: at once, every time
            started = time.monotonic()
            assert [(k.fileobj, mask) for k, mask in sel.select(timeout=5)] == [(a, 0)]
            assert time.monotonic() - started < 2.5


def test_mistakes_that_raise_modify_without_data_resets_data(selector_name: str) -> None:
    a, b = socket.socketpair()
    with a, b, _selector(selector_name) as sel:
        sel.register(a, READ, "callback")
        assert sel.modify(a, READ | WRITE).data is None
        sel.modify(a, READ | WRITE, "callback")
        assert sel.modify(a, READ | WRITE).data is None, "even with the same events"


# -- Unregister before close --------------------------------------------------

#: the notebook's close_first(): register a readable socket, close it, select(0)
CLOSE_FIRST = {
    "EpollSelector": [],
    "PollSelector": [("old", READ)],
    "DevpollSelector": [("old", READ)],
    "SelectSelector": "EBADF",
}


def test_unregister_before_close_a_closed_socket_per_class(selector_name: str) -> None:
    a, b = socket.socketpair()
    with b, _selector(selector_name) as sel:
        sel.register(a, READ, "old")
        b.send(b"x")
        a.close()
        assert _select_outcome(sel) == CLOSE_FIRST[selector_name]
        assert len(sel.get_map()) == 1, "the stale key stays in the map"
        sel.unregister(a)  # by identity, although fileno() is -1
        assert len(sel.get_map()) == 0


#: the notebook's close_then_reuse(): the data of a new socket on the old fd goes to
REUSED_FD = {
    "EpollSelector": [],
    "PollSelector": ["old"],
    "DevpollSelector": ["old"],
    "SelectSelector": ["old"],
}


def test_unregister_before_close_a_reused_fd_is_taken_for_the_old_socket(
    selector_name: str,
) -> None:
    with _selector(selector_name) as sel:
        old, peer = socket.socketpair()
        sel.register(old, READ, "old")
        old_fd = old.fileno()
        old.close()
        peer.close()
        new, peer = socket.socketpair()
        with new, peer:
            if new.fileno() != old_fd:
                pytest.skip("the kernel did not hand out the same descriptor number again")
            peer.send(b"for new")
            assert new in sel.get_map(), "never registered, yet found in the map"
            assert [key.data for key, _ in sel.select(0)] == REUSED_FD[selector_name]


#: with a dup() alive, after close(): select(0) before unregister(), and after it
DUP_TRAP = {
    "EpollSelector": ([("old", READ)], []),
    "PollSelector": ([("old", READ)], []),
    "DevpollSelector": ([("old", READ)], []),
    "SelectSelector": ("EBADF", []),
}


def test_unregister_before_close_a_dup_keeps_the_closed_socket_alive(selector_name: str) -> None:
    a, b = socket.socketpair()
    twin = a.dup()  # os.dup() and fork() share the open file description the same way
    with b, twin, _selector(selector_name) as sel:
        sel.register(a, READ, "old")
        b.send(b"x")
        a.close()
        before = _select_outcome(sel)
        sel.unregister(a)  # epoll_ctl(DEL) fails with EBADF; selectors swallows it
        assert (before, _select_outcome(sel)) == DUP_TRAP[selector_name]


def test_unregister_before_close_after_the_dup_trap_epoll_never_sleeps_again() -> None:
    if "EpollSelector" not in available_selectors():
        pytest.skip("no epoll on this platform")
    a, b = socket.socketpair()
    twin = a.dup()
    with b, twin, selectors.EpollSelector() as sel:
        sel.register(a, READ)
        b.send(b"x")
        a.close()
        sel.unregister(a)
        assert sel.get_map() == {}
        for _ in range(20):  # nothing is registered, yet no call waits its 5 s
            started = time.monotonic()
            assert sel.select(timeout=5) == []
            assert time.monotonic() - started < 2.5
        # the cure: close the last descriptor of the open file description
        twin.close()
        started = time.monotonic()
        assert sel.select(timeout=0.2) == []
        assert time.monotonic() - started >= 0.15


# -- Closing the selector -----------------------------------------------------


def test_closing_the_selector_forgets_keys_and_leaves_sockets_open(selector_name: str) -> None:
    a, b = socket.socketpair()
    with a, b:
        with _selector(selector_name) as sel:
            sel.register(a, READ)
        assert sel.get_map() is None
        assert a.fileno() >= 0
        with pytest.raises(RuntimeError, match="Selector is closed"):
            sel.get_key(a)
