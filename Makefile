PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.DEFAULT_GOAL := help
.PHONY: help install test test-slow test-all lint train-digits bench labs lab-gd-vs-sgd lab-learning-rate lab-lr-schedule lab-momentum lab-vanishing-gradients lab-initialization lab-adaptive-optimizers lab-weight-decay lab-dropout lab-early-stopping lab-augmentation lab-ensemble lab-convolution lab-padding-stride lab-parameter-sharing lab-transfer lab-residual lab-playground

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-25s %s\n", $$1, $$2}'

install: ## create .venv and install labkit with its dev extra
	$(PYTHON) -m venv $(VENV) && $(BIN)/pip install -q --upgrade pip && $(BIN)/pip install -q -e ".[dev]"

test: ## run the default (fast) test suite
	$(BIN)/pytest -q

test-slow: ## run only the slow tests (subprocess kills, VGG16 runs, heavier labs)
	$(BIN)/pytest -q -m slow

test-all: ## run every test, the slow ones too
	$(BIN)/pytest -q -m ""

lint: ## ruff over the code
	$(BIN)/ruff check labkit recipes tests bench

train-digits: ## the main job: train the course CNN on bundled digits, offline
	$(BIN)/labkit train cnn --dataset digits

bench: ## labkit vs plain Keras on the same data, as ratios
	$(BIN)/python bench/bench_train.py

labs: ## run every lab, full versions (about 15 min on 2 cores); results in labs/
	$(BIN)/labkit lab run all

lab-gd-vs-sgd: ## lab: gradient variance and cost per step vs batch size
	$(BIN)/labkit lab run gd-vs-sgd

lab-learning-rate: ## lab: too small, good and too large learning rates
	$(BIN)/labkit lab run learning-rate

lab-lr-schedule: ## lab: constant vs decaying learning rate near a minimum
	$(BIN)/labkit lab run lr-schedule

lab-momentum: ## lab: SGD vs momentum in a narrow canyon (fig. 8.5)
	$(BIN)/labkit lab run momentum

lab-vanishing-gradients: ## lab: per-layer gradient norms, deep sigmoid vs ReLU
	$(BIN)/labkit lab run vanishing-gradients

lab-initialization: ## lab: equal, too large and small random start values
	$(BIN)/labkit lab run initialization

lab-adaptive-optimizers: ## lab: SGD, momentum, RMSProp, Adam on one CNN
	$(BIN)/labkit lab run adaptive-optimizers

lab-weight-decay: ## lab: L2 and L1 penalties: norms, sparsity, gap
	$(BIN)/labkit lab run weight-decay

lab-dropout: ## lab: dropout on a small training set
	$(BIN)/labkit lab run dropout

lab-early-stopping: ## lab: the validation curve, stopping point, restored weights
	$(BIN)/labkit lab run early-stopping

lab-augmentation: ## lab: small image set with and without augmentation
	$(BIN)/labkit lab run augmentation

lab-ensemble: ## lab: K networks vs each member
	$(BIN)/labkit lab run ensemble

lab-convolution: ## lab: hand-computed convolution equals Conv2D/Conv1D
	$(BIN)/labkit lab run convolution

lab-padding-stride: ## lab: output sizes with padding/stride; pooling and shifts
	$(BIN)/labkit lab run padding-stride

lab-parameter-sharing: ## lab: CNN vs dense net: parameters and accuracy
	$(BIN)/labkit lab run parameter-sharing

lab-transfer: ## lab: pretrained conv base vs from scratch on few examples
	$(BIN)/labkit lab run transfer

lab-residual: ## lab: deep plain net vs skip connections
	$(BIN)/labkit lab run residual

lab-playground: ## lab: circle, xor, spiral with and without engineered features
	$(BIN)/labkit lab run playground
