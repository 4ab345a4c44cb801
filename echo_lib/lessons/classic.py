"""Notebook 05: the seed's echo server and client, run as written, and their faults.

`classic_server` and `classic_client` are the two scripts of the seed chapter
(PyMOTW's selectors chapter), turned into functions with three changes only,
each marked ``# changed:`` in the code: the sockets come in from the caller
(bound to port 0, so nothing collides), ``print`` becomes ``say`` (a thread
must never print in a notebook), and the loops stop at a deadline. A nested
function needs ``nonlocal`` where the script had ``global``.

A `Stage` runs such programs in daemon threads and records what they say,
and what their selectors do, into one `Timeline`. With ``take_turns=True``
(the default) the programs take turns, like players at one keyboard: a
program runs until its ``select()`` finds nothing ready within a short grace
period, then hands the turn to the next program and waits for it to come
back. Threads scheduled freely interleave differently on every run (the
kernel decides when each wakes up); taking turns fixes one of the legal
interleavings, so a log is the same text every run, which is what a
notebook's committed output must be. The seed chapter prints no output for
its pair; the order of the log here (the client sends both messages before
the server reads either) comes from the turn-taking alone. The grace period,
rather than a zero timeout, absorbs bytes that the kernel delivers a moment
late on a busy machine.

Each program gets, by parameter name, what it asks for: ``mysel`` (its own
`RecordingSelector`, which names the first registration after the program
and the next ones ``<name>/conn-1``, ``<name>/conn-2``...), ``say`` (records
a line; lines the seed prints about bytes and connections also become
``recv``/``send``/``accept``/``connect``/``close`` events, so a plot can draw
them) and ``pause`` (hand the turn over, for programs without a selector).
When a program returns or raises, its runner closes every socket that was
ever registered on its selector, as the kernel does when a script's process
exits; an exception is kept, logged with where it happened, and never
printed from the thread.

`edit()` applies a fix to a copy of a program (one defined in a notebook
cell, or here) and shows it as a diff: the notebook's fixes are edits the
learner can make in the program's own cell.

`FaultLab` (from `fault_lab()`) runs each fault as the seed has it or as
`echo_lib` fixes it, and shows the timeline and a deterministic outcome.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import inspect
import linecache
import re
import select
import selectors
import socket
import struct
import sys
import textwrap
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..core.events import Event, mask_name
from ..core.timeline import Timeline
from ..driver.client import EchoClient
from ..driver.recording import RecordingSelector
from ..driver.server import EchoServer
from ..view.widgets import WidgetFront, stream_output, timeline_output, weak_callback

__all__ = [
    "FAULTS",
    "VERSIONS",
    "FaultLab",
    "Outcome",
    "Runner",
    "Source",
    "Stage",
    "chunked_echo_server",
    "classic_client",
    "classic_server",
    "closing_server",
    "edit",
    "Edit",
    "resetting_client",
    "fault_lab",
    "fault_table",
    "finish_echo",
    "run_fault",
    "modify_verdicts",
    "send_without_reading",
    "source",
    "wait_listening",
    "wait_until",
]

KiB, MiB = 1 << 10, 1 << 20
GRACE = 0.03  # seconds a turn's select() waits before it counts as "nothing ready"
MAX_WAIT = 1.0  # no select() on a stage waits longer than this (the seed's own timeout)
TURN_TIMEOUT = 5.0  # a program waits at most this long for its turn: never hang
LOCALHOST = "127.0.0.1"
# struct linger: two ints on POSIX, two unsigned shorts on Windows; on, 0 seconds
LINGER_ZERO = struct.pack("HH" if sys.platform == "win32" else "ii", 1, 0)


# -- the seed's programs ---------------------------------------------------------
# The seed's programs, and the small ones written in its style, keep the seed's text
# (quotes and all): the formatter leaves them alone.
# fmt: off


def classic_server(server, mysel, say, seconds=5.0):
    """The seed's selectors_echo_server.py as a function.

    `server` is a TCP socket the caller created and bound (to port 0);
    `mysel` is the selector; `say` takes the place of print.
    """
    keep_running = True

    def read(connection, mask):
        "Callback for read events"
        nonlocal keep_running  # changed: a function's variable, not a global

        client_address = connection.getpeername()
        say('read({})'.format(client_address))
        data = connection.recv(1024)
        if data:
            # A readable client socket has data
            say('  received {!r}'.format(data))
            connection.sendall(data)
        else:
            # Interpret empty result as closed connection
            say('  closing')
            mysel.unregister(connection)
            connection.close()
            # Tell the main loop to stop
            keep_running = False

    def accept(sock, mask):
        "Callback for new connections"
        new_connection, addr = sock.accept()
        say('accept({})'.format(addr))
        new_connection.setblocking(False)
        mysel.register(new_connection, selectors.EVENT_READ, read)

    server_address = server.getsockname()  # changed: created and bound by the caller
    say('starting up on {} port {}'.format(*server_address))
    server.setblocking(False)
    server.listen(5)

    mysel.register(server, selectors.EVENT_READ, accept)

    deadline = time.monotonic() + seconds  # changed: the loop ends at a deadline
    while keep_running and time.monotonic() < deadline:
        say('waiting for I/O')
        for key, mask in mysel.select(timeout=1):
            callback = key.data
            callback(key.fileobj, mask)

    say('shutting down')
    mysel.close()


def classic_client(server_address, sock, mysel, say, seconds=5.0):
    """The seed's selectors_echo_client.py as a function.

    `server_address` is the server's (host, port); `sock` is a new TCP
    socket from the caller; `mysel` is the selector; `say` takes the place
    of print.
    """
    keep_running = True
    outgoing = [
        b'It will be repeated.',
        b'This is the message.  ',
    ]
    bytes_sent = 0
    bytes_received = 0

    # Connecting is a blocking operation, so call setblocking()
    # after it returns.
    say('connecting to {} port {}'.format(*server_address))
    sock.connect(server_address)  # changed: the socket comes from the caller
    sock.setblocking(False)

    # Set up the selector to watch for when the socket is ready
    # to send data as well as when there is data to read.
    mysel.register(
        sock,
        selectors.EVENT_READ | selectors.EVENT_WRITE,
    )

    deadline = time.monotonic() + seconds  # changed: the loop ends at a deadline
    while keep_running and time.monotonic() < deadline:
        say('waiting for I/O')
        for key, mask in mysel.select(timeout=1):
            connection = key.fileobj
            client_address = connection.getpeername()
            say('client({})'.format(client_address))

            if mask & selectors.EVENT_READ:
                say('  ready to read')
                data = connection.recv(1024)
                if data:
                    # A readable client socket has data
                    say('  received {!r}'.format(data))
                    bytes_received += len(data)

                # Interpret empty result as closed connection,
                # and also close when we have received a copy
                # of all of the data sent.
                keep_running = not (
                    data or
                    (bytes_received and
                     (bytes_received == bytes_sent))
                )

            if mask & selectors.EVENT_WRITE:
                say('  ready to write')
                if not outgoing:
                    # We are out of messages, so we no longer need to
                    # write anything. Change our registration to let
                    # us keep reading responses from the server.
                    say('  switching to read-only')
                    mysel.modify(sock, selectors.EVENT_READ)
                else:
                    # Send the next message.
                    next_msg = outgoing.pop()
                    say('  sending {!r}'.format(next_msg))
                    sock.sendall(next_msg)
                    bytes_sent += len(next_msg)

    say('shutting down')
    mysel.unregister(connection)
    connection.close()
    mysel.close()


# -- small programs and helpers the faults need ------------------------------------


def accept_and_read(listener, pause, say, nbytes, seconds):
    """Listen, let the client connect and send, accept it, read `nbytes`: return (conn, data).

    `conn` is blocking, with a `seconds` timeout; `data` is shorter only if
    the client closed first.
    """
    listener.listen(1)
    pause()  # the client connects and sends while we wait
    conn, addr = listener.accept()
    say('accept({})'.format(addr))
    try:
        conn.settimeout(seconds)
        data = _recv_all(conn, nbytes)  # all nbytes, unless the client closes first
    except BaseException:
        conn.close()
        raise
    say('  received {!r}'.format(data))
    return conn, data


def _recv_all(conn: socket.socket, nbytes: int) -> bytes:
    """What a blocking ``recv(nbytes, MSG_WAITALL)`` gives, without relying on that flag (Windows)."""
    data = bytearray()
    while len(data) < nbytes and (chunk := conn.recv(nbytes - len(data))):
        data += chunk
    return bytes(data)


def chunked_echo_server(listener, pause, say, nbytes=42, pieces=2, seconds=5.0):
    """Accept one client and echo its first `nbytes` bytes in `pieces` pieces.

    After each piece it hands the turn to the client (`pause`), so the
    client reads each piece before the next one is sent. It keeps the
    connection open until the client closes it.
    """
    conn, data = accept_and_read(listener, pause, say, nbytes, seconds)
    with conn:
        size = max(1, -(-len(data) // pieces))  # bytes per piece, rounded up
        for start in range(0, len(data), size):
            if peer_closed(conn):
                say('the client closed the connection: {} bytes never sent'.format(len(data) - start))
                return
            say('sending bytes {}..{} of {}'.format(start, min(start + size, len(data)), len(data)))
            conn.sendall(data[start:start + size])
            pause()  # the client reads this piece before the next one is sent
        deadline = time.monotonic() + seconds
        while not peer_closed(conn) and time.monotonic() < deadline:
            pause()
        say('the client closed the connection')


def peer_closed(conn, wait=GRACE):
    """True once the peer has closed `conn` (EOF or reset); waits at most `wait` s."""
    readable, _, _ = select.select([conn], [], [], wait)
    if not readable:
        return False
    try:
        return conn.recv(1, socket.MSG_PEEK) == b''
    except OSError:  # reset by the peer
        return True


def closing_server(listener, pause, say, nbytes=42, echo=0):
    """Accept one client, read its first `nbytes` bytes, echo `echo` of them, and close.

    With ``echo=0`` it stands for a server that died before it could echo:
    the kernel closes a dead program's sockets the same way.
    """
    conn, data = accept_and_read(listener, pause, say, nbytes, TURN_TIMEOUT)
    with conn:
        conn.sendall(data[:echo])  # the client reads it before the EOF that follows
    say('closed after echoing {} of {} bytes'.format(min(echo, len(data)), len(data)))


def resetting_client(server_address, sock, pause, say, message=b'hello'):
    """Connect, send `message`, then close with SO_LINGER 0: the kernel sends RST, not FIN."""
    say('connecting to {} port {}'.format(*server_address))
    sock.connect(server_address)
    sock.sendall(message)
    say('  sending {!r}'.format(message))
    pause()  # the server reads the message
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_ZERO)
    sock.close()
    say('reset the connection (SO_LINGER 0, then close)')


def send_without_reading(sock, payload):
    """Send what the kernel takes right now, read nothing; return how many bytes went."""
    sock.setblocking(False)
    view, sent = memoryview(payload), 0
    try:
        while sent < len(payload):
            sent += sock.send(view[sent:])
    except BlockingIOError:
        pass  # every buffer on the way is full: a client that does not read stops here
    except ConnectionResetError:
        pass  # the server is gone: its sockets were closed with our bytes unread
    return sent


def finish_echo(sock, payload, sent, timeout=5.0, half_close=False):
    """Send the rest of `payload` and read the whole echo; return the bytes received.

    With ``half_close``, shut down the sending side once everything is sent
    and read until the server closes (EOF). Stops early if nothing moves for
    `timeout` seconds.
    """
    sock.setblocking(False)
    view, received = memoryview(payload), bytearray()
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)
        while len(received) < len(payload) or half_close:
            ready = sel.select(timeout)
            if not ready:
                break
            for _key, mask in ready:
                if mask & selectors.EVENT_WRITE:
                    sent = _send_rest(sel, sock, view, sent, half_close)
                if mask & selectors.EVENT_READ:
                    chunk = _recv_some(sock)
                    if chunk == b"":
                        return bytes(received)  # EOF, or the server is gone
                    received += chunk or b""
    return bytes(received)


def _send_rest(sel: selectors.BaseSelector, sock: socket.socket, view: memoryview, sent: int, half_close: bool) -> int:
    """Send what fits; once all is sent, stop asking for WRITE (and shut down writing if asked)."""
    sent = _send_some(sock, view, sent) if sent < len(view) else sent
    if sent == len(view):
        sel.modify(sock, selectors.EVENT_READ)
        if half_close:
            _shutdown_quietly(sock)
    return sent


def _shutdown_quietly(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the server is gone already; reading will say so


def _send_some(sock: socket.socket, view: memoryview, sent: int) -> int:
    try:
        return sent + sock.send(view[sent:])
    except BlockingIOError:
        return sent
    except ConnectionError:  # the server is gone; what came back is what counts
        return len(view)


def _recv_some(sock: socket.socket) -> bytes | None:
    """What one ``recv()`` gives: bytes, b"" at EOF or reset, None if nothing is there after all."""
    try:
        return sock.recv(256 * KiB)
    except BlockingIOError:
        return None
    except ConnectionError:
        return b""


def wait_listening(sock: socket.socket, timeout: float = TURN_TIMEOUT) -> None:
    """Wait until another thread has called ``sock.listen()``.

    Raises `TimeoutError` if it has not after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    pause = threading.Event()
    while not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN):
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing called listen() on the socket within {timeout!r} s")
        pause.wait(0.002)


