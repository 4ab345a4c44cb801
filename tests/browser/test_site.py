"""The course site, built by ``tools/book.py`` and opened page by page in headless Chromium.

The site is built once per session into ``build/book`` (as ``make book`` does) and
served by ``python -m http.server`` on 127.0.0.1 and a free port. For every page:

1. the page renders its title: its H1 (for a notebook, the notebook's ``# Title``)
   opens the browser title;
2. every image has loaded (``naturalWidth > 0``);
3. every link to the site itself resolves: the page answers 200 and, for a link
   with ``#anchor``, holds an element with that id;
4. the console shows no error, no script throws and no request fails.

Screenshots of every page go to ``build/screenshots/site-<page>.png``. Besides, the
site has exactly the pages expected (nothing unchecked), notebooks are chained by
previous/next links in reading order and listed in the sidebar, and search finds a
notebook.
"""

from __future__ import annotations

import re
import selectors
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import BUILD, REPO, SCREENSHOTS, stop

sys.path.insert(0, str(REPO / "tools"))
import book  # noqa: E402  (tools/book.py)

import notebooks as nbtools  # noqa: E402  (tools/notebooks.py)

pytestmark = pytest.mark.browser

NOTEBOOKS = nbtools.numbered()
SERVE_TIMEOUT = 30.0  # s: http.server to say where it listens
LOAD_TIMEOUT = 30_000  # ms: a page and its images
SERVING = re.compile(rb"Serving HTTP on 127\.0\.0\.1 port (\d+)")
# (page, its expected H1), in reading order: the landing page, the notebooks, the license.
PAGES = [
    ("index.html", "selectors, by example"),
    *((f"notebooks/{p.stem}.html", nbtools.title(p).replace("`", "")) for p in NOTEBOOKS),
    ("license.html", "License"),
]
GENERATED = [("search.html", "Search")]

H1_TEXT = """() => { const h = document.querySelector('main h1') || document.querySelector('h1');
  if (!h) return null; const c = h.cloneNode(true);
  c.querySelectorAll('.headerlink').forEach(a => a.remove()); return c.textContent.trim(); }"""
IMAGES_LOADED = "() => Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
IMAGES_BROKEN = (
    "() => Array.from(document.images)"
    ".filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
)
SAME_SITE_LINKS = (
    "() => Array.from(document.querySelectorAll('a[href]')).map(a => a.href)"
    ".filter(h => h.startsWith(location.origin))"
)


@pytest.fixture(scope="session")
def site() -> Path:
    """The site, built from the committed notebooks (fails with Sphinx's own message)."""
    return book.build(BUILD / "book")


def wait_for_port(process: subprocess.Popen[bytes]) -> int:
    """The port ``http.server`` reports on its first line of output; fail after SERVE_TIMEOUT."""
    deadline = time.monotonic() + SERVE_TIMEOUT
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if selector.select(timeout=left):
                line = process.stdout.readline()
                match = SERVING.search(line)
                if match:
                    return int(match.group(1))
                if not line:
                    break
    pytest.fail(f"http.server did not report its port within {SERVE_TIMEOUT:.0f} s")


