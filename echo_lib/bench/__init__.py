"""How much CPU does `EchoServer` spend per echoed message, next to its peers?

Run ``python -m echo_lib.bench`` (``--quick`` takes under 20 seconds,
``--json PATH`` keeps the numbers), or ``main(["--quick"])`` from a notebook.

What is measured, and why this way:

* Each server runs in its own child process (multiprocessing, "spawn"),
  binds 127.0.0.1 on port 0 and sends its port back over a pipe. The parent
  sends it "begin" and "end"; the server answers with the CPU seconds its
  whole process used in between (``time.process_time()``: user + sys, every
  thread) and the bytes it received. Messages echoed = bytes / message size,
  and that must equal the count the load process saw come back intact.
* The load is one more process: one selectors loop driving several
  connections (default 8) in ping-pong: each sends one message, waits for its
  whole echo, checks it byte for byte and sends the next, until a message
  count or a time bound is reached. Its own CPU is not counted.
* The peers, all measured in the same run: "raw-selectors", the floor for
  pure Python (DefaultSelector, accept, recv, send, a tiny buffer for partial
  writes: correct but minimal); `EchoServer` with ``record=False`` and
  ``record=True`` (its own loop thread, as users run it); asyncio Protocol;
  asyncio streams; ``socketserver.ThreadingTCPServer``; uvloop Protocol when
  uvloop is installed. An unmeasured warm-up round comes first; then the
  rounds are interleaved (round 1 of every server and size, then round 2...)
  so that a noisy neighbour hurts every server alike.
* The table shows medians over the rounds: µs of server CPU per message,
  the share of it spent in user space (``getrusage``, tick-sampled, so only
  a rough guide), the ratio to the raw loop, and messages per second of wall
  time. Every server's CPU includes its own sleeping and waking: a server that
  keeps up with the load sleeps after most messages, a slower one finds
  several sockets ready per ``select()``.

``--scale`` instead opens ``--connections`` (default 10000) concurrent
connections to one server, in batches that never overflow the listen backlog
(the parent waits until the server has accepted each batch). Each connection
sends a unique payload (16 B to 4 KiB) and checks its echo byte for byte.
It reports the wall time of each phase and the peak memory (``ru_maxrss``) of
the server and of the load process. ``RLIMIT_NOFILE`` is raised to the hard
limit where needed, in both processes.

Every wait has a timeout, the scale run a ``--deadline``, and every child
process is stopped (killed if need be) on the way out. Loopback only; Linux
and macOS (it needs the ``resource`` module).

The package, one job per module: `args` (the options), `servers` (the
servers under test), `load` (the load generator), `children` (the child
processes and the parent's handle on them), `resources` (descriptors, CPU,
memory), `measure` (the ping-pong rounds), `recording` (recording by itself),
`scale` (the scale run), `results` and `report` (the numbers and the targets),
`command` (the command line). The names below are the ones notebooks and
tests use; the rest are in their modules.
"""

from __future__ import annotations

from .args import SERVER_KINDS, BenchOptions, parse_args
from .command import main
from .measure import run_benchmark
from .recording import measure_recording
from .report import TABLE_COLUMNS, check_recording, check_targets, format_table
from .results import RecordingCost, Row
from .scale import RecordedRun, record_scale_run

__all__ = [
    "SERVER_KINDS",
    "TABLE_COLUMNS",
    "BenchOptions",
    "RecordedRun",
    "RecordingCost",
    "Row",
    "check_recording",
    "check_targets",
    "format_table",
    "main",
    "measure_recording",
    "parse_args",
    "record_scale_run",
    "run_benchmark",
]
