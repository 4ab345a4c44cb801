"""The waiting room of notebook 01: a few clients, one server function, who waits for whom.

A *server function* is the notebook's own code, ``serve(listener, timeline,
clients)``: it serves ``clients`` connections on the listening socket, records
what it does into the timeline, and returns once all of them have closed.
Notebook 01 writes two: a blocking server that takes one client at a time, and
a selectors server that takes every client at once.

`run_clients()` runs one against ``clients`` clients. Each client connects
(in order, from the calling thread, so the server's accept queue holds them
in that order), then in its own thread sends one message, reads its echo,
stays connected ``hold`` seconds, and hangs up, recording each step. What
comes out is deterministic where the server makes it so: behind a blocking
server, client k gets its echo only after the k - 1 clients before it left.

`waiting_room()` is the widget around it: a slider for the number of clients
and for ``hold``, a choice of server, a Run button, then the timeline and a
short report. Its text repr and `WaitingRoom.text()` hold no times, ports or
fds except durations written as "0.41 s" (which notebooks sanitize).
"""

from __future__ import annotations

import contextlib
import functools
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..core.checks import check_int, check_number
from ..core.timeline import Timeline
from ..driver.runner import ThreadRunner
from ..view.widgets import ReportFront, describe_exception, timeline_output, weak_callback

__all__ = ["MAX_CLIENTS", "ClientVisit", "RoomRun", "WaitingRoom", "run_clients", "waiting_room"]

ServeFunction = Callable[[socket.socket, Timeline, int], Any]

MAX_CLIENTS = 6
HOLD_RANGE = (0.1, 1.0)
MESSAGE = b"hello"
TIMEOUT = 5.0  # every blocking call of a run gives up after this long


@dataclass(frozen=True)
class ClientVisit:
    """One client's visit: how long its echo took, and how many others had left by then."""

    name: str
    echoed: bool
    wait: float
    others_gone: int

    def __str__(self) -> str:
        if not self.echoed:
            return f"{self.name}: no echo"
        others = f"{self.others_gone} other client{'s' * (self.others_gone != 1)}"
        return f"{self.name}: echo after {others} left"


@dataclass(frozen=True)
class RoomRun:
    """The outcome of `run_clients`: the visits, the shared timeline, the server's peak load."""

    server: str
    clients: int
    hold: float
    visits: tuple[ClientVisit, ...]
    timeline: Timeline
    most_at_once: int

    @property
    def longest_wait(self) -> float:
        return max((v.wait for v in self.visits), default=0.0)

    def __str__(self) -> str:
        plural = "s" * (self.clients != 1)
        lines = [
            f"{self.server} server, {self.clients} client{plural}, "
            f"each stays {self.hold:.1f} s after its echo"
        ]
        lines += map(str, self.visits)
        lines.append(f"most clients served at the same time: {self.most_at_once}")
        lines.append(f"longest wait for an echo: {self.longest_wait:.2f} s")
        return "\n".join(lines)


def run_clients(
    serve: ServeFunction,
    clients: int = 3,
    *,
    hold: float = 0.4,
    name: str = "server",
    timeout: float = TIMEOUT,
) -> RoomRun:
    """Run ``serve`` in a thread against ``clients`` clients; return what happened.

    Every thread is joined and every socket closed on return. Raises
    `ValueError` for ``clients`` outside 1..`MAX_CLIENTS` or ``hold`` outside
    0.1..1.0, `TimeoutError` if the server or a client is still busy after
    ``timeout`` seconds, and whatever ``serve`` raised, in the caller's thread.
    """
    check_int("clients", clients, 1, MAX_CLIENTS)
    check_number("hold", hold, *HOLD_RANGE)
    timeline = Timeline()
    with socket.create_server(("127.0.0.1", 0), backlog=MAX_CLIENTS) as listener:
        listener.settimeout(timeout)  # a blocking server gives up rather than hang
        address = listener.getsockname()[:2]
        server = _start(
            getattr(serve, "__name__", "server"), _serving, serve, listener, timeline, clients
        )
        visits, failure = _visit_all(address, timeline, clients, hold, timeout)
        _join(server, timeout)  # the clients have hung up: that ends it
    for worker in (server, *visits):  # the server's error first: it explains the clients'
        _finish(worker)
    if failure is not None:
        raise failure
    return RoomRun(
        name, clients, hold, _visits(timeline, clients), timeline, _most_at_once(timeline)
    )


