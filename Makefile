# Prism developer tasks. Needs GNU make, Python >= 3.11 and access to PyPI; no Docker, no AWS.
#
#   make demo            run the whole pipeline locally against an embedded moto server
#   make test            lint + type-check + template checks + the pytest suite (what CI runs)
#   make lint            ruff + mypy + import contracts (lint-imports)
#   make template-check  cfn-lint, sam validate --lint, and a lint of the SAM-transformed template
#   make node-test       the CDN's CloudFront Function (cdn/) with Node's test runner
#   make sam-build       sam build, then check the layer's native code is arm64/CPython 3.13
#                        (needs a python3.13 on the machine: PATH, pyenv, or SAM_BUILD_PYTHON=...)
#   make bench           speed ratios and peak memory against textbook Pillow and pyvips, requests
#                        and cost per million uploads, prism run against the same renders
#                        (needs ../shared/corpus, or BENCH_CORPUS=DIR)
#   make browser         install Debian's Chromium (apt-get, as root) for the report's browser test
#   make clean           remove caches and build output (make distclean also removes the venvs)

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The SAM CLI pins a boto3 that aioboto3 does not allow, so it gets a venv of its own.
SAM_VENV := .sam-venv
SAM_BIN := $(SAM_VENV)/bin
# checkov pins its own boto3 and much else: a venv of its own too.
CHECKOV_VENV := .checkov-venv
CHECKOV_BIN := $(CHECKOV_VENV)/bin
TRANSFORMED := build/template.transformed.json
TRANSFORMED_ON := build/template.transformed.switches-on.json
TEMPLATE := template.yaml
DEMO_OUTPUT ?= demo-output
DEMO_ARGS ?=
BENCH_CORPUS ?= ../shared/corpus

export SAM_CLI_TELEMETRY := 0
# The SAM CLI needs a region even for offline checks; any region will do for those.
SAM_ENV := AWS_DEFAULT_REGION="$${AWS_DEFAULT_REGION:-us-east-1}"

# `make sam-build` needs a python3.13 (the Lambda runtime) on PATH: sam build refuses to
# resolve wheels for a runtime it cannot find. Set SAM_BUILD_PYTHON to choose one;
# otherwise PATH and pyenv's installed versions are searched.
SAM_BUILD_PYTHON ?= $(shell for c in python3.13 $$(pyenv root 2>/dev/null)/versions/3.13*/bin/python3.13; do \
	"$$c" -c 'import sys; assert sys.version_info[:2] == (3, 13); print(sys.executable)' 2>/dev/null && break; \
	done; true)

define check_python
	@command -v "$(PYTHON)" >/dev/null || { echo "error: $(PYTHON) not found; set PYTHON=/path/to/python3.11+" >&2; exit 1; }
	@"$(PYTHON)" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
		echo "error: $(PYTHON) ($$("$(PYTHON)" -V 2>&1 | head -n1)) is not a usable Python >= 3.11; choose one with make PYTHON=python3.12 ..." >&2; \
		exit 1; }
endef

.PHONY: bench help venv sam-venv checkov-venv demo test lint ruff mypy imports template-check node-test pytest sam-build sam-build-python \
	browser clean distclean

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

# --- environments ------------------------------------------------------------------------
venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(check_python)
	@[ -x $(BIN)/python ] || { echo "+ $(PYTHON) -m venv $(VENV)"; "$(PYTHON)" -m venv $(VENV); }
	@$(BIN)/python -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
		echo "error: $(VENV) was made with Python < 3.11; run make distclean and try again" >&2; exit 1; }
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@

sam-venv: $(SAM_VENV)/.installed

checkov-venv: $(CHECKOV_VENV)/.installed

$(CHECKOV_VENV)/.installed: requirements-checkov.txt
	$(check_python)
	@[ -x $(CHECKOV_BIN)/python ] || { echo "+ $(PYTHON) -m venv $(CHECKOV_VENV)"; "$(PYTHON)" -m venv $(CHECKOV_VENV); }
	$(CHECKOV_BIN)/python -m pip install --quiet --upgrade pip
	$(CHECKOV_BIN)/python -m pip install --quiet -r requirements-checkov.txt
	@touch $@

$(SAM_VENV)/.installed: requirements-sam.txt
	$(check_python)
	@[ -x $(SAM_BIN)/python ] || { echo "+ $(PYTHON) -m venv $(SAM_VENV)"; "$(PYTHON)" -m venv $(SAM_VENV); }
	$(SAM_BIN)/python -m pip install --quiet --upgrade pip
	$(SAM_BIN)/python -m pip install --quiet -r requirements-sam.txt
	@touch $@

# --- the two commands in the README --------------------------------------------------------
demo: venv
	$(BIN)/prism demo --out $(DEMO_OUTPUT) $(DEMO_ARGS)

