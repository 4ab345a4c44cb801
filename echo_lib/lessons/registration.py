"""The registration playground of notebook 02: register, modify, unregister, one click at a time.

One end of a ``socketpair()``, called ``sock``, and a selector wrapped in a
`RecordingSelector`. Each method is one call a learner could type, and each
returns one line saying what the call did or which exception it raised::

    sel.register(sock, EVENT_READ) -> SelectorKey: events READ
    sel.register(sock, EVENT_READ) -> KeyError: sock is already registered
    sel.select(0) -> [] (nothing ready)

The other end, ``peer``, can send a byte, so that READ readiness can be
seen; ``sock`` can be closed while still registered, to meet what that does.

Why a socketpair: a Unix stream socket has no handshake, no ACKs and no
timers. ``peer.send()`` puts the byte straight into ``sock``'s queue, so
``select(0)`` right after it sees it, on every run: the text is deterministic.
Exception messages name the socket by its role, never by its fd.
"""

from __future__ import annotations

import selectors
import socket
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..core.events import mask_name
from ..core.timeline import Timeline
from ..driver.recording import RecordingSelector
from ..view.widgets import WidgetFront, describe_error, stream_output, weak_callback

if TYPE_CHECKING:
    import ipywidgets

__all__ = ["RegistrationPlayground", "registration_playground"]

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
LOG_LINES = 12  # the widget shows at most this many of the latest lines of each list


def _mask(events: int) -> str:
    """``READ|WRITE``, or ``0`` for no events at all."""
    return mask_name(events) if events else "0"


def _events_text(events: int) -> str:
    names = [name for bit, name in ((READ, "EVENT_READ"), (WRITE, "EVENT_WRITE")) if events & bit]
    return " | ".join(names) or "0"


#: The buttons, row by row: (label, method called with no arguments).
_BUTTONS: tuple[tuple[tuple[str, str], ...], ...] = (
    (
        ("register()", "_click_register"),
        ("modify()", "_click_modify"),
        ("unregister()", "unregister"),
    ),
    (("peer sends a byte", "peer_sends"), ("select(0)", "select"), ("recv()", "recv")),
    (("close sock", "close_sock"), ("reset", "reset")),
)


