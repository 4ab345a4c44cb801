"""The seed's console lines: from one event (pure `seed_lines`), and from a run's events.

Events carry counts, not bytes; the seed prints the bytes. `ServerTranscript`
and `ClientTranscript` keep the start of each chunk a server received or a
client sent and received, and hand it to `seed_lines` with its event.
"""

from __future__ import annotations

import selectors
from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from typing import Any

from ..core.events import Event
from ..driver.client import EchoClient
from ..driver.server import EchoServer

__all__ = ["SHOW_LIMIT", "ClientTranscript", "ServerTranscript", "seed_lines"]

SHOW_LIMIT = 64  # bytes shown of a message before "... (N bytes)"


def seed_lines(
    event: Event,
    role: str,
    peers: Mapping[str, Any] | None = None,
    data: bytes | None = None,
) -> list[str]:
    """The seed's console lines for one event of the ``"server"`` or the ``"client"``.

    ``peers`` maps an actor (``"server/conn-1"``, ``"client"``) to the address
    of the socket at its other end; an ``accept`` event names its new actor in
    ``detail``. ``data`` is the start of the bytes a ``recv``/``send`` moved
    (at least `SHOW_LIMIT` of them, or all); without it only the count is shown.
    Events the seed prints nothing for give ``[]``.

    Raises `ValueError` for another role.
    """
    if role not in ("server", "client"):
        raise ValueError(f"role must be 'server' or 'client', got {role!r}")
    peer = _peer(event, peers or {})
    if role == "server":
        return _server_lines(event, peer, data)
    return _client_lines(event, peer, data)


def _peer(event: Event, peers: Mapping[str, Any]) -> str:
    """The address at the other end of the event's socket, as the seed prints it."""
    actor = f"{event.actor}/{event.detail}" if event.action == "accept" else event.actor
    return repr(peers[actor]) if actor in peers else "<unknown address>"


def _server_lines(event: Event, peer: str, data: bytes | None) -> list[str]:
    """The seed server's lines for one event."""
    connection = "/" in event.actor  # "server/conn-1"; the listener is "server"
    match event.action:
        case "accept":
            return [f"accept({peer})"]
        case "ready" if connection:
            return [f"read({peer})" if event.mask & selectors.EVENT_READ else f"write({peer})"]
        case "recv":
            return [f"  received {_shown(data, event.nbytes)}"]
        case "send" if event.detail == "partial":
            return [f"  sent {event.nbytes} bytes, not all: the rest waits for EVENT_WRITE"]
        case "close" if connection:
            return ["  closing"]
        case "error":
            return [f"  error: {event.detail}"]
    return []


def _client_lines(event: Event, peer: str, data: bytes | None) -> list[str]:
    """The seed client's lines for one event."""
    match event.action:
        case "ready":
            return [f"client({peer})"]
        case "send":
            return ["  ready to write", f"  sending {_shown(data, event.nbytes)}"]
        case "modify":
            return ["  ready to write", "  switching to read-only"]
        case "recv":
            return ["  ready to read", f"  received {_shown(data, event.nbytes)}"]
        case "eof":
            return ["  ready to read", f"  the server closed the connection: {event.detail}"]
        case "error":
            return [f"  error: {event.detail}"]
    return []


def _shown(data: bytes | None, nbytes: int) -> str:
    """``b'...'`` as the seed prints it; a long message is cut, with its length."""
    if data is None:
        return f"{nbytes} bytes"
    if nbytes <= SHOW_LIMIT:
        return repr(data[:nbytes])
    return f"{data[:SHOW_LIMIT]!r}... ({nbytes} bytes)"


# -- transcripts: a stream of events, with the bytes they moved -----------------


class ServerTranscript:
    """Turns a server's events into the seed's lines, with peer addresses and bytes.

    `EchoServer` hands every chunk it receives to `on_recv`; events carry only
    counts, and the seed prints the bytes. The start of each chunk waits here,
    in order, for its `recv` event.
    """

    def __init__(self) -> None:
        self.server: EchoServer | None = None
        self.peers: dict[str, Any] = {}
        self.heads: dict[str, deque[bytes]] = defaultdict(deque)

    def on_recv(self, actor: str, data: bytes) -> None:
        self.heads[actor].append(data[:SHOW_LIMIT])

    def lines(self, events: Sequence[Event]) -> list[str]:
        assert self.server is not None
        self.peers.update(self.server.peer_addresses())  # a new peer is still open here
        lines: list[str] = []
        for event in events:
            data = self.heads[event.actor].popleft() if event.action == "recv" else None
            lines += seed_lines(event, "server", self.peers, data)
            if event.action == "close":
                self.peers.pop(event.actor, None)
                self.heads.pop(event.actor, None)
        return lines


class ClientTranscript:
    """Turns a client's events into the seed's lines, with the bytes they moved."""

    def __init__(self, client: EchoClient, payload: bytes) -> None:
        self.client, self.payload = client, payload
        # EchoClient does not expose getpeername(); the address it connected to will do.
        self.peers = {client.name: client.address}
        self.sent = self.received = 0

    def lines(self, events: Sequence[Event]) -> list[str]:
        # One copy of what came back per step, and only in a step that received.
        echoed = self.client.received_data if any(e.action == "recv" for e in events) else b""
        lines: list[str] = []
        for event in events:
            lines += seed_lines(event, "client", self.peers, self._data(event, echoed))
        return lines

    def _data(self, event: Event, echoed: bytes) -> bytes | None:
        """The start of the bytes a send/recv moved: they follow the ones already seen."""
        if event.action == "send":
            start, self.sent = self.sent, self.sent + event.nbytes
            return self.payload[start : start + SHOW_LIMIT]
        if event.action == "recv":
            start, self.received = self.received, self.received + event.nbytes
            return echoed[start : start + SHOW_LIMIT]
        return None
