"""Build the course site: static HTML of README and every notebook, from the committed outputs.

    python tools/book.py build [--out build/book]  # stage, then sphinx-build (no kernel runs)
    python tools/book.py screenshots               # the browser suite's widget pictures -> docs/
    python tools/book.py check                     # exit 1 if docs/screenshots is out of step

Sphinx with MyST-NB and sphinx-book-theme: all three install from PyPI and build
offline (mystmd and Jupyter Book 2 fetch their HTML themes at build time). The
sources are staged in ``<out>/src`` so the committed files stay as JupyterLab and
GitHub show them:

- README.md becomes the landing page ``index.md``, with a hidden table of contents
  of every notebook and the license; links to files that are not pages point to
  the repository instead.
- Each notebook loses its generated navigation cells (the site has its own,
  previous/next and the sidebar). A widget needs a kernel, so its output is
  replaced by the browser suite's screenshot of that cell after its buttons were
  clicked, ``docs/screenshots/<stem>--<cell id>.png``, and a line saying to run
  it in JupyterLab, with a Binder link to that notebook.
- The screenshots are committed because build/ is not: ``make screenshots`` runs the
  browser suite and copies them, recording a hash of each widget cell's source in
  ``docs/screenshots/manifest.json``, so a test can tell when a picture is stale.
"""

from __future__ import annotations

import argparse
import base64
import fnmatch
import hashlib
import json
import posixpath
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat

import notebooks as nbtools  # tools/notebooks.py, beside this file

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SCREENSHOTS = DOCS / "screenshots"
MANIFEST = SCREENSHOTS / "manifest.json"
TAKEN = ROOT / "build" / "screenshots"  # where the browser suite saves them
OUT = ROOT / "build" / "book"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
BINDER_LINE = re.compile(
    r"^\[binder\]: (https://mybinder\.org/v2/gh/([^/\s]+)/([^/\s]+)/([^?\s]+))\S*$", re.MULTILINE
)
LINK = re.compile(r"\]\((?!https?:|#|mailto:)([^)\s]+)\)")
STAGED = ("docs/binder-badge.svg",)  # files besides the pages that stage() copies


def widget_cells(path: Path) -> list[nbformat.NotebookNode]:
    """The code cells of a notebook whose committed outputs hold a widget view."""
    nb = nbformat.read(path, as_version=4)
    return [
        c
        for c in nb.cells
        if c.cell_type == "code" and any(WIDGET_MIME in o.get("data", {}) for o in c.outputs)
    ]


def shot_name(path: Path, cell: nbformat.NotebookNode) -> str:
    return f"{path.stem}--{cell.id}.png"


def source_hash(cell: nbformat.NotebookNode) -> str:
    return hashlib.sha256(cell.source.encode("utf-8")).hexdigest()[:16]


def wanted_screenshots() -> dict[str, str]:
    """``{file name: hash of the cell's source}`` for every widget cell of every notebook."""
    return {shot_name(p, c): source_hash(c) for p in nbtools.numbered() for c in widget_cells(p)}


def out_of_step() -> list[str]:
    """What is wrong with docs/screenshots: missing, stale or unused pictures (empty if in step)."""
    wanted = wanted_screenshots()
    recorded = json.loads(MANIFEST.read_text(encoding="utf-8")) if MANIFEST.exists() else {}
    present = {p.name for p in SCREENSHOTS.glob("*.png")}
    problems = [f"{name}: missing" for name in sorted(set(wanted) - present)]
    problems += [
        f"{name}: the cell changed since it was taken"
        for name in sorted(wanted)
        if name in present and recorded.get(name) != wanted[name]
    ]
    problems += [f"{name}: no widget cell shows it" for name in sorted(present - set(wanted))]
    return problems


def copy_screenshots() -> None:
    """Copy each widget cell's picture from build/screenshots and record the manifest.

    Raises:
        FileNotFoundError: the browser suite has not saved a picture for a widget cell.
    """
    wanted = wanted_screenshots()
    missing = [name for name in wanted if not (TAKEN / name).exists()]
    if missing:
        raise FileNotFoundError(
            f"no screenshot in {TAKEN} for {missing!r}: run the browser suite first"
        )
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()
    for name in wanted:
        shutil.copyfile(TAKEN / name, SCREENSHOTS / name)
    MANIFEST.write_text(json.dumps(wanted, indent=1, sort_keys=True) + "\n", encoding="utf-8")


def binder_link(readme: str, notebook: str) -> str | None:
    """A Binder link opening ``notebook``, from README's ``[binder]: ...`` line; None without it."""
    match = BINDER_LINE.search(readme)
    return f"{match.group(1)}?urlpath=lab/tree/notebooks/{notebook}" if match else None


def repository_link(readme: str, path: str) -> str | None:
    """The repository's page for ``path``, from the Binder line's owner/name/ref, or None."""
    match = BINDER_LINE.search(readme)
    return (
        f"https://github.com/{match.group(2)}/{match.group(3)}/tree/{match.group(4)}/{path}"
        if match
        else None
    )


