# Two entry points: `make demo` and `make test`. Both create .venv on first use.
# Also: `make test-fast` (without the tests marked slow), `make lint` (ruff and mypy).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/stylegan train --cfg demo --data builtin:fashion-mnist --cond --outdir out/demo

test: $(VENV)/.installed
	$(PY) -m pytest -q

test-fast: $(VENV)/.installed
	$(PY) -m pytest -q -m "not slow"

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_stylegan2.py

bench-data: $(VENV)/.installed
	$(PY) benchmarks/bench_data.py

bench-training: $(VENV)/.installed
	$(PY) benchmarks/bench_training.py

.PHONY: install demo test test-fast lint bench bench-data bench-training
