# posterflow — the two commands: `make demo` (main job on the local cloud) and `make test`.
SHELL := /bin/bash
VENV := .venv/bin
export JSII_SILENCE_WARNING_DEPRECATED_NODE := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20
export CDK_DISABLE_VERSION_CHECK := true
export CDK_DISABLE_CLI_TELEMETRY := true

.PHONY: setup demo test lint unit soak bench up synth clean

setup:
	@bash scripts/setup.sh

demo: setup
	$(VENV)/posterflow demo

test: setup lint
	$(VENV)/pytest -q -m "not slow" -p no:cacheprovider

lint:
	$(VENV)/ruff check .
	$(VENV)/mypy

unit: setup
	$(VENV)/pytest -q tests/unit

soak: setup
	$(VENV)/pytest -q -m slow --timeout 3600

bench: setup
	$(VENV)/python bench/local_cloud.py

up: setup
	$(VENV)/posterflow up

synth: setup
	$(VENV)/python infra/app.py

clean:
	rm -rf cdk.out out .pytest_cache .mypy_cache .ruff_cache
