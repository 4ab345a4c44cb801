"""Two ipywidgets front ends: a threaded echo lab and a one-select-at-a-time stepper.

* `echo_lab()`: sliders and dropdowns for clients, messages, payload size,
  selector class and the server's ``SO_SNDBUF``; Run starts an `EchoServer`
  in a ``with`` block, runs the clients in background threads, joins them
  (every join has a timeout), then plots the shared timeline and writes a
  summary, in the main thread.
* `step_through()`: one `SelectorLoop` shared by a server and its clients, no
  threads at all; one click of Step is one ``loop.step()``, i.e. one
  ``select()`` and its callbacks. After each step: the key map (who is
  registered for what, who was ready with which mask) and the events the step
  recorded.

Both return a small object, not a widget: it displays as its widget in Jupyter
(`_repr_mimebundle_`), keeps every control and output as an attribute for
tests, and has a deterministic text repr (no ports, fds or times), which is
what nbval compares. ipywidgets and matplotlib are imported inside functions,
so importing this module costs only the standard library.

Output goes into an `ipywidgets.Output` by replacing its ``outputs`` tuple:
nbval handles neither ``clear_output`` nor ``update_display_data``. Figures are
plain `matplotlib.figure.Figure` objects, never pyplot ones, rendered to PNG
bytes here: nothing is left for pyplot to show in the next cell, and no
IPython shell is needed (``Output.append_display_data`` would create one).
"""

from __future__ import annotations

import base64
import html
import io
import selectors
import sys
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from ..core.checks import check_messages
from ..core.events import Event, mask_name
from ..core.timeline import Timeline
from ..driver.client import DEFAULT_MESSAGES, EchoClient, EchoResult
from ..driver.implementations import SELECTOR_NAMES, available_selectors, resolve_selector
from ..driver.loop import SelectorLoop
from ..driver.recording import RecordingSelector
from ..driver.server import EchoServer

if TYPE_CHECKING:
    import ipywidgets

__all__ = [
    "MAX_CLIENTS",
    "MAX_MESSAGES",
    "MAX_RUN_BYTES",
    "MAX_STEPS",
    "PAYLOAD_SIZES",
    "ReportFront",
    "SCENARIOS",
    "SNDBUF_SIZES",
    "EchoConfig",
    "EchoLab",
    "StepThrough",
    "WidgetFront",
    "close_tree",
    "describe_exception",
    "display_output",
    "echo_lab",
    "step_through",
    "stream_output",
    "timeline_output",
    "timeline_png",
    "weak_callback",
    "widget_bundle",
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
MAX_STEPS = 1000  # "Run to end" takes at most this many steps
STEP_WAIT = 1.0  # a step waits at most this long for something to be ready
SCENARIOS: tuple[str, ...] = ("echo",)
_T = TypeVar("_T")
_EVENT_LINES = 200  # at most this many event lines per step-through view


# -- shared helpers -----------------------------------------------------------


def _check_int(name: str, value: object, low: int, high: int) -> int:
    """Return ``value`` if it is an int in ``low..high``; raise `ValueError` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an int in {low}..{high}, got {value!r}")
    return value


def _choice(name: str, value: int, choices: Sequence[tuple[str, int]]) -> int:
    """Return ``value`` if it is one of ``choices``' sizes; raise `ValueError` otherwise."""
    if value not in [size for _, size in choices]:
        raise ValueError(
            f"{name} must be one of {', '.join(str(size) for _, size in choices)}, got {value!r}"
        )
    return value


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'s' * (count != 1)}"


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


def _one_line(exc: BaseException) -> str:
    """``exc`` as one line: its message (or its type), whitespace collapsed."""
    text = " ".join(str(exc).split())
    return (
        text
        if text and isinstance(exc, ValueError)
        else f"{type(exc).__name__}: {text}".rstrip(": ")
    )


