"""The gauntlet's judges: what a round's figures say about the server, each mistake named.

Each judge looks at a `ServerRun` (and the round's clients) and notes, on a
`Feedback`, a problem that names the mistake behind it, never just "incorrect".
"""

from __future__ import annotations

import selectors
import socket
import threading

from . import Feedback
from .clients import Client
from .serving import MiB, ServerRun, is_closed, serve_error_problem

__all__ = ["IDLE", "MAX_HELD", "judge_idle", "judge_returned", "judge_round", "judge_stop"]

WRITE = selectors.EVENT_WRITE
#: The most a server may hold for one client that never reads.
MAX_HELD = 4 * MiB
#: Seconds of silence in the idle round.
IDLE = 0.5


def judge_round(
    feedback: Feedback,
    run: ServerRun,
    round_name: str,
    clients: list[Client],
    finished: bool,
    left: int,
) -> None:
    if run.died:
        why = (
            "serve() returned before stop was set"
            if run.error is None
            else serve_error_problem(run.error)
        )
        feedback.expect(False, f"in round {round_name!r}: {why}")
        return
    if not finished:
        _stuck(feedback, round_name, clients)
    _wrong_echoes(feedback, round_name, clients)
    _hog_held(feedback, run, clients)
    stale = run.stale_keys()
    feedback.expect(
        not stale,
        f"in round {round_name!r}: {_sockets(len(stale))} closed but still registered: "
        "closing without unregister() leaves a key for a dead fd; unregister(), then close()",
    )
    feedback.expect(
        not left or stale,
        f"in round {round_name!r}: {_sockets(left)} still open after their clients "
        "left: at EOF (once the echo is flushed) or on an error, unregister and close the socket",
    )


def _stuck(feedback: Feedback, round_name: str, clients: list[Client]) -> None:
    stuck = [c for c in clients if c.mode != "hog" and not c.done]
    if not stuck:
        feedback.expect(
            False,
            f"round {round_name!r} ran out of time waiting for the server to stop reading from the "
            "hog",
        )
        return
    first = stuck[0]
    feedback.expect(
        False,
        f"round {round_name!r} ran out of time: {len(stuck)} of {len(clients)} clients were still "
        f"waiting ({first.name} had sent {first.sent} of {len(first.payload)} bytes and got "
        f"{len(first.received)} back). Is every ready socket served, and is EVENT_WRITE "
        "registered while output waits?",
    )


def _wrong_echoes(feedback: Feedback, round_name: str, clients: list[Client]) -> None:
    """One problem per kind of wrong echo, with how many clients it hit and the first of them."""
    kinds: dict[str, list[str]] = {}
    for client in clients:
        if client.mode not in ("reset", "hog") and client.done and not client.exact:
            kind, example = _what_went_wrong(client)
            kinds.setdefault(kind, []).append(example)
    for kind, examples in kinds.items():
        count = f"{len(examples)} client{'s' if len(examples) > 1 else ''}"
        feedback.expect(
            False,
            f"in round {round_name!r}, {count} "
            f"({examples[0]}{', ...' if len(examples) > 1 else ''}): {kind}",
        )


def _what_went_wrong(client: Client) -> tuple[str, str]:
    got, want = len(client.received), len(client.payload)
    example = f"{client.name} got {got} of {want} bytes back"
    if client.reset:
        return "the server reset the connection before the echo was complete", example
    if got < want and client.mode == "echo":
        return (
            "the echo stopped short at EOF: the server closed at EOF with echo still owed; after "
            "a half-close keep flushing, and close only when nothing is pending"
        ), example
    at = next(
        (
            i
            for i, (a, b) in enumerate(zip(client.received, client.payload, strict=False))
            if a != b
        ),
        min(got, want),
    )
    return (
        "the echo differs from what was sent: bytes that a partial send() did not take were lost "
        "or sent twice",
        f"{example}, the first wrong one at offset {at}",
    )


def _hog_held(feedback: Feedback, run: ServerRun, clients: list[Client]) -> None:
    for hog in (c for c in clients if c.mode == "hog"):
        held = hog.sent - _kernel_allowance(run, hog)
        feedback.expect(
            held <= MAX_HELD,
            f"a client that never reads got {hog.sent / MiB:.1f} MiB into the server, about "
            f"{max(held, 0) / MiB:.1f} MiB of it held in memory (the limit is {MAX_HELD // MiB} "
            "MiB): unbounded buffering; stop reading (drop EVENT_READ) while a connection has "
            "more than a cap waiting",
        )


def _kernel_allowance(run: ServerRun, hog: Client) -> int:
    """What kernel buffers hold between the hog and the server's memory (both ways, both ends)."""
    sizes = (hog.sndbuf or 0, hog.rcvbuf or 0)
    listener = run.listener
    if listener.fileno() >= 0:
        sizes += (
            listener.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF),
            listener.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
        )
    return 2 * sum(sizes)


def judge_idle(feedback: Feedback, run: ServerRun) -> None:
    """Half a second of silence: a loop that sleeps in select() wakes only for its timeout."""
    since, cpu = run.selector.timeline.last_seq, run.cpu()
    threading.Event().wait(IDLE)  # the measuring window itself, not a synchronisation
    writers = [k for k in run.registered_keys() if k.events & WRITE]
    ready = len(run.selector.timeline.events(None, "ready", since=since))
    wakeups, used = run.wakeups(since), run.cpu_since(cpu)
    spent = "" if used is None else f", using {used * 1000:.0f} ms of CPU"
    if feedback.expect(
        not writers and ready <= 10,
        f"with every client silent for {IDLE} s, select() woke {wakeups} times and reported "
        f"{ready} sockets ready{spent}, and {len(writers)} connections were registered for "
        "EVENT_WRITE: keeping EVENT_WRITE registered with nothing to send spins the loop; "
        "modify() back to EVENT_READ once drained",
    ):
        feedback.expect(
            wakeups <= 200,
            f"with every client silent for {IDLE} s, select() returned {wakeups} times{spent}: "
            "the loop polls; give select() a timeout (e.g. 0.05 s) instead of 0",
        )


def judge_returned(feedback: Feedback, run: ServerRun) -> bool:
    """Did ``serve`` return once ``stop`` was set, without an error? (All 09's steps 1-6 ask.)"""
    if not feedback.expect(
        run.returned_in_time,
        f"serve() did not return within {run.grace:g} s after stop was set: "
        "check stop.is_set() every time round the loop, and give select() a timeout",
    ):
        return False
    if run.error is not None and not run.died_early:
        feedback.expect(False, f"while stopping, {serve_error_problem(run.error)}")
    return True


def judge_stop(feedback: Feedback, run: ServerRun) -> None:
    """A clean stop: every socket unregistered, then closed, and the selector closed."""
    if not judge_returned(feedback, run):
        return
    counts = run.selector.timeline.counts()
    if run.selector.timeline.dropped == 0 and counts["register"] > counts["unregister"]:
        feedback.expect(
            False,
            f"{_sockets(counts['register'] - counts['unregister'])} never unregistered: on stop, "
            "unregister() each socket, then close() it, then close the selector",
        )
    feedback.expect(
        not run.left_open,
        f"after serve() returned, {_sockets(run.left_open)} still open: close every connection on "
        "stop",
    )
    feedback.expect(is_closed(run.selector), "serve() returned without closing its selector")


def _sockets(count: int) -> str:
    return f"{count} socket was" if count == 1 else f"{count} sockets were"
