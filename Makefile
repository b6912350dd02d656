# The README's commands. Everything runs from a fresh clone: the first target that needs
# the virtualenv creates it.
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
EMULATOR_PORT ?= 8765

.PHONY: run test

$(VENV)/.installed: requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	touch $@

## Bring the studio up on embedded defaults: web + worker + gateway emulator. Without
## DJANGO_SECRET_KEY, the first process makes a random key in var/secret_key (git-ignored)
## that every later one on this checkout shares (studio/settings.py: dev_secret_key).
run: $(VENV)/.installed
	$(PY) manage.py migrate --no-input -v0
	$(PY) manage.py seed_demo
	@echo "Bria Studio is starting on http://127.0.0.1:$(PORT)/  (gateway emulator on :$(EMULATOR_PORT); Ctrl-C stops all)"
	@PORT=$(PORT) EMULATOR_PORT=$(EMULATOR_PORT) \
	PIXAZO_BASE_URL=$${PIXAZO_BASE_URL:-http://127.0.0.1:$(EMULATOR_PORT)} \
	PUBLIC_BASE_URL=$${PUBLIC_BASE_URL:-http://127.0.0.1:$(PORT)} \
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH PYTHONUNBUFFERED=1 $(VENV)/bin/honcho -f Procfile.dev start

## The whole test suite (SQLite unless DATABASE_URL is set).
test: $(VENV)/.installed
	$(PY) -m pytest $(PYTEST_ARGS)

## Time the spend reports at a million ledger entries in a scratch PostgreSQL database
## (created, then dropped even on failure). BENCH_ARGS="--entries 100000" for a quick run.
BENCH_DB_URL := postgres://postgres@127.0.0.1:5432/bench_report
.PHONY: bench-report
bench-report: $(VENV)/.installed
	dropdb -h 127.0.0.1 -U postgres --if-exists bench_report
	createdb -h 127.0.0.1 -U postgres bench_report
	status=0; \
	DATABASE_URL=$(BENCH_DB_URL) $(PY) manage.py migrate --no-input -v0 && \
	DATABASE_URL=$(BENCH_DB_URL) $(PY) manage.py bench_spend_report $(BENCH_ARGS) || status=$$?; \
	dropdb -h 127.0.0.1 -U postgres --if-exists bench_report; \
	exit $$status

## Measure the production-like stack on this machine (gunicorn, a django-q2 worker on
## Redis, PostgreSQL, the emulator at zero latency) and print the figures as one JSON
## object, in a scratch PostgreSQL database (created, then dropped even on failure) and
## Redis database 3. A few minutes; BENCH_ARGS="--duration 2 --report-entries 100000"
## for a quick run.
BENCH_STACK_DB_URL := postgres://postgres@127.0.0.1:5432/bench_stack
BENCH_REDIS_URL ?= redis://127.0.0.1:6379/3
.PHONY: bench
bench: $(VENV)/.installed
	@dropdb -h 127.0.0.1 -U postgres --if-exists bench_stack
	@createdb -h 127.0.0.1 -U postgres bench_stack
	@status=0; \
	DATABASE_URL=$(BENCH_STACK_DB_URL) $(PY) manage.py migrate --no-input -v0 && \
	DATABASE_URL=$(BENCH_STACK_DB_URL) REDIS_URL=$(BENCH_REDIS_URL) $(PY) manage.py bench $(BENCH_ARGS) || status=$$?; \
	dropdb -h 127.0.0.1 -U postgres --if-exists bench_stack; \
	exit $$status
