"""`labkit lab` (issue 5): every lab runs in its quick version; the verdict is computed from the
CSV it writes, so changing the numbers changes the verdict."""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

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
            frame, verdict = labs.run(name, quick=True, out=out, seed=0)
            done[name] = (out, frame, verdict)
        return done[name]

    return run


HEAVY = {"residual", "playground"}  # quick, but 15-25 s each: run with `make test-slow`


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n
                                  for n in labs.ORDER])
def test_lab_writes_csv_plot_and_a_verdict_derived_from_the_csv(lab_runs, name):
    out, frame, verdict = lab_runs(name)
    csv, png = out / f"{name}.csv", out / f"{name}.png"
    assert png.stat().st_size > 5_000 and png.read_bytes()[:4] == b"\x89PNG"
    written = pd.read_csv(csv)
    pd.testing.assert_frame_equal(written, frame)  # the returned numbers are the CSV's
    assert (out / "verdict.txt").read_text().strip() == verdict
    assert verdict.startswith(f"{name}: ") and re.search(r"— claim (holds|NOT supported)",
                                                         verdict)
    assert labs.verdict_of(name, written) == verdict
    measured = [c for c in written.select_dtypes("number") if c not in KEYS]
    assert measured, "a lab must measure something"
    changed = written.copy()
    changed[measured] = changed[measured] * 1.37 + 0.011
    assert labs.verdict_of(name, changed) != verdict  # other numbers, another verdict


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
    for name in labs.ORDER:
        info = labs.get(name)
        assert re.search(rf"^{re.escape(name)}\s+~\d+ (s|min)\s+{re.escape(info.topic)}",
                         result.output, re.M)
        assert info.claim in result.output
    assert set(labs.names()) == set(labs.ORDER) == set(labs.LABS)


def test_lab_run_prints_the_verdict_and_writes_to_out(cli, tmp_path):
    result = cli("lab", "run", "convolution", "--quick", "--out", tmp_path / "c", "--seed", "3")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("convolution: 3 cases") and "claim holds" in result.output
    assert (tmp_path / "c" / "convolution.csv").exists()


def test_lab_run_all_runs_each_lab_into_its_folder(cli, tmp_path, monkeypatch):
    calls = []

    def fake_run(name, quick, out, seed):
        calls.append((name, quick, Path(out), seed))
        return pd.DataFrame(), f"{name}: measured"

    monkeypatch.setattr(labs, "run", fake_run)
    result = cli("lab", "run", "all", "--quick", "--out", tmp_path, "--seed", "2")
    assert result.exit_code == 0, result.output
    assert calls == [(n, True, tmp_path / n, 2) for n in labs.ORDER]


@pytest.mark.parametrize(("args", "message"), [
    (["lab", "run", "momentun"], "Error: Unknown lab 'momentun'. Did you mean: momentum?"),
    (["lab", "run", "momentum", "--seed", "-1"], "Error: --seed must be an integer >= 0"),
])
def test_lab_errors_are_one_line(cli, args, message):
    result = cli(*args)
    assert result.exit_code == 1 and result.output.startswith(message), result.output


def test_makefile_has_a_target_per_lab_calling_the_cli():
    makefile = (Path(__file__).parents[1] / "Makefile").read_text()
    for name in labs.ORDER:
        assert re.search(rf"^lab-{re.escape(name)}: ## .+\n\t\$\(BIN\)/labkit lab run "
                         rf"{re.escape(name)}\n", makefile, re.M), name
    assert re.search(r"^labs: ## .+\n\t\$\(BIN\)/labkit lab run all\n", makefile, re.M)
