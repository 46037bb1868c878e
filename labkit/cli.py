"""The ``labkit`` command line: parse, call the library, print. Logic lives in the library."""

from __future__ import annotations

import dataclasses
import functools
import sys
import time

import click

from labkit import layout
from labkit.comparison import TABLE_FORMATS
from labkit.config import MONITORS, TrainConfig
from labkit.data.images import COLOR_MODES
from labkit.devices import DISTRIBUTE, PRECISIONS
from labkit.errors import LabkitError
from labkit.explain import METHODS
from labkit.export import QUANTIZE
from labkit.formats import ALL, FORMATS
from labkit.lecture import LAB_SEED
from labkit.optim import OPTIMIZERS
from labkit.tasks import TASKS
from labkit.version import __version__

# `labkit train`'s defaults for the help texts: TrainConfig defines them; nothing here repeats them.
DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)
            if f.default is not dataclasses.MISSING}
RECIPE_DEFAULTS = "; some recipes prefer their own, see `labkit describe RECIPE`"


def default(name: str, recipes_differ: bool = False) -> str:
    """``"  [default: 10]"`` for TrainConfig field ``name``, for a help text."""
    return f"  [default: {DEFAULTS[name]}{RECIPE_DEFAULTS if recipes_differ else ''}]"


def optimizer_default(optimizer: str, param: str) -> str:
    return f"  [default: {OPTIMIZERS[optimizer].params[param]}]"


def quiet_tensorflow() -> None:
    """Import TensorFlow now, without its C++ start-up messages (see labkit._startup)."""
    from labkit._startup import import_tensorflow

    import_tensorflow()


class Group(click.Group):
    """Turns a :class:`LabkitError` or an ``OSError`` (a full disk, a read-only folder, …) from
    any command into one ``Error: …`` line and exit 1, and Ctrl-C or SIGTERM at any moment
    (while TensorFlow loads, too) into one line and exit 130 or 143."""

    def invoke(self, ctx):
        from labkit.interrupts import exit_code, terminate_as_interrupt

        try:
            with terminate_as_interrupt():
                return super().invoke(ctx)
        except KeyboardInterrupt as err:
            click.echo("\nStopped.", err=True)
            sys.exit(exit_code(err))
        except LabkitError as err:
            raise click.ClickException(str(err)) from None
        except OSError as err:  # a file fault no library function put in words
            from labkit.files import describe

            raise click.ClickException(describe(err)) from None


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="labkit")
def main():
    """labkit: the neural-network course's labs in Keras 3 / TensorFlow.

    \b
    Example:
      labkit recipes
      labkit train cnn --dataset digits
    """


def set_option(func):
    """``--set key=value``, repeatable: recipe hyperparameters."""
    return click.option("--set", "assignments", multiple=True, metavar="KEY=VALUE",
                        help="Recipe hyperparameter, repeatable: --set dropout=0.2 "
                             "--set units=[64,32].")(func)


def dataset_options(func):
    """The options of a dataset (``--data-option`` and the named ones), passed on as one
    ``data_options`` dict."""
    @click.option("--data-option", "data_assignments", multiple=True, metavar="KEY=VALUE",
                  help="Dataset option, repeatable: --data-option noise=0.2 (Playground sets), "
                       "skip_bad=true (image folders), dropna=true (CSV).")
    @click.option("--image-size", metavar="HxW",
                  help="Image folders and TFDS sets: resize to HEIGHTxWIDTH, e.g. 150x150.  "
                       "[default: the images' own size when they all agree]")
    @click.option("--color-mode", type=click.Choice(COLOR_MODES),
                  help="Image folders: channels to decode.  [default: grayscale when every "
                       "image is grey, else rgb]")
    @click.option("--target", "targets", multiple=True, metavar="COLUMN",
                  help="CSV: the column to predict; repeat for several (multi-label or "
                       "several regression targets).")
    @functools.wraps(func)
    def wrapper(*args, data_assignments, image_size, color_mode, targets, **kwargs):
        from labkit.options import parse_assignments

        options = parse_assignments(data_assignments, "--data-option")
        named = {"image_size": image_size, "color_mode": color_mode,
                 "target": (list(targets) if len(targets) > 1 else targets[0]) if targets
                 else None}
        options.update({k: v for k, v in named.items() if v is not None})
        return func(*args, data_options=options, **kwargs)

    return wrapper


def warning(message: str) -> None:
    """One ``warning:`` line on stderr (inputs outside a run's range, say)."""
    click.echo(f"warning: {message}", err=True)


@main.command()
@click.argument("pattern", default="*")
def recipes(pattern):
    """List recipes (name, summary, lecture topic), optionally filtered by a glob PATTERN.

    \b
    Example:
      labkit recipes
      labkit recipes 'cnn*'
    """
    from labkit import registry

    for name in registry.list_recipes(pattern):
        recipe = registry.get_recipe(name)
        click.echo(f"{name:<16} {recipe.summary}\n{'':<16} lecture: {recipe.topic}")


@main.command()
@click.argument("path", required=False)
@click.option("--validation-split", type=float, default=DEFAULTS["validation_split"],
              show_default=True, help="Fraction of training data held out, as in train.")
