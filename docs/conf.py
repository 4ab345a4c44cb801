"""Sphinx configuration of the course site; `make book` (tools/book.py) stages the sources.

No kernel runs at build time: the pages show the outputs committed in the notebooks.
Everything the pages load ships with the theme, so the site works offline.
"""

project = "selectors, by example"
author = "the authors of selectors, by example"
copyright = f"2026, {author} (MIT License)"

extensions = ["myst_nb"]
nb_execution_mode = "off"  # render the committed outputs; never start a kernel
nb_merge_streams = True
myst_heading_anchors = 3  # README's "#the-notebooks" style links resolve
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

html_theme = "sphinx_book_theme"
html_title = project
html_show_sourcelink = False
html_favicon = "favicon.svg"  # without one, browsers ask for /favicon.ico and get a 404
html_use_index = False  # the course has no index entries: no empty genindex page
html_theme_options = {
    "show_toc_level": 2,
    "home_page_in_toc": True,
    "use_download_button": False,
    "use_fullscreen_button": False,
}
# Light or dark as the reader's system prefers (left unset, the theme logs a console error).
html_context = {"default_mode": "auto"}
