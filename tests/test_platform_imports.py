"""Windows has no `resource` and no `fcntl`: nothing in echo_lib may need them at import.

The check runs in a fresh interpreter in which both modules are made
unimportable (a None entry in ``sys.modules`` makes ``import`` raise
ImportError), then imports every module of the package.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap

import pytest

from echo_lib.driver.fds import MoreFds, SocketsAt, dup_to

POSIX_ONLY = ("resource", "fcntl")

IMPORT_ALL = textwrap.dedent(
    f"""
    import importlib, pkgutil, sys
    for name in {POSIX_ONLY!r}:
        sys.modules[name] = None
    import echo_lib
    names = sorted(m.name for m in pkgutil.walk_packages(echo_lib.__path__, "echo_lib."))
    for name in names:
        importlib.import_module(name)
    print(len(names))
    """
)


def test_every_module_imports_without_resource_and_fcntl() -> None:
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= 20  # the walk found the package's modules, not nothing


def test_the_import_check_would_catch_a_top_level_import() -> None:
    """The same trick does break a module that imports fcntl at the top."""
    code = f"import sys\nfor name in {POSIX_ONLY!r}: sys.modules[name] = None\nimport fcntl"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "ModuleNotFoundError" in done.stderr


@pytest.fixture
def no_posix_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in POSIX_ONLY:
        monkeypatch.setitem(sys.modules, name, None)


def test_more_fds_without_resource_changes_nothing(no_posix_modules: None) -> None:
    with MoreFds(4096) as fds:
        assert fds.limit is None


def test_dup_to_without_fcntl_says_why(no_posix_modules: None) -> None:
    with (
        socket.socket() as sock,
        pytest.raises(NotImplementedError, match="has no fcntl.*512 sockets"),
    ):
        dup_to(sock, 1024)


def test_sockets_at_without_fcntl_still_gives_sockets(no_posix_modules: None) -> None:
    with SocketsAt({"a": 900}) as (socks, peers):
        peers["a"].send(b"!")
        assert socks["a"].recv(1) == b"!"
