"""Fixtures for the browser suite: a private JupyterLab server and headless Chromium.

The server runs on a free port of 127.0.0.1 with a random token, serving a temporary
copy of the notebooks folder, so running cells in the browser never touches the
committed files. Its settings make the UI deterministic: no news or update checks,
a fresh workspace per notebook, and notebook windowing off (``windowingMode: none``)
so every cell of a long notebook is in the DOM. Its log goes to
``build/jupyterlab-server.log``.

Chromium is Debian's ``/usr/bin/chromium`` driven by the ``playwright`` Python
package (no browser download). Missing, the tests are skipped with a hint; with the
``CI`` environment variable set, they fail instead.

``ECHO_LIB_NOTEBOOKS_DIR`` points the suite at another notebooks folder (default:
the repository's ``notebooks/``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = Path(os.environ.get("ECHO_LIB_NOTEBOOKS_DIR") or REPO / "notebooks").resolve()
BUILD = REPO / "build"
SCREENSHOTS = BUILD / "screenshots"
SERVER_LOG = BUILD / "jupyterlab-server.log"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
INSTALL_HINT = (
    "install it with `sudo tools/install-chromium.sh` (or `sudo apt-get install -y chromium`)"
)
SERVER_START_TIMEOUT = 60.0
REQUEST_TIMEOUT = 5.0

# User settings the server starts with, one file per plugin.
LAB_SETTINGS = {
    # Every cell in the DOM: the default windowing leaves off-screen cells unrendered.
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    # No "Would you like to receive official Jupyter news?" toast, no update check.
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "browser: drives JupyterLab in headless Chromium (deselect with -m 'not browser')",
    )


def in_ci() -> bool:
    """True when the ``CI`` environment variable is set to anything but a false value."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skip_or_fail(reason: str) -> None:
    """Skip the test, or fail it on CI, where a missing browser must not pass silently."""
    if in_ci():
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


