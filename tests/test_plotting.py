"""plot_timeline: lanes, legend, mask labels, byte-flow arrows, and a bounded number of artists.

Everything is drawn with the Agg backend on synthetic timelines: no sockets, no
screen. Every figure is closed after each test, so that no "More than 20
figures" warning appears (warnings are errors in this suite).
"""

from __future__ import annotations

import itertools
import selectors
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.quiver import Quiver  # noqa: E402

from echo_lib import ACTIONS, Event, Timeline  # noqa: E402
from echo_lib.view.density import DENSITY_BINS, GROUPED_LANES, MAX_LANES  # noqa: E402
from echo_lib.view.flows import MAX_ARROWS  # noqa: E402
from echo_lib.view.markers import MAX_ANNOTATIONS  # noqa: E402
from echo_lib.view.plotting import MAX_MARKERS, plot_timeline  # noqa: E402
from echo_lib.view.scale_runs import plot_scale  # noqa: E402

READ, WRITE = selectors.EVENT_READ, selectors.EVENT_WRITE


@pytest.fixture(autouse=True)
def close_figures() -> Iterator[None]:
    yield
    plt.close("all")


# -- synthetic timelines ------------------------------------------------------


def ticking_timeline(maxlen: int | None = None) -> Timeline:
    """A timeline whose clock moves 1 ms per event: same picture on every run."""
    ticks = itertools.count()
    return Timeline(maxlen=maxlen, clock=lambda: next(ticks) * 1e-3)


def echo_timeline(
    clients: int = 3, messages: int = 2, nbytes: int = 20, maxlen: int | None = None
) -> Timeline:
    """A server, ``server/conn-N`` and ``client-N``, each client echoing ``messages`` messages."""
    tl = ticking_timeline(maxlen)
    tl.record("server", "register", 3, READ)
    for n in range(1, clients + 1):
        client, conn = f"client-{n}", f"server/conn-{n}"
        tl.record(client, "connect", 10 + n)
        tl.record(client, "register", 10 + n, READ | WRITE)
        tl.record("server", "select", nbytes=1)
        tl.record("server", "ready", 3, READ)
        tl.record("server", "accept", 20 + n, detail=f"conn-{n}")
        tl.record(conn, "register", 20 + n, READ)
    for n in range(1, clients + 1):
        echo(tl, f"client-{n}", f"server/conn-{n}", messages, nbytes)
    return tl


def echo(tl: Timeline, client: str, conn: str, messages: int, nbytes: int) -> None:
    """One client's whole conversation, then both ends close."""
    for _ in range(messages):
        tl.record(client, "send", nbytes=nbytes)
        tl.record(conn, "ready", mask=READ)
        tl.record(conn, "recv", nbytes=nbytes)
        tl.record(conn, "modify", mask=READ | WRITE)
        tl.record(conn, "send", nbytes=nbytes)
        tl.record(conn, "modify", mask=READ)
        tl.record(client, "recv", nbytes=nbytes)
    tl.record(client, "modify", mask=READ)
    tl.record(client, "eof")
    tl.record(client, "unregister", mask=READ)
    tl.record(client, "close")
    tl.record(conn, "eof")
    tl.record(conn, "unregister", mask=READ)
    tl.record(conn, "close")


def events_at(*specs: tuple[float, str, str] | tuple[float, str, str, int, int]) -> list[Event]:
    """Events from (t, actor, action[, mask, nbytes]) tuples, numbered 1, 2, 3, ..."""
    return [
        Event(seq, spec[0], spec[1], spec[2], 5, *spec[3:]) for seq, spec in enumerate(specs, 1)
    ]


# -- reading a plot back ------------------------------------------------------


def lane_labels(ax: Axes) -> list[str]:
    return [label.get_text() for label in ax.get_yticklabels()]


def legend_labels(ax: Axes) -> list[str]:
    legend = ax.get_legend()
    assert legend is not None
    return [text.get_text() for text in legend.get_texts()]


def scatters(ax: Axes) -> list[PathCollection]:
    return [c for c in ax.collections if isinstance(c, PathCollection)]


