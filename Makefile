# Set-up and everyday commands. `make demo` and `make test` are the two entry points (see README.md).
PYTHON ?= python3
VENV := .venv
VENV_PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Pinned explicitly and installed first: a looser pin lets pip pick a multi-GB CUDA build.
TORCH := torch==2.13.0

.PHONY: .venv venv demo test test-all clean

.venv venv: $(STAMP)

$(VENV_PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): setup.py | $(VENV_PY)
	$(VENV)/bin/pip install $(TORCH)
	$(VENV)/bin/pip install -e ".[test]"
	touch $@

demo: $(STAMP)
	$(VENV_PY) -m damo_pipeline.demo

# The fast set (CPU, no network, under ~15 min on 2 cores); this is what CI runs.
test: $(STAMP)
	$(VENV_PY) -m pytest -m "not slow" -q

test-all: $(STAMP)
	$(VENV_PY) -m pytest -q

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache demo_out.jpg
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
