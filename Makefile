# Two commands on a fresh machine with Python 3.10+ and make:
#   make lab    set up .venv and open the notebooks in JupyterLab
#   make test   set up .venv and run every test: lint (ruff), library, notebooks (nbval), browser
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# JupyterLab refuses to run as root unless told; containers and many hub images run as root.
AS_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)
FIRST_NOTEBOOK := notebooks/00-start-here.ipynb
LAB_FLAGS ?=

.PHONY: lab lint test test-fast test-browser test-versions notebooks nav bench book screenshots clean help

help:
	@echo "make lab        open the notebooks in JupyterLab"
	@echo "make lint       ruff: lint and format check (make test and test-fast run it first)"
	@echo "make test       run the whole suite (lint, pytest, nbval, browser)"
	@echo "make test-fast  lint, library tests and nbval, without the browser suite"
	@echo "make test-browser  only the browser suite (screenshots in build/screenshots)"
	@echo "make test-versions lint, library tests and nbval on every other supported Python found here"
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

# ruff's settings are in pyproject.toml: code and notebooks are linted, code is formatted.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	tools/install-chromium.sh || true
	$(BIN)/python -m pytest

test-fast: lint
	$(BIN)/python -m pytest -m "not browser"

test-browser: $(STAMP)
	tools/install-chromium.sh
	$(BIN)/python -m pytest -m browser

# Every Python the project claims (requires-python >=3.10). Each version found
# on this machine (pythonX.Y on PATH, or pyenv's versions) gets its own
# .venv-X.Y and runs test-fast there; the one $(PYTHON) already runs is left to
# `make test`, and a version this machine lacks is skipped with a line saying so.
SUPPORTED ?= 3.10 3.11 3.12 3.13
PYENV_ROOT ?= $(HOME)/.pyenv

test-versions:
	@default=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])'); failed=""; \
	for v in $(SUPPORTED); do \
	  if [ "$$v" = "$$default" ]; then echo "== Python $$v: the default ($(PYTHON)), tested by make test"; continue; fi; \
	  py=$$(ls -d $(PYENV_ROOT)/versions/$$v.*/bin/python$$v 2>/dev/null | tail -n 1); \
	  [ -n "$$py" ] || py=$$(command -v python$$v || true); \
	  if [ -z "$$py" ] || ! "$$py" -c pass 2>/dev/null; then echo "== Python $$v: not on this machine, skipped"; continue; fi; \
	  echo "== Python $$v: $$py, in .venv-$$v"; \
	  $(MAKE) --no-print-directory test-fast PYTHON="$$py" VENV=.venv-$$v || failed="$$failed $$v"; \
	done; \
	if [ -n "$$failed" ]; then echo "== failed on Python$$failed"; exit 1; fi

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
	rm -rf $(VENV) .venv-3.* build *.egg-info
