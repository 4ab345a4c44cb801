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
    "registered_keys",
    "resolve_selector",
    "select",
    "select_error",
    "select_has_room",
    "select_limit",
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


# select()'s limit differs in kind per platform. On POSIX an fd_set is a bit
# array: it holds descriptors 0..FD_SETSIZE-1 (1024 on Linux and macOS), so
# the limit is on the highest fd number, and CPython raises "filedescriptor
# out of range in select()". On Windows an fd_set is an array of sockets:
# CPython builds the select module with FD_SETSIZE 512, so the limit is on
# how many sockets one select() watches, and it raises "too many file
# descriptors in select()". `FdSetSizeError` is the clear form of both.
#: select()'s limit: the highest fd + 1 on POSIX, the number of sockets on Windows.
FD_SETSIZE = 512 if sys.platform == "win32" else 1024
_SELECT_LIMIT_ERRORS = ("filedescriptor out of range", "too many file descriptors")


class FdSetSizeError(ValueError):
    """Too many or too high file descriptors for select(): the clear form of CPython's
    ``ValueError: filedescriptor out of range in select()`` (POSIX) and
    ``ValueError: too many file descriptors in select()`` (Windows)."""


def select(
    selector: selectors.BaseSelector, timeout: float | None = None
) -> list[tuple[selectors.SelectorKey, int]]:
    """``selector.select(timeout)``, with select()'s FD_SETSIZE error made clear.

    Raises `FdSetSizeError` naming the highest registered fd (POSIX) or the
    number of sockets (Windows) and what to use instead; every other error
    passes through unchanged.
    """
    try:
        return selector.select(timeout)
    except ValueError as exc:
        error = select_error(selector, exc)
        if error is exc:
            raise
        raise error from exc


def select_error(selector: selectors.BaseSelector, exc: ValueError) -> ValueError:
    """The error to raise for ``exc``, raised by ``selector.select()``.

    `FdSetSizeError` (naming the fds and what to use instead) for select()'s
    FD_SETSIZE limit; ``exc`` itself for any other `ValueError`.
    """
    if not any(text in str(exc) for text in _SELECT_LIMIT_ERRORS):
        return exc
    fds = [key.fd for key in (selector.get_map() or {}).values()]
    return FdSetSizeError(f"SelectSelector {_over_limit(fds)}; {_INSTEAD}")


def registered_keys(selector: selectors.BaseSelector) -> list[selectors.SelectorKey]:
    """A snapshot of ``selector``'s keys, taken while another thread may change them.

    Empty once the selector is closed (its map is None), or if the map kept
    changing under 100 tries.
    """
    for _ in range(100):  # the loop thread may change the map while we copy it
        try:
            return list((selector.get_map() or {}).values())
        except RuntimeError:  # dictionary changed size during iteration
            continue
    return []


_INSTEAD = (
    "Windows has no other selector class: keep fewer sockets open at once"
    if sys.platform == "win32"
    else "use PollSelector or selectors.DefaultSelector instead"
)


def _over_limit(fds: list[int]) -> str:
    if sys.platform == "win32":
        return (
            f"cannot watch {len(fds)!r} sockets: "
            f"select() on Windows takes at most FD_SETSIZE ({FD_SETSIZE})"
        )
    return (
        f"cannot watch fd {max(fds, default=-1)!r}: "
        f"select() only handles fds below FD_SETSIZE ({FD_SETSIZE})"
    )


def select_has_room(selector: selectors.BaseSelector, fd: int) -> bool:
    """Whether ``selector`` (or the selector a wrapper's ``inner`` holds) can watch ``fd`` too.

    Always true but for `selectors.SelectSelector`: there ``fd`` must be below
    `FD_SETSIZE` (POSIX), or fewer than `FD_SETSIZE` sockets be registered (Windows).
    """
    inner = getattr(selector, "inner", selector)
    if not isinstance(inner, selectors.SelectSelector):
        return True
    if sys.platform == "win32":
        return len(inner.get_map()) < FD_SETSIZE
    return fd < FD_SETSIZE


def select_limit(selector: selectors.BaseSelector, fd: int) -> str:
    """Why ``selector``, a SelectSelector, cannot take ``fd`` too; it says what to use instead."""
    fds = [key.fd for key in (selector.get_map() or {}).values()]
    return f"SelectSelector {_over_limit([*fds, fd])}; {_INSTEAD}"


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
                raise ValueError(
                    f"{full_name} is not available on {sys.platform}; this platform has {have}"
                )
            return cls
    raise ValueError(
        f"unknown selector {name!r}; expected one of {', '.join(SELECTOR_NAMES)} or 'default'"
    )