def describe_exception(exc: BaseException) -> str:
    """``TypeName: message``, the message as it is (see also the one-line form the labs here use)."""
    return f"{type(exc).__name__}: {exc}"


def stream_output(text: str, *, end: str | None = None) -> dict[str, Any]:
    """One stdout output for `ipywidgets.Output.outputs`.

    ``end`` None adds a newline unless ``text`` ends with one; a string is
    appended as it is (``"\\n"``: always one more newline).
    """
    if end is None:
        end = "" if text.endswith("\n") else "\n"
    return {"output_type": "stream", "name": "stdout", "text": text + end}


def display_output(data: dict[str, str]) -> dict[str, Any]:
    """One display_data output (mime type -> data) for `ipywidgets.Output.outputs`."""
    return {"output_type": "display_data", "data": data, "metadata": {}}


def weak_callback(method: Callable[[], object]) -> Callable[[object], None]:
    """A widget callback (it ignores its one argument) that does not keep ``method``'s object alive.

    ipywidgets keeps every open widget in a registry; a strong callback would
    keep the front end (and the sockets it owns) alive as long as its buttons.
    """
    ref = weakref.WeakMethod(method)  # type: ignore[arg-type]

    def callback(_widget: object) -> None:
        bound = ref()
        if bound is not None:
            bound()

    return callback


def close_tree(widget: ipywidgets.Widget) -> None:
    """Close ``widget`` and every widget inside it."""
    for child in getattr(widget, "children", ()):
        close_tree(child)
    widget.close()


def widget_bundle(widget: ipywidgets.Widget | None, text: str) -> dict[str, Any]:
    """``widget``'s mime bundle (none for None) with ``text`` as its text/plain."""
    bundle: dict[str, Any] = {} if widget is None else dict(widget._repr_mimebundle_())
    bundle["text/plain"] = text
    return bundle


class WidgetFront:
    """Display as `widget`, with our own deterministic text (``repr(self)``) instead of its repr.

    A subclass builds its widgets, then calls ``self._adopt(box)``. The widgets
    are closed by `close()`, or when this object is garbage collected (give
    its buttons `weak_callback` callbacks, so they hold it only weakly).
    """

    widget: ipywidgets.Box

    def _adopt(self, widget: ipywidgets.Box) -> None:
        self.widget = widget
        self._widget_finalizer = weakref.finalize(self, close_tree, widget)

    @property
    def closed(self) -> bool:
        """True after `close()`."""
        return not self._widget_finalizer.alive

    def _repr_mimebundle_(self, include: object = None, exclude: object = None) -> dict[str, Any]:
        return widget_bundle(None if self.closed else self.widget, repr(self))

    def close(self) -> None:
        """Close the widgets (idempotent)."""
        self._widget_finalizer()


def timeline_png(
    timeline: Timeline | Sequence[Event],
    title: str,
    *,
    width: float = 9.0,
    row_height: float = 0.3,
    max_height: float = 12.0,
    dpi: float = 96,
) -> bytes:
    """Plot ``timeline`` (or a list of events) on a pyplot-free figure and return it as PNG bytes.

    The figure is ``width`` inches wide and ``2 + row_height`` inches per
    actor high, at most ``max_height``.
    """
    from matplotlib.figure import Figure

    from .plotting import plot_timeline

    actors = (
        timeline.actors()
        if isinstance(timeline, Timeline)
        else dict.fromkeys(e.actor for e in timeline)
    )
    fig = Figure(figsize=(width, min(2.0 + row_height * len(actors), max_height)))
    try:
        plot_timeline(timeline, ax=fig.add_subplot(), title=title)
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    finally:
        if "matplotlib.pyplot" in sys.modules:  # in case plot_timeline involved pyplot
            sys.modules["matplotlib.pyplot"].close(fig)
    return buffer.getvalue()


