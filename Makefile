# Two entry points: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[test]'
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/stylegan train --cfg demo --data builtin:fashion-mnist --cond --outdir out/demo

test: $(VENV)/.installed
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_stylegan2.py

bench-data: $(VENV)/.installed
	$(PY) benchmarks/bench_data.py

bench-training: $(VENV)/.installed
	$(PY) benchmarks/bench_training.py

.PHONY: install demo test bench bench-data bench-training
