"""pyproject.toml (pip) and environment.yml (conda, Binder) must ask for the same packages."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parent.parent
# conda-forge names that differ from PyPI names would go here.
CONDA_TO_PYPI: dict[str, str] = {}


def split(requirement: str) -> tuple[str, str]:
    """``"matplotlib>=3.7"`` -> ``("matplotlib", ">=3.7")``, with the name normalised."""
    match = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)\s*(.*?)\s*", requirement)
    assert match, f"cannot read requirement {requirement!r}"
    return re.sub(r"[-_.]+", "-", match.group(1)).lower(), match.group(2).replace(" ", "")


def pip_requirements() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        requirements += extra
    return dict(map(split, requirements))


def conda_requirements() -> tuple[dict[str, str], list[str]]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip = {}, []
    for item in env["dependencies"]:
        if isinstance(item, dict):
            pip += item["pip"]
        else:
            name, spec = split(item)
            conda[CONDA_TO_PYPI.get(name, name)] = spec
    return conda, pip


def test_same_packages_and_versions() -> None:
    conda, _ = conda_requirements()
    conda.pop("pip")
    python = conda.pop("python")
    assert conda == pip_requirements()
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert python == requires


def test_environment_installs_the_project_itself() -> None:
    _, pip = conda_requirements()
    assert pip == ["-e ."]


def test_conda_forge_is_the_channel() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]


def test_library_imports_with_the_standard_library_only() -> None:
    import subprocess

    code = (
        "import sys, echo_lib, echo_lib.view.plotting, echo_lib.view.widgets; "
        "heavy = sorted(m for m in ('matplotlib', 'ipywidgets', 'IPython', 'numpy') "
        "if m in sys.modules); "
        "print(heavy)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "[]"
