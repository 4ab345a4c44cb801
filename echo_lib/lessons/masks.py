"""The stepper of notebook 03: one `SelectorLoop`, one ``select()`` per click, no threads.

`step_through()` puts a server and its clients on one `SelectorLoop` and runs
nothing until stepped: one click of Step is one ``loop.step()``, i.e. one
``select()`` and its callbacks. After each step it shows the key map (who is
registered for what, who was ready with which mask) and the events the step
recorded. It is a `WidgetFront`: its text repr and `StepThrough.text()` hold
no ports, fds or times, which is what nbval compares.
"""

from __future__ import annotations

import html
import selectors
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from ..core.checks import check_int, check_messages
from ..core.events import mask_name
from ..core.timeline import Timeline
from ..core.transcript import plural
from ..driver.client import DEFAULT_MESSAGES, EchoClient
from ..driver.implementations import resolve_selector
from ..driver.loop import SelectorLoop
from ..driver.recording import RecordingSelector
from ..driver.server import EchoServer
from ..view.widgets import (
    WidgetFront,
    display_output,
    one_line_error,
    stream_output,
    weak_callback,
)

__all__ = ["MAX_CLIENTS", "MAX_STEPS", "SCENARIOS", "StepSettings", "StepThrough", "step_through"]

MAX_CLIENTS = 50
MAX_STEPS = 1000  # "Run to end" takes at most this many steps
STEP_WAIT = 1.0  # a step waits at most this long for something to be ready
SCENARIOS: tuple[str, ...] = ("echo",)
_EVENT_LINES = 200  # at most this many event lines per step-through view


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
        previous = StepThrough._latest.get(settings)
        if previous is not None:
            previous.close()
        self.settings = settings
        self._make_widgets()
        self._scenario: _Scenario | None = None
        self._finalizer: weakref.finalize | None = None
        self._view = ("", "", "", "")
        self.steps, self._last_ready = 0, 0
        self.error: str | None = None
        self.reset()
        StepThrough._latest[settings] = self

    def _make_widgets(self) -> None:
        """The three buttons, wired to step, run_to_end and reset, above status and out."""
        import ipywidgets as widgets

        self.step_button = widgets.Button(
            description="Step", button_style="primary", icon="step-forward"
        )
        self.run_button = widgets.Button(description="Run to end", icon="fast-forward")
        self.reset_button = widgets.Button(description="Reset", icon="undo")
        self.status = widgets.Label()
        self.out = widgets.Output()
        buttons = widgets.HBox([self.step_button, self.run_button, self.reset_button])
        self._adopt(widgets.VBox([buttons, self.status, self.out]))
        self.step_button.on_click(weak_callback(self.step))
        self.run_button.on_click(weak_callback(self.run_to_end))
        self.reset_button.on_click(weak_callback(self.reset))

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
        Raises `ValueError` for ``max_steps`` outside 1..`MAX_STEPS`,
        `RuntimeError` after `close()`.
        """
        check_int("max_steps", max_steps, 1, MAX_STEPS)
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
            self.error, ready = one_line_error(exc), 0
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
        """Show the status, the key map and the events after ``events_since``.

        The key map marks the keys that were ready after ``ready_since``.
        """
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
        sizes = f"{plural(s.clients, 'client')} x {plural(len(s.messages), 'message')}"
        what = f"{s.scenario}: {sizes}{selector}"
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
    check_int("clients", clients, 1, MAX_CLIENTS)
    if selector is not None and not isinstance(selector, (str, type)):
        raise TypeError(f"selector must be a selector class or its name, got {selector!r}")
    # resolve_selector raises before anything is opened, also for a class this platform lacks
    name = None if selector is None else resolve_selector(selector).__name__
    return StepThrough(StepSettings(scenario, clients, tuple(check_messages(messages)), name))
