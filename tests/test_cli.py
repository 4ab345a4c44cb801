"""The command line: ``python -m echo_lib server|client``, the seed's two scripts done right.

The end-to-end tests run the server and the client as real subprocesses. The
server's stdout is read by a thread into a queue, so that learning its port
from the first line has a deadline; every subprocess is waited with a
timeout and killed in a ``finally``.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import queue
import re
import selectors
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from echo_lib import Event, available_selectors
from echo_lib.cli import main
from echo_lib.cli.lines import SHOW_LIMIT, seed_lines
from echo_lib.core.checks import (
    arg_type,
    check_port,
    int_arg,
    list_arg,
    number_arg,
    port_arg,
    seconds_arg,
)
from echo_lib.driver.implementations import SELECTOR_NAMES, resolve_selector

TIMEOUT = 15.0
READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
SEED_SENT = [b"This is the message.  ", b"It will be repeated."]  # the order the seed sends them
ADDRESS = ("127.0.0.1", 51234)
PEER = "('127.0.0.1', 51234)"


# -- helpers -------------------------------------------------------------------------


def cli(*args: str) -> list[str]:
    """The command line for ``python -m echo_lib ...``, unbuffered, warnings as errors."""
    return [sys.executable, "-u", "-W", "error", "-m", "echo_lib", *args]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI to the end (killed after `TIMEOUT`)."""
    return subprocess.run(cli(*args), capture_output=True, text=True, timeout=TIMEOUT)


@contextlib.contextmanager
def sigint_for_children(ignored: bool) -> Iterator[None]:
    """Start children with SIGINT ignored, or with its default action, whatever this process has.

    A disposition of SIG_IGN survives exec(); a Python handler becomes SIG_DFL.
    Shells start background jobs with SIGINT ignored, so this is what a
    server launched from one inherits.
    """
    before = signal.signal(signal.SIGINT, signal.SIG_IGN if ignored else signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before)


