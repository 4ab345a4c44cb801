"""echo_lib: the library behind "selectors, by example".

A sans-IO echo connection and client exchange, a recording selector, a
selector loop that runs in a background thread or one step at a time, and the
echo server and client of the classic selectors chapter, done right.
matplotlib and ipywidgets are imported only by `echo_lib.view.plotting` and
`echo_lib.view.widgets`, when first used: `plot_timeline` is looked up here
lazily, so ``import echo_lib`` imports neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .core.connection import EchoConnection
from .core.events import ACTIONS, Event, mask_name
from .core.exchange import EchoExchange
from .core.timeline import Timeline
from .driver.client import DEFAULT_MESSAGES, EchoClient, EchoResult
from .driver.implementations import available_selectors, resolve_selector
from .driver.loop import SelectorLoop, stop_all
from .driver.recording import RecordingSelector
from .driver.server import EchoServer

if TYPE_CHECKING:
    from .view.plotting import plot_timeline

__all__ = [
    "ACTIONS",
    "DEFAULT_MESSAGES",
    "EchoClient",
    "EchoConnection",
    "EchoExchange",
    "EchoResult",
    "EchoServer",
    "Event",
    "RecordingSelector",
    "SelectorLoop",
    "Timeline",
    "available_selectors",
    "mask_name",
    "plot_timeline",
    "resolve_selector",
    "stop_all",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """``echo_lib.plot_timeline``: imports `echo_lib.view.plotting` (matplotlib) on first use."""
    if name == "plot_timeline":
        from .view.plotting import plot_timeline

        return plot_timeline
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
