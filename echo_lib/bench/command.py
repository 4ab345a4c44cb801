"""``python -m echo_lib.bench``: parse the options, run the benchmark or the scale run, print, save.

Exit status: 0 done, 1 the run failed, 2 bad arguments; the reason goes to
stderr in one line. ``--json PATH`` also writes the options, the machine and
the results.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from typing import Any

from .args import PROG, BenchOptions, parse_args
from .measure import run_benchmark
from .recording import DRAW_EVENTS, measure_drawing, measure_recording
from .report import (
    check_recording,
    check_scale,
    check_targets,
    format_recording,
    format_scale,
    format_table,
    format_targets,
)
from .resources import nofile_limits
from .results import RecordingCost, Verdict
from .scale import run_scale

__all__ = ["main"]


def _machine() -> dict[str, Any]:
    """What the numbers depend on, for the JSON file."""
    uvloop = importlib.util.find_spec("uvloop") is not None
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "rlimit_nofile": nofile_limits(),  # (soft, hard)
        "uvloop": "installed" if uvloop else "not installed",
    }


def _write_json(path: str, options: BenchOptions, results: dict[str, Any]) -> None:
    """Write the options, the machine and the results to ``path``."""
    document = {"options": asdict(options), "machine": _machine(), **results}
    with open(path, "w", encoding="utf-8") as out:
        json.dump(document, out, indent=2, default=str)
        out.write("\n")


def _targets(verdicts: Sequence[Verdict]) -> list[dict[str, Any]]:
    """The verdicts as JSON objects."""
    return [{"target": text, "met": met, "value": value} for text, met, value in verdicts]


def _recording_cost(options: BenchOptions) -> RecordingCost | None:
    """Recording (and drawing) by itself, measured when echoserver-record is among the servers."""
    if "echoserver-record" not in options.servers:
        return None
    cost = measure_recording(100_000 if options.quick else 400_000)
    return replace(cost, draw_events=DRAW_EVENTS, draw_s=measure_drawing())


def _run_bench_command(
    options: BenchOptions, progress: Callable[[str], None] | None
) -> dict[str, Any]:
    """Run the benchmark, print the table and the targets; return the JSON results."""
    start, load_before = time.perf_counter(), os.getloadavg()[0]
    rows = run_benchmark(options, progress)
    cost = _recording_cost(options)
    verdicts = [*check_targets(rows), *(check_recording(cost) if cost is not None else [])]
    recording = [format_recording(cost)] if cost is not None else []
    print(format_table(rows), *recording, format_targets([], verdicts), sep="\n\n")
    print(
        f"\n{options.rounds} rounds of at most {options.messages} messages "
        f"or {options.seconds:g} s, {options.connections} connections, "
        f"in {time.perf_counter() - start:.1f} s "
        f"(load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after)"
    )
    return {
        "rows": [asdict(row) for row in rows],
        "recording": asdict(cost) if cost is not None else None,
        "targets": _targets(verdicts),
    }


def _run_scale_command(
    options: BenchOptions, progress: Callable[[str], None] | None
) -> dict[str, Any]:
    """Run the scale run once per server; print each report and the targets; return the JSON."""
    results = []
    for kind in options.servers:
        results.append(run_scale(options, kind, progress))
        print(format_scale(results[-1]))
    verdicts = check_scale(results)
    print("\n" + format_targets([], verdicts))
    return {"scale": [asdict(result) for result in results], "targets": _targets(verdicts)}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or the scale run) and print the results; return the exit status.

    2 for bad arguments, 1 if the run fails; the reason goes to stderr.
    """
    try:
        options = parse_args(argv)
    except ValueError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    progress = None if options.quiet else (lambda text: print(text, file=sys.stderr, flush=True))
    try:
        command = _run_scale_command if options.scale else _run_bench_command
        results = command(options, progress)
    except (RuntimeError, TimeoutError, OSError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    if options.json:
        _write_json(options.json, options, results)
    return 0
