# Two entry points, both safe on a fresh clone: `make demo` and `make test` (what CI runs).
# `make test-fast` leaves out the tests marked slow (whole-pipeline runs, real servers).
PYTHON ?= python3
VENV ?= .venv
# One pytest worker per core (pytest-xdist), each taking whole test files, so a file's
# module fixtures (a pipeline run several tests read) are made once. The tests marked serial
# time the product against a limit; they run afterwards, alone, so other tests' load on the
# cores cannot fail them.
PARALLEL ?= -n auto --dist loadfile

.PHONY: demo test test-fast prepare system-packages

demo: $(VENV)/.installed
	$(VENV)/bin/psafe-demo

test: $(VENV)/.installed system-packages
	$(VENV)/bin/pytest $(PARALLEL) -m "not serial"; parallel=$$?; \
	$(VENV)/bin/pytest -m serial; serial=$$?; \
	[ $$parallel -eq 0 ] && [ $$serial -eq 0 ]

test-fast: $(VENV)/.installed system-packages
	$(VENV)/bin/pytest $(PARALLEL) -m "not slow"

# Tests use two of Debian's packages: PostgreSQL (tests/test_production_instance.py runs
# deploy/dagster.yaml against a real server) and Chromium (tests/test_report.py reads the
# report as a reader sees it). Install what is missing when we may (root, as in CI).
system-packages:
	@missing=""; \
	ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || missing="$$missing postgresql"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -z "$$missing" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's$$missing for the tests"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else echo "missing Debian packages:$$missing (not root): the tests that need them skip or fail"; fi

# The dbt manifest Dagster reads the SQL models from (sql/target/, gitignored). Loading the
# definitions makes it when it is missing or stale; this makes it ahead, e.g. in a deployment.
prepare: $(VENV)/.installed
	$(VENV)/bin/python -m assets.warehouse.dbt prepare

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@
