# Two commands do everything on a fresh machine:
#   make book   set up .venv, then build the HTML book into _build/html (chapters executed)
#   make test   set up .venv, then run the whole test suite (unit tests, notebooks, book build)
# Offline? Point VAE_COURSE_DATA at a folder holding mnist.npz (and cifar10.npz) first.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FLOORS_VENV ?= .venv-floors
FLOORS_STAMP := $(FLOORS_VENV)/.installed

.PHONY: book test unit backends notebooks bench clean

# JavaScript the built pages need, from the npm registry, copied to _assets/vendor (served as _static/vendor):
# MathJax (equations), RequireJS and the widgets HTML manager (standard ipywidgets).
VENDOR := _assets/vendor
VENDOR_STAMP := $(VENDOR)/.installed
MJ := node_modules/mathjax/es5

$(VENDOR_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	rm -rf $(VENDOR) && mkdir -p $(VENDOR)/mathjax/output $(VENDOR)/html-manager
	cp node_modules/requirejs/require.js $(VENDOR)/
	cp $(MJ)/tex-mml-chtml.js $(VENDOR)/mathjax/
	@# tex-mml-chtml.js holds TeX input, output, menu; beside it, what it loads on demand: TeX
	@# extensions (autoload), the accessibility tools with English speech and Nemeth braille.
	@# Other speech languages, MathML extensions and the standalone components stay out
	@# (about 4.5 MB that no page loads; tests/test_browser.py fails on any missing file).
	mkdir -p $(VENDOR)/mathjax/input $(VENDOR)/mathjax/sre/mathmaps
	cp -r $(MJ)/input/tex $(VENDOR)/mathjax/input/
	cp -r $(MJ)/a11y $(MJ)/adaptors $(VENDOR)/mathjax/
	cp $(MJ)/sre/mathmaps/base.json $(MJ)/sre/mathmaps/en.json $(MJ)/sre/mathmaps/nemeth.json \
	   $(VENDOR)/mathjax/sre/mathmaps/
	cp -r $(MJ)/output/chtml $(VENDOR)/mathjax/output/
	cp node_modules/@jupyter-widgets/html-manager/dist/embed-amd.js \
	   node_modules/@jupyter-widgets/html-manager/dist/*.woff* \
	   node_modules/@jupyter-widgets/html-manager/dist/*.ttf \
	   node_modules/@jupyter-widgets/html-manager/dist/*.eot \
	   node_modules/@jupyter-widgets/html-manager/dist/*.svg $(VENDOR)/html-manager/
	touch $@

$(STAMP): pyproject.toml requirements/lock.txt jupyter-config/vae_course.json
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/lock.txt
	$(PY) -m pip install --quiet --no-deps -e .
	@# an editable install skips data files: enable the server extension (vae_course_jupyter.py)
	mkdir -p $(VENV)/etc/jupyter/jupyter_server_config.d
	cp jupyter-config/vae_course.json $(VENV)/etc/jupyter/jupyter_server_config.d/
	touch $@

# JAX and the CPU build of torch, for the package's tests under the other Keras backends.
BACKENDS_STAMP := $(VENV)/.backends-installed
$(BACKENDS_STAMP): $(STAMP) requirements/backends.txt
	$(PY) -m pip install --quiet -r requirements/backends.txt
	touch $@

book: $(STAMP) $(VENDOR_STAMP)
	VAE_COURSE_STATIC=1 $(VENV)/bin/jupyter-book build --all .
	@echo "Open _build/html/index.html"

# VAE_COURSE_QUICK=1 shortens the chapters' live training cells; everything else is the same.
# Each chapter runs once (tests/test_notebooks.py, one test per chapter); the book the tests
# build and check is made from those runs. The package's backend-agnostic tests (-m backends)
# also run under JAX and torch; notebooks stay on TensorFlow.
test: $(STAMP) $(VENDOR_STAMP) $(BACKENDS_STAMP) $(FLOORS_STAMP)
	VAE_COURSE_QUICK=1 $(PY) -m pytest -q -m "not floors" tests
	KERAS_BACKEND=jax $(PY) -m pytest -q -m backends tests
	KERAS_BACKEND=torch $(PY) -m pytest -q -m backends tests
	$(FLOORS_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/test_pretrained_weights.py

# The fast tests only (no chapter runs, book build, browsers or benchmark runs).
unit: $(STAMP)
	VAE_COURSE_QUICK=1 $(PY) -m pytest -q tests -m "not slow"

# Each chapter run top to bottom in quick mode, one test per chapter.
notebooks: $(STAMP)
	VAE_COURSE_QUICK=1 $(PY) -m pytest -q tests/test_notebooks.py

backends: $(BACKENDS_STAMP)
	for b in tensorflow jax torch; do KERAS_BACKEND=$$b $(PY) -m pytest -q -m backends tests || exit 1; done

# The lowest versions the package accepts: requirements/floors.txt pins each lower bound of
# pyproject.toml's dependencies (tests/test_install.py checks they agree). A second venv with
# them runs what a reader who pip-installs into an older stack relies on: the shipped models
# load and score (tests/test_pretrained*.py), the command line (tests/test_console.py), the
# explorers (tests/test_side_by_side.py) and the backend-agnostic package tests (-m backends).
# `make test` (and so CI) installs them too and runs tests/test_pretrained_weights.py there:
# every shipped model loads and scores the test set as its manifest says (about 1.5 min of
# install and 1 min of tests). `make floors` runs the whole reader-facing set (6-10 min).
.PHONY: floors repository
$(FLOORS_STAMP): pyproject.toml requirements/floors.txt
	test -x $(FLOORS_VENV)/bin/python || $(PYTHON) -m venv $(FLOORS_VENV)
	$(FLOORS_VENV)/bin/python -m pip install --quiet -r requirements/floors.txt
	$(FLOORS_VENV)/bin/python -m pip install --quiet --no-deps -e .
	touch $@

floors: $(FLOORS_STAMP)
	$(FLOORS_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/test_pretrained.py \
	  tests/test_pretrained_weights.py tests/test_console.py tests/test_side_by_side.py
	$(FLOORS_VENV)/bin/python -m pytest -q -p no:cacheprovider -m backends tests

# The repository's address is _config.yml's repository.url; this writes it into every
# chapter's Colab install cell, pyproject.toml's [project.urls] and CITATION.cff.
repository:
	$(PY) tools/repository.py

bench: $(STAMP) $(BACKENDS_STAMP)
	$(PY) benchmarks/train_throughput.py
	$(PY) benchmarks/input_pipeline.py
	$(PY) benchmarks/importance_sampling.py
	$(PY) benchmarks/backend_throughput.py
	$(PY) benchmarks/book_build.py

clean:
	rm -rf _build $(VENDOR)