def _visit_all(
    address: tuple[str, int], timeline: Timeline, clients: int, hold: float, timeout: float
) -> tuple[list[ThreadRunner], OSError | None]:
    """Connect every client in order, then run their visits in threads; close every socket.

    Returns the visits and the error that stopped connecting, if any (e.g.
    refused: the server died, and its own error says why).
    """
    socks: list[socket.socket] = []
    visits: list[ThreadRunner] = []
    try:
        for i in range(1, clients + 1):
            socks.append(socket.create_connection(address, timeout=timeout))
            timeline.record(f"client-{i}", "connect")
        visits = [
            _start(f"client-{i}", _visit, sock, f"client-{i}", timeline, hold)
            for i, sock in enumerate(socks, 1)
        ]
        for visit in visits:
            _join(visit, timeout * clients)
    except OSError as exc:
        return visits, exc
    finally:
        for sock in socks:
            sock.close()  # idempotent; a client that never ran is hung up here
    return visits, None


def _serving(
    serve: ServeFunction, listener: socket.socket, timeline: Timeline, clients: int
) -> None:
    """Run ``serve``; if it fails, close the listener so that waiting clients are reset at once."""
    try:
        serve(listener, timeline, clients)
    except BaseException:
        listener.close()
        raise


def _start(name: str, function: Callable[..., Any], *args: Any) -> ThreadRunner:
    """Run ``function(*args)`` in a `ThreadRunner` named ``waiting-room-{name}``."""
    return ThreadRunner(functools.partial(function, *args), name=f"waiting-room-{name}").start()


def _join(runner: ThreadRunner, timeout: float) -> None:
    """Wait up to ``timeout`` seconds; one still running is reported by `_finish`."""
    with contextlib.suppress(TimeoutError):
        runner.join(timeout)


def _finish(runner: ThreadRunner) -> None:
    """Raise `TimeoutError` if ``runner`` still runs, else the exception that ended it, if any."""
    if runner.running:
        raise TimeoutError(f"{runner.name} was still running when the run ended")
    runner.raise_if_failed()


def _visit(sock: socket.socket, name: str, timeline: Timeline, hold: float) -> None:
    """One client: send, read the whole echo, stay ``hold`` s, hang up (recorded before closing)."""
    sock.sendall(MESSAGE)
    timeline.record(name, "send", nbytes=len(MESSAGE))
    received = 0
    while received < len(MESSAGE):
        chunk = sock.recv(1024)
        if not chunk:
            timeline.record(name, "eof")
            break
        received += len(chunk)
        timeline.record(
            name,
            "recv",
            nbytes=len(chunk),
            detail="echo complete" if received >= len(MESSAGE) else "",
        )
    threading.Event().wait(hold)
    timeline.record(name, "close")
    sock.close()


def _visits(timeline: Timeline, clients: int) -> tuple[ClientVisit, ...]:
    closes = {
        e.actor: e.seq for e in timeline.events(action="close") if e.actor.startswith("client-")
    }
    visits = []
    for i in range(1, clients + 1):
        name = f"client-{i}"
        sends = timeline.events(name, "send")
        echo = [e for e in timeline.events(name, "recv") if e.detail == "echo complete"]
        if not (sends and echo):
            visits.append(ClientVisit(name, False, 0.0, 0))
            continue
        gone = sum(seq < echo[0].seq for actor, seq in closes.items() if actor != name)
        visits.append(ClientVisit(name, True, echo[0].t - sends[0].t, gone))
    return tuple(visits)


