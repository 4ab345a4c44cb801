"""``make lab``: JupyterLab on the first notebook, as root and as a user.

The server test runs the real target in the background (its own process group, a
free port, private Jupyter folders, no browser), reads the URL it prints, checks
that the server answers on it and serves the first notebook, then stops it.
Whether ``--allow-root`` is passed is checked both ways with a stand-in ``id``.
"""

from __future__ import annotations

import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.browser.conftest import LabServer, wait_until_ready

ROOT = Path(__file__).resolve().parent.parent
FIRST = "notebooks/00-start-here.ipynb"
START_TIMEOUT = 90.0  # s: JupyterLab to print its URL on a loaded machine
URL = re.compile(rf"(http://127\.0\.0\.1:(\d+)/lab/tree/{re.escape(FIRST)})\?token=(\w+)")

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def make_lab(*args: str, env: dict[str, str] | None = None, dry_run: bool = False) -> list[str]:
    """The ``make lab`` command line, using this Python's environment (never reinstalling it)."""
    stamp = Path(sys.prefix) / ".installed"
    command = [
        "make",
        "--no-print-directory",
        "-C",
        str(ROOT),
        "-o",
        str(stamp),
        f"VENV={sys.prefix}",
        "lab",
        *args,
    ]
    return command[:1] + ["-n"] + command[1:] if dry_run else command


def lab_recipe(uid: str, tmp_path: Path) -> str:
    """What ``make -n lab`` would run when ``id -u`` says ``uid``."""
    fake = tmp_path / "bin"
    fake.mkdir(exist_ok=True)
    (fake / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    (fake / "id").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(
        make_lab(dry_run=True), env=env, capture_output=True, text=True, timeout=30, check=True
    )
    return next(line for line in out.stdout.splitlines() if "jupyter lab" in line)


def test_allow_root_is_passed_as_root_only(tmp_path: Path) -> None:
    assert "--allow-root" in lab_recipe("0", tmp_path)
    assert "--allow-root" not in lab_recipe("1000", tmp_path)


def private_jupyter_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        (tmp_path / name).mkdir()
        env[name] = str(tmp_path / name)
    return env


def read_until_url(process: subprocess.Popen[bytes]) -> tuple[re.Match[str], str]:
    """Read the server's output until it prints the notebook's URL; fail after START_TIMEOUT."""
    seen, match, deadline = "", None, time.monotonic() + START_TIMEOUT
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0 and selector.select(timeout=left):
            line = process.stdout.readline().decode("utf-8", errors="replace")
            seen += line
            if (match := URL.search(line)) or not line:
                break
    if not match:
        pytest.fail(
            f"make lab printed no URL of {FIRST} within {START_TIMEOUT:.0f} s:\n{seen[-3000:]}"
        )
    return match, seen


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group we started (make and its jupyter), then SIGKILL if it stays."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    process.stdout.close()


def test_make_lab_prints_the_url_of_the_first_notebook_and_answers(tmp_path: Path) -> None:
    command = make_lab("LAB_FLAGS=--no-browser --ServerApp.port=0")
    process = subprocess.Popen(
        command,
        env=private_jupyter_env(tmp_path),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        match, seen = read_until_url(process)
        url, port, token = match.groups()
        assert ("--allow-root" in seen) == (os.geteuid() == 0)
        # The server logs its URL before it listens: wait until it answers.
        server = LabServer(url=f"http://127.0.0.1:{port}", token=token, root=ROOT)
        assert wait_until_ready(server, process), f"make lab exited:\n{seen[-3000:]}"
        assert server.api("GET", f"/api/contents/{FIRST}?content=0")["type"] == "notebook"
        with urllib.request.urlopen(f"{url}?token={token}", timeout=10) as response:
            assert response.status == 200 and b"JupyterLab" in response.read()
    finally:
        stop_group(process)
    assert process.returncode is not None
