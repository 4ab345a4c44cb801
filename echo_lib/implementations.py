"""Which selector classes this platform has, and turning a name into one.

`selectors.DefaultSelector` is the most efficient class the platform offers:
epoll on Linux, kqueue on macOS and the BSDs, devpoll on Solaris, and plain
select() on Windows (where only sockets can be selected).
"""

from __future__ import annotations

import selectors
import sys
from collections.abc import Callable

__all__ = [
    "FD_SETSIZE",
    "SELECTOR_NAMES",
    "FdSetSizeError",
    "SelectorFactory",
    "available_selectors",
    "resolve_selector",
    "select",
]

SelectorFactory = Callable[[], selectors.BaseSelector]

#: Every selector class the `selectors` module can define, cheapest first.
SELECTOR_NAMES: tuple[str, ...] = (
    "EpollSelector",
    "KqueueSelector",
    "DevpollSelector",
    "PollSelector",
    "SelectSelector",
)


#: select()'s limit on POSIX: an fd_set holds descriptors 0..FD_SETSIZE-1.
#: (On Windows the limit is a count of 512 sockets, not a highest number.)
FD_SETSIZE = 1024


class FdSetSizeError(ValueError):
    """A file descriptor too high for select(): the clear form of CPython's
    ``ValueError: filedescriptor out of range in select()``."""


def select(
    selector: selectors.BaseSelector, timeout: float | None = None
) -> list[tuple[selectors.SelectorKey, int]]:
    """``selector.select(timeout)``, with select()'s FD_SETSIZE error made clear.

    Raises `FdSetSizeError` naming the highest registered fd and what to use
    instead; every other error passes through unchanged.
    """
    try:
        return selector.select(timeout)
    except ValueError as exc:
        if "filedescriptor out of range" not in str(exc):
            raise
        fds = [key.fd for key in (selector.get_map() or {}).values()]
        raise FdSetSizeError(
            f"SelectSelector cannot watch fd {max(fds, default=-1)!r}: select() only handles fds below "
            f"FD_SETSIZE ({FD_SETSIZE}); use PollSelector or selectors.DefaultSelector instead"
        ) from exc


def available_selectors() -> dict[str, type[selectors.BaseSelector]]:
    """The selector classes this platform has, by class name, cheapest first."""
    return {name: getattr(selectors, name) for name in SELECTOR_NAMES if hasattr(selectors, name)}


def resolve_selector(spec: str | SelectorFactory | None) -> SelectorFactory:
    """Turn ``"epoll"``, ``"EpollSelector"``, a class or None into a selector factory.

    None and ``"default"`` mean `selectors.DefaultSelector`.
    Raises `ValueError` for a name this platform lacks, with the ones it has,
    and `TypeError` for anything that is neither a name nor a callable.
    """
    if spec is None:
        return selectors.DefaultSelector
    if isinstance(spec, str):
        return _selector_by_name(spec)
    if callable(spec):
        return spec
    raise TypeError(f"selector must be a selector class or its name, got {spec!r}")


def _selector_by_name(name: str) -> type[selectors.BaseSelector]:
    key = name.strip().lower().removesuffix("selector")
    if key == "default":
        return selectors.DefaultSelector
    for full_name in SELECTOR_NAMES:
        if full_name.lower().removesuffix("selector") == key:
            cls = getattr(selectors, full_name, None)
            if cls is None:
                have = ", ".join(available_selectors())
                raise ValueError(f"{full_name} is not available on {sys.platform}; this platform has {have}")
            return cls
    raise ValueError(f"unknown selector {name!r}; expected one of {', '.join(SELECTOR_NAMES)} or 'default'")
