"""echo_lib: the library behind "selectors, by example".

A sans-IO echo connection, a recording selector, a selector loop that runs in a
background thread or one step at a time, and the echo server and client of the
classic selectors chapter, done right. matplotlib and ipywidgets are imported
only by `echo_lib.plotting` and `echo_lib.widgets`, when first used.
"""

from __future__ import annotations

from .client import DEFAULT_MESSAGES, EchoClient, EchoResult
from .connection import EchoConnection
from .events import ACTIONS, Event, mask_name
from .implementations import available_selectors, resolve_selector
from .loop import SelectorLoop, stop_all
from .recording import RecordingSelector
from .server import EchoServer
from .timeline import Timeline

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
