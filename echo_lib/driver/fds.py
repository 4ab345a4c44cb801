"""File descriptors for experiments: count them, raise the limit, open idle sockets, pick numbers.

An idle socket is a connected socket that nobody writes to: registered for
EVENT_READ it is never ready. They are made with ``socket.socketpair()``
(both ends are idle, and no port is used). A process may open only
RLIMIT_NOFILE descriptors: `MoreFds` raises the soft limit towards the hard
limit for a block and restores it afterwards. `SocketsAt` and `dup_to` put
sockets at chosen descriptor numbers (``fcntl(F_DUPFD)``), e.g. past
FD_SETSIZE, where ``select()`` stops.
"""

from __future__ import annotations

import os
import socket
import sys

from ..core.checks import check_int

__all__ = ["IdleSockets", "MoreFds", "SocketsAt", "dup_to", "open_fd_count"]

#: What `open_fd_count` answers where the OS cannot list a process's descriptors.
FD_GUESS = 256


def open_fd_count() -> int:
    """How many file descriptors this process has open (a guess where the OS cannot list them)."""
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(folder))
        except OSError:
            continue
    return FD_GUESS


class MoreFds:
    """``with MoreFds(needed):`` raise RLIMIT_NOFILE's soft limit to ``needed``, restore it on exit.

    The soft limit never goes above the hard limit, nor down. `limit` is the
    soft limit in force inside the block (None where the `resource` module
    does not exist, e.g. on Windows). A class, not a generator: an exception
    raised inside the block keeps its own traceback.
    """

    def __init__(self, needed: int) -> None:
        self.needed = needed
        self.limit: int | None = None
        self._saved: tuple[int, int] | None = None

    def __enter__(self) -> MoreFds:
        try:
            import resource
        except ImportError:  # Windows: no RLIMIT_NOFILE to raise
            return self
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        self.limit = soft
        if soft != resource.RLIM_INFINITY and soft < self.needed:
            wanted = self.needed if hard == resource.RLIM_INFINITY else min(self.needed, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            self._saved, self.limit = (soft, hard), wanted
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_NOFILE, self._saved)
            self._saved = None


class IdleSockets:
    """``with IdleSockets(n) as socks:`` n connected sockets that nobody writes to.

    They are the ends of ``n / 2`` socket pairs (for an odd ``n`` the last
    peer is kept open but not listed: closing it would make its peer readable),
    sorted by descriptor number, and all closed on exit (also when opening
    fails half way). Raises `ValueError` for a count below 1, and `OSError`
    (EMFILE) naming the limit when the process may not open so many.
    """

    def __init__(self, count: int) -> None:
        self.count = check_int("count", count, 1)
        self.sockets: list[socket.socket] = []
        self._spare: socket.socket | None = None

    def __enter__(self) -> list[socket.socket]:
        try:
            while len(self.sockets) < self.count:
                self.sockets.extend(socket.socketpair())
        except OSError as exc:
            self.close()
            raise OSError(
                exc.errno,
                f"could not open {self.count} idle sockets: {exc.strerror} (see RLIMIT_NOFILE)",
            ) from None
        if len(self.sockets) > self.count:
            self._spare = self.sockets.pop()
        self.sockets.sort(key=lambda sock: sock.fileno())
        return self.sockets

    def close(self) -> None:
        """Close every socket (idempotent)."""
        for sock in [*self.sockets, *([self._spare] if self._spare is not None else [])]:
            sock.close()
        self.sockets, self._spare = [], None

    def __exit__(self, *exc: object) -> None:
        self.close()


class SocketsAt:
    """``with SocketsAt({"a": 899, ...}) as (socks, peers):`` sockets at chosen descriptor numbers.

    For each name, a socket pair is made and one end is duplicated
    (``fcntl(F_DUPFD)``) to the lowest free descriptor at or above the
    number asked for; ``socks[name]`` is that duplicate, ``peers[name]`` the
    other end (write to it to make ``socks[name]`` readable). Everything is
    closed on exit. Where `fcntl` does not exist (Windows) the numbers are
    whatever the system gives. The numbers must stay below RLIMIT_NOFILE.
    """

    def __init__(self, numbers: dict[str, int]) -> None:
        self.numbers = dict(numbers)
        self._open: list[socket.socket] = []

    def __enter__(self) -> tuple[dict[str, socket.socket], dict[str, socket.socket]]:
        socks, peers = {}, {}
        try:
            for name, number in self.numbers.items():
                end, peer = socket.socketpair()
                self._open += [end, peer]
                socks[name], peers[name] = _duplicate(end, number), peer
                self._open.append(socks[name])
        except BaseException:
            self.__exit__()
            raise
        return socks, peers

    def __exit__(self, *exc: object) -> None:
        for sock in self._open:
            sock.close()
        self._open = []


def _duplicate(sock: socket.socket, number: int) -> socket.socket:
    try:
        return dup_to(sock, number)
    except NotImplementedError:  # Windows: no control over the numbers
        return sock.dup()


def dup_to(sock: socket.socket, number: int) -> socket.socket:
    """The same socket as a new descriptor: the lowest free one numbered ``number`` or more.

    This is ``fcntl(fd, F_DUPFD, number)``, wrapped in a new socket object (close it).
    Raises `NotImplementedError` where `fcntl` does not exist (Windows, whose
    sockets are handles, not small numbers), and `OSError` (EINVAL) when
    ``number`` is not below RLIMIT_NOFILE.
    """
    try:
        import fcntl
    except ImportError:
        raise NotImplementedError(
            f"{sys.platform} has no fcntl: its socket handles cannot be given a number; "
            "there select() takes at most 512 sockets, whatever their handles"
        ) from None
    return socket.socket(fileno=fcntl.fcntl(sock.fileno(), fcntl.F_DUPFD, number))