def arrows(ax: Axes) -> list[tuple[float, float, float, float]]:
    """Every arrow as (x from, lane from, x to, lane to)."""
    found = []
    for quiver in (c for c in ax.collections if isinstance(c, Quiver)):
        for x, y, u, v in zip(quiver.X, quiver.Y, quiver.U, quiver.V, strict=True):
            found.append((float(x), float(y), float(x + u), float(y + v)))
    return found


def lane_moves(ax: Axes) -> list[tuple[str, str]]:
    """Every arrow as (actor from, actor to)."""
    names = lane_labels(ax)
    return [(names[round(y0)], names[round(y1)]) for _, y0, _, y1 in arrows(ax)]


# -- lanes --------------------------------------------------------------------


def test_one_lane_per_actor_in_order_of_first_appearance_first_at_the_top() -> None:
    tl = echo_timeline()
    ax = plot_timeline(tl)
    assert lane_labels(ax) == tl.actors()
    assert list(ax.get_yticks()) == list(range(len(tl.actors())))
    bottom, top = ax.get_ylim()
    assert top == -0.5 and bottom == len(tl.actors()) - 0.5  # lane 0 at the top


def test_every_event_is_drawn_once_at_its_time_in_its_lane() -> None:
    tl = echo_timeline(clients=2)
    ax = plot_timeline(tl)
    drawn = sorted(
        (round(float(x), 9), round(float(y))) for c in scatters(ax) for x, y in c.get_offsets()
    )
    lane = {actor: n for n, actor in enumerate(tl.actors())}
    assert drawn == sorted((round(e.t, 9), lane[e.actor]) for e in tl)


def test_actors_chooses_the_lanes_and_their_order() -> None:
    tl = echo_timeline()
    ax = plot_timeline(tl, actors=["client-2", "server"])
    assert lane_labels(ax) == ["client-2", "server"]
    drawn = sum(len(c.get_offsets()) for c in scatters(ax))
    assert drawn == len(tl.events(actor="client-2")) + len([e for e in tl if e.actor == "server"])


def test_actors_may_be_one_name() -> None:
    ax = plot_timeline(echo_timeline(), actors="client-1")
    assert lane_labels(ax) == ["client-1"]


def test_an_actor_without_events_gets_an_empty_lane() -> None:
    ax = plot_timeline(echo_timeline(), actors=["ghost"])
    assert lane_labels(ax) == ["ghost"]
    assert "no events" in [text.get_text() for text in ax.texts]


def test_x_is_seconds_since_the_timeline_started() -> None:
    ax = plot_timeline(events_at((2.0, "a", "select"), (4.0, "a", "select")))
    left, right = ax.get_xlim()
    assert left < 2.0 < 4.0 < right
    assert "seconds" in ax.get_xlabel()


def test_fifty_actors_give_fifty_lane_labels_that_do_not_overlap() -> None:
    names = [f"client-{n}" for n in range(1, 51)]
    ax = plot_timeline(events_at(*[(n * 0.1, name, "send", 0, 5) for n, name in enumerate(names)]))
    assert lane_labels(ax) == names
    ax.figure.canvas.draw()
    labels = ax.get_yticklabels()
    assert min(label.get_fontsize() for label in labels) >= 5
    boxes = [label.get_window_extent() for label in labels]
    assert all(upper.y0 >= lower.y1 - 0.5 for upper, lower in zip(boxes, boxes[1:], strict=False))


@pytest.mark.parametrize("lanes", [1, 7, 50, 200])
def test_a_new_figure_grows_with_its_lanes_up_to_a_cap(lanes: int) -> None:
    ax = plot_timeline(events_at(*[(n * 0.1, f"a-{n}", "select") for n in range(lanes)]))
    height = ax.figure.get_figheight()
    assert 3.0 <= height <= 14.0
    if lanes == 50:
        assert (
            height
            > plot_timeline(
                events_at(*[(n * 0.1, f"a-{n}", "select") for n in range(7)])
            ).figure.get_figheight()
        )


# -- markers and legend -------------------------------------------------------


def test_the_legend_lists_only_the_actions_present_in_action_order() -> None:
    ax = plot_timeline(
        events_at((0.0, "a", "send", 0, 3), (1.0, "a", "select"), (2.0, "b", "recv", 0, 3))
    )
    assert legend_labels(ax) == ["select", "recv", "send"]


