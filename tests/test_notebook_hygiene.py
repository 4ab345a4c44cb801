"""Every committed notebook is one clean top-to-bottom run that nbval can compare."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]-*.ipynb"))
MACHINE_PATHS = re.compile(
    r"(/tmp/ipykernel_\d+|/home/\w+|/root/|/work/|\.venv/|site-packages|[A-Z]:\\\\Users)"
)
SECTIONS = (
    "## Overview",
    "## Prerequisites",
    "## Exercises",
    "## Summary",
    "## What's next",
    "## References",
)

sys.path.insert(0, str(ROOT / "tools"))
import notebooks as nbtools  # noqa: E402  (tools/notebooks.py)


def load(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def code_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c["cell_type"] == "code"]


def test_there_are_notebooks() -> None:
    assert NOTEBOOKS and NOTEBOOKS[0].name == "00-start-here.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_execution_counts_run_one_to_n(path: Path) -> None:
    counts = [c["execution_count"] for c in code_cells(load(path))]
    assert counts == list(range(1, len(counts) + 1))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_errors_only_in_cells_tagged_raises_exception(path: Path) -> None:
    for i, cell in enumerate(code_cells(load(path)), 1):
        tagged = "raises-exception" in cell.get("metadata", {}).get("tags", [])
        errors = [o for o in cell["outputs"] if o["output_type"] == "error"]
        assert tagged == bool(errors), (
            f"code cell {i}: tagged={tagged} but {len(errors)} error outputs"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_kernelspec_is_python3(path: Path) -> None:
    assert load(path)["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_machine_paths_in_outputs(path: Path) -> None:
    for i, cell in enumerate(code_cells(load(path)), 1):
        text = json.dumps(cell["outputs"])
        match = MACHINE_PATHS.search(text)
        assert not match, f"code cell {i} shows a machine path: {match.group(0)!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_output_over_one_megabyte(path: Path) -> None:
    for i, cell in enumerate(code_cells(load(path)), 1):
        for output in cell["outputs"]:
            assert len(json.dumps(output)) < 1_000_000, f"code cell {i} has an output over 1 MB"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_skeleton_sections_are_present(path: Path) -> None:
    text = "\n".join(
        "".join(c["source"]) for c in load(path)["cells"] if c["cell_type"] == "markdown"
    )
    assert re.search(r"^# \S", text, re.MULTILINE), "no '# Title'"
    missing = [s for s in SECTIONS if s not in text]
    assert not missing, f"missing sections: {missing}"
    assert "Time to learn" in text


def test_navigation_is_generated_and_current() -> None:
    assert nbtools.stale(ROOT / "notebooks") == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_cell_is_the_title_and_navigation_follows(path: Path) -> None:
    cells = load(path)["cells"]
    first, second = ("".join(c["source"]) for c in cells[:2])
    assert cells[0]["cell_type"] == "markdown" and first.startswith("# "), (
        f"first cell is not the H1: {first[:60]!r}"
    )
    assert second.startswith(nbtools.MARKER), "the navigation is not right below the H1"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_import_cell_starts_with_the_setup_and_prints_nothing(path: Path) -> None:
    first_code = code_cells(load(path))[0]
    assert "".join(first_code["source"]).startswith(nbtools.SETUP)
    assert not [o for o in first_code["outputs"] if o["output_type"] in ("stream", "error")]


def test_setup_lines_are_replaced_not_stacked() -> None:
    import nbformat

    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("# T"), nbformat.v4.new_code_cell("import x")]
    )
    nav = f"{nbtools.MARKER}\n[Index](x)"
    twice = nbtools.generated(nbtools.generated(nb, nav), nav)
    assert [c.source for c in twice.cells] == ["# T", nav, nbtools.SETUP + "import x", nav]
