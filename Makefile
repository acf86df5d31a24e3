# The README names these targets; .ci/run runs `make test`.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c

VENV := .venv
PORT ?= 8000
SCALE ?=
PYTEST_ARGS ?= -ra
# The tests read this; with it set, PostGIS tests run instead of skipping.
GEOAPI_TEST_PG_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

.PHONY: setup setup-postgis demo test lint bench clean

setup:
	bash .ci/setup.sh

setup-postgis:
	bash .ci/setup.sh --postgis
	bash .ci/postgis.sh

demo: setup
	$(VENV)/bin/geoapi demo --port $(PORT) $(if $(SCALE),--scale $(SCALE))

# pytest exits 5 when it collects no test: that is a failure here, not a pass.
test: setup-postgis
	$(VENV)/bin/ruff check --quiet .
	$(VENV)/bin/lint-imports --no-logo
	rc=0; GEOAPI_TEST_PG_URL='$(GEOAPI_TEST_PG_URL)' $(VENV)/bin/pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ $$rc = 5 ]; then echo 'make test: pytest collected no tests (exit 5): failing' >&2; fi; \
	exit $$rc

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-logo

bench:
	@echo 'Benchmarks: see bench/README.md (how to run them and the results).'

clean:
	rm -rf $(VENV) data web_map/node_modules
