"""`labkit lab` (labkit.labs): every lab runs in its quick version; the verdict is computed from
the CSV it writes, so other numbers can turn it; labs register themselves and reach the Makefile
and docs/labs.md."""

import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import error_line

from labkit import labs

# Columns that identify a row (settings, positions) rather than measure something.
KEYS = {"epoch", "step", "layer", "i", "j", "alpha", "dropout", "learning_rate", "batch_size",
        "x1", "x2", "steps_per_epoch"}


@pytest.fixture(scope="module")
def lab_runs(tmp_path_factory):
    """Each lab's quick run, once: name → (out folder, frame, verdict)."""
    done = {}

    def run(name):
        if name not in done:
            out = tmp_path_factory.mktemp("labs") / name
            outcome = labs.run(name, quick=True, out=out, seed=0)
            assert outcome.holds == outcome.verdict.endswith("claim holds")
            done[name] = (out, outcome.frame, outcome.verdict)
        return done[name]

    return run


# Quick, but 4-25 s each on 2 cores: they run with `make test-slow` (the fast suite keeps a lab
# of each kind: optimisation (gd-vs-sgd, momentum), regularisation (dropout), convolution,
# depth (vanishing-gradients), seeing).
HEAVY = {"residual", "playground", "transfer", "early-stopping", "weight-decay",
         "parameter-sharing", "ensemble", "adaptive-optimizers", "augmentation",
         "learning-rate", "lr-schedule", "initialization"}


def holds(verdict: str) -> bool:
    """Whether a verdict says the claim holds (a quick run's other verdicts are "NOT supported"
    and "inconclusive at this size"), after its measured margin."""
    assert re.search(r"; margin: .+ — (claim holds|claim NOT supported on this run|inconclusive "
                     r"at this size: the effect is within 2× the noise this quick run "
                     r"measured)$", verdict), verdict
    return verdict.endswith("claim holds")


def variants(frame: pd.DataFrame, measured: list[str]):
    """Other tables of the same shape: groups swapped; all measurements, one measured column, or
    one group's measurements scaled up, negated or reversed."""
    groups = [c for c in frame.select_dtypes("object") if frame[c].nunique() > 1]
    for column in groups:
        values = list(dict.fromkeys(frame[column]))
        yield frame.replace({column: dict(zip(values, reversed(values), strict=True))})
    changes = (lambda v: v * 1000 + 1, lambda v: -v, lambda v: v[::-1].to_numpy())
    parts = [(slice(None), measured), *((slice(None), [c]) for c in measured),
             *((frame[g] == v, measured) for g in groups for v in frame[g].unique())]
    for rows, columns in parts:
        for change in changes:
            changed = frame.copy()
            changed.loc[rows, columns] = changed.loc[rows, columns].apply(change)
            yield changed


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n
                                  for n in labs.names()])
def test_lab_writes_csv_plot_and_a_verdict_derived_from_the_csv(lab_runs, name):
    out, frame, verdict = lab_runs(name)
    csv, png = out / f"{name}.csv", out / f"{name}.png"
    assert png.stat().st_size > 5_000 and png.read_bytes()[:4] == b"\x89PNG"
    written = pd.read_csv(csv)
    pd.testing.assert_frame_equal(written, frame)  # the returned numbers are the CSV's
    assert (out / "verdict.txt").read_text().strip() == verdict
    assert verdict.startswith(f"{name}: ")
    assert labs.verdict_of(name, written, quick=True) == verdict
    measured = [c for c in written.select_dtypes("number") if c not in KEYS]
    assert measured, "a lab must measure something"
    truths = set()
    for variant in variants(written, measured):
        try:
            truths.add(holds(labs.verdict_of(name, variant)))
        except (KeyError, ValueError, IndexError, ZeroDivisionError):
            continue  # a table the verdict cannot read (e.g. a group it looks up by name)
    assert truths - {holds(verdict)}, "other numbers must be able to turn the verdict"


def test_momentum_verdict_follows_the_numbers(lab_runs):
    _, frame, verdict = lab_runs("momentum")
    assert "claim holds" in verdict and re.search(r"α=0\.9 reached loss < 0\.001 in \d+ steps",
                                                  verdict)
    swapped = frame.replace({"optimizer": {"sgd": "momentum α=0.9", "momentum α=0.9": "sgd"}})
    assert "claim NOT supported" in labs.verdict_of("momentum", swapped)