# fmt: on


# -- showing source code -------------------------------------------------------------


class Source:
    """Python source that displays highlighted in Jupyter and as plain text elsewhere."""

    def __init__(self, text: str) -> None:
        self.text = text

    def _repr_markdown_(self) -> str:
        return f"```python\n{self.text}\n```"

    def __repr__(self) -> str:
        return self.text


def source(obj: Any, start: str | None = None, stop: str | None = None) -> Source:
    """The source of ``obj``, dedented; with ``start``/``stop``, only a part of it.

    The part begins at the first line containing ``start`` and ends before
    the next line (after it) containing ``stop``. Raises `ValueError` if
    either text is not found.
    """
    lines = inspect.getsource(obj).splitlines()
    first = _find(lines, start, 0, obj) if start is not None else 0
    last = _find(lines, stop, first + 1, obj) if stop is not None else len(lines)
    return Source(textwrap.dedent("\n".join(lines[first:last])).strip("\n"))


def _find(lines: list[str], text: str, begin: int, obj: Any) -> int:
    for index in range(begin, len(lines)):
        if text in lines[index]:
            return index
    raise ValueError(f"{text!r} is not in the source of {getattr(obj, '__name__', obj)!r}")


# -- editing a program: the fixes, as edits of the learner's cells --------------------------
#
# A fix to the seed is a small edit of its program: delete a line, change a
# test, wrap a call in try/except. The learner makes it in the program's cell
# and re-runs it; `edit()` makes the same edit on a copy, so that the notebook
# still runs top to bottom with the seed's faults intact above. The copy is
# compiled from the edited source in a copy of the program's globals (so it
# sees `selectors`, `time`... but never rebinds the original's name), and its
# source is registered with `linecache`, as IPython does for a cell, so that a
# traceback through it shows the edited line.


