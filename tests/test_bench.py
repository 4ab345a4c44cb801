"""echo_lib.bench: a tiny benchmark run, a small scale run, and clear errors.

Nothing here asserts a timing: these check that every row is there, that every
server echoed every message, and that a wrong echo or a bad argument is caught.
"""

from __future__ import annotations

import json
import resource
import socket
import sys
import threading
from pathlib import Path

import pytest

from echo_lib import bench
from echo_lib.bench import servers
from echo_lib.bench.children import wait_connections
from echo_lib.bench.load import (
    PER_SOURCE,
    Load,
    connect_batch,
    payload_for,
    scale_size,
    source_address,
)
from echo_lib.bench.results import Sample

SMOKE_SERVERS = ("raw-selectors", "echoserver")


def run_main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = bench.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_smoke_run_has_every_row_and_every_echo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bench.json"
    code, out, err = run_main(
        capsys,
        "--rounds",
        "1",
        "--connections",
        "2",
        "--messages",
        "50",
        "--sizes",
        "64,4096",
        "--servers",
        ",".join(SMOKE_SERVERS),
        "--quiet",
        "--json",
        str(path),
    )
    assert code == 0, err
    header, *lines = out.split("\n\n")[0].splitlines()
    assert [c.strip() for c in header.split("  ") if c.strip()] == list(bench.TABLE_COLUMNS)
    assert [line.split()[0] for line in lines] == [*SMOKE_SERVERS, *SMOKE_SERVERS]
    rows = json.loads(path.read_text())["rows"]
    assert [(row["server"], row["size"]) for row in rows] == [
        (s, n) for n in (64, 4096) for s in SMOKE_SERVERS
    ]
    for row in rows:
        assert row["sent"] == row["echoed"] == 50, row
        assert row["us_per_message"] > 0 and row["note"] == ""
    assert "echoserver ≤ 1.1× raw-selectors" in out


def test_run_benchmark_returns_rows_with_samples() -> None:
    options = bench.BenchOptions(
        rounds=2,
        connections=3,
        messages=30,
        sizes=(100,),
        servers=("raw-selectors", "asyncio-streams"),
    )
    rows = bench.run_benchmark(options)
    assert [row.server for row in rows] == ["raw-selectors", "asyncio-streams"]
    assert rows[0].ratio_to_floor == 1.0
    for row in rows:
        assert len(row.samples) == 2
        assert all(s.sent == s.echoed == 30 for s in row.samples)


def test_a_server_that_is_not_installed_gets_a_row_that_says_so() -> None:
    table = bench.format_table([bench.Row("uvloop-protocol", 64, note="not installed")])
    assert table.splitlines()[1].split() == ["uvloop-protocol", "64", "B", "not", "installed"]


def test_targets_are_judged_from_the_medians() -> None:
    rows = [
        bench.Row("raw-selectors", 64, 10.0, 0.2, 1.0, 1.0),
        bench.Row("echoserver", 64, 10.5, 0.2, 1.05, 1.0),
        bench.Row("echoserver-record", 64, 16.0, 0.2, 1.6, 1.0),
        bench.Row("asyncio-protocol", 64, 30.0, 0.2, 3.0, 1.0),
    ]
    verdicts = {text: met for text, met, _ in bench.check_targets(rows)}
    assert verdicts["echoserver ≤ 1.1× raw-selectors CPU/msg at 64 B"] is True
    assert verdicts["echoserver-record ≤ 1.25× raw-selectors CPU/msg at 64 B"] is False
    assert verdicts["echoserver ≤ 1× asyncio-protocol CPU/msg at 64 B"] is True  # 0.35×
    rows[3] = bench.Row("asyncio-protocol", 64, 10.0, 0.2, 1.0, 1.0)
    assert {text: met for text, met, _ in bench.check_targets(rows)}[
        "echoserver ≤ 1× asyncio-protocol CPU/msg at 64 B"
    ] is False


def test_a_floor_target_shows_how_far_single_rounds_went() -> None:
    def row(kind: str, *cpu_s: float) -> bench.Row:
        samples = tuple(Sample(kind, 64, cpu, 0.0, cpu, 1000, 1000, 0.1) for cpu in cpu_s)
        return bench.Row(kind, 64, 10.0, 0.2, 1.0, 1.0, 3000, 3000, "", samples)

    # Paired by round: 0.012/0.010 and 0.010/0.012, where sorted samples would give 1.00–1.00.
    rows = [row("raw-selectors", 0.010, 0.012), row("echoserver", 0.012, 0.010)]
    numbers = {text: value for text, _, value in bench.check_targets(rows)}
    assert numbers["echoserver ≤ 1.1× raw-selectors CPU/msg at 64 B"] == "1.00× (rounds 0.83–1.20)"
    assert numbers["echoserver-record ≤ 1.25× raw-selectors CPU/msg at 64 B"] == "not measured"


