"""Checkers for notebook 09 (build your own server): one per step, naming the mistake it fixes.

Every check runs the learner's ``serve(listener, stop, selector)`` (the
contract of `echo_lib.exercises.serving`) in a background thread against
seeded clients, like the capstone's gauntlet but smaller, and returns a
`GauntletFeedback` whose ``events`` are the timeline of the learner's server,
ready for ``plot_timeline``. Until step 5, clients read their whole echo and
stay connected (they never half-close); step 7 stops the server while five
clients are still connected.
"""

from __future__ import annotations

import random
import selectors
import socket
import time
from collections.abc import Callable
from typing import Any

from ..driver.sockets import LOOPBACK
from ..driver.wait import wait_until
from . import DidNotReturn, Feedback, run_with_timeout
from .capstone import ROUNDS, Round, run_rounds
from .clients import Client, close_all, drive, echo_clients
from .judges import judge_returned, judge_stop
from .scoreboard import GauntletFeedback
from .serving import KiB, MiB, ServerRun, serve_error_problem

__all__ = [
    "check_accept",
    "check_backpressure",
    "check_buffered_writes",
    "check_half_close",
    "check_idle_timeout",
    "check_on_accept",
    "check_resets",
    "check_state",
    "check_stop",
]

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE
Serve = Callable[..., Any]
SEED = 9


def _five(rng: random.Random) -> list[Client]:
    return echo_clients(rng, "client", 5, (100, 1000), mode="idle")


def _hog_and_busy(rng: random.Random) -> list[Client]:
    hog = Client("hog", rng.randbytes(24 * MiB), [], mode="hog", sndbuf=64 * KiB, rcvbuf=64 * KiB)
    return [hog, *echo_clients(rng, "busy", 3, (64 * KiB, 256 * KiB), mode="idle")]


def _check(title: str, serve: Serve, *rounds: Round) -> GauntletFeedback:
    feedback = GauntletFeedback(title)
    judge_returned(feedback, run_rounds(feedback, serve, rounds, seed=SEED))
    return feedback


# -- step 1: accept and register -------------------------------------------------------


def _judge_registrations(feedback: Feedback, run: ServerRun) -> None:
    keys = [k for k in run.registered_keys() if k.fileobj is not run.listener]
    if not feedback.expect(
        len(keys) == 5,
        f"{len(keys)} connections were registered while 5 clients were connected: "
        "register each accepted socket for EVENT_READ",
    ):
        return
    feedback.expect(
        all(k.events == READ for k in keys),
        "a connection with nothing to send was registered for "
        "EVENT_WRITE too: EVENT_WRITE is ready at once and again on every select(); register "
        "EVENT_READ only",
    )
    blocking = [k for k in keys if isinstance(k.fileobj, socket.socket) and k.fileobj.getblocking()]
    feedback.expect(
        not blocking,
        f"{len(blocking)} accepted sockets were left blocking: call sock.setblocking(False) "
        "after accept(), or one slow client stalls every other",
    )


def check_accept(serve: Serve) -> GauntletFeedback:
    """Step 1: five clients at once are accepted, non-blocking, registered for EVENT_READ."""
    return _check(
        "accept and register",
        serve,
        Round("five", "5 clients at once", _five, 3.0, _judge_registrations),
    )


# -- step 2: per-connection state as key.data --------------------------------------------


def _judge_state(feedback: Feedback, run: ServerRun) -> None:
    datas = [k.data for k in run.registered_keys() if k.fileobj is not run.listener]
    if not feedback.expect(
        all(d is not None for d in datas),
        "a connection's key.data is None: register each accepted socket with its own state "
        "object, e.g. sel.register(sock, READ, Conn())",
    ):
        return
    shared = len(datas) - len({id(d) for d in datas})
    feedback.expect(
        not shared,
        f"{len(datas)} connections share {len({id(d) for d in datas})} key.data objects: "
        "each connection needs its own state (a new Conn() per accept), or their buffers mix",
    )


def check_state(serve: Serve) -> GauntletFeedback:
    """Step 2: each connection is registered with its own state object as ``key.data``."""
    return _check(
        "per-connection state", serve, Round("five", "5 clients at once", _five, 3.0, _judge_state)
    )