class Edit:
    """A program with one edit applied: callable like the program, displayed as the diff.

    Attributes: `program` (the new function), `source` (its text), `diff`
    (a unified diff from the program it was made from).
    """

    def __init__(self, program: Callable[..., Any], source: str, diff: str) -> None:
        self.program, self.source, self.diff = program, source, diff
        self.__name__ = program.__name__
        self.__signature__ = inspect.signature(program)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.program(*args, **kwargs)

    def _repr_markdown_(self) -> str:
        return f"```diff\n{self.diff}\n```"

    def __repr__(self) -> str:
        return self.diff


def edit(program: Callable[..., Any] | Edit, old: str, new: str) -> Edit:
    """A copy of ``program`` with the text ``old`` in its source replaced by ``new``.

    ``program`` is a function whose source `inspect` can find (a notebook
    cell's or a module's) or an earlier `Edit`. Raises `ValueError` if
    ``old`` is not in the source exactly once.
    """
    function = program.program if isinstance(program, Edit) else program
    before = (
        program.source if isinstance(program, Edit) else textwrap.dedent(inspect.getsource(program))
    )
    count = before.count(old)
    if count != 1:
        raise ValueError(
            f"the text to replace must occur once in {function.__name__}(), found {count} times: {old!r}"
        )
    after = before.replace(old, new)
    filename = f"<edit of {function.__name__} {hashlib.sha1(after.encode()).hexdigest()[:8]}>"
    linecache.cache[filename] = (len(after), None, after.splitlines(True), filename)
    namespace = dict(function.__globals__)
    exec(compile(after, filename, "exec"), namespace)
    diff = difflib.unified_diff(
        before.splitlines(), after.splitlines(), "as it was", "edited", n=1, lineterm=""
    )
    return Edit(namespace[function.__name__], after, "\n".join(list(diff)[2:]))


