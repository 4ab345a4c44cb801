"""Checkers for notebook 10 (connections, framing and errors).

- `check_predictions`: the learner's predictions against live runs on loopback;
- `check_connect_with_timeout`: a non-blocking connect with a timeout, done
  with a selector, against a listening, a refusing and an unanswering port;
- `check_frame_decoder`: a length-prefixed frame decoder fed adversarial chunks.
"""

from __future__ import annotations

import errno
import os
import random
import selectors
import socket
import struct
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from ..driver.probes import outcome, refusing_address, tcp_pair, unanswered_address
from ..driver.sockets import LOOPBACK, close_with_reset
from . import DidNotReturn, Feedback, run_with_timeout

__all__ = [
    "HEADER",
    "PREDICTION_QUESTIONS",
    "check_connect_with_timeout",
    "check_frame_decoder",
    "check_predictions",
    "encode",
]

HEADER = struct.Struct("!I")  # the length prefix: 4 bytes, unsigned, big-endian (network order)
ConnectWithTimeout = Callable[[tuple[str, int], float], socket.socket]


def encode(payload: bytes) -> bytes:
    """One frame: ``payload``'s length as 4 big-endian bytes, then ``payload``."""
    return HEADER.pack(len(payload)) + payload


# -- exercise 1 (predict) --------------------------------------------------------


def _connect_ex_errno() -> str:
    with socket.create_server((LOOPBACK, 0)) as listener, socket.socket() as sock:
        sock.setblocking(False)
        return errno.errorcode[sock.connect_ex(listener.getsockname())]


def _so_error_when_refused() -> str:
    with refusing_address() as address, socket.socket() as sock, selectors.DefaultSelector() as sel:
        sock.setblocking(False)
        sock.connect_ex(address)
        sel.register(sock, selectors.EVENT_WRITE)
        sel.select(timeout=5)
        return errno.errorcode[sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)]


def _after_peer_closed(
    prepare: Callable[[socket.socket, socket.socket], None], call: Callable[[socket.socket], object]
) -> str:
    client, server = tcp_pair()
    with client, server:
        prepare(client, server)
        return outcome(lambda: call(client)).split(" ")[0]


def _unread_then_close(client: socket.socket, server: socket.socket) -> None:
    client.sendall(b"never read")
    server.settimeout(5)
    server.recv(1, socket.MSG_PEEK)  # the data has arrived, and stays unread
    server.close()


def _reset_then_recv_once(client: socket.socket, server: socket.socket) -> None:
    close_with_reset(server)
    outcome(lambda: client.recv(1024))


def _close_then_send_once(client: socket.socket, server: socket.socket) -> None:
    server.close()
    client.send(b"first")


def _recv(sock: socket.socket) -> bytes:
    return sock.recv(1024)


def _send(sock: socket.socket) -> int:
    return sock.send(b"second")


PREDICTION_QUESTIONS: Mapping[str, tuple[str, Callable[[], str]]] = MappingProxyType(
    {
        "connect_ex": (
            "the errno name connect_ex() returns: non-blocking socket, listening loopback port",
            _connect_ex_errno,
        ),
        "so_error": (
            "the errno name in SO_ERROR once a refused connect is writable",
            _so_error_when_refused,
        ),
        "unread": (
            "what recv() returns or raises after the peer closed with our data unread",
            lambda: _after_peer_closed(_unread_then_close, _recv),
        ),
        "after_reset": (
            "what the next recv() returns after one recv() raised ConnectionResetError",
            lambda: _after_peer_closed(_reset_then_recv_once, _recv),
        ),
        "second_send": (
            "what the second send() returns or raises after the peer closed",
            lambda: _after_peer_closed(_close_then_send_once, _send),
        ),
    }
)


