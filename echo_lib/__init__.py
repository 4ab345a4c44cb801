"""echo_lib: the library behind "selectors, by example".

A sans-IO echo connection, a recording selector, a selector loop that runs in a
background thread or one step at a time, and the echo server and client of the
classic selectors chapter, done right. matplotlib and ipywidgets are imported
only by `echo_lib.view.plotting` and `echo_lib.view.widgets`, when first used.
"""

from __future__ import annotations

from .core.connection import EchoConnection
from .core.events import ACTIONS, Event, mask_name
from .core.timeline import Timeline
from .driver.client import DEFAULT_MESSAGES, EchoClient, EchoResult
from .driver.implementations import available_selectors, resolve_selector
from .driver.loop import SelectorLoop, stop_all
from .driver.recording import RecordingSelector
from .driver.server import EchoServer

__all__ = [
    "ACTIONS",
    "DEFAULT_MESSAGES",
    "EchoClient",
    "EchoConnection",
    "EchoResult",
    "EchoServer",
    "Event",
    "RecordingSelector",
    "SelectorLoop",
    "Timeline",
    "available_selectors",
    "mask_name",
    "resolve_selector",
    "stop_all",
]

__version__ = "0.1.0"
