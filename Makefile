# Music Studio: `make run` opens the app, `make test` checks everything.
# `make setup` is idempotent: system packages are installed only when missing, and the
# Python environment is reinstalled only when requirements.txt changes.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.requirements.stamp
# FluidSynth + a General MIDI soundfont render MIDI; Chromium runs the browser test;
# MuseScore 3 and LilyPond engrave the score reader's training and benchmark pages.
SYSTEM_PACKAGES := libfluidsynth3 fluid-soundfont-gm chromium musescore3 lilypond
HOST ?= 127.0.0.1
PORT ?= 8501

.PHONY: setup system run test lint clean help

help:
	@echo "make run    start the studio at http://$(HOST):$(PORT)"
	@echo "make test   lint and run the test suite"
	@echo "make lint   ruff check"
	@echo "make setup  system packages (as root) + .venv from requirements.txt"

setup: system $(STAMP)
	@$(BIN)/python -c "from engine.models.generator import compile_sampler; compile_sampler()"

# Installs only what is missing; without root it prints what to install and carries on.
system:
	@missing=""; \
	if command -v dpkg-query >/dev/null 2>&1; then \
		for pkg in $(SYSTEM_PACKAGES); do \
			dpkg-query -W -f='$${Status}' "$$pkg" 2>/dev/null | grep -q "ok installed" \
				|| missing="$$missing $$pkg"; \
		done; \
		if [ -n "$(PYTHON)" ] && ! "$(PYTHON)" -c "import ensurepip, venv" >/dev/null 2>&1; then \
			missing="$$missing python3-venv"; \
		fi; \
	else \
		echo "note: not a Debian-like system; make sure FluidSynth, a GM soundfont, Chromium, MuseScore 3 and LilyPond are installed."; \
	fi; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then \
		echo "installing system packages:$$missing"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
	else \
		echo "warning: missing system packages:$$missing"; \
		echo "  install them with: sudo apt-get install -y$$missing"; \
		echo "  (the studio still starts; rendering MIDI needs FluidSynth, the browser test needs Chromium)"; \
	fi

$(STAMP): requirements.txt
	@if [ -z "$(PYTHON)" ]; then echo "error: python3.11 or python3 is needed" >&2; exit 1; fi
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $@

run: setup
	$(BIN)/streamlit run streamlit_app.py --server.address $(HOST) --server.port $(PORT)

lint: setup
	$(BIN)/ruff check .

test: lint
	$(BIN)/pytest -q

clean:
	rm -rf .pytest_cache .ruff_cache
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
