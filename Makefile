# csvr: two commands do everything on a fresh machine.
#   make demo   set up .venv if needed, then run the whole pipeline on the built-in dataset
#   make test   set up .venv if needed, then run the test suite
# `make setup` alone (re)builds .venv; it is idempotent: when .venv is up to date with
# pyproject.toml and requirements/, it does nothing.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.csvr-setup-stamp
PIP    := $(PY) -m pip --disable-pip-version-check
DEMO_OUT ?= runs/demo
PYTEST_ARGS ?=

.PHONY: setup test demo clean-venv help

help:
	@echo "make demo   - set up .venv if needed and run the end-to-end demo (see README)"
	@echo "make test   - set up .venv if needed and run the test suite"
	@echo "make setup  - create/update .venv (idempotent)"

setup: $(STAMP)

# torch first and alone: `pip install torch==2.13.0` takes the local CPU wheel; any other order
# lets a dependency pull the CUDA build. mediapipe last, with --no-deps (its declared numpy<2 and
# jax requirements are wrong for us; its real runtime needs are in pyproject.toml).
$(STAMP): pyproject.toml requirements/constraints.txt requirements/mediapipe.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -c requirements/constraints.txt -e ".[test]"
	$(PIP) install --quiet --no-deps -r requirements/mediapipe.txt
	@$(PY) -c "import torch, av, lightning, mediapipe, faiss, csvr; print('csvr set-up ok: torch', torch.__version__, '| av', av.__version__, '| lightning', lightning.__version__)"
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

demo: $(STAMP)
	$(VENV)/bin/csvr demo --out $(DEMO_OUT)

clean-venv:
	rm -rf $(VENV)