@dataset_options
def data(path, validation_split, data_options):
    """List the datasets (name, source, input shape, classes), or describe the dataset at PATH
    (an image folder, a .csv or an .npz): source, task, input shape, per split its size and
    class counts, and the files skipped.

    \b
    Example:
      labkit data
      labkit data cats_and_dogs --image-size 150x150
      labkit data houses.csv --target price
      labkit data mnist.npz
    """
    from labkit.data import DATASETS
    from labkit.data.catalog import render_summary, summarize

    if path is None:
        for name, entry in DATASETS.items():
            click.echo(f"{name:<14} {entry.source:<10} {str(entry.input_shape):<12} "
                       f"{entry.num_classes:>3} classes  {entry.description}")
        return
    from labkit.data.catalog import path_source

    if path_source(path) == "images":  # decoded with TensorFlow: start it quietly
        quiet_tensorflow()
    click.echo(render_summary(summarize(path, validation_split, data_options)))


@main.command()
@click.argument("recipe")
@click.option("--dataset", default="digits", show_default=True,
              help="Dataset whose input shape and classes shape the model.")
@click.option("--input-shape", metavar="HxWxC",
              help="Build for this input shape instead of the dataset's, e.g. 150x150x3.")
@click.option("--task", type=click.Choice(list(TASKS)),
              help="Build this task's head (binary: one sigmoid unit).  [default: the dataset's]")
@click.option("--summary/--no-summary", default=True, show_default=True,
              help="Build the model and print its summary (takes a few seconds: Keras loads).")
@set_option
@dataset_options
def describe(recipe, dataset, input_shape, task, summary, assignments, data_options):
    """Show RECIPE's hyperparameters (default and current value) and its model summary.

    \b
    Example:
      labkit describe cnn --dataset mnist --set filters=[32,64,64]
      labkit describe cnn --input-shape 150x150x3 --task binary --set filters=[32,64,128,128]
    """
    from labkit import describe as desc
    from labkit import options, registry

    values = options.parse_assignments(assignments)
    rows = desc.hyperparameter_rows(recipe, values)
    info = registry.get_recipe(recipe)
    shape = desc.parse_shape(input_shape)
    built = desc.summary(recipe, dataset, values, input_shape=shape, task=task,
                         data_options=data_options,
                         light_backend=True) if summary else None
    click.echo(f"{info.name}: {info.summary}\nlecture: {info.topic}")
    if info.train_defaults:
        preferred = ", ".join(f"{k}={v}" for k, v in info.train_defaults.items())
        click.echo(f"training defaults: {preferred}")
    click.echo()
    click.echo(f"{'hyperparameter':<20} {'default':<22} current")
    for key, default, current in rows:
        mark = "" if current == default else "   (set)"
        click.echo(f"{key:<20} {default!r:<22} {current!r}{mark}")
    if built:
        text, count = built
        click.echo(f"\n{text}\nParameters: {count:,}")


