"""The backpressure lab of notebook 04: a server that must not outrun a slow reader.

A "slow reader" sends its whole payload at once, then reads only
``read_per_step`` bytes per step. The server end follows `EchoServer`'s rules
(`EchoConnection` decides, a `RecordingSelector` records): read while the
echo buffer holds less than ``max_buffer`` bytes, write while output is
pending, and ``modify()`` only when that mask changes. So when the reader is
slow the buffer fills, the server drops EVENT_READ (it stops reading; the
reader's data waits in the kernel), and when the reader drains the echo the
server asks for EVENT_READ again. Each step prints the server's mask and buffer.

Why a ``socketpair()`` and not a TCP connection: on loopback TCP, a window
update or an ACK can be delivered late when the machine is busy (softirq work
deferred, delayed-ACK timers), and then one ``select(0)`` sees a socket
writable that another run saw blocked. A Unix stream socket has no ACKs, no
windows and no timers: ``send()`` puts the bytes straight into the peer's
queue and ``recv()`` frees them there, inside the system calls. Everything here
happens in one thread, in the same order every run, so each step's line is
text that a notebook can commit. Notebook 04 shows the same backpressure with
a real `EchoServer` over TCP.
"""

from __future__ import annotations

import selectors
import socket
import weakref
from collections.abc import Callable
from typing import Any

from ..core.checks import check_int
from ..core.connection import EchoConnection
from ..core.events import mask_name
from ..core.timeline import Timeline
from ..driver.recording import RecordingSelector
from ..view.widgets import WidgetFront, stream_output, weak_callback

__all__ = ["BackpressureLab", "backpressure_lab"]

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
KiB = 1 << 10
PAYLOAD = 64 * KiB  # what the slow reader sends, and must get back
SNDBUF = 4 * KiB  # the server end's small send buffer: the echo backs up early
RECV_SIZE = 4 * KiB  # bytes per recv(), as EchoServer's recv_size
READER_SNDBUF = 1 << 20  # room for the reader's whole payload at once
MAX_BUFFER_RANGE = (KiB, 64 * KiB)
READ_RANGE = (0, 16 * KiB)
MAX_STEPS = 2000
STUCK_AFTER = 2  # steps in a row with nothing ready and nothing read: nothing ever will be
CONN = "server/conn-1"
READER = "slow reader"
_BAR = 20


class _Scenario:
    """The server end (its selector and `EchoConnection`) and the slow reader's end."""

    def __init__(self, max_buffer: int, payload: bytes) -> None:
        self.timeline = Timeline()
        self.conn = EchoConnection(max_buffer)
        self.outgoing = memoryview(payload)
        self.sel = RecordingSelector(selectors.DefaultSelector(), self.timeline, actor="server")
        self.sock, self.reader = socket.socketpair()
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SNDBUF)
            self.reader.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, READER_SNDBUF)
            self.sock.setblocking(False)
            self.reader.setblocking(False)
            self.sel.label(self.sock, CONN)
            self.events = self.sel.register(self.sock, READ).events
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self.sel.close()
        self.sock.close()
        self.reader.close()

    # -- the slow reader ------------------------------------------------------

    def reader_send(self) -> None:
        """Send what is left of the payload, as far as the kernel takes it."""
        if self.outgoing:
            try:
                n = self.reader.send(self.outgoing)
            except BlockingIOError:
                return
            self.outgoing = self.outgoing[n:]
            self.timeline.record(READER, "send", nbytes=n)

    def reader_read(self, limit: int) -> int:
        """Take up to ``limit`` bytes of echo; return how many."""
        try:
            n = len(self.reader.recv(limit)) if limit else 0
        except BlockingIOError:
            return 0
        if n:
            self.timeline.record(READER, "recv", nbytes=n)
        return n

    # -- the server end: EchoServer's handlers, in short -------------------------

    def server_step(self) -> int:
        """One ``select(0)`` and the handling of what it reported; return how many were ready."""
        ready = self.sel.select(0)
        for _key, mask in ready:
            if mask & READ:
                data = self.sock.recv(RECV_SIZE)
                self.conn.receive_data(data)
                self.timeline.record(CONN, "recv", nbytes=len(data))
            self._send()
            self._update_registration()
        return len(ready)

    def _send(self) -> None:
        while self.conn.wants_write:
            try:
                n = self.sock.send(self.conn.data_to_send())
            except BlockingIOError:
                return
            self.conn.sent(n)
            self.timeline.record(CONN, "send", nbytes=n)

    def _update_registration(self) -> None:
        wanted = (READ if self.conn.wants_read else 0) | (WRITE if self.conn.wants_write else 0)
        if wanted and wanted != self.events:
            self.events = self.sel.modify(self.sock, wanted).events


