"""Checkers for notebook 06 (many clients, big messages): partial writes, many echoes at once."""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

from ..core.checks import is_int
from ..driver.loop import SelectorLoop
from ..driver.server import RECV_SIZE, EchoServer
from ..driver.sockets import send_without_reading
from ..driver.wait import wait_until
from . import DidNotReturn, Feedback, run_with_timeout

__all__ = [
    "ECHO_MANY_PAYLOADS",
    "PEAK_MAX_BUFFER",
    "check_echo_many",
    "check_peak_prediction",
    "check_send_some",
]

KiB, MiB = 1 << 10, 1 << 20
SendSome = Callable[[socket.socket, bytes], Any]
EchoMany = Callable[[tuple[str, int], list[bytes]], Any]


def _pattern(size: int, seed: int) -> bytes:
    """``size`` bytes that differ from one payload to the next, so a mixed-up echo shows."""
    block = bytes((seed * 37 + i * 7) % 251 for i in range(251))
    return (block * (size // 251 + 1))[:size]


#: What `check_echo_many` sends: eight payloads, one connection each
#: (the empty one only half-closes).
ECHO_MANY_PAYLOADS: tuple[bytes, ...] = tuple(
    _pattern(size, seed)
    for seed, size in enumerate((5, MiB, 0, 64 * KiB + 1, 300_000, MiB, 7, 200_000), start=1)
)


# -- exercise 1: predict the most a server holds for a client that never reads -------------

PEAK_MAX_BUFFER = 16 * KiB
SMALL_BUFFER = 4 * KiB


def check_peak_prediction(predicted_kib: object) -> Feedback:
    """Compare a prediction with the bound `EchoServer` keeps, then watch a run keep it.

    The question: with ``max_buffer`` 16 KiB and ``recv_size`` 64 KiB, how
    many KiB at most can the server hold for a client that sends and never
    reads? The server reads only while it holds less than ``max_buffer``,
    and one ``recv()`` brings up to ``recv_size`` more: 16 + 64 = 80 KiB.
    """
    feedback = Feedback("prediction")
    if not feedback.expect(
        is_int(predicted_kib),
        f"predict a number of KiB (an int), got {predicted_kib!r}",
    ):
        return feedback
    bound = (PEAK_MAX_BUFFER + RECV_SIZE) // KiB
    _judge_prediction(feedback, predicted_kib, bound)
    peak, paused = _peak_of_a_client_that_never_reads()
    feedback.expect(
        paused and peak <= bound * KiB,
        f"the server held {peak} bytes, more than {bound} KiB, "
        "or never paused reading: the bound does not hold on this machine",
    )
    return feedback


def _judge_prediction(feedback: Feedback, predicted_kib: int, bound: int) -> None:
    """Say why a prediction below or above ``bound`` KiB is wrong."""
    if predicted_kib < bound:
        feedback.expect(
            False,
            f"you predicted {predicted_kib} KiB: the server checks its buffer before each "
            f"recv(), and one recv() can bring up to recv_size ({RECV_SIZE // KiB} KiB) "
            "more than max_buffer",
        )
    elif predicted_kib > bound:
        feedback.expect(
            False,
            f"you predicted {predicted_kib} KiB: reading stops while the buffer holds "
            f"max_buffer ({PEAK_MAX_BUFFER // KiB} KiB) or more, so one recv() of at most "
            f"{RECV_SIZE // KiB} KiB is all it can add",
        )


def _peak_of_a_client_that_never_reads(rounds: int = 2_000) -> tuple[int, bool]:
    """Push and step (the notebook's section 5) until nothing moves; (peak buffered, paused)."""
    with SelectorLoop() as loop:
        server = EchoServer(loop=loop, max_buffer=PEAK_MAX_BUFFER, sndbuf=SMALL_BUFFER).start()
        with socket.create_connection(server.address, timeout=5) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
            chunk, peak, quiet = bytes(64 * KiB), 0, 0
            while quiet < 5 and loop.iterations < rounds:
                pushed = send_without_reading(sock, chunk)
                ready = loop.step(0.01)
                peak = max(peak, server.buffered())
                quiet = quiet + 1 if not (pushed or ready) else 0
        changes = [e.detail for e in loop.timeline.events("server/conn-1", "modify")]
    return peak, any(c.endswith("→ WRITE") for c in changes)


# -- exercise 2: send_some --------------------------------------------------------


def check_send_some(send_some: SendSome) -> Feedback:
    """Call ``send_some(sock, data)`` on a non-blocking socket with a small send buffer.

    It must send as much of ``data`` as the kernel takes now and return how
    many bytes that was: all of a small message; part of 1 MiB (a partial
    write); 0 once the buffers are full, without raising. The peer must
    receive exactly the bytes reported, in order.
    """
    feedback = Feedback("send_some")
    sock, peer = socket.socketpair()
    with sock, peer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 * KiB)
        sock.setblocking(False)
        peer.setblocking(False)
        small, big, more = _pattern(100, 1), _pattern(MiB, 2), _pattern(MiB, 3)
        steps = (
            ("a 100-byte message", small, "all"),
            ("1 MiB", big, "part"),
            ("1 MiB more, with the buffers full", more, "none"),
        )
        expected = b""
        for label, data, how in steps:
            sent = _send(feedback, send_some, sock, data, label)
            if sent is None or not _judge_count(feedback, label, sent, len(data), how):
                return feedback
            expected += data[:sent]
            if how == "all":
                _check_peer(feedback, peer, expected, label)
                expected = b""
        _check_peer(feedback, peer, expected, "1 MiB and 1 MiB more")
    return feedback


def _send(
    feedback: Feedback, send_some: SendSome, sock: socket.socket, data: bytes, label: str
) -> int | None:
    try:
        sent = run_with_timeout(send_some, sock, data, timeout=2)
    except Exception as exc:
        feedback.expect(False, _send_failure(label, exc))
        return None
    if not feedback.expect(
        is_int(sent),
        f"with {label}, it returned {sent!r}, expected the number of bytes sent",
    ):
        return None
    return sent


def _send_failure(label: str, exc: Exception) -> str:
    """What went wrong when ``send_some`` raised ``exc`` (or never returned) with ``label``."""
    if isinstance(exc, DidNotReturn):
        return (
            f"with {label}, it never returned: while the buffer is full, retrying never ends; "
            "return what was sent so far"
        )
    if isinstance(exc, BlockingIOError):
        return (
            f"with {label}, it raised BlockingIOError: on a non-blocking socket, sendall() "
            "raises it once the buffer is full (and does not say how much it sent); "
            "call send() and catch BlockingIOError"
        )
    return f"with {label}, it raised {type(exc).__name__}: {exc}"


def _judge_count(feedback: Feedback, label: str, sent: int, size: int, how: str) -> bool:
    if how == "all":
        return feedback.expect(
            sent == size,
            f"with {label}, it returned {sent}, expected {size}: a small message fits at once",
        )
    if how == "part":
        return feedback.expect(
            0 < sent < size,
            f"with {label}, it returned {sent}: a 4 KiB send buffer takes only part "
            f"of {size} bytes; return how many send() took",
        )
    return feedback.expect(
        sent == 0, f"with {label}, it returned {sent}, expected 0: nothing fits any more"
    )


def _check_peer(feedback: Feedback, peer: socket.socket, expected: bytes, label: str) -> None:
    got = bytearray()
    while True:
        try:
            chunk = peer.recv(MiB)
        except BlockingIOError:
            break
        if not chunk:
            break
        got += chunk
    if len(got) != len(expected):
        feedback.expect(
            False,
            f"after {label}, the peer received {len(got)} bytes, "
            f"but the returned counts add up to {len(expected)}",
        )
    else:
        feedback.expect(
            got == expected,
            f"after {label}, the peer received the right number of bytes, "
            "but not the data, in order",
        )


# -- exercise 3: echo_many --------------------------------------------------------


def check_echo_many(
    echo_many: EchoMany, payloads: Sequence[bytes] = ECHO_MANY_PAYLOADS
) -> Feedback:
    """Run ``echo_many(address, payloads)`` against a real `EchoServer` with a 4 KiB send buffer.

    It must open one connection per payload, all at the same time, and return
    the echoes in payload order, each byte for byte, with every socket
    closed. The default payloads: eight, from 0 bytes to 1 MiB.
    """
    feedback = Feedback("echo_many")
    with EchoServer(sndbuf=4 * KiB) as server:
        try:
            echoes = run_with_timeout(echo_many, server.address, list(payloads), timeout=20)
        except DidNotReturn:
            feedback.expect(
                False,
                "it never returned (in 20 s): "
                "does each connection read while it sends, and stop at EOF?",
            )
            return feedback
        except Exception as exc:
            feedback.expect(False, f"it raised {type(exc).__name__}: {exc}")
            return feedback
        _check_echoes(feedback, echoes, payloads)
        _check_closed(feedback, server)
        _check_connections(feedback, server, len(payloads))
    return feedback


def _check_echoes(feedback: Feedback, echoes: Any, payloads: Sequence[bytes]) -> None:
    if not feedback.expect(
        isinstance(echoes, list) and len(echoes) == len(payloads),
        f"it returned {_short(echoes)}, "
        f"expected a list of {len(payloads)} echoes (bytes), one per payload",
    ):
        return
    if (
        all(isinstance(e, (bytes, bytearray)) for e in echoes)
        and echoes != list(payloads)
        and sorted(map(bytes, echoes)) == sorted(payloads)
    ):
        feedback.expect(
            False,
            "every echo came back, but not in payload order: "
            "echoes[i] must be the echo of payloads[i]",
        )
        return
    _check_each_echo(feedback, echoes, payloads)


def _check_each_echo(feedback: Feedback, echoes: list[Any], payloads: Sequence[bytes]) -> None:
    """Name each echo that is not bytes, has the wrong length, or differs from its payload."""
    for i, (echo, payload) in enumerate(zip(echoes, payloads, strict=True)):
        label = f"payload {i} ({len(payload)} bytes)"
        if not isinstance(echo, (bytes, bytearray)):
            feedback.expect(False, f"{label}: got {type(echo).__name__}, expected bytes")
        elif len(echo) != len(payload):
            hint = ": was it read until EOF?" if len(echo) < len(payload) else ""
            feedback.expect(False, f"{label}: got {len(echo)} bytes back{hint}")
        else:
            feedback.expect(
                echo == payload, f"{label}: got the right number of bytes, but not the payload"
            )


def _check_closed(feedback: Feedback, server: EchoServer, timeout: float = 2.0) -> None:
    """Give the server ``timeout`` s to see every connection closed; a failure, not an error."""
    if not wait_until(lambda: server.connections == 0, timeout):
        feedback.expect(
            False,
            f"{server.connections} connections were still open afterwards: close every socket",
        )


def _check_connections(feedback: Feedback, server: EchoServer, count: int) -> None:
    """One connection per payload, all open at once, and served at once."""
    if not feedback.expect(
        server.accepted == count,
        f"the server accepted {server.accepted} connections, expected {count} (one per payload)",
    ):
        return
    assert server.timeline is not None
    events = server.timeline.events(action=("accept", "recv", "close"))
    late = _accepted_after_a_close(events)
    if not feedback.expect(
        not late,
        f"the connections were not all open at the same time ({late[0] if late else ''} "
        "was accepted after an earlier one had closed): "
        "connect them all first, then drive them with one selector",
    ):
        return
    feedback.expect(
        _overlapping(events),
        "all connections were open at once, but the server served them one at a time "
        "(each connection's echo was finished before the next one sent a byte): "
        "blocking calls on one socket after another; "
        "register them all with one selector and serve whichever is ready",
    )


def _accepted_after_a_close(events: Sequence[Any]) -> list[str]:
    """The connections accepted after some connection had already closed."""
    first_close = next((e.seq for e in events if e.action == "close" and e.actor != "server"), None)
    return [
        e.detail
        for e in events
        if e.action == "accept" and first_close is not None and e.seq > first_close
    ]


def _overlapping(events: Sequence[Any]) -> bool:
    """True if some connection sent its first byte while another one's echo was still going on."""
    spans: dict[str, list[int]] = {}
    for event in events:
        if event.actor.startswith("server/") and event.action in ("recv", "close"):
            spans.setdefault(event.actor, []).append(event.seq)
    starts = sorted((seqs[0], seqs[-1]) for seqs in spans.values())
    return any(later[0] < earlier[1] for earlier, later in pairwise(starts))


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
