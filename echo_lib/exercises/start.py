"""Checker for notebook 00: one echo with a plain blocking socket."""

from __future__ import annotations

from collections.abc import Callable

from ..driver.server import EchoServer
from ..driver.wait import wait_until
from . import DidNotReturn, Feedback, run_with_timeout

__all__ = ["check_echo_once"]

EchoOnce = Callable[[tuple[str, int], bytes], bytes]
#: How long the server's thread may take to accept a connection echo_once made.
ACCEPT_WAIT = 2.0


def check_echo_once(echo_once: EchoOnce) -> Feedback:
    """Run ``echo_once(address, message)`` against a real server, with three messages.

    It should connect, send the message, read until the whole echo is back,
    close its socket and return the bytes. Returns `Feedback` naming each problem.
    """
    feedback = Feedback("echo_once")
    with EchoServer() as server:
        for message in (b"hello", b"x" * 200_000, b""):
            if not _check_one(feedback, echo_once, server, message):
                break
    return feedback


def _check_one(feedback: Feedback, echo_once: EchoOnce, server: EchoServer, message: bytes) -> bool:
    label = f"{len(message)}-byte message"
    accepted = server.accepted
    try:
        reply = run_with_timeout(echo_once, server.address, message, timeout=5)
    except DidNotReturn:
        return feedback.expect(
            False, f"with a {label} it never returned: does it wait for more bytes than were sent?"
        )
    except Exception as exc:
        return feedback.expect(False, f"with a {label} it raised {type(exc).__name__}: {exc}")
    ok = feedback.expect(
        isinstance(reply, bytes), f"it returned {type(reply).__name__}, expected bytes"
    )
    ok = ok and feedback.expect(
        reply == message, f"with a {label} it returned {len(reply)} bytes: {_excerpt(reply)}"
    )
    _connected_once(feedback, server, accepted, label)
    feedback.expect(
        _closed(server), f"with a {label} the socket was left open: close it (a `with` block does)"
    )
    return ok


def _connected_once(feedback: Feedback, server: EchoServer, accepted: int, label: str) -> None:
    # echo_once may return before the server's thread has accepted (an empty
    # message needs no reply): wait for the accept, then count.
    wait_until(lambda: server.accepted > accepted, ACCEPT_WAIT)
    feedback.expect(
        server.accepted == accepted + 1,
        f"with a {label} it connected {server.accepted - accepted} times, expected once",
    )


def _closed(server: EchoServer, timeout: float = 2.0) -> bool:
    """The learner's socket is closed once the server saw EOF and closed its side."""
    return wait_until(lambda: server.connections == 0, timeout)


def _excerpt(data: bytes) -> str:
    return repr(data) if len(data) <= 40 else repr(data[:37]) + "..."