def test_convolution_matches_by_hand():
    x = np.arange(1, 13, dtype=float).reshape(3, 4)
    kernel = np.array([[1.0, 2.0], [3.0, 4.0]])
    expected = [[1 + 4 + 15 + 24, 2 + 6 + 18 + 28, 3 + 8 + 21 + 32],
                [5 + 12 + 27 + 40, 6 + 14 + 30 + 44, 7 + 16 + 33 + 48]]
    np.testing.assert_array_equal(labs.convolution.cross_correlate(x, kernel), expected)


def test_lab_list_shows_every_lab_with_topic_claim_and_time(cli):
    result = cli("lab", "list")
    assert result.exit_code == 0
    for name in labs.names():
        info = labs.get(name)
        assert re.search(rf"^{re.escape(name)}\s+~\d+ (s|min)\s+{re.escape(info.topic)}",
                         result.output, re.M)
        assert info.claim in result.output
    listed = re.findall(r"^(\S+)\s+~", result.output, re.M)
    assert listed == labs.names() == sorted(labs.LABS, key=lambda n: labs.LABS[n].order)
    assert len(listed) == 19


def test_lab_topics_use_the_outlines_numbers():
    from labkit import lecture

    for name in labs.names():
        assert set(labs.get(name).topics) <= set(lecture.TOPICS), name
    assert labs.get("momentum").topic == "6 Momentum"
    assert labs.get("weight-decay").topic == "9 Norm penalties (L2, L1)"


def test_a_lab_registers_itself_with_its_order_and_refuses_a_taken_name(monkeypatch):
    from labkit.labs import _kit

    monkeypatch.setattr(_kit, "LABS", dict(_kit.LABS))
    with pytest.raises(ValueError, match="has order 4, as 'momentum' already does"):
        _kit.lab("twin", order=4, topic=6, claim="c", seconds=1, verdict=str, plot=print)(
            lambda quick, seed: pd.DataFrame())
    with pytest.raises(ValueError, match="A lab named 'momentum' is already registered"):
        _kit.lab("momentum", order=98, topic=6, claim="c", seconds=1, verdict=str,
                 plot=print)(lambda quick, seed: pd.DataFrame())
    _kit.lab("extra", order=99, topic=6, claim="c", seconds=1, verdict=str, plot=print)(
        lambda quick, seed: pd.DataFrame())
    assert _kit.LABS["extra"].topic == "6 Momentum"


def test_lab_run_prints_the_verdict_and_writes_to_out(cli, tmp_path):
    result = cli("lab", "run", "convolution", "--quick", "--out", tmp_path / "c", "--seed", "3")
    assert result.exit_code == 0, result.output
    # stdout: a slow machine may show a progress line on stderr first
    assert result.stdout.startswith("convolution: 3 cases") and "claim holds" in result.stdout
    assert (tmp_path / "c" / "convolution.csv").exists()


def test_lab_run_all_runs_each_lab_into_its_folder(cli, tmp_path, monkeypatch):
    calls = []

    def fake_run(name, quick, out, seed, label):
        calls.append((name, quick, Path(out), seed))
        assert label.startswith(f"[{len(calls)}/{len(labs.names())}] {name}")
        finding = labs.Finding("measured", name != "momentum", 1.0, "{}")
        return labs.Outcome(name, pd.DataFrame(), finding, quick)

    monkeypatch.setattr(labs, "run", fake_run)
    result = cli("lab", "run", "all", "--quick", "--out", tmp_path, "--seed", "2")
    assert result.exit_code == 0, result.output
    assert calls == [(n, True, tmp_path / n, 2) for n in labs.names()]
    assert re.search(rf"^  → {tmp_path}/momentum/momentum.csv, momentum.png \(\d+ s\)$",
                     result.output, re.M)
    assert re.fullmatch(rf"{len(calls) - 1} of {len(calls)} claims hold; \d+ s in all\.",
                        result.output.splitlines()[-1])


@pytest.mark.parametrize(("args", "message"), [
    (["lab", "run", "momentun"],
     "Error: Unknown lab 'momentun'. Did you mean: momentum? See `labkit lab list`."),
    (["lab", "run", "momentum", "--seed", "-1"],
     "Error: --seed must be an integer >= 0. Received: -1"),
])
def test_lab_errors_are_one_line(cli, args, message):
    result = cli(*args)
    assert result.exit_code == 1 and error_line(result) == message


ROOT = Path(__file__).parents[1]