# -- the stage: programs in threads that take turns ------------------------------------


class _Turns:
    """Whose turn it is, among players in order of arrival (round robin)."""

    def __init__(self, timeout: float = TURN_TIMEOUT) -> None:
        self._cond = threading.Condition()
        self._players: list[str] = []
        self._left: set[str] = set()
        self._holder: str | None = None
        self._timeout = timeout

    def add(self, name: str) -> None:
        with self._cond:
            if name in self._players:
                raise ValueError(f"a program named {name!r} is already on this stage")
            self._players.append(name)

    def open(self) -> None:
        """Give the first turn (to the first player still playing), unless someone has it."""
        with self._cond:
            if self._holder is None:
                self._holder = next((p for p in self._players if p not in self._left), None)
                self._cond.notify_all()

    def wait(self, name: str) -> None:
        """Block until it is ``name``'s turn (at most the timeout: never hang)."""
        with self._cond:
            self._cond.wait_for(lambda: self._holder == name, timeout=self._timeout)

    def pass_turn(self, name: str) -> None:
        """Hand the turn to the next player still playing, and wait for it to come back."""
        with self._cond:
            following = self._next(name)
            if following is None:
                return  # alone: keep playing
            self._holder = following
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._holder == name, timeout=self._timeout)

    def leave(self, name: str) -> None:
        with self._cond:
            self._left.add(name)
            if self._holder == name:
                self._holder = self._next(name)
                self._cond.notify_all()

    def _next(self, name: str) -> str | None:
        index = self._players.index(name)
        for player in self._players[index + 1 :] + self._players[:index]:
            if player not in self._left:
                return player
        return None


