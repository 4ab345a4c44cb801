"""The select() cost measurement of 07-selector-implementations and its lab."""

from __future__ import annotations

import gc
import selectors
import socket
import sys

import pytest

from echo_lib import available_selectors
from echo_lib.driver.fds import IdleSockets, MoreFds, SocketsAt, open_fd_count
from echo_lib.driver.implementations import FD_SETSIZE
from echo_lib.driver.selector_probes import select_cost
from echo_lib.lessons.implementations import (
    CostPoint,
    CostTable,
    measure_select_costs,
    select_cost_lab,
)

resource = pytest.importorskip("resource")


def test_more_fds_raises_the_soft_limit_and_restores_it() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = soft + 100 if hard == resource.RLIM_INFINITY else min(soft + 100, hard)
    with MoreFds(needed) as fds:
        assert (
            fds.limit >= min(needed, soft)
            and resource.getrlimit(resource.RLIMIT_NOFILE)[0] == fds.limit
        )
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (soft, hard)


def test_more_fds_never_lowers_the_limit() -> None:
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    with MoreFds(1):
        assert resource.getrlimit(resource.RLIMIT_NOFILE) == before
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == before


def test_idle_sockets_are_sorted_idle_and_closed() -> None:
    before = open_fd_count()
    with IdleSockets(7) as socks, selectors.DefaultSelector() as sel:
        assert len(socks) == 7 and [s.fileno() for s in socks] == sorted(s.fileno() for s in socks)
        for sock in socks:
            sel.register(sock, selectors.EVENT_READ)
        assert sel.select(0) == []
    assert all(s.fileno() == -1 for s in socks)
    assert open_fd_count() == before


def test_idle_sockets_rejects_a_bad_count() -> None:
    with pytest.raises(ValueError, match="count must be an int of at least 1, got 0"):
        IdleSockets(0)


def test_select_cost_is_positive_and_refuses_a_ready_socket() -> None:
    with IdleSockets(4) as socks:
        assert select_cost(selectors.DefaultSelector, socks, rounds=3) > 0
    a, b = socket.socketpair()
    with a, b:
        a.send(b"x")  # b is readable now: not idle
        with pytest.raises(ValueError, match="a socket was ready"):
            select_cost(selectors.DefaultSelector, [b], rounds=1)


def test_the_measurement_shows_the_lesson() -> None:
    """select and poll grow with idle sockets, epoll does not; select stops at FD_SETSIZE."""
    table = measure_select_costs(counts=(1, 10, 100, 1000, 10_000), rounds=5)
    assert table.selectors() == list(available_selectors())
    verdicts = table.verdicts()
    assert [line for line in verdicts if not line.endswith(": True")] == [], f"{verdicts}\n{table}"
    if "EpollSelector" in table.selectors():
        assert "EpollSelector grows less than 3x from 10 to 10,000 idle sockets: True" in verdicts
    if "SelectSelector" in table.selectors() and sys.platform != "win32":
        last = table.last("SelectSelector")
        assert last is not None and last.at_limit and last.sockets < FD_SETSIZE
        assert "SelectSelector stopped below FD_SETSIZE (1024): True" in verdicts
    assert open_fd_count() < 1000  # every idle socket was closed


def test_a_table_prints_durations_and_notes() -> None:
    table = CostTable(
        [CostPoint("PollSelector", 1, 0.5e-6), CostPoint("PollSelector", 10_000, 4.2e-3)],
        ["a note"],
    )
    assert str(table) == (
        "PollSelector, 1 idle socket: 0.5 µs per select(0)\nPollSelector, 10,000 idle sockets: "
        "4.2 ms per select(0)\na note"
    )
    assert table.growth("PollSelector", 1, 10_000) == pytest.approx(8400)
    assert table.growth("PollSelector", 10, 10_000) is None
    assert "PollSelector: 10 and 10,000 idle sockets were not both measured" in table.verdicts()


def test_plot_select_costs_draws_one_line_per_class() -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from echo_lib.lessons.implementations import plot_select_costs

    table = CostTable([CostPoint("EpollSelector", 1, 1e-6), CostPoint("EpollSelector", 10, 1e-6),
                       CostPoint("SelectSelector", 1, 1e-6),
                       CostPoint("SelectSelector", 900, 1e-4, at_limit=True)])  # fmt: skip
    ax = plot_select_costs(table, Figure().add_subplot())
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["EpollSelector", "SelectSelector", "FD_SETSIZE (1024): select() stops"]
    assert ax.get_xscale() == ax.get_yscale() == "log"


# -- the lab ----------------------------------------------------------------------


