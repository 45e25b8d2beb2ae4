# The README's two commands: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test install system-deps lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "degreeflow needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP) system-deps

## System packages on Debian: CJK fonts, HarfBuzz subsetting (fast, small PDFs), pdftoppm and Chromium (tests).
SYSTEM_PACKAGES := fonts-noto-cjk libharfbuzz-subset0 poppler-utils chromium
system-deps:
	@missing=""; \
	fc-list 2>/dev/null | grep -q "Noto Serif CJK SC" || missing="$$missing fonts-noto-cjk"; \
	ldconfig -p 2>/dev/null | grep -q "libharfbuzz-subset.so.0" || missing="$$missing libharfbuzz-subset0"; \
	command -v pdftoppm >/dev/null 2>&1 || missing="$$missing poppler-utils"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    echo "Installing:$$missing"; \
	    (apt-get install -y -qq $$missing >/dev/null 2>&1 || (apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null)); \
	  else \
	    echo "Please install:$$missing (e.g. sudo apt-get install$$missing)"; \
	  fi; \
	fi

## make run: install, initialise the SQLite database with demo data (once), serve the web application
## (with the deadline scheduler in the same process) and print the address and the demo accounts
run: install
	$(BIN)/degreeflow db upgrade
	$(BIN)/degreeflow init --demo
	$(BIN)/degreeflow serve --demo

## make test: install and run the whole suite (SQLite and PostgreSQL)
test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python bench/bench_fire.py

clean:
	rm -rf $(VENV) var .pytest_cache .hypothesis