def dry_make(target: str) -> str:
    """What ``make -n target`` would run (outside any make that runs the tests)."""
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    return subprocess.run(["make", "--no-print-directory", "-n", *target.split()], cwd=ROOT,
                          env=env, capture_output=True, text=True, check=True).stdout.strip()


def test_make_has_a_target_for_every_registered_lab():
    """`make lab-NAME` is one pattern rule: every lab the registry knows has its target."""
    for name in labs.names():
        assert dry_make(f"lab-{name}").endswith(f"labkit lab run {name} --out labs/{name}")
    assert dry_make("labs").endswith("labkit lab run all --out labs")
    assert dry_make("lab-momentum LABS_OUT=/tmp/elsewhere").endswith(
        "labkit lab run momentum --out /tmp/elsewhere/momentum")


def test_docs_have_a_paragraph_per_lab():
    docs = (ROOT / "docs" / "labs.md").read_text()
    for name in labs.names():
        info = labs.get(name)
        assert f"**{name}** (topic{'s' if len(info.topics) > 1 else ''} " in docs, name
        assert f"`make lab-{name}`" in docs, name


def test_seeds_give_one_verdict_with_the_margins_range(tmp_path):
    """The per-seed verdicts come from each seed's CSV; removing the measured effect from one
    seed's numbers turns 'holds' into 'inconclusive' (quick) or 'not robust' (full), and from
    every seed's into 'contradicted'; the combined verdict quotes the margin's median and
    range."""
    outcome = labs.run_seeds("momentum", [0, 1], quick=True, out=tmp_path)
    combined = outcome.verdict
    found = {seed: labs.finding_of("momentum", pd.read_csv(tmp_path / f"seed-{seed}" /
                                                           "momentum.csv")) for seed in (0, 1)}
    low, high = sorted(f.margin for f in found.values())
    assert combined == (f"momentum: claim holds for every seed (0, 1): momentum α=0.9 needs "
                        f"{(low + high) / 2:.1f}× fewer steps (median; range {low:.1f}–"
                        f"{high:.1f} over 2 seeds)")
    assert high > 1.5 and outcome.holds
    assert (tmp_path / "seed-0" / "momentum.csv").exists()
    assert (tmp_path / "verdict.txt").read_text().startswith(combined)
    frame = pd.read_csv(tmp_path / "seed-1" / "momentum.csv")
    flat = frame.copy()
    sgd = flat.loc[flat["optimizer"] == "sgd", "loss"].to_numpy()
    for name in flat["optimizer"].unique():
        flat.loc[flat["optimizer"] == name, "loss"] = sgd  # no optimizer beats plain SGD
    without = labs.finding_of("momentum", flat)
    assert not without.holds() and outcome.outcomes[0].holds
    mixed = {0: found[0], 1: without}
    verdict, holds = labs.combined_verdict("momentum", mixed, quick=True)
    assert not holds and verdict.startswith(
        "momentum: inconclusive at this size (holds for seed 0, not for 1: the quick version is "
        "within its own noise; momentum α=0.9 needs ")
    verdict, holds = labs.combined_verdict("momentum", mixed, quick=False)
    assert not holds and verdict.startswith(
        "momentum: claim NOT robust: holds for seed 0, not for 1; ")
    verdict, holds = labs.combined_verdict("momentum", {0: without, 1: without}, quick=False)
    assert not holds and verdict.startswith("momentum: claim contradicted for every seed (0, 1); ")


def _dropout_table(scale: float, seed: int = 0) -> pd.DataFrame:
    """A dropout lab table: without dropout the validation loss falls, then rises with noise;
    with dropout it is ``scale`` times that curve."""
    rng = np.random.default_rng(seed)
    epochs = np.arange(1, 16)
    base = 0.5 + 0.007 * (epochs - 5) ** 2 + rng.normal(0, 0.03, len(epochs))
    rows = [pd.DataFrame({"dropout": rate, "epoch": epochs, "loss": 0.1, "train_accuracy": 1.0,
                          "val_loss": base * (scale if rate else 1.0), "val_accuracy": 0.8})
            for rate in (0.0, 0.3)]
    return pd.concat(rows)


