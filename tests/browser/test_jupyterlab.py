"""Every notebook runs in a real JupyterLab, in headless Chromium, as a student would run it.

For each ``notebooks/NN-*.ipynb`` (or ``$ECHO_LIB_NOTEBOOKS_DIR``): open it, wait for its
kernel, clear the committed outputs (Edit > Clear Outputs of All Cells), run it
(Run > Run All Cells) and wait until the run is over (every code cell has an execution
count, or Run All stopped at an error). Then:

1. no code cell shows an error output unless it is tagged ``raises-exception``, and no
   output failed to render ("Javascript Error", "Error displaying widget");
2. every cell whose committed outputs hold an ``image/png`` (the timeline plots) shows
   a loaded ``<img>``;
3. every cell whose committed outputs hold a widget view shows a rendered widget, and
   each of its buttons labelled exactly Run or Step changes the cell's output when
   clicked.

Screenshots go to ``build/screenshots/``: ``<stem>.png`` (the whole notebook after the
run), ``<stem>-widget-N.png`` (the cell after the N-th button click),
``<stem>--<cell id>.png`` (each widget cell's output after all its clicks: the picture the
course site shows in its place, see ``make screenshots``), and ``<stem>-failed.png``
when a test fails.

Which cell is which: code cells are matched by their index among code cells, in the
.ipynb on disk, the notebook model and the DOM (``.jp-CodeCell``) alike. An error
output and text printed to stderr render the same in the DOM, so error outputs are
read from the notebook model (``window.jupyterapp``, exposed by the server's
``--LabApp.expose_app_in_browser``).
"""

from __future__ import annotations

import json
import re
import secrets
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from .conftest import NOTEBOOKS_DIR, SCREENSHOTS, LabServer

pytestmark = pytest.mark.browser

NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]-*.ipynb"))

KERNEL_TIMEOUT = 60_000  # ms: open the notebook and start its kernel
RUN_TIMEOUT = 120_000  # ms: Run All Cells, per notebook
RENDER_TIMEOUT = 15_000  # ms: images and widgets to appear after the run
CLICK_TIMEOUT = 30_000  # ms: a Run / Step button's cell output to change
SCREENSHOT_MAX_HEIGHT = 30_000  # px
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
# Exactly "Run" or "Step" (an icon beside it is fine), not "Run to end": each click must
# change the cell's output, and "Run to end" after the last step rightly changes nothing.
BUTTON_LABEL = re.compile(r"^\W*(run|step)\W*$", re.IGNORECASE)

PANEL = ".jp-NotebookPanel"
CODE_CELL = f"{PANEL} .jp-Notebook .jp-CodeCell"
MENU_BAR_ITEM = ".lm-MenuBar-itemLabel"

# Shared by the page-side functions below: the notebook panel for a path, its kernel,
# the code cells in the DOM, any open dialog.
JS_HELPERS = (
    "\nconst panelFor = (path) => window.jupyterapp &&\n"
    "    Array.from(window.jupyterapp.shell.widgets('main'))"
    ".find(w => w.context && w.context.path === path);\n"
    "const kernelOf = (panel) => panel && panel.sessionContext.session"
    " && panel.sessionContext.session.kernel;\n"
    "const kernelIdle = (path) => { const k = kernelOf(panelFor(path));\n"
    "    return !!k && k.connectionStatus === 'connected' && k.status === 'idle'; };\n"
    f"const codeCells = () => Array.from(document.querySelectorAll({CODE_CELL!r}));\n"
    "const prompts = () => codeCells()"
    ".map(c => (c.querySelector('.jp-InputPrompt') || {}).textContent || '');\n"
    "const dialog = () => { const d = document.querySelector('.jp-Dialog');\n"
    "    return d ? 'dialog: ' + d.innerText : null; };\n"
)


def js(body: str) -> str:
    """A page function of one argument ``arg``, with JS_HELPERS in scope."""
    return f"(arg) => {{ {JS_HELPERS}\n{body} }}"


