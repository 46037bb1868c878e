PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Where the lab targets write (make lab-momentum LABS_OUT=/tmp/labs).
LABS_OUT ?= labs
# Made by a finished install; older than pyproject.toml means the environment is out of date.
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install install-latest lock browser test test-slow test-all lint train-digits bench bench-mnist pictures notebooks labs labs-check playground bench-playground

help: ## list the targets
	@grep -hE '^[a-zA-Z_%-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-25s %s\n", $$1, $$2}'

# The versions last tested (pip freeze of a passing .venv): every student gets the same ones.
LOCK   := requirements.lock

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV) && $(BIN)/pip install -q --upgrade pip && $(BIN)/pip install -q -c $(LOCK) -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) ## create .venv and install labkit with its dev extra, at the locked versions (other targets do it when needed)

install-latest: ## upgrade .venv to the newest releases pyproject.toml allows (to try them; then make test, make lock)
	$(PYTHON) -m venv $(VENV) && $(BIN)/pip install -q --upgrade pip && $(BIN)/pip install -q --upgrade -e ".[dev]"
	touch $(STAMP)

lock: ## write requirements.lock from .venv (pip freeze): run after make install-latest and make test pass
	{ head -2 $(LOCK); $(BIN)/pip freeze --exclude-editable | sort -f; } > $(LOCK).new && mv $(LOCK).new $(LOCK)

test: $(STAMP) ## run the default (fast) test suite, on two processes
	$(BIN)/pytest -q -n 2

# Debian's Chromium and its driver, for the playground page's browser test (a browser cannot be
# downloaded here; Debian's packages can). Needs root or sudo the first time.
browser: ## install headless Chromium + chromedriver from Debian when missing
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  { SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); $$SUDO apt-get update -q && \
	    $$SUDO apt-get install -y -q chromium chromium-driver; }

test-slow: $(STAMP) browser ## run only the slow tests (subprocess kills, VGG16 runs, the browser)
	$(BIN)/pytest -q -n 2 -m slow

test-all: $(STAMP) browser ## run every test, the slow ones too
	$(BIN)/pytest -q -n 2 -m ""

lint: $(STAMP) ## ruff over the code
	$(BIN)/ruff check labkit recipes tests bench

train-digits: $(STAMP) ## the main job: train the course CNN on bundled digits, offline
	$(BIN)/labkit train cnn --dataset digits

bench: $(STAMP) ## labkit vs plain Keras on the same data, as ratios: conv- and dispatch-bound, TensorFlow and JAX (~4 min)
	$(BIN)/python bench/bench_train.py --table

bench-playground: $(STAMP) ## the playground page's training and heatmap speed vs plain Keras fit
	$(BIN)/python bench/bench_playground.py

playground: $(STAMP) ## the TensorFlow Playground page on http://127.0.0.1:8765/
	$(BIN)/labkit playground --open

bench-mnist: $(STAMP) ## labkit vs the keras-io MNIST convnet script at MNIST scale (~10 min)
	$(BIN)/python bench/bench_mnist.py

pictures: $(STAMP) browser ## the README's pictures (docs/pictures/): explain on a cnn trained on bundled digits, the playground page, a notebook
	rm -rf /tmp/labkit-pictures && mkdir -p /tmp/labkit-pictures
	$(BIN)/python -c "import numpy as np; from sklearn.datasets import load_digits; np.savez('/tmp/labkit-pictures/digits.npz', x=load_digits().images[-8:].astype('uint8'))"
	$(BIN)/labkit train cnn --dataset digits --epochs 15 --runs-dir /tmp/labkit-pictures --name cnn
	$(BIN)/labkit explain /tmp/labkit-pictures/cnn /tmp/labkit-pictures/digits.npz --out docs/pictures
	$(BIN)/labkit explain /tmp/labkit-pictures/cnn /tmp/labkit-pictures/digits.npz --method activations --layer block1_conv --out docs/pictures
	$(BIN)/labkit explain /tmp/labkit-pictures/cnn --method filters --layer block2_conv --out docs/pictures
	LABKIT_ARTIFACTS=/tmp/labkit-pictures $(BIN)/pytest -q -m slow tests/test_playground_browser.py
	cp /tmp/labkit-pictures/playground.png docs/pictures/playground.png
	LABKIT_ARTIFACTS=/tmp/labkit-pictures $(BIN)/pytest -q -m slow tests/test_notebooks.py -k "top_to_bottom and optimisation"
	cp /tmp/labkit-pictures/notebook.png docs/pictures/notebook.png

notebooks: $(STAMP) ## build the course's notebooks (labkit/notebooks/*.ipynb) from their percent scripts
	$(BIN)/python -m labkit.notebooks

labs: $(STAMP) ## run every lab, full versions (about 15 min on 2 cores); results in labs/ (LABS_OUT)
	$(BIN)/labkit lab run all --out $(LABS_OUT)

labs-check: $(STAMP) ## every lab's full version for seeds 0, 1 and 2, one verdict each (about 40 min)
	$(BIN)/labkit lab run all --seeds 0,1,2 --out $(LABS_OUT)/check

lab-%: $(STAMP) ## run one lab, e.g. make lab-momentum (`labkit lab list` names them all)
	$(BIN)/labkit lab run $* --out $(LABS_OUT)/$*
