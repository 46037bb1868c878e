#!/usr/bin/env bash
# The MNIST-scale benchmark on a machine with an NVIDIA GPU: labkit against the keras-io convnet
# script under every Keras backend that is installed (TensorFlow and/or JAX), in float32 and
# with --precision mixed (float16 on the GPU). Run from the repository root:
#     bash bench/gpu.sh [EPOCHS] [REPEAT]
# Needs labkit's dependencies importable (pip install -e ".[gpu]" or ".[jax]"); TensorFlow is
# not needed for the JAX backend.
set -u
EPOCHS=${1:-3}
REPEAT=${2:-2}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"
for backend in tensorflow jax; do
  module=$backend
  if ! $PY -c "import $module" 2>/dev/null; then
    echo "== $backend: not installed, skipped"
    continue
  fi
  echo "== KERAS_BACKEND=$backend"
  KERAS_BACKEND=$backend $PY -c "import keras; print('devices:', keras.backend.backend(), \
    __import__('$module').__version__)"
  KERAS_BACKEND=$backend $PY bench/bench_mnist.py --epochs "$EPOCHS" --repeat "$REPEAT" \
    --precision mixed || echo "== $backend: the benchmark failed"
done
