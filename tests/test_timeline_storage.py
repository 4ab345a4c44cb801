"""Timeline storage: columns behind the `Event` view, wraparound, concurrent writers, summaries.

The reference below is the deque-of-tuples `Timeline` that the columns replaced,
kept here as the oracle: every scenario is recorded into both at once and
must read back the same.
"""

from __future__ import annotations

import random
import re
import selectors
import threading
import weakref
from collections import deque

import pytest

from echo_lib import EchoClient, EchoServer, Event, Timeline, mask_name
from echo_lib.core.timeline import BATCH, Columns

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


class ReferenceTimeline:
    """The previous storage: one `Event` per event in a bounded deque (summary code as it was)."""

    def __init__(self, maxlen: int | None) -> None:
        self.events: deque[Event] = deque(maxlen=maxlen)
        self.seq = 0

    def record(
        self,
        actor: str,
        action: str,
        fd: int = -1,
        mask: int = 0,
        nbytes: int = 0,
        detail: str = "",
    ) -> None:
        self.seq += 1
        self.events.append(Event(self.seq, 0.0, actor, action, fd, mask, nbytes, detail))

    def summary(self) -> str:
        width = max((len(e.actor) for e in self.events), default=5)
        lines = []
        for e in self.events:
            mask = mask_name(e.mask) if e.mask else ""
            nbytes = str(e.nbytes) if e.action in ("recv", "send", "select") else ""
            lines.append(
                f"{e.seq:>4}  {e.actor:<{width}}  {e.action:<10}  {mask:<10}  "
                f"{nbytes:>7}  {e.detail}".rstrip()
            )
        return "\n".join(lines) if lines else "(no events)"


class TeeTimeline(Timeline):
    """A `Timeline` that also records every call into a `ReferenceTimeline`."""

    def __init__(self, maxlen: int | None = None) -> None:
        super().__init__(maxlen=maxlen)
        self.reference = ReferenceTimeline(maxlen)
        self._tee_lock = threading.Lock()  # keeps both in the same order across threads

    def record(
        self,
        actor: str,
        action: str,
        fd: int = -1,
        mask: int = 0,
        nbytes: int = 0,
        detail: str = "",
    ) -> None:
        with self._tee_lock:
            super().record(actor, action, fd, mask, nbytes, detail)
            self.reference.record(actor, action, fd, mask, nbytes, detail)


def without_time(events: list[Event]) -> list[tuple[object, ...]]:
    return [e[:1] + e[2:] for e in events]


def assert_same(tl: TeeTimeline) -> None:
    assert tl.summary() == tl.reference.summary()
    assert without_time(tl.events()) == without_time(list(tl.reference.events))
    assert tl.dropped == tl.reference.seq - len(tl.reference.events) and len(tl) == len(
        tl.reference.events
    )


def random_events(count: int, seed: int) -> list[tuple[str, str, int, int, int, str]]:
    rng = random.Random(seed)
    actors = [
        "server",
        *(f"server/conn-{i}" for i in range(1, 40)),
        *(f"client-{i}" for i in range(1, 40)),
    ]
    actions = ["register", "modify", "select", "ready", "accept", "recv", "send", "eof", "close"]
    details = ["", "", "", "partial", "wait, 1 ready", "READ → READ|WRITE", "listener"]
    return [
        (
            rng.choice(actors),
            rng.choice(actions),
            rng.randrange(-1, 70000),
            rng.randrange(4),
            rng.randrange(1 << 31),
            rng.choice(details),
        )
        for _ in range(count)
    ]


# -- the Event view -----------------------------------------------------------


def test_events_read_back_as_the_event_tuples_recorded() -> None:
    tl = Timeline()
    calls = random_events(3 * BATCH + 5, seed=1)  # crosses several moves into the columns
    for call in calls:
        tl.record(*call)
    events = tl.events()
    assert all(type(e) is Event for e in events)
    assert [e.seq for e in events] == list(range(1, len(calls) + 1))
    assert [e[2:] for e in events] == calls
    assert all(b.t >= a.t >= 0 for a, b in zip(events, events[1:], strict=False))