def timeline_output(
    timeline: Timeline | Sequence[Event],
    title: str,
    *,
    describe_error: Callable[[BaseException], str] = _one_line,
    end: str | None = None,
    **size: float,
) -> dict[str, Any]:
    """The timeline as a PNG display_data output (text/plain ``<timeline: TITLE>``).

    ``size`` is `timeline_png`'s ``width``, ``row_height``, ``max_height``
    and ``dpi``. If plotting fails: one stream output ``plot failed: ...``,
    the error as ``describe_error`` puts it (``end`` as in `stream_output`).
    """
    try:
        png = timeline_png(timeline, title, **size)
    except Exception as exc:  # the text next to the plot is still worth showing
        return stream_output(f"plot failed: {describe_error(exc)}", end=end)
    return display_output(
        {"image/png": base64.b64encode(png).decode("ascii"), "text/plain": f"<timeline: {title}>"}
    )


class ReportFront(WidgetFront):
    """A `WidgetFront` whose Run button (`run_button`) runs something and reports it in `out`.

    `_run_and_report` does what Run does; `last` is the last result (None
    before a run and after a failed one), `text()` its report.
    """

    run_button: ipywidgets.Button
    out: ipywidgets.Output
    last: Any = None
    _text = "not run yet"

    def _run_and_report(
        self, doing: str, run: Callable[[], _T], plot: Callable[[_T], dict[str, Any]]
    ) -> _T | None:
        """Show ``doing``, call ``run()``, then show ``str(result)`` and ``plot(result)``; return the result.

        A failure is shown as one ``run failed: TypeName: message`` line and
        returns None. The button is disabled while ``run()`` runs.
        """
        self.run_button.disabled = True
        self.out.outputs = (stream_output(doing),)
        try:
            self.last = run()
        except Exception as exc:  # shown in the widget; the run closed its threads and sockets
            self.last, self._text = None, f"run failed: {describe_exception(exc)}"
            self.out.outputs = (stream_output(self._text, end="\n"),)
            return None
        finally:
            self.run_button.disabled = False
        self._text = str(self.last)
        self.out.outputs = (stream_output(self._text, end="\n"), plot(self.last))
        return self.last

    def text(self) -> str:
        """The report of the last run, or ``not run yet``."""
        return self._text


# -- the echo lab: real threads, then a picture ------------------------------


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
        who = f"{_plural(self.clients, 'client')} x {_plural(self.messages, 'message')}"
        sndbuf = _label(self.sndbuf, SNDBUF_SIZES)
        return (
            f"{who} of {_label(self.payload, PAYLOAD_SIZES)}, {self.selector}, SO_SNDBUF {sndbuf}"
        )

    def check_budget(self) -> None:
        """Raise `ValueError` if the run would echo more than `MAX_RUN_BYTES`."""
        if self.total > MAX_RUN_BYTES:
            raise ValueError(
                f"{self.describe()} is {self.total // MiB} MiB, more than the {MAX_RUN_BYTES // MiB} MiB "
                "one run may echo; use fewer clients, messages or bytes"
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
    server_modify, all_modify = (
        len(timeline.events("server", "modify")),
        len(timeline.events(action="modify")),
    )
    lines.append(
        f"modify() calls: {server_modify} by the server, {all_modify - server_modify} by the clients"
    )
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
            return self._failed(_one_line(exc))
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
        _check_int("clients", clients, 1, MAX_CLIENTS),
        _check_int("messages", messages, 1, MAX_MESSAGES),
        _choice("payload", payload, PAYLOAD_SIZES),
        _selector_choice(selector),
        _choice("sndbuf", sndbuf or 0, SNDBUF_SIZES),
    )
    return EchoLab(config)


# -- the step-through: one select() per click ---------------------------------


@dataclass(frozen=True)
class _Scenario:
    """One loop shared by a server and its clients; nothing runs until stepped."""

    loop: SelectorLoop
    server: EchoServer
    clients: tuple[EchoClient, ...]

    @property
    def timeline(self) -> Timeline:
        assert self.loop.timeline is not None
        return self.loop.timeline

    @property
    def done(self) -> bool:
        return all(c.done for c in self.clients) and self.server.connections == 0


