# The two commands: `make run` (local, embedded defaults) and `make test` (the whole suite + quality gates).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit setup migrate clean postgres-bin mariadb-bin pubsub-emulator bench

setup: $(STAMP)

$(STAMP): pyproject.toml sdk/python/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' -e 'sdk/python[requests,google]'
	@touch $(STAMP)

run: setup
	$(BIN)/broker migrate
	$(BIN)/broker serve

migrate: setup
	$(BIN)/broker migrate

postgres-bin:
	@bash tests/bin/ensure-postgres

# MariaDB (Debian's mariadb-server) for the MySQL tier of the tests; installed with apt-get when missing.
mariadb-bin:
	@bash tests/bin/ensure-mariadb

# The Pub/Sub emulator for the events tests (installed with apt-get when missing; CI=true fails without it).
pubsub-emulator:
	@bash tests/bin/ensure-pubsub-emulator

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy

test: setup postgres-bin mariadb-bin pubsub-emulator node-deps browser-deps lint typecheck check-infra
	$(MAKE) --no-print-directory check-api
	$(BIN)/pytest  # last, so the run closes on pytest's summary line

# The OAuth test server (tests/oauth_server, npm `oidc-provider`): `npm ci` again only when the lock file is newer
# than what node_modules was installed from. Node.js >= 20 is needed; as root on Debian it is installed with apt.
OAUTH_SERVER := tests/oauth_server
NODE_STAMP := $(OAUTH_SERVER)/node_modules/.package-lock.json

.PHONY: node-deps
node-deps: $(NODE_STAMP)

$(NODE_STAMP): $(OAUTH_SERVER)/package-lock.json
	@if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then \
	  if [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Node.js and npm with apt-get ..."; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null || exit 1; \
	  else \
	    echo "node and npm not found: the OAuth test server ($(OAUTH_SERVER)) needs Node.js >= 20 with npm; install them and re-run" >&2; \
	    exit 1; \
	  fi; \
	fi
	@node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || { \
	  echo "Node.js >= 20 is needed by $(OAUTH_SERVER) (oidc-provider 9), found $$(node --version): install a newer one (e.g. from nodesource.com)" >&2; \
	  exit 1; }
	npm ci --prefix $(OAUTH_SERVER) --no-audit --no-fund
	@touch $@

unit: setup
	$(BIN)/pytest tests/unit

# The browser tests (tests/browser): Debian's Chromium at /usr/bin/chromium (apt-get as root when missing; never a
# downloaded browser) and playwright-core + axe-core from npm, `npm ci` again only when the lock file is newer.
BROWSER_TESTS := tests/browser
BROWSER_STAMP := $(BROWSER_TESTS)/node_modules/.package-lock.json

.PHONY: browser-deps
browser-deps: node-deps $(BROWSER_STAMP)
	@bash tests/bin/ensure-chromium

$(BROWSER_STAMP): $(BROWSER_TESTS)/package-lock.json
	npm ci --prefix $(BROWSER_TESTS) --no-audit --no-fund
	@touch $@

# Schemathesis against `broker serve` (tests/bin/check-api), in its own virtualenv: its pytest plugin would slow
# every start of the main suite.
API_VENV := .venv-api
API_STAMP := $(API_VENV)/.installed

.PHONY: check-api
check-api: setup $(API_STAMP)
	API_VENV=$(API_VENV) bash tests/bin/check-api

$(API_STAMP):
	@test -x $(API_VENV)/bin/python || $(PYTHON) -m venv $(API_VENV)
	$(API_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(API_VENV)/bin/python -m pip install --quiet 'schemathesis>=4.32,<5'
	@touch $@

clean:
	rm -rf $(VENV) .broker .pytest_cache .mypy_cache .ruff_cache

# Benchmarks: figures are ratios against a floor measured in the same run (README "Benchmarks"). Bytecode first,
# as the image build makes it (cold starts measure imports, not compiling). BENCH_ARGS=--readme rewrites the table.
bench: setup postgres-bin
	$(BIN)/python -m compileall -q shared functions tests/bench
	$(BIN)/python -m tests.bench.run $(BENCH_ARGS)

# P6: the refresh fan-out at 1M integrations, simulated (README "Scaling past one instance"); bench-scale.json.
.PHONY: bench-scale
bench-scale: setup postgres-bin
	$(BIN)/python -m tests.bench.scale $(BENCH_ARGS)

# Offline infrastructure checks: terraform formatting, checkov (zero failed checks; each skip is justified where it
# applies, as a #checkov:skip comment) and the terraform tests. checkov has its own virtualenv: it pulls in many
# dependencies the broker must not carry. `terraform init/validate/plan` need the registry and are not run here.
INFRA_VENV := .venv-infra
INFRA_STAMP := $(INFRA_VENV)/.installed
CHECKOV_VERSION := 3.3.30

.PHONY: check-infra
check-infra: setup $(INFRA_STAMP)
	@if command -v terraform >/dev/null 2>&1; then \
	  terraform fmt -check -recursive -diff terraform; \
	else \
	  echo "check-infra: terraform not found: skipped 'terraform fmt -check' (install terraform >= 1.5 to run it)" >&2; \
	fi
	$(INFRA_VENV)/bin/checkov --directory terraform --skip-download --quiet --compact
	$(BIN)/pytest -q tests/infra/test_terraform.py tests/infra/test_deploy.py

$(INFRA_STAMP): Makefile
	@test -x $(INFRA_VENV)/bin/python || $(PYTHON) -m venv $(INFRA_VENV)
	@echo '*' > $(INFRA_VENV)/.gitignore
	$(INFRA_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(INFRA_VENV)/bin/python -m pip install --quiet 'checkov==$(CHECKOV_VERSION)'
	@touch $@