def test_columns_round_trip_through_events() -> None:
    tl = Timeline()
    for call in random_events(500, seed=2):
        tl.record(*call)
    columns = tl.columns()
    assert (
        columns.rows == 500
        and columns.events() == tl.events()
        and columns._replace(first_seq=1) == columns
    )
    assert Columns.from_events(tl.events()).events() == tl.events()
    assert Columns.from_events([]).events() == []


@pytest.mark.parametrize(
    ("field", "bad"),
    [("nbytes", "three"), ("nbytes", 1 << 31), ("mask", 256), ("fd", None), ("detail", 7)],
)
def test_a_bad_event_is_refused_by_name_and_the_others_kept(field: str, bad: object) -> None:
    tl = Timeline()
    tl.record("a", "send", nbytes=3)
    tl.record("a", "send", **{field: bad})  # type: ignore[arg-type]
    tl.record("a", "recv", nbytes=(1 << 31) - 1)
    with pytest.raises(TypeError, match=re.escape(repr(bad))):
        len(tl)
    assert [(e.seq, e.action, e.nbytes) for e in tl] == [(1, "send", 3), (2, "recv", (1 << 31) - 1)]


def test_a_timeline_knows_up_to_256_actions() -> None:
    tl = Timeline()
    for n in range(257):
        tl.record("a", f"action-{n}")
    with pytest.raises(TypeError, match="'action-256'"):
        len(tl)
    assert len(tl) == 256 and tl.events()[-1].action == "action-255"


# -- wraparound at maxlen -----------------------------------------------------


@pytest.mark.parametrize("maxlen", [1, 7, BATCH - 1, BATCH + 3, 5000])
def test_wraparound_keeps_the_newest_maxlen_events(maxlen: int) -> None:
    tl = TeeTimeline(maxlen)
    for index, call in enumerate(random_events(4 * BATCH + 11, seed=maxlen)):
        tl.record(*call)
        if index % 997 == 0:
            assert len(tl) == min(index + 1, maxlen)  # reads in the middle of a batch too
    assert_same(tl)
    assert tl.last_seq == 4 * BATCH + 11 and tl.events()[0].seq == tl.dropped + 1


def test_storage_stays_bounded_and_small() -> None:
    tl = Timeline(maxlen=20_000)
    for index in range(200_000):
        tl.record(f"server/conn-{index // 10}", "recv", 7, 0, 64)  # a new actor every 10 events
    assert len(tl) == 20_000 and tl.dropped == 180_000
    assert tl.storage_bytes() / len(tl) <= 48 * 2  # columns, slack and string table, all bounded
    assert tl.actors()[0] == "server/conn-18000" and tl.events()[0].actor == "server/conn-18000"


def test_clear_empties_pending_and_stored_events() -> None:
    tl = Timeline(maxlen=10)
    for call in random_events(BATCH + 30, seed=3):
        tl.record(*call)
    tl.clear()
    tl.record("a", "select")
    assert [(e.seq, e.actor) for e in tl] == [(1, "a")] and tl.dropped == 0


# -- the recording hot path ---------------------------------------------------


def test_the_batch_th_record_call_moves_the_batch_in_the_recording_thread() -> None:
    tl = Timeline()
    tl.record("a", "send", fd=None)  # type: ignore[arg-type]
    for _ in range(BATCH - 2):
        tl.record("a", "send")
    with pytest.raises(TypeError, match="None"):
        tl.record("a", "send")  # the BATCH-th call: the bad value is refused here, not at a read
    assert len(tl) == BATCH - 1 and tl.last_seq == BATCH - 1


def test_a_timeline_is_freed_while_its_record_method_lives_on() -> None:
    tl = Timeline()
    record, alive = tl.record, weakref.ref(tl)
    del tl
    assert alive() is None  # no reference cycle: freed at once, without the garbage collector
    for n in range(2 * BATCH):
        record("a", "send", nbytes=n)  # its moves find no timeline: the events are let go, no error