def test_scale_run_echoes_every_unique_payload_byte_exact_and_records_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "scale.json"
    code, out, err = run_main(
        capsys,
        "--scale",
        "--connections",
        "300",
        "--selector",
        "poll",
        "--quiet",
        "--json",
        str(path),
    )
    assert code == 0, err
    document = json.loads(path.read_text())
    plain, recording = document["scale"]
    assert (plain["server"], recording["server"]) == ("echoserver", "echoserver-record")
    for result in (plain, recording):
        assert (
            result["selector"] == "PollSelector"
            and result["connections"] == result["verified"] == 300
        )
        assert result["payload_bytes"] == sum(scale_size(i) for i in range(300))
        assert (
            result["server_maxrss_kib"] > 0
            and result["load_maxrss_kib"] > 0
            and result["server_cpu_s"] > 0
        )
    assert plain["events_recorded"] is None
    # accept, register, ready, recv, send, ready, eof, unregister, close at least, per connection
    assert recording["events_recorded"] >= 9 * 300 and recording["events_dropped"] == 0
    assert (
        0 < recording["bytes_per_event"] < 200
    )  # a short run: the arrays' first allocations dominate
    assert out.count("300/300 connections echoed") == 2 and "recorded" in out
    targets = {target["target"]: target["met"] for target in document["targets"]}
    assert targets["the recording server keeps every event"] is True
    assert (
        targets["C100K: 100,000 concurrent connections, byte-exact, recorded"] is None
    )  # not tried with 300


@pytest.mark.skipif(
    not sys.platform.startswith("linux"),
    reason="other 127.x addresses exist by default on Linux only",
)
def test_load_connections_spread_over_source_addresses() -> None:
    assert [source_address(i) for i in (0, PER_SOURCE - 1, PER_SOURCE, 5 * PER_SOURCE)] == [
        "127.0.0.2",
        "127.0.0.2",
        "127.0.0.3",
        "127.0.0.7",
    ]
    with socket.create_server(("127.0.0.1", 0)) as listener:
        socks = connect_batch(listener.getsockname()[1], 2, 5.0, first=PER_SOURCE - 1)
        try:
            assert [sock.getsockname()[0] for sock in socks] == ["127.0.0.2", "127.0.0.3"]
        finally:
            for sock in socks:
                sock.close()


def test_recording_is_measured_and_judged() -> None:
    cost = bench.measure_recording(events=8_000, rounds=1)
    assert cost.us_per_event > 0 and 26 <= cost.bytes_per_event <= 200  # 26 B of columns, at least
    verdicts = bench.check_recording(bench.RecordingCost(1, 0.25, 40.0, 10, 2.0))
    assert [met for _, met, _ in verdicts] == [True, True, False]
    assert [met for _, met, _ in bench.check_recording(bench.RecordingCost(1, 0.31, 49.0))] == [
        False,
        False,
        None,
    ]  # not drawn: n/a


def test_payloads_differ_between_connections() -> None:
    payloads = [payload_for(i, scale_size(i)) for i in range(1000)]
    assert len(set(payloads)) == 1000
    assert [len(p) for p in payloads] == [scale_size(i) for i in range(1000)]


def corrupting_echo(listener: socket.socket) -> None:
    """Echo one message with its last byte changed, then close."""
    conn, _ = listener.accept()
    with conn:
        data = conn.recv(1 << 16)
        conn.sendall(data[:-1] + bytes([data[-1] ^ 1]))


def test_a_wrong_echo_is_caught() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        thread = threading.Thread(target=corrupting_echo, args=(listener,))
        thread.start()
        load = Load()
        try:
            load.connect(listener.getsockname()[1], 1, 5.0)
            with pytest.raises(ValueError, match="wrong echo on connection 0: sent 64 bytes"):
                load.exchange(64, 1, 5.0, 5.0)
        finally:
            for sock in load.socks:
                sock.close()
            thread.join(5.0)


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (
            ["--connections", "0"],
            "--connections: connections must be an int of at least 1, got '0'",
        ),
        (["--rounds", "two"], "--rounds: rounds must be an int of at least 1, got 'two'"),
        (["--sizes", "64,0"], "--sizes: size must be an int of at least 1, got '0'"),
        (
            ["--seconds", "-1"],
            "--seconds: seconds must be a number of seconds above 0 and at most 86400, got '-1'",
        ),
        (["--servers", "raw-selectors,nginx"], "--servers: unknown server 'nginx'"),
        (["--selector", "kqueue"], "KqueueSelector is not available"),
        (["--scale", "--servers", "asyncio-protocol"], "--scale supports echoserver"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
        (["--connections", "10000"], "at most 1000, got 10000; add --scale"),
        (
            ["--scale", "--deadline", "0"],
            "--deadline: deadline must be a number of seconds above 0 and at most 86400, got '0'",
        ),
    ],
)
def test_bad_arguments_are_named(
    capsys: pytest.CaptureFixture[str], argv: list[str], named: str
) -> None:
    code, out, err = run_main(capsys, *argv)
    assert code == 2 and out == ""
    assert named in err


