PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.DEFAULT_GOAL := help
.PHONY: help install test test-all lint train-digits bench

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-18s %s\n", $$1, $$2}'

install: ## create .venv and install labkit with its dev extra
	$(PYTHON) -m venv $(VENV) && $(BIN)/pip install -q --upgrade pip && $(BIN)/pip install -q -e ".[dev]"

test: ## run the default (fast) test suite
	$(BIN)/pytest -q

test-all: ## run every test, the slow ones too
	$(BIN)/pytest -q -m ""

lint: ## ruff over the code
	$(BIN)/ruff check labkit recipes tests bench

train-digits: ## the main job: train the course CNN on bundled digits, offline
	$(BIN)/labkit train cnn --dataset digits

bench: ## labkit vs plain Keras on the same data, as ratios
	$(BIN)/python bench/bench_train.py