KERNEL_READY = js("return dialog() || (kernelIdle(arg) ? 'ready' : null);")
CELLS_CLEARED = js(
    "return dialog() || (codeCells().every(c => !c.querySelector('.jp-OutputArea-output'))"
    " && prompts().every(p => !/[0-9*]/.test(p)) ? 'cleared' : null);"
)
# Finished: nothing queued or running, the kernel idle, and either every code cell has
# an execution count, or an untagged cell holds an error (Run All stops there). Not
# "no [*] left": after an error in a raises-exception cell JupyterLab resets the queued
# prompts to [ ] and runs the rest one at a time, idle in between.
RUN_FINISHED = js(
    "const p = prompts(); if (dialog()) return dialog();"
    " if (p.some(t => t.includes('*')) || !kernelIdle(arg.path)) return null;"
    " if (p.every(t => /[0-9]/.test(t))) return 'finished';"
    " const cells = panelFor(arg.path).content.widgets.filter(w => w.model.type === 'code');"
    " return cells.some((w, i) => !arg.tagged.includes(i)"
    "   && w.model.outputs.toJSON().some(o => o.output_type === 'error'))"
    " ? 'stopped at an error' : null;"
)
PROMPTS = js("return prompts();")
MODEL_CELLS = js(
    "return panelFor(arg).content.widgets.filter(w => w.model.type === 'code')"
    ".map(w => w.model.toJSON());"
)
RENDER_ERRORS = js(
    "return codeCells().flatMap((c, i) => Array.from(c.querySelectorAll('.jp-OutputArea-output'))"
    " .map(o => o.innerText).filter(t => /Javascript Error|Error displaying widget/.test(t))"
    " .map(t => `code cell ${i + 1}: ${t.slice(0, 300)}`));"
)
IMAGES_MISSING = js(
    "return arg.filter(i => !Array.from(codeCells()[i]"
    ".querySelectorAll('.jp-OutputArea-output img'))"
    " .some(img => img.complete && img.naturalWidth > 0));"
)
WIDGETS_MISSING = js(
    "return arg.filter(i => { const out = codeCells()[i].querySelector('.jp-Cell-outputArea');"
    " const text = out ? out.innerText : '';"
    " return !out || !out.querySelector('.jupyter-widgets')"
    " || /Loading widget|Error displaying widget/.test(text); });"
)
# What a click must change: the cell's output text (Output widgets, labels, HTML) or images.
OUTPUT_SIGNATURE = js(
    "const out = codeCells()[arg].querySelector('.jp-Cell-outputArea');"
    " return out.innerText + '\\n'"
    " + Array.from(out.querySelectorAll('img')).map(i => i.src).join('\\n');"
)
OUTPUT_CHANGED = js(
    "const out = codeCells()[arg.cell].querySelector('.jp-Cell-outputArea');"
    " const now = out.innerText + '\\n'"
    "   + Array.from(out.querySelectorAll('img')).map(i => i.src).join('\\n');"
    " return now !== arg.before;"
)
# How far the last cell reaches below the notebook's visible area, in px, scrolled to the top.
SCROLLER = f"{PANEL} .jp-WindowedPanel-outer"
NOTEBOOK_OVERFLOW = js(
    f"const s = document.querySelector({SCROLLER!r});"
    " const cells = s ? s.querySelectorAll('.jp-Cell') : [];"
    " if (!cells.length) return 0; s.scrollTop = 0;"
    " return Math.ceil(cells[cells.length - 1].getBoundingClientRect().bottom"
    " - s.getBoundingClientRect().bottom);"
)


