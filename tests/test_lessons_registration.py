"""The registration playground of 02-registration: each call gives one deterministic line."""

from __future__ import annotations

import gc
import selectors
import warnings

import pytest

pytest.importorskip("ipywidgets")

from echo_lib.lessons.registration import registration_playground  # noqa: E402
from echo_lib.view.widgets import describe_error  # noqa: E402


@pytest.fixture
def playground():
    front = registration_playground()
    yield front
    front.close()


def test_a_walk_through_register_select_modify_unregister(playground) -> None:
    assert repr(playground) == "<RegistrationPlayground: sock not registered; 0 calls>"
    lines = [
        playground.register(read=True),
        playground.select(),
        playground.peer_sends(),
        playground.select(),
        playground.modify(read=True, write=True),
        playground.select(),
        playground.recv(),
        playground.recv(),
        playground.unregister(),
    ]
    assert lines == [
        "sel.register(sock, EVENT_READ) -> SelectorKey: events READ",
        "sel.select(0) -> [] (nothing ready)",
        'peer.send(b"x") -> 1 byte sent',
        "sel.select(0) -> [(sock, READ)]",
        "sel.modify(sock, EVENT_READ | EVENT_WRITE) -> SelectorKey: events READ|WRITE",
        "sel.select(0) -> [(sock, READ|WRITE)]",
        "sock.recv(1024) -> b'x'",
        "sock.recv(1024) -> BlockingIOError (nothing to read yet)",
        "sel.unregister(sock) -> SelectorKey: events READ|WRITE (removed)",
    ]
    assert repr(playground) == "<RegistrationPlayground: sock not registered; 9 calls>"
    assert "key map (sel.get_map()):\n(empty)" in playground.text()


def test_the_errors_name_the_socket_not_its_fd(playground) -> None:
    playground.register(read=True)
    assert (
        playground.register(read=True)
        == "sel.register(sock, EVENT_READ) -> KeyError: sock is already registered"
    )
    playground.unregister()
    assert playground.unregister() == "sel.unregister(sock) -> KeyError: sock is not registered"
    assert (
        playground.modify(read=True)
        == "sel.modify(sock, EVENT_READ) -> KeyError: sock is not registered"
    )
    assert (
        playground.register(read=False) == "sel.register(sock, 0) -> ValueError: Invalid events: 0"
    )


def test_closing_a_registered_socket_leaves_a_stale_key(playground) -> None:
    playground.register(read=True, write=True)
    assert playground.close_sock() == "sock.close() -> closed, but still registered!"
    assert "sock (closed!): events READ|WRITE" in playground.key_map()
    assert (
        playground.unregister()
        == "sel.unregister(sock) -> SelectorKey: events READ|WRITE (removed)"
    )
    assert (
        playground.register(read=True)
        == "sel.register(sock, EVENT_READ) -> ValueError: Invalid file descriptor: -1"
    )


def test_the_timeline_keeps_the_name_sock_across_unregister(playground) -> None:
    playground.register(read=True)
    playground.unregister()
    playground.register(write=True, read=False)
    actors = {line.split()[1] for line in playground.timeline.summary().splitlines()}
    assert actors == {"sock"}


def test_the_widget_buttons_make_the_same_calls(playground) -> None:
    widget = playground  # the playground is its widget's front: controls are its attributes
    widget.read.value, widget.write.value = False, True
    widget.buttons["register"].click()
    widget.buttons["select"].click()
    text = widget.out.outputs[0]["text"]
    assert "sel.register(sock, EVENT_WRITE) -> SelectorKey: events WRITE" in text
    assert "sel.select(0) -> [(sock, WRITE)]" in text
    assert "sock: events WRITE" in text
    widget.buttons["reset"].click()
    assert repr(playground) == "<RegistrationPlayground: sock not registered; 0 calls>"
    bundle = playground._repr_mimebundle_()
    assert bundle["text/plain"] == repr(playground)
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_a_closed_playground_says_so(playground) -> None:
    sock, widget = playground.sock, playground.widget
    playground.close()
    assert repr(playground) == "<RegistrationPlayground: sock closed; 0 calls>"
    assert sock.fileno() == -1 and widget.comm is None
    for call in (playground.select, playground.reset):
        with pytest.raises(RuntimeError, match="RegistrationPlayground is closed"):
            call()
    assert playground._repr_mimebundle_() == {"text/plain": repr(playground)}


def test_an_abandoned_playground_closes_its_sockets() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        front = registration_playground()
        front.register(read=True)
        sock, widget = front.sock, front.widget
        del front
        gc.collect()
    assert sock.fileno() == -1 and widget.comm is None


def test_describe_error_drops_fds_and_reprs() -> None:
    with selectors.DefaultSelector() as sel:
        import socket

        a, b = socket.socketpair()
        with a, b:
            sel.register(a, selectors.EVENT_READ)
            try:
                sel.register(a, selectors.EVENT_READ)
            except KeyError as exc:
                assert describe_error(exc, "a") == "KeyError: a is already registered"
