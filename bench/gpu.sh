#!/usr/bin/env bash
# The benchmarks on a machine with an NVIDIA GPU: the MNIST-scale one (labkit against the keras-io
# convnet script, float32 and --precision mixed, i.e. float16 on the GPU) and the VGG16 head
# phase, under every Keras backend that is installed (TensorFlow, JAX, PyTorch). From the
# repository root:
#     bash bench/gpu.sh [EPOCHS] [REPEAT] [BACKEND...]
# Needs labkit's dependencies importable (pip install -e ".[gpu]" or ".[jax]"); TensorFlow is
# not needed for the JAX and PyTorch backends.
set -u
EPOCHS=${1:-3}
REPEAT=${2:-2}
shift $(( $# < 2 ? $# : 2 ))
BACKENDS=${*:-tensorflow jax torch}
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=2
# labkit found on PYTHONPATH rather than installed has no entry points: name the recipes.
export LABKIT_RECIPES=${LABKIT_RECIPES:-recipes}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"
for backend in $BACKENDS; do
  if ! $PY -c "import $backend" 2>/dev/null; then
    echo "== $backend: not installed, skipped"
    continue
  fi
  echo "== KERAS_BACKEND=$backend"
  export KERAS_BACKEND=$backend
  $PY -c "import keras, $backend; from labkit.devices import has_gpu, policy_for; \
print('Keras', keras.__version__, 'on $backend', $backend.__version__, '| GPU:', has_gpu(), \
'| --precision mixed ->', policy_for('mixed')[0])"
  ALSO=()  # JAX: also Keras's data-parallel distribution over this machine's GPUs
  [ "$backend" = jax ] && ALSO=(--also "--distribute data-parallel")
  $PY bench/bench_mnist.py --epochs "$EPOCHS" --repeat "$REPEAT" --precision mixed "${ALSO[@]}" \
    || echo "== $backend: the MNIST benchmark failed"
  $PY bench/bench_vgg16.py --images 400 --epochs "$EPOCHS" \
    || echo "== $backend: the VGG16 benchmark failed"
done
