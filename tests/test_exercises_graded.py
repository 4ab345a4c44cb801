"""The exercises of every notebook are graded: each states its kind and difficulty, and they ramp.

An exercise heading reads ``### Exercise N (kind; difficulty): title``; within a
notebook the kinds go predict, then change, then write, and every notebook has
at least one of each.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted(
    (Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]-*.ipynb")
)
KINDS = ("predict", "change", "write")
LEVELS = ("easy", "medium", "medium-hard", "hard")
HEADING = re.compile(r"^### Exercise (\d+) \((\w+); ([\w-]+)\): \S", re.MULTILINE)


def _exercises(path: Path) -> list[tuple[int, str, str]]:
    nb = nbformat.read(path, as_version=4)
    prose = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    return [(int(n), kind, level) for n, kind, level in HEADING.findall(prose)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercises_ramp_from_predict_to_change_to_write(path: Path) -> None:
    exercises = _exercises(path)
    assert [n for n, _, _ in exercises] == list(range(1, len(exercises) + 1)), (
        "numbered 1, 2, 3, ..."
    )
    kinds = [kind for _, kind, _ in exercises]
    assert set(kinds) == set(KINDS), f"{path.name} has {kinds}: one of each kind at least"
    assert kinds == sorted(kinds, key=KINDS.index), f"{path.name} does not ramp: {kinds}"
    assert all(level in LEVELS for _, _, level in exercises), (
        f"{path.name}: a difficulty outside {LEVELS}"
    )


def test_one_wait_with_a_selector_exercise_only() -> None:
    # 01's wait_for_any is the one; 01's wait_for_data and 03's wait_readable were near-duplicates
    sources = "\n".join(
        cell.source for path in NOTEBOOKS for cell in nbformat.read(path, as_version=4).cells
    )
    assert "def wait_for_any(" in sources
    assert "def wait_for_data(" not in sources and "def wait_readable(" not in sources
