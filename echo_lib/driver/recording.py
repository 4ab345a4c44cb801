"""`RecordingSelector`: any selector, with a timeline of everything it did.

Write plain `selectors` code against it and get a timeline for free::

    sel = RecordingSelector(selectors.DefaultSelector())
    sel.register(server_sock, selectors.EVENT_READ, accept)
    for key, mask in sel.select(timeout=1):
        key.data(key.fileobj, mask)
    print(sel.timeline.summary())

It wraps the inner selector rather than subclassing it, so it works with every
class the platform has (and with any other `BaseSelector`). Each registration
is recorded under an actor name: the one given with `label()`, or else an
automatic ``socket-1``, ``socket-2``... in order of first registration, which
keeps summaries identical from run to run (fds are not).

A file object labelled with ``actor=None`` is hidden: it is still selected,
but nothing about it is recorded (the loop's wakeup socket uses this).

The one naming hook is ``namer``: called at each ``register()`` as
``namer(fileobj, given)``, where ``given`` is the label `label()` set for
that fd (``""`` when none, None when hidden), it returns the actor to record
under (None hides it). A stage names a program's sockets ``client``,
``client/conn-1``...; the coroutine lesson names any server's lanes as
`EchoServer` does. ``track=True`` keeps every file object ever registered in
`registered`, so that an owner can close what a learner's code left open.
"""

from __future__ import annotations

import selectors
from collections.abc import Callable, Mapping
from typing import Any

from ..core.columns import WIDTH
from ..core.events import mask_name
from ..core.timeline import Timeline
from .implementations import select_error

__all__ = ["RecordingSelector"]

_FileObj = Any  # int or an object with fileno(), as in selectors
Namer = Callable[[_FileObj, "str | None"], "str | None"]


class RecordingSelector(selectors.BaseSelector):
    """Wrap ``selector`` (default: a new `selectors.DefaultSelector`) and record it.

    Raises the same exceptions as the wrapped selector, unchanged.
    """

    def __init__(
        self,
        selector: selectors.BaseSelector | None = None,
        timeline: Timeline | None = None,
        *,
        actor: str = "selector",
        namer: Namer | None = None,
        track: bool = False,
    ) -> None:
        if namer is not None and not callable(namer):
            raise TypeError(f"namer must be callable as namer(fileobj, given), got {namer!r}")
        self.inner = selector if selector is not None else selectors.DefaultSelector()
        self.timeline = timeline if timeline is not None else Timeline()
        self.actor = actor
        self.namer = namer
        #: Every file object registered here, in order (with ``track=True``; else None).
        self.registered: list[_FileObj] | None = [] if track else None
        self._labels: dict[int, str | None] = {}
        self._auto = 0
        self._details: dict[tuple[str, int], str] = {}  # select() details, made once each

    def label(self, fileobj: _FileObj, actor: str | None) -> None:
        """Name the actor for ``fileobj``'s events; None hides them."""
        self._labels[selectors._fileobj_to_fd(fileobj)] = actor

    def actor_of(self, fileobj: _FileObj) -> str | None:
        """The actor name under which ``fileobj`` (or an fd) is recorded, if it has one yet."""
        return self._labels.get(selectors._fileobj_to_fd(fileobj))

    def register(self, fileobj: _FileObj, events: int, data: Any = None) -> selectors.SelectorKey:
        if self.registered is not None:
            self.registered.append(fileobj)  # first: tracked even if register() raises
        if self.namer is not None:
            fd = selectors._fileobj_to_fd(fileobj)
            self._labels[fd] = self.namer(fileobj, self._labels.get(fd, ""))
        key = self.inner.register(fileobj, events, data)
        self._note(key, "register", events)
        return key

    def unregister(self, fileobj: _FileObj) -> selectors.SelectorKey:
        key = self.inner.unregister(fileobj)
        self._note(key, "unregister", key.events)
        self._labels.pop(key.fd, None)
        return key

    def modify(self, fileobj: _FileObj, events: int, data: Any = None) -> selectors.SelectorKey:
        before = self.inner.get_key(fileobj).events
        key = self.inner.modify(fileobj, events, data)
        self._note(key, "modify", events, f"{mask_name(before)} → {mask_name(events)}")
        return key

    # select() runs once per wake-up of every recorded loop (issue 11). The
    # inner selector is called directly, once; a ValueError it raises comes
    # back made clear by `select_error` (FD_SETSIZE). One pass names every
    # ready key (in order, so automatic names stay stable) and lays out a ready
    # event per shown key; then the select event (unless every ready key is
    # hidden) and those ready events go to the timeline in one call, at one
    # clock reading: they happened at once.
    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        try:
            ready = self.inner.select(timeout)
        except ValueError as exc:
            error = select_error(self.inner, exc)
            if error is exc:
                raise
            raise error from exc
        timeline, labels = self.timeline, self._labels
        now = timeline.clock()
        events: list[object] = [now, self.actor, "select", -1, 0, 0, ""]  # count, detail: below
        for key, mask in ready:
            fd = key.fd
            actor = labels.get(fd, "")
            if actor == "":  # not labelled yet: name it now
                actor = self._actor(key)
            if actor is not None:
                events += (now, actor, "ready", fd, mask, 0, "")
        shown = len(events) // WIDTH - 1
        if shown or not ready:
            events[5], events[6] = shown, self._select_detail(timeout, shown)
            timeline.record_flat(events)
        return ready

    def close(self) -> None:
        self.inner.close()
        self._labels.clear()

    def get_map(self) -> Mapping[_FileObj, selectors.SelectorKey]:
        return self.inner.get_map()

    def _note(self, key: selectors.SelectorKey, action: str, events: int, detail: str = "") -> None:
        actor = self._actor(key)
        if actor is not None:
            self.timeline.record(actor, action, key.fd, events, detail=detail)

    def _select_detail(self, timeout: float | None, ready: int) -> str:
        # Only the kind of wait, never the number: summaries must not change between runs.
        wait = "block" if timeout is None else "poll" if timeout <= 0 else "wait"
        try:
            return self._details[wait, ready]
        except KeyError:  # made once per kind and count, then shared by every event
            text = self._details[wait, ready] = (
                f"{wait}, {ready} ready" if ready else f"{wait}, nothing ready"
            )
            return text

    def _actor(self, key: selectors.SelectorKey) -> str | None:
        try:
            return self._labels[key.fd]
        except KeyError:
            self._auto += 1
            actor = self._labels[key.fd] = f"{type(key.fileobj).__name__.lower()}-{self._auto}"
            return actor

    def __repr__(self) -> str:
        return (
            f"<RecordingSelector around {type(self.inner).__name__}, {len(self.timeline)} events>"
        )
