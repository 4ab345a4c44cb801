"""Claims notebook 05 (the classic echo pair) makes, each named after its section.

The selector claims run on every selector class this platform has; the
seed's programs run on a turn-taking `Stage`, so that every run
interleaves the same way.
"""

from __future__ import annotations

import errno
import inspect
import json
import selectors
import socket
import textwrap
from pathlib import Path

import pytest

from echo_lib.driver.sockets import LINGER_ZERO
from echo_lib.stage.seed import classic_client, classic_server, closing_server, resetting_client
from echo_lib.stage.stage import Stage
from echo_lib.view.source import edit

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "05-the-classic-echo-pair.ipynb"
READ = selectors.EVENT_READ

# The edits the notebook makes, as it makes them (sections 4 and 8).
DELETE_THE_STOP = (
    "            # Tell the main loop to stop\n            keep_running = False\n",
    "",
)
CATCH_THE_RESET = (
    "        client_address = connection.getpeername()\n"
    "        say('read({})'.format(client_address))\n"
    "        data = connection.recv(1024)\n",
    "        try:\n"
    "            client_address = connection.getpeername()\n"
    "            say('read({})'.format(client_address))\n"
    "            data = connection.recv(1024)\n"
    "        except OSError as error:  # fixed: a reset ends this connection, not the server\n"
    "            say('  {}: the client reset the connection'.format(type(error).__name__))\n"
    "            data = b''\n",
)


def _cells() -> list[str]:
    return ["".join(cell["source"]) for cell in json.loads(NOTEBOOK.read_text())["cells"]]


# -- sections 1 and 2: the programs are cells the learner can edit ------------------------------


@pytest.mark.parametrize("program", [classic_server, classic_client])
def test_sections_1_and_2_the_cells_hold_the_programs_the_library_runs(program) -> None:
    """The lab and the checkers run the library's copy: it must be the notebook's, line for line."""
    assert textwrap.dedent(inspect.getsource(program)).strip("\n") in _cells()


def test_sections_4_and_8_the_notebook_makes_the_edits_tested_here() -> None:
    text = "\n".join(_cells())
    for old, new in (DELETE_THE_STOP, CATCH_THE_RESET):
        assert old in text and new in text


# -- section 4: fault 1 ---------------------------------------------------------------------------


def _two_clients(server, *, in_a_row: bool) -> Stage:
    """Two seed clients; ``in_a_row``: the second starts once the stage has run the first."""
    stage = Stage(max_wait=0.2)
    with socket.socket() as listener, socket.socket() as first, socket.socket() as second:
        listener.bind(("127.0.0.1", 0))
        address = listener.getsockname()
        stage.start("server", server, listener, seconds=1.0)
        stage.start("client-1", classic_client, address, first)
        if in_a_row:
            stage.join()
        stage.start("client-2", classic_client, address, second)
        stage.join()
    return stage


def test_section_4_fault_1_the_seed_server_refuses_the_second_client() -> None:
    stage = _two_clients(classic_server, in_a_row=True)
    assert stage.timeline.bytes_moved("client-1") == {"recv": 42, "send": 42}
    assert "ConnectionRefusedError" in stage.log("client-2")


def test_section_4_fault_1_deleting_the_stop_serves_the_second_client() -> None:
    stage = _two_clients(edit(classic_server, *DELETE_THE_STOP), in_a_row=False)
    assert stage.timeline.bytes_moved("client-1") == {"recv": 42, "send": 42}
    assert stage.timeline.bytes_moved("client-2") == {"recv": 42, "send": 42}


# -- section 6: fault 3, the second half ----------------------------------------------------------


def test_section_6_eof_is_level_triggered_on_every_selector(selector_name: str) -> None:
    """Once the peer has closed, every select() reports READ at once, every recv() gives b''."""
    sock, peer = socket.socketpair()
    with sock, getattr(selectors, selector_name)() as sel:
        peer.close()
        sel.register(sock, READ)
        for _ in range(50):
            assert [(key.fileobj, mask) for key, mask in sel.select(timeout=5)] == [(sock, READ)]
            assert sock.recv(1024) == b""


def test_section_6_fault_3_the_seed_client_spins_when_nothing_comes_back() -> None:
    stage = Stage()
    with socket.socket() as listener, socket.socket() as sock:
        listener.bind(("127.0.0.1", 0))
        stage.start("server", closing_server, listener, echo=0)
        client = stage.start("client", classic_client, listener.getsockname(), sock, seconds=0.5)
        stage.join()
    assert client.error is None
    wakeups = stage.timeline.events("client", "select")
    # A waiting client wakes at most once in 0.5 s (select(timeout=1)); a spinning one, at once.
    assert len(wakeups) > 100
    assert sum(e.nbytes == 0 for e in wakeups) == 0
    assert stage.timeline.bytes_moved("client") == {"recv": 0, "send": 42}
    assert stage.log("client", last=1) == "client | shutting down"


