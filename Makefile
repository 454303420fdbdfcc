# The whole set-up: `make run` starts the service, `make test` runs every test, `make test-fast`
# the ones that start no real process (gunicorn, redis, nginx, chromium, node), in under 30 s.
# Each creates .venv and installs the requirements on first use (and when they change).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)
PORT ?= 8080

.PHONY: install run test test-fast lint bench soak dev-jwt clean

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

# Starts gunicorn from the same config as the Procfile. Without APP_ID (in the environment or
# .env) it runs on the committed demo configuration, config/demo.env, and says so loudly.
run: $(STAMP)
	DEMO_FALLBACK=1 PORT=$(PORT) $(VENV)/bin/gunicorn -c gunicorn.conf.py wsgi:app

test: $(STAMP)
	$(PY) -m pytest -q

# No @pytest.mark.integration, and a quarter of the property tests' examples (tests/conftest.py).
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not integration" --hypothesis-profile=fast

# ruff (ruff.toml) on every Python file, then mypy (mypy.ini) on the production code; both run.
lint: $(STAMP)
	$(VENV)/bin/ruff check .; ruff=$$?; $(VENV)/bin/mypy && exit $$ruff

# Token-engine speed, then HTTP load against the Node peer and with Redis limits (wrk; every
# target of the performance issue). BENCH_ARGS replaces the load benchmark's arguments.
BENCH_ARGS ?= --redis
bench: $(STAMP)
	$(PY) bench/tokens.py
	$(PY) bench/load.py $(BENCH_ARGS)

# Mixed load for DURATION seconds (default 600) against the Procfile's gunicorn; prints
# errors, p99 over time and per-worker memory. Not part of `make test`.
soak: $(STAMP)
	$(PY) bench/soak.py $(if $(DURATION),--duration $(DURATION))

# Prints a JWT for the demo configuration: make dev-jwt SUB=alice GROUPS=hosts [UID=1234]
dev-jwt: $(STAMP)
	@DEMO_FALLBACK=1 $(VENV)/bin/flask --app app dev-jwt --sub "$(or $(SUB),alice)" --groups "$(GROUPS)" $(if $(UID),--uid "$(UID)")

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
