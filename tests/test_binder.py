"""binder/ builds the notebooks' runtime and nothing else, in step with pyproject.toml.

repo2docker (Binder) reads binder/ before the files at the top of the repository:
binder/environment.yml must hold exactly the runtime dependencies and the "lab"
extra, with the same versions as pyproject.toml, and an exact Python; postBuild
installs the project itself. README's Binder badge is one line to change.
"""

from __future__ import annotations

import os
import re
import shlex
import sys
from pathlib import Path

import yaml

from tests.test_packaging import split, tomllib

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"

sys.path.insert(0, str(ROOT / "tools"))
import book  # noqa: E402  (tools/book.py reads README's Binder line for the site's launch links)


def binder_requirements() -> dict[str, str]:
    env = yaml.safe_load((BINDER / "environment.yml").read_text(encoding="utf-8"))
    assert all(isinstance(item, str) for item in env["dependencies"]), (
        "binder/environment.yml has a pip section"
    )
    return dict(map(split, env["dependencies"]))


def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def test_runtime_packages_only_with_pyproject_versions() -> None:
    wanted = dict(map(split, project()["dependencies"] + project()["optional-dependencies"]["lab"]))
    found = binder_requirements()
    found.pop("python")
    assert found == wanted


def test_python_is_pinned_exactly_and_allowed_by_requires_python() -> None:
    pin = binder_requirements()["python"]
    assert re.fullmatch(r"=3\.\d+", pin), f"python must be pinned like python=3.11, got {pin!r}"
    minimum = re.fullmatch(r">=3\.(\d+)", project()["requires-python"])
    assert minimum and int(pin.split(".")[1]) >= int(minimum.group(1))


def test_conda_forge_is_the_channel() -> None:
    env = yaml.safe_load((BINDER / "environment.yml").read_text(encoding="utf-8"))
    assert env["channels"] == ["conda-forge"]


def test_post_build_installs_the_project_without_touching_its_dependencies() -> None:
    post_build = BINDER / "postBuild"
    assert os.access(post_build, os.X_OK), "binder/postBuild must be executable"
    commands = [
        shlex.split(line)
        for line in post_build.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ["python", "-m", "pip", "install", "--no-deps", "--editable", "."] in commands


def test_readme_badge_is_one_line_that_opens_the_first_notebook() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = [line for line in readme.splitlines() if "mybinder.org/v2/" in line]
    assert len(lines) == 1, f"the Binder URL must be set on one line, found {len(lines)}"
    assert re.fullmatch(
        r"\[binder\]: https://mybinder\.org/v2/gh/[^/\s]+/[^/\s]+/[^?\s]+"
        r"\?urlpath=lab/tree/notebooks/00-start-here\.ipynb",
        lines[0],
    ), lines[0]
    assert "][binder]" in readme, "no link uses the [binder] line"
    assert book.binder_link(readme, "03-masks.ipynb").endswith(
        "?urlpath=lab/tree/notebooks/03-masks.ipynb"
    )