def test_the_legend_of_an_echo_matches_its_actions() -> None:
    tl = echo_timeline()
    ax = plot_timeline(tl)
    assert legend_labels(ax) == [action for action in ACTIONS if tl.counts()[action]]


def test_each_action_has_its_own_marker_and_colour() -> None:
    ax = plot_timeline(events_at(*[(n * 0.1, "a", action) for n, action in enumerate(ACTIONS)]))
    looks = {
        (c.get_paths()[0].vertices.tobytes(), tuple(c.get_edgecolor()[0])) for c in scatters(ax)
    }
    assert len(scatters(ax)) == len(looks) == len(ACTIONS)


def test_an_unknown_action_is_drawn_and_listed_last() -> None:
    ax = plot_timeline(events_at((0.0, "a", "launch"), (1.0, "a", "send", 0, 1)))
    assert legend_labels(ax) == ["send", "launch"]


def test_the_number_of_artists_does_not_grow_with_the_number_of_events() -> None:
    small, big = echo_timeline(clients=5, messages=30), echo_timeline(clients=5, messages=2900)
    assert 1_000 <= len(small) < 2_000 and len(big) >= 100_000
    ax_small, ax_big = plot_timeline(small), plot_timeline(big, mode="markers")
    assert (
        len(ax_small.collections) == len(ax_big.collections) == len(legend_labels(ax_small)) + 1
    )  # + arrows
    assert len(ax_big.texts) <= MAX_ANNOTATIONS
    assert len(ax_big.lines) == len(ax_small.lines) and len(ax_big.patches) == len(ax_small.patches)


# -- axes ---------------------------------------------------------------------


def test_an_existing_ax_is_drawn_on_and_returned() -> None:
    fig, ax = plt.subplots()
    figures = plt.get_fignums()
    assert plot_timeline(echo_timeline(), ax) is ax
    assert plt.get_fignums() == figures
    assert len(scatters(ax)) > 0


def test_the_title_is_set() -> None:
    assert plot_timeline(echo_timeline(), title="three clients").get_title() == "three clients"


@pytest.mark.parametrize("empty", [Timeline(), [], iter(())], ids=["Timeline", "list", "iterator"])
def test_an_empty_timeline_draws_empty_axes_with_a_note(empty: object) -> None:
    ax = plot_timeline(empty)  # type: ignore[arg-type]
    assert [text.get_text() for text in ax.texts] == ["no events"]
    assert len(ax.collections) == 0 and lane_labels(ax) == [] and ax.get_legend() is None
    ax.figure.canvas.draw()


def test_a_whole_plot_renders_with_agg() -> None:
    ax = plot_timeline(echo_timeline(), title="echo")
    ax.figure.canvas.draw()


# -- errors -------------------------------------------------------------------


@pytest.mark.parametrize("bad", [42, None, 3.5, "server", b"events", object()])
def test_a_timeline_that_is_not_one_raises_type_error_naming_it(bad: object) -> None:
    with pytest.raises(TypeError, match="Timeline or an iterable of Event") as info:
        plot_timeline(bad)  # type: ignore[arg-type]
    assert repr(bad)[:20] in str(info.value)


def test_an_item_that_is_not_an_event_raises_type_error_naming_it() -> None:
    good = Event(1, 0.0, "a", "send")
    with pytest.raises(TypeError, match=r"item 1 must be an Event, got \('a', 'send'\)"):
        plot_timeline([good, ("a", "send")])  # type: ignore[list-item]


@pytest.mark.parametrize("bad, shown", [(5, "5"), ([1], "1"), (["a", None], "None")])
def test_actors_that_are_not_names_raise_type_error_naming_them(bad: object, shown: str) -> None:
    with pytest.raises(TypeError, match="actors") as info:
        plot_timeline(echo_timeline(), actors=bad)  # type: ignore[arg-type]
    assert shown in str(info.value)


def test_a_huge_bad_value_is_shortened_in_the_message() -> None:
    with pytest.raises(TypeError) as info:
        plot_timeline([Event(1, 0.0, "a", "send"), "x" * 10_000])
    assert len(str(info.value)) < 200