class ServerProcess:
    """``python -m echo_lib server`` in a subprocess; a thread queues its stdout lines.

    The child inherits SIGINT ignored with ``sigint_ignored=True``, else SIGINT's default.
    """

    def __init__(
        self, *args: str, sigint_ignored: bool = False, limit_fds: int | None = None
    ) -> None:
        pipe = subprocess.PIPE
        command = (
            cli("server", *args) if limit_fds is None else with_fd_limit(limit_fds, "server", *args)
        )
        with sigint_for_children(sigint_ignored):
            self.proc = subprocess.Popen(command, stdout=pipe, stderr=pipe, text=True)
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.reader = threading.Thread(target=self._read, name="cli-server-stdout", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def port(self) -> int:
        """The port from the first line, ``starting up on 127.0.0.1 port N``."""
        try:
            first = self.lines.get(timeout=TIMEOUT)
        except queue.Empty:
            pytest.fail(f"the server printed nothing within {TIMEOUT} s")
        match = re.fullmatch(r"starting up on 127\.0\.0\.1 port (\d+)", first or "")
        assert match, f"unexpected first line {first!r}"
        return int(match.group(1))

    def finish(self) -> tuple[int, list[str], str]:
        """Wait for the server to exit; return its exit code, the rest of stdout, stderr."""
        code = self.proc.wait(TIMEOUT)
        self.reader.join(TIMEOUT)
        assert self.proc.stderr is not None
        lines = list(iter(self.lines.get_nowait, None))
        return code, lines, self.proc.stderr.read()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(TIMEOUT)
        self.reader.join(TIMEOUT)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


def with_fd_limit(limit: int, *args: str) -> list[str]:
    """`cli` with RLIMIT_NOFILE lowered to ``limit`` first, as ``ulimit -n`` would."""
    code = (
        "import resource, runpy, sys; "
        "resource.setrlimit(resource.RLIMIT_NOFILE, "
        f"({limit}, resource.getrlimit(resource.RLIMIT_NOFILE)[1])); "
        f"sys.argv = ['echo_lib', *{list(args)!r}]; "
        "runpy.run_module('echo_lib', run_name='__main__', alter_sys=True)"
    )
    return [sys.executable, "-u", "-W", "error", "-c", code]


@contextlib.contextmanager
def server_process(
    *args: str, sigint_ignored: bool = False, limit_fds: int | None = None
) -> Iterator[ServerProcess]:
    server = ServerProcess(*args, sigint_ignored=sigint_ignored, limit_fds=limit_fds)
    try:
        yield server
    finally:
        server.close()


def lines_until(server: ServerProcess, prefix: str) -> list[str]:
    """The server's next lines, up to and including the first that starts with ``prefix``."""
    seen: list[str] = []
    while not (seen and seen[-1].startswith(prefix)):
        line = server.lines.get(timeout=TIMEOUT)
        assert line is not None, f"the server ended before printing {prefix!r}:\n" + "\n".join(seen)
        seen.append(line)
    return seen


def assert_in_order(lines: list[str], expected: list[str]) -> None:
    """Each expected line appears in ``lines``, in this order (others may come between)."""
    remaining = iter(lines)
    for wanted in expected:
        found = any(line == wanted for line in remaining)
        assert found, f"{wanted!r} missing, or out of order, in:\n" + "\n".join(lines)


def payloads(lines: list[str], verb: str) -> bytes:
    """The bytes of every short ``  <verb> b'...'`` line, joined."""
    prefix = f"  {verb} "
    return b"".join(
        ast.literal_eval(line[len(prefix) :]) for line in lines if line.startswith(prefix)
    )


def byte_count(lines: list[str], verb: str) -> int:
    """Bytes in every ``  <verb> ...`` line, short (``b'...'``) or cut (``... (N bytes)``)."""
    total = 0
    for line in lines:
        if line.startswith(f"  {verb} "):
            cut = re.search(r"\.\.\. \((\d+) bytes\)$", line)
            total += int(cut.group(1)) if cut else len(ast.literal_eval(line[len(verb) + 3 :]))
    return total


def free_port() -> int:
    """A port nothing listens on: bound, then closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read_exactly(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    for _ in range(n):
        if len(data) >= n:
            break
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def assert_one_line_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, result
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


# -- end to end ------------------------------------------------------------------------


def test_server_and_client_print_the_seeds_messages(selector_name: str) -> None:
    with server_process("--port", "0", "--once", "--selector", selector_name) as server:
        port = server.port()
        client = run_cli("client", "--port", str(port), "--selector", selector_name)
        code, lines, errors = server.finish()
    assert (client.returncode, client.stderr, code, errors) == (0, "", 0, "")
    out = client.stdout.splitlines()
    peer = f"('127.0.0.1', {port})"
    assert_in_order(out, [
        f"connecting to 127.0.0.1 port {port}", "waiting for I/O", f"client({peer})",
        "  ready to write", "  sending b'This is the message.  '",
        "waiting for I/O", f"client({peer})",
        "  ready to write", "  sending b'It will be repeated.'", "  ready to read",
    ])  # fmt: skip
    # If the whole echo is back in the step that sent the last message, the client
    # is done before it ever finds the socket writable again and switches to read-only.
    assert out.count("  switching to read-only") <= 1 and out[-1] == "shutting down"
    assert payloads(out, "sending") == payloads(out, "received") == b"".join(SEED_SENT)
    assert_server_transcript(lines, b"".join(SEED_SENT))


def assert_server_transcript(lines: list[str], echoed: bytes) -> None:
    """``lines`` are the server's stdout after its first line."""
    accept = re.fullmatch(r"accept\((\('127\.0\.0\.1', \d+\))\)", lines[1])
    assert lines[0] == "waiting for I/O" and accept, lines
    peer = accept.group(1)
    assert_in_order(
        lines,
        ["waiting for I/O", f"accept({peer})", "waiting for I/O", f"read({peer})", "  closing"],
    )
    assert lines[lines.index(f"read({peer})") + 1].startswith("  received b'")
    assert lines[-1] == "shutting down"
    assert payloads(lines, "received") == echoed


def test_a_long_echo_comes_back_in_chunks_and_the_client_waits_for_all() -> None:
    size = 300_000
    with server_process("--once") as server:
        client = run_cli("client", "--port", str(server.port()), "--size", str(size))
        code, lines, errors = server.finish()
    assert (client.returncode, client.stderr, code, errors) == (0, "", 0, "")
    out = client.stdout.splitlines()
    assert (
        byte_count(out, "sending")
        == byte_count(out, "received")
        == byte_count(lines, "received")
        == size
    )
    assert sum(line.startswith("  received ") for line in out) > 1


def test_repeated_messages_are_sent_in_order() -> None:
    with server_process("--once") as server:
        client = run_cli(
            "client", "--port", str(server.port()), "--message", "one", "--message", "héllo"
        )
        code, lines, errors = server.finish()
    assert (client.returncode, client.stderr, code, errors) == (0, "", 0, "")
    out = client.stdout.splitlines()
    assert_in_order(
        out, ["  sending b'one'", "  sending b'h\\xc3\\xa9llo'", "  ready to read", "shutting down"]
    )
    assert payloads(out, "received") == payloads(lines, "received") == "onehéllo".encode()


@pytest.mark.skipif(
    sys.platform == "win32", reason="SIGINT cannot be sent to a subprocess on Windows"
)
@pytest.mark.parametrize("sigint_ignored", [False, True], ids=["foreground", "background-job"])
def test_server_keeps_serving_until_ctrl_c(sigint_ignored: bool) -> None:
    assert_stops_cleanly_on(signal.SIGINT, sigint_ignored)


@pytest.mark.skipif(
    sys.platform == "win32", reason="SIGTERM cannot be sent to a subprocess on Windows"
)
@pytest.mark.parametrize("sigint_ignored", [False, True], ids=["foreground", "background-job"])
def test_sigterm_stops_the_server_as_cleanly_as_ctrl_c(sigint_ignored: bool) -> None:
    assert_stops_cleanly_on(signal.SIGTERM, sigint_ignored)


def assert_stops_cleanly_on(signum: signal.Signals, sigint_ignored: bool) -> None:
    with server_process(sigint_ignored=sigint_ignored) as server:
        port = server.port()
        clients = [
            run_cli("client", "--port", str(port), "--message", f"client {i}") for i in (1, 2)
        ]
        server.proc.send_signal(signum)
        code, lines, errors = server.finish()
    assert [c.returncode for c in clients] == [0, 0] and (code, errors) == (0, "")
    assert sum(line.startswith("accept(") for line in lines) == 2
    assert lines.count("  closing") == 2 and lines[-1] == "shutting down"
    assert payloads(lines, "received") == b"client 1client 2"


@pytest.mark.skipif(sys.platform == "win32", reason="ulimit -n (RLIMIT_NOFILE) is POSIX")
def test_out_of_fds_the_server_says_so_once_and_serves_everyone_after_a_pause() -> None:
    # As `ulimit -n 64`: 80 clients connect and wait, more than the server can
    # hold at once. The server must say so once and pause accepting, not
    # print the same error in a busy loop. Then every client sends,
    # half-closes and reads its echo: connections echoed and closed free
    # their fds, and the paused listener must take the rest.
    clients: list[socket.socket] = []
    with server_process(limit_fds=64) as server:
        port = server.port()
        try:
            clients += [
                socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) for _ in range(80)
            ]
            seen = lines_until(server, "  error: ")
            threading.Event().wait(
                0.5
            )  # a window to watch for a flood: nothing more may be printed
            for i, sock in enumerate(clients):
                sock.sendall(b"client %d" % i)
                sock.shutdown(socket.SHUT_WR)
            echoes = [read_exactly(sock, 20) for sock in clients]
        finally:
            for sock in clients:
                sock.close()
        server.proc.send_signal(signal.SIGINT)
        code, rest, errors = server.finish()
    assert echoes == [b"client %d" % i for i in range(80)] and (code, errors) == (0, "")
    lines = seen + rest
    accept_errors = [line for line in lines if line.startswith("  error: accept")]
    assert len(accept_errors) <= 3, (
        f"{len(accept_errors)} accept errors printed, {len(lines)} lines in all"
    )
    assert "Too many open files (EMFILE); not accepting for 1 s at a time" in accept_errors[0]
    assert sum(line.startswith("accept(") for line in lines) == 80 and len(lines) < 2_000


