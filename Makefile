# make test: lint, type-check and test in a virtual environment (.venv)
# make test-min: test on the lowest dependency versions allowed (.venv-min)
# make demo: run the demo on the bundled sample slide in data/sample
# make dist: build a wheel of the package into dist/
# make viewer-assets: OpenSeadragon (npm registry, pinned) for `dicomslide serve`
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
VENV_MIN ?= .venv-min
BIN_MIN = $(VENV_MIN)/bin
OUT ?= out/demo
OSD_VERSION = 6.1.1
OSD_DIR = dicomslide/serve/static/openseadragon

.PHONY: install install-test test test-min lint typecheck pytest demo sample docs bench dist clean viewer-assets

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: $(BIN)/python setup.cfg pyproject.toml requirements.txt
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.test: $(VENV)/.runtime requirements_test.txt
	$(BIN)/python -m pip install --quiet -r requirements_test.txt
	touch $@

# The lowest versions setup.cfg allows (requirements_min.txt); the test
# requirements are held to them (-c), pip check proves the set consistent.
$(VENV_MIN)/.test: setup.cfg pyproject.toml requirements_min.txt requirements_test.txt
	$(PYTHON) -m venv $(VENV_MIN)
	$(BIN_MIN)/python -m pip install --quiet -r requirements_min.txt
	$(BIN_MIN)/python -m pip install --quiet -r requirements_test.txt -c requirements_min.txt
	$(BIN_MIN)/python -m pip install --quiet --no-deps -e .
	$(BIN_MIN)/python -m pip check
	touch $@

# OpenSeadragon's build, from the npm registry at a pinned version, into a
# folder that git ignores (served by `dicomslide serve`)
$(OSD_DIR)/.version-$(OSD_VERSION):
	rm -rf $(OSD_DIR) out/npm
	mkdir -p out/npm $(OSD_DIR)
	cd out/npm && npm pack --silent openseadragon@$(OSD_VERSION) >/dev/null
	tar -xzf out/npm/openseadragon-$(OSD_VERSION).tgz -C out/npm
	cp -r out/npm/package/build/openseadragon/. $(OSD_DIR)/
	touch $@

viewer-assets: $(OSD_DIR)/.version-$(OSD_VERSION)

install: $(VENV)/.runtime
install-test: $(VENV)/.test

lint: $(VENV)/.test
	$(BIN)/ruff check dicomslide tests data benchmarks
	$(BIN)/ruff format --check dicomslide tests data benchmarks

typecheck: $(VENV)/.test
	$(BIN)/mypy

pytest: $(VENV)/.test viewer-assets
	$(BIN)/pytest

test: lint typecheck pytest

test-min: $(VENV_MIN)/.test viewer-assets
	$(BIN_MIN)/pytest

demo: $(VENV)/.runtime
	@mkdir -p $(OUT)
	$(BIN)/dicomslide ls data/sample
	$(BIN)/dicomslide info data/sample
	$(BIN)/dicomslide thumbnail data/sample --size 512 -o $(OUT)/thumbnail.png
	$(BIN)/dicomslide label data/sample -o $(OUT)/label.png
	$(BIN)/dicomslide region data/sample --level 0 --offset 1500 1200 --size 1024 768 -o $(OUT)/region.png
	@echo "The pictures are in $(abspath $(OUT))"
	@echo "To look at the sample slide in a browser: make viewer-assets, then"
	@echo "  $(BIN)/dicomslide serve data/sample    (and open http://127.0.0.1:8000/)"

$(VENV)/.docs: $(VENV)/.runtime requirements_docs.txt
	$(BIN)/python -m pip install --quiet -r requirements_docs.txt
	touch $@

docs: $(VENV)/.docs
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

bench: $(VENV)/.test viewer-assets
	$(BIN)/python -m pip install --quiet -r benchmarks/requirements.txt
	$(BIN)/python -m benchmarks.run
	$(BIN)/python -m benchmarks.objects
	$(BIN)/python -m benchmarks.serve

sample: $(VENV)/.test
	$(BIN)/python data/make_sample.py

dist: $(BIN)/python
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir dist .
	@ls dist/*.whl

clean:
	rm -rf $(VENV) $(VENV_MIN) out dist build .pytest_cache .mypy_cache .ruff_cache .hypothesis
