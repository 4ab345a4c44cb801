"""What a run produces: `Sample`, `Row`, `ScaleResult`, `RecordingCost` (frozen dataclasses)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["RecordingCost", "Row", "Sample", "ScaleResult", "Verdict"]

#: One target: (what it says, met (None: not measured), the numbers).
Verdict = tuple[str, bool | None, str]


@dataclass(frozen=True)
class Sample:
    """One round of one server at one message size."""

    server: str
    size: int
    cpu_s: float
    user_s: float
    sys_s: float
    sent: int  # messages the load process saw echoed intact
    echoed: int  # messages the server received (bytes / size)
    wall_s: float

    @property
    def us_per_message(self) -> float:
        """Server CPU (user + sys) per echoed message, in µs."""
        return self.cpu_s / max(self.echoed, 1) * 1e6

    @property
    def user_share(self) -> float:
        """The part of the CPU time spent in user space, 0..1 (tick-sampled)."""
        total = self.user_s + self.sys_s
        return self.user_s / total if total > 0 else 0.0


@dataclass(frozen=True)
class Row:
    """Medians over the rounds of one server at one message size."""

    server: str
    size: int
    us_per_message: float | None = None
    user_share: float | None = None
    ratio_to_floor: float | None = None
    messages_per_s: float | None = None
    sent: int = 0
    echoed: int = 0
    note: str = ""
    samples: tuple[Sample, ...] = ()


@dataclass(frozen=True)
class ScaleResult:
    """One scale run: N concurrent connections, each echoing a unique payload."""

    server: str
    selector: str
    connections: int
    payload_bytes: int
    verified: int
    connect_s: float
    echo_s: float
    close_s: float
    wall_s: float
    server_maxrss_kib: int
    load_maxrss_kib: int
    server_cpu_s: float = 0.0  # the server process's CPU over the whole run
    sources: int = 1  # 127.x source addresses the load connected from
    events_recorded: int | None = None  # None: the server did not record
    events_dropped: int | None = None
    bytes_per_event: float | None = None


@dataclass(frozen=True)
class RecordingCost:
    """What recording costs by itself, measured in this process."""

    events: int
    us_per_event: float  # median over the rounds, CPU time, the move into columns included
    bytes_per_event: float  # columns and string table, at steady state (after wraparound)
    draw_events: int = 0
    draw_s: float | None = None  # CPU seconds to plot and write a PNG; None without matplotlib
