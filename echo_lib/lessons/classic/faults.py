"""Notebook 05's faults: the seed's five, run as the seed has them and as echo_lib fixes them.

Each fault is a scenario in two versions: ``"classic"`` runs the seed's
programs (`echo_lib.stage.seed`) on a `Stage`, ``"fixed"`` runs `EchoServer`
and `EchoClient` in the same situation. `run_fault` runs one and returns an
`Outcome` (a deterministic one-line verdict, details, the timeline);
`fault_table` sets every verdict side by side (`lab.FaultLab` runs one from
a widget).
"""

from __future__ import annotations

import selectors
import socket
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ...core.events import mask_name
from ...core.timeline import Timeline
from ...core.transcript import one_line
from ...driver.client import EchoClient
from ...driver.recording import RecordingSelector
from ...driver.server import EchoServer
from ...driver.sockets import LOOPBACK, finish_echo, send_without_reading, wait_listening
from ...driver.wait import wait_until
from ...stage.seed import chunked_echo_server, classic_client, classic_server, resetting_client
from ...stage.stage import Stage

__all__ = [
    "FAULTS",
    "VERSIONS",
    "Outcome",
    "fault_table",
    "modify_verdicts",
    "run_fault",
]

KiB, MiB = 1 << 10, 1 << 20


# -- the five faults, each as the seed has it and as echo_lib fixes it ---------------------


@dataclass(frozen=True)
class Outcome:
    """What one run of a fault scenario showed: a one-line verdict, details, the timeline."""

    fault: int
    version: str
    verdict: str
    details: str
    timeline: Timeline

    def text(self) -> str:
        return f"fault {self.fault}, {self.version}: {self.verdict}\n{self.details}".rstrip()


#: The five faults, by number: (short name, what goes wrong). Read-only.
FAULTS: Mapping[int, tuple[str, str]] = MappingProxyType(
    {
        1: ("stops after its first client", "the server's loop ends when any connection closes"),
        2: (
            "sendall() on a non-blocking socket",
            "a big echo to a slow reader raises BlockingIOError",
        ),
        3: ("client stops at the first piece", "an echo that arrives in two pieces is half lost"),
        4: ("fixed port 10000", "a second server on the same port: Address already in use"),
        5: (
            "a client's reset kills the server",
            "read() lets the OSError of a reset connection end the server",
        ),
    }
)
VERSIONS = ("classic", "fixed")
SLOW_PAYLOAD = 4 * MiB
SMALL_BUFFER = 4 * KiB


def run_fault(fault: int, version: str) -> Outcome:
    """Run fault ``fault`` (1-5) as the seed has it (``"classic"``) or fixed (``"fixed"``).

    Every thread and socket is closed on return. Raises `ValueError` for an
    unknown fault or version.
    """
    if fault not in FAULTS:
        raise ValueError(f"fault must be one of {sorted(FAULTS)}, got {fault!r}")
    if version not in VERSIONS:
        raise ValueError(f"version must be 'classic' or 'fixed', got {version!r}")
    return _SCENARIOS[fault, version]()


def _classic_pair(clients: int = 1) -> Stage:
    """The seed's server, then ``clients`` seed clients one after another."""
    stage = Stage()
    with socket.socket() as listener:
        listener.bind((LOOPBACK, 0))
        address = listener.getsockname()
        stage.start("server", classic_server, listener)
        for i in range(1, clients + 1):
            with socket.socket() as sock:
                stage.start(f"client-{i}", classic_client, address, sock)
                stage.join()
    return stage


def _fault1_classic() -> Outcome:
    stage = _classic_pair(clients=2)
    said = [stage.log(f"client-{i}", last=1).split("| ", 1)[1] for i in (1, 2)]
    served = [name for name in ("client-1", "client-2") if stage.timeline.bytes_moved(name)["recv"]]
    verdict = f"served {len(served)} of 2 clients in a row; the server stopped after the first"
    return Outcome(
        1, "classic", verdict, f"client-1: {said[0]}\nclient-2: {said[1]}", stage.timeline
    )


