# `make run` and `make test` are the README's two commands.
PYTHON ?= python3
export TENURE_TEST_POSTGRES_URL ?= postgresql+asyncpg://tenure:tenure@127.0.0.1:5432/tenure
export TENURE_TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
export TENURE_TEST_REQUIRE_POSTGRES ?= 1

.PHONY: install run test lint services

install:
	$(PYTHON) -m pip install -q -e '.[dev,postgres,redis]' -e tests/partner_plugin

run:
	$(PYTHON) -m pip install -q -e . && tenure serve

services:
	bash .ci/services

lint:
	ruff check core schema plugins workers migrations tests bench
	ruff format --check core schema plugins workers migrations tests bench
	mypy

test: install services
	$(PYTHON) -m pytest
