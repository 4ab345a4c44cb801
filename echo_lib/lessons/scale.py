"""The echo lab of notebook 06 (previewed in 00): real threads and sockets, then a picture.

`echo_lab()` gives sliders and dropdowns for clients, messages, payload size,
selector class and the server's ``SO_SNDBUF``. Run starts an `EchoServer` in a
``with`` block, runs the clients in background threads, joins them (every join
has a timeout), then plots the shared timeline and writes a summary, in the
main thread. The lab is a `WidgetFront`: its text repr holds no ports, fds or
times, which is what nbval compares.
"""

from __future__ import annotations

import selectors
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..core.checks import check_int
from ..core.timeline import Timeline
from ..core.transcript import plural
from ..driver.client import EchoClient, EchoResult
from ..driver.implementations import SELECTOR_NAMES, available_selectors, resolve_selector
from ..driver.server import EchoServer
from ..view.widgets import (
    WidgetFront,
    one_line_error,
    stream_output,
    timeline_output,
    weak_callback,
)

__all__ = [
    "MAX_CLIENTS",
    "MAX_MESSAGES",
    "MAX_RUN_BYTES",
    "PAYLOAD_SIZES",
    "SNDBUF_SIZES",
    "EchoConfig",
    "EchoLab",
    "echo_lab",
]

KiB, MiB = 1 << 10, 1 << 20
#: Payload sizes offered by the lab, as (label, bytes).
PAYLOAD_SIZES: tuple[tuple[str, int], ...] = (
    ("16 B", 16),
    ("1 KiB", KiB),
    ("64 KiB", 64 * KiB),
    ("1 MiB", MiB),
    ("4 MiB", 4 * MiB),
)
#: The server's SO_SNDBUF choices, as (label, bytes); 0 leaves the system default.
SNDBUF_SIZES: tuple[tuple[str, int], ...] = (
    ("system default", 0),
    ("4 KiB", 4 * KiB),
    ("64 KiB", 64 * KiB),
)
MAX_CLIENTS, MAX_MESSAGES = 50, 20
#: At most this many bytes echoed per lab run: each client keeps its payload and
#: its echo in memory, and thirty students may share one JupyterHub machine.
MAX_RUN_BYTES = 128 * MiB
RUN_TIMEOUT = 30.0  # seconds for all the clients of one lab run together


def _choice(name: str, value: int, choices: Sequence[tuple[str, int]]) -> int:
    """Return ``value`` if it is one of ``choices``' sizes; raise `ValueError` otherwise."""
    if value not in [size for _, size in choices]:
        raise ValueError(
            f"{name} must be one of {', '.join(str(size) for _, size in choices)}, got {value!r}"
        )
    return value


def _label(value: int, choices: Sequence[tuple[str, int]]) -> str:
    return next((label for label, size in choices if size == value), f"{value} bytes")


def _selector_choice(selector: str | type[selectors.BaseSelector] | None) -> str:
    """The class name for ``selector``, also for a known class this platform lacks.

    Raises `ValueError` for a name that is no selector class at all, `TypeError`
    for something that is neither a name nor a class.
    """
    if selector is None:
        return selectors.DefaultSelector.__name__
    name = selector.__name__ if isinstance(selector, type) else selector
    if not isinstance(name, str):
        raise TypeError(f"selector must be a selector class or its name, got {selector!r}")
    try:
        return resolve_selector(name).__name__  # type: ignore[union-attr]
    except ValueError:
        key = name.strip().lower().removesuffix("selector")
        known = [full for full in SELECTOR_NAMES if full.lower().removesuffix("selector") == key]
        if not known:
            raise
        return known[0]  # shown in the dropdown; Run then explains it is missing here


