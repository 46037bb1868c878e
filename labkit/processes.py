"""The process group of a data-parallel run: which process this is, how many there are, where
process 0 listens (``--distribute data-parallel``, JAX backend), and what the processes do
differently (:func:`scratch_folder`, :func:`check_divisible`, :func:`trimmed`).

It comes, first found first, from the options (``--coordinator HOST:PORT --num-processes N
--process-id I``), from the variables Keras itself reads (``KERAS_DISTRIBUTION_JOB_ADDRESSES``,
``KERAS_DISTRIBUTION_NUM_PROCESSES``, ``KERAS_DISTRIBUTION_PROCESS_ID``; ``labkit launch`` sets
them), or from Slurm's (``SLURM_NTASKS``, ``SLURM_PROCID``, the first host of
``SLURM_STEP_NODELIST``/``SLURM_JOB_NODELIST``, port :data:`SLURM_PORT` or
``$LABKIT_COORDINATOR_PORT``), so ``srun labkit train ...`` works as written. Nothing found, or
one process: the run is a single process over its local devices.
"""

from __future__ import annotations

import atexit
import dataclasses
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from labkit.errors import LabkitError

KERAS_VARIABLES = ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
                   "KERAS_DISTRIBUTION_PROCESS_ID")
SLURM_PORT = 12355  # where process 0 listens under Slurm unless $LABKIT_COORDINATOR_PORT says


@dataclass(frozen=True)
class ProcessGroup:
    """Several processes training one model: ``process_id`` of ``num_processes``, process 0
    listening at ``coordinator`` (``HOST:PORT``); ``source`` says where that came from."""

    coordinator: str
    num_processes: int
    process_id: int
    source: str = "options"

    @property
    def main(self) -> bool:
        """Whether this is process 0, the one that writes the run directory."""
        return self.process_id == 0

    def environment(self) -> dict[str, str]:
        """The variables that give a child process this group (what ``labkit launch`` sets)."""
        return dict(zip(KERAS_VARIABLES, (self.coordinator, str(self.num_processes),
                                          str(self.process_id)), strict=True))


def resolve(coordinator: str | None = None, num_processes: int | None = None,
            process_id: int | None = None,
            environ: Mapping[str, str] | None = None) -> ProcessGroup | None:
    """The process group from the options, else Keras's variables, else Slurm's (see the
    module's description); None for a single process. Bad settings are a LabkitError naming
    them."""
    environ = os.environ if environ is None else environ
    given = {"--coordinator": coordinator, "--num-processes": num_processes,
             "--process-id": process_id}
    if any(v is not None for v in given.values()):
        return _checked(coordinator, num_processes, process_id, "options", given)
    keras_values = [environ.get(name) for name in KERAS_VARIABLES]
    if any(keras_values):
        named = dict(zip(KERAS_VARIABLES, keras_values, strict=True))
        address = (keras_values[0] or "").split(",")[0].strip() or None
        return _checked(address, _number(keras_values[1], KERAS_VARIABLES[1]),
                        _number(keras_values[2], KERAS_VARIABLES[2]), "Keras's variables", named)
    tasks = environ.get("SLURM_NTASKS") or environ.get("SLURM_NPROCS")
    if tasks and int(_number(tasks, "SLURM_NTASKS") or 1) > 1:
        nodes = environ.get("SLURM_STEP_NODELIST") or environ.get("SLURM_JOB_NODELIST") or ""
        port = environ.get("LABKIT_COORDINATOR_PORT") or str(SLURM_PORT)
        host = first_host(nodes)
        named = {"SLURM_NTASKS": tasks, "SLURM_PROCID": environ.get("SLURM_PROCID"),
                 "SLURM_JOB_NODELIST": nodes}
        return _checked(f"{host}:{port}" if host else None, _number(tasks, "SLURM_NTASKS"),
                        _number(environ.get("SLURM_PROCID"), "SLURM_PROCID"), "Slurm", named)
    return None


