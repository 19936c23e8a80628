# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test test-fast lint format test-deps system-packages clean

$(BIN)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

install: $(BIN)/.installed

# The real clients the tests drive: npm packages (pinned in package-lock.json, Node 22 included).
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Debian packages the tests start for real: each needed file and the package that brings it.
SYSTEM_PACKAGES := /usr/bin/chromium:chromium /usr/bin/redis-server:redis-server \
	/usr/sbin/nginx:nginx /usr/lib/postgresql/15/bin/postgres:postgresql
MISSING_PACKAGES = $(foreach entry,$(SYSTEM_PACKAGES),$(if $(wildcard $(firstword $(subst :, ,$(entry)))),,$(lastword $(subst :, ,$(entry)))))

system-packages:
	@missing="$(strip $(MISSING_PACKAGES))"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		else \
			echo "The tests need these Debian packages: sudo apt-get install $$missing" >&2; exit 1; \
		fi; \
	fi

test-deps: install node_modules/.installed system-packages

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ensure_user
	$(BIN)/python -m mcpsite.serve -b $(HOST) -p $(PORT) mcpsite.asgi:application

# Everything: lint, then every test, live servers, real clients and services included (what CI runs).
test: test-deps lint
	$(BIN)/python -m pytest

# The tests that need no live server process and no system service (about a minute; no root, no npm).
test-fast: install lint
	$(BIN)/python -m pytest -m "not live and not services"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var .pytest_cache node_modules test-artifacts

# Benchmarks (bench/run.py, about 10 minutes): this server beside the mcp SDK's reference server
# and a bare Channels consumer, on loopback; prints a Markdown table and writes it to bench/results/.
.PHONY: bench
bench: install
	$(BIN)/pip install --quiet -r bench/requirements.txt
	$(BIN)/python bench/run.py

# Soak (bench/soak.py, MINUTES=10 by default): 200 sessions over both transports against one worker,
# with tool calls, reconnects and token refreshes; errors, memory and FDs over time to bench/results/.
# TRACEMALLOC=4: the server traces its allocations (4 frames) and the report says what grew between
# minute 3 and the end, line by line (0, the default: off).
MINUTES ?= 10
TRACEMALLOC ?= 0
.PHONY: soak
soak: install
	$(BIN)/pip install --quiet -r bench/requirements.txt
	$(BIN)/python bench/soak.py --minutes $(MINUTES) --tracemalloc $(TRACEMALLOC)

# The admin's dashboard, audit list and CSV export over a million audit rows (bench/dashboard.py, about
# 4 minutes), on SQLite and on a throw-away PostgreSQL (Debian's postgresql); tables to bench/results/
# and docs/performance.md.
.PHONY: bench-dashboard
bench-dashboard: install
	$(BIN)/python bench/dashboard.py


# The audit's durability settings each way (bench/durability.py, about 6 minutes): this server with
# SQLITE_SYNCHRONOUS=normal, =full, and MCP_AUDIT_WAIT_FOR_COMMIT=0 beside the SDK reference; a table
# to bench/results/.
.PHONY: bench-durability
bench-durability: install
	$(BIN)/pip install --quiet -r bench/requirements.txt
	$(BIN)/python bench/durability.py