_TRAIN_OPTIONS = [
    click.option("--dataset", help="Dataset name (see `labkit data`), a path to an image folder, a "
                                   ".csv or .npz file, or tfds:NAME." + default("dataset")),
    click.option("--task", type=click.Choice(list(TASKS)),
                 help="What the model predicts.  [default: the dataset's; on two classes "
                      "classification and binary may replace each other]"),
    click.option("--data-dir", help="TFDS data directory (else $TFDS_DATA_DIR)."),
    click.option("--epochs", type=int,
                 help="Passes over the training data." + default("epochs", recipes_differ=True)),
    click.option("--batch-size", metavar="N|full",
                 help="Examples per gradient step; full: the whole training set."
                      + default("batch_size", recipes_differ=True)),
    click.option("--optimizer", type=click.Choice(list(OPTIMIZERS)),
                 help="Optimizer." + default("optimizer", recipes_differ=True)),
    click.option("--learning-rate", type=float,
                 help="Step size ε.  [default: the optimizer's" + RECIPE_DEFAULTS + "]"),
    click.option("--momentum", type=float,
                 help=f"α for momentum/nesterov [{OPTIMIZERS['momentum'].params['momentum']}] and "
                      f"rmsprop [{OPTIMIZERS['rmsprop'].params['momentum']}]."),
    click.option("--rho", type=float, help="rmsprop's squared-gradient decay."
                                           + optimizer_default("rmsprop", "rho")),
    click.option("--beta-1", type=float, help="adam's first-moment decay."
                                              + optimizer_default("adam", "beta_1")),
    click.option("--beta-2", type=float, help="adam's second-moment decay."
                                              + optimizer_default("adam", "beta_2")),
    click.option("--epsilon", type=float,
                 help="rmsprop/adam's δ." + optimizer_default("adam", "epsilon")),
    click.option("--clipnorm", type=float, help="Clip each gradient's norm to this."),
    click.option("--clipvalue", type=float, help="Clip each gradient component to ±this."),
    click.option("--schedule", metavar="NAME[(K=V,...)]",
                 help="Learning-rate schedule: constant, exponential, inverse-time, step, "
                      "piecewise, cosine, plateau, e.g. 'inverse-time(tau=5)'.  "
                      "[default: constant]"),
    click.option("--monitor", type=click.Choice(MONITORS),
                 help="Metric for the best epoch, early stopping, plateau.  [default: val_loss, or "
                      "loss without a validation split]"),
    click.option("--early-stopping", metavar="on|K=V,...",
                 help="Stop when the monitored metric stops improving, e.g. "
                      "patience=5,min_delta=0.001,restore_best=true."),
    click.option("--augment", metavar="NAME[=AMOUNT],...",
                 help="Training-only augmentation: flip, rotation, zoom, translation, contrast, "
                      "noise, e.g. flip,rotation=0.1; fill=constant|reflect|nearest|wrap for "
                      "the pixels a rotation, zoom or shift uncovers (default reflect)."),
    click.option("--class-weight", metavar="balanced|C=W,...",
                 help="Loss weight per class, e.g. balanced or 0=1,1=5."),
    click.option("--validation-split", type=float,
                 help="Fraction of training data held out."
                      + default("validation_split", recipes_differ=True)),
    click.option("--seed", type=int, help="Random seed." + default("seed")),
    click.option("--shuffle/--no-shuffle", default=None,
                 help="Reshuffle the training data every epoch (default), or keep its order, "
                      "as the Playground does."),
    click.option("--deterministic", is_flag=True, default=None,
                 help="Deterministic TensorFlow ops: reruns give an identical history (slower)."),
    click.option("--tensorboard", is_flag=True, default=None,
                 help="Write TensorBoard logs to RUN/tensorboard."),
    click.option("--precision", type=click.Choice(PRECISIONS),
                 help="mixed: float16 on a GPU, bfloat16 on a CPU with bfloat16 instructions, "
                      "float32 otherwise; the output layer and loss stay float32."
                      + default("precision")),
    click.option("--steps-per-execution", metavar="N|auto",
                 help="Training steps per compiled call: fewer trips through Python when steps "
                      "are tiny (small models, small batches); auto groups 16 when a step is "
                      "small enough to gain (measured), else 1." + default("steps_per_execution")),
    click.option("--distribute", type=click.Choice(DISTRIBUTE),
                 help="tf.distribute: mirrored over this machine's GPUs (or --devices CPUs); "
                      "--batch-size is then the global batch. multi-worker: refused, Keras 3's fit "
                      "does not run under MultiWorkerMirroredStrategy." + default("distribute")),
    click.option("--devices", type=int,
                 help="With --distribute mirrored or data-parallel and no GPU: this many logical "
                      "CPU devices."),
    click.option("--divergence-factor", type=float,
                 help="Stop as diverged when the loss exceeds this many times the first epoch's; "
                      "0: only a NaN or infinite loss stops." + default("divergence_factor")),
    set_option,
    click.option("--name", help="Run directory name.  [default: RECIPE-DATASET-TIME]"),
    click.option("--runs-dir", help="Where run directories go." + default("runs_dir")),
    dataset_options,
]


def train_options(func):
    """The options of ``labkit train`` that ``labkit sweep`` shares: data, optimisation, run."""
    for decorator in reversed(_TRAIN_OPTIONS):
        func = decorator(func)
    return func


@main.command()
@click.argument("recipe", required=False)
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="JSON or YAML config, e.g. a run's config.json; flags override it.")
@click.option("--print-config", is_flag=True,
              help="Print the fully resolved config as JSON and exit without training.")
@click.option("--resume", "resume_run", metavar="RUN",
              help="Continue the interrupted run directory RUN from its last finished epoch.")
@click.option("--coordinator", metavar="HOST:PORT",
              help="Data-parallel over several processes: process 0's address (else "
                   "$KERAS_DISTRIBUTION_JOB_ADDRESSES, or Slurm's first node).")
@click.option("--num-processes", type=int,
              help="Data-parallel: how many processes train together (else "
                   "$KERAS_DISTRIBUTION_NUM_PROCESSES or $SLURM_NTASKS).")
@click.option("--process-id", type=int,
              help="Data-parallel: this process's rank, 0..N-1; 0 writes the run directory "
                   "(else $KERAS_DISTRIBUTION_PROCESS_ID or $SLURM_PROCID).")
