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
	$(VENV)/bin/stylegan init --preset sg2-32 --seed 0 --out out/demo/network.safetensors
	$(VENV)/bin/stylegan info out/demo/network.safetensors
	$(VENV)/bin/stylegan generate --network out/demo/network.safetensors --seeds 0-15 --trunc 0.7 --grid 4x4 --outdir out/demo

test: $(VENV)/.installed
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_stylegan2.py

bench-data: $(VENV)/.installed
	$(PY) benchmarks/bench_data.py

.PHONY: install demo test bench bench-data
