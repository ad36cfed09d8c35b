# The two commands of the README: `make run` and `make test`. Everything else is installed by them.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test check lint typecheck architecture manifests openapi bench fuzz worker clean-data

$(if $(filter .tools/bin/uv,$(UV)),.tools/bin/uv):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv

.venv/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --quiet
	@touch $@

install: .venv/.installed

# Local development: identity providers and webhook receivers may listen on 127.0.0.1.
run: install
	$(UV) run --frozen wg-api demo
	WG_OUTBOUND_ALLOW_LOOPBACK=true $(UV) run --frozen wg-api serve --host $(HOST) --port $(PORT)

worker: install
	$(UV) run --frozen wg-api worker

test: install
	$(UV) run --frozen pytest -n 2

check: lint typecheck architecture manifests

lint: install
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

typecheck: install
	$(UV) run --frozen mypy wg_api tests bench migrations

# The layering rules of style.md, as import-linter contracts (pyproject.toml).
architecture: install
	$(UV) run --frozen lint-imports --no-cache

# Every manifest under deploy/k8s, offline: kubernetes-validate --strict for the built-in kinds
# (Kubernetes 1.29 and the newest it knows), deploy/schemas/ for the ServiceMonitor, and the
# house rules (non-root, read-only root filesystem, probes). See deploy/validate_manifests.py.
manifests: install
	$(UV) run --frozen python deploy/validate_manifests.py

openapi: install
	$(UV) run --frozen wg-api openapi export

# schemathesis against a live server (fresh embedded PostgreSQL, demo data), every check;
# `make fuzz FUZZ_MAX_EXAMPLES=5` is the bounded run of .ci/run.
FUZZ_MAX_EXAMPLES ?= 50
fuzz: install
	$(UV) run --frozen python -m tests.contract.fuzz --max-examples $(FUZZ_MAX_EXAMPLES) $(FUZZ_ARGS)

# The load tool is wrk (C, epoll): installed from the system's packages when missing.
bench: install
	@command -v wrk >/dev/null || { command -v apt-get >/dev/null && \
	  $$( [ "$$(id -u)" = 0 ] || echo sudo ) env DEBIAN_FRONTEND=noninteractive sh -c 'apt-get install -y -qq wrk || \
	  (apt-get update -qq && apt-get install -y -qq wrk)' >/dev/null; } || \
	  { command -v brew >/dev/null && brew install wrk; } || \
	  { echo "make bench needs wrk: install it with your package manager"; exit 1; }
	$(UV) run --frozen python -m bench.run $(BENCH_ARGS)

clean-data:
	rm -rf .wg-data