def test_client_reports_the_bytes_a_server_closing_early_never_sent() -> None:
    message = "0123456789" * 4
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(TIMEOUT)
        proc = subprocess.Popen(
            cli("client", "--port", str(listener.getsockname()[1]), "--message", message),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            echo_part_then_close(listener, len(message), 10)
            out, err = proc.communicate(timeout=TIMEOUT)
        finally:
            kill(proc)
    assert proc.returncode == 1 and "Traceback" not in err
    assert err == "error: the server closed the connection with 30 of 40 bytes missing\n"
    closed = "  the server closed the connection: 30 bytes never came back"
    assert_in_order(out.splitlines(), ["  received b'0123456789'", closed, "shutting down"])


def echo_part_then_close(listener: socket.socket, expected: int, echoed: int) -> None:
    conn, _ = listener.accept()
    with conn:
        conn.settimeout(TIMEOUT)
        data = read_exactly(conn, expected)  # read it all, so that close() sends FIN, not RST
        conn.sendall(data[:echoed])


def kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=TIMEOUT)  # reaps it and closes its pipes


# -- errors: one line on stderr, never a traceback ---------------------------------------


def test_a_port_in_use_suggests_port_0() -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = run_cli("server", "--port", str(port))
    error = assert_one_line_error(result, 1)
    assert error == (
        f"error: port {port} on 127.0.0.1 is already in use; "
        "try --port 0 to let the system pick a free port\n"
    )
    assert result.stdout == ""


