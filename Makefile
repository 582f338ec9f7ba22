# One entry point for every check. `make test` works on a fresh clone with only Python:
# it creates .venv and installs the pinned dependencies first (again only when they change).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: test lint unit demo clean

$(VENV)/.installed: requirements-dev.txt layers/shepherd/requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml

test: lint
	$(BIN)/python -m pytest -n 2

demo: $(VENV)/.installed
	$(BIN)/shepherd local demo

clean:
	rm -rf $(VENV) .aws-sam