# -- section 8: fault 5 ---------------------------------------------------------------------------


def test_section_8_a_reset_socket_is_readable_and_its_calls_raise(selector_name: str) -> None:
    with (
        socket.create_server(("127.0.0.1", 0)) as listener,
        socket.create_connection(listener.getsockname()) as client,
    ):
        conn, _ = listener.accept()
        with conn, getattr(selectors, selector_name)() as sel:
            client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_ZERO)
            client.close()  # RST, not FIN
            sel.register(conn, READ)
            assert [mask for _, mask in sel.select(timeout=5)] == [READ]
            with pytest.raises(OSError) as info:
                conn.getpeername()
            assert info.value.errno == errno.ENOTCONN
            with pytest.raises(ConnectionResetError):
                conn.recv(1024)


def test_section_8_fault_5_a_reset_kills_the_seed_server() -> None:
    stage = Stage()
    with socket.socket() as listener, socket.socket() as sock:
        listener.bind(("127.0.0.1", 0))
        server = stage.start("server", classic_server, listener)
        stage.start("client", resetting_client, listener.getsockname(), sock)
        stage.join()
    assert isinstance(server.error, OSError)
    assert server.where == " (in read(): client_address = connection.getpeername())"


def test_section_8_fault_5_catching_oserror_keeps_serving_the_next_client() -> None:
    robust = edit(edit(classic_server, *DELETE_THE_STOP), *CATCH_THE_RESET)
    stage = Stage(max_wait=0.2)
    with socket.socket() as listener, socket.socket() as resetter, socket.socket() as sock:
        listener.bind(("127.0.0.1", 0))
        server = stage.start("server", robust, listener, seconds=1.0)
        stage.start("resetter", resetting_client, listener.getsockname(), resetter)
        stage.start("client", classic_client, listener.getsockname(), sock)
        stage.join()
    assert server.error is None
    assert "server |   OSError: the client reset the connection" in stage.log("server")
    assert stage.timeline.bytes_moved("client") == {"recv": 42, "send": 42}


# -- edit(): the fixes as edits -------------------------------------------------------------------


def test_edit_shows_a_diff_and_leaves_the_original_alone() -> None:
    served = edit(classic_server, *DELETE_THE_STOP)
    assert repr(served).splitlines()[1:] == [
        "             connection.close()",
        "-            # Tell the main loop to stop",
        "-            keep_running = False",
        " ",
    ]
    assert served._repr_markdown_().startswith("```diff\n@@ ")
    assert "keep_running = False" in inspect.getsource(classic_server)
    assert (
        inspect.signature(served) == inspect.signature(classic_server)
        and served.__name__ == "classic_server"
    )


def test_edit_names_text_that_is_missing_or_repeated() -> None:
    with pytest.raises(
        ValueError, match=r"must occur once in classic_server\(\), found 0 times: 'no such line'"
    ):
        edit(classic_server, "no such line", "")
    with pytest.raises(ValueError, match=r"found [2-9] times: 'say\('"):
        edit(classic_server, "say(", "print(")


def test_an_edited_program_shows_its_edited_line_in_a_traceback() -> None:
    broken = edit(
        classic_server,
        "        data = connection.recv(1024)\n",
        "        data = connection.recv(1024) / 0\n",
    )
    stage = Stage()
    with socket.socket() as listener, socket.socket() as sock:
        listener.bind(("127.0.0.1", 0))
        server = stage.start("server", broken, listener)
        stage.start("client", classic_client, listener.getsockname(), sock, seconds=0.5)
        stage.join()
    assert isinstance(server.error, TypeError)
    assert server.where == " (in read(): data = connection.recv(1024) / 0)"


# -- section 2: why the client calls modify() -----------------------------------------------------


def test_section_2_a_connected_socket_registered_for_write_is_reported_on_every_pass(
    selector_name: str,
) -> None:
    """Without the client's modify() to READ, every select() returns at once: a busy loop."""
    sock, peer = socket.socketpair()
    with sock, peer, getattr(selectors, selector_name)() as sel:
        sel.register(sock, READ | selectors.EVENT_WRITE)
        for _ in range(50):
            assert [mask for _, mask in sel.select(timeout=5)] == [selectors.EVENT_WRITE]
        sel.modify(sock, READ)
        assert sel.select(timeout=0.02) == []


# -- section 5: fault 2 ---------------------------------------------------------------------------


def test_section_5_fault_2_sendall_on_a_full_non_blocking_socket_raises_blocking_io_error() -> None:
    sock, peer = socket.socketpair()
    with sock, peer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):
            sock.sendall(bytes(4 << 20))  # nobody reads: the buffers fill, and sendall() gives up
