# Two commands do everything on a fresh machine:
#   make book   set up .venv, then build the HTML book into _build/html (chapters executed)
#   make test   set up .venv, then run the whole test suite (unit tests, notebooks, book build)
# Offline? Point VAE_COURSE_DATA at a folder holding mnist.npz (and cifar10.npz) first.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: book test unit notebooks bench clean

$(STAMP): pyproject.toml requirements/lock.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/lock.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

book: $(STAMP)
	$(VENV)/bin/jupyter-book build --all .
	@echo "Open _build/html/index.html"

# VAE_COURSE_QUICK=1 shortens the chapters' live training cells; everything else is the same.
test: $(STAMP)
	VAE_COURSE_QUICK=1 $(PY) -m pytest -q tests
	VAE_COURSE_QUICK=1 $(PY) -m pytest -q --nbval-lax --nbval-cell-timeout=900 book/

unit: $(STAMP)
	$(PY) -m pytest -q tests -m "not slow"

bench: $(STAMP)
	$(PY) benchmarks/train_throughput.py

clean:
	rm -rf _build
