"""`core.transcript`: reading a seed program's lines as events, and tidying a log. No sockets."""

from __future__ import annotations

import pytest

from echo_lib.core.transcript import LineReader, collapse, format_log, one_line, tidy, where


def test_a_server_s_lines_land_on_the_connection_they_are_about() -> None:
    reader = LineReader("server")
    assert reader.event("accept(('127.0.0.1', 5001))") == ("accept", "server", 0, "conn-1")
    assert reader.event("accept(('127.0.0.1', 5002))") == ("accept", "server", 0, "conn-2")
    assert reader.event("read(('127.0.0.1', 5001))")[:2] == ("log", "server")
    assert reader.event("  received b'hello'") == ("recv", "server/conn-1", 5, "")
    assert reader.event("  closing") == ("close", "server/conn-1", 0, "peer closed")
    reader.event("read(('127.0.0.1', 5002))")
    assert reader.event("sending bytes 0..14 of 42") == ("send", "server/conn-2", 14, "")


def test_a_client_s_lines_are_its_own_and_plain_lines_stay_log_lines() -> None:
    reader = LineReader("client")
    assert reader.event("connecting to 127.0.0.1 port 5001") == ("connect", "client", 0, "")
    assert reader.event("  sending b'It will be repeated.'") == ("send", "client", 20, "")
    assert reader.event("waiting for I/O") == ("log", "client", 0, "waiting for I/O")


def test_tidy_hides_ports_and_cuts_long_bytes_short() -> None:
    assert tidy("client(('127.0.0.1', 40123))") == "client(('127.0.0.1', PORT))"
    assert tidy("starting up on 127.0.0.1 port 40123") == "starting up on 127.0.0.1 port PORT"
    assert tidy(f"  received {b'x' * 100!r}") == "  received b'xxxxxxxxxxxxxxxx'... (100 bytes)"
    assert tidy("  received b'short'") == "  received b'short'"


def test_collapse_shows_a_repeated_row_once() -> None:
    rows = [("a", "x"), ("a", "x"), ("a", "x"), ("b", "x"), ("a", "x")]
    assert collapse(rows) == [("a", "x  (repeated)"), ("b", "x"), ("a", "x")]


def test_format_log_aligns_actors_and_keeps_the_last_lines() -> None:
    rows = [("server", "one"), ("client", "two"), ("s", "three")]
    assert format_log(rows) == "server | one\nclient | two\ns      | three"
    assert format_log(rows, last=1) == "s | three"
    assert format_log(rows, last=0) == format_log([]) == "(nothing said)"


def test_one_line_is_type_and_message_on_one_line() -> None:
    assert one_line(KeyError("boom")) == "KeyError: 'boom'"
    assert one_line(OSError("two\n  lines")) == "OSError: two lines"
    assert one_line(ValueError()) == "ValueError"


def test_where_names_the_innermost_frame_not_skipped() -> None:
    def inner() -> None:
        raise RuntimeError("here")  # a comment that is left out

    def machinery() -> None:
        inner()

    with pytest.raises(RuntimeError) as info:
        machinery()
    assert where(info.value) == ' (in inner(): raise RuntimeError("here"))'
    assert where(info.value, skip=["inner"]) == " (in machinery(): inner())"
    assert where(RuntimeError("never raised")) == ""
