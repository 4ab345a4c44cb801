"""The waiting room of 01-why-multiplexing: who waits behind a blocking server, and the widget."""

from __future__ import annotations

import re
import selectors
import socket

import pytest

pytest.importorskip("ipywidgets")
matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from echo_lib import Timeline  # noqa: E402
from echo_lib.lessons.multiplexing import run_clients, waiting_room  # noqa: E402


def blocking_echo_server(listener: socket.socket, timeline: Timeline, clients: int) -> None:
    """The notebook's blocking server: one client at a time."""
    for n in range(1, clients + 1):
        conn, _ = listener.accept()
        actor = f"server/conn-{n}"
        timeline.record("server", "accept", detail=f"conn-{n}")
        with conn:
            while data := conn.recv(1024):
                timeline.record(actor, "recv", nbytes=len(data))
                conn.sendall(data)
                timeline.record(actor, "send", nbytes=len(data))
            timeline.record(actor, "eof")
        timeline.record(actor, "close")


def selector_echo_server(listener: socket.socket, timeline: Timeline, clients: int) -> None:
    """The notebook's selectors server: every client at once."""
    listener.setblocking(False)
    accepted = closed = 0
    with selectors.DefaultSelector() as sel:
        sel.register(listener, selectors.EVENT_READ)
        while closed < clients:
            ready = sel.select(timeout=5)
            if not ready:
                break
            for key, _mask in ready:
                if key.fileobj is listener:
                    conn, _ = listener.accept()
                    conn.setblocking(False)
                    accepted += 1
                    timeline.record("server", "accept", detail=f"conn-{accepted}")
                    sel.register(conn, selectors.EVENT_READ, data=f"server/conn-{accepted}")
                    continue
                conn, actor = key.fileobj, key.data
                data = conn.recv(1024)
                if data:
                    timeline.record(actor, "recv", nbytes=len(data))
                    timeline.record(actor, "send", nbytes=conn.send(data))
                else:
                    timeline.record(actor, "eof")
                    sel.unregister(conn)
                    conn.close()
                    timeline.record(actor, "close")
                    closed += 1


SERVERS = {"blocking": blocking_echo_server, "selectors": selector_echo_server}


def test_behind_a_blocking_server_each_client_waits_for_the_ones_before() -> None:
    run = run_clients(blocking_echo_server, 3, hold=0.1, name="blocking")
    assert [v.others_gone for v in run.visits] == [0, 1, 2]
    assert run.most_at_once == 1
    assert run.longest_wait >= 0.15  # client-3 waited for two holds
    assert str(run).splitlines()[:4] == [
        "blocking server, 3 clients, each stays 0.1 s after its echo",
        "client-1: echo after 0 other clients left",
        "client-2: echo after 1 other client left",
        "client-3: echo after 2 other clients left",
    ]
    assert run.timeline.bytes_moved("server") == {"recv": 15, "send": 15}


def test_a_selectors_server_serves_everyone_at_once() -> None:
    run = run_clients(selector_echo_server, 4, hold=0.3, name="selectors")
    assert [v.others_gone for v in run.visits] == [0, 0, 0, 0]
    assert all(v.echoed for v in run.visits)
    assert run.most_at_once == 4
    assert "most clients served at the same time: 4" in str(run)


def test_a_failing_server_is_raised_in_the_callers_thread() -> None:
    def broken(listener: socket.socket, timeline: Timeline, clients: int) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        run_clients(broken, 2, hold=0.1)


@pytest.mark.parametrize(
    ("clients", "hold"), [(0, 0.4), (7, 0.4), (2, 0.0), (2, 2.0), (2.5, 0.4), (True, 0.4)]
)
def test_out_of_range_settings_are_refused(clients: object, hold: object) -> None:
    with pytest.raises(ValueError):
        run_clients(blocking_echo_server, clients, hold=hold)  # type: ignore[arg-type]


def test_the_widget_runs_the_chosen_server_and_shows_a_report_and_a_plot() -> None:
    room = waiting_room(SERVERS, clients=2, hold=0.1)
    try:
        assert repr(room) == "<WaitingRoom: servers blocking, selectors; not run yet>"
        assert room.text() == "not run yet"
        room.run_button.click()
        assert room.text().splitlines()[2] == "client-2: echo after 1 other client left"
        kinds = [o["output_type"] for o in room.out.outputs]
        assert kinds == ["stream", "display_data"]
        assert "image/png" in room.out.outputs[1]["data"]
        room.server.value = "selectors"
        room.clients.value = 3
        run = room.run()
        assert run is not None and run.most_at_once == 3
        assert (
            repr(room)
            == "<WaitingRoom: servers blocking, selectors; last run: selectors server, 3 clients>"
        )
        assert room._repr_mimebundle_()["text/plain"] == repr(room)
    finally:
        room.close()
    assert "application/vnd.jupyter.widget-view+json" not in room._repr_mimebundle_()


def test_the_widget_shows_a_failure_as_one_line() -> None:
    def broken(listener: socket.socket, timeline: Timeline, clients: int) -> None:
        raise RuntimeError("boom")

    room = waiting_room({"broken": broken}, clients=1, hold=0.1)
    try:
        assert room.run() is None
        assert room.text() == "run failed: RuntimeError: boom"
        assert [o["output_type"] for o in room.out.outputs] == ["stream"]
    finally:
        room.close()


def test_the_widget_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least one"):
        waiting_room({})
    with pytest.raises(ValueError, match="server must be one of"):
        waiting_room(SERVERS, server="threads")
    with pytest.raises(TypeError, match="must be a server function"):
        waiting_room({"x": 42})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="clients"):
        waiting_room(SERVERS, clients=9)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"clients": 0}, "clients must be an int in 1..6, got 0"),
        ({"clients": 2.0}, "clients must be an int in 1..6, got 2.0"),
        ({"hold": 2}, "hold must be a number in 0.1..1, got 2"),
        ({"hold": True}, "hold must be a number in 0.1..1, got True"),
    ],
)
def test_run_clients_names_the_bad_value(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        run_clients(blocking_echo_server, **kwargs)  # type: ignore[arg-type]