class TurnSelector(selectors.BaseSelector):
    """Wrap a selector: a ``select()`` with nothing ready hands the turn over first.

    Every wait is capped at ``max_wait`` seconds. With ``turns=None`` it only caps.
    """

    def __init__(
        self,
        inner: selectors.BaseSelector,
        turns: _Turns | None,
        player: str,
        *,
        grace: float = GRACE,
        max_wait: float = MAX_WAIT,
    ) -> None:
        self.inner, self.turns, self.player, self.grace, self.max_wait = (
            inner,
            turns,
            player,
            grace,
            max_wait,
        )

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if self.turns is not None and not self.inner.select(self.grace):
            self.turns.pass_turn(self.player)
        wait = self.max_wait if timeout is None else max(0.0, min(timeout, self.max_wait))
        return self.inner.select(wait)

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self.inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self.inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self.inner.modify(fileobj, events, data)

    def close(self) -> None:
        self.inner.close()

    def get_map(self) -> Any:
        return self.inner.get_map()


class _ProgramSelector(RecordingSelector):
    """A program's `mysel`: records, names its registrations, remembers its sockets."""

    def __init__(self, inner: selectors.BaseSelector, timeline: Timeline, actor: str) -> None:
        super().__init__(inner, timeline, actor=actor)
        self.opened: list[Any] = []
        self._registered = 0

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        self._registered += 1
        self.label(
            fileobj,
            self.actor if self._registered == 1 else f"{self.actor}/conn-{self._registered - 1}",
        )
        self.opened.append(fileobj)
        return super().register(fileobj, events, data)

    def close_all(self) -> None:
        """Close every socket ever registered here, and the selector (idempotent)."""
        for fileobj in self.opened:
            _close_quietly(fileobj)
        try:
            self.close()
        except Exception:
            pass  # the program closed it already


def _close_quietly(fileobj: Any) -> None:
    close = getattr(fileobj, "close", None)
    if close is not None:
        close()


_ADDRESS = r"(\(.*\))"
_BYTES_LINE = re.compile(r"^(\s*(?:received|sending) )(b(['\"]).*\3)$")


class _Say:
    """A program's `say`: logs the line; lines about bytes and connections also become events."""

    def __init__(self, stage: Stage, actor: str) -> None:
        self.stage, self.actor = stage, actor
        self._conns: dict[str, str] = {}
        self._current = actor  # the connection a server's read() is about

    def __call__(self, text: object) -> None:
        text = str(text)
        action, who, nbytes, detail = self._event(text)
        self.stage._add_line(self.actor, text)
        self.stage.timeline.record(who, action, nbytes=nbytes, detail=detail)

    def _event(self, text: str) -> tuple[str, str, int, str]:
        if match := re.fullmatch(r"accept" + _ADDRESS, text):
            conn = self._conns[match[1]] = self._current = (
                f"{self.actor}/conn-{len(self._conns) + 1}"
            )
            return "accept", self.actor, 0, conn.rsplit("/", 1)[1]
        if match := re.fullmatch(r"read" + _ADDRESS, text):
            self._current = self._conns.get(match[1], self.actor)
            return "log", self.actor, 0, text
        if match := _BYTES_LINE.match(text):
            action = "recv" if "received" in match[1] else "send"
            return action, self._current if action == "recv" else self.actor, _nbytes(match[2]), ""
        if match := re.fullmatch(r"sending bytes (\d+)\.\.(\d+) of \d+", text):
            return "send", self._current, int(match[2]) - int(match[1]), ""
        if text.strip() == "closing" or text.startswith("the client closed the connection"):
            return "close", self._current, 0, "peer closed"
        if text.startswith("connecting to"):
            return "connect", self.actor, 0, ""
        return "log", self.actor, 0, text


def _nbytes(literal: str) -> int:
    try:
        return len(ast.literal_eval(literal))
    except (ValueError, SyntaxError):
        return 0