def test_a_subclass_record_method_stays_in_charge() -> None:
    calls: list[tuple[object, ...]] = []

    class Counting(Timeline):
        def record(
            self,
            actor: str,
            action: str,
            fd: int = -1,
            mask: int = 0,
            nbytes: int = 0,
            detail: str = "",
        ) -> None:
            calls.append((actor, action, nbytes))
            super().record(actor, action, fd, mask, nbytes, detail)

    tl = Counting()
    tl.record("a", "send", nbytes=3)
    assert calls == [("a", "send", 3)] and [(e.actor, e.nbytes) for e in tl] == [("a", 3)]


def test_record_flat_stores_what_record_stores_and_moves_by_length() -> None:
    one, flat = Timeline(maxlen=None), Timeline(maxlen=None)
    values: list[object] = []
    for n in range(BATCH + 5):  # more than a batch, in one call: moved by its length
        one.record("conn", "ready", 7, 1, n, "x")
        values += (flat.clock(), "conn", "ready", 7, 1, n, "x")
    flat.record_flat(values)
    assert flat._stored == BATCH + 5  # moved in the recording thread, before any read
    drop_t = [(e.seq, e.actor, e.action, e.fd, e.mask, e.nbytes, e.detail) for e in one]
    assert [(e.seq, e.actor, e.action, e.fd, e.mask, e.nbytes, e.detail) for e in flat] == drop_t


def test_record_flat_goes_through_a_subclass_record() -> None:
    seen: list[tuple[object, ...]] = []

    class Counting(Timeline):
        def record(self, actor: str, action: str, *values: object) -> None:  # type: ignore[override]
            seen.append((actor, action, *values))

    Counting().record_flat([0.0, "a", "ready", 3, 1, 0, "", 0.0, "b", "select", -1, 0, 1, "poll"])
    assert seen == [("a", "ready", 3, 1, 0, ""), ("b", "select", -1, 0, 1, "poll")]


# -- concurrent writers -------------------------------------------------------


def test_concurrent_writers_and_readers_lose_nothing() -> None:
    tl = Timeline(maxlen=None)
    writers, per_writer = 6, 3 * BATCH + 17
    start = threading.Barrier(writers + 1)
    done = threading.Event()
    seen: list[int] = []

    def write(name: str) -> None:
        start.wait(timeout=10)
        for n in range(per_writer):
            tl.record(name, "send", n, 0, n)

    def read() -> None:
        start.wait(timeout=10)
        while not done.is_set():
            seen.append(len(tl))  # moves pending events while the writers append

    threads = [threading.Thread(target=write, args=(f"client-{i}",)) for i in range(writers)]
    reader = threading.Thread(target=read)
    for thread in [*threads, reader]:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    done.set()
    reader.join(timeout=10)
    assert not any(thread.is_alive() for thread in [*threads, reader])
    events = tl.events()
    assert [e.seq for e in events] == list(range(1, writers * per_writer + 1))
    for i in range(writers):
        assert [e.nbytes for e in events if e.actor == f"client-{i}"] == list(range(per_writer))
    assert seen == sorted(seen) and len(seen) > 1


# -- summary() before and after, on recorded runs -----------------------------


@pytest.mark.parametrize("maxlen", [None, 50])
def test_summary_of_a_recorded_echo_run_is_unchanged(maxlen: int | None) -> None:
    tl = TeeTimeline(maxlen)
    with EchoServer(timeline=tl) as server:
        clients = [
            EchoClient(
                server.address, [b"hello" * (i + 1), b"world"], timeline=tl, name=f"client-{i}"
            )
            for i in range(3)
        ]
        for client in clients:
            client.start()
        results = [client.join(timeout=10) for client in clients]
    assert all(result.complete for result in results)
    assert_same(tl)
    assert (
        tl.dropped > 0
        if maxlen
        else tl.bytes_moved("server")
        == {"recv": sum(c.expected for c in clients), "send": sum(c.expected for c in clients)}
    )