def test_the_lab_measures_adds_points_and_keeps_a_deterministic_repr() -> None:
    pytest.importorskip("ipywidgets")
    lab = select_cost_lab(sockets=10)
    name = selectors.DefaultSelector.__name__
    assert repr(lab) == f"<SelectCostLab: {name}, 10 idle sockets; 0 points measured>"
    assert repr(select_cost_lab(sockets=10_000)).endswith(
        ", 10,000 idle sockets; 0 points measured>"
    )
    assert lab.text() == "no point measured yet"
    point = lab.run()
    assert point is not None and point.sockets == 10 and point.selector == name
    assert repr(lab) == f"<SelectCostLab: {name}, 10 idle sockets; 1 point measured>"
    assert [o["output_type"] for o in lab.out.outputs] == ["stream", "display_data"]
    lab.run()  # the same settings again replace the point
    assert len(lab.points) == 1
    lab.sockets_menu.value = 100  # the dropdowns drive the lab
    assert lab.sockets == 100
    bundle = lab._repr_mimebundle_()
    assert (
        bundle["text/plain"] == repr(lab) and "application/vnd.jupyter.widget-view+json" in bundle
    )
    lab.clear()
    assert lab.points == [] and lab.text() == "no point measured yet"


@pytest.mark.skipif(sys.platform == "win32", reason="FD_SETSIZE is a count on Windows")
def test_the_lab_explains_select_past_fd_setsize() -> None:
    pytest.importorskip("ipywidgets")
    lab = select_cost_lab("SelectSelector", 10_000)
    assert lab.run() is None
    assert lab.text() == (
        "SelectSelector cannot watch 10,000 idle sockets: they need fds up to 9999 at least, "
        "and select() only takes fds below FD_SETSIZE (1024)"
    )
    assert lab.points == []


def test_the_lab_rejects_what_it_does_not_offer() -> None:
    with pytest.raises(ValueError, match="sockets must be one of 1, 10, 100, 1000, 10000, got 5"):
        select_cost_lab(sockets=5)
    with pytest.raises(ValueError, match="selector must be one of"):
        select_cost_lab("NoSuchSelector")


def test_an_abandoned_lab_is_collected() -> None:
    pytest.importorskip("ipywidgets")
    import weakref

    lab = select_cost_lab(sockets=1)  # its buttons and dropdowns hold it weakly
    ref = weakref.ref(lab)
    del lab
    gc.collect()
    assert ref() is None


def test_the_lab_settings_move_the_dropdowns_and_are_checked() -> None:
    pytest.importorskip("ipywidgets")
    lab = select_cost_lab("PollSelector", 1000)
    lab.sockets, lab.selector = 10, "SelectSelector"
    assert (lab.sockets_menu.value, lab.selector_menu.value) == (10, "SelectSelector")
    with pytest.raises(ValueError, match="sockets must be one of"):
        lab.sockets = 3
    assert lab.sockets == 10


# -- sockets at chosen numbers ----------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="no fcntl on Windows")
def test_sockets_at_chosen_numbers_are_readable_through_their_peer() -> None:
    before = open_fd_count()
    with SocketsAt({"a": 903, "b": 901}) as (socks, peers):
        assert socks["a"].fileno() >= 903 and socks["b"].fileno() >= 901
        peers["b"].send(b"!")
        with selectors.PollSelector() as sel:
            for name, sock in socks.items():
                sel.register(sock, selectors.EVENT_READ, name)
            assert [key.data for key, _ in sel.select(0)] == ["b"]
    assert open_fd_count() == before


@pytest.mark.skipif(sys.platform == "win32", reason="FD_SETSIZE is a count on Windows")
def test_the_lab_finds_out_when_a_busy_process_pushes_fds_past_fd_setsize() -> None:
    pytest.importorskip("ipywidgets")
    lab = select_cost_lab("SelectSelector", 1000)
    with (
        MoreFds(4096),
        IdleSockets(max(1, FD_SETSIZE - 1000 - open_fd_count() + 50)),
    ):  # the process is busy
        assert lab.run() is None
    assert lab.text().startswith(
        "SelectSelector cannot watch 1,000 idle sockets here: the highest is fd "
    )
    assert lab.points == []


@pytest.mark.skipif(
    not hasattr(selectors, "SelectSelector") or sys.platform == "win32",
    reason="the fd-number limit of select()",
)
def test_a_count_that_lands_exactly_on_the_limit_is_marked_as_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # With exactly 24 other descriptors open, 1,000 idle sockets fill every number
    # below FD_SETSIZE: that point is the limit, and no extra point is measured.
    from echo_lib.lessons.implementations import costs

    with IdleSockets(20) as socks:
        monkeypatch.setattr(costs, "FD_SETSIZE", socks[10].fileno())  # 10 sockets fit below it
        points = costs.measure_class(selectors.SelectSelector, socks, [1, 10, 20], rounds=1)
    assert [(p.sockets, p.at_limit) for p in points] == [(1, False), (10, True)]
