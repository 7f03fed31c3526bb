# Two commands do everything on a fresh machine:
#   make book   set up .venv, then build the HTML book into _build/html (chapters executed)
#   make test   set up .venv, then run the whole test suite (unit tests, notebooks, book build)
# Offline? Point VAE_COURSE_DATA at a folder holding mnist.npz (and cifar10.npz) first.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: book test unit notebooks bench clean

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
	cp -r $(MJ)/input $(MJ)/ui $(MJ)/a11y $(MJ)/adaptors $(MJ)/sre $(VENDOR)/mathjax/
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

book: $(STAMP) $(VENDOR_STAMP)
	VAE_COURSE_STATIC=1 $(VENV)/bin/jupyter-book build --all .
	@echo "Open _build/html/index.html"

# VAE_COURSE_QUICK=1 shortens the chapters' live training cells; everything else is the same.
test: $(STAMP) $(VENDOR_STAMP)
	VAE_COURSE_QUICK=1 $(PY) -m pytest -q tests
	VAE_COURSE_QUICK=1 $(PY) -m pytest -q --nbval-lax --nbval-cell-timeout=900 book/

unit: $(STAMP)
	$(PY) -m pytest -q tests -m "not slow"

bench: $(STAMP)
	$(PY) benchmarks/train_throughput.py

clean:
	rm -rf _build $(VENDOR)
