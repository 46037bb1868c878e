"""Where and how training computes: the precision policy (``--precision``) and the
``tf.distribute`` strategy (``--distribute``, ``--devices``).

- ``precision="mixed"``: ``mixed_float16`` on a GPU, ``mixed_bfloat16`` on a CPU with bfloat16
  instructions (AVX512-BF16 or AMX), else float32 with a note. Layers compute in the low
  precision and keep float32 variables; the output layer (``recipes._common.output_layer``)
  and the loss stay float32.
- ``distribute="mirrored"``: ``tf.distribute.MirroredStrategy`` over the visible GPUs, or over
  ``devices`` logical CPU devices (how tests and a laptop try it). ``--batch-size`` is the
  global batch, split over the replicas.
- ``distribute="multi-worker"`` is refused with the reason: Keras 3's ``Model.fit`` fails under
  ``tf.distribute.MultiWorkerMirroredStrategy`` ("Attempt to convert a value (PerReplica…) to a
  Tensor"; keras-team/keras#20585, tensorflow/tensorflow#72388, still open with Keras 3.15 and
  TensorFlow 2.20, checked here with two local workers). labkit does not replace ``fit`` with a
  loop of its own.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from labkit.errors import LabkitError

PRECISIONS = ("float32", "mixed")
DISTRIBUTE = ("none", "mirrored", "multi-worker")


def check(precision: str, distribute: str, devices: int | None) -> None:
    """The options checked before anything starts; a LabkitError names the bad one."""
    if precision not in PRECISIONS:
        raise LabkitError(f"--precision must be one of {', '.join(PRECISIONS)}. "
                          f"Received: {precision!r}")
    if distribute not in DISTRIBUTE:
        raise LabkitError(f"--distribute must be one of {', '.join(DISTRIBUTE)}. "
                          f"Received: {distribute!r}")
    if devices is not None:
        if isinstance(devices, bool) or not isinstance(devices, int) or devices < 1:
            raise LabkitError(f"--devices must be an integer >= 1. Received: {devices!r}")
        if distribute != "mirrored":
            raise LabkitError("--devices applies to --distribute mirrored (logical CPU devices).")
    if distribute == "multi-worker":
        raise LabkitError("--distribute multi-worker is not available: Keras 3's Model.fit "
                          "fails under tf.distribute.MultiWorkerMirroredStrategy "
                          "(keras-team/keras#20585). Use --distribute mirrored on one machine "
                          "with several GPUs.")


def cpu_supports_bfloat16() -> bool:
    """Whether this CPU has bfloat16 instructions (Linux's /proc/cpuinfo flags)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def has_gpu() -> bool:
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return bool(tf.config.list_physical_devices("GPU"))
    if keras.backend.backend() == "jax":
        import jax

        return any(d.platform == "gpu" for d in jax.devices())
    if keras.backend.backend() == "torch":
        import torch

        return torch.cuda.is_available()
    return False


def policy_for(precision: str) -> tuple[str, str | None]:
    """``(Keras dtype policy, note)`` for ``precision`` on this machine."""
    if precision == "float32":
        return "float32", None
    if has_gpu():
        return "mixed_float16", None
    if cpu_supports_bfloat16():
        return "mixed_bfloat16", None
    return "float32", ("--precision mixed: this CPU has no bfloat16 instructions and there is no "
                       "GPU; training in float32.")


@contextlib.contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Keras's global dtype policy set to ``name`` while models are built and compiled, and put
    back afterwards (the layers keep theirs)."""
    import keras

    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def strategy(distribute: str, devices: int | None = None):
    """The ``tf.distribute`` strategy of ``distribute`` (None for ``none``).

    ``devices`` logical CPU devices are made first; TensorFlow allows that only before it has
    run anything, so in a Python session call this (through ``labkit.train``) first.
    """
    if distribute == "none":
        return None
    import keras

    if keras.backend.backend() != "tensorflow":
        raise LabkitError(f"--distribute {distribute} uses tf.distribute: it needs Keras's "
                          f"TensorFlow backend (KERAS_BACKEND is {keras.backend.backend()}).")
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")  # listing logical ones would start TF
    if gpus and devices is None:
        return tf.distribute.MirroredStrategy()
    count = devices or 1
    cpu = tf.config.list_physical_devices("CPU")[0]
    wanted = [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
    try:
        if len(tf.config.get_logical_device_configuration(cpu) or [None]) != count:
            tf.config.set_logical_device_configuration(cpu, wanted)
    except RuntimeError:
        have = len(tf.config.get_logical_device_configuration(cpu) or [None])
        raise LabkitError(f"--devices {count}: TensorFlow has already started with {have} CPU "
                          "device(s); logical devices can only be made before it runs anything "
                          "(start a new process).") from None
    return tf.distribute.MirroredStrategy([d.name for d in
                                           tf.config.list_logical_devices("CPU")[:count]])


def scope(strat) -> contextlib.AbstractContextManager:
    """``strat.scope()``, or nothing for no strategy."""
    return strat.scope() if strat is not None else contextlib.nullcontext()


@dataclass(frozen=True)
class Placement:
    """Where a run trains: its strategy (None: the default device), dtype policy, and the
    replicas a global batch is split over."""

    strategy: object
    policy: str
    replicas: int


@contextlib.contextmanager
def placed(precision: str, distribute: str, devices: int | None, echo=print,
           policy: str | None = None) -> Iterator[Placement]:
    """Build, compile and fit inside this: the strategy's scope and the dtype policy
    (``policy`` given: a resumed run's, else the one ``precision`` picks here)."""
    strat = strategy(distribute, devices)
    if policy is None:
        policy, note = policy_for(precision)
        if note:
            echo(note)
    replicas = strat.num_replicas_in_sync if strat is not None else 1
    with scope(strat), dtype_policy(policy):
        yield Placement(strat, policy, replicas)
