"""The exercises of 01-why-multiplexing: the solutions pass, plausible mistakes are named."""

from __future__ import annotations

import gc
import select
import selectors
import socket
import sys
from pathlib import Path

from echo_lib.exercises.multiplexing import _call, check_wait_for_any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "notebooks" / "solutions"))
from multiplexing import wait_for_any  # noqa: E402

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


def test_the_solutions_pass() -> None:
    assert str(check_wait_for_any(wait_for_any)) == "✔ wait_for_any: all checks passed"


# -- wait_for_any -------------------------------------------------------------


def test_a_timed_call_runs_without_garbage_collection_then_restores_it() -> None:
    # A collection in the learner's thread would count as its CPU: a false "it spins".
    assert gc.isenabled()
    call = _call(gc.isenabled, timeout=5)
    assert call.returned and call.value is False and gc.isenabled()
    gc.disable()
    try:
        assert _call(gc.isenabled, timeout=5).value is False and not gc.isenabled()
    finally:
        gc.enable()


def test_returning_keys_instead_of_sockets_is_caught() -> None:
    def keys(socks: list[socket.socket], timeout: float) -> list[selectors.SelectorKey]:
        with selectors.DefaultSelector() as sel:
            for sock in socks:
                sel.register(sock, READ)
            return [key for key, _ in sel.select(timeout)]

    assert "it returned SelectorKey items; return the sockets themselves (key.fileobj)" in str(
        check_wait_for_any(keys)
    )


def test_registering_write_too_is_explained() -> None:
    def read_write(socks: list[socket.socket], timeout: float) -> list[socket.socket]:
        with selectors.DefaultSelector() as sel:
            for sock in socks:
                sel.register(sock, READ | WRITE)
            return [key.fileobj for key, _ in sel.select(timeout)]

    text = str(check_wait_for_any(read_write))
    assert (
        "it returned [socks[0], socks[1], socks[2]], expected [socks[1], socks[2]]: was "
        "EVENT_WRITE registered too?" in text
    )


def test_reading_the_data_is_caught() -> None:
    def reads(socks: list[socket.socket], timeout: float) -> list[socket.socket]:
        readable, _, _ = select.select(socks, [], [], timeout)
        for sock in readable:
            sock.recv(1024)
        return readable

    assert "the data on socks[1] was gone: only wait, leave reading to the caller" in str(
        check_wait_for_any(reads)
    )


def test_no_timeout_never_returns_and_is_released() -> None:
    def no_timeout(socks: list[socket.socket], timeout: float) -> list[socket.socket]:
        with selectors.DefaultSelector() as sel:
            for sock in socks:
                sel.register(sock, READ)
            return [key.fileobj for key, _ in sel.select()]

    assert (
        "with nothing arriving and a 0.3 s timeout it never returned: give select() the timeout"
        in str(check_wait_for_any(no_timeout))
    )


def test_waiting_only_for_the_first_socket_is_caught() -> None:
    def first_only(socks: list[socket.socket], timeout: float) -> list[socket.socket]:
        readable, _, _ = select.select(socks[:1], [], [], timeout)
        return readable

    text = str(check_wait_for_any(first_only))
    assert "with data already waiting on socks[1] and socks[2] it" in text


def test_a_selector_never_closed_is_caught() -> None:
    kept: list[
        selectors.BaseSelector
    ] = []  # held, so that garbage collection cannot close it either

    def never_closes(socks: list[socket.socket], timeout: float) -> list[socket.socket]:
        sel = selectors.DefaultSelector()
        kept.append(sel)
        for sock in socks:
            sel.register(sock, READ)
        return [key.fileobj for key, _ in sel.select(timeout)]

    text = str(check_wait_for_any(never_closes))
    assert text == (
        "✘ wait_for_any: 1 problem\n"
        "  - with data already waiting on socks[1] and socks[2] it left its selector open: close "
        "it (a `with` block does)"
    )
    assert kept[0].get_map() is None, "the checker closes what the learner left open"
    assert selectors.DefaultSelector is type(kept[0]).__mro__[1], "the selectors module is restored"


def test_any_selector_class_is_watched() -> None:
    def select_never_closed(socks: list[socket.socket], timeout: float) -> list[socket.socket]:
        sel = selectors.SelectSelector()
        for sock in socks:
            sel.register(sock, READ)
        return [key.fileobj for key, _ in sel.select(timeout)]

    assert "it left its selector open" in str(check_wait_for_any(select_never_closed))