def committed_code_cells(path: Path) -> list[dict[str, Any]]:
    """The code cells of the notebook on disk, in order."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def tags(cell: dict[str, Any]) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def mime_types(cell: dict[str, Any]) -> set[str]:
    return {mime for output in cell.get("outputs", []) for mime in output.get("data", {})}


def first_line(cell: dict[str, Any]) -> str:
    source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
    return source.strip().splitlines()[0][:80] if source.strip() else ""


def wait(page: Any, script: str, arg: Any, timeout: float, what: str, explain: Any = None) -> Any:
    """Wait until ``script`` returns a truthy value; fail with ``what`` after ``timeout`` ms.

    ``explain()``, if given, adds the page's state to the timeout message. A value
    starting with "dialog:" (a JupyterLab dialog blocks the page) fails at once.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        value = page.wait_for_function(script, arg=arg, timeout=timeout, polling=100).json_value()
    except PlaywrightTimeout:
        detail = f": {explain()}" if explain else ""
        pytest.fail(
            f"timed out after {timeout / 1000:.0f} s waiting for {what}{detail}", pytrace=False
        )
    if isinstance(value, str) and value.startswith("dialog:"):
        pytest.fail(f"a JupyterLab dialog blocked {what}: {value[7:].strip()}", pytrace=False)
    return value


def wait_all_rendered(page: Any, missing: str, cells: list[int], what: str) -> None:
    """Wait until ``missing`` (a page function: which of these cells lack it) returns none."""
    if not cells:
        return
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        script = f"(arg) => ({missing})(arg).length === 0"
        page.wait_for_function(script, arg=cells, timeout=RENDER_TIMEOUT, polling=100)
    except PlaywrightTimeout:
        lacking = [i + 1 for i in page.evaluate(missing, cells)]
        pytest.fail(
            f"code cells {lacking} show no {what} after {RENDER_TIMEOUT / 1000:.0f} s",
            pytrace=False,
        )


def menu(page: Any, top: str, command: str) -> None:
    """Click a main menu, then one of its items (by JupyterLab command id)."""
    page.locator(MENU_BAR_ITEM, has_text=re.compile(f"^{re.escape(top)}$")).click()
    page.locator(f".lm-Menu-item[data-command='{command}']").click()


