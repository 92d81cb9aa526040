# mu2 set-up: `make demo` (main job on the embedded default) and `make test`.
# Both create .venv when it is missing. torch is installed first and pinned to the
# CPU build that ships on this machine; on a GPU machine any torch >= 2.4 works.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: venv demo test test-slow lint format clean

$(BIN)/mu2: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(BIN)/mu2

venv: $(BIN)/mu2

demo: venv
	$(BIN)/mu2 demo $(DEMO_ARGS)

test: venv
	$(BIN)/ruff check src tests
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# Slow tests are kept out of `make test`; CI runs them too (see .ci/run).
test-slow: venv
	$(BIN)/python -m pytest -q -m slow $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check src tests scripts

format: venv
	$(BIN)/ruff format src tests scripts

clean:
	rm -rf $(VENV) build dist src/*.egg-info
