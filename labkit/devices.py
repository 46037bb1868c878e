"""Where and how training computes: the precision policy (``--precision``) and the
``tf.distribute`` strategy (``--distribute``, ``--devices``).

- ``precision="mixed"``: ``mixed_float16`` on a GPU, ``mixed_bfloat16`` on a CPU with bfloat16
  instructions (AVX512-BF16 or AMX), else float32 with a note. Layers compute in the low
  precision and keep float32 variables; the output layer (``recipes._common.output_layer``)
  and the loss stay float32.
- ``distribute="mirrored"``: ``tf.distribute.MirroredStrategy`` over the visible GPUs, or over
  ``devices`` logical CPU devices (how tests and a laptop try it). ``--batch-size`` is the
  global batch, split over the replicas.
- ``distribute="data-parallel"`` (JAX backend): ``keras.distribution.DataParallel`` over every
  device of every process of the run's :class:`~labkit.processes.ProcessGroup` (one process:
  its local devices, or ``devices`` CPU devices). Each process feeds its share of every global
  batch; ``--batch-size`` is the global batch.
- ``distribute="multi-worker"`` is refused with the reason: Keras 3's ``Model.fit`` fails under
  ``tf.distribute.MultiWorkerMirroredStrategy`` ("Attempt to convert a value (PerReplica…) to a
  Tensor"; keras-team/keras#20585, tensorflow/tensorflow#72388, still open with Keras 3.15 and
  TensorFlow 2.20, checked here with two local workers); data-parallel is the way across
  processes and machines. labkit does not replace ``fit`` with a loop of its own.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from labkit.errors import LabkitError

PRECISIONS = ("float32", "mixed")
# Data-parallel: how long a process waits for the others to join (and to finish), and after how
# many seconds without a heartbeat a process that died ends the others with an error.
JOIN_SECONDS, HEARTBEAT_SECONDS = ("LABKIT_JOIN_SECONDS", 120), ("LABKIT_HEARTBEAT_SECONDS", 30)


def seconds(setting: tuple[str, int]) -> int:
    """A ``(variable, default)`` wait in whole seconds, read when it is needed; a bad value is
    a LabkitError naming the variable."""
    name, default = setting
    text = os.environ.get(name, "").strip() or str(default)
    if not text.isdigit() or int(text) < 1:
        raise LabkitError(f"${name} must be a whole number of seconds >= 1. Received: {text!r}")
    return int(text)
DISTRIBUTE = ("none", "mirrored", "data-parallel", "multi-worker")


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
        if distribute not in ("mirrored", "data-parallel"):
            raise LabkitError("--devices applies to --distribute mirrored or data-parallel "
                              "(logical CPU devices).")
    if distribute == "multi-worker":
        raise LabkitError("--distribute multi-worker is not available: Keras 3's Model.fit "
                          "fails under tf.distribute.MultiWorkerMirroredStrategy "
                          "(keras-team/keras#20585). Across processes and machines use "
                          "--distribute data-parallel with KERAS_BACKEND=jax (keras.distribution; "
                          "labkit launch starts the processes); on one machine with several "
                          "GPUs, --distribute mirrored.")


def cpu_supports_bfloat16() -> bool:
    """Whether this CPU has bfloat16 instructions (Linux's /proc/cpuinfo flags)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def listing() -> list[dict]:
    """This machine's devices as the Keras backend sees them: name, kind (cpu/gpu) and the
    precisions ``--precision`` can use there (``mixed`` means bfloat16 on a CPU with its
    instructions, float16 on a GPU)."""
    import keras

    backend = keras.backend.backend()
    found: list[tuple[str, str]] = []
    if backend == "tensorflow":
        import tensorflow as tf

        found = [(d.name.removeprefix("/physical_device:"), d.device_type.lower())
                 for d in tf.config.list_physical_devices() if d.device_type in ("CPU", "GPU")]
    elif backend == "jax":
        import jax

        found = [(str(d), "gpu" if d.platform == "gpu" else "cpu") for d in jax.devices()]
    elif backend == "torch":
        import torch

        found = [("cpu", "cpu")] + [(f"cuda:{i} ({torch.cuda.get_device_name(i)})", "gpu")
                                    for i in range(torch.cuda.device_count())]
    bf16 = cpu_supports_bfloat16()
    return [{"device": name, "kind": kind, "backend": backend,
             "precisions": ["float32", "mixed (float16)"] if kind == "gpu" else
             (["float32", "mixed (bfloat16)"] if bf16 else ["float32"])}
            for name, kind in found]


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


# What --precision mixed measured on a CPU with bfloat16 instructions (README, "Speed and
# scale": bench/bench_mnist.py, the MNIST-scale convnet, steady images/s against float32).
BF16_SPEEDUP = "~1.6×"


def faster_path(precision: str) -> str | None:
    """One line when a faster path is here and off: ``--precision float32`` on a CPU that
    computes bfloat16. (Not for a GPU: there mixed means float16, which measured no faster
    than float32 on the H200 in the README.)"""
    if precision == "float32" and cpu_supports_bfloat16() and not has_gpu():
        return (f"note: this CPU computes bfloat16; --precision mixed trained {BF16_SPEEDUP} "
                f"faster on such a CPU (the MNIST-scale convnet, README \"Speed and scale\"). "
                f"float32 stays the default: the labs' numbers were measured in it.")
    return None


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
    """Where a run trains: its strategy (None: the default device), dtype policy, the replicas
    a global batch is split over, and, data-parallel, this process's place in the group (its
    ``process_id`` of ``processes``, with ``local_devices`` of the replicas)."""

    strategy: object
    policy: str
    replicas: int
    process_id: int = 0
    processes: int = 1
    local_devices: int = 1

    @property
    def main(self) -> bool:
        """Whether this process writes the run directory (process 0)."""
        return self.process_id == 0


@contextlib.contextmanager
def placed(precision: str, distribute: str, devices: int | None, echo=print,
           policy: str | None = None, group=None) -> Iterator[Placement]:
    """Build, compile and fit inside this: the strategy's scope (or, data-parallel, Keras's
    distribution over the process ``group``'s devices) and the dtype policy (``policy``
    given: a resumed run's, else the one ``precision`` picks here)."""
    if group is not None and distribute != "data-parallel":
        raise LabkitError(f"A process group ({group.source}: {group.num_processes} processes) "
                          "trains with --distribute data-parallel; this run has --distribute "
                          f"{distribute}.")
    if policy is None:
        policy, note = policy_for(precision)
        if note:
            echo(note)
    if distribute == "data-parallel":
        with data_parallel(devices, group) as place, dtype_policy(policy):
            yield Placement(None, policy, *place)
        return
    strat = strategy(distribute, devices)
    replicas = strat.num_replicas_in_sync if strat is not None else 1
    with scope(strat), dtype_policy(policy):
        yield Placement(strat, policy, replicas)


@contextlib.contextmanager
def data_parallel(devices: int | None, group=None) -> Iterator[tuple[int, int, int, int]]:
    """Keras's ``DataParallel`` distribution over every device of every process of ``group``
    (None: this process's devices; ``devices``: that many CPU devices) while inside; yields
    ``(replicas, process_id, processes, local_devices)``. Joining the group waits for every
    process to start; a coordinator that cannot be reached is a LabkitError."""
    import keras

    if keras.backend.backend() != "jax":
        raise LabkitError("--distribute data-parallel uses keras.distribution, which runs on "
                          f"the JAX backend: set KERAS_BACKEND=jax (it is "
                          f"{keras.backend.backend()}).")
    import jax

    if devices is not None:
        _cpu_devices(jax, devices)
    if group is not None and not jax.distributed.is_initialized():
        join = seconds(JOIN_SECONDS)
        if not group.main:  # JAX aborts the process on an unreachable coordinator: ask first
            _wait_for(group.coordinator, join, group.process_id)
        try:  # what keras.distribution.initialize does, with bounded waits
            jax.distributed.initialize(group.coordinator, group.num_processes, group.process_id,
                                       initialization_timeout=join,
                                       heartbeat_timeout_seconds=seconds(HEARTBEAT_SECONDS),
                                       shutdown_timeout_seconds=join)
        except Exception as err:  # noqa: BLE001 — JAX raises RuntimeError, XlaRuntimeError…
            raise LabkitError(f"Could not join the process group at {group.coordinator} as "
                              f"process {group.process_id} of {group.num_processes}: "
                              f"{str(err).strip().splitlines()[0][:300]}") from None
    everywhere = keras.distribution.list_devices()
    previous = keras.distribution.distribution()
    keras.distribution.set_distribution(keras.distribution.DataParallel(
        devices=everywhere, auto_shard_dataset=False))  # labkit feeds each process its share
    try:
        yield (len(everywhere), jax.process_index(), jax.process_count(),
               jax.local_device_count())
    finally:
        keras.distribution.set_distribution(previous)


def _wait_for(coordinator: str, seconds: float, process_id: int) -> None:
    """Until ``coordinator`` (HOST:PORT) accepts a connection, for at most ``seconds``; a
    LabkitError if it never does."""
    import socket
    import time

    host, _, port = coordinator.rpartition(":")
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=2):
                return
        except OSError as err:
            if time.monotonic() >= deadline:
                raise LabkitError(f"Could not join the process group at {coordinator} as "
                                  f"process {process_id}: nothing answered there in "
                                  f"{seconds:g} s ({err.strerror or err}). Start process 0 "
                                  "first, and check the address and the firewall.") from None
            time.sleep(0.5)


def _cpu_devices(jax, count: int) -> None:
    """``count`` CPU devices for JAX; possible only before JAX has started its CPU backend."""
    if jax.config.jax_num_cpu_devices == count:
        return
    try:
        jax.config.update("jax_num_cpu_devices", count)
    except RuntimeError:
        raise LabkitError(f"--devices {count}: JAX has already started with "
                          f"{jax.local_device_count()} device(s); start a new process.") from None
