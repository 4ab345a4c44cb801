"""The exercises of 04-modify (solutions pass, likely mistakes are named), its backpressure lab."""

from __future__ import annotations

import gc
import selectors
import socket
import sys
from collections import deque
from pathlib import Path

import pytest

from echo_lib import EchoConnection
from echo_lib.exercises.modify import check_on_writable, check_update_registration
from echo_lib.lessons.modify import BackpressureLab, backpressure_lab

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "notebooks" / "solutions"))
from modify import on_writable, update_registration  # noqa: E402

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


def _wanted(conn: EchoConnection) -> int:
    return (READ if conn.wants_read else 0) | (WRITE if conn.wants_write else 0)


# -- exercise 1: update_registration ---------------------------------------------


def test_update_registration_solution_passes() -> None:
    feedback = check_update_registration(update_registration)
    assert feedback.passed, str(feedback)
    assert str(feedback) == "✔ update_registration: all checks passed"


def test_modifying_every_time_is_counted() -> None:
    def always(sel: selectors.BaseSelector, sock: socket.socket, conn: EchoConnection) -> None:
        if _wanted(conn):
            sel.modify(sock, _wanted(conn), sel.get_key(sock).data)
        else:
            sel.unregister(sock)

    assert (
        "for a new connection, modify() was called once, expected never: call it only when the "
        "mask changes" in str(check_update_registration(always))
    )


def test_dropping_the_data_is_caught() -> None:
    def no_data(sel: selectors.BaseSelector, sock: socket.socket, conn: EchoConnection) -> None:
        if not _wanted(conn):
            sel.unregister(sock)
        elif _wanted(conn) != sel.get_key(sock).events:
            sel.modify(sock, _wanted(conn))

    assert "after receive_data(b'hello'), the key's data became None: pass key.data along" in str(
        check_update_registration(no_data)
    )


def test_no_backpressure_is_caught() -> None:
    def reads_on(sel: selectors.BaseSelector, sock: socket.socket, conn: EchoConnection) -> None:
        wanted = (0 if conn.peer_eof else READ) | (WRITE if conn.wants_write else 0)
        if not wanted:
            sel.unregister(sock)
        elif wanted != sel.get_key(sock).events:
            sel.modify(sock, wanted, sel.get_key(sock).data)

    assert (
        "after receive_data(b'world') filled the buffer (max_buffer=8), it is registered for "
        "READ|WRITE, expected WRITE" in str(check_update_registration(reads_on))
    )


def test_modify_to_nothing_instead_of_unregister_is_caught() -> None:
    def never_unregisters(
        sel: selectors.BaseSelector, sock: socket.socket, conn: EchoConnection
    ) -> None:
        key = sel.get_key(sock)
        if _wanted(conn) != key.events:
            sel.modify(sock, _wanted(conn), key.data)

    text = str(check_update_registration(never_unregisters))
    assert "after sent(3) finished the echo, the socket is still registered for" in text
    assert "with nothing wanted, unregister() it" in text


def test_update_registration_stub_reports_not_implemented() -> None:
    def stub(sel: selectors.BaseSelector, sock: socket.socket, conn: EchoConnection) -> None:
        raise NotImplementedError("your code here")

    assert str(check_update_registration(stub)) == (
        "✘ update_registration: 1 problem\n  - for a new connection, it raised "
        "NotImplementedError: your code here"
    )


# -- exercise 2: on_writable -------------------------------------------------------


def test_on_writable_solution_passes() -> None:
    feedback = check_on_writable(on_writable)
    assert feedback.passed, str(feedback)


def test_the_seeds_pop_sends_in_reverse_order() -> None:
    def pops_last(sel: selectors.BaseSelector, sock: socket.socket, outgoing: deque[bytes]) -> None:
        if not outgoing:
            sel.modify(sock, READ, sel.get_key(sock).data)
            return
        message = outgoing.pop()
        sent = sock.send(message)
        if sent < len(message):
            outgoing.append(message[sent:])

    assert "the echo came back in another order: send the messages first to last" in str(
        check_on_writable(pops_last)
    )


def test_sendall_on_a_non_blocking_socket_is_caught() -> None:
    def sendall(sel: selectors.BaseSelector, sock: socket.socket, outgoing: deque[bytes]) -> None:
        if not outgoing:
            sel.modify(sock, READ, sel.get_key(sock).data)
            return
        sock.sendall(outgoing.popleft())

    assert "it raised BlockingIOError" in str(check_on_writable(sendall))


def test_dropping_the_unsent_rest_is_caught() -> None:
    def drops_rest(
        sel: selectors.BaseSelector, sock: socket.socket, outgoing: deque[bytes]
    ) -> None:
        if not outgoing:
            sel.modify(sock, READ, sel.get_key(sock).data)
            return
        sock.send(outgoing.popleft())

    text = str(check_on_writable(drops_rest))
    assert (
        "bytes never came back: after a partial send(), keep the unsent rest at the front of "
        "outgoing" in text
    )


def test_never_switching_to_read_is_a_busy_loop() -> None:
    def never_switches(
        sel: selectors.BaseSelector, sock: socket.socket, outgoing: deque[bytes]
    ) -> None:
        if outgoing:
            sent = sock.send(outgoing[0])
            if sent < len(outgoing[0]):
                outgoing[0] = outgoing[0][sent:]
            else:
                outgoing.popleft()

    text = str(check_on_writable(never_switches))
    assert "it never switched to EVENT_READ: select() reported the socket writable" in text


