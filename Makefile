# Two entry points, both safe on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv

.PHONY: demo test

demo: $(VENV)/.installed
	$(VENV)/bin/psafe-demo

test: $(VENV)/.installed
	$(VENV)/bin/pytest

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@
