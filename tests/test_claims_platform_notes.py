"""Listings whose output is Linux-specific say what macOS and Windows show.

The outputs are committed from a Linux run. Where one shows a combined ready
mask (one ``(key, READ|WRITE)`` entry, which kqueue never reports) or names the
Linux default selector, the notebook's text must say what the other platforms
show instead. A new listing of that kind without its note fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted(
    (Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]-*.ipynb")
)

#: a ready mask with both bits: "ready READ|WRITE" in a timeline or a report,
#: "(sock, READ|WRITE)" in a select() list
COMBINED_READY = re.compile(r"ready\s+READ\|WRITE|, READ\|WRITE\)")


def _texts(path: Path) -> tuple[str, str]:
    """(every output's text, every markdown cell) of one notebook."""
    nb = nbformat.read(path, as_version=4)
    outputs, prose = [], []
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            prose.append(cell.source)
        for output in cell.get("outputs", []):
            outputs.append(output.get("text", "") + output.get("data", {}).get("text/plain", ""))
    return "\n".join(outputs), "\n".join(prose)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_combined_ready_mask_comes_with_what_kqueue_shows(path: Path) -> None:
    outputs, prose = _texts(path)
    if COMBINED_READY.search(outputs):
        assert re.search(r"kqueue[^.]*two (separate )?entries", prose), (
            f"{path.name} shows a READ|WRITE entry but never says kqueue reports two"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_linux_default_selector_comes_with_what_macos_and_windows_show(path: Path) -> None:
    outputs, prose = _texts(path)
    if "EpollSelector" in outputs:
        assert "KqueueSelector" in prose and "SelectSelector" in prose, (
            f"{path.name} prints EpollSelector without the macOS and Windows classes"
        )


def test_the_notebooks_are_there() -> None:
    assert [p.name[:2] for p in NOTEBOOKS] == [f"{n:02d}" for n in range(12)]