class Runner:
    """One program in a daemon thread: `join()` it, then read `error` and `where`."""

    def __init__(self, stage: Stage, name: str, target: Callable[[], Any]) -> None:
        self.stage, self.name, self._target = stage, name, target
        self.result: Any = None
        self._error: BaseException | None = None
        self.where = ""
        self._thread = threading.Thread(target=self._run, name=f"classic-{name}", daemon=True)

    def start(self) -> Runner:
        self._thread.start()
        return self

    def _run(self) -> None:
        turns = self.stage._turns
        try:
            if turns is not None:
                turns.wait(self.name)
            self.result = self._target()
        except BaseException as exc:  # kept for the main thread: a thread must never print
            self._error, self.where = exc, _where(exc)
            self.stage._add_line(self.name, f"raised {_one_line(exc)}{self.where}")
            self.stage.timeline.record(self.name, "error", detail=_one_line(exc))
        finally:
            self.stage._release(self.name)
            if turns is not None:
                turns.leave(self.name)

    @property
    def done(self) -> bool:
        return self._thread.ident is not None and not self._thread.is_alive()

    @property
    def error(self) -> BaseException | None:
        """The exception that ended the program, without the thread's traceback (or None)."""
        return None if self._error is None else self._error.with_traceback(None)

    def join(self, timeout: float = TURN_TIMEOUT) -> Any:
        """Wait for the program; return its result. Raises `TimeoutError` if it is still running."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"{self.name} is still running after {timeout!r} s")
        return self.result

    def __repr__(self) -> str:
        state = (
            "running"
            if self._thread.is_alive()
            else f"ended with {type(self._error).__name__}"
            if self._error
            else "done"
        )
        return f"<Runner {self.name!r}: {state}>"


def _where(exc: BaseException) -> str:
    """`` (in read(): connection.sendall(data))``: the innermost frame of the program."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if f.name not in ("_run", "<lambda>")]
    if not ours:
        return ""
    frame = ours[-1]
    line = (frame.line or "").split("  #")[0].strip()
    return f" (in {frame.name}(): {line})" if line else f" (in {frame.name}())"


def _one_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}".rstrip(": ")