def _most_at_once(timeline: Timeline) -> int:
    """The most server-side connections open together, replayed from accept and close events."""
    open_now = most = 0
    for event in timeline.events():
        if event.actor == "server" and event.action == "accept":
            open_now += 1
            most = max(most, open_now)
        elif event.actor.startswith("server/") and event.action == "close":
            open_now -= 1
    return most


# -- the widget ---------------------------------------------------------------


class WaitingRoom(ReportFront):
    """Pick a server and a number of clients, press Run, see who waited.

    Attributes: the controls `clients`, `hold`, `server` (ToggleButtons over
    the names of the server functions) and `run_button`; the Output `out`;
    `widget`, the whole VBox; `last`, the last `RoomRun` (or None).
    """

    def __init__(
        self, servers: Mapping[str, ServeFunction], clients: int, hold: float, server: str
    ) -> None:
        import ipywidgets as widgets

        self.servers = dict(servers)
        style = {"description_width": "8em"}
        self.clients = widgets.IntSlider(
            clients, min=1, max=MAX_CLIENTS, description="clients", style=style
        )
        self.hold = widgets.FloatSlider(
            hold,
            min=HOLD_RANGE[0],
            max=HOLD_RANGE[1],
            step=0.1,
            description="stay (s)",
            style=style,
        )
        self.server = widgets.ToggleButtons(
            options=list(self.servers), value=server, description="server", style=style
        )
        self.run_button = widgets.Button(description="Run", button_style="primary", icon="play")
        self.out = widgets.Output()
        self._adopt(widgets.VBox([self.server, self.clients, self.hold, self.run_button, self.out]))
        self.run_button.on_click(weak_callback(self.run))
        self.last: RoomRun | None = None

    def run(self) -> RoomRun | None:
        """What Run does: run the chosen server against the clients, show report and timeline.

        Returns the `RoomRun`, or None when the run failed (the error is shown
        as one line, never as a traceback).
        """
        name, clients, hold = self.server.value, self.clients.value, round(self.hold.value, 1)
        doing = f"running the {name} server with {clients} clients ..."
        return self._run_and_report(
            doing,
            lambda: run_clients(self.servers[name], clients, hold=hold, name=name),
            _plot_output,
        )

    def __repr__(self) -> str:
        last = (
            "not run yet"
            if self.last is None
            else f"last run: {self.last.server} server, {self.last.clients} clients"
        )
        return f"<WaitingRoom: servers {', '.join(self.servers)}; {last}>"


def waiting_room(
    servers: Mapping[str, ServeFunction],
    *,
    clients: int = 3,
    hold: float = 0.4,
    server: str | None = None,
) -> WaitingRoom:
    """The widget: ``servers`` maps a button label to a server function.

    ``server`` is the one chosen first (default: the first). Raises
    `ValueError` for no servers, an unknown ``server``, or ``clients``/``hold``
    outside the sliders' ranges; `TypeError` for a server that is not callable.
    """
    if not servers:
        raise ValueError("servers must name at least one server function")
    for label, function in servers.items():
        if not callable(function):
            raise TypeError(f"servers[{label!r}] must be a server function, got {function!r}")
    chosen = next(iter(servers)) if server is None else server
    if chosen not in servers:
        raise ValueError(f"server must be one of {', '.join(map(repr, servers))}, got {server!r}")
    check_int("clients", clients, 1, MAX_CLIENTS)
    check_number("hold", hold, *HOLD_RANGE)
    return WaitingRoom(servers, clients, hold, chosen)


def _plot_output(run: RoomRun) -> dict[str, Any]:
    """The run's timeline as a PNG display output, drawn on a figure pyplot never sees."""
    title = f"{run.server} server, {run.clients} clients"
    return timeline_output(
        run.timeline, title, max_height=8.0, describe_error=describe_exception, end="\n"
    )
