# Two commands on a fresh machine with Python 3.10+ and make:
#   make lab    set up .venv and open the notebooks in JupyterLab
#   make test   set up .venv and run every test: library, notebooks (nbval), browser
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: lab test test-fast test-browser notebooks nav bench clean help

help:
	@echo "make lab        open the notebooks in JupyterLab"
	@echo "make test       run the whole suite (pytest, nbval, browser)"
	@echo "make test-fast  library tests and nbval, without the browser suite"
	@echo "make test-browser  only the browser suite (screenshots in build/screenshots)"
	@echo "make notebooks  regenerate navigation, re-execute and save every notebook"
	@echo "make bench      run the benchmark against its peers"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[lab,test]'
	touch $@

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/00-start-here.ipynb

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

bench: $(STAMP)
	$(BIN)/python -m echo_lib.bench

clean:
	rm -rf $(VENV) build *.egg-info