def _build_echo(clients: int, messages: Sequence[bytes], selector: str | None) -> _Scenario:
    """Server and clients on one new loop; on any error the loop is stopped first."""
    loop = SelectorLoop(selector, name="loop")
    try:
        server = EchoServer(loop=loop).start()
        assert server.address is not None
        peers = [
            EchoClient(server.address, messages, name=f"client-{i}", loop=loop).start()
            for i in range(1, clients + 1)
        ]
    except BaseException:
        loop.stop()  # its closers close the server and every client started
        raise
    return _Scenario(loop, server, tuple(peers))


def _stop_loop(loop: SelectorLoop) -> None:
    """Close ``loop`` and everything on it (the finalizer; keeps no reference to the widget)."""
    loop.stop()


@dataclass(frozen=True)
class _KeyRow:
    """One row of the key map: who, registered for what (None: unregistered), ready how (0: not)."""

    actor: str
    events: int | None
    ready: int


def _key_rows(loop: SelectorLoop, since: int) -> list[_KeyRow]:
    """Every key ``loop`` has registered, plus any key ready after ``since`` that is gone now.

    Actors come from the timeline (fd -> actor of the live registration);
    keys the timeline hides (the loop's wakeup socket) are left out. Rows are
    in registration order.
    """
    assert loop.timeline is not None and isinstance(loop.selector, RecordingSelector)
    events = loop.timeline.events()
    order = {e.actor: e.seq for e in events if e.action == "register"}
    ready = {e.actor: e.mask for e in events if e.seq > since and e.action == "ready"}
    actors = {key.fd: loop.selector.actor_of(key.fd) for key in loop.selector.get_map().values()}
    rows = {
        actors[key.fd]: key.events
        for key in loop.selector.get_map().values()
        if actors[key.fd] is not None
    }
    rows.update({actor: None for actor in ready if actor not in rows})
    return [
        _KeyRow(actor, rows[actor], ready.get(actor, 0))
        for actor in sorted(rows, key=lambda a: order.get(a, 0))
    ]


def _cells(row: _KeyRow) -> tuple[str, str, str]:
    events = "(unregistered)" if row.events is None else mask_name(row.events)
    return row.actor, events, mask_name(row.ready) if row.ready else "-"


_KEY_HEADER = ("actor", "registered for", "ready in this step")


def _key_map_text(rows: Sequence[_KeyRow]) -> str:
    """The key map as an aligned plain-text table."""
    table = [_KEY_HEADER, *map(_cells, rows)]
    widths = [max(len(cells[i]) for cells in table) for i in range(2)]
    return "\n".join(f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c}".rstrip() for a, b, c in table)


