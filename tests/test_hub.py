"""A JupyterHub that only pulled the repository: the notebooks install echo_lib by themselves.

In a fresh virtual environment holding only JupyterLab's runtime packages (the "lab"
extra of pyproject.toml, without echo_lib, matplotlib or ipywidgets), notebook 00 and
the capstone (``notebooks/11-*.ipynb``, once it exists) run top to bottom from a plain
copy of the repository, as nbgitpuller leaves it: the setup lines of the first code
cell (tools/notebooks.py) install the project from the folder above the notebooks.
The run fails on any error outside cells tagged ``raises-exception``.

It installs packages with this machine's pip configuration (a package index, or the
local cache), so it takes a minute or two.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import venv
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from tests.test_packaging import tomllib

ROOT = Path(__file__).resolve().parent.parent
HUB_NOTEBOOKS = sorted([*ROOT.glob("notebooks/00-*.ipynb"), *ROOT.glob("notebooks/11-*.ipynb")])
NOT_PULLED = shutil.ignore_patterns(
    ".git", ".venv", "build", "*.egg-info", "__pycache__", ".ipynb_checkpoints"
)
INSTALL_TIMEOUT = 900  # s
RUN_TIMEOUT = 900  # s, the first cell installs the project and its dependencies


def lab_runtime() -> list[str]:
    """JupyterLab's runtime packages: pyproject.toml's "lab" extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return list(project["optional-dependencies"]["lab"])


def clean_env(home: Path) -> dict[str, str]:
    """This environment without the project's venv or paths, with private Jupyter folders."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    }
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        (home / name).mkdir(exist_ok=True)
        env[name] = str(home / name)
    env["PYTHONNOUSERSITE"] = "1"  # nothing from ~/.local either
    return env


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, dict[str, str]]]:
    """(the fresh environment's python, the plain copy of the repository, the environment)."""
    home = tmp_path_factory.mktemp("hub")
    venv.create(home / "env", with_pip=True)
    python = home / "env" / "bin" / "python"
    env = clean_env(home)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", *lab_runtime()],
        env=env,
        check=True,
        timeout=INSTALL_TIMEOUT,
    )
    copy = home / "selectors-by-example"
    shutil.copytree(ROOT, copy, ignore=NOT_PULLED)
    yield python, copy, env


def installed(python: Path, module: str, env: dict[str, str]) -> bool:
    code = f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is None)"
    # Run from the environment's own folder: in the repository, "-c" would find echo_lib in the cwd.
    return (
        subprocess.run([str(python), "-c", code], env=env, cwd=python.parent, timeout=60).returncode
        == 0
    )


def test_the_fresh_environment_has_jupyterlab_and_not_echo_lib(
    hub: tuple[Path, Path, dict[str, str]],
) -> None:
    python, _, env = hub
    assert installed(python, "jupyterlab", env) and installed(python, "ipykernel", env)
    assert not installed(python, "echo_lib", env)
    assert not installed(python, "matplotlib", env)


@pytest.mark.parametrize("name", [p.name for p in HUB_NOTEBOOKS])
def test_notebook_runs_from_a_plain_copy(name: str, hub: tuple[Path, Path, dict[str, str]]) -> None:
    python, copy, env = hub
    folder = copy / "notebooks"
    run = [
        str(python),
        "-m",
        "jupyter",
        "nbconvert",
        "--to",
        "notebook",
        "--execute",
        "--output",
        f"ran-{name}",
        f"--ExecutePreprocessor.timeout={RUN_TIMEOUT}",
        "--ExecutePreprocessor.kernel_name=python3",
        name,
    ]
    out = subprocess.run(
        run, cwd=folder, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT + 60
    )
    assert out.returncode == 0, f"{name} failed on the hub:\n{out.stderr[-4000:]}"
    ran = nbformat.read(folder / f"ran-{name}", as_version=4)
    code = [c for c in ran.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code), "a code cell did not run"
    assert installed(python, "echo_lib", env), "the setup lines did not install echo_lib"
