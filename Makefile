# Shortcuts for dev.py, the one entry point for the checks (it needs nothing but Python 3.11+).
PYTHON ?= python3

.PHONY: test lint demo security clean

test lint demo security:
	$(PYTHON) dev.py $@

clean:
	rm -rf .venv .venv-checkov .aws-sam .shepherd