class RegistrationPlayground(WidgetFront):
    """``sock`` and ``peer`` (a socketpair) and a recording selector; one method per call.

    Every method returns its line and appends it to `log`. Displayed in
    Jupyter it is a widget: the READ and WRITE checkboxes `read` and `write`,
    one button per method (`buttons`, by method name), and the Output `out`
    with the log, the key map and the recorded timeline. Call `close()` when
    done; an abandoned playground closes its sockets and widgets when it is
    garbage collected.
    """

    def __init__(self) -> None:
        import ipywidgets as widgets

        self.read = widgets.Checkbox(True, description="EVENT_READ", indent=False)
        self.write = widgets.Checkbox(False, description="EVENT_WRITE", indent=False)
        self.buttons: dict[str, widgets.Button] = {}
        rows = [
            widgets.HBox([self._button(label, name) for label, name in row]) for row in _BUTTONS
        ]
        self.out = widgets.Output()
        self._adopt(widgets.VBox([widgets.HBox([self.read, self.write]), *rows, self.out]))
        self._finalizer: weakref.finalize | None = None
        self.reset()

    def _button(self, label: str, method: str) -> ipywidgets.Button:
        import ipywidgets as widgets

        button = widgets.Button(description=label)
        button.on_click(weak_callback(getattr(self, method)))
        self.buttons[method.removeprefix("_click_")] = button
        return button

    # -- the state --------------------------------------------------------------

    def reset(self) -> str:
        """Start over: a new socketpair and selector, nothing registered, an empty log.

        Raises `RuntimeError` after `close()`.
        """
        if self.closed:
            raise RuntimeError("this RegistrationPlayground is closed")
        self._release()
        self.timeline = Timeline()
        self.sel = RecordingSelector(selectors.DefaultSelector(), self.timeline, actor="selector")
        self.sock, self.peer = socket.socketpair()
        self.sock.setblocking(False)
        self.peer.setblocking(False)
        self.sel.label(self.sock, "sock")
        self._finalizer = weakref.finalize(self, _close_all, self.sel, self.sock, self.peer)
        self.log: list[str] = []
        return self._note(
            "a new socketpair: sock (to register) and peer (its other end)", count=False
        )

    def _release(self) -> None:
        if self._finalizer is not None:
            self._finalizer()

    def close(self) -> None:
        """Close the sockets, the selector and the widgets (idempotent); log and timeline stay."""
        self._release()
        super().close()

    @property
    def calls(self) -> int:
        """How many calls were made since the last reset."""
        return sum(1 for line in self.log if not line.startswith("#"))

    def registered_events(self) -> int | None:
        """What ``sock`` is registered for, or None when it is not registered."""
        if self.closed:
            return None
        key = next((k for k in self.sel.get_map().values() if k.fileobj is self.sock), None)
        return None if key is None else key.events

    # -- the calls --------------------------------------------------------------

    def register(self, read: bool = True, write: bool = False) -> str:
        """``sel.register(sock, events)`` with the events the two flags make."""
        events = (READ if read else 0) | (WRITE if write else 0)
        return self._try(
            f"sel.register(sock, {_events_text(events)})", lambda: self._register(events)
        )

    def _register(self, events: int) -> str:
        if self.sock.fileno() >= 0:
            self.sel.label(self.sock, "sock")  # RecordingSelector forgets a label at unregister()
        return f"SelectorKey: events {_mask(self.sel.register(self.sock, events).events)}"

    def _click_register(self) -> str:
        return self.register(read=self.read.value, write=self.write.value)

    def _click_modify(self) -> str:
        return self.modify(read=self.read.value, write=self.write.value)

    def modify(self, read: bool = True, write: bool = False) -> str:
        """``sel.modify(sock, events)`` with the events the two flags make."""
        events = (READ if read else 0) | (WRITE if write else 0)
        call = f"sel.modify(sock, {_events_text(events)})"
        return self._try(
            call, lambda: f"SelectorKey: events {_mask(self.sel.modify(self.sock, events).events)}"
        )

    def unregister(self) -> str:
        """``sel.unregister(sock)``."""
        return self._try(
            "sel.unregister(sock)",
            lambda: f"SelectorKey: events {_mask(self.sel.unregister(self.sock).events)} (removed)",
        )

    def select(self) -> str:
        """``sel.select(0)``: which registered sockets are ready now (no waiting)."""
        return self._try("sel.select(0)", self._select)

    def _select(self) -> str:
        ready = self.sel.select(0)
        if not ready:
            return "[] (nothing ready)"
        return "[" + ", ".join(f"(sock, {mask_name(mask)})" for key, mask in ready) + "]"

    def peer_sends(self) -> str:
        """``peer.send(b"x")``: one byte for ``sock`` to read."""
        return self._try('peer.send(b"x")', lambda: f"{self.peer.send(b'x')} byte sent")

    def recv(self) -> str:
        """``sock.recv(1024)``: read what the peer sent, if anything."""
        return self._try("sock.recv(1024)", lambda: repr(self.sock.recv(1024)))

    def close_sock(self) -> str:
        """``sock.close()``, registered or not."""
        return self._try("sock.close()", self._close_sock)

    def _close_sock(self) -> str:
        still = self.registered_events() is not None
        self.sock.close()
        return "closed, but still registered!" if still else "closed"

    def _try(self, call: str, action: Callable[[], str]) -> str:
        if self.closed:
            raise RuntimeError("this RegistrationPlayground is closed")
        try:
            outcome = action()
        except BlockingIOError:
            outcome = "BlockingIOError (nothing to read yet)"
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            outcome = describe_error(exc, "sock")
        return self._note(f"{call} -> {outcome}")

    def _note(self, line: str, *, count: bool = True) -> str:
        self.log.append(line if count else f"# {line}")
        self.out.outputs = (stream_output(self.text(limit=LOG_LINES), end="\n"),)
        return line

    # -- the views --------------------------------------------------------------

    def key_map(self) -> str:
        """``sel.get_map()`` as text: one line per key, or ``(empty)``."""
        if self.closed:
            return "(selector closed)"
        lines = []
        for key in self.sel.get_map().values():
            state = " (closed!)" if self.sock.fileno() < 0 else ""
            lines.append(
                f"sock{state}: events {_mask(key.events)}"
            )  # sock is the only one ever registered
        return "\n".join(lines) or "(empty)"

    def text(self, limit: int | None = None) -> str:
        """The log, the key map and the recorded timeline; the last ``limit`` lines of each list."""
        log = self.log if limit is None else self.log[-limit:]
        events = self.timeline.summary().splitlines()
        events = events if limit is None else events[-limit:]
        return "\n".join(
            [
                "calls:",
                *log,
                "",
                "key map (sel.get_map()):",
                self.key_map(),
                "",
                "timeline (sel.timeline.summary()):",
                *events,
            ]
        )

    def __repr__(self) -> str:
        events = self.registered_events()
        state = (
            "closed"
            if self.closed
            else "not registered"
            if events is None
            else f"registered for {_mask(events)}"
        )
        return f"<RegistrationPlayground: sock {state}; {self.calls} call{'s' * (self.calls != 1)}>"


def _close_all(sel: selectors.BaseSelector, *socks: socket.socket) -> None:
    sel.close()
    for sock in socks:
        sock.close()


def registration_playground() -> RegistrationPlayground:
    """A `RegistrationPlayground`; display it for the widget."""
    return RegistrationPlayground()