def check_predictions(predictions: Mapping[str, object]) -> Feedback:
    """Compare each prediction with what a live run on loopback gives.

    ``predictions`` maps each key of `PREDICTION_QUESTIONS` to a string: an
    errno name (``"EAGAIN"``), an exception class (``"OSError"``) or a repr
    (``"b''"``, ``"1"``). Case and surrounding spaces do not matter.
    """
    feedback = Feedback("predictions")
    if not feedback.expect(
        isinstance(predictions, Mapping), f"predictions must be a dict, got {predictions!r}"
    ):
        return feedback
    for key, (question, live) in PREDICTION_QUESTIONS.items():
        guess = predictions.get(key, ...)
        if not feedback.expect(
            isinstance(guess, str), f"{key!r} ({question}): fill in a string, got {guess!r}"
        ):
            continue
        actual = live()
        feedback.expect(
            guess.strip().lower() == actual.lower(),
            f"{key!r} ({question}): you predicted {guess!r}, the live run gave {actual!r}",
        )
    return feedback


# -- exercise 2 (change) ---------------------------------------------------------


def _open_fds() -> set[str] | None:
    """This process's open fds (Linux, macOS), or None where they cannot be listed."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        if os.path.isdir(folder):
            return set(os.listdir(folder))
    return None


def _attempt(
    connect: ConnectWithTimeout, address: tuple[str, int], timeout: float
) -> tuple[Any, BaseException | None, int]:
    """``(returned, raised, fds left open)`` for one call, waited for at most ``timeout`` + 3 s.

    The fds are counted while the exception (and so the frames of the
    learner's function, with their sockets) is still alive: a socket left to
    the garbage collector counts as left open.
    """
    before = _open_fds()
    try:
        returned, raised = run_with_timeout(connect, address, timeout, timeout=timeout + 3), None
    except BaseException as exc:  # noqa: BLE001  (what the learner's code raised is the result)
        returned, raised = None, exc
    after = _open_fds()
    extra = len(after - before) if before is not None and after is not None else 0
    return returned, raised, extra - isinstance(returned, socket.socket)


def _check_connects(feedback: Feedback, connect: ConnectWithTimeout) -> int:
    with socket.create_server((LOOPBACK, 0)) as listener:
        sock, exc, leaked = _attempt(connect, listener.getsockname(), 2.0)
        if not feedback.expect(
            isinstance(sock, socket.socket),
            f"to a listening port it should return the socket, got {sock!r} ({exc!r})",
        ):
            return leaked
        with sock:
            listener.settimeout(5)
            peer, _ = listener.accept()
            peer.close()
            feedback.expect(
                sock.getpeername() == listener.getsockname(),
                f"the returned socket is not connected to {listener.getsockname()!r}",
            )
    return leaked


# How each failing connect must end: (where, the timeout passed, the exception
# it must raise, when, what to say if it returned a socket instead).
_FAILURES = (
    (
        refusing_address,
        2.0,
        ConnectionRefusedError,
        "to a refused port",
        "to a refused port it returned a socket: writable means connected *or failed*; read "
        "SO_ERROR",
    ),
    (
        unanswered_address,
        0.2,
        TimeoutError,
        "when the timeout expires",
        "it returned a socket whose connect was still pending: wait for EVENT_WRITE",
    ),
)


def _check_failures(feedback: Feedback, connect: ConnectWithTimeout) -> int:
    leaked = 0
    for where, timeout, expected, when, returned_socket in _FAILURES:
        with where() as address:
            sock, exc, fds = _attempt(connect, address, timeout)
        leaked += fds
        if isinstance(sock, socket.socket):
            sock.close()
            feedback.expect(False, returned_socket)
        elif isinstance(exc, DidNotReturn):
            feedback.expect(
                False,
                f"a connect that never completes made it hang ({exc}): pass the timeout to "
                "select()",
            )
        else:
            feedback.expect(
                isinstance(exc, expected),
                f"{when} it should raise {expected.__name__}, got {exc!r}",
            )
    return leaked


def check_connect_with_timeout(connect: ConnectWithTimeout) -> Feedback:
    """Run ``connect(address, timeout)`` against a listening, a refusing and a silent port.

    It should return the connected socket, raise `ConnectionRefusedError`,
    and raise `TimeoutError` after ``timeout`` seconds, and close the socket it
    made whenever it raises. The open fds are compared where they can be listed.
    """
    feedback = Feedback("connect_with_timeout")
    leaked = _check_connects(feedback, connect) + _check_failures(feedback, connect)
    feedback.expect(
        not leaked,
        f"{leaked} socket{'s' if leaked > 1 else ''} left open: close the socket before raising",
    )
    return feedback


# -- exercise 3 (write) ----------------------------------------------------------

MESSAGES = (b"hello", b"", b"frames keep the boundaries", b"", bytes(range(256)), b"!")


_STREAM = b"".join(map(encode, MESSAGES))
_BIG = bytes(range(251)) * 261  # 65,511 bytes: one frame split across 66 chunks
Case = tuple[str, list[bytes], list[bytes]]


def _cases() -> Iterator[Case]:
    """``(description, chunks, expected messages)``: the adversarial ways to cut a stream."""
    expected, stream = list(MESSAGES), _STREAM
    yield "the whole stream in one chunk (several frames in one recv())", [stream], expected
    yield "1-byte chunks", [stream[i : i + 1] for i in range(len(stream))], expected
    for i in range(1, len(stream)):
        yield (
            f"two chunks, split after byte {i} of {len(stream)}",
            [stream[:i], stream[i:]],
            expected,
        )
    big = encode(_BIG)
    yield (
        "one 65,511-byte frame in 1,000-byte chunks",
        [big[i : i + 1000] for i in range(0, len(big), 1000)],
        [_BIG],
    )
    cuts = sorted(random.Random(10).sample(range(1, len(stream)), 12))
    yield (
        f"random cuts at {cuts}",
        [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)],
        expected,
    )


def _decode(decoder_class: type, chunks: list[bytes]) -> list[bytes]:
    """Feed ``chunks`` to a new decoder, then call its eof(); the messages it returned."""
    decoder = decoder_class()
    messages: list[bytes] = []
    for chunk in chunks:
        got = decoder.feed(chunk)
        if not isinstance(got, list):
            raise TypeError(f"feed() must return a list of messages, got {got!r}")
        messages.extend(bytes(m) for m in got)
    decoder.eof()
    return messages


def _short(messages: object, limit: int = 90) -> str:
    text = repr(messages)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_chunkings(feedback: Feedback, decoder_class: type, timeout: float) -> None:
    for description, chunks, expected in _cases():
        try:
            got = run_with_timeout(_decode, decoder_class, chunks, timeout=timeout)
        except Exception as exc:  # noqa: BLE001  (reported, with the case that caused it)
            feedback.expect(False, f"{description}: raised {type(exc).__name__}: {exc}")
            return
        if not feedback.expect(
            got == expected, f"{description}: got {_short(got)}, expected {_short(expected)}"
        ):
            return  # the first failing case says enough


def _check_truncated(feedback: Feedback, decoder_class: type, timeout: float) -> None:
    for cut, where in ((len(_STREAM) - 1, "the last payload"), (2, "the first header")):
        decoder = decoder_class()
        try:
            run_with_timeout(decoder.feed, _STREAM[:cut], timeout=timeout)
            run_with_timeout(decoder.eof, timeout=timeout)
        except EOFError:
            continue
        except Exception as exc:  # noqa: BLE001
            feedback.expect(
                False,
                f"eof() inside {where} should raise EOFError, got {type(exc).__name__}: {exc}",
            )
            continue
        feedback.expect(
            False,
            f"eof() with the stream cut inside {where} returned: raise EOFError, the peer sent a "
            "partial frame",
        )


def check_frame_decoder(decoder_class: type, timeout: float = 5.0) -> Feedback:
    """Feed a stream of length-prefixed frames to ``decoder_class()`` cut every adversarial way.

    ``feed(data)`` returns the list of messages completed by ``data``;
    ``eof()`` raises `EOFError` if the stream ended inside a frame. The
    stream has zero-length frames; it is fed whole, a byte at a time, split at
    every point, at random points, and a frame is split across 66 chunks.
    A call that takes longer than ``timeout`` seconds is reported, not waited for.
    """
    feedback = Feedback("FrameDecoder")
    for check in (_check_chunkings, _check_truncated):
        check(feedback, decoder_class, timeout)
        if not feedback:
            break
    return feedback