@pytest.fixture(scope="session")
def site_url(site: Path) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` serving the built site; request log in build/site-server.log."""
    command = [
        sys.executable,
        "-u",
        "-m",
        "http.server",
        "--bind",
        "127.0.0.1",
        "--directory",
        str(site),
        "0",
    ]
    with open(BUILD / "site-server.log", "wb") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log
        )
        try:
            yield f"http://127.0.0.1:{wait_for_port(process)}"
        finally:
            stop(process)
            process.stdout.close()


@pytest.fixture(scope="session")
def fetched() -> dict[str, tuple[int, str]]:
    """Each same-site URL fetched once per session: ``{url: (status, body)}``."""
    return {}


def fetch(url: str, cache: dict[str, tuple[int, str]]) -> tuple[int, str]:
    if url not in cache:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                cache[url] = (response.status, response.read().decode("utf-8", errors="replace"))
        except urllib.error.HTTPError as error:
            cache[url] = (error.code, "")
    return cache[url]


def broken_links(links: list[str], cache: dict[str, tuple[int, str]]) -> list[str]:
    """The links whose page does not answer 200, or whose #anchor is not on it."""
    broken = []
    for link in sorted(set(links)):
        page, _, anchor = link.partition("#")
        status, body = fetch(page, cache)
        if status != 200:
            broken.append(f"{link}: HTTP {status}")
        elif anchor and f'id="{urllib.parse.unquote(anchor)}"' not in body:
            broken.append(f"{link}: no element with id {anchor!r}")
    return broken


@pytest.fixture
def site_page(browser_context: Any) -> Iterator[tuple[Any, list[str]]]:
    """A fresh page (in the suite's browser context), and the list that its console errors,
    script errors and failed requests go to."""
    page, problems = browser_context.new_page(), []
    page.on(
        "console",
        lambda message: message.type == "error" and problems.append(f"console: {message.text}"),
    )
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on("requestfailed", lambda request: problems.append(f"request failed: {request.url}"))
    page.on(
        "response",
        lambda response: (
            response.status >= 400 and problems.append(f"HTTP {response.status}: {response.url}")
        ),
    )
    try:
        yield page, problems
    finally:
        page.close()


def open_page(page: Any, url: str) -> None:
    """Go to ``url``, make lazy images load now, and wait until every image has loaded."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(url, wait_until="load", timeout=LOAD_TIMEOUT)
    page.evaluate(
        "() => document.querySelectorAll('img[loading=lazy]').forEach(i => i.loading = 'eager')"
    )
    try:
        page.wait_for_function(IMAGES_LOADED, timeout=LOAD_TIMEOUT, polling=100)
    except PlaywrightTimeout:
        pytest.fail(f"images did not load: {page.evaluate(IMAGES_BROKEN)}", pytrace=False)


def test_the_site_has_exactly_the_expected_pages(site: Path) -> None:
    found = sorted(
        p.relative_to(site).as_posix() for p in site.rglob("*.html") if "_static" not in p.parts
    )
    assert found == sorted(name for name, _ in PAGES + GENERATED)


@pytest.mark.parametrize(
    ("name", "h1"), PAGES + GENERATED, ids=[name for name, _ in PAGES + GENERATED]
)
def test_page_renders_with_images_links_and_no_errors(
    name: str,
    h1: str,
    site_url: str,
    site_page: tuple[Any, list[str]],
    fetched: dict[str, tuple[int, str]],
) -> None:
    page, problems = site_page
    open_page(page, f"{site_url}/{name}")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / f"site-{name.replace('/', '-').removesuffix('.html')}.png").write_bytes(
        page.screenshot(full_page=True)
    )
    assert page.evaluate(H1_TEXT) == h1
    assert page.title().startswith(h1)
    problems += broken_links(page.evaluate(SAME_SITE_LINKS), fetched)
    assert not problems, "\n".join(problems)


def test_notebooks_are_chained_in_reading_order_and_listed_in_the_sidebar(
    site_url: str, site_page: tuple[Any, list[str]]
) -> None:
    page, problems = site_page
    names = [name for name, _ in PAGES]
    for previous, name, following in zip(names, names[1:], names[2:], strict=False):
        page.goto(f"{site_url}/{name}", wait_until="load", timeout=LOAD_TIMEOUT)
        assert (
            page.locator("a.left-prev").get_attribute("href").endswith(previous.rpartition("/")[2])
        )
        assert (
            page.locator("a.right-next")
            .get_attribute("href")
            .endswith(following.rpartition("/")[2])
        )
    page.goto(f"{site_url}/index.html", wait_until="load", timeout=LOAD_TIMEOUT)
    sidebar = page.evaluate(
        "() => Array.from(document.querySelectorAll('.bd-sidebar-primary a')).map(a => a.href)"
    )
    assert [n for n in names[1:] if f"{site_url}/{n}" not in sidebar] == []
    assert not problems, "\n".join(problems)


def test_search_finds_the_registration_notebook(
    site_url: str, site_page: tuple[Any, list[str]]
) -> None:
    page, problems = site_page
    page.goto(f"{site_url}/search.html?q=SelectorKey", wait_until="load", timeout=LOAD_TIMEOUT)
    results = "() => Array.from(document.querySelectorAll('#search-results li a')).map(a => a.href)"
    page.wait_for_function(f"() => ({results})().length > 0", timeout=LOAD_TIMEOUT, polling=100)
    assert f"{site_url}/notebooks/02-registration.html" in [
        h.partition("?")[0] for h in page.evaluate(results)
    ]
    assert not problems, "\n".join(problems)
