# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck pytest bench gpu-check clean test-fid

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/wgangp train --out runs/demo --overwrite

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(VENV)/bin/mypy

pytest: $(STAMP)
	$(PY) -m pytest -q

test: lint typecheck pytest

bench: $(STAMP)
	$(PY) benchmarks/step_speed.py

clean:
	rm -rf $(VENV) $(FID_VENV) .pytest_cache .mypy_cache .ruff_cache

# FID/KID/IS tests need torch-fidelity + torchvision, which import only with torch 2.14.1 here: their own venv.
FID_VENV := .venv-fid
test-fid:
	test -x $(FID_VENV)/bin/python || $(PYTHON) -m venv $(FID_VENV)
	$(FID_VENV)/bin/python -m pip install -q -c constraints-fid.txt -e '.[dev,fid]'
	$(FID_VENV)/bin/python -m pytest -q tests/test_metrics_inception.py
