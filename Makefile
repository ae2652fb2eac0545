# The two commands a newcomer needs: `make run` and `make test`.
VENV ?= .venv
PYTHON ?= python3
PYTEST_ARGS ?=
RUN_ARGS ?=

.PHONY: run test install services bench lint

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $@

install: $(VENV)/.installed

## run: the service on http://127.0.0.1:5000 (SQLite and in-process jobs unless DATABASE_URL / REDIS_URL
## are set; the offline Stripe stand-in unless STRIPE_API_KEY is set); RUN_ARGS="--port 5001 --stripe-port 12112"
run: install
	$(VENV)/bin/flask --app wsgi serve $(RUN_ARGS)

## test: the whole suite on PostgreSQL and Redis (started if they are down), a fresh database per run
test: install services
	scripts/browser.sh
	scripts/ocr.sh
	$(VENV)/bin/pytest -n 2 --dist loadfile $(PYTEST_ARGS)

services:
	scripts/services.sh

bench: install services
	scripts/ocr.sh
	$(VENV)/bin/python -m bench

lint: install
	$(VENV)/bin/ruff check marketplace workers tests bench stripe_standin
