"""Keras callbacks of a labkit run: the recorder that keeps the run directory current, Keras's
early stopping and reduce-on-plateau made resumable (their counters survive a restart), and
:func:`training_controls`, which makes the ones a config asks for."""

from __future__ import annotations

import contextlib
import csv
import io
import math
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras

from labkit import checkpoint, files, layout, plots, runs, tasks
from labkit.errors import LabkitError

if TYPE_CHECKING:
    from labkit.config import TrainConfig


class _Resumable:
    """Mixin: ``state()`` for the checkpoint, and ``restore=`` to continue from it.

    Keras resets these callbacks in ``on_train_begin``; the restored values are applied after.
    """

    FIELDS: tuple[str, ...] = ()

    def __init__(self, *args, restore: dict | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._restore = restore

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        for key, value in (self._restore or {}).items():
            setattr(self, key, value)
        self._restore = None

    def state(self) -> dict[str, Any]:
        return {key: _plain(getattr(self, key)) for key in self.FIELDS}


class EarlyStopping(_Resumable, keras.callbacks.EarlyStopping):
    """Keras's early stopping; its patience counter and best value survive a resume."""

    FIELDS = ("wait", "best", "best_epoch", "stopped_epoch")


class ReduceLROnPlateau(_Resumable, keras.callbacks.ReduceLROnPlateau):
    """Keras's reduce-on-plateau; the learning rate itself is restored with the optimizer."""

    FIELDS = ("wait", "best", "cooldown_counter")


@dataclass
class PhaseProgress:
    """Where training stands in the current phase of the plan."""

    index: int = 0
    name: str = ""
    planned: int = 0  # epochs the phase trains
    done: int = 0  # epochs of it finished


class RunRecorder(keras.callbacks.Callback):
    """Keeps the run directory current as epochs end.

    Per epoch, one :class:`~labkit.files.Batch` of files, flushed to the disk and then put in
    place in this order: history.csv (a row with the epoch's learning rate and metrics),
    metrics.json, best.keras when the monitored metric improved and last.keras with the state
    to resume from (best.keras is a copy of that same file). A
    :class:`~labkit.checkpoint.Writer` writes it: over 4 MB on its thread while the next epoch
    trains (the next epoch's waits for it), a smaller one at once. A kill loses the running
    epoch, and the one before it only in the milliseconds its files are being written; resume
    drops history rows past last.keras's epoch, so history never has gaps or duplicates. A
    write that fails stops training at the next epoch boundary.

    A loss that is not finite, or above ``divergence_factor`` times the first epoch's (the
    lecture's exploding gradients), marks the run diverged and stops training.

    ``stop`` set (by a signal handler or another thread, see :mod:`labkit.interrupts`) stops
    training at the next epoch's start or end, the finished epochs saved, by raising
    ``KeyboardInterrupt`` as Ctrl-C does.
    """

    def __init__(self, run: runs.Run, model, monitor: str, *, rows=(), state: dict | None = None,
                 with_phase: bool = False, divergence_factor: float = 0.0,
                 stop: threading.Event | None = None) -> None:
        """``state``: a checkpoint's state when resuming (best metric, early-stopping epochs).
        ``divergence_factor``: 0 checks only for non-finite losses."""
        super().__init__()
        self.stop = stop if stop is not None else threading.Event()
        state = state or {}
        self.run, self.full_model, self.monitor = run, model, monitor
        self.rows: list[dict] = list(rows)
        self.writer = checkpoint.Writer()  # large checkpoints: while the next epoch trains
        self._resumed_epochs = len(self.rows)  # what last.keras held when this session began
        self.best = state.get("best") or {"epoch": None, "value": None}
        self.with_phase = with_phase
        self.divergence_factor = divergence_factor
        self.diverged: dict | None = None
        self.stopped_epoch: int | None = state.get("stopped_epoch")
        self.restored_epoch: int | None = state.get("restored_epoch")
        self.phase = PhaseProgress()
        self._controls: list = []
        self._learning_rate = float("nan")  # the rate the current epoch started with
        self._epoch_start = time.perf_counter()
        self._saved_state: dict | None = None  # what last.keras holds, as written this session
        self._history = HistoryCsv()

    def start_phase(self, index: int, name: str, planned: int, done: int, controls: list) -> None:
        self.phase = PhaseProgress(index, name, planned, done)
        self._controls = controls

    def end_phase(self) -> None:
        """After a phase's fit: note early stopping, save the (maybe restored) final weights
        (unless the last epoch's checkpoint holds them already)."""
        for control in self._controls:
            if isinstance(control, EarlyStopping) and control.stopped_epoch:
                self.stopped_epoch = control.stopped_epoch + 1
                if control.restore_best_weights and control.best_weights is not None:
                    self.restored_epoch = control.best_epoch + 1
        self.phase.done = self.phase.planned  # finished, early or not
        self._checkpoint()

    @property
    def saved_epochs(self) -> int:
        """The epochs last.keras holds on the disk (a checkpoint being written not yet)."""
        written = self.writer.state
        return written["epoch"] if written is not None else self._resumed_epochs

    def on_epoch_begin(self, epoch, logs=None):
        self._stop_if_requested()
        self.writer.check()  # a checkpoint that failed stops the run here
        self._learning_rate = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.phase.done += 1
        # Keras's own "learning_rate" log is the rate at the epoch's end; the history records
        # the one the epoch started with, under layout.LEARNING_RATE.
        values = {k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"}
        seconds = round(time.perf_counter() - self._epoch_start, 3)  # training + validation
        row = {layout.EPOCH: epoch + 1,
               **({layout.PHASE: self.phase.name} if self.with_phase else {}),
               layout.LEARNING_RATE: self._learning_rate, layout.SECONDS: seconds, **values}
        self.rows.append(row)
        if self._exploded(values.get("loss", 0.0)):
            self.diverged = {"epoch": epoch + 1, "loss": _show_loss(values["loss"]),
                             "learning_rate": self._learning_rate,
                             "first_loss": _show_loss(self.rows[0].get("loss", math.nan))}
            self.model.stop_training = True
            self._write("running")
            return
        current = values.get(self.monitor)
        improved = current is not None and math.isfinite(current) and self._improves(current)
        if improved:
            self.best = {"epoch": epoch + 1, "value": current}
        self._checkpoint(best=improved, before=self._records("running"))
        self._stop_if_requested()  # an interrupt swallowed while saving stops here, saved

    def _stop_if_requested(self) -> None:
        if self.stop.is_set():
            raise KeyboardInterrupt

    def _exploded(self, loss: float) -> bool:
        if not math.isfinite(loss):
            return True
        first = self.rows[0].get("loss", math.nan)
        return bool(self.divergence_factor) and len(self.rows) > 1 and math.isfinite(first) \
            and loss > self.divergence_factor * first

    def _improves(self, value: float) -> bool:
        best = self.best["value"]
        return best is None or (value > best if tasks.higher_is_better(self.monitor)
                                else value < best)

    def _checkpoint(self, best: bool = False, before: tuple = ()) -> None:
        """last.keras with the state to resume from; also best.keras (put in place first) if
        ``best``; ``before``: files (path, content) put in place before both."""
        index, planned, done = self.phase.index, self.phase.planned, self.phase.done
        stopping = next((c for c in self._controls if isinstance(c, EarlyStopping)), None)
        state = {"epoch": len(self.rows), "phase": index, "phase_epochs": done,
                 "phase_done": done >= planned or bool(getattr(self.model, "stop_training", False)),
                 "best": self.best, "stopped_epoch": self.stopped_epoch,
                 "restored_epoch": self.restored_epoch,
                 "controls": {type(c).__name__: c.state() for c in self._controls
                              if isinstance(c, _Resumable)}}
        if state == self._saved_state and not best and not before:  # a phase's end, no news
            return
        best_weights = stopping.best_weights if stopping is not None else None
        self.writer.save(self.full_model, self.run.file(layout.LAST), state,
                         optimizer=getattr(self.model, "optimizer", None),
                         best_weights=best_weights,
                         also=(self.run.file(layout.BEST),) if best else (), before=before)
        self._saved_state = state

    def interrupted(self) -> int:
        """After Ctrl-C or a stop: keep exactly the epochs last.keras holds (an interrupt can
        land between an epoch's history row and its checkpoint), record ``interrupted``, plot
        the curves; the epochs kept."""
        self.writer.close()  # the checkpoint being written is finished first
        kept = checkpoint.saved_epochs(self.run.file(layout.LAST))
        del self.rows[kept:]
        self.finish("interrupted")
        return kept

    def stop_at_checkpoint(self, reason: str) -> int:
        """After a fault: forget the epochs after the last checkpoint, record ``interrupted``
        with ``reason`` if that small write can still be made; the epochs kept."""
        self.writer.close()
        del self.rows[self.saved_epochs:]
        with contextlib.suppress(LabkitError):  # on a full disk even this may fail
            self._write("interrupted", {"reason": reason})
        return self.saved_epochs

    def _records(self, status: str, extra: dict | None = None) -> tuple:
        """history.csv and metrics.json as they are now: ((path, content), …)."""
        metrics = summarize(self.rows, status, self.monitor, self.best, {
            "stopped_epoch": self.stopped_epoch, "restored_epoch": self.restored_epoch,
            "diverged": self.diverged, **(extra or {})})
        return ((self.run.file(layout.HISTORY), self._history(self.rows).encode()),
                (self.run.file(layout.METRICS), files.json_text(metrics).encode()))

    def _write(self, status: str, extra: dict | None = None) -> None:
        """history.csv and metrics.json now, after the checkpoint being written (which may
        hold an older history)."""
        self.writer.wait()
        with files.Batch() as batch:
            for path, content in self._records(status, extra):
                batch.write(path, content)

    def finish(self, status: str, extra: dict | None = None, plot: bool = True) -> None:
        """Write the final history and metrics with ``status``; plot the curves (unless
        ``plot`` is False: :meth:`curves_meanwhile` drew them). The last checkpoint is on the
        disk first (a fault writing it is raised here)."""
        self.writer.wait()
        self.writer.close()
        self._write(status, extra)
        if plot:
            self._plot()

    @contextlib.contextmanager
    def curves_meanwhile(self):
        """Draw curves.png in a background thread while the block runs (the final test pass,
        whose compiled work leaves the interpreter free): the ~0.3 s matplotlib takes is hidden.
        Nothing else may draw with matplotlib meanwhile. A fault writing the picture is raised
        after the block."""
        with ThreadPoolExecutor(1, thread_name_prefix="labkit-curves") as pool:
            drawing = pool.submit(self._plot)
            yield
        drawing.result()

    def _plot(self) -> None:
        if self.rows:
            import pandas as pd

            recipe = self.run.config.get("recipe", "")
            plots.curves(pd.DataFrame(self.rows), self.run.file(layout.CURVES),
                         f"{self.run.name} ({recipe})" if recipe else self.run.name)


class Heartbeat(keras.callbacks.Callback):
    """A line every ``interval`` seconds inside a long epoch (``epoch 3/30: step 120/500,
    10 s``), for logs, where Keras's bar is not drawn. It reads only the clock and the step
    number: called at once after each step, without the logs' host sync (``light_batch_hooks``,
    see :mod:`labkit.callback_list`), and safe for Keras's asynchronous dispatch
    (``async_safe``)."""

    async_safe = True
    light_batch_hooks = True

    def __init__(self, interval: float = 10.0) -> None:
        super().__init__()
        self.interval = interval
        self._epoch, self._start, self._last = 0, 0.0, 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._start = epoch, time.monotonic()
        self._last = self._start

    def on_train_batch_end(self, batch, logs=None):
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            steps = self.params.get("steps")
            of = f"/{steps}" if steps else ""
            print(f"  epoch {self._epoch + 1}/{self.params.get('epochs')}: step {batch + 1}{of}, "
                  f"{now - self._start:.0f} s", flush=True)


class HistoryCsv:
    """history.csv's text for a list of rows that grows at its end (and may be cut back): a
    column per key, in the order they first appear, a line per row, a missing or NaN value
    empty; what pandas' ``DataFrame(rows).to_csv(index=False)`` writes for these rows (tested),
    without its ~2 ms. Each row is formatted once while the columns stay the same, so an
    epoch's cost does not grow with the run. No rows: the header ``epoch`` alone, which reads
    back as no rows."""

    def __init__(self) -> None:
        self._columns: list[str] = []
        self._rows: list[dict] = []  # the rows formatted in _lines, as they were given
        self._lines: list[str] = []

    def __call__(self, rows: list[dict]) -> str:
        done = len(self._rows)
        if len(rows) < done or (done and rows[done - 1] is not self._rows[-1]):
            self._columns, self._rows, self._lines, done = [], [], [], 0  # cut back: again
        new = rows[done:]
        columns = list(dict.fromkeys([*self._columns, *(key for row in new for key in row)]))
        if columns != self._columns:
            self._columns, self._rows, self._lines, new = columns, [], [], rows
        self._rows.extend(new)
        self._lines.extend(self._line(row) for row in new)
        header = _csv_line(self._columns or [layout.EPOCH])
        return header + "".join(self._lines)

    def _line(self, row: dict) -> str:
        return _csv_line(["" if value is None or (isinstance(value, float) and math.isnan(value))
                          else value for value in map(row.get, self._columns)])


def _csv_line(values: list) -> str:
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerow(values)
    return text.getvalue()


def summarize(rows: list[dict], status: str, monitor: str, best: dict,
              extra: dict | None = None) -> dict:
    """metrics.json's content from the history rows so far (non-finite values become null)."""
    metrics: dict = {"status": status, "epochs_completed": len(rows), "monitor": monitor,
                     "best_epoch": best.get("epoch"), f"best_{monitor}": best.get("value")}
    if rows:
        metrics.update({f"final_{k}": _finite(v) for k, v in rows[-1].items()
                        if k not in (layout.EPOCH, layout.PHASE, layout.SECONDS)})
        timed = [r[layout.SECONDS] for r in rows
                 if isinstance(r.get(layout.SECONDS), (int, float))
                 and math.isfinite(r[layout.SECONDS])]
        if timed:
            metrics["seconds_per_epoch"] = round(statistics.median(timed), 3)
        if "val_accuracy" in rows[-1]:  # what `labkit runs` lists, whatever the monitor
            metrics["best_val_accuracy"] = max(_finite(r["val_accuracy"]) or 0.0 for r in rows)
    metrics.update({k: v for k, v in (extra or {}).items() if v is not None})
    return metrics


def training_controls(config: TrainConfig, saved: checkpoint.Checkpoint | None = None,
                      log_dir: Path | None = None) -> list:
    """The callbacks a resolved config asks for, restored from ``saved``: early stopping,
    reduce-on-plateau, TensorBoard."""
    restored = saved.state.get("controls", {}) if saved else {}
    controls: list = []
    if config.early_stopping:
        es = config.early_stopping
        restore = restored.get("EarlyStopping")
        if restore is not None and saved.best_weights is not None:
            restore = {**restore, "best_weights": saved.best_weights}
        controls.append(EarlyStopping(monitor=config.monitor, patience=es["patience"],
                                      min_delta=es["min_delta"],
                                      restore_best_weights=es["restore_best"], restore=restore))
    if config.schedule["name"] == "plateau":
        s = config.schedule
        controls.append(ReduceLROnPlateau(monitor=config.monitor, factor=s["factor"],
                                          patience=s["patience"], min_delta=s["min_delta"],
                                          cooldown=s["cooldown"], min_lr=s["min_lr"],
                                          restore=restored.get("ReduceLROnPlateau")))
    if config.tensorboard and log_dir is not None:
        controls.append(keras.callbacks.TensorBoard(log_dir=str(log_dir)))
    return controls


def _show_loss(value: float) -> str | float:
    return value if math.isfinite(value) else str(value)


def _finite(value: Any) -> Any:
    return value if not isinstance(value, float) or math.isfinite(value) else None


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return float(value)