class Stage:
    """Programs in daemon threads, recording into one `timeline`; see the module docstring.

    ``take_turns`` makes the interleaving (and so the log) the same on every
    run. Use it as a context manager, or call `join()`: either way every
    program is waited for and every socket it registered is closed.
    """

    def __init__(
        self, *, take_turns: bool = True, grace: float = GRACE, max_wait: float = MAX_WAIT
    ) -> None:
        self.timeline = Timeline()
        self.grace, self.max_wait = grace, max_wait
        self._turns = _Turns() if take_turns else None
        self._lines: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._runners: dict[str, Runner] = {}
        self._selectors: dict[str, list[_ProgramSelector]] = {}

    # -- what a program gets --------------------------------------------------------

    def selector(self, name: str) -> _ProgramSelector:
        """A new `mysel` for program ``name``: recorded, turn-taking, closed when it ends."""
        turning = TurnSelector(
            selectors.DefaultSelector(), self._turns, name, grace=self.grace, max_wait=self.max_wait
        )
        sel = _ProgramSelector(turning, self.timeline, name)
        with self._lock:
            self._selectors.setdefault(name, []).append(sel)
        return sel

    def turn_selector(self, name: str) -> TurnSelector:
        """A bare turn-taking selector for program ``name`` (for an `EchoClient`'s own loop)."""
        return TurnSelector(
            selectors.DefaultSelector(), self._turns, name, grace=self.grace, max_wait=self.max_wait
        )

    def say(self, name: str) -> Callable[[object], None]:
        """A `say` for program ``name``."""
        return _Say(self, name)

    def pause(self, name: str) -> Callable[[], None]:
        """A `pause` for program ``name``: hand the turn over and wait for it to come back."""
        turns = self._turns
        return (lambda: turns.pass_turn(name)) if turns is not None else (lambda: None)

    # -- running ------------------------------------------------------------------

    def start(self, name: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Runner:
        """Run ``function(*args, **kwargs)`` as program ``name`` in a daemon thread.

        The function also gets ``mysel``, ``say`` and ``pause`` if it has
        parameters of those names (and they were not given). On a
        turn-taking stage the programs wait for `join()` to begin, so that
        all of them are on stage before the first turn. Raises `ValueError`
        if the name is taken.
        """
        if name in self._runners:
            raise ValueError(f"a program named {name!r} is already on this stage")
        parameters = inspect.signature(function).parameters
        for key, make in (("mysel", self.selector), ("say", self.say), ("pause", self.pause)):
            if key in parameters and key not in kwargs:
                kwargs[key] = make(name)
        runner = Runner(self, name, lambda: function(*args, **kwargs))
        self._runners[name] = runner
        if self._turns is not None:
            self._turns.add(name)
        return runner.start()

    def join(self, timeout: float = TURN_TIMEOUT) -> None:
        """Wait for every program (``timeout`` in all). Raises `TimeoutError` naming the late ones.

        A program's exception is not raised here: see `Runner.error` and the log.
        """
        if self._turns is not None:
            self._turns.open()  # nobody runs before every program is on stage
        deadline = time.monotonic() + timeout
        late = []
        for runner in list(self._runners.values()):
            try:
                runner.join(max(deadline - time.monotonic(), 0.01))
            except TimeoutError:
                late.append(runner.name)
        if late:
            raise TimeoutError(f"still running after {timeout!r} s: {', '.join(late)}")

    def __enter__(self) -> Stage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.join()

    def _release(self, name: str) -> None:
        with self._lock:
            sels = self._selectors.get(name, [])
        for sel in sels:
            sel.close_all()

    def _add_line(self, actor: str, text: str) -> None:
        with self._lock:
            self._lines.append((actor, text))

    # -- reading what happened --------------------------------------------------------

    def lines(self, actor: str | None = None) -> list[tuple[str, str]]:
        """Every (program, line) said so far, in order; optionally one program's."""
        with self._lock:
            return [(a, t) for a, t in self._lines if actor is None or a == actor]

    def log(self, actor: str | None = None, *, last: int | None = None) -> str:
        """The log as text, the same on every run of a turn-taking stage.

        Ports become ``PORT`` (port 0 gives new ones each run), long byte
        strings are cut short, and a line repeated in a row is shown once
        with ``(repeated)``. With ``last``, only the last lines.
        """
        rows = _collapse([(a, _tidy(t)) for a, t in self.lines(actor)])
        if last is not None:
            rows = rows[-last:] if last else []
        width = max((len(a) for a, _ in rows), default=0)
        return "\n".join(f"{a:<{width}} | {t}".rstrip() for a, t in rows) or "(nothing said)"

    def plot_events(self) -> list[Event]:
        """The events worth a plot: everything but plain log lines and select() calls."""
        return [e for e in self.timeline.events() if e.action not in ("log", "select")]

    def __repr__(self) -> str:
        return f"<Stage: {', '.join(map(repr, self._runners.values())) or 'no programs'}>"


def _tidy(text: str) -> str:
    text = re.sub(r"(\('(?:127\.0\.0\.1|localhost)', )\d+\)", r"\1PORT)", text)
    text = re.sub(r"(\bport )\d+", r"\1PORT", text)
    match = _BYTES_LINE.match(text)
    if match and len(match[2]) > 60:
        data = ast.literal_eval(match[2])
        return f"{match[1]}{data[:16]!r}... ({len(data)} bytes)"
    return text


def _collapse(rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for row in rows:
        if out and (out[-1][0], out[-1][1].removesuffix("  (repeated)")) == row:
            out[-1] = (
                (row[0], row[1] + "  (repeated)")
                if not out[-1][1].endswith("(repeated)")
                else out[-1]
            )
        else:
            out.append(row)
    return out


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


#: The five faults, by number: (short name, what goes wrong).
FAULTS: dict[int, tuple[str, str]] = {
    1: ("stops after its first client", "the server's loop ends when any connection closes"),
    2: ("sendall() on a non-blocking socket", "a big echo to a slow reader raises BlockingIOError"),
    3: ("client stops at the first piece", "an echo that arrives in two pieces is half lost"),
    4: ("fixed port 10000", "a second server on the same port: Address already in use"),
    5: (
        "a client's reset kills the server",
        "read() lets the OSError of a reset connection end the server",
    ),
}
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
        listener.bind((LOCALHOST, 0))
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
        listener.bind((LOCALHOST, 0))
        address = listener.getsockname()
        server = stage.start("server", classic_server, listener)
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
        wait_listening(listener)
        reader.connect(address)
        send_without_reading(reader, bytes(SLOW_PAYLOAD))
        stage.join()
    error = _one_line(server.error) if server.error else "no error"
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


def wait_until(condition: Callable[[], object], timeout: float = TURN_TIMEOUT) -> bool:
    """Poll ``condition()`` until it is true (return True) or ``timeout`` s pass (return False)."""
    deadline, pause = time.monotonic() + timeout, threading.Event()
    while not condition():
        if time.monotonic() > deadline:
            return False
        pause.wait(0.002)
    return True


def _chunked(client: Callable[[Stage, tuple[str, int]], Any]) -> Stage:
    stage = Stage()
    with socket.socket() as listener:
        listener.bind((LOCALHOST, 0))
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
    verdict = f"the client sent {moved['send']} bytes and stopped after {moved['recv']}: {lost} bytes lost"
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
    verdict = str(result) if result is not None else f"client raised {_one_line(results[0].error)}"
    return Outcome(
        3, "fixed", verdict, stage.log("server", last=1).replace(" | ", ": ", 1), stage.timeline
    )


def _fault4_classic() -> Outcome:
    sel = RecordingSelector(selectors.DefaultSelector())
    with sel, socket.socket() as first, socket.socket() as second:
        first.bind((LOCALHOST, 0))  # stands for port 10000: a port that is already taken
        first.listen(5)
        sel.label(first, "first run")
        sel.register(first, selectors.EVENT_READ)  # the first run's server, waiting for a client
        try:
            second.bind(first.getsockname())  # the cell, run again
        except OSError as exc:
            sel.timeline.record("second run", "error", detail=_one_line(exc))
            return Outcome(
                4, "classic", f"the second bind failed: {_one_line(exc)}", "", sel.timeline
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
        listener.bind((LOCALHOST, 0))
        server = stage.start("server", classic_server, listener)
        stage.start("client", resetting_client, listener.getsockname(), sock)
        stage.join()
    verdict = (
        f"the server died: {_one_line(server.error)}"
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


_SCENARIOS: dict[tuple[int, str], Callable[[], Outcome]] = {
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
                    for cell, w in zip(row, widths)
                ).rstrip()
            )
        if index == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


# -- the fault lab widget --------------------------------------------------------------


def _plot_events(timeline: Timeline) -> list[Event]:
    return [e for e in timeline.events() if e.action not in ("log", "select")]


class FaultLab(WidgetFront):
    """Pick a fault and a version, press Run: the timeline and the outcome.

    Attributes: the controls `fault`, `version`, `run_button`, the `out`
    Output, `widget` (the whole VBox), `last` (the last `Outcome`). `run()`
    does what the button does and returns the outcome's text; `choose()`
    sets the controls. Displays as the widget, with a deterministic text repr.
    """

    def __init__(self, fault: int = 1, version: str = "classic", *, plot: bool = True) -> None:
        import ipywidgets as widgets

        self.plot = plot
        options = [(f"{n}. {name}", n) for n, (name, _) in FAULTS.items()]
        self.fault = widgets.Dropdown(options=options, value=fault, description="fault")
        self.version = widgets.ToggleButtons(
            options=list(VERSIONS), value=version, description="version"
        )
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.out = widgets.Output()
        self._adopt(widgets.VBox([self.fault, self.version, self.run_button, self.out]))
        self.run_button.on_click(weak_callback(self.run))
        self.last: Outcome | None = None
        self._text = "not run yet"

    def choose(self, fault: int, version: str) -> FaultLab:
        """Set the controls. Raises `ValueError` for an unknown fault or version."""
        if fault not in FAULTS or version not in VERSIONS:
            raise ValueError(
                f"expected a fault in {sorted(FAULTS)} and a version in {VERSIONS}, got {fault!r}, {version!r}"
            )
        self.fault.value, self.version.value = fault, version
        return self

    def run(self) -> str:
        """Run the chosen scenario; show its timeline and outcome; return the outcome's text."""
        fault, version = self.fault.value, self.version.value
        what = FAULTS[fault][1]
        try:
            self.last = run_fault(fault, version)
        except Exception as exc:  # shown, not raised: this runs from a button
            self.last, self._text = (
                None,
                f"fault {fault}, {version}: the run failed: {_one_line(exc)}",
            )
            self.out.outputs = (stream_output(self._text),)
            return self._text
        self._text = f"{self.last.text()}\n(the fault: {what})"
        outputs = [stream_output(self._text)]
        if self.plot:
            outputs.insert(0, self._figure(self.last))
        self.out.outputs = tuple(outputs)
        return self._text

    def _figure(self, outcome: Outcome) -> dict[str, Any]:
        title = f"fault {outcome.fault}: {FAULTS[outcome.fault][0]} ({outcome.version})"
        events = _plot_events(outcome.timeline)
        return timeline_output(
            events, title, row_height=0.35, max_height=8.0, dpi=90, describe_error=_one_line
        )

    def text(self) -> str:
        """What the output shows as text: the last outcome, or ``not run yet``."""
        return self._text

    def __repr__(self) -> str:
        last = f"last run: {self.last.verdict}" if self.last else "not run yet"
        return f"<FaultLab: fault {self.fault.value} ({FAULTS[self.fault.value][0]}), {self.version.value}; {last}>"


def fault_lab(fault: int = 1, version: str = "classic") -> FaultLab:
    """The fault lab, starting at ``fault`` (1-5) and ``version`` ("classic" or "fixed")."""
    if fault not in FAULTS or version not in VERSIONS:
        raise ValueError(
            f"expected a fault in {sorted(FAULTS)} and a version in {VERSIONS}, got {fault!r}, {version!r}"
        )
    return FaultLab(fault, version)
