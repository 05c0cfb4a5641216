# Tongxin (同心): `make run` starts the demo, `make test` runs the whole suite.
# Both install what they need first: a .venv (Python 3.11) from requirements-dev.txt,
# reinstalled only when a requirements file changes, and gettext for the catalogs.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
MANAGE := $(PY) manage.py
PORT ?= 8000
STUDENTS ?= 3000
# Days of check-in history (with their nightly roll-ups) the demo starts with.
HISTORY_DAYS ?= 30
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k celery -x"`.
PYTEST_ARGS ?=

REQUIREMENTS := requirements.txt requirements-dev.txt
# The stamp's name carries a hash of the requirements, so editing, pulling or checking
# out a different requirements file triggers one reinstall and nothing else does.
STAMP := $(VENV)/.installed-$(shell cat $(REQUIREMENTS) | sha256sum | cut -c1-16)
# compilemessages walks the whole tree: keep it out of the virtualenv and var/.
I18N_IGNORE := --ignore=.venv --ignore=.venv-bench --ignore=var --ignore=node_modules

export PORT

.PHONY: help install assets browser gettext messages compilemessages lint fmt test run bench clean distclean

help:
	@echo "make run      install, migrate, load the demo university, start web + worker + beat (PORT=$(PORT), STUDENTS=$(STUDENTS))"
	@echo "make test     ruff, Django checks, migrations check, catalogs, pytest (SQLite, or DATABASE_URL/REDIS_URL)"
	@echo "make install  create/update .venv from requirements-dev.txt, and the browser assets"
	@echo "make assets   npm ci (package-lock.json) and copy ECharts into static/vendor/ (gitignored)"
	@echo "make browser  install /usr/bin/chromium for the browser tests (as root, with apt)"
	@echo "make lint     ruff check and ruff format --check"
	@echo "make fmt      ruff format and ruff check --fix"
	@echo "make messages update locale/en/LC_MESSAGES/django.po from the code (then fill in msgstr)"
	@echo "make bench    the benchmark suite on PostgreSQL + Redis, 7-18 min (bench/README.md; BENCH_STUDENTS, BENCH_DAYS)"
	@echo "make clean    remove caches, compiled catalogs and collected static files"
	@echo "make distclean  clean, and remove .venv, .venv-bench and var/ (the demo database too)"

install: $(STAMP) assets

$(STAMP):
	@if [ ! -x $(PY) ]; then \
		echo "Creating $(VENV) with $(PYTHON)"; \
		$(PYTHON) -m venv $(VENV); \
	fi
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "$(VENV) must be Python 3.11 (found %d.%d): make distclean, then PYTHON=/path/to/python3.11 make install" % sys.version_info[:2])'
	@echo "Installing requirements-dev.txt into $(VENV)"
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

# Browser assets from npm (package.json + package-lock.json), copied into static/vendor/
# (gitignored: no third-party bundle in git, no CDN on campus intranets).  ECharts'
# LICENSE and NOTICE travel with its copy.  Redone only when the lock file changes.
ECHARTS := static/vendor/echarts/echarts.min.js

assets: $(ECHARTS)

$(ECHARTS): package.json package-lock.json
	@if ! command -v npm >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "Installing npm"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; \
		else \
			echo "npm not found: install Node.js and npm (sudo apt-get install nodejs npm) for the dashboards' charts" >&2; \
			exit 1; \
		fi; \
	fi
	npm ci --ignore-scripts --no-audit --no-fund
	@mkdir -p $(dir $@)
	cp node_modules/echarts/dist/echarts.min.js node_modules/echarts/LICENSE node_modules/echarts/NOTICE $(dir $@)
	@touch $@

# The browser tests drive the system Chromium (never a browser downloaded by playwright),
# with a CJK font so that the screenshots in test-artefacts/ show the Chinese pages.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -e /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ] || ! command -v wrk >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "Installing chromium (browser tests) and wrk (the benchmark smoke test)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-zenhei wrk >/dev/null; \
		else \
			echo "/usr/bin/chromium not found: the browser tests will be skipped (sudo apt-get install chromium)" >&2; \
		fi; \
	fi

# msgfmt comes from gettext: install it when we may (root with apt), else say how.
gettext:
	@if ! command -v msgfmt >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "Installing gettext (msgfmt)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gettext >/dev/null; \
		else \
			echo "msgfmt not found: install gettext (sudo apt-get install gettext) to compile translations" >&2; \
		fi; \
	fi

compilemessages: install gettext
	$(MANAGE) compilemessages $(I18N_IGNORE) --verbosity 0

# English only: the zh_Hans catalog is django-filter's, copied (see its header).
messages: install gettext
	$(MANAGE) makemessages -l en --ignore='.venv/*' --ignore='.venv-bench/*' --ignore='var/*' --ignore='node_modules/*' --no-obsolete --add-location=file

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test: install assets gettext browser
	@mkdir -p var
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(MANAGE) check
	$(MANAGE) makemigrations --check --dry-run
	$(MANAGE) compilemessages $(I18N_IGNORE) --verbosity 0
	$(PY) -m pytest -p no:cacheprovider -p tests.celery_utils -q $(PYTEST_ARGS)

run: install assets gettext
	@mkdir -p var/celery/queue var/celery/processed
	@if command -v msgfmt >/dev/null; then \
		$(MANAGE) compilemessages $(I18N_IGNORE) --verbosity 0; \
	else \
		echo "Skipping compilemessages (no msgfmt): the English interface will show Chinese" >&2; \
	fi
	$(MANAGE) migrate --noinput
	$(MANAGE) collectstatic --noinput --verbosity 0
	$(MANAGE) seed_demo --students $(STUDENTS) --accounts-file var/demo-accounts.json
	$(MANAGE) seed_checkin --days $(HISTORY_DAYS)
	@$(MANAGE) demo_accounts var/demo-accounts.json --url http://127.0.0.1:$(PORT)/admin/
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start --procfile Procfile --port $(PORT)

# The benchmark suite (bench/README.md): PostgreSQL and Redis on this machine (started
# when down, as .ci/run does), its own virtualenv .venv-bench from requirements-bench.txt
# (django-import-export and the profilers stay out of .venv), and wrk from Debian.
# Not part of `make test`.  BENCH_ARGS: e.g. "--only rollup,missing" or "--reuse".
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed-$(shell cat requirements.txt requirements-bench.txt | sha256sum | cut -c1-16)
BENCH_ARGS ?=

$(BENCH_STAMP):
	@if [ ! -x $(BENCH_VENV)/bin/python ]; then \
		echo "Creating $(BENCH_VENV) with $(PYTHON)"; \
		$(PYTHON) -m venv $(BENCH_VENV); \
	fi
	@echo "Installing requirements-bench.txt into $(BENCH_VENV)"
	@$(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	@rm -f $(BENCH_VENV)/.installed-*
	@touch $@

bench: $(BENCH_STAMP)
	@if ! command -v wrk >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "Installing wrk (load generator)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
		else \
			echo "wrk not found: measurement 1 will fail (sudo apt-get install wrk)" >&2; \
		fi; \
	fi
	$(BENCH_VENV)/bin/python -m bench.run $(BENCH_ARGS)

clean:
	rm -rf var/staticfiles var/celery .ruff_cache .pytest_cache .hypothesis
	find . -path ./.venv -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
	find locale -name '*.mo' -delete

distclean: clean
	rm -rf $(VENV) $(BENCH_VENV) var node_modules static/vendor
