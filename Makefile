# Two commands do everything on a fresh machine (Python 3.11+ and make present):
#   make run   - virtualenv, install, migrate, demo data, serve on http://$(HOST):$(PORT)/
#                (default 127.0.0.1:8000; another port: make run PORT=18600)
#   make test  - virtualenv, install, lint, the whole test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-embedded lint format migrate demo worker beat bench bench-quick bench-mscons clean messages

$(VENV)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

migrate: $(VENV)/.installed
	$(PY) manage.py migrate --no-input

demo: migrate
	$(PY) manage.py seed_demo --host $(HOST) --port $(PORT)

run: demo
	$(PY) manage.py collectstatic --no-input --verbosity 0
	$(PY) manage.py runserver $(HOST):$(PORT)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache

# The German catalogue: collect new texts into locale/de (collecting needs GNU xgettext), translate,
# compile (pure Python).
# Both files are committed, so a fresh machine needs no gettext to run.
messages: $(VENV)/.installed
	$(PY) manage.py makemessages -l de --no-location --ignore=.venv --ignore=staticfiles --ignore=static --ignore=bench
	$(PY) -c "import polib; polib.pofile('locale/de/LC_MESSAGES/django.po').save_as_mofile('locale/de/LC_MESSAGES/django.mo')"

format: $(VENV)/.installed
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: $(VENV)/.installed
	$(MAKE) lint
	bash scripts/install-browser.sh
	$(PY) manage.py collectstatic --no-input --verbosity 0
ifneq ($(DATABASE_URL),)
	$(MAKE) test-embedded
endif
	$(PY) -m pytest $(PYTEST_ARGS)

# The embedded default (SQLite, tasks in-process) as well, when the main run is against real services.
# Tests that need PostgreSQL, Redis, a worker or the browser are left to that run.
test-embedded: $(VENV)/.installed
	env -u DATABASE_URL -u REDIS_URL -u BKM_REQUIRE_SERVICES $(PY) -m pytest -q -n 2 -p no:cacheprovider \
		-m "not postgres and not redis and not celery_worker and not browser"

worker: $(VENV)/.installed
	$(VENV)/bin/celery -A bkm worker --loglevel INFO

beat: $(VENV)/.installed
	$(VENV)/bin/celery -A bkm beat --loglevel INFO

# The benchmark (bench/): its own PostgreSQL database (created if missing, emptied each run),
# gunicorn with 2 workers on BENCH_PORT, results in bench/results.json. Redis must be reachable.
# Both presets include the allocation site (full: 1 PV + 1 battery + 200 consumers x 31 days).
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/bkm_bench
BENCH_REDIS_URL ?= redis://127.0.0.1:6379/4
BENCH_PORT ?= 8301
BENCH_ARGS ?=
BENCH := DATABASE_URL=$(BENCH_DATABASE_URL) REDIS_URL=$(BENCH_REDIS_URL) $(PY) -m bench --setup --reset --port $(BENCH_PORT)

bench: $(VENV)/.installed
	$(BENCH) --preset full $(BENCH_ARGS)

bench-quick: $(VENV)/.installed
	$(BENCH) --preset quick $(BENCH_ARGS)

bench-mscons: $(VENV)/.installed
	DATABASE_URL=$(subst bkm_bench,bkm_bench_mscons,$(BENCH_DATABASE_URL)) REDIS_URL=$(BENCH_REDIS_URL) $(PY) -m bench.mscons $(BENCH_ARGS)

clean:
	rm -rf $(VENV) staticfiles db.sqlite3 test-output .pytest_cache
