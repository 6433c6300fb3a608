# Set-up in two commands: `make demo` (install + train/val/predict on the bundled sample) and
# `make test` (install with test extras + the test suite). Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN := runs/demo

.PHONY: demo test install install-test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	@# sam2 (tests/test_prompt_sam2.py: parity with the official predictor) ships as an sdist whose isolated
	@# build would download a second torch: build it against the installed one, without its CUDA extension
	SAM2_BUILD_CUDA=0 $(BIN)/pip install --quiet --no-build-isolation --no-deps 'sam2>=1.1'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test
	@# tests/test_serve_browser.py drives the system chromium (Debian package); it skips only without one
	@if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
		|| echo "make: could not install chromium; tests/test_serve_browser.py will skip"; fi

demo: install
	$(BIN)/seglab train name=demo exist_ok=true width=16 imgsz=128 time=100s samples=4
	$(BIN)/seglab val model=$(RUN)/best.pt split=test
	$(BIN)/seglab predict model=$(RUN)/best.pt source='seglab/assets/pet_sample/images/*_1[0-9].jpg' out=$(RUN)/predict
	@echo "demo done: see $(RUN)/ (metrics.json, curves.png, samples/, predict/)"

test: install-test
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs
