"""Notebook 08: one echo server four ways, over the same kind of selector.

1. **callbacks**: `EchoServer`, the seed's style; ``key.data`` is a function.
2. **generators**: the 500 Lines crawler's design. ``key.data`` is a `Future`;
   a generator yields the Future it waits on, and the `Task` driving it sends
   the result back in when the selector reports the socket ready. The
   crawler's runtime (`Future`, `Task`, `Scheduler`) is `driver.coroutines`.
3. **asyncio Protocol**: `EchoProtocol`; the loop's transports call it.
4. **asyncio streams**: `handle_echo`, a coroutine with ``await``, run on a
   `driver.asyncio_thread.LoopThread` (the kernel's thread already runs a loop).

The package's modules: `servers` holds the code the notebook shows, `observe`
watches any server the same way (lane names, clients, ``key.data``), `styles`
runs and compares the four, `lab` is the widget.
"""

from .lab import StylesLab, styles_lab
from .observe import (
    MAX_CLIENTS,
    EchoServerLanes,
    ServerSelector,
    describe_data,
    peek_keys,
    run_clients,
)
from .servers import EchoProtocol, echo_handler, echo_server, handle_echo
from .styles import SELECTOR_ACTIONS, STYLES, StyleRun, compare, run_style, selector_events

__all__ = [
    "MAX_CLIENTS",
    "SELECTOR_ACTIONS",
    "STYLES",
    "EchoProtocol",
    "EchoServerLanes",
    "ServerSelector",
    "StyleRun",
    "StylesLab",
    "compare",
    "describe_data",
    "echo_handler",
    "echo_server",
    "handle_echo",
    "peek_keys",
    "run_clients",
    "run_style",
    "selector_events",
    "styles_lab",
]
