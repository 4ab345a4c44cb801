"""The exercises of notebook 10: the solutions pass, plausible mistakes are named."""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from echo_lib.exercises.connections import (
    check_connect_with_timeout,
    check_frame_decoder,
    check_predictions,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "notebooks" / "solutions"))
from connections import FrameDecoder, connect_with_timeout, predictions  # noqa: E402

from .conftest import wait_for  # noqa: E402

HEADER = struct.Struct("!I")


def test_predictions_solution_passes() -> None:
    assert str(check_predictions(predictions)) == "✔ predictions: all checks passed"


def test_a_wrong_prediction_shows_the_live_result() -> None:
    text = str(check_predictions({**predictions, "after_reset": "ConnectionResetError"}))
    assert "✘ predictions: 1 problem" in text
    assert "you predicted 'ConnectionResetError', the live run gave \"b''\"" in text


def test_unfilled_predictions_are_named() -> None:
    text = str(check_predictions({"connect_ex": ...}))
    assert (
        "'connect_ex' (the errno name connect_ex() returns" in text
        and "fill in a string, got Ellipsis" in text
    )
    assert "'second_send'" in text


def test_connect_solution_passes() -> None:
    feedback = check_connect_with_timeout(connect_with_timeout)
    assert feedback.passed, str(feedback)


def flawed_connect(
    opened: list[socket.socket], *, reads_so_error: bool, closes_on_timeout: bool
) -> Callable[..., socket.socket]:
    """A connect_with_timeout with chosen faults; every socket it makes goes into ``opened``."""

    def connect_with_timeout(address: tuple[str, int], timeout: float) -> socket.socket:
        sock = socket.socket()
        opened.append(sock)
        sock.setblocking(False)
        sock.connect_ex(address)
        with selectors.DefaultSelector() as sel:
            sel.register(sock, selectors.EVENT_WRITE)
            if not sel.select(timeout):
                if closes_on_timeout:
                    sock.close()
                raise TimeoutError(f"no connection to {address} within {timeout} s")
        if reads_so_error and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            raise ConnectionRefusedError(address)  # but leaves the socket open
        return sock

    return connect_with_timeout


def feedback_for(reads_so_error: bool, closes_on_timeout: bool) -> str:
    opened: list[socket.socket] = []
    try:
        return str(
            check_connect_with_timeout(
                flawed_connect(
                    opened, reads_so_error=reads_so_error, closes_on_timeout=closes_on_timeout
                )
            )
        )
    finally:
        for sock in opened:  # the test closes what the flawed version leaves open
            sock.close()


def test_writable_taken_for_connected_is_caught() -> None:
    assert feedback_for(reads_so_error=False, closes_on_timeout=True) == (
        "✘ connect_with_timeout: 1 problem\n"
        "  - to a refused port it returned a socket: writable means connected *or failed*; read "
        "SO_ERROR"
    )


def test_sockets_left_open_on_failure_are_counted() -> None:
    assert feedback_for(reads_so_error=True, closes_on_timeout=False) == (
        "✘ connect_with_timeout: 1 problem\n  - 2 sockets left open: close the socket before "
        "raising"
    )


def test_the_notebook_starting_version_has_both_faults_named() -> None:
    assert feedback_for(reads_so_error=False, closes_on_timeout=False) == (
        "✘ connect_with_timeout: 2 problems\n"
        "  - to a refused port it returned a socket: writable means connected *or failed*; read "
        "SO_ERROR\n"
        "  - 1 socket left open: close the socket before raising"
    )


def test_a_blocking_connect_is_told_to_use_select() -> None:
    opened: list[socket.socket] = []

    def blocking(address: tuple[str, int], timeout: float) -> socket.socket:
        sock = socket.socket()
        opened.append(sock)
        sock.connect(address)  # no timeout: waits for the kernel's SYN retries
        return sock

    threads = threading.active_count()
    try:
        text = str(check_connect_with_timeout(blocking))
    finally:
        for sock in opened:  # shutdown() ends the connect still blocked in the abandoned thread
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        wait_for(
            lambda: threading.active_count() < threads + 1, what="the abandoned connect() to end"
        )
        for sock in opened:
            sock.close()
    assert (
        "a connect that never completes made it hang (blocking did not return within 3.2 s)" in text
    )