# -- mask labels --------------------------------------------------------------


def test_registers_and_modifies_are_labelled_with_the_new_mask() -> None:
    ax = plot_timeline(
        events_at(
            (0.0, "client-1", "register", READ | WRITE),
            (2.0, "client-1", "modify", READ),
            (4.0, "server/conn-1", "register", READ),
            (6.0, "server/conn-1", "modify", READ | WRITE),
            (8.0, "server/conn-1", "modify", READ),
            (9.0, "server/conn-1", "unregister", READ),
        )
    )
    assert [text.get_text() for text in ax.texts] == [
        "READ|WRITE",
        "READ|WRITE → READ",
        "READ",
        "READ → READ|WRITE",
        "READ|WRITE → READ",
    ]


def test_a_modify_without_its_register_shows_only_the_new_mask() -> None:
    ax = plot_timeline(events_at((0.0, "a", "modify", WRITE)))
    assert [text.get_text() for text in ax.texts] == ["→ WRITE"]


def test_a_mask_with_unknown_bits_is_shown_not_raised() -> None:
    ax = plot_timeline(events_at((0.0, "a", "register", 8)))
    assert [text.get_text() for text in ax.texts] == ["mask=8"]


def test_mask_labels_are_capped_and_do_not_overlap() -> None:
    ax = plot_timeline(events_at(*[(n * 0.01, f"a-{n % 5}", "modify", READ) for n in range(5_000)]))
    assert 0 < len(ax.texts) <= MAX_ANNOTATIONS
    ax.figure.canvas.draw()
    boxes = [text.get_window_extent() for text in ax.texts]
    assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))


# -- arrows -------------------------------------------------------------------


def test_arrows_join_each_client_send_to_its_server_recv_and_back() -> None:
    tl = echo_timeline(clients=2, messages=3)
    ax = plot_timeline(tl)
    moves = lane_moves(ax)
    for n in (1, 2):
        assert moves.count((f"client-{n}", f"server/conn-{n}")) == 3
        assert moves.count((f"server/conn-{n}", f"client-{n}")) == 3
    assert len(moves) == 12
    sends = {e.t for e in tl.events(action="send")}
    recvs = {e.t for e in tl.events(action="recv")}
    assert all(round(x0, 9) in {round(t, 9) for t in sends} for x0, _, _, _ in arrows(ax))
    assert all(round(x1, 9) in {round(t, 9) for t in recvs} for _, _, x1, _ in arrows(ax))


def test_arrows_follow_bytes_when_chunks_are_split_or_merged() -> None:
    ax = plot_timeline(
        events_at(
            (0.0, "client-1", "send", 0, 10),
            (1.0, "client-1", "send", 0, 10),
            (2.0, "server/conn-1", "recv", 0, 15),  # both sends start in here
            (3.0, "server/conn-1", "recv", 0, 5),
            (4.0, "server/conn-1", "send", 0, 20),
            (5.0, "client-1", "recv", 0, 8),  # the server's send starts in here
            (6.0, "client-1", "recv", 0, 12),
        )
    )
    assert sorted((x0, x1) for x0, _, x1, _ in arrows(ax)) == [(0.0, 2.0), (1.0, 2.0), (4.0, 5.0)]


def test_sends_whose_bytes_never_arrived_get_no_arrow() -> None:
    ax = plot_timeline(
        events_at(
            (0.0, "client-1", "send", 0, 10),
            (1.0, "client-1", "send", 0, 10),
            (2.0, "client-1", "send", 0, 10),
            (3.0, "server/conn-1", "recv", 0, 10),
        )
    )
    assert [(x0, x1) for x0, _, x1, _ in arrows(ax)] == [(0.0, 3.0)]


@pytest.mark.parametrize(
    "specs",
    [
        [(0.0, "server/conn-1", "recv", 0, 4)],  # a recv nobody sent
        [(0.0, "client-1", "send", 0, 4)],  # a send nobody received
        [(0.0, "client-1", "send", 0, 4), (1.0, "client-2", "recv", 0, 4)],  # no server side at all
        [(0.0, "server/conn-1", "send", 0, 0), (1.0, "client-1", "recv", 0, 0)],  # zero bytes
    ],
)
def test_unmatched_traffic_draws_no_arrows(specs: list[tuple[float, str, str, int, int]]) -> None:
    ax = plot_timeline(events_at(*specs))
    assert arrows(ax) == []
    ax.figure.canvas.draw()


