"""The results in words: the table, the scale report, and each target met, MISSED or n/a.

A target is a `Verdict`: (what it says, met, the numbers), where met is None
when what it compares was not measured.
"""

from __future__ import annotations

from collections.abc import Sequence

from .args import FLOOR
from .results import RecordingCost, Row, ScaleResult, Verdict

__all__ = [
    "TABLE_COLUMNS",
    "check_recording",
    "check_scale",
    "check_targets",
    "format_recording",
    "format_scale",
    "format_table",
    "format_targets",
    "size_name",
]

#: (server, the most CPU per message allowed, as a multiple of the raw loop's).
FLOOR_TARGETS: tuple[tuple[str, float], ...] = (("echoserver", 1.1), ("echoserver-record", 1.25))
#: (server, peer, the most CPU per message allowed, as a multiple of the peer's).
PEER_TARGETS: tuple[tuple[str, str, float], ...] = (("echoserver", "asyncio-protocol", 1.0),)
#: Recording itself: µs per event, bytes per event at steady state, and CPU
#: seconds to draw a million events to a PNG.
RECORD_US_TARGET, RECORD_BYTES_TARGET, DRAW_S_TARGET = 0.3, 48.0, 1.0
C100K = 100_000
TABLE_COLUMNS: tuple[str, ...] = (
    "server",
    "size",
    "µs CPU/msg",
    "user %",
    "× raw",
    "msgs/s (wall)",
    "echoed",
)


def size_name(size: int) -> str:
    """``64 B``, ``16 KiB``."""
    return f"{size // 1024} KiB" if size >= 1024 and size % 1024 == 0 else f"{size} B"


def format_table(rows: Sequence[Row]) -> str:
    """The results as a fixed-width text table, one line per server and size."""
    lines = [_line(TABLE_COLUMNS)]
    for row in rows:
        if row.us_per_message is None:
            lines.append(f"{row.server:<22}{size_name(row.size):>8}  {row.note}")
            continue
        ratio = f"{row.ratio_to_floor:.2f}" if row.ratio_to_floor is not None else "n/a"
        echoed = f"{row.echoed}/{row.sent}" + (" MISMATCH" if row.note else "")
        cells = (
            f"{row.us_per_message:.1f}",
            f"{row.user_share:.0%}",
            ratio,
            f"{row.messages_per_s:,.0f}",
            echoed,
        )
        lines.append(_line((row.server, size_name(row.size), *cells)))
    return "\n".join(lines)


def _line(cells: Sequence[str]) -> str:
    """One table line: the server left-aligned, the rest right-aligned."""
    widths = (8, 13, 8, 7, 15, 15)
    return f"{cells[0]:<22}" + "".join(
        f"{cell:>{width}}" for cell, width in zip(cells[1:], widths, strict=True)
    )


def check_targets(rows: Sequence[Row]) -> list[Verdict]:
    """Each target as (description, met, the numbers); met is None if not measured."""
    by = {(row.server, row.size): row for row in rows}
    results = []
    for size in sorted({row.size for row in rows}):
        for kind, limit in FLOOR_TARGETS:
            ratio = getattr(by.get((kind, size)), "ratio_to_floor", None)
            text = f"{kind} ≤ {limit:g}× {FLOOR} CPU/msg at {size_name(size)}"
            spread = _round_spread(by.get((kind, size)), by.get((FLOOR, size)))
            results.append(_verdict(text, ratio, ratio is not None and ratio <= limit, spread))
        for kind, peer, limit in PEER_TARGETS:
            theirs, mine = _us(by, peer, size), _us(by, kind, size)
            ratio = mine / theirs if theirs and mine else None
            text = f"{kind} ≤ {limit:g}× {peer} CPU/msg at {size_name(size)}"
            results.append(_verdict(text, ratio, ratio is not None and ratio <= limit, "×"))
    return results


def check_recording(cost: RecordingCost) -> list[Verdict]:
    """The recording targets as (description, met, the numbers)."""
    return [
        _verdict(
            f"Timeline.record ≤ {RECORD_US_TARGET} µs/event",
            cost.us_per_event,
            cost.us_per_event <= RECORD_US_TARGET,
            " µs",
        ),
        _verdict(
            f"Timeline storage ≤ {RECORD_BYTES_TARGET:.0f} bytes/event",
            cost.bytes_per_event,
            cost.bytes_per_event <= RECORD_BYTES_TARGET,
            " B",
        ),
        _verdict(
            f"plot_timeline of {cost.draw_events:,} events to PNG ≤ {DRAW_S_TARGET:.0f} s CPU",
            cost.draw_s,
            cost.draw_s is not None and cost.draw_s <= DRAW_S_TARGET,
            " s",
        ),
    ]