def test_too_many_connections_for_the_hard_limit_is_a_clear_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        pytest.skip("no hard limit on open files here")
    # Root may raise the hard limit, but not past fs.nr_open (Linux); others not at all.
    nr_open = Path("/proc/sys/fs/nr_open")
    beyond = max(hard, int(nr_open.read_text()) if nr_open.exists() else hard)
    code, out, err = run_main(capsys, "--scale", "--connections", str(beyond), "--quiet")
    assert code == 1
    assert f"hard limit RLIMIT_NOFILE is {hard}" in err and "--connections" in err


def test_parse_args_fills_in_quick_and_scale_defaults() -> None:
    quick = bench.parse_args(["--quick"])
    assert (quick.rounds, quick.connections, quick.servers) == (3, 8, bench.SERVER_KINDS)
    scale = bench.parse_args(["--scale"])
    assert (scale.connections, scale.servers) == (10_000, ("echoserver", "echoserver-record"))


def test_the_echo_lab_at_scale_a_recorded_10k_style_run_keeps_every_event() -> None:
    """Notebook 06, section 6: the recorded scale run drops nothing and echoes every byte.

    300 connections here, 10,000 there.
    """
    run = bench.record_scale_run(300, selector="poll", deadline=60.0)
    payload = sum(scale_size(i) for i in range(300))
    assert run.verified == run.connections == 300 and run.payload_bytes == payload
    assert run.timeline.dropped == 0 and set(run.phase_s) == {"connect", "echo", "close"}
    counts = run.timeline.counts()
    # and the listener's close
    assert counts["accept"] == counts["eof"] == counts["close"] - 1 == 300
    assert run.timeline.bytes_moved() == {"recv": payload, "send": payload}
    assert str(run) == (
        f"300/300 connections echoed {payload:,} bytes byte-exact\n"
        f"recorded: 300 accepts, {payload:,} bytes in and {payload:,} out, "
        "300 connections closed; 0 events dropped"
    )


@pytest.mark.parametrize("bad", [0, -5, 2.5, True, "10"])
def test_a_recorded_scale_run_names_a_bad_connection_count(bad: object) -> None:
    with pytest.raises(ValueError, match=f"connections must be an int of at least 1, got {bad!r}"):
        bench.record_scale_run(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), "60"])
def test_a_recorded_scale_run_names_a_bad_deadline(bad: object) -> None:
    with pytest.raises(ValueError, match=f"deadline must be a number of seconds .*, got {bad!r}"):
        bench.record_scale_run(10, deadline=bad)  # type: ignore[arg-type]


def test_waiting_for_connections_says_how_many_are_open() -> None:
    assert wait_connections(lambda: 5, 5, 1.0) == 5
    with pytest.raises(TimeoutError, match=r"the server has 3 connections, not 5, after 0\.2 s"):
        wait_connections(lambda: 3, 5, 0.2)


def test_a_server_whose_thread_failed_says_so_when_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A server thread never prints: what ended it is raised in the process that closes it."""

    def broken_loop(self: object) -> None:
        raise RuntimeError("the loop broke")

    monkeypatch.setattr(servers._RawServer, "_run", broken_loop)
    server = servers.start_server("raw-selectors", "default")
    with pytest.raises(RuntimeError, match="the loop broke"):
        server.close()


def test_a_server_closes_cleanly_after_echoing() -> None:
    server = servers.start_server("raw-selectors", "poll")
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5.0) as sock:
            sock.sendall(b"ping")
            echo = b""
            while len(echo) < 4 and (chunk := sock.recv(4 - len(echo))):
                echo += chunk
        assert echo == b"ping"
        assert server.received() == 4  # counted before it was echoed
    finally:
        server.close()
    assert "echo_lib-bench-raw" not in [thread.name for thread in threading.enumerate()]