def test_arrows_leave_out_lanes_that_are_not_shown() -> None:
    ax = plot_timeline(echo_timeline(clients=2), actors=["client-2", "server/conn-2"])
    assert set(lane_moves(ax)) == {("client-2", "server/conn-2"), ("server/conn-2", "client-2")}


def test_the_number_of_arrows_is_bounded() -> None:
    ax = plot_timeline(echo_timeline(clients=4, messages=500))
    assert len(arrows(ax)) == MAX_ARROWS
    assert len([c for c in ax.collections if isinstance(c, Quiver)]) == 1


def test_a_timeline_that_dropped_its_oldest_events_draws_no_arrows() -> None:
    tl = echo_timeline(clients=3, messages=5, maxlen=50)
    assert tl.dropped > 0
    ax = plot_timeline(tl)
    assert arrows(ax) == [] and len(scatters(ax)) > 0


ACTORS = st.sampled_from(
    ["server", "client-1", "client-2", "server/conn-1", "server/conn-2", "x/y"]
)
EVENTS = st.lists(
    st.tuples(
        st.floats(0, 10),
        ACTORS,
        st.sampled_from(ACTIONS),
        st.integers(0, 3),
        st.integers(0, 50),
    ),
    max_size=60,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(EVENTS)
def test_any_events_plot_without_error(specs: list[tuple[float, str, str, int, int]]) -> None:
    events = [
        Event(seq, t, actor, action, 5, mask, nbytes)
        for seq, (t, actor, action, mask, nbytes) in enumerate(specs, 1)
    ]
    ax = plot_timeline(events)
    try:
        assert lane_labels(ax) == list(dict.fromkeys(e.actor for e in events))
        assert len(arrows(ax)) <= MAX_ARROWS and len(ax.texts) <= MAX_ANNOTATIONS + 1
        moves = set(lane_moves(ax))
        assert all(
            ("/" in a) != ("/" in b) for a, b in moves
        )  # always between a client and a connection
    finally:
        plt.close(ax.figure)


# -- zoomed out: density; many actors: grouped lanes ---------------------------


def many_events(actors: int, events: int) -> Timeline:
    """``events`` events spread over ``actors`` connections, each one recv or send of 1 byte."""
    tl = ticking_timeline()
    for n in range(events):
        tl.record(f"server/conn-{n % actors}", ("recv", "send")[n // actors % 2], nbytes=1)
    return tl


def legend_title(ax: Axes) -> str:
    legend = ax.get_legend()
    assert legend is not None
    return legend.get_title().get_text()


def test_the_mode_switches_to_density_above_max_markers_and_the_legend_says_so() -> None:
    few, many = (
        plot_timeline(many_events(3, MAX_MARKERS)),
        plot_timeline(many_events(3, MAX_MARKERS + 1)),
    )
    assert "one marker each" in legend_title(few) and len(scatters(few)) == 2 and not few.images
    assert "density" in legend_title(many) and f"{MAX_MARKERS + 1:,} events" in legend_title(many)
    assert (
        len(many.images) == 1 and not many.collections and legend_labels(many) == ["recv", "send"]
    )


def test_density_counts_every_event_in_its_lane_action_and_bin() -> None:
    ax = plot_timeline(many_events(4, 40_000), mode="density")
    image = ax.images[0].get_array()
    assert image.shape == (4 * 2, DENSITY_BINS, 4)  # 4 lanes x (recv, send) rows, RGBA
    assert (image[..., 3] > 0).all()  # 1 ms per event, 100 ms per bin: every row busy all along
    lanes = lane_labels(ax)
    assert lanes == [f"server/conn-{n}" for n in range(4)]


def test_a_window_zooms_in_and_brings_markers_back() -> None:
    tl = many_events(3, 100_000)  # 100 s at 1 ms per event
    ax = plot_timeline(tl, window=(10.0, 11.0))
    left, right = ax.get_xlim()
    assert left < 10.0 < 11.0 < right and right - left < 1.2
    assert (
        "one marker each" in legend_title(ax)
        and sum(len(c.get_offsets()) for c in scatters(ax)) == 1001
    )


@pytest.mark.parametrize("bad", [(2.0, 1.0), (1.0,), "ab", 5])
def test_a_bad_window_or_mode_is_named(bad: object) -> None:
    with pytest.raises(ValueError, match="window"):
        plot_timeline(echo_timeline(), window=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'heat'"):
        plot_timeline(echo_timeline(), mode="heat")


@pytest.mark.parametrize("actors", [1, MAX_LANES, MAX_LANES + 1, 10_000])
def test_lanes_stay_legible_from_one_to_ten_thousand_actors(actors: int) -> None:
    tl = many_events(actors, max(2 * actors, 10))
    tl.record("server", "select", nbytes=1)  # a family of one keeps its own lane
    ax = plot_timeline(tl)
    lanes = lane_labels(ax)
    assert (
        len(lanes) <= (MAX_LANES if actors < MAX_LANES else 1.5 * GROUPED_LANES)
        and lanes[-1] == "server"
    )
    if actors + 1 <= MAX_LANES:
        assert len(lanes) == actors + 1
    else:
        runs = lanes[:-1]
        assert (
            runs[0].startswith("server/conn-0 … ")
            and runs[-1].split(" … ")[-1].split(" (")[0] == f"server/conn-{actors - 1}"
        )
        assert (
            sum(int(run.rsplit("(", 1)[1].rstrip(")")) if " … " in run else 1 for run in runs)
            == actors
        )
    ax.figure.canvas.draw()
    boxes = [label.get_window_extent() for label in ax.get_yticklabels()]
    assert min(label.get_fontsize() for label in ax.get_yticklabels()) >= 5
    assert all(upper.y0 >= lower.y1 - 0.5 for upper, lower in zip(boxes, boxes[1:], strict=False))


def test_a_million_events_draw_as_one_image_with_bounded_artists() -> None:
    tl = Timeline(maxlen=None)
    for n in range(1_000_000):
        tl.record(f"client-{n % 10_000}", "send", nbytes=1)
    ax = plot_timeline(tl)
    assert len(ax.images) == 1 and not ax.collections and not ax.texts
    assert int(ax.images[0].get_array()[..., 3].astype(bool).sum()) > 0
    assert len(lane_labels(ax)) <= 1.5 * GROUPED_LANES


# -- a scale run ----------------------------------------------------------------


def scale_row(server: str, connections: int, recorded: int | None) -> dict[str, object]:
    return {
        "server": server,
        "selector": "EpollSelector",
        "connections": connections,
        "verified": connections,
        "connect_s": 3.0,
        "echo_s": 2.0,
        "close_s": 1.0,
        "server_maxrss_kib": 50 * 1024,
        "load_maxrss_kib": 60 * 1024,
        "events_recorded": recorded,
        "events_dropped": 0 if recorded else None,
    }


def test_a_scale_run_is_drawn_as_phases_and_memory() -> None:
    figure = plot_scale(
        [scale_row("echoserver", 19_700, None), scale_row("echoserver-record", 19_700, 180_000)]
    )
    times, memory = figure.axes
    assert (
        len(times.patches) == 3 * 2 and len(memory.patches) == 2 * 2
    )  # 3 phases, 2 processes, 2 servers
    notes = [text.get_text() for text in times.texts]
    assert notes == [
        "19,700 byte-exact\nnot recorded",
        "19,700 byte-exact\n180,000 events recorded, 0 dropped",
    ]
    assert (
        "1,024 KiB" not in "".join(t.get_text() for t in memory.texts)
        and "(2.6 KiB/conn)" in memory.texts[0].get_text()
    )
    assert (
        figure._suptitle.get_text()
        == "19,700 concurrent connections to one EchoServer thread on EpollSelector"
    )
    figure.canvas.draw()


def test_a_scale_plot_needs_results_with_their_fields() -> None:
    with pytest.raises(ValueError, match="got none"):
        plot_scale([])
    row = scale_row("echoserver", 10, None)
    del row["echo_s"]
    with pytest.raises(KeyError, match="echo_s"):
        plot_scale([row])