def _round_spread(mine: Row | None, floor: Row | None) -> str:
    """``×``, then how far the ratio went in single rounds: ``× (rounds 1.19–1.38)``.

    Each round of ``mine`` is compared with the raw loop's sample from the
    same round (rounds are interleaved), so that the range shows the noise.
    """
    pairs = zip(mine.samples, floor.samples, strict=False) if mine and floor else ()
    ratios = [a.us_per_message / b.us_per_message for a, b in pairs if b.us_per_message]
    return f"× (rounds {min(ratios):.2f}–{max(ratios):.2f})" if len(ratios) > 1 else "×"


def _us(by: dict[tuple[str, int], Row], kind: str, size: int) -> float | None:
    """The median µs per message of one row, if there is one."""
    row = by.get((kind, size))
    return row.us_per_message if row is not None else None


def _verdict(text: str, value: float | None, met: bool, unit: str) -> Verdict:
    """(text, met or None when not measured, the value with its unit)."""
    if value is None:
        return text, None, "not measured"
    return text, met, f"{value:.2f}{unit}"


def format_targets(rows: Sequence[Row], verdicts: Sequence[Verdict] = ()) -> str:
    """One line per target (those of ``rows``, then ``verdicts``): met, MISSED or n/a."""
    marks = {True: "met   ", False: "MISSED", None: "n/a   "}
    return "\n".join(
        f"{marks[met]}  {text}: {numbers}"
        for text, met, numbers in [*check_targets(rows), *verdicts]
    )


def format_recording(cost: RecordingCost) -> str:
    """Recording by itself, in two lines."""
    drawn = (
        f"{cost.draw_s:.2f} s CPU" if cost.draw_s is not None else "not measured (no matplotlib)"
    )
    return (
        f"recording: {cost.us_per_event:.3f} µs and {cost.bytes_per_event:.1f} bytes per event "
        f"(median of rounds of {cost.events:,} events, oldest dropped)\n"
        f"drawing: plot_timeline of {cost.draw_events:,} events to a PNG in {drawn}"
    )


def format_scale(result: ScaleResult) -> str:
    """A short report of one scale run."""
    r = result
    recorded = (
        "  not recording"
        if r.events_recorded is None
        else f"  recorded {r.events_recorded:,} events ({r.events_dropped:,} dropped), "
        f"{r.bytes_per_event:.1f} bytes per event"
    )
    return (
        f"{r.server} on {r.selector}: {r.verified}/{r.connections} connections echoed "
        f"{r.payload_bytes:,} bytes byte-exact, from {r.sources} source address(es)\n"
        f"  wall {r.wall_s:.2f} s (connect {r.connect_s:.2f} s, echo {r.echo_s:.2f} s, "
        f"close {r.close_s:.2f} s); server CPU {r.server_cpu_s:.2f} s\n"
        f"  peak RSS: server {r.server_maxrss_kib / 1024:.1f} MiB, "
        f"load {r.load_maxrss_kib / 1024:.1f} MiB\n"
        f"{recorded}"
    )


def check_scale(results: Sequence[ScaleResult]) -> list[Verdict]:
    """The scale targets: recording overhead, nothing dropped, bytes per event, C100K."""
    by = {result.server: result for result in results}
    plain, recording = by.get("echoserver"), by.get("echoserver-record")
    overhead = (
        recording.server_cpu_s / plain.server_cpu_s
        if plain and recording and plain.server_cpu_s
        else None
    )
    per_event = recording.bytes_per_event if recording else None
    return [
        _verdict(
            "recording overhead ≤ 1.25× server CPU (echoserver-record / echoserver, whole run)",
            overhead,
            overhead is not None and overhead <= FLOOR_TARGETS[1][1],
            "×",
        ),
        _kept_verdict(recording),
        _verdict(
            f"≤ {RECORD_BYTES_TARGET:.0f} bytes per recorded event",
            per_event,
            per_event is not None and per_event <= RECORD_BYTES_TARGET,
            " B",
        ),
        _c100k_verdict(recording),
    ]


def _kept_verdict(recording: ScaleResult | None) -> Verdict:
    """Whether the recording server kept every event (None: it did not run)."""
    text = "the recording server keeps every event"
    if recording is None:
        return text, None, "not measured"
    numbers = f"{recording.events_recorded:,} recorded, {recording.events_dropped:,} dropped"
    return text, recording.events_dropped == 0, numbers


def _c100k_verdict(recording: ScaleResult | None) -> Verdict:
    """C100K: met by a recording run of at least `C100K` connections, all byte-exact, none dropped.

    None (not measured) when the recording server did not run that many.
    """
    text = f"C100K: {C100K:,} concurrent connections, byte-exact, recorded"
    if recording is None:
        return text, None, "not measured"
    numbers = f"{recording.verified:,}/{recording.connections:,} connections"
    if recording.connections < C100K:
        return text, None, numbers
    met = recording.verified == recording.connections and recording.events_dropped == 0
    return text, met, numbers