# -- step 3: buffered writes, modify() only when the mask changes ------------------------


def _writers(run: ServerRun) -> list[selectors.SelectorKey]:
    return [k for k in run.registered_keys() if k.events & WRITE]


def _judge_writes(feedback: Feedback, run: ServerRun) -> None:
    # Every echo has arrived; give the server 1 s to drop EVENT_WRITE.
    wait_until(lambda: not _writers(run), 1.0)
    writers = _writers(run)
    feedback.expect(
        not writers,
        f"{len(writers)} connections were still registered for EVENT_WRITE after their echo "
        "was complete: modify() back to EVENT_READ once the buffer is empty",
    )
    same = [
        e
        for e in run.selector.timeline.events(None, "modify")
        if len(set(e.detail.split(" → "))) == 1
    ]
    feedback.expect(
        not same,
        f"modify() was called {len(same)} times with the mask the socket already had "
        f"({same[0].detail if same else ''}): call it only when the wanted mask changes",
    )


def check_buffered_writes(serve: Serve) -> GauntletFeedback:
    """Step 3: 2-3 MiB echoes through 16 KiB buffers come back exact; EVENT_WRITE only if needed."""
    big = Round(
        "big",
        "2 clients, 2-3 MiB each, through 16 KiB buffers",
        lambda rng: echo_clients(
            rng, "big", 2, (2 * MiB, 3 * MiB), mode="idle", read_size=16 * KiB, rcvbuf=16 * KiB
        ),
        3.0,
        _judge_writes,
    )
    return _check("buffered writes", serve, big)


# -- steps 4-6: the gauntlet's rounds ----------------------------------------------------


def check_backpressure(serve: Serve) -> GauntletFeedback:
    """Step 4: a client sends 24 MiB and never reads; the server holds at most `MAX_HELD` for it."""
    return _check(
        "backpressure", serve, Round("hog", "24 MiB sent, never read; 3 others", _hog_and_busy, 5.0)
    )


def check_half_close(serve: Serve) -> GauntletFeedback:
    """Step 5: clients that half-close at once still get their whole echo (the half-close round)."""
    return _check("half-close", serve, next(r for r in ROUNDS if r.name == "half-close"))


def check_resets(serve: Serve) -> GauntletFeedback:
    """Step 6: clients that reset mid-stream cost only their own connection (the resets round)."""
    return _check("resets and broken pipes", serve, next(r for r in ROUNDS if r.name == "resets"))


# -- step 7: unregister, then close, on stop ----------------------------------------------


def check_stop(serve: Serve) -> GauntletFeedback:
    """Step 7: stopped with five clients in, ``serve`` unregisters and closes all it opened."""
    feedback, clients = GauntletFeedback("clean stop"), _five(random.Random(SEED))
    try:
        with ServerRun(serve) as run:
            _drive(feedback, run, clients)
    finally:
        close_all(clients)  # only after the server stopped: it must close them itself
    feedback.events = run.selector.timeline.events()
    judge_stop(feedback, run)
    return feedback


def _drive(feedback: Feedback, run: ServerRun, clients: list[Client]) -> bool:
    """Serve ``clients``' echoes within 3 s, or say why not."""
    if drive(run, clients, time.monotonic() + 3.0):
        return True
    if run.died:
        why = (
            "serve() returned before stop was set"
            if run.error is None
            else serve_error_problem(run.error)
        )
    else:
        why = f"the {len(clients)} clients did not get their echo within 3 s"
    return feedback.expect(False, why)


# -- exercise: accept in a batch -----------------------------------------------------------


