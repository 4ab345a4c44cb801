"""The course site's sources: what tools/book.py stages, and docs/screenshots kept in step.

The built site itself is checked in a browser by tests/browser/test_site.py.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import book  # noqa: E402  (tools/book.py)

import notebooks as nbtools  # noqa: E402  (tools/notebooks.py)

NOTEBOOKS = nbtools.numbered()
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_screenshots_are_in_step_with_the_widget_cells() -> None:
    problems = book.out_of_step()
    assert not problems, "docs/screenshots is out of step (run `make screenshots`):\n" + "\n".join(
        problems
    )


def test_there_are_widget_cells_to_keep_in_step() -> None:
    # A guard on the check above: with no widget cell found it would pass vacuously.
    assert sum(len(book.widget_cells(p)) for p in NOTEBOOKS) > 0


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_site_notebook_shows_screenshots_instead_of_widgets(path: Path) -> None:
    site = book.site_notebook(path, README)
    assert not [c for c in site.cells if nbtools.is_navigation(c)]
    assert "widgets" not in site.metadata
    for cell in (c for c in site.cells if c.id in {w.id for w in book.widget_cells(path)}):
        image, note = cell.outputs
        png = (book.SCREENSHOTS / book.shot_name(path, cell)).read_bytes()
        assert base64.b64decode(image.data["image/png"]) == png
        assert "run this in JupyterLab to use it" in note.data["text/html"]
        assert f"?urlpath=lab/tree/notebooks/{path.name}" in note.data["text/html"]


def test_widget_cell_without_a_screenshot_is_an_error_naming_it(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("w", id="abc")])
    nb.cells[0].outputs = [
        nbformat.v4.new_output("display_data", data={book.WIDGET_MIME: {"model_id": "1"}})
    ]
    path = tmp_path / "99-nothing-here.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(FileNotFoundError, match="'99-nothing-here--abc.png'"):
        book.site_notebook(path, README)


def test_landing_page_lists_every_notebook_and_the_license() -> None:
    pages = [f"notebooks/{p.stem}" for p in NOTEBOOKS]
    page = book.landing_page(README, pages)
    toc = page[page.index("```{toctree}") :]
    assert [line for line in toc.splitlines() if line.startswith(("notebooks/", "license"))] == [
        *pages,
        "license",
    ]
    assert "](LICENSE)" not in page and "](license.md)" in page


def test_readme_links_to_files_that_are_not_pages_go_to_the_repository() -> None:
    assert (
        book.site_link(README, "notebooks/00-start-here.ipynb") == "notebooks/00-start-here.ipynb"
    )
    assert book.site_link(README, "notebooks/solutions/").startswith("https://github.com/")
    assert book.site_link(README, "LICENSE") == "license.md"