@dataclass(frozen=True)
class EchoConfig:
    """One lab run: ``clients`` x ``messages`` messages of ``payload`` bytes.

    ``sndbuf`` 0 leaves the server's SO_SNDBUF at the system default.
    """

    clients: int
    messages: int
    payload: int
    selector: str
    sndbuf: int = 0

    @property
    def total(self) -> int:
        """Bytes the clients send together (and should get back)."""
        return self.clients * self.messages * self.payload

    def describe(self) -> str:
        """E.g. ``3 clients x 2 messages of 1 KiB, EpollSelector, SO_SNDBUF system default``."""
        who = f"{plural(self.clients, 'client')} x {plural(self.messages, 'message')}"
        sndbuf = _label(self.sndbuf, SNDBUF_SIZES)
        return (
            f"{who} of {_label(self.payload, PAYLOAD_SIZES)}, {self.selector}, SO_SNDBUF {sndbuf}"
        )

    def check_budget(self) -> None:
        """Raise `ValueError` if the run would echo more than `MAX_RUN_BYTES`."""
        if self.total > MAX_RUN_BYTES:
            raise ValueError(
                f"{self.describe()} is {self.total // MiB} MiB, "
                f"more than the {MAX_RUN_BYTES // MiB} MiB one run may echo; "
                "use fewer clients, messages or bytes"
            )


def _messages(count: int, size: int) -> list[bytes]:
    """``count`` messages of ``size`` bytes, each a different letter, shared by all clients."""
    return [bytes([ord("A") + i % 26]) * size for i in range(count)]


def _run_echo(
    config: EchoConfig, timeout: float = RUN_TIMEOUT
) -> tuple[list[EchoResult], Timeline]:
    """Echo ``config`` through a threaded server; return the results and the shared timeline.

    Every thread and socket is closed on return, also on error. Raises
    `ValueError` for a run over budget or a selector this platform lacks,
    `OSError` from the sockets, and any error that stopped a loop.
    """
    config.check_budget()
    messages = _messages(config.messages, config.payload)
    with EchoServer(selector=config.selector, sndbuf=config.sndbuf or None) as server:
        assert server.address is not None and server.timeline is not None
        clients: list[EchoClient] = []
        try:
            for i in range(1, config.clients + 1):
                client = EchoClient(
                    server.address,
                    messages,
                    name=f"client-{i}",
                    selector=config.selector,
                    timeline=server.timeline,
                )
                clients.append(client.start())
            results = _join_all(clients, time.monotonic() + timeout)
        finally:
            _stop_clients(clients)
    return results, server.timeline


def _join_all(clients: Iterable[EchoClient], deadline: float) -> list[EchoResult]:
    """Join each client by ``deadline``; one that is late gives its partial result."""
    results = []
    for client in clients:
        try:
            results.append(client.join(max(deadline - time.monotonic(), 0.01)))
        except TimeoutError:
            results.append(client.result())  # join() stopped its loop already
    return results


def _stop_clients(clients: Iterable[EchoClient]) -> None:
    """Stop every client's loop (idempotent), then raise the first error, if any."""
    errors = []
    for client in clients:
        try:
            if client.loop is not None:
                client.loop.stop()
        except Exception as exc:  # stop the others first
            errors.append(exc)
    if errors:
        raise errors[0]


def _run_summary(config: EchoConfig, results: Sequence[EchoResult], timeline: Timeline) -> str:
    """The lab's text after a run. The last three counts depend on timing for big payloads."""
    server_sends = timeline.events("server", "send")
    lines = [config.describe(), *map(str, results)]
    lines.append(f"total bytes echoed: {sum(r.received for r in results)} of {config.total}")
    lines.append(f"connections accepted by the server: {len(timeline.events('server', 'accept'))}")
    lines.append(f"partial sends by the server: {sum(e.detail == 'partial' for e in server_sends)}")
    by_server = len(timeline.events("server", "modify"))
    by_clients = len(timeline.events(action="modify")) - by_server
    lines.append(f"modify() calls: {by_server} by the server, {by_clients} by the clients")
    if timeline.dropped:
        lines.append(f"(the timeline dropped its {timeline.dropped} oldest events)")
    return "\n".join(lines)


