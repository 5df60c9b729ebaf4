# custody: `make run` starts the whole stack on embedded defaults; `make test` runs every test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench clean-state debian-tools rehearse histories

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	@touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/custody dev

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# Debian packages the tests and the rehearsal use, installed when missing with one `apt-get update`:
# chromium (browser tests through Playwright, never `playwright install`) and nginx (the TLS
# terminator in front of Temporal in the TLS tests, the reverse proxy of `make rehearse`).
debian-tools:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	{ test -x /usr/sbin/nginx || command -v nginx >/dev/null 2>&1; } || missing="$$missing nginx"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian's$$missing for the tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

test: $(STAMP) debian-tools lint typecheck
	$(VENV)/bin/pytest -q -ra

# Re-record the workflow histories the replay test replays (tests/histories/): after each release that
# changes workflow code (docs/operations.md, "Changing workflow code"). About a minute.
histories: $(STAMP)
	$(PY) -m tests.histories.record

unit: $(STAMP)
	$(VENV)/bin/pytest -q tests/unit

bench: $(STAMP)
	$(PY) bench/radius_search.py
	$(PY) bench/ledger.py
	$(PY) bench/footage.py
	$(PY) bench/report.py
	$(PY) bench/console.py

clean-state:
	rm -rf .custody

# The deployment a department runs, scaled out and rehearsed here end to end (devstack/rehearse.py).
rehearse: $(STAMP) debian-tools
	$(PY) -m devstack.rehearse
	$(PY) -m devstack.rehearse --single