def site_link(readme: str, target: str, folder: str = "") -> str:
    """Where a link in a file of ``folder`` points on the site.

    Notebooks and the badge stay, README and LICENSE are pages of their own, and
    any other file of the repository is linked on the repository's site.
    """
    path, hash_, anchor = target.partition("#")
    path = posixpath.normpath(posixpath.join(folder, path))
    if fnmatch.fnmatch(path, "notebooks/[0-9][0-9]-*.ipynb") or path in STAGED:
        return target
    page = {"README.md": "index.md", "LICENSE": "license.md"}.get(path)
    if page:
        return posixpath.relpath(page, folder or ".") + hash_ + anchor
    return repository_link(readme, path) or target


def with_site_links(text: str, readme: str, folder: str = "") -> str:
    """``text`` (markdown) with every relative link pointing where it leads on the site."""
    return LINK.sub(lambda m: f"]({site_link(readme, m.group(1), folder)})", text)


def landing_page(readme: str, pages: list[str]) -> str:
    """README.md as the site's index.md, with the table of contents the sidebar shows."""
    text = with_site_links(readme, readme)
    toc = "\n".join(pages)
    return f"{text}\n\n```{{toctree}}\n:hidden:\n:maxdepth: 1\n\n{toc}\nlicense\n```\n"


def license_page() -> str:
    return "# License\n\n```text\n" + (ROOT / "LICENSE").read_text(encoding="utf-8") + "```\n"


def screenshot_outputs(
    path: Path, cell: nbformat.NotebookNode, binder: str | None
) -> list[nbformat.NotebookNode]:
    """A widget cell's outputs on the site: the cell's screenshot and how to use the real thing."""
    png = base64.b64encode((SCREENSHOTS / shot_name(path, cell)).read_bytes()).decode("ascii")
    launch = f' or <a href="{binder}">launch it on Binder</a>' if binder else ""
    note = f"<p><em>A screenshot: run this in JupyterLab to use it{launch}.</em></p>"
    return [
        nbformat.v4.new_output(
            "display_data", data={"image/png": png, "text/plain": "screenshot of the widget"}
        ),
        nbformat.v4.new_output(
            "display_data", data={"text/html": note, "text/plain": "run this in JupyterLab"}
        ),
    ]


def site_notebook(path: Path, readme: str) -> nbformat.NotebookNode:
    """The notebook as the site shows it: no navigation cells, widgets as screenshots.

    Raises:
        FileNotFoundError: a widget cell has no screenshot in docs/screenshots.
    """
    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if not nbtools.is_navigation(c)]
    nb.metadata.pop("widgets", None)
    binder = binder_link(readme, path.name)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = with_site_links(cell.source, readme, "notebooks")
        elif any(WIDGET_MIME in o.get("data", {}) for o in cell.outputs):
            if not (SCREENSHOTS / shot_name(path, cell)).exists():
                raise FileNotFoundError(
                    f"{shot_name(path, cell)!r} is not in {SCREENSHOTS}: run `make screenshots`"
                )
            cell.outputs = screenshot_outputs(path, cell, binder)
    return nb


def stage(src: Path) -> int:
    """Write the site's sources into ``src`` (emptied first); return the number of pages."""
    shutil.rmtree(src, ignore_errors=True)
    (src / "notebooks").mkdir(parents=True)
    (src / "docs").mkdir()
    for name in STAGED:
        shutil.copyfile(ROOT / name, src / name)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    paths = nbtools.numbered()
    for path in paths:
        nbformat.write(site_notebook(path, readme), src / "notebooks" / path.name)
    (src / "index.md").write_text(
        landing_page(readme, [f"notebooks/{p.stem}" for p in paths]), encoding="utf-8"
    )
    (src / "license.md").write_text(license_page(), encoding="utf-8")
    return len(paths) + 2


def build(out: Path = OUT) -> Path:
    """Stage the sources and run Sphinx (warnings are errors); return the HTML folder.

    Raises:
        subprocess.CalledProcessError: Sphinx reported a warning or an error.
    """
    started = time.monotonic()
    pages = stage(out / "src")
    html = out / "html"
    for previous in (html, out / "doctrees"):  # a page left from an earlier build must not survive
        shutil.rmtree(previous, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "sphinx",
        "-b",
        "html",
        "-c",
        str(DOCS),
        "-W",
        "--keep-going",
        "-q",
        "-d",
        str(out / "doctrees"),
        str(out / "src"),
        str(html),
    ]
    subprocess.run(command, check=True, timeout=600)
    print(f"{pages} pages in {html} ({time.monotonic() - started:.1f} s)")
    return html


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["build", "screenshots", "check"])
    parser.add_argument("--out", type=Path, default=OUT, help="build folder (default: build/book)")
    args = parser.parse_args(argv)
    if args.command == "build":
        build(args.out)
    elif args.command == "screenshots":
        copy_screenshots()
    else:
        problems = out_of_step()
        for problem in problems:
            print(f"docs/screenshots/{problem}; run `make screenshots`", file=sys.stderr)
        return 1 if problems else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