def check_on_accept(
    on_accept: Callable[[selectors.BaseSelector, socket.socket], object],
) -> Feedback:
    """``on_accept(sel, listener)`` must accept every waiting connection in one call."""
    feedback = Feedback("on_accept")
    with selectors.DefaultSelector() as sel, socket.create_server((LOOPBACK, 0)) as listener:
        listener.setblocking(False)
        sel.register(listener, READ)
        clients = [socket.create_connection(listener.getsockname(), timeout=2) for _ in range(5)]
        try:
            _call_on_accept(feedback, on_accept, sel, listener)
            accepted = [
                k.fileobj for k in list(sel.get_map().values()) if k.fileobj is not listener
            ]
            feedback.expect(
                len(accepted) == 5,
                f"one call registered {len(accepted)} of the 5 waiting connections: "
                "loop on accept() until it raises BlockingIOError",
            )
            feedback.expect(
                all(not s.getblocking() for s in accepted), "an accepted socket was left blocking"
            )
        finally:
            _close_registered(sel, skip=listener)
            for client in clients:
                client.close()
    return feedback


def _close_registered(sel: selectors.BaseSelector, skip: socket.socket) -> None:
    for key in list(sel.get_map().values()):
        if key.fileobj is not skip:
            sel.unregister(key.fileobj)
            key.fileobj.close()


def _call_on_accept(
    feedback: Feedback,
    on_accept: Callable[..., object],
    sel: selectors.BaseSelector,
    listener: socket.socket,
) -> None:
    try:
        run_with_timeout(on_accept, sel, listener, timeout=2)
    except DidNotReturn:
        feedback.expect(
            False,
            "on_accept did not return within 2 s: is the listener non-blocking, and does the loop "
            "stop at BlockingIOError?",
        )
    except BlockingIOError:
        feedback.expect(
            False,
            "on_accept raised BlockingIOError once no connection was left: catch it, that is the "
            "end of the batch",
        )
    except Exception as exc:
        feedback.expect(False, f"on_accept raised {type(exc).__name__}: {exc}")


# -- exercise: close idle connections ---------------------------------------------------

#: How long a connection may stay silent before the server of the exercise closes it.
IDLE_TIMEOUT = 0.5


def check_idle_timeout(serve: Serve) -> GauntletFeedback:
    """``serve`` must close each connection silent for `IDLE_TIMEOUT` s (not sooner, within 3 s).

    Four clients: three get an echo, then go quiet; one never sends. Each
    must see EOF no sooner than `IDLE_TIMEOUT` after its last send (or its
    connect) and within 3 s of the echo. Then ``serve`` must stop cleanly.
    """
    feedback, clients = GauntletFeedback("close idle connections"), _five(random.Random(SEED))[:3]
    clients.append(Client("silent", b"", [], mode="idle"))
    try:
        with ServerRun(serve) as run:
            if _drive(feedback, run, clients):
                _judge_silences(feedback, _wait_eof(clients, time.monotonic() + 3.0), clients)
    finally:
        close_all(clients)
    feedback.events = run.selector.timeline.events()
    judge_stop(feedback, run)
    return feedback


def _wait_eof(clients: list[Client], deadline: float) -> dict[str, float]:
    """When each client saw EOF (or a reset), by name; any still open at ``deadline`` is missing."""
    seen: dict[str, float] = {}
    with selectors.DefaultSelector() as sel:
        for client in clients:
            sel.register(client.sock, READ, client)  # type: ignore[arg-type]
        while len(seen) < len(clients) and time.monotonic() < deadline:
            for key, _ in sel.select(0.05):
                if _closed_by_peer(key.fileobj):  # type: ignore[arg-type]
                    seen[key.data.name] = time.monotonic()
                    sel.unregister(key.fileobj)
    return seen


def _closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(4096) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def _judge_silences(feedback: Feedback, seen: dict[str, float], clients: list[Client]) -> None:
    # The server's last event on a connection comes after the client's last
    # send (or its connect), so a server that waits IDLE_TIMEOUT after that
    # event closes no sooner than IDLE_TIMEOUT after the client's last send.
    still = len(clients) - len(seen)
    feedback.expect(
        not still,
        f"{still} silent connections were still open 3 s after the echo: after each "
        "select(), close every connection whose last event is more than IDLE_TIMEOUT "
        f"({IDLE_TIMEOUT} s) ago",
    )
    early = [
        c.name for c in clients if c.name in seen and seen[c.name] - c.last_sent < IDLE_TIMEOUT
    ]
    feedback.expect(
        not early,
        f"{', '.join(early)} closed sooner than {IDLE_TIMEOUT} s after its last byte: "
        "count silence from each connection's own last event",
    )