@train_options
def train(recipe, config_file, print_config, resume_run, coordinator, num_processes, process_id,
          data_options, assignments, **flags):
    """Train RECIPE and write a run directory (config, history, metrics, model, checkpoints).

    Ctrl-C stops after saving what finished; --resume continues a stopped or killed run.

    \b
    Example:
      labkit train cnn --dataset digits
      labkit train mlp --dataset spiral --set units=[16,16] --epochs 50
      labkit train cnn --optimizer momentum --learning-rate 0.05 --schedule 'inverse-time(tau=5)'
      labkit train cnn --early-stopping patience=3 --augment rotation=0.1,zoom=0.1
      labkit train cnn --dataset cats_and_dogs --image-size 150x150 --augment flip
      labkit train mlp --dataset houses.csv --target price
      labkit train --config runs/cnn-digits-20261126-120000/config.json --print-config
      labkit train --resume runs/cnn-digits-20261126-120000
    """
    from labkit.config import parse_counts, resolve_train_config
    from labkit.options import parse_assignments

    flags = parse_counts(flags)
    given = (coordinator, num_processes, process_id)
    if resume_run:
        _refuse_with_resume("a run with its saved config", flags, RECIPE=recipe,
                            **{"--config": config_file, "--set": assignments,
                               "dataset options": data_options})
        from labkit.runs import open_run

        distribute = open_run(resume_run).config.get("distribute", "none")
        return _train_and_report(click.echo, resume_run=resume_run,
                                 group=_process_group(distribute, *given))
    config = resolve_train_config(
        recipe=recipe, config_file=config_file, flags=flags,
        hparams=parse_assignments(assignments),
        data_options=data_options)
    group = _process_group(config.distribute, *given)
    if print_config:
        import json

        click.echo(json.dumps(config.to_dict(), indent=2))
        return
    _train_and_report(click.echo, config=config, group=group)


def _process_group(distribute: str, *given):
    """The data-parallel process group of the options or the environment (None: one
    process); the options without --distribute data-parallel are an error."""
    import os

    from labkit import processes
    from labkit.launch import LAUNCHED

    if distribute != "data-parallel":
        if any(v is not None for v in given):
            raise click.UsageError("--coordinator, --num-processes and --process-id apply to "
                                   "--distribute data-parallel.")
        if os.environ.get(LAUNCHED):
            raise click.UsageError("labkit launch starts one data-parallel run: add "
                                   "--distribute data-parallel.")
        return None
    return processes.resolve(*given)


def _refuse_with_resume(what: str, flags: dict, **others) -> None:
    """``--resume`` continues ``what`` as saved: any other option given is an error naming it."""
    given = [f"--{k.replace('_', '-')}" for k, v in flags.items() if v is not None]
    given += [name for name, value in others.items() if value]
    if given:
        raise LabkitError(f"--resume continues {what}; drop {', '.join(given)}.")


def _train_and_report(echo, config=None, resume_run=None, group=None) -> None:
    quiet_tensorflow()
    from labkit import training
    from labkit.interrupts import stop_on_signals

    try:
        with stop_on_signals() as stop:  # Ctrl-C and `kill` stop after saving what finished
            run = training.resume(resume_run, echo, stop, group) if resume_run \
                else training.train(config, echo, stop, group)
    except training.Interrupted as stopped:
        if group is not None and not group.main:
            click.echo(f"\nProcess {group.process_id} stopped; process 0 saved the run.",
                       err=True)
            sys.exit(stopped.exit_code)
        click.echo(f"\n{training.interrupted_message(stopped.run)}", err=True)
        sys.exit(stopped.exit_code)
    metrics = run.metrics
    if group is not None and not group.main:
        click.echo(f"Process {group.process_id} of {group.num_processes}: "
                   f"{metrics['status']} ({metrics['epochs_completed']} epochs); process 0 "
                   "wrote the run directory.")
        return
    if metrics["status"] == "diverged":
        raise LabkitError(f"Training diverged; run saved in {run.path}. {metrics['hint']}")
    click.echo(training.summary(run))


@main.command()
def devices():
    """List this machine's devices as the Keras backend sees them, and the precisions each
    can train in (--precision mixed: bfloat16 on a CPU with its instructions, float16 on a GPU).

    \b
    Example:
      labkit devices
      KERAS_BACKEND=jax labkit devices
    """
    quiet_tensorflow()
    from labkit.devices import listing

    for entry in listing():
        click.echo(f"{entry['device']:<40} {entry['kind']:<4} {entry['backend']:<11} "
                   f"{', '.join(entry['precisions'])}")


@main.command()
@click.argument("run")
@click.option("--data-dir", help="TFDS data directory, if it moved since training.")
def evaluate(run, data_dir):
    """Evaluate RUN on its test split: metrics, confusion matrix, per-class report.

    The results are also saved in the run directory (evaluation.json, confusion_matrix.csv,
    classification_report.txt).

    \b
    Example:
      labkit evaluate runs/cnn-digits-20261126-120000
    """
    from labkit.runs import open_run

    open_run(run)  # a wrong path fails before TensorFlow loads
    quiet_tensorflow()
    from labkit.evaluation import evaluate as run_evaluation
    from labkit.evaluation import render

    click.echo(render(run_evaluation(run, data_dir), run))


@main.command()
@click.argument("run")
@click.argument("inputs", nargs=-1, required=True)
@click.option("--model", type=click.Choice(list(layout.MODELS)), default="final",
              show_default=True, help="model.keras, best.keras (best epoch) or last.keras.")
@click.option("--top", type=int, default=1, show_default=True,
              help="Classification: the K most probable classes per input.")
@click.option("--threshold", type=float, default=0.5, show_default=True,
              help="Multi-label: a label is predicted at or over this probability.")