def _fault1_fixed() -> Outcome:
    with EchoServer() as server:
        results = [
            EchoClient(server.address, name=f"client-{i}", timeline=server.timeline).run()
            for i in (1, 2, 3)
        ]
    done = sum(r.complete for r in results)
    return Outcome(
        1,
        "fixed",
        f"served {done} of 3 clients in a row",
        "\n".join(map(str, results)),
        server.timeline,
    )


def _fault2_classic() -> Outcome:
    stage = Stage(take_turns=False)
    with socket.socket() as listener, socket.socket() as reader:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
        listener.bind((LOOPBACK, 0))
        address = listener.getsockname()
        server = stage.start("server", classic_server, listener)
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
        wait_listening(listener)
        reader.connect(address)
        send_without_reading(reader, bytes(SLOW_PAYLOAD))
        stage.join()
    error = one_line(server.error) if server.error else "no error"
    verdict = f"the server died: {error}" if server.error else "the server survived"
    return Outcome(
        2,
        "classic",
        verdict,
        f"server: {stage.log('server', last=1).split('| ', 1)[1]}",
        stage.timeline,
    )


def _fault2_fixed() -> Outcome:
    payload = bytes(SLOW_PAYLOAD)
    with EchoServer(sndbuf=SMALL_BUFFER) as server, socket.socket() as reader:
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
        reader.connect(server.address)
        sent = send_without_reading(reader, payload)
        buffered = wait_until(lambda: server.buffered() > 0)
        echo = finish_echo(reader, payload, sent)
    details = "\n".join(
        modify_verdicts(server.timeline) + [f"the server held output for a slow reader: {buffered}"]
    )
    verdict = f"the client got {len(echo)} of {len(payload)} bytes back" + (
        ", unchanged" if echo == payload else ""
    )
    return Outcome(2, "fixed", verdict, details, server.timeline)


def modify_verdicts(timeline: Timeline, actor: str = "server/conn-1") -> list[str]:
    """Deterministic facts about one connection's ``modify()`` calls."""
    changes = timeline.events(actor, "modify")
    if not changes:
        return ["no modify() calls"]
    return [
        f"first modify(): {changes[0].detail}",
        f"mask after the last modify(): {mask_name(changes[-1].mask)}",
        f"EVENT_WRITE was added and dropped again: {len(changes) >= 2}",
    ]


def _chunked(client: Callable[[Stage, tuple[str, int]], Any]) -> Stage:
    stage = Stage()
    with socket.socket() as listener:
        listener.bind((LOOPBACK, 0))
        stage.start("server", chunked_echo_server, listener)
        client(stage, listener.getsockname())
        stage.join()
    return stage


def _fault3_classic() -> Outcome:
    def client(stage: Stage, address: tuple[str, int]) -> None:
        with socket.socket() as sock:
            stage.start("client", classic_client, address, sock)
            stage.join()

    stage = _chunked(client)
    moved = stage.timeline.bytes_moved("client")
    lost = moved["send"] - moved["recv"]
    verdict = (
        f"the client sent {moved['send']} bytes and stopped after {moved['recv']}: "
        f"{lost} bytes lost"
    )
    return Outcome(
        3, "classic", verdict, stage.log("server", last=1).replace(" | ", ": ", 1), stage.timeline
    )


def _fault3_fixed() -> Outcome:
    results: list[Any] = []

    def client(stage: Stage, address: tuple[str, int]) -> None:
        echo = EchoClient(
            address,
            selector=lambda: stage.turn_selector("client"),
            timeline=stage.timeline,
            name="client",
        )
        results.append(stage.start("client", echo.run))
        stage.join()

    stage = _chunked(client)
    result = results[0].result
    verdict = str(result) if result is not None else f"client raised {one_line(results[0].error)}"
    return Outcome(
        3, "fixed", verdict, stage.log("server", last=1).replace(" | ", ": ", 1), stage.timeline
    )