bench: venv
	@mkdir -p bench/results
	$(BIN)/python bench/run.py --corpus $(BENCH_CORPUS) --json bench/results/run.json
	$(BIN)/python bench/ceiling.py --corpus $(BENCH_CORPUS) --json bench/results/ceiling.json
	$(BIN)/python bench/memory.py --corpus $(BENCH_CORPUS)
	$(BIN)/python bench/cost.py --bench-json bench/results/run.json
	$(BIN)/python scripts/imaging_run.py --corpus $(BENCH_CORPUS) --threads 2 --compare \
		--workers 2 --json bench/results/end_to_end.json

# Prerequisites run in this order; `make -k test` runs them all and reports every failure.
test: lint template-check node-test browser pytest

# --- checks --------------------------------------------------------------------------------
lint: ruff mypy imports

ruff: venv
	$(BIN)/ruff check .

# One mypy run per import root (see [tool.mypy] in pyproject.toml); all of them run, and
# any that fails fails the target. "" is the configured run: the packages and handlers.
MYPY_RUNS := "" \
	"tests/conftest.py tests/unit" \
	"tests/conftest.py tests/support tests/integration tests/faults" \
	scripts \
	bench

mypy: venv
	@rc=0; for targets in $(MYPY_RUNS); do \
		echo "+ $(BIN)/mypy $$targets"; $(BIN)/mypy $$targets || rc=1; \
	done; exit $$rc

# The room map of docs/architecture.md: contracts in pyproject.toml.
imports: venv
	$(BIN)/lint-imports --no-cache

# checkov runs on the SAM-transformed template, and on a copy with every on/off parameter
# on (it evaluates conditions with the defaults); every check it skips is skipped in the
# template's Metadata with a one-line reason, so any new finding fails here.
template-check: venv sam-venv checkov-venv
	$(BIN)/cfn-lint $(TEMPLATE)
	$(SAM_ENV) $(SAM_BIN)/sam validate --lint --template-file $(TEMPLATE)
	$(SAM_ENV) $(SAM_BIN)/python scripts/check_template.py $(TEMPLATE) --write $(TRANSFORMED) \
		--write-switches-on $(TRANSFORMED_ON)
	$(CHECKOV_BIN)/checkov --file $(TRANSFORMED) --file $(TRANSFORMED_ON) --framework cloudformation --skip-download \
		--compact --quiet

# The CDN's viewer-request function (cdn/viewer-request.js). Without node it skips, loudly.
node-test:
	@if command -v node >/dev/null; then echo "+ node --test cdn/"; node --test cdn/; \
	else echo "WARNING: node not found: the CDN function's tests (cdn/*.test.js) did NOT run" >&2; fi

# pytest exits 5 when it collected no tests: that is a failure here, not a pass.
pytest: venv
	@echo "+ $(BIN)/pytest"; rc=0; $(BIN)/pytest || rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; fi; \
	exit $$rc

# The browser of tests/integration/test_report_browser.py: Debian's Chromium, which Playwright
# drives (Playwright's own browser download is not reachable from here). As root it is
# installed with apt-get when missing; elsewhere, or if that fails, the test skips and says so.
browser:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "+ apt-get install -y chromium"; \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } >/dev/null \
			|| echo "WARNING: apt-get install chromium failed: the report's browser test will skip" >&2; \
	else echo "WARNING: no chromium (apt-get install chromium as root): the report's browser test will skip" >&2; fi

# --- build -----------------------------------------------------------------------------------
sam-build: sam-venv
	@py="$(SAM_BUILD_PYTHON)"; \
	[ -n "$$py" ] || { echo "error: sam build needs a python3.13 (the Lambda runtime); install one or set SAM_BUILD_PYTHON=/path/to/python3.13" >&2; exit 1; }; \
	echo "+ PATH=$$(dirname "$$py"):\$$PATH $(SAM_BIN)/sam build --template-file $(TEMPLATE)"; \
	PATH="$$(dirname "$$py"):$$PATH" $(SAM_ENV) $(SAM_BIN)/sam build --template-file $(TEMPLATE)
	$(SAM_BIN)/python scripts/check_build.py .aws-sam/build --arch arm64 --python 3.13

# The interpreter sam-build would use (empty when there is none); .ci/run asks for it.
sam-build-python:
	@echo "$(SAM_BUILD_PYTHON)"

# --- housekeeping --------------------------------------------------------------------------
clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache build dist $(DEMO_OUTPUT)
	find . -path ./$(VENV) -prune -o -path ./$(SAM_VENV) -prune -o -name __pycache__ -type d -print0 | xargs -0 rm -rf

distclean: clean
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV)