def test_quick_verdicts_hold_only_beyond_the_noise_they_measured():
    """A quick run whose effect is within its noise is inconclusive; the same effect scaled well
    beyond that noise holds (or, reversed, is contradicted). A full run goes by its numbers."""
    within = labs.verdict_of("dropout", _dropout_table(0.97), quick=True)
    assert within.endswith("inconclusive at this size: the effect is within 2× the noise this "
                           "quick run measured"), within
    assert labs.verdict_of("dropout", _dropout_table(0.97), quick=False).endswith("claim holds")
    assert labs.verdict_of("dropout", _dropout_table(0.5), quick=True).endswith("claim holds")
    assert labs.verdict_of("dropout", _dropout_table(2.5), quick=True).endswith(
        "claim NOT supported on this run")
    finding = labs.finding_of("dropout", _dropout_table(0.5))
    assert finding.noise > 0 and finding.margin > 2 * finding.noise
    assert re.search(r"margin: dropout 0\.3 keeps the validation loss \d\.\d{3} less far above "
                     r"its minimum ± \d\.\d{3} noise",
                     labs.verdict_of("dropout", _dropout_table(0.5)))


def test_a_curve_too_short_to_show_noise_is_never_clear():
    """One epoch shows no noise at all: a quick run of that size cannot make a claim hold."""
    short = _dropout_table(0.5)
    short = short[short["epoch"] <= 1]
    assert labs.finding_of("dropout", short).noise == float("inf")
    assert "inconclusive" in labs.verdict_of("dropout", short, quick=True)


def test_lab_run_seeds_on_the_command_line(cli, tmp_path):
    result = cli("lab", "run", "momentum", "--quick", "--seeds", "0,1", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith(
        "momentum: claim holds for every seed (0, 1): momentum α=0.9 needs ")
    assert error_line(cli("lab", "run", "momentum", "--seeds", "0,x")) == (
        "Error: --seeds takes distinct whole numbers >= 0, e.g. --seeds 0,1,2. "
        "Received: '0,x'")


def _transfer_table(pretrained: float, scratch: float) -> pd.DataFrame:
    """A transfer lab table: three draws, each model's test accuracy per draw."""
    rows = []
    for draw, jitter in enumerate((0.0, 0.02, -0.02)):
        for model, score in (("frozen base", pretrained - 0.05), ("fine-tuned", pretrained),
                             ("scratch", scratch)):
            rows += [{"model": model, "draw": draw, "epoch": e, "loss": 1 / e, "val_loss": 1.0,
                      "val_accuracy": score, "test_accuracy": score + jitter,
                      "test_examples": 180} for e in (1, 2, 3)]
    return pd.DataFrame(rows)


def test_transfer_verdict_compares_the_pretrained_base_with_scratch_per_draw():
    """The redesigned transfer lab: the better pretrained variant against scratch in every
    draw, the mean gain as the margin; the same numbers with the roles swapped contradict it."""
    verdict = labs.verdict_of("transfer", _transfer_table(0.55, 0.33))
    assert "the fine-tuned beats scratch in 3 of 3 draws" in verdict
    assert re.search(r"margin: the fine-tuned adds 0\.220 test accuracy over training from "
                     r"scratch ± 0\.0\d\d noise — claim holds$", verdict), verdict
    swapped = labs.verdict_of("transfer", _transfer_table(0.33, 0.55))
    assert swapped.endswith("claim NOT supported on this run")
    close = labs.verdict_of("transfer", _transfer_table(0.36, 0.33), quick=True)
    assert close.endswith("inconclusive at this size: the effect is within 2× the noise this "
                          "quick run measured")


def test_a_variant_keeps_its_colour_in_every_panel_of_a_lab_figure(monkeypatch, tmp_path):
    """dropout.png drew "dropout 0" orange in one panel and blue in the other."""
    from labkit.labs import regularization

    drawn = {}
    monkeypatch.setattr(regularization, "save", lambda fig, path: drawn.setdefault("fig", fig))
    epochs = np.arange(1, 6)
    frame = pd.concat([pd.DataFrame({"dropout": rate, "epoch": epochs, "loss": 1 / epochs,
                                     "train_accuracy": 0.9, "val_loss": 1.0,
                                     "val_accuracy": 0.8 - rate / 10})
                       for rate in (0.0, 0.5)])
    labs.get("dropout").plot(frame, tmp_path / "dropout.png")
    colour_of: dict[str, set] = {}
    for ax in drawn["fig"].axes:
        for line in ax.get_lines():
            variant = line.get_label().split()[1]  # "dropout 0 loss", "dropout 0.5"
            colour_of.setdefault(variant, set()).add(line.get_color())
    assert set(colour_of) == {"0", "0.5"}
    assert all(len(colours) == 1 for colours in colour_of.values())
    assert colour_of["0"] != colour_of["0.5"]