def grow_to_fit(page: Any) -> None:
    """Grow the viewport until the notebook's last cell shows (at most SCREENSHOT_MAX_HEIGHT).

    JupyterLab scrolls inside the notebook panel, so a plain full-page screenshot would
    show one screen of it, and an element screenshot would be cut at the panel's edge.
    Outputs may still grow after a resize (an image loading), so measure again, a
    bounded number of times; a screenshot that does not quite fit is never a failure.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _attempt in range(5):
        overflow = page.evaluate(NOTEBOOK_OVERFLOW, None)
        size = page.viewport_size
        if overflow <= 0 or size["height"] >= SCREENSHOT_MAX_HEIGHT:
            return
        height = min(size["height"] + overflow + 16, SCREENSHOT_MAX_HEIGHT)
        page.set_viewport_size({"width": size["width"], "height": height})
        fits = (
            f"() => ({NOTEBOOK_OVERFLOW})(null) <= 0"
            f" || window.innerHeight >= {SCREENSHOT_MAX_HEIGHT}"
        )
        try:
            page.wait_for_function(fits, timeout=2_000, polling=100)
        except PlaywrightTimeout:
            continue


def open_notebook(page: Any, server: LabServer, name: str, cells: int) -> None:
    """Open the notebook in a fresh workspace; wait for all its code cells and an idle kernel."""
    workspace = f"browser-test-{secrets.token_hex(4)}"
    path = urllib.parse.quote(name)
    url = f"{server.url}/lab/workspaces/{workspace}/tree/{path}?token={server.token}"
    page.goto(url, wait_until="domcontentloaded", timeout=KERNEL_TIMEOUT)
    wait(
        page,
        js(f"return dialog() || codeCells().length === {cells};"),
        None,
        KERNEL_TIMEOUT,
        f"{cells} code cells in the DOM",
        lambda: f"found {len(page.evaluate(PROMPTS, None))}",
    )
    wait(page, KERNEL_READY, name, KERNEL_TIMEOUT, "the kernel to start and be idle")


def describe_run(page: Any) -> str:
    """Which cell is still running or queued, for a timeout message."""
    prompts = page.evaluate(PROMPTS, None)
    busy = [i for i, p in enumerate(prompts, 1) if "*" in p]
    return f"code cell {busy[0]} is still running ([*])" if busy else f"prompts are {prompts}"


def run_all(page: Any, name: str, tagged: list[int]) -> None:
    """Clear every output, Run All Cells, wait until the run is over."""
    menu(page, "Edit", "editmenu:clear-all")
    wait(page, CELLS_CLEARED, name, RENDER_TIMEOUT, "Clear Outputs of All Cells")
    menu(page, "Run", "runmenu:run-all")
    wait(
        page,
        RUN_FINISHED,
        {"path": name, "tagged": tagged},
        RUN_TIMEOUT,
        "Run All Cells to finish",
        lambda: describe_run(page),
    )


def check_errors(page: Any, name: str, committed: list[dict[str, Any]]) -> list[str]:
    """Error outputs in untagged cells, cells that did not run, outputs that did not render."""
    problems = []
    for i, (disk, live) in enumerate(
        zip(committed, page.evaluate(MODEL_CELLS, name), strict=False), 1
    ):
        errors = [o for o in live.get("outputs", []) if o.get("output_type") == "error"]
        if errors and "raises-exception" not in tags(disk):
            where = f"code cell {i} ({first_line(disk)!r})"
            problems += [f"{where} raised {e['ename']}: {e['evalue']}" for e in errors]
    not_run = [i for i, p in enumerate(page.evaluate(PROMPTS, None), 1) if not re.search(r"\d", p)]
    if not_run:
        problems.append(f"code cells {not_run} did not run (Run All stops at an untagged error)")
    return problems + page.evaluate(RENDER_ERRORS, None)


def click_buttons(page: Any, name: str, stem: str, cells: list[int]) -> int:
    """Click each Run / Step button of these cells; each click must change the cell's output."""
    clicks = 0
    for i in cells:
        buttons = (
            page.locator(CODE_CELL)
            .nth(i)
            .locator(".jp-Cell-outputArea button", has_text=BUTTON_LABEL)
        )
        for b in range(buttons.count()):
            before = page.evaluate(OUTPUT_SIGNATURE, i)
            button = buttons.nth(b)
            label = button.inner_text().strip()
            button.click(timeout=CLICK_TIMEOUT)
            wait(
                page,
                OUTPUT_CHANGED,
                {"cell": i, "before": before},
                CLICK_TIMEOUT,
                f"code cell {i + 1}'s output to change after clicking {label!r}",
            )
            wait(
                page,
                KERNEL_READY,
                name,
                CLICK_TIMEOUT,
                f"the kernel to be idle after clicking {label!r}",
            )
            clicks += 1
            grow_to_fit(page)
            shot = page.locator(CODE_CELL).nth(i).screenshot()
            (SCREENSHOTS / f"{stem}-widget-{clicks}.png").write_bytes(shot)
    return clicks


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_jupyterlab(notebook: Path, lab_server: LabServer, lab_page: Any) -> None:
    name = notebook.name
    committed = committed_code_cells(lab_server.root / name)  # the copy the server serves
    tagged = [i for i, cell in enumerate(committed) if "raises-exception" in tags(cell)]
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        open_notebook(lab_page, lab_server, name, len(committed))
        if committed:
            run_all(lab_page, name, tagged)
        problems = check_errors(lab_page, name, committed)
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)

        with_images = [i for i, c in enumerate(committed) if "image/png" in mime_types(c)]
        wait_all_rendered(lab_page, IMAGES_MISSING, with_images, "a loaded <img>")
        with_widgets = [i for i, c in enumerate(committed) if WIDGET_MIME in mime_types(c)]
        wait_all_rendered(lab_page, WIDGETS_MISSING, with_widgets, "a rendered widget")
        grow_to_fit(lab_page)  # and keep it grown: widget screenshots show whole cells
        (SCREENSHOTS / f"{notebook.stem}.png").write_bytes(lab_page.screenshot(full_page=True))

        click_buttons(lab_page, name, notebook.stem, with_widgets)
        for i in with_widgets:
            shot = lab_page.locator(CODE_CELL).nth(i).locator(".jp-Cell-outputWrapper").screenshot()
            (SCREENSHOTS / f"{notebook.stem}--{committed[i]['id']}.png").write_bytes(shot)
    finally:
        lab_server.shutdown_sessions(name)
