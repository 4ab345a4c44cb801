"""Notebook 05 (the classic echo pair): its lesson module, its fault lab, its exercises.

The solutions pass their checkers; plausible mistakes get the specific
message; the seed's programs behave as the notebook says, the same way on
every run.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import sys
from pathlib import Path

import pytest

from echo_lib.exercises.classic import check_buffered_echo, check_prediction, check_should_stop
from echo_lib.lessons.classic.faults import FAULTS, VERSIONS, fault_table, run_fault
from echo_lib.lessons.classic.lab import fault_lab
from echo_lib.stage.seed import chunked_echo_server, classic_client, classic_server
from echo_lib.stage.stage import Stage
from echo_lib.view.source import edit, source

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "notebooks" / "solutions"))
import classic as solutions  # noqa: E402  (notebooks/solutions/classic.py)

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE

# The log of the seed's pair on a turn-taking stage, ports aside. The seed chapter
# prints no output for its pair: this order comes from the turn-taking alone.
TURN_TAKING_LOG = """\
server | starting up on 127.0.0.1 port PORT
server | waiting for I/O
client | connecting to 127.0.0.1 port PORT
client | waiting for I/O
client | client(('127.0.0.1', PORT))
client |   ready to write
client |   sending b'This is the message.  '
client | waiting for I/O
client | client(('127.0.0.1', PORT))
client |   ready to write
client |   sending b'It will be repeated.'
client | waiting for I/O
client | client(('127.0.0.1', PORT))
client |   ready to write
client |   switching to read-only
client | waiting for I/O
server | accept(('127.0.0.1', PORT))
server | waiting for I/O
server | read(('127.0.0.1', PORT))
server |   received b'This is the message.  It will be repeated.'
server | waiting for I/O
client | client(('127.0.0.1', PORT))
client |   ready to read
client |   received b'This is the message.  It will be repeated.'
client | shutting down
server | read(('127.0.0.1', PORT))
server |   closing
server | shutting down"""


# -- the lesson module -----------------------------------------------------------------


def _classic_pair() -> Stage:
    stage = Stage()
    with socket.socket() as listener, socket.socket() as sock:
        listener.bind(("127.0.0.1", 0))
        stage.start("server", classic_server, listener)
        stage.start("client", classic_client, listener.getsockname(), sock)
        stage.join()
    return stage


def test_section_3_running_the_pair_as_written_logs_the_same_every_time() -> None:
    for _ in range(3):
        stage = _classic_pair()
        assert stage.log() == TURN_TAKING_LOG
        assert stage.timeline.bytes_moved("client") == {"recv": 42, "send": 42}
        assert [r.error for r in stage._runners.values()] == [None, None]


def test_the_seed_client_loses_the_second_piece_of_a_chunked_echo() -> None:
    stage = Stage()
    with socket.socket() as listener, socket.socket() as sock:
        listener.bind(("127.0.0.1", 0))
        stage.start("server", chunked_echo_server, listener)
        stage.start("client", classic_client, listener.getsockname(), sock)
        stage.join()
    assert stage.timeline.bytes_moved("client") == {"recv": 21, "send": 42}
    assert (
        stage.log("server").splitlines()[-1]
        == "server | the client closed the connection: 21 bytes never sent"
    )


@pytest.mark.parametrize(
    ("fault", "version", "verdict"),
    [
        (1, "classic", "served 1 of 2 clients in a row; the server stopped after the first"),
        (1, "fixed", "served 3 of 3 clients in a row"),
        (
            2,
            "classic",
            "the server died: BlockingIOError: [Errno 11] Resource temporarily unavailable",
        ),
        (2, "fixed", "the client got 4194304 of 4194304 bytes back, unchanged"),
        (3, "classic", "the client sent 42 bytes and stopped after 21: 21 bytes lost"),
        (3, "fixed", "client: sent 42 bytes, received 42 bytes: complete"),
        (4, "classic", "the second bind failed: OSError: [Errno 98] Address already in use"),
        (4, "fixed", "two servers on port 0 got different ports: True"),
        (5, "classic", "the server died: OSError: [Errno 107] Transport endpoint is not connected"),
        (5, "fixed", "after the reset, the next client: complete"),
    ],
)
def test_each_fault_shows_as_the_notebook_says(fault: int, version: str, verdict: str) -> None:
    outcome = run_fault(fault, version)
    assert outcome.verdict == verdict
    assert outcome.text().startswith(f"fault {fault}, {version}: {verdict}")
    assert len(outcome.timeline) > 0


def test_fault_2_fixed_adds_and_drops_event_write() -> None:
    details = run_fault(2, "fixed").details.splitlines()
    assert details[:3] == [
        "first modify(): READ → READ|WRITE",
        "mask after the last modify(): READ",
        "EVENT_WRITE was added and dropped again: True",
    ]


def test_fault_1_classic_refuses_the_second_client() -> None:
    assert (
        "client-2: raised ConnectionRefusedError: [Errno 111] Connection refused"
        in run_fault(1, "classic").details
    )


def test_run_fault_rejects_unknown_faults_and_versions() -> None:
    with pytest.raises(ValueError, match="fault must be one of"):
        run_fault(6, "classic")
    with pytest.raises(ValueError, match="version must be"):
        run_fault(1, "seed")


def test_the_fault_table_has_a_row_per_fault() -> None:
    outcomes = [run_fault(f, v) for f in (3, 4) for v in VERSIONS]
    table = fault_table(outcomes)
    assert table.splitlines()[0].split() == ["fault", "seed", "(classic)", "echo_lib", "(fixed)"]
    assert "21 bytes lost" in table and "Address already in use" in table
    lines = table.splitlines()
    assert set(lines[1]) == {"-", " "}  # the rule under the header
    not_run = next(line for line in lines if line.startswith("1. stops after its first client"))
    assert not_run.split("client")[-1].split() == ["-", "-"]  # faults 1 and 2 were not run here


def test_source_shows_a_part_and_names_a_missing_marker() -> None:
    part = source(classic_server, "def accept", "server_address =")
    assert repr(part).splitlines()[0] == "def accept(sock, mask):"
    assert part._repr_markdown_().startswith("```python\ndef accept")
    with pytest.raises(ValueError, match="'no such line' is not in the source of 'classic_server'"):
        source(classic_server, "no such line")


def test_a_program_error_is_kept_logged_and_raised_only_when_asked() -> None:
    def broken(say) -> None:
        say("about to fail")
        raise KeyError("boom")

    stage = Stage()
    runner = stage.start("broken", broken)
    stage.join()
    assert isinstance(runner.error, KeyError) and runner.error.__traceback__ is None
    assert (
        stage.log()
        == "broken | about to fail\nbroken | raised KeyError: 'boom' (in broken(): raise "
        'KeyError("boom"))'
    )
    with pytest.raises(ValueError, match="already on this stage"):
        stage.start("broken", broken)


# -- the fault lab -----------------------------------------------------------------------


def test_the_fault_lab_runs_and_shows_text_and_a_plot() -> None:
    lab = fault_lab(3, "fixed")
    try:
        assert (
            repr(lab) == "<FaultLab: fault 3 (client stops at the first piece), fixed; not run yet>"
        )
        assert lab.text() == "not run yet"
        text = lab.run()
        assert (
            text.splitlines()[0]
            == "fault 3, fixed: client: sent 42 bytes, received 42 bytes: complete"
        )
        assert text.endswith("(the fault: an echo that arrives in two pieces is half lost)")
        kinds = [o["output_type"] for o in lab.out.outputs]
        assert kinds == ["display_data", "stream"]
        assert "image/png" in lab.out.outputs[0]["data"]
        assert lab._repr_mimebundle_()["text/plain"].endswith(
            "last run: client: sent 42 bytes, received 42 bytes: complete>"
        )
        lab.choose(4, "classic")
        assert lab.run().startswith("fault 4, classic: the second bind failed")
        with pytest.raises(ValueError, match="expected a fault"):
            lab.choose(9, "classic")
    finally:
        lab.close()
    assert "application/vnd.jupyter.widget-view+json" not in lab._repr_mimebundle_()


def test_fault_lab_rejects_a_bad_start() -> None:
    with pytest.raises(ValueError, match="expected a fault"):
        fault_lab(1, "modern")


def test_every_fault_has_a_name_and_both_versions_exist() -> None:
    assert sorted(FAULTS) == [1, 2, 3, 4, 5] and VERSIONS == ("classic", "fixed")


# -- exercise 2: the stop test -------------------------------------------------------------


def test_the_stop_test_solution_passes() -> None:
    assert str(check_should_stop(solutions.should_stop)) == "✔ should_stop: all checks passed"


def test_the_seeds_stop_test_loses_28_bytes_and_spins_at_an_eof_with_nothing_back() -> None:
    def seed(bytes_sent: int, bytes_received: int, data: bytes) -> object:
        return data or (bytes_received and bytes_received == bytes_sent)

    assert str(check_should_stop(seed)) == (
        "✘ should_stop: 2 problems\n"
        "  - with the echo in 3 pieces of 14 bytes, the client stopped after 14 of 42 bytes: 28 "
        "bytes lost\n"
        "  - when the server closed the connection without echoing a byte (as a server that died "
        "would), the client did not stop: "
        "select() kept reporting READ and recv() kept returning b'' until the deadline "
        "(EOF stays readable: b'' means the peer closed, stop whatever the counts say)"
    )


def test_a_stop_test_that_needs_some_bytes_before_eof_counts_spins_when_none_came_back() -> None:
    def needs_bytes(bytes_sent: int, bytes_received: int, data: bytes) -> object:
        return bytes_received == bytes_sent or (bytes_received and not data)

    text = str(check_should_stop(needs_bytes))
    assert text.startswith("✘ should_stop: 1 problem\n")
    assert (
        "when the server closed the connection without echoing a byte (as a server that died "
        "would), the client did not stop" in text
    )


def test_a_stop_test_without_eof_loops_until_the_deadline() -> None:
    text = str(check_should_stop(lambda sent, received, data: received == sent))
    assert (
        "when the server closed the connection after 21 of 42 bytes, the client did not stop"
        in text
    )


def test_a_stop_test_that_waits_for_eof_never_stops() -> None:
    text = str(check_should_stop(lambda sent, received, data: not data))
    assert (
        "all 42 bytes came back but the client did not stop: it waited until its 0.5 s deadline"
        in text
    )


def test_a_stop_test_that_raises_is_named() -> None:
    def stub(bytes_sent: int, bytes_received: int, data: bytes) -> bool:
        raise NotImplementedError("your code here")

    assert (
        str(check_should_stop(stub))
        == "✘ should_stop: 1 problem\n  - should_stop raised NotImplementedError: your code here"
    )


# -- exercise 3: buffered sends ----------------------------------------------------------------


def test_the_buffered_echo_solution_passes() -> None:
    assert str(check_buffered_echo(solutions.on_ready)) == "✔ on_ready: all checks passed"


def _send_pending(connection: socket.socket, pending: bytearray) -> None:
    with contextlib.suppress(BlockingIOError):
        del pending[: connection.send(pending)]


def test_sendall_raises_blocking_io_error() -> None:
    def classic_read(mysel, connection, mask, pending) -> None:
        data = connection.recv(1024)
        if data:
            connection.sendall(data)
        else:
            mysel.unregister(connection)
            connection.close()

    text = str(check_buffered_echo(classic_read))
    assert (
        "on_ready raised BlockingIOError: [Errno 11] Resource temporarily unavailable (in "
        "classic_read(): connection.sendall(data))" in text
    )
    assert "send() what it takes and keep the rest in pending" in text


def test_leaving_event_write_registered_is_a_busy_loop() -> None:
    def spinner(mysel, connection, mask, pending) -> None:
        if mask & READ:
            data = connection.recv(65536)
            if not data:
                mysel.unregister(connection)
                connection.close()
                return
            pending += data
        _send_pending(connection, pending)
        mysel.modify(connection, READ | WRITE)

    text = str(check_buffered_echo(spinner))
    assert (
        "with nothing pending: a busy loop; drop EVENT_WRITE with modify() once pending is empty"
        in text
    )


def test_never_registering_event_write_stalls_the_echo() -> None:
    def no_write(mysel, connection, mask, pending) -> None:
        data = connection.recv(65536)
        if not data:
            mysel.unregister(connection)
            connection.close()
            return
        pending += data
        _send_pending(connection, pending)

    text = str(check_buffered_echo(no_write))
    assert (
        "of 2097152 bytes back; " in text
        and "bytes were still pending on the server: register EVENT_WRITE" in text
    )


def test_ignoring_eof_leaves_the_connection_open() -> None:
    def no_close(mysel, connection, mask, pending) -> None:
        if mask & READ:
            pending += connection.recv(65536)
        _send_pending(connection, pending)
        mysel.modify(connection, (READ | WRITE) if pending else READ)

    assert "after the client closed, the connection stayed open" in str(
        check_buffered_echo(no_close)
    )


def test_closing_without_unregistering_is_named() -> None:
    def close_only(mysel, connection, mask, pending) -> None:
        if mask & READ:
            data = connection.recv(65536)
            if not data:
                connection.close()
                return
            pending += data
        _send_pending(connection, pending)
        mysel.modify(connection, (READ | WRITE) if pending else READ)

    assert "closed but is still registered: call mysel.unregister(connection)" in str(
        check_buffered_echo(close_only)
    )


def test_a_stub_that_raises_is_named() -> None:
    def stub(mysel, connection, mask, pending) -> None:
        raise NotImplementedError("your code here")

    assert (
        str(check_buffered_echo(stub))
        == "✘ on_ready: 1 problem\n  - on_ready raised NotImplementedError: your code here"
    )


def test_closing_at_eof_throws_away_the_echo_owed_to_a_half_closed_client() -> None:
    def close_at_eof(mysel, connection, mask, pending) -> None:
        if mask & READ:
            data = connection.recv(65536)
            if not data:  # the old spec: at EOF unregister and close, whatever is pending
                mysel.unregister(connection)
                connection.close()
                return
            pending += data
        _send_pending(connection, pending)
        wanted = (READ | WRITE) if pending else READ
        if mysel.get_key(connection).events != wanted:
            mysel.modify(connection, wanted)

    text = str(check_buffered_echo(close_at_eof))
    assert text.startswith(
        "✘ on_ready: 1 problem\n  - a client that half-closed (shutdown(SHUT_WR)) got "
    )
    assert "of 1048576 bytes back: the server closed at EOF with " in text
    assert (
        "bytes still owed; at EOF stop reading, send what is pending, and close only once it is "
        "empty" in text
    )


# -- exercise 1: the prediction ----------------------------------------------------------------


def test_the_right_prediction_passes_against_the_seeds_client() -> None:
    assert str(check_prediction(solutions.predicted_bytes)) == "✔ prediction: all checks passed"


def test_a_wrong_prediction_is_told_what_happened_and_why() -> None:
    assert str(check_prediction(42)) == (
        "✘ prediction: 1 problem\n  - you predicted 42 bytes; the client received 14 of 42: "
        "keep_running = not (data or ...) is False after the first recv() that returns any bytes"
    )


@pytest.mark.parametrize("guess", ["14", 14.0, True, None])
def test_a_prediction_that_is_not_an_int_is_named(guess: object) -> None:
    assert (
        str(check_prediction(guess))
        == f"✘ prediction: 1 problem\n  - predict a number of bytes (an int), got {guess!r}"
    )


def test_the_prediction_runs_the_learners_own_client() -> None:
    assert str(check_prediction(42, client=_fixed_client())) == "✔ prediction: all checks passed"


def _fixed_client():
    return edit(classic_client, "data or\n", "not data or\n")


def test_a_wrong_prediction_about_a_fixed_client_is_told_it_waits_for_the_whole_echo() -> None:
    assert str(check_prediction(14, client=_fixed_client())) == (
        "✘ prediction: 1 problem\n  - you predicted 14 bytes; the client received 42 of 42: this "
        "client's stop test waits for the whole echo"
    )