class EchoLab(WidgetFront):
    """The threaded echo lab: set the controls, press Run (or call `run()`).

    Attributes: the controls `clients`, `messages`, `payload`, `selector`,
    `sndbuf`, `run_button`; the `out` Output; `widget`, the whole VBox;
    after a run `last_results`, `last_timeline`, `last_error` and `text()`.
    """

    def __init__(self, config: EchoConfig) -> None:
        import ipywidgets as widgets

        self._make_controls(config)
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.out = widgets.Output()
        controls = [
            self.clients,
            self.messages,
            self.payload,
            self.selector,
            self.sndbuf,
            self.run_button,
        ]
        self._adopt(widgets.VBox([*controls, self.out]))
        self.run_button.on_click(weak_callback(self.run))
        self.last_results: list[EchoResult] = []
        self.last_timeline: Timeline | None = None
        self.last_error: str | None = None
        self._text = "not run yet"

    def _make_controls(self, config: EchoConfig) -> None:
        """The sliders and dropdowns, set to ``config`` (its selector listed even if unknown)."""
        import ipywidgets as widgets

        style = {"description_width": "12em"}
        names = list(available_selectors())
        names += [config.selector] if config.selector not in names else []
        self.clients = widgets.IntSlider(
            config.clients, min=1, max=MAX_CLIENTS, description="clients", style=style
        )
        self.messages = widgets.IntSlider(
            config.messages, min=1, max=MAX_MESSAGES, description="messages per client", style=style
        )
        self.payload = widgets.Dropdown(
            options=PAYLOAD_SIZES,
            value=config.payload,
            description="bytes per message",
            style=style,
        )
        self.selector = widgets.Dropdown(
            options=names, value=config.selector, description="selector class", style=style
        )
        self.sndbuf = widgets.Dropdown(
            options=SNDBUF_SIZES, value=config.sndbuf, description="server SO_SNDBUF", style=style
        )

    @property
    def config(self) -> EchoConfig:
        """The run the controls describe now."""
        return EchoConfig(
            self.clients.value,
            self.messages.value,
            self.payload.value,
            self.selector.value,
            self.sndbuf.value,
        )

    def run(self) -> list[EchoResult]:
        """What the Run button does: echo, then show the summary and the plot.

        Returns the clients' results, or [] when the run failed; a failure is
        shown as one line (also in `last_error`), never as a traceback.
        Raises `RuntimeError` after `close()`.
        """
        if self.closed:
            raise RuntimeError("this EchoLab is closed")
        config = self.config
        self.run_button.disabled = True
        self.out.outputs = (stream_output(f"running {config.describe()} ..."),)
        try:
            return self._run(config)
        finally:
            self.run_button.disabled = False

    def _run(self, config: EchoConfig) -> list[EchoResult]:
        try:
            results, timeline = _run_echo(config)
        except Exception as exc:  # shown in the widget; threads and sockets are closed
            return self._failed(one_line_error(exc))
        self.last_results, self.last_timeline, self.last_error = results, timeline, None
        self._text = _run_summary(config, results, timeline)
        self.out.outputs = (stream_output(self._text), timeline_output(timeline, config.describe()))
        return results

    def _failed(self, message: str) -> list[EchoResult]:
        self.last_results, self.last_timeline, self.last_error = [], None, message
        self._text = f"run failed: {message}"
        self.out.outputs = (stream_output(self._text),)
        return []

    def text(self) -> str:
        """The text the output shows: the last run's summary, its error, or ``not run yet``."""
        return self._text

    def __repr__(self) -> str:
        results = self.last_results
        if self.last_error is not None:
            last = "last run failed"
        elif results:
            done, echoed = sum(r.complete for r in results), sum(r.received for r in results)
            last = f"last run: {done} of {len(results)} echoes complete, {echoed} bytes"
        else:
            last = "not run yet"
        return f"<EchoLab: {self.config.describe()}; {last}>"


def echo_lab(
    *,
    clients: int = 3,
    messages: int = 2,
    payload: int = KiB,
    selector: str | type[selectors.BaseSelector] | None = None,
    sndbuf: int | None = None,
) -> EchoLab:
    """A lab that runs ``clients`` threaded echo clients against one `EchoServer`.

    The arguments are the controls' first values: ``payload`` one of
    `PAYLOAD_SIZES`' byte counts, ``sndbuf`` None (system default) or one of
    `SNDBUF_SIZES`', ``selector`` a class or name (default: DefaultSelector's
    class). A selector this platform lacks is offered anyway: Run explains.

    Raises `ValueError` for a value out of range or not offered, or an unknown
    selector name; `TypeError` for a selector that is neither name nor class.
    """
    config = EchoConfig(
        check_int("clients", clients, 1, MAX_CLIENTS),
        check_int("messages", messages, 1, MAX_MESSAGES),
        _choice("payload", payload, PAYLOAD_SIZES),
        _selector_choice(selector),
        _choice("sndbuf", sndbuf or 0, SNDBUF_SIZES),
    )
    return EchoLab(config)
