# Two entry points, both safe on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv

.PHONY: demo test postgresql

demo: $(VENV)/.installed
	$(VENV)/bin/psafe-demo

test: $(VENV)/.installed postgresql
	$(VENV)/bin/pytest

# tests/test_production_instance.py runs deploy/dagster.yaml against a real PostgreSQL server:
# install Debian's when it is missing and we may (root, as in CI); otherwise that test skips.
postgresql:
	@if ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's postgresql for the production-instance test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else echo "PostgreSQL not found and not root: tests/test_production_instance.py will skip"; fi

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@