def first_host(nodelist: str) -> str | None:
    """The first host of a Slurm node list: ``"gpu[03-05,9],cpu1"`` → ``"gpu03"``."""
    match = re.match(r"\s*([^,\[\s]+)(?:\[([^\]]*)\])?", nodelist or "")
    if not match:
        return None
    prefix, ranges = match.groups()
    if not ranges:
        return prefix
    return prefix + ranges.split(",")[0].split("-")[0]


def _number(text: str | None, name: str) -> int | None:
    if text is None or str(text).strip() == "":
        return None
    try:
        return int(str(text).strip())
    except ValueError:
        raise LabkitError(f"{name} must be a whole number. Received: {text!r}") from None


def _checked(coordinator: str | None, num_processes: int | None, process_id: int | None,
             source: str, given: dict) -> ProcessGroup | None:
    names = list(given)
    if num_processes is None or (num_processes > 1 and
                                 (coordinator is None or process_id is None)):
        missing = [n for n, v in given.items() if v is None]
        raise LabkitError(f"A process group needs {', '.join(names)} together; {source} "
                          f"give no {', '.join(missing)}.")
    if isinstance(num_processes, bool) or num_processes < 1:
        raise LabkitError(f"{names[1]} must be at least 1. Received: {num_processes}")
    if num_processes == 1:
        if coordinator is not None:
            raise LabkitError(f"{names[0]} with {names[1]} 1: a single process has no group "
                              f"to coordinate; drop {names[0]}, or start more processes.")
        return None
    if not 0 <= process_id < num_processes:
        raise LabkitError(f"{names[2]} must be in 0..{num_processes - 1} for {num_processes} "
                          f"processes. Received: {process_id}")
    host, _, port = coordinator.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise LabkitError(f"{names[0]} must be HOST:PORT, process 0's address, e.g. "
                          f"10.0.0.1:12355. Received: {coordinator!r}")
    return ProcessGroup(coordinator, num_processes, process_id, source)


COPIES = "LABKIT_PROCESS_COPIES"  # keep data-parallel processes' own copies there (debugging)


def scratch_folder(place) -> Path:
    """A private folder for a data-parallel process other than 0 (``place``: its Placement or
    ProcessGroup), removed when the process ends: it joins process 0 in every save (Keras's
    saving uses collectives) but writes nothing of the run's own. With ``$LABKIT_PROCESS_COPIES``
    set, ``COPIES/process-I`` instead, kept (to compare the processes' models)."""
    if os.environ.get(COPIES):
        folder = Path(os.environ[COPIES]) / f"process-{place.process_id}"
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    folder = Path(tempfile.mkdtemp(prefix=f"labkit-process{place.process_id}-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def check_divisible(batch_size: int, replicas: int, full: bool = False) -> None:
    """Data-parallel: the global batch splits evenly over the devices, or a LabkitError says
    which sizes do."""
    if batch_size % replicas == 0:
        return
    lower, upper = batch_size - batch_size % replicas, batch_size + replicas - batch_size % replicas
    what = f"the whole training set ({batch_size} examples)" if full else f"{batch_size}"
    raise LabkitError(f"--batch-size {what} does not split over {replicas} devices: "
                      f"data-parallel needs a multiple of {replicas}, e.g. "
                      f"{', '.join(str(b) for b in (lower, upper) if b > 0)}.")


def trimmed(loaded, local_devices: int):
    """Data-parallel over several devices of this process: the in-memory validation and test
    splits of ``loaded`` (a :class:`~labkit.data.base.Data`) cut to a multiple of them, as
    every batch must split evenly (at most ``local_devices - 1`` examples are left out)."""
    if local_devices <= 1:
        return loaded

    def cut(split):
        if not isinstance(split, tuple):
            return split
        keep = len(split[1]) - len(split[1]) % local_devices
        return split[0][:keep], split[1][:keep]

    return dataclasses.replace(loaded, val=cut(loaded.val), test=cut(loaded.test))
