"""The exercises of 02-registration: the solutions pass, plausible mistakes are named."""

from __future__ import annotations

import selectors
import socket
import sys
from pathlib import Path

from echo_lib.exercises.registration import check_accept_one, check_set_interest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "notebooks" / "solutions"))
from registration import accept_one, on_accept, set_interest  # noqa: E402

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


def test_the_solutions_pass() -> None:
    assert str(check_accept_one(accept_one)) == "✔ accept_one: all checks passed"
    assert str(check_set_interest(set_interest)) == "✔ set_interest: all checks passed"


# -- accept_one ---------------------------------------------------------------


def test_the_untouched_stub_is_named() -> None:
    def stub(sel: selectors.BaseSelector, listener: socket.socket) -> socket.socket:
        raise NotImplementedError("your code here")

    assert (
        str(check_accept_one(stub))
        == "✘ accept_one: 1 problem\n  - it raised NotImplementedError: replace the `raise` with "
        "your code"
    )


def test_read_write_no_callback_blocking_and_left_registered_are_all_named() -> None:
    def sloppy(sel: selectors.BaseSelector, listener: socket.socket) -> socket.socket:
        sel.register(listener, READ | WRITE)
        sel.select(5)
        return listener.accept()[0]

    text = str(check_accept_one(sloppy))
    assert (
        "it registered the listener for READ|WRITE: a new connection makes it readable, register "
        "EVENT_READ" in text
    )
    assert "it registered the listener with data=None: store the accept callback as data" in text
    assert "the accepted connection is blocking: call conn.setblocking(False)" in text
    assert "the listener is still registered: sel.unregister(listener) before returning" in text


def test_calling_the_callback_directly_is_caught() -> None:
    def bypass(sel: selectors.BaseSelector, listener: socket.socket) -> socket.socket:
        sel.register(listener, READ, on_accept)
        ((_key, mask),) = sel.select(5)
        sel.unregister(listener)
        return on_accept(listener, mask)

    assert "it never called the callback through the key: call key.data(key.fileobj, mask)" in str(
        check_accept_one(bypass)
    )


def test_accepting_without_waiting_is_an_error() -> None:
    def no_wait(sel: selectors.BaseSelector, listener: socket.socket) -> socket.socket:
        sel.register(listener, READ, on_accept)
        key = sel.get_key(listener)
        sel.unregister(listener)
        return key.data(listener, READ)  # nobody has connected yet

    assert "it raised BlockingIOError" in str(check_accept_one(no_wait))


def test_returning_the_listener_is_caught() -> None:
    def wrong_socket(sel: selectors.BaseSelector, listener: socket.socket) -> socket.socket:
        sel.register(listener, READ, on_accept)
        for key, mask in sel.select(5):
            key.data(key.fileobj, mask).close()
        sel.unregister(listener)
        return listener

    assert "the socket it returned is not connected to the client" in str(
        check_accept_one(wrong_socket)
    )


# -- set_interest ---------------------------------------------------------------


def test_registering_every_time_is_a_key_error_with_a_hint() -> None:
    def always_register(sel: selectors.BaseSelector, sock: socket.socket, events: int) -> None:
        sel.register(sock, events)

    text = str(check_set_interest(always_register))
    assert (
        "with sock registered for READ, set_interest(sel, sock, READ|WRITE) it raised KeyError: "
        "sock is already registered: sock is registered already, so use sel.modify()"
    ) in text


def test_unregister_then_register_is_caught() -> None:
    def start_over(sel: selectors.BaseSelector, sock: socket.socket, events: int) -> None:
        if sock in sel.get_map():
            sel.unregister(sock)
        if events:
            sel.register(sock, events)

    assert "unregistered and registered again: one sel.modify() does that" in str(
        check_set_interest(start_over)
    )


def test_modify_to_zero_leaves_a_key_that_waits_for_nothing() -> None:
    def modify_only(sel: selectors.BaseSelector, sock: socket.socket, events: int) -> None:
        if sock not in sel.get_map():
            sel.register(sock, events)
        elif events != sel.get_key(sock).events:
            sel.modify(sock, events)

    text = str(check_set_interest(modify_only))
    if not issubclass(
        selectors.DefaultSelector, selectors._PollLikeSelector
    ):  # pragma: no cover - kqueue, Windows
        # KqueueSelector and SelectSelector modify() by unregister + register,
        # and register(sock, 0) raises
        assert (
            "it raised ValueError: Invalid events: 0: with no events wanted, unregister instead"
            in text
        )
    else:  # epoll, poll and devpoll accept modify(sock, 0) and keep the key
        assert (
            "set_interest(sel, sock, 0) left sock registered for 0, which still wakes select() on "
            "a hang-up or an error: "
            "with no events wanted, unregister it"
        ) in text


def test_unregistering_what_is_not_registered_is_caught() -> None:
    def blind(sel: selectors.BaseSelector, sock: socket.socket, events: int) -> None:
        if not events:
            sel.unregister(sock)
            sel.unregister(sock)
        elif sock not in sel.get_map():
            sel.register(sock, events)
        elif events != sel.get_key(sock).events:
            sel.modify(sock, events)

    text = str(check_set_interest(blind))
    assert "it raised KeyError: sock is not registered: check `sock in sel.get_map()` first" in text


def test_a_redundant_modify_is_caught() -> None:
    # the spec says "nothing when nothing changes": modify() with the same events is a wasted call
    def always_modify(sel: selectors.BaseSelector, sock: socket.socket, events: int) -> None:
        if not events:
            if sock in sel.get_map():
                sel.unregister(sock)
        elif sock in sel.get_map():
            sel.modify(sock, events, sel.get_key(sock).data)
        else:
            sel.register(sock, events)

    text = str(check_set_interest(always_modify))
    assert text == (
        "✘ set_interest: 1 problem\n  - with sock registered for READ|WRITE, set_interest(sel, "
        "sock, READ|WRITE) "
        "called sel.modify() although nothing changes: compare with the key's events and make no "
        "call"
    )
