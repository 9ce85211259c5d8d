# The two commands a newcomer needs:   make demo   and   make test
# Both create .venv and install the project into it first (pip, no Docker).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
EXTRAS ?= embedded,training,test

.PHONY: setup system demo test lint stack-up stack-down clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

setup: $(BIN)/python
	$(BIN)/pip install --quiet -e ".[$(EXTRAS)]"

# Start the embedded stack, run the consumers, replay a sample of posts, print a summary.
demo: setup
	$(BIN)/python -m consumer demo $(ARGS)

# Debian's prometheus (promtool) and the docker-compose binary, for tests/deploy (idempotent).
system:
	bash .ci/system-packages.sh

test: setup system lint
	$(BIN)/python -m pytest -q $(ARGS)

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

stack-up: setup
	$(BIN)/python -m devstack up

stack-down:
	$(BIN)/python -m devstack down

clean:
	rm -rf $(VENV) .stack .pytest_cache .ruff_cache