def test_connection_refused_says_how_to_start_a_server() -> None:
    port = free_port()
    result = run_cli("client", "--port", str(port))
    error = assert_one_line_error(result, 1)
    assert error == (
        f"error: no server is listening on 127.0.0.1:{port}; "
        f"start one with: python -m echo_lib server --port {port}\n"
    )


def test_usage_errors_exit_2_in_one_line() -> None:
    result = run_cli("server", "--port", "70000")
    assert "'70000'" in assert_one_line_error(result, 2) and result.stdout == ""


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (["server", "--port", "70000"], "'70000'"),
        (["server", "--port", "-1"], "'-1'"),
        (["client", "--port", "ten"], "'ten'"),
        (["client", "--port", "1", "--size", "0"], "'0'"),
        (["client", "--port", "1", "--timeout", "nan"], "'nan'"),
        (
            ["client", "--port", "1", "--timeout", "1e10"],
            "timeout must be a number of seconds above 0 and at most 86400, got '1e10'",
        ),
        (["client", "--port", "1", "--timeout", "0"], "'0'"),
        (["client", "--port", "0"], "--port 0 only lets a server pick a free port"),
        (["client"], "--port"),
        ([], "{server,client}"),
        (["server", "--host", "10.0.0.1"], "--allow-remote"),
        (["client", "--host", "example.com", "--port", "80"], "'example.com'"),
        (["server", "--selector", "bogus"], "unknown selector 'bogus'"),
    ],
)
def test_bad_usage_is_named(
    argv: list[str], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: ") and err.count("\n") == 1 and named in err


def test_an_unavailable_selector_is_named_with_the_platform(
    capsys: pytest.CaptureFixture[str],
) -> None:
    missing = [name for name in SELECTOR_NAMES if name not in available_selectors()]
    if not missing:
        pytest.skip("this platform has every selector class")
    assert main(["server", "--selector", missing[0].removesuffix("Selector").lower()]) == 2
    assert f"{missing[0]} is not available on {sys.platform}" in capsys.readouterr().err


def test_help_explains_port_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["server", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "0: the system picks a free port, and the server prints it" in text and "10000" in text


# -- option converters (echo_lib.core.checks, shared with the benchmark), no sockets -------


@pytest.mark.parametrize(
    ("convert", "text", "message"),
    [
        (port_arg, "70000", "port must be an int in 0..65535, got '70000'"),
        (port_arg, "ten", "port must be an int in 0..65535, got 'ten'"),
        (int_arg("size", 1, 16), "1.5", "size must be an int in 1..16, got '1.5'"),
        (int_arg("rounds", 1), "0", "rounds must be an int of at least 1, got '0'"),
        (number_arg("share", 0, 1), "nan", "share must be a number in 0..1, got 'nan'"),
        (
            seconds_arg("deadline"),
            "inf",
            "deadline must be a number of seconds above 0 and at most 86400, got 'inf'",
        ),
        (list_arg(int_arg("size", 1)), "64, 0", "size must be an int of at least 1, got '0'"),
        (arg_type(resolve_selector), "bogus", "unknown selector 'bogus'"),
    ],
)
def test_a_bad_option_names_itself_and_the_text_as_typed(
    convert: Callable[[str], object], text: str, message: str
) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as caught:
        convert(text)
    assert message in str(caught.value)


def test_an_option_is_worded_as_the_check_of_the_same_value() -> None:
    with pytest.raises(ValueError) as caught:
        check_port(70000)
    with pytest.raises(argparse.ArgumentTypeError) as typed:
        port_arg("70000")
    assert str(typed.value) == str(caught.value).replace("70000", "'70000'")


def test_a_good_option_is_converted() -> None:
    assert (port_arg("8080"), int_arg("n", 1, 3)(" 3 "), seconds_arg()("0.5")) == (8080, 3, 0.5)
    assert list_arg(int_arg("size", 1))("64,16384") == (64, 16384)
    assert arg_type(resolve_selector)("default") is selectors.DefaultSelector


# -- seed_lines: events to the seed's messages, no sockets --------------------------------


def event(actor: str, action: str, mask: int = 0, nbytes: int = 0, detail: str = "") -> Event:
    return Event(1, 0.0, actor, action, 7, mask, nbytes, detail)


CONN = {"server/conn-1": ADDRESS}
PARTIAL = "  sent 3 bytes, not all: the rest waits for EVENT_WRITE"
MESSAGE = b"This is the message.  "


@pytest.mark.parametrize(
    ("ev", "data", "lines"),
    [
        (event("server", "accept", detail="conn-1"), None, [f"accept({PEER})"]),
        (event("server/conn-1", "ready", READ), None, [f"read({PEER})"]),
        (event("server/conn-1", "ready", WRITE), None, [f"write({PEER})"]),
        (
            event("server/conn-1", "recv", nbytes=20),
            b"It will be repeated.",
            ["  received b'It will be repeated.'"],
        ),
        (event("server/conn-1", "close", detail="echo complete"), None, ["  closing"]),
        (
            event("server/conn-1", "error", detail="ConnectionResetError"),
            None,
            ["  error: ConnectionResetError"],
        ),
        (event("server/conn-1", "send", nbytes=3, detail="partial"), None, [PARTIAL]),
        (event("server/conn-1", "send", nbytes=20), None, []),
        (event("server/conn-1", "eof", detail="0 bytes still to echo"), None, []),
        (event("server", "ready", READ), None, []),
        (event("server", "select", nbytes=1), None, []),
        (event("server", "register", READ), None, []),
        (event("server", "close", detail="listener"), None, []),
    ],
)
def test_server_lines(ev: Event, data: bytes | None, lines: list[str]) -> None:
    assert seed_lines(ev, "server", CONN, data) == lines


@pytest.mark.parametrize(
    ("ev", "data", "lines"),
    [
        (event("client", "ready", READ | WRITE), None, [f"client({PEER})"]),
        (
            event("client", "send", nbytes=22),
            MESSAGE,
            ["  ready to write", f"  sending {MESSAGE!r}"],
        ),
        (
            event("client", "modify", READ, detail="READ|WRITE → READ"),
            None,
            ["  ready to write", "  switching to read-only"],
        ),
        (event("client", "recv", nbytes=4), b"echo", ["  ready to read", "  received b'echo'"]),
        (
            event("client", "eof", detail="4 missing"),
            None,
            ["  ready to read", "  the server closed the connection: 4 missing"],
        ),
        (event("client", "connect"), None, []),
        (event("client", "close"), None, []),
        (event("client", "select", nbytes=1), None, []),
    ],
)
def test_client_lines(ev: Event, data: bytes | None, lines: list[str]) -> None:
    assert seed_lines(ev, "client", {"client": ADDRESS}, data) == lines


def test_a_long_chunk_is_cut_with_its_length() -> None:
    head = b"x" * (SHOW_LIMIT + 10)
    [line] = seed_lines(event("server/conn-1", "recv", nbytes=65536), "server", CONN, head)
    assert line == f"  received {b'x' * SHOW_LIMIT!r}... (65536 bytes)"


def test_without_data_or_address_the_count_and_a_placeholder_are_shown() -> None:
    assert seed_lines(event("server/conn-1", "recv", nbytes=42), "server") == [
        "  received 42 bytes"
    ]
    assert seed_lines(event("server", "accept", detail="conn-9"), "server", CONN) == [
        "accept(<unknown address>)"
    ]


def test_an_unknown_role_is_named() -> None:
    with pytest.raises(ValueError, match="'proxy'"):
        seed_lines(event("server", "accept"), "proxy")
