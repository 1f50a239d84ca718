# `make run` and `make test` are the README's two commands.
PYTHON ?= python3
export TENURE_TEST_POSTGRES_URL ?= postgresql+asyncpg://tenure:tenure@127.0.0.1:5432/tenure
export TENURE_TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
export TENURE_TEST_REQUIRE_POSTGRES ?= 1

# The extras the tests need; constraints.txt pins them, and everything they bring in, exactly.
EXTRAS = dev,postgres,redis

.PHONY: install run test lint services constraints

install:
	$(PYTHON) -m pip install -q -c constraints.txt -e '.[$(EXTRAS)]' -e tests/partner_plugin

run:
	$(PYTHON) -m pip install -q -c constraints.txt -e . && tenure serve

services:
	bash .ci/services

lint:
	ruff check tenure tests bench examples
	ruff format --check tenure tests bench examples
	mypy

test: install services
	$(PYTHON) -m pytest

# Rewrites constraints.txt with the newest versions pip resolves today: the extras installed
# without constraints in a throwaway virtual environment, then `pip freeze`. Run `make test`
# on the result before committing it.
constraints:
	@set -e; venv=$$(mktemp -d); trap 'rm -rf "$$venv"' EXIT; \
	$(PYTHON) -m venv "$$venv"; \
	PIP_CONSTRAINT= "$$venv/bin/python" -m pip install -q --upgrade pip; \
	PIP_CONSTRAINT= "$$venv/bin/python" -m pip install -q -e '.[$(EXTRAS)]' -e tests/partner_plugin; \
	{ echo "# Exact versions for pip install -c constraints.txt (make install, .ci/run, Dockerfile)."; \
	  echo "# Written by make constraints: '.[$(EXTRAS)]' and tests/partner_plugin installed without"; \
	  echo "# constraints in a fresh virtual environment ($$("$$venv/bin/python" -c 'import platform; print("Python", platform.python_version(), "on", platform.system())'), $$(date -u +%Y-%m-%d)),"; \
	  echo "# then pip freeze --exclude-editable. The ranges Tenure accepts are in pyproject.toml."; \
	  "$$venv/bin/python" -m pip freeze --exclude-editable; } > constraints.txt.new; \
	mv constraints.txt.new constraints.txt; \
	echo "constraints.txt: $$(grep -vc '^#' constraints.txt) packages pinned"
