"""What a benchmark process may use and has used: file descriptors, CPU time, peak memory.

Linux and macOS have the `resource` module; on Windows these fall back to
what `os` offers or say why they cannot answer. `RECV_SIZE` is the buffer
every server and the load pass to ``recv()``.
"""

from __future__ import annotations

import os
import sys

try:
    import resource
except ImportError:  # Windows: no RLIMIT_NOFILE, no getrusage()
    resource = None  # type: ignore[assignment]

__all__ = ["RECV_SIZE", "ensure_nofile", "maxrss_kib", "nofile_for", "nofile_limits", "user_sys"]

RECV_SIZE = 1 << 16  # the most one recv() takes, in every server and in the load
EXTRA_FDS = 256  # selector, pipes, listener, stdio: head room over one fd per connection


def ensure_nofile(needed: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE to the hard limit if it is below ``needed``.

    Returns the soft limit now in force. Raises `RuntimeError` naming both
    numbers when even the hard limit is too low.
    """
    if resource is None:  # Windows: no descriptor limit to raise (select() takes 512 sockets)
        return needed
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return soft
    if hard != resource.RLIM_INFINITY and hard < needed:
        return _raise_hard_nofile(needed, hard)
    target = needed if hard == resource.RLIM_INFINITY else hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def _raise_hard_nofile(needed: int, hard: int) -> int:
    """Raise both limits to ``needed``: root may (CAP_SYS_RESOURCE), up to fs.nr_open on Linux."""
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, needed))
    except (ValueError, OSError):
        raise RuntimeError(
            f"{needed} file descriptors are needed per process, but the hard limit "
            f"RLIMIT_NOFILE is {hard} and this process may not raise it (it lacks "
            "CAP_SYS_RESOURCE): raise it (ulimit -Hn, as root) "
            f"or use at most {max(hard - EXTRA_FDS, 1)} --connections"
        ) from None
    return needed


def nofile_for(connections: int) -> int:
    """File descriptors one process needs for ``connections`` sockets."""
    return connections + EXTRA_FDS


def maxrss_kib() -> int:
    """This process's peak resident memory in KiB (macOS reports bytes).

    Raises `RuntimeError` on Windows, which has no `resource` module.
    """
    if resource is None:
        raise RuntimeError(
            f"peak memory needs the resource module, which {sys.platform} does not have"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def user_sys() -> tuple[float, float]:
    """User and system CPU seconds of this process (the split is tick-sampled)."""
    if resource is None:  # Windows: os.times() has the same two numbers
        times = os.times()
        return times.user, times.system
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


def nofile_limits() -> tuple[int, int] | None:
    """(soft, hard) RLIMIT_NOFILE of this process; None on Windows."""
    return resource.getrlimit(resource.RLIMIT_NOFILE) if resource is not None else None