def _fault4_classic() -> Outcome:
    sel = RecordingSelector(selectors.DefaultSelector())
    with sel, socket.socket() as first, socket.socket() as second:
        first.bind((LOOPBACK, 0))  # stands for port 10000: a port that is already taken
        first.listen(5)
        sel.label(first, "first run")
        sel.register(first, selectors.EVENT_READ)  # the first run's server, waiting for a client
        try:
            second.bind(first.getsockname())  # the cell, run again
        except OSError as exc:
            sel.timeline.record("second run", "error", detail=one_line(exc))
            return Outcome(
                4, "classic", f"the second bind failed: {one_line(exc)}", "", sel.timeline
            )
    return Outcome(4, "classic", "the second bind succeeded", "", sel.timeline)


def _fault4_fixed() -> Outcome:
    timeline = Timeline()
    with (
        EchoServer(timeline=timeline, name="first") as first,
        EchoServer(timeline=timeline, name="second") as second,
    ):
        different = first.address[1] != second.address[1]
    return Outcome(
        4, "fixed", f"two servers on port 0 got different ports: {different}", "", timeline
    )


def _fault5_classic() -> Outcome:
    stage = Stage()
    with socket.socket() as listener, socket.socket() as sock:
        listener.bind((LOOPBACK, 0))
        server = stage.start("server", classic_server, listener)
        stage.start("client", resetting_client, listener.getsockname(), sock)
        stage.join()
    verdict = (
        f"the server died: {one_line(server.error)}"
        if server.error
        else "the server survived the reset"
    )
    return Outcome(
        5,
        "classic",
        verdict,
        f"server: {stage.log('server', last=1).split('| ', 1)[1]}",
        stage.timeline,
    )


def _fault5_fixed() -> Outcome:
    stage = Stage(take_turns=False)
    with EchoServer(timeline=stage.timeline) as server, socket.socket() as sock:
        stage.start("client", resetting_client, server.address, sock).join()
        reset_seen = wait_until(lambda: server.accepted == 1 and server.connections == 0)
        result = EchoClient(server.address, name="next client", timeline=stage.timeline).run()
    verdict = f"after the reset, the next client: {'complete' if result.complete else 'incomplete'}"
    return Outcome(
        5,
        "fixed",
        verdict,
        f"the server dropped the reset connection: {reset_seen}\n{result}",
        stage.timeline,
    )


_SCENARIOS: Mapping[tuple[int, str], Callable[[], Outcome]] = MappingProxyType(
    {
        (1, "classic"): _fault1_classic,
        (1, "fixed"): _fault1_fixed,
        (2, "classic"): _fault2_classic,
        (2, "fixed"): _fault2_fixed,
        (3, "classic"): _fault3_classic,
        (3, "fixed"): _fault3_fixed,
        (4, "classic"): _fault4_classic,
        (4, "fixed"): _fault4_fixed,
        (5, "classic"): _fault5_classic,
        (5, "fixed"): _fault5_fixed,
    }
)


def fault_table(outcomes: Iterable[Outcome] | None = None) -> str:
    """A plain-text table: each fault, what the seed does, what echo_lib does.

    Runs every scenario unless ``outcomes`` are given.
    """
    if outcomes is None:
        outcomes = [run_fault(f, v) for f in FAULTS for v in VERSIONS]
    verdicts = {(o.fault, o.version): o.verdict for o in outcomes}
    rows = [("fault", "seed (classic)", "echo_lib (fixed)")]
    rows += [
        (f"{n}. {FAULTS[n][0]}", verdicts.get((n, "classic"), "-"), verdicts.get((n, "fixed"), "-"))
        for n in FAULTS
    ]
    return _table(rows)


def _table(rows: Sequence[tuple[str, ...]]) -> str:
    wrapped = [[textwrap.wrap(cell, 34) or [""] for cell in row] for row in rows]
    widths = [max(len(line) for row in wrapped for line in row[i]) for i in range(len(rows[0]))]
    out = []
    for index, row in enumerate(wrapped):
        for depth in range(max(len(cell) for cell in row)):
            out.append(
                "  ".join(
                    f"{(cell[depth] if depth < len(cell) else ''):<{w}}"
                    for cell, w in zip(row, widths, strict=True)
                ).rstrip()
            )
        if index == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)