def _key_map_html(rows: Sequence[_KeyRow]) -> str:
    """The key map as an HTML table; ready rows in bold."""
    head = "".join(f"<th style='text-align:left'>{html.escape(h)}</th>" for h in _KEY_HEADER)
    body = "".join(
        f"<tr style='font-weight:{'bold' if row.ready else 'normal'}'>"
        + "".join(
            f"<td style='text-align:left'><code>{html.escape(cell)}</code></td>"
            for cell in _cells(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


@dataclass(frozen=True)
class StepSettings:
    """What `step_through` builds: ``clients`` clients sending ``messages``."""

    scenario: str
    clients: int
    messages: tuple[bytes, ...]
    selector: str | None


class StepThrough(WidgetFront):
    """Step an echo scenario one ``select()`` at a time; no threads.

    Attributes: `step_button`, `run_button`, `reset_button`, the `status`
    Label, the `out` Output, `widget` (the whole VBox), `steps`, `done`,
    `error`, and `loop`, `server`, `clients`, `timeline` of the scenario.

    A new StepThrough with the same settings as a live one closes the older
    one first: that is what re-running its cell does, and IPython's ``Out``
    cache would otherwise keep the old widget, its loop and sockets alive.
    """

    #: The live stepper for each settings, so that a re-run cell replaces its own.
    _latest: ClassVar[weakref.WeakValueDictionary[StepSettings, StepThrough]] = (
        weakref.WeakValueDictionary()
    )

    def __init__(self, settings: StepSettings) -> None:
        import ipywidgets as widgets

        previous = StepThrough._latest.get(settings)
        if previous is not None:
            previous.close()
        self.settings = settings
        self.step_button = widgets.Button(
            description="Step", button_style="primary", icon="step-forward"
        )
        self.run_button = widgets.Button(description="Run to end", icon="fast-forward")
        self.reset_button = widgets.Button(description="Reset", icon="undo")
        self.status = widgets.Label()
        self.out = widgets.Output()
        self._adopt(
            widgets.VBox(
                [
                    widgets.HBox([self.step_button, self.run_button, self.reset_button]),
                    self.status,
                    self.out,
                ]
            )
        )
        self.step_button.on_click(weak_callback(self.step))
        self.run_button.on_click(weak_callback(self.run_to_end))
        self.reset_button.on_click(weak_callback(self.reset))
        self._scenario: _Scenario | None = None
        self._finalizer: weakref.finalize | None = None
        self._view = ("", "", "", "")
        self.steps, self._last_ready = 0, 0
        self.error: str | None = None
        self.reset()
        StepThrough._latest[settings] = self

    # -- the scenario ---------------------------------------------------------

    def _live(self) -> _Scenario:
        if self._scenario is None:
            raise RuntimeError("this StepThrough is closed")
        return self._scenario

    @property
    def loop(self) -> SelectorLoop:
        return self._live().loop

    @property
    def server(self) -> EchoServer:
        return self._live().server

    @property
    def clients(self) -> tuple[EchoClient, ...]:
        return self._live().clients

    @property
    def timeline(self) -> Timeline:
        return self._live().timeline

    @property
    def done(self) -> bool:
        """Every client is done and the server has no connection left."""
        return self._scenario is not None and self._scenario.done

    def reset(self) -> None:
        """Close the current scenario (if any) and build a fresh one at step 0.

        Raises `RuntimeError` after `close()`, and whatever building raises
        (e.g. `OSError`); nothing is left open then.
        """
        if self.closed:
            raise RuntimeError("this StepThrough is closed")
        self._release()
        s = self.settings
        self._scenario = _build_echo(s.clients, s.messages, s.selector)
        self._finalizer = weakref.finalize(self, _stop_loop, self._scenario.loop)
        self.steps, self.error, self._last_ready = 0, None, 0
        self._render(0, 0, "events while setting up")

    def _release(self) -> None:
        if self._finalizer is not None:
            self._finalizer()  # stops the loop now, once
        self._scenario = self._finalizer = None

    def close(self) -> None:
        """Close every socket of the scenario and the widgets (idempotent)."""
        self._release()
        super().close()

    # -- stepping -------------------------------------------------------------

    def step(self) -> int:
        """One ``loop.step()``: one ``select()`` and its callbacks; return how many keys were ready.

        After an error nothing more is stepped (see `error`; Reset starts over).
        Raises `RuntimeError` after `close()`.
        """
        timeline = self._live().timeline
        before = timeline.last_seq
        ready = self._one_step()
        self._render(before, before, f"events in step {self.steps}")
        return ready

    def run_to_end(self, max_steps: int = MAX_STEPS) -> int:
        """Step until done (at most ``max_steps`` steps); return how many were taken.

        Stops early after an error or a step with nothing ready within `STEP_WAIT`.
        Raises `ValueError` for ``max_steps`` outside 1..`MAX_STEPS`, `RuntimeError` after `close()`.
        """
        _check_int("max_steps", max_steps, 1, MAX_STEPS)
        timeline, first = self._live().timeline, self.steps + 1
        start = last = timeline.last_seq
        taken = 0
        while taken < max_steps and not self.done and self.error is None:
            last = timeline.last_seq
            taken += 1
            if self._one_step() == 0:
                break  # nothing happened for STEP_WAIT seconds: stuck, say so
        if taken:
            self._render(
                start,
                last,
                f"events in steps {first}-{self.steps}" if taken > 1 else f"events in step {first}",
            )
        return taken

    def _one_step(self) -> int:
        scenario = self._live()
        if self.error is not None:
            return 0
        try:
            ready = scenario.loop.step(0.0 if scenario.done else STEP_WAIT)
        except Exception as exc:  # a callback failed: show it, stop stepping
            self.error, ready = _one_line(exc), 0
        self.steps += 1
        self._last_ready = ready
        return ready

    # -- showing --------------------------------------------------------------

    def _status_line(self) -> str:
        if self.steps == 0:
            return "step 0: nothing selected yet"
        if self.error is not None:
            return f"step {self.steps}: error: {self.error} (Reset to start over)"
        line = f"step {self.steps}: {self._last_ready} ready"
        if self.done:
            complete, total = sum(c.result().complete for c in self.clients), len(self.clients)
            return f"{line}; done: " + (
                "all echoes complete"
                if complete == total
                else f"{complete} of {total} echoes complete"
            )
        if self._last_ready == 0:
            return f"{line} within {STEP_WAIT:g} s: stuck"
        return line

    def _render(self, events_since: int, ready_since: int, heading: str) -> None:
        """Show the status, the key map (ready after ``ready_since``) and the events after ``events_since``."""
        scenario = self._live()
        rows = _key_rows(scenario.loop, ready_since)
        events = scenario.timeline.summary(since=events_since, limit=_EVENT_LINES)
        self._view = (self._status_line(), _key_map_text(rows), f"{heading}:", events)
        self.status.value = self._view[0]
        self.out.outputs = (
            display_output({"text/html": _key_map_html(rows), "text/plain": self._view[1]}),
            stream_output(f"{self._view[2]}\n{events}"),
        )

    def text(self) -> str:
        """The current view as deterministic text: status, key map, the last step's events."""
        status, keys, heading, events = self._view
        return f"{status}\n\nregistered keys:\n{keys}\n\n{heading}\n{events}"

    def __repr__(self) -> str:
        s = self.settings
        selector = f", {s.selector}" if s.selector else ""
        what = f"{s.scenario}: {_plural(s.clients, 'client')} x {_plural(len(s.messages), 'message')}{selector}"
        state = (
            ", closed"
            if self.closed
            else ", error"
            if self.error
            else ", done"
            if self.done
            else ""
        )
        return f"<StepThrough {what}; step {self.steps}{state}>"


def step_through(
    scenario: str = "echo",
    *,
    clients: int = 2,
    messages: object = DEFAULT_MESSAGES,
    selector: str | type[selectors.BaseSelector] | None = None,
) -> StepThrough:
    """The deterministic stepper: one `SelectorLoop` shared by an `EchoServer` and its clients.

    ``messages`` is what every client sends; ``selector`` a class or name
    (default: `selectors.DefaultSelector`). Call `StepThrough.close()` when
    done; an abandoned one closes its sockets when garbage collected.

    Raises `ValueError` for an unknown scenario, a bad client count or a
    selector this platform lacks, `TypeError` for messages that are not bytes,
    and `OSError` if the sockets cannot be opened.
    """
    if scenario not in SCENARIOS:
        raise ValueError(
            f"scenario must be one of {', '.join(map(repr, SCENARIOS))}, got {scenario!r}"
        )
    _check_int("clients", clients, 1, MAX_CLIENTS)
    if selector is not None:
        resolve_selector(selector)  # raises before anything is opened
    name = None if selector is None else _selector_choice(selector)
    return StepThrough(StepSettings(scenario, clients, tuple(check_messages(messages)), name))
