# Two commands on a fresh machine with Python 3.10+ and make:
#   make lab    set up .venv and open the notebooks in JupyterLab
#   make test   set up .venv and run every test: library, notebooks (nbval), browser
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# JupyterLab refuses to run as root unless told; containers and many hub images run as root.
AS_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
FIRST_NOTEBOOK := notebooks/00-start-here.ipynb
LAB_FLAGS ?=

.PHONY: lab test test-fast test-browser notebooks nav bench book screenshots clean help

help:
	@echo "make lab        open the notebooks in JupyterLab"
	@echo "make test       run the whole suite (pytest, nbval, browser)"
	@echo "make test-fast  library tests and nbval, without the browser suite"
	@echo "make test-browser  only the browser suite (screenshots in build/screenshots)"
	@echo "make notebooks  regenerate navigation, re-execute and save every notebook"
	@echo "make bench      run the benchmark against its peers"
	@echo "make book       build the course site into build/book/html (offline, no kernel)"
	@echo "make screenshots  refresh docs/screenshots (the site's widget pictures) from the browser suite"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[lab,test,docs]'
	touch $@

lab: $(STAMP)
	@echo "Starting JupyterLab on $(FIRST_NOTEBOOK); open the http://127.0.0.1:... URL it prints below. Ctrl-C stops it."
	$(BIN)/jupyter lab $(AS_ROOT) --ServerApp.ip=127.0.0.1 --ServerApp.root_dir="$(CURDIR)" --LabApp.default_url=/lab/tree/$(FIRST_NOTEBOOK) $(LAB_FLAGS)

test: $(STAMP)
	tools/install-chromium.sh || true
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not browser"

test-browser: $(STAMP)
	tools/install-chromium.sh
	$(BIN)/python -m pytest -m browser

nav: $(STAMP)
	$(BIN)/python tools/notebooks.py nav

notebooks: nav
	$(BIN)/python tools/notebooks.py execute

book: $(STAMP)
	$(BIN)/python tools/book.py build

screenshots: $(STAMP)
	tools/install-chromium.sh
	$(BIN)/python -m pytest -m browser tests/browser/test_jupyterlab.py
	$(BIN)/python tools/book.py screenshots

bench: $(STAMP)
	$(BIN)/python -m echo_lib.bench

clean:
	rm -rf $(VENV) build *.egg-info