def _close(scenario: _Scenario) -> None:
    scenario.close()


class BackpressureLab(WidgetFront):
    """Step a server whose echo outruns a slow reader; watch its mask and buffer.

    `step()` is one server ``select(0)`` and its handling, then one read of at
    most ``read_per_step`` bytes by the reader; `run()` steps to the end. Both
    return deterministic text. Displayed in Jupyter, the lab is a widget: the
    sliders `max_buffer_slider` and `read_per_step_slider` (moving one starts
    over), `step_button`, `run_button`, `reset_button` and the Output `out`.
    Call `close()` when done; an abandoned lab closes its sockets and widgets
    when garbage collected.

    Raises `ValueError` for numbers outside the sliders' ranges.
    """

    def __init__(
        self, max_buffer: int = 8 * KiB, read_per_step: int = 2 * KiB, payload: int = PAYLOAD
    ) -> None:
        self.max_buffer = check_int("max_buffer", max_buffer, *MAX_BUFFER_RANGE)
        self.read_per_step = check_int("read_per_step", read_per_step, *READ_RANGE)
        self.payload = check_int("payload", payload, 1, 1 << 20)
        self._scenario: _Scenario | None = None
        self._finalizer: weakref.finalize | None = None
        self._build_widgets()
        self.reset()

    def _build_widgets(self) -> None:
        import ipywidgets as widgets

        style, layout = {"description_width": "12em"}, widgets.Layout(width="40em")
        self.max_buffer_slider = widgets.IntSlider(
            self.max_buffer, min=MAX_BUFFER_RANGE[0], max=MAX_BUFFER_RANGE[1], step=KiB,
            description="max_buffer (B)", style=style, layout=layout,
        )  # fmt: skip
        self.read_per_step_slider = widgets.IntSlider(
            self.read_per_step, min=READ_RANGE[0], max=READ_RANGE[1], step=256,
            description="reader bytes per step", style=style, layout=layout,
        )  # fmt: skip
        self.step_button = widgets.Button(description="Step", button_style="primary")
        self.run_button = widgets.Button(description="Run to end")
        self.reset_button = widgets.Button(description="Reset")
        self.out = widgets.Output()
        buttons = widgets.HBox([self.step_button, self.run_button, self.reset_button])
        sliders = [self.max_buffer_slider, self.read_per_step_slider]
        self._adopt(widgets.VBox([*sliders, buttons, self.out]))
        self.step_button.on_click(weak_callback(self.step))
        self.run_button.on_click(weak_callback(self.run))
        self.reset_button.on_click(weak_callback(self.reset))
        ref = weakref.ref(self)  # the sliders must not keep the lab (and its sockets) alive
        self.max_buffer_slider.observe(_setter(ref, "max_buffer"), names="value")
        self.read_per_step_slider.observe(_setter(ref, "read_per_step"), names="value")

    # -- the scenario ---------------------------------------------------------

    def reset(self) -> None:
        """Start over: a new server end and reader, nothing sent or read yet.

        Raises `RuntimeError` after `close()`.
        """
        if self.closed:
            raise RuntimeError("this BackpressureLab is closed")
        self._release()
        self._scenario = _Scenario(self.max_buffer, bytes(self.payload))
        self._finalizer = weakref.finalize(self, _close, self._scenario)
        self.timeline: Timeline = self._scenario.timeline
        self.steps = self.received = self.peak = self._quiet = 0
        self.lines: list[str] = []
        self.out.outputs = ()
        self._show(
            f"max_buffer {self.max_buffer} B, the reader takes {self.read_per_step} B per step, "
            f"{self.payload} B to echo"
        )

    def _release(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # closes the sockets and the selector, once
        self._scenario = self._finalizer = None

    def close(self) -> None:
        """Close the sockets, the selector and the widgets (idempotent); the timeline stays."""
        self._release()
        super().close()

    @property
    def done(self) -> bool:
        """Every byte came back to the reader."""
        return self.received >= self.payload

    @property
    def stuck(self) -> bool:
        """Nothing was ready and nothing was read, twice in a row: nothing ever will be."""
        return self._quiet >= STUCK_AFTER

    @property
    def mask(self) -> str:
        """The server end's registered events, e.g. ``READ|WRITE``."""
        changes = self.timeline.events(CONN, ("register", "modify"))
        return mask_name(changes[-1].mask) if changes else "-"

    @property
    def buffered(self) -> int:
        """Bytes the server holds, waiting to be echoed."""
        return self._scenario.conn.pending if self._scenario is not None else 0

    def modify_details(self) -> list[str]:
        """Every ``modify()`` of the server end so far, e.g. ``READ → READ|WRITE``."""
        return [e.detail for e in self.timeline.events(CONN, "modify")]

    def read_paused(self) -> int:
        """How many times the server dropped EVENT_READ with ``modify()``."""
        return sum(
            "READ" in before and "READ" not in after
            for before, after in _changes(self.modify_details())
        )

    # -- stepping -------------------------------------------------------------

    def step(self) -> str:
        """One server ``select(0)``, then one read by the reader; return the step's line.

        Raises `RuntimeError` after `close()`.
        """
        if self.done:
            return self._show(f"step {self.steps}: every byte is back (Reset to start over)")
        if self._scenario is None:
            raise RuntimeError("this BackpressureLab is closed")
        self._scenario.reader_send()
        ready = self._scenario.server_step()
        got = self._scenario.reader_read(self.read_per_step)
        self.steps += 1
        self.received += got
        self.peak = max(self.peak, self.buffered)
        self._quiet = 0 if ready or got else self._quiet + 1
        line = self._line()
        if self.done:
            self._release()  # all echoed: nothing more will happen
        return self._show(line)

    def run(self, max_steps: int = MAX_STEPS) -> str:
        """Step until every byte is back, nothing moves, or ``max_steps``; return `summary()`.

        Raises `ValueError` for ``max_steps`` outside 1..2000, `RuntimeError` after `close()`.
        """
        check_int("max_steps", max_steps, 1, MAX_STEPS)
        for _ in range(max_steps):
            if self.done or self.stuck:
                break
            self.step()
        return self._show(self.summary())

    def _line(self) -> str:
        fill = min(self.buffered * _BAR // self.max_buffer, _BAR)
        bar = "█" * fill + "·" * (_BAR - fill)
        return (
            f"step {self.steps:>3}: {self.mask:<10} buffer {bar} {self.buffered:>5} B   "
            f"reader has {self.received:>5} B"
        )

    def summary(self) -> str:
        """What happened so far, as deterministic text."""
        state = (
            "every byte is back"
            if self.done
            else "stuck: nothing moves any more"
            if self.stuck
            else "not finished"
        )
        return "\n".join(
            [
                f"after {self.steps} steps: {self.received} of {self.payload} B back ({state})",
                f"peak buffer: {self.peak} B (max_buffer {self.max_buffer} B)",
                f"modify() calls: {len(self.modify_details())}; "
                f"reading paused {_times(self.read_paused())}",
            ]
        )

    def text(self) -> str:
        """Every line shown since the last reset."""
        return "\n".join(self.lines)

    # -- the text ----------------------------------------------------------------

    def _show(self, text: str) -> str:
        self.lines.append(text)
        self.out.outputs = (*self.out.outputs, stream_output(text, end="\n"))
        return text

    def __repr__(self) -> str:
        return (
            f"<BackpressureLab max_buffer={self.max_buffer} read_per_step={self.read_per_step}: "
            f"step {self.steps}, server mask {self.mask}, {self.received} of {self.payload} B back>"
        )


def _times(n: int) -> str:
    return f"{n} time{'s' * (n != 1)}"


def _changes(details: list[str]) -> list[tuple[str, str]]:
    return [tuple(detail.split(" → ")) for detail in details]  # type: ignore[misc]


def _setter(ref: weakref.ref[BackpressureLab], name: str) -> Callable[[dict[str, Any]], None]:
    """A slider observer: set the lab's ``name`` to the slider's new value, then start over."""

    def observe(change: dict[str, Any]) -> None:
        lab = ref()
        if lab is not None and not lab.closed:
            setattr(lab, name, change["new"])
            lab.reset()

    return observe


def backpressure_lab(max_buffer: int = 8 * KiB, read_per_step: int = 2 * KiB) -> BackpressureLab:
    """A `BackpressureLab` with a 64 KiB payload; display it for the widget.

    Raises `ValueError` for ``max_buffer`` outside 1024..65536 or
    ``read_per_step`` outside 0..16384.
    """
    return BackpressureLab(max_buffer, read_per_step)
