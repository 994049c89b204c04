# The two commands: `make demo` (the main job on the embedded default) and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
OPS := $(VENV)/bin/ops
PYINFRA := $(VENV)/bin/pyinfra
PYTHON ?= python3
LOCAL_ENV = eval "$$($(PY) -m ops.local.env env)"

.PHONY: setup setup-demo setup-bench system-packages system-packages-demo system-packages-bench demo demo-down docker-demo docker-down test lint lint-sql bench clean

# What each target installs: `make demo` only the demo's (PostgreSQL 15 with contrib and hypopg,
# nginx; the project without extras), `make test` the rest (chromium, wrk, openssh-server, prometheus
# and its exporters; the test and bench extras), `make bench` the benchmarks' (chromium, wrk, bench
# extras). The demo starts the monitoring stack when Prometheus and its exporters are installed.
setup: system-packages $(VENV)/.installed

setup-demo: system-packages-demo $(VENV)/.installed-demo

setup-bench: system-packages-bench $(VENV)/.installed-bench

system-packages:
	@bash scripts/system-packages.sh test bench

system-packages-demo:
	@bash scripts/system-packages.sh demo

system-packages-bench:
	@bash scripts/system-packages.sh bench

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip

$(VENV)/.installed-demo: pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install -q -e .
	touch $@

$(VENV)/.installed-bench: pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install -q -e '.[bench]'
	touch $@ $(VENV)/.installed-demo

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(VENV)/bin/pip install -q -e '.[test,bench]'
	touch $@ $(VENV)/.installed-demo $(VENV)/.installed-bench

demo: setup-demo
	$(PY) -m ops.local.env demo
	@if command -v prometheus >/dev/null && command -v prometheus-node-exporter >/dev/null \
		&& command -v prometheus-postgres-exporter >/dev/null; then $(PY) -m ops.local.monitoring up; \
	else echo "monitoring: not started (Prometheus and its exporters are make setup's packages, not the demo's)"; fi
	@echo "--- status"
	@$(LOCAL_ENV); $(OPS) migrate verify; $(OPS) migrate status | head -n 1
	@$(OPS) playbook cors http://127.0.0.1:$${S10_LOCAL_WEBPORT:-8080}/api/auth/me --origin http://localhost:3000 \
		--header Authorization --expose X-Request-ID | head -n 1 || true
	@echo "--- next: RUNBOOK.md on the demo: eval \"\$$($(PY) -m ops.local.env env)\"; export PATH=\"\$$PWD/.venv/bin:\$$PATH\"; ops playbook top-queries"

demo-down:
	-$(PY) -m ops.local.monitoring down
	-$(PY) -m ops.local.env down

# A real multi-host deploy on one machine: three bare Debian 12 containers (db1, web1, app1) on the
# host network, provisioned from nothing by the deploy through pyinfra's @docker connector.
DOCKER_ENV = eval "$$($(PY) -m ops.local.docker env)"
DB1_OPS = docker exec -e PGSERVICE=s10 -e PGSERVICEFILE=/etc/s10-ops/pg_service.conf s10-db1 /opt/s10-ops/.venv/bin/ops
docker-demo: setup
	$(PY) -m ops.local.docker up
	$(DOCKER_ENV); $(PYINFRA) -y inventory/docker.py deploy.py
	@echo "--- status"
	@$(DOCKER_ENV); $(DB1_OPS) migrate verify; $(DB1_OPS) migrate status | head -n 1
	@echo "Nginx on web1: http://127.0.0.1:$${S10_DOCKER_WEBPORT:-18080}/api/auth/me"
	@$(OPS) playbook cors http://127.0.0.1:$${S10_DOCKER_WEBPORT:-18080}/api/auth/me --origin http://localhost:3000 \
		--header Authorization --expose X-Request-ID | head -n 1 || true

docker-down:
	-$(PY) -m ops.local.docker down

lint-sql: $(VENV)/.installed
	$(VENV)/bin/squawk --config .squawk.toml sql/migrations/*.sql

lint: $(VENV)/.installed lint-sql
	$(VENV)/bin/ruff check ops tests deploy.py inventory bench
	$(VENV)/bin/mypy ops

test: setup lint
	$(VENV)/bin/pytest -q

# Benchmarks (not tests): SCALE=full is the issue's size, SCALE=small a quick run. Writes bench/results/latest.{md,json}.
SCALE ?= full
bench: setup-bench
	$(PY) -m bench.run --scale $(SCALE)

clean: demo-down docker-down
	rm -rf .local