def test_switching_without_the_data_is_caught() -> None:
    def no_data(sel: selectors.BaseSelector, sock: socket.socket, outgoing: deque[bytes]) -> None:
        if not outgoing:
            sel.modify(sock, READ)
            return
        sent = sock.send(outgoing[0])
        if sent < len(outgoing[0]):
            outgoing[0] = outgoing[0][sent:]
        else:
            outgoing.popleft()

    assert "after modify() the key's data was None: pass key.data along" in str(
        check_on_writable(no_data)
    )


# -- the backpressure lab ------------------------------------------------------------


def test_the_lab_pauses_and_resumes_reading_and_echoes_everything() -> None:
    lab = backpressure_lab(max_buffer=8192, read_per_step=2048)
    summary = lab.run()
    assert lab.done and summary.splitlines()[0].endswith(
        "65536 of 65536 B back (every byte is back)"
    )
    details = lab.modify_details()
    assert details[:3] == ["READ → READ|WRITE", "READ|WRITE → WRITE", "WRITE → READ|WRITE"]
    assert details[-1] == "READ|WRITE → READ" and lab.mask == "READ"
    assert lab.read_paused() == details.count("READ|WRITE → WRITE") >= 1
    assert lab.peak <= lab.max_buffer + 4096


def test_the_lab_is_deterministic() -> None:
    def transcript(max_buffer: int, read_per_step: int) -> str:
        lab = backpressure_lab(max_buffer, read_per_step)
        lab.run()
        return lab.text()

    for max_buffer, read_per_step in ((8192, 2048), (1024, 256), (65536, 3072)):
        first = transcript(max_buffer, read_per_step)
        assert all(transcript(max_buffer, read_per_step) == first for _ in range(5)), (
            max_buffer,
            read_per_step,
        )


def test_a_reader_that_reads_nothing_leaves_the_server_waiting_for_write() -> None:
    lab = backpressure_lab(max_buffer=8192, read_per_step=0)
    try:
        summary = lab.run()
        assert lab.stuck and not lab.done and lab.mask == "WRITE"
        assert "0 of 65536 B back (stuck: nothing moves any more)" in summary
        assert lab.steps < 20, "stuck is detected within a few steps"
    finally:
        lab.close()
    with pytest.raises(RuntimeError, match="closed"):
        lab.step()


def test_a_fast_reader_never_needs_write() -> None:
    lab = backpressure_lab(max_buffer=4096, read_per_step=16384)
    lab.run()
    assert lab.done and lab.modify_details() == [] and lab.peak == 0


def test_each_step_line_shows_the_mask_and_the_buffer() -> None:
    lab = backpressure_lab(max_buffer=8192, read_per_step=2048)
    try:
        line = lab.step()
        assert line.startswith("step   1: READ ") and "buffer" in line and "reader has" in line
        assert lab.text().splitlines() == [
            "max_buffer 8192 B, the reader takes 2048 B per step, 65536 B to echo",
            line,
        ]
        assert (
            repr(lab)
            == "<BackpressureLab max_buffer=8192 read_per_step=2048: step 1, server mask READ, "
            "2048 of 65536 B back>"
        )
    finally:
        lab.close()


def test_the_widget_drives_the_lab_and_shows_its_lines() -> None:
    lab = backpressure_lab(max_buffer=4096, read_per_step=1024)
    try:
        ui = lab  # the lab is its widget's front: controls are its attributes
        bundle = lab._repr_mimebundle_()
        assert (
            bundle["text/plain"] == repr(lab)
            and "application/vnd.jupyter.widget-view+json" in bundle
        )
        ui.step_button.click()
        assert lab.steps == 1 and ui.out.outputs[-1]["text"] == lab.lines[-1] + "\n"
        ui.run_button.click()
        assert lab.done and ui.out.outputs[-1]["text"].startswith("after ")
        ui.read_per_step_slider.value = 0  # a slider starts over
        assert lab.read_per_step == 0 and lab.steps == 0
        assert [o["text"] for o in ui.out.outputs] == [line + "\n" for line in lab.lines]
        ui.max_buffer_slider.value = 2048
        ui.reset_button.click()
        assert lab.max_buffer == 2048 and lab.steps == 0
    finally:
        lab.close()
    assert lab.closed and lab.widget.comm is None
    with pytest.raises(RuntimeError, match="BackpressureLab is closed"):
        lab.reset()


def test_an_abandoned_lab_closes_its_sockets() -> None:
    lab = backpressure_lab()
    scenario, widget = lab._scenario, lab.widget
    assert scenario is not None
    del lab
    gc.collect()
    assert scenario.sock.fileno() == -1 and scenario.reader.fileno() == -1
    assert widget.comm is None


@pytest.mark.parametrize(
    ("max_buffer", "read_per_step"),
    [(0, 2048), (8192, -1), (8192, 20000), (True, 2048), (8192, 2048.0)],
)
def test_bad_settings_are_refused(max_buffer: object, read_per_step: object) -> None:
    with pytest.raises(ValueError, match="must be an int in"):
        BackpressureLab(max_buffer, read_per_step)  # type: ignore[arg-type]