@dataclass(frozen=True)
class LabServer:
    """A running JupyterLab server: where it is and how to talk to it."""

    url: str  # http://127.0.0.1:PORT, no trailing slash
    token: str
    root: Path  # the temporary copy of the notebooks folder it serves

    def api(self, method: str, path: str, timeout: float = REQUEST_TIMEOUT) -> Any:
        """Call the REST API; return the decoded JSON body (None when empty)."""
        request = urllib.request.Request(
            f"{self.url}{path}", method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shutdown_sessions(self, path: str) -> None:
        """Shut down every kernel session of the notebook at ``path`` (relative to root).

        Runs in ``finally`` blocks, so it reports a problem instead of raising: the
        test's own failure must stay the one reported (the server stops all kernels
        at the end of the session anyway).
        """
        try:
            for session in self.api("GET", "/api/sessions"):
                if session.get("path") == path:
                    self.api("DELETE", f"/api/sessions/{session['id']}", timeout=30.0)
        except (urllib.error.URLError, OSError, ValueError) as error:
            print(f"could not shut down the kernel of {path}: {error!r}")


def free_port() -> int:
    """A port the OS just handed out on 127.0.0.1 (a race is possible: the caller retries)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log_tail(lines: int = 40) -> str:
    text = SERVER_LOG.read_text(encoding="utf-8", errors="replace") if SERVER_LOG.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


def write_lab_settings(folder: Path) -> None:
    for name, settings in LAB_SETTINGS.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(settings), encoding="utf-8")


def lab_command(port: int, token: str, root: Path, home: Path) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        f"--LabApp.user_settings_dir={home / 'user-settings'}",
        f"--LabApp.workspaces_dir={home / 'workspaces'}",
        # window.jupyterapp: the tests read cell outputs from the notebook model, the
        # only place where an error output differs from text printed to stderr.
        "--LabApp.expose_app_in_browser=True",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--ServerApp.allow_root=True")
    return command


def lab_environment(home: Path) -> dict[str, str]:
    """The caller's environment with Jupyter's and IPython's per-user folders made private."""
    env = dict(os.environ)
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        folder = home / name.lower()
        folder.mkdir(exist_ok=True)
        env[name] = str(folder)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def wait_until_ready(server: LabServer, process: subprocess.Popen[bytes]) -> bool:
    """Poll /api/status until it answers; False when the process exits first.

    Fails the session after SERVER_START_TIMEOUT seconds.
    """
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        try:
            server.api("GET", "/api/status", timeout=2.0)
            return True
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            pass
        try:
            process.wait(timeout=0.25)  # the pause between polls, and an exit check
            return False
        except subprocess.TimeoutExpired:
            pass
    pytest.fail(f"JupyterLab did not answer within {SERVER_START_TIMEOUT:.0f} s:\n{log_tail()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """Terminate (the server shuts its kernels down), then kill if it lingers."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def check_settings(server: LabServer) -> None:
    """Fail early if JupyterLab ignored the windowing setting (cells would go missing)."""
    found = server.api("GET", "/lab/api/settings/@jupyterlab/notebook-extension:tracker")
    mode = found.get("settings", {}).get("windowingMode")
    assert mode == "none", f"windowingMode is {mode!r}: the user settings folder was not used"


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """/usr/bin/chromium and the playwright package, or skip (fail on CI) with a hint."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        skip_or_fail("the playwright Python package is missing: pip install -e '.[test]'")
    if not CHROMIUM.exists():
        skip_or_fail(f"{CHROMIUM} not found: {INSTALL_HINT}")
    return CHROMIUM


@pytest.fixture(scope="session")
def lab_server(
    chromium_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LabServer]:
    """A JupyterLab server of our own on a temporary copy of the notebooks."""
    home = tmp_path_factory.mktemp("jupyterlab")
    root = home / "notebooks"
    shutil.copytree(
        NOTEBOOKS_DIR, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__")
    )
    write_lab_settings(home / "user-settings")
    BUILD.mkdir(exist_ok=True)
    with open(SERVER_LOG, "wb") as log:
        for _attempt in range(3):  # another process may grab the free port first
            port = free_port()
            server = LabServer(
                url=f"http://127.0.0.1:{port}", token=secrets.token_hex(24), root=root
            )
            process = subprocess.Popen(
                lab_command(port, server.token, root, home),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=lab_environment(home),
                cwd=home,
            )
            try:
                if wait_until_ready(server, process):
                    check_settings(server)
                    yield server
                    return
            finally:
                stop(process)
        pytest.fail(f"JupyterLab exited before answering, three times:\n{log_tail()}")


@pytest.fixture(scope="session")
def chromium(chromium_path: Path) -> Iterator[Any]:
    """Headless Debian Chromium, driven by playwright's own driver."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(chromium_path), headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Keep each phase's report on the item, so fixtures can tell a failed test."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def browser_context(chromium: Any) -> Iterator[Any]:
    """One context for the session, so JupyterLab's (immutable, cached) bundles load once.

    Each notebook still opens in a fresh page and a fresh JupyterLab workspace.
    """
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=1)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture
def lab_page(browser_context: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh page; a screenshot named ``<test id>-failed.png`` if the test fails."""
    tab = browser_context.new_page()
    tab.set_default_timeout(30_000)
    try:
        yield tab
    finally:
        report = getattr(request.node, "report_call", None)
        if report is not None and report.failed:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            name = (
                request.node.callspec.id if hasattr(request.node, "callspec") else request.node.name
            )
            try:
                # Bytes, not path=: playwright writes files from a thread pool, which
                # the leak check in tests/conftest.py would count as a leaked thread.
                (SCREENSHOTS / f"{name}-failed.png").write_bytes(tab.screenshot(timeout=10_000))
            except Exception as error:  # the page may be gone; the failure is reported anyway
                print(f"no failure screenshot: {error}")
        tab.close()
