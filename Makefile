# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
CHROMIUM ?= /usr/bin/chromium

.PHONY: install run test test-deps clean

$(BIN)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

install: $(BIN)/.installed

# The real clients the tests drive: npm packages (pinned in package-lock.json, Node 22 included)
# and Debian's chromium for the browser tests.
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	else \
		echo "The browser tests need Debian's chromium: sudo apt-get install chromium" >&2; exit 1; \
	fi

test-deps: install node_modules/.installed $(CHROMIUM)

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py ensure_user
	$(BIN)/daphne -b $(HOST) -p $(PORT) mcpsite.asgi:application

test: test-deps
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) var .pytest_cache node_modules test-artifacts