def test_frame_decoder_solution_passes() -> None:
    assert str(check_frame_decoder(FrameDecoder)) == "✔ FrameDecoder: all checks passed"


class OneFramePerChunk:
    """Assumes each chunk is exactly one frame: the one-send-one-recv mistake."""

    def feed(self, data: bytes) -> list[bytes]:
        (length,) = HEADER.unpack_from(data)
        return [data[4 : 4 + length]]

    def eof(self) -> None:
        pass


def test_one_frame_per_chunk_fails_on_several_frames_in_one_chunk() -> None:
    text = str(check_frame_decoder(OneFramePerChunk))
    assert (
        "the whole stream in one chunk (several frames in one recv()): got [b'hello'], expected "
        "[b'hello', b''," in text
    )


class SkipsEmptyFrames(FrameDecoder):
    def feed(self, data: bytes) -> list[bytes]:
        return [m for m in super().feed(data) if m]


def test_dropping_zero_length_frames_is_caught() -> None:
    assert "expected [b'hello', b'', b'frames keep the boundaries', b''," in str(
        check_frame_decoder(SkipsEmptyFrames)
    )


class ShortHeader(FrameDecoder):
    """Unpacks the header as soon as any byte is buffered."""

    def feed(self, data: bytes) -> list[bytes]:
        self.buffer += data
        messages = []
        while self.buffer:
            (length,) = HEADER.unpack_from(self.buffer)
            if len(self.buffer) < 4 + length:
                break
            messages.append(bytes(self.buffer[4 : 4 + length]))
            del self.buffer[: 4 + length]
        return messages


def test_a_header_split_across_chunks_is_caught() -> None:
    text = str(check_frame_decoder(ShortHeader))
    assert text == (
        "✘ FrameDecoder: 1 problem\n"
        "  - 1-byte chunks: raised error: unpack_from requires a buffer of at least 4 bytes for "
        "unpacking 4 bytes at offset 0 (actual buffer size is 1)"
    )


class IgnoresTruncation(FrameDecoder):
    def eof(self) -> None:
        pass


def test_a_truncated_frame_at_eof_must_raise() -> None:
    assert str(check_frame_decoder(IgnoresTruncation)) == (
        "✘ FrameDecoder: 2 problems\n"
        "  - eof() with the stream cut inside the last payload returned: raise EOFError, the peer "
        "sent a partial frame\n"
        "  - eof() with the stream cut inside the first header returned: raise EOFError, the peer "
        "sent a partial frame"
    )


def test_a_decoder_that_never_returns_is_reported_not_hung() -> None:
    release = threading.Event()

    class Stuck(FrameDecoder):
        def feed(self, data: bytes) -> list[bytes]:
            release.wait(30)  # a decoder stuck in a loop, for as long as the test wants
            return super().feed(data)

    threads = threading.active_count()
    try:
        text = str(check_frame_decoder(Stuck, timeout=0.5))
    finally:
        release.set()
    wait_for(lambda: threading.active_count() <= threads, what="the stuck decoder's thread to end")
    assert text == (
        "✘ FrameDecoder: 1 problem\n"
        "  - the whole stream in one chunk (several frames in one recv()): raised DidNotReturn: "
        "_decode did not return within 0.5 s (it could not be stopped and still runs in a "
        "background thread (echo_lib-exercise-_decode), probably blocked in a call with no "
        "timeout; restart the kernel to end it)"
    )


def test_the_notebook_stub_reports_not_implemented() -> None:
    class Stub:
        def feed(self, data: bytes) -> list[bytes]:
            raise NotImplementedError("your code here")

        def eof(self) -> None:
            raise NotImplementedError("your code here")

    assert str(check_frame_decoder(Stub)) == (
        "✘ FrameDecoder: 1 problem\n"
        "  - the whole stream in one chunk (several frames in one recv()): raised "
        "NotImplementedError: your code here"
    )
