# mu2 set-up: `make demo` (main job on the embedded default) and `make test`.
# Both create .venv when it is missing. torch is installed first and pinned to the
# CPU build that ships on this machine; on a GPU machine any torch >= 2.4 works.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: venv dev demo test test-slow test-release test-min-versions mutate lint format clean

# `make demo` installs what the demo runs (mu2 with its train and eval extras); `make test`
# adds the web extra and the dev tools (pytest, ruff, TRL for the DPO cross-check, Playwright),
# which cost a fresh clone's demo time otherwise.
# Keep pip's byte-compiling: --no-compile saves ~25 s of a fresh venv but every process then
# compiles the mu2 stack again where PYTHONDONTWRITEBYTECODE is set (+22 s per import).
PIP := $(BIN)/python -m pip install -q

$(BIN)/mu2: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(PIP) "$(TORCH)"
	$(PIP) -e '.[train,eval]'
	touch $(BIN)/mu2

$(VENV)/.dev: $(BIN)/mu2
	$(PIP) -e '.[dev]'
	touch $(VENV)/.dev

venv: $(BIN)/mu2

dev: $(VENV)/.dev

demo: venv
	$(BIN)/mu2 demo $(DEMO_ARGS)

test: dev
	$(BIN)/ruff check src tests
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Slow tests are kept out of `make test`; CI runs them too (see .ci/run).
test-slow: dev
	$(BIN)/python -m pytest -q -m slow $(PYTEST_ARGS)

# Before a release (not in CI): the built wheel and the declared minimum versions, each in
# a fresh virtual environment from PyPI (4 min with a warm pip cache, up to 17 without).
test-release: dev
	$(BIN)/python -m pytest -q -m release $(PYTEST_ARGS)

# The declared minimum versions in a fresh venv, then the quick tests (slow: ~pip install).
test-min-versions: dev
	$(BIN)/python scripts/check_min_versions.py

# Mutation testing of the core modules (mutmut; configs/mutation/core.yaml, docs/testing.md).
# Outside `make test` and CI: tens of minutes on 2 cores. MUTATE_GROUPS=green picks groups.
MUTATE_GROUPS ?=
mutate: dev
	$(BIN)/python scripts/mutate.py $(MUTATE_GROUPS)

lint: dev
	$(BIN)/ruff check src tests scripts benchmarks

format: dev
	$(BIN)/ruff format src tests scripts benchmarks

clean:
	rm -rf $(VENV) build dist src/*.egg-info