@click.option("--skip-bad", is_flag=True, help="Skip files that are not decodable images.")
@click.option("--output", type=click.Path(dir_okay=False), help="Also write the table as CSV.")
def predict(run, inputs, model, top, threshold, skip_bad, output):
    """What RUN's model says about INPUTS: image files, folders, globs, a .csv, an .npz.

    Images are decoded and resized as in training; CSV rows need the run's feature columns.

    \b
    Example:
      labkit predict runs/cats-convnet my_cat.jpg holiday/ 'new/*.png' --top 2
      labkit predict runs/houses new_houses.csv --output predictions.csv
    """
    from labkit.runs import open_run

    found = open_run(run)  # a wrong path fails before TensorFlow loads
    quiet_tensorflow()
    from labkit import files, progress
    from labkit.prediction import image_paths, image_sources
    from labkit.prediction import predict as run_predict

    notes: list[str] = []
    pictures = image_sources(inputs)
    total = len(image_paths(pictures)) if pictures else 0
    with progress.bar("predicting", total=total, unit="images", enabled=total > 300) as shown:
        frame = run_predict(found, list(inputs), model=model, top=top, threshold=threshold,
                            skip_bad=skip_bad, progress=shown.update, notes=notes,
                            warn=warning)
    click.echo(frame.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    for note in notes:
        click.echo(f"note: {note}", err=True)
    if output:
        files.write_text(output, frame.to_csv(index=False))
        click.echo(f"→ {output}", err=True)


@main.command()
@click.argument("run")
@click.argument("images", nargs=-1)
@click.option("--method", type=click.Choice(METHODS),
              default="gradcam", show_default=True,
              help="Grad-CAM heatmaps; every channel's feature map (first image); the input "
                   "patterns that maximise a conv layer's filters (no IMAGES needed).")
@click.option("--layer", help="Layer name (nested: vgg16/block5_conv3).  [default: the last "
                              "convolution layer]")
@click.option("--class", "class_name", help="Grad-CAM: the class to explain.  [default: the "
                                            "predicted one]")
@click.option("--out", type=click.Path(file_okay=False), help="Folder for the PNGs.  [default: "
                                                              "RUN/explain]")
@click.option("--steps", type=click.IntRange(1), default=40, show_default=True,
              help="filters: gradient-ascent steps.")
@click.option("--filters", "filter_count", type=click.IntRange(1), default=16,
              show_default=True, help="filters: how many of the layer's filters.")
def explain(run, images, method, layer, class_name, out, steps, filter_count):
    """See what RUN's convnet sees in IMAGES: Grad-CAM heatmaps, feature maps, filter patterns.

    \b
    Example:
      labkit explain runs/cats-vgg16 my_cat.jpg
      labkit explain runs/cats-convnet my_cat.jpg --method activations --layer block1_conv
      labkit explain runs/cats-convnet --method filters --layer block2_conv --steps 40
    """
    from labkit.runs import open_run

    found = open_run(run)  # a wrong path fails before TensorFlow loads
    if method != "filters" and not images:
        raise click.UsageError(f"--method {method} needs at least one IMAGE.")
    quiet_tensorflow()
    from labkit.explain import explain_run

    for path in explain_run(found, list(images), method=method, layer=layer,
                            class_name=class_name, out=out, steps=steps, filters=filter_count,
                            echo=click.echo, warn=warning):
        click.echo(f"→ {path}")


@main.command()
@click.argument("run")
@click.option("--format", "fmt", default="keras", show_default=True,
              type=click.Choice([*FORMATS, ALL]),
              help="; ".join(f"{f.name}: {f.summary}" for f in FORMATS.values())
                   + f"; {ALL}: each, in its own folder.")
@click.option("--output", help="Folder to write it to.  [default: RUN/export/FORMAT]")
@click.option("--quantize", type=click.Choice(QUANTIZE),
              help="LiteRT only: quantize weights (dynamic, float16) or weights and activations "
                   "(int8, calibrated on the run's kept examples).")
@click.option("--force", is_flag=True, help="Replace a non-empty output folder.")
def export(run, fmt, output, quantize, force):
    """Export RUN's model; each export is loaded by its own runtime (Keras, TensorFlow, LiteRT,
    onnxruntime) and must answer as the Keras model does on the run's held-out raw examples.

    Each export folder holds the model, labkit.json, parity.json and a README.md model card.

    \b
    Example:
      labkit export runs/cats-convnet --format all
      labkit export runs/cats-convnet --format litert --quantize int8 --output app/model
    """
    from labkit.runs import open_run

    open_run(run)  # a wrong path fails before TensorFlow loads
    quiet_tensorflow()
    from labkit.export import export as run_export

    for result in run_export(run, fmt, output, quantize=quantize, force=force):
        checked = f"max |difference| {result['max_abs_diff']:.2g}"
        if result.get("agreement") is not None:
            checked += f", same answer on {result['agreement']:.1%}"
        click.echo(f"Exported {result['format']} → {result['path']} (checked on "
                   f"{result['examples']} examples, {checked})")


@main.command(name="runs")
@click.option("--runs-dir", default="runs", show_default=True, help="Folder of run directories.")
@click.option("--where", multiple=True, metavar="KEY=VALUE",
              help="Keep runs whose column or option KEY is VALUE, repeatable: --where recipe=cnn "
                   "--where status=completed --where dropout=0.5.")
@click.option("--sort", metavar="COLUMN",
              help="Sort best first by a metric (val_accuracy, test_accuracy, best_val_loss, …) "
                   "or any column.  [default: date]")
@click.option("--last", type=int, metavar="N", help="Only the N most recent runs.")
@click.option("--format", "fmt", type=click.Choice(TABLE_FORMATS), default="table",
              show_default=True,
              help="csv and json carry every metric and option, for pandas.")
def list_runs(runs_dir, where, sort, last, fmt):
    """List runs (a sweep's trials as SWEEP/TRIAL): name, recipe, dataset, epochs, best
    validation accuracy, wall time, status, date.

    \b
    Example:
      labkit runs
      labkit runs --sort val_accuracy --where recipe=cnn --where status=completed --last 10
      labkit runs --format csv > runs.csv
    """
    from labkit import comparison
    from labkit.comparison import runs_table

    frame = runs_table(runs_dir, where=where, sort=sort, last=last)
    if fmt == "csv":
        click.echo(frame.to_csv(index=False), nl=False)
        return
    if fmt == "json":
        click.echo(frame.to_json(orient="records", indent=1))
        return
    if frame.empty:
        click.echo(f"No runs in {runs_dir}." if not (where or last) else "No runs match.")
        return
    shown = frame.reindex(columns=["name", "recipe", "dataset", "epochs", "best_val_accuracy",
                                   "seconds", "status", "date"])
    shown = shown.rename(columns=comparison.SHOWN)
    shown["best_val_acc"] = shown["best_val_acc"].map(
        lambda v: "-" if v != v or v is None else f"{v:.4f}")
    shown["time"] = shown["time"].map(lambda v: "-" if v != v or v is None else _duration(v))
    click.echo(_table(shown))


def _table(frame) -> str:
    """A DataFrame as aligned text columns, missing values as ``-``."""
    rows = [list(map(str, frame.columns))] + [
        ["-" if v is None or v != v else str(v) for v in row]
        for row in frame.itertuples(index=False)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(f"{v:<{w}}" for v, w in zip(row, widths, strict=True)).rstrip()
                     for row in rows)


@main.command()
@click.argument("run_paths", nargs=-1, required=True, metavar="RUN...")
@click.option("--metric", help="The metric compared and drawn (accuracy, loss, mae, auc, …).  "
                               "[default: accuracy, else mae, else loss]")
@click.option("--all", "all_options", is_flag=True,
              help="Show every option, not only those that differ.")
@click.option("--out", type=click.Path(file_okay=False),
              help="Folder for compare.png.  [default: the folder holding the first RUN, e.g. "
                   "runs/]")
def compare(run_paths, metric, all_options, out):
    """Compare runs: the options that differ, best and final metrics, best epoch, status and
    time per epoch, and compare.png overlaying their curves. RUN may be a glob.

    \b
    Example:
      labkit compare runs/cnn-digits-20261127-101500 runs/cnn-digits-20261127-103000
      labkit compare 'runs/sweep-mlp-digits-*/trial-*' --metric loss --out pictures
    """
    from labkit.comparison import compare as compare_runs
    from labkit.comparison import expand, plot_compare

    run_list = expand(run_paths)
    frame = compare_runs(run_list, metric, all_options)
    for note in frame.attrs["notes"]:
        click.echo(note)
    shown = frame.reset_index().map(
        lambda v: f"{v:.4f}" if isinstance(v, float) and v == v else v)
    click.echo(_table(shown))
    click.echo(f"Curves: {plot_compare(run_list, frame, out)}")


@main.command()
@click.argument("recipe", required=False)
@click.option("--config", "config_file", type=click.Path(dir_okay=False),
              help="JSON or YAML config with the training options and a sweep: block "
                   "(grid/range/choice/random/max_trials); flags override it.")
@click.option("--grid", multiple=True, metavar="NAME=[V,...]",
              help="Values of an option or hyperparameter, repeatable; every combination is "
                   "a trial: --grid 'learning_rate=[0.1,0.01]' --grid 'dropout=[0,0.5]'.")
@click.option("--random", "random_trials", type=int, metavar="N",
              help="Sample N trials (with --seed) from --range, --choice and --grid values.")
@click.option("--range", "ranges", multiple=True, metavar="NAME=DIST(LOW,HIGH)",
              help="A sampled range: uniform, loguniform or int, e.g. "
                   "'learning_rate=loguniform(1e-4,1e-1)'.")
@click.option("--choice", multiple=True, metavar="NAME=[V,...]",
              help="Values sampled with equal chance: 'optimizer=[sgd,adam]'.")
@click.option("--max-trials", type=int, help="Run at most this many trials.")
@click.option("--max-time", metavar="DURATION",
              help="Start no trial after this long, e.g. 90s, 30m, 2h; --resume runs the rest.")
@click.option("--resume", "resume_sweep", metavar="SWEEP",
              help="Continue the sweep folder SWEEP: ended trials are kept, a stopped one "
                   "resumes from its last epoch.")
@click.option("--cluster", metavar="ADDRESS",
              help="Run the trials as tasks of a Dask cluster: its scheduler's address "
                   "(tcp://HOST:8786; the runs folder must be shared) or local:N (N worker "
                   "processes here).  [default: one trial after another, here]")
@train_options
def sweep(recipe, config_file, grid, random_trials, ranges, choice, max_trials, max_time,
          resume_sweep, cluster, data_options, assignments, **flags):
    """Train RECIPE once per point of a hyperparameter space; every trial is a run directory in
    RUNS_DIR/SWEEP-NAME, with sweep.json, results.csv (best first) and sweep.png.

    --name names the sweep folder; --seed seeds every trial and the random draws.

    \b
    Example:
      labkit sweep mlp --dataset digits --epochs 10 --grid 'learning_rate=[0.1,0.01,0.001]' \\
          --grid 'dropout=[0,0.5]' --name lr-dropout
      labkit sweep cnn --random 8 --range 'learning_rate=loguniform(1e-4,1e-1)' \\
          --range 'dropout=uniform(0,0.6)' --choice 'optimizer=[sgd,adam]'
      labkit sweep --config sweep.yaml
      labkit sweep --resume runs/lr-dropout
      labkit sweep mlp --grid 'learning_rate=[0.1,0.01]' --cluster local:2
    """
    from labkit import cluster as trials
    from labkit import sweeps
    from labkit.config import parse_counts, resolve_train_config
    from labkit.options import parse_assignments, parse_duration

    seconds = parse_duration(max_time, "--max-time") if max_time else None
    if cluster is not None:
        trials.check(cluster)
    if resume_sweep:
        _refuse_with_resume("a sweep with its saved space and options", flags, RECIPE=recipe,
                            **{"--config": config_file, "--set": assignments,
                               "dataset options": data_options,
                               "--grid/--range/--choice/--random":
                                   grid or ranges or choice or random_trials is not None,
                               "--max-trials": max_trials})
        quiet_tensorflow()
        return _report_sweep(lambda stop: trials.resume(resume_sweep, click.echo, seconds, stop,
                                                        cluster))
    flags = parse_counts(flags)
    space, max_trials = sweeps.space_and_limit(
        config_file, parse_assignments(grid, "--grid"),
        {k: str(v) for k, v in parse_assignments(ranges, "--range").items()},
        parse_assignments(choice, "--choice"), random_trials, max_trials)
    name = flags.pop("name")
    config = resolve_train_config(recipe=recipe, config_file=config_file, flags=flags,
                                  hparams=parse_assignments(assignments),
                                  data_options=data_options, ignore=("sweep",))
    created = sweeps.create(config, space, name=name, max_trials=max_trials)
    click.echo(f"Sweep {created.path}: {len(created.trials)} trials")
    quiet_tensorflow()
    _report_sweep(lambda stop: trials.run(created, click.echo, seconds, stop, cluster))


def _report_sweep(go) -> None:
    """Run ``go(stop)`` (a sweep) with Ctrl-C and `kill` setting ``stop``; print its results."""
    from labkit import sweeps, training
    from labkit.interrupts import stop_on_signals

    try:
        with stop_on_signals() as stop:
            done = go(stop)
    except training.Interrupted as stopped:
        folder = stopped.run.path.parent
        click.echo(f"\nInterrupted in {stopped.run.path.name}; finished trials are kept.\n"
                   f"Resume with: labkit sweep --resume {folder}", err=True)
        sys.exit(stopped.exit_code)
    frame = sweeps.results(done)
    ended = all(t["status"] in sweeps.ENDED for t in done.trials)
    columns = [c for c in frame.columns if c not in ("seconds_per_epoch",)]
    shown = frame[columns].map(lambda v: f"{v:.4g}" if isinstance(v, float) and v == v else v)
    click.echo(_table(shown))
    if ended:
        click.echo(f"Results: {done.path / layout.RESULTS}, {done.path / layout.SWEEP_PICTURE}")


@main.command(context_settings={"ignore_unknown_options": True})
@click.option("--processes", type=click.IntRange(1), required=True,
              help="How many processes train together on this machine.")
@click.option("--log-dir", type=click.Path(file_okay=False),
              help="Where processes 1..N-1 write their output (process-I.log).  [default: a "
                   "temporary folder]")
@click.argument("args", nargs=-1, type=click.UNPROCESSED, required=True)
def launch(processes, log_dir, args):
    """Start `labkit ARGS` (a data-parallel `train`) as PROCESSES processes of one group on
    this machine: a free port on 127.0.0.1, KERAS_BACKEND=jax unless set, process 0's output
    here; when one process fails the others are stopped and its exit code is returned.

    \b
    Example:
      labkit launch --processes 2 -- train cnn --dataset digits --distribute data-parallel
      labkit launch --processes 2 -- train --resume runs/cnn-digits-20261202-101500
    """
    from labkit.launch import launch as run_launch

    sys.exit(run_launch(processes, list(args), echo=lambda line: click.echo(line, err=True),
                        log_dir=log_dir))


@main.group()
def lab():
    """The lecture's claims as experiments: each writes a CSV, a PNG and a verdict.

    \b
    Example:
      labkit lab list
      labkit lab run momentum --quick
    """


@lab.command(name="list")
def lab_list():
    """List the labs: name, lecture topic, approximate run time, the claim.

    \b
    Example:
      labkit lab list
    """
    from labkit import labs

    for name in labs.names():
        info = labs.get(name)
        click.echo(f"{name:<20} ~{_duration(info.seconds):<7} {info.topic}\n{'':<29}{info.claim}")
    click.echo("\nTimes are the full versions' on 2 CPU cores. --quick versions take seconds and "
               "are noisy: their verdict holds only when the effect is more than twice the noise "
               "they measured, and is otherwise 'inconclusive at this size'.")


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{round(seconds / 60)} min"


@lab.command(name="run")
@click.argument("name")
@click.option("--quick", is_flag=True, help="A few seconds' version (fewer epochs and steps).")
@click.option("--out", help="Output folder.  [default: labs/NAME; with `all`, OUT/NAME]")
@click.option("--seed", type=int, default=LAB_SEED, show_default=True,
              help="Random seed. The default is the seed docs/labs.md's numbers were measured "
                   f"with (`labkit train` starts from {DEFAULTS['seed']}: a run is not a lab).")
@click.option("--seeds", metavar="S,S,...",
              help="Run once per seed (into OUT/seed-S) and give one verdict: it holds only if "
                   "it holds for every seed, e.g. --seeds 0,1,2. With --quick, seeds that "
                   "disagree make the verdict 'inconclusive at this size'.")
def lab_run(name, quick, out, seed, seeds):
    """Run lab NAME (or `all`): print its verdict, write NAME.csv, NAME.png and verdict.txt.

    \b
    Example:
      labkit lab run momentum
      labkit lab run dropout --quick --out /tmp/dropout --seed 1
      labkit lab run all --quick
      labkit lab run momentum --quick --seeds 0,1
      labkit lab run dropout --seeds 0,1,2
    """
    from pathlib import Path

    quiet_tensorflow()
    from labkit import labs

    seed_list = labs.parse_seeds(seeds) if seeds is not None else None
    chosen = labs.names() if name == "all" else [labs.get(name).name]
    held, began = 0, time.monotonic()
    for index, lab_name in enumerate(chosen):
        folder = labs.output_dir(lab_name, Path(out) / lab_name if out and name == "all" else out)
        started = time.monotonic()
        label = None
        if len(chosen) > 1:  # which lab of how many, and about how long the rest take
            left = labs.seconds_left(chosen[:index], started - began, chosen[index:], quick)
            label = f"[{index + 1}/{len(chosen)}] {lab_name}" + (
                f", ~{_duration(left)} left" if left is not None else "")
        if seed_list is not None:
            outcome = labs.run_seeds(lab_name, seed_list, quick=quick, out=folder, label=label)
            click.echo(outcome.verdict)
            for one, each in outcome.outcomes.items():
                click.echo(f"  seed {one}: {each.finding.verdict(quick)}")
            written = f"{folder}/seed-*/{lab_name}.csv, {lab_name}.png; {folder}/verdict.txt"
        else:
            outcome = labs.run(lab_name, quick=quick, out=folder, seed=seed, label=label)
            click.echo(outcome.verdict)
            written = f"{folder}/{lab_name}.csv, {lab_name}.png"
        held += outcome.holds
        click.echo(f"  → {written} ({_duration(time.monotonic() - started)})")
    if len(chosen) > 1:
        each = f" for every seed ({seeds})" if seed_list is not None else ""
        click.echo(f"{held} of {len(chosen)} claims hold{each}; "
                   f"{_duration(time.monotonic() - began)} in all.")


@main.command()
@click.argument("names", nargs=-1)
@click.option("--out", default=".", show_default=True, help="Folder to write the notebooks to.")
@click.option("--force", is_flag=True, help="Replace a notebook of the same name in --out.")
def notebook(names, out, force):
    """Write the course's Jupyter notebooks NAMES (or all) to --out; without NAMES, list them.

    One notebook per part of the lecture (optimisation, regularisation, convolution), your own
    data end to end, and the R lab beside Python; each runs top to bottom offline.

    \b
    Example:
      labkit notebook
      labkit notebook optimisation --out course
      labkit notebook all --out course
    """
    from labkit import notebooks

    if not names:
        for name, entry in notebooks.NOTEBOOKS.items():
            click.echo(f"{name:<15} {entry.title}")
        return
    for path in notebooks.write(list(names), out, force=force):
        click.echo(f"Wrote {path}")
    click.echo("Open with: jupyter lab (or VS Code, or upload to Colab)")


@main.command()
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port on 127.0.0.1 (0: any free one).")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in your browser.")
def playground(port, open_browser):
    """The TensorFlow Playground as a local page, with Keras and the lecture's optimizers.

    Serves http://127.0.0.1:PORT/ until Ctrl-C; the page trains in this process.

    \b
    Example:
      labkit playground --open
      labkit playground --port 0
    """
    quiet_tensorflow()
    from labkit.playground.server import serve

    serve(port, open_browser, echo=click.echo)
