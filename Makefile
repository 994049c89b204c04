# The two commands: `make demo` (the main job on the embedded default) and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
OPS := $(VENV)/bin/ops
PYINFRA := $(VENV)/bin/pyinfra
PYTHON ?= python3
LOCAL_ENV = eval "$$($(PY) -m ops.local.env env)"

.PHONY: setup system-packages demo demo-down test lint lint-sql bench clean

setup: system-packages $(VENV)/.installed

system-packages:
	@bash scripts/system-packages.sh

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test,bench]'
	touch $@

demo: setup
	$(PY) -m ops.local.env up
	$(PYINFRA) -y inventory/local.py deploy.py
	$(PY) -m ops.local.env web-up
	$(PY) -m ops.local.monitoring up
	@echo "--- status"
	@$(LOCAL_ENV); $(OPS) migrate verify; $(OPS) migrate status | tail -n 1
	@$(OPS) playbook cors http://127.0.0.1:$${S10_LOCAL_WEBPORT:-8080}/api/auth/me --origin http://localhost:3000 \
		--header Authorization --expose X-Request-ID | head -n 1 || true

demo-down:
	-$(PY) -m ops.local.monitoring down
	-$(PY) -m ops.local.env down

lint-sql: $(VENV)/.installed
	$(VENV)/bin/squawk --config .squawk.toml sql/migrations/*.sql

lint: $(VENV)/.installed lint-sql
	$(VENV)/bin/ruff check ops tests deploy.py inventory bench
	$(VENV)/bin/mypy ops

test: setup lint
	$(VENV)/bin/pytest -q

# Benchmarks (not tests): SCALE=full is the issue's size, SCALE=small a quick run. Writes bench/results/latest.{md,json}.
SCALE ?= full
bench: setup
	$(PY) -m bench.run --scale $(SCALE)

clean: demo-down
	rm -rf .local
