"""Options written as text (labkit.options): one parser for values, calls and settings."""

import pytest

from labkit import options
from labkit.errors import LabkitError


@pytest.mark.parametrize(("text", "value"), [
    ("0.5", 0.5), ("[64, 32]", [64, 32]), ("64,32", (64, 32)), ("true", True), ("False", False),
    ("None", None), ("relu", "relu"), ("[x1, x2]", ["x1", "x2"]), ("x1,sin(x1)", "x1,sin(x1)"),
    ("random_normal(stddev=0.05)", "random_normal(stddev=0.05)"), (" 3 ", 3),
    ('{"filters": [16, 32]}', {"filters": [16, 32]}),
])
def test_parse_value(text, value):
    assert options.parse_value(text) == value


def test_parse_assignments_and_its_error():
    assert options.parse_assignments(["units=[64, 32]", "dropout=0.2"]) == \
        {"units": [64, 32], "dropout": 0.2}
    with pytest.raises(LabkitError) as info:
        options.parse_assignments(["noise"], "--data-option")
    assert str(info.value) == ("--data-option takes key=value, e.g. --data-option dropout=0.2. "
                               "Received: 'noise'")


def test_parse_call():
    assert options.parse_call("cosine") == ("cosine", [], {})
    assert options.parse_call("constant(0.1)") == ("constant", [0.1], {})
    assert options.parse_call("inverse-time(tau=5)") == ("inverse-time", [], {"tau": 5})
    with pytest.raises(ValueError, match="arguments must be key=value literals"):
        options.parse_call("step(every=)")
    with pytest.raises(ValueError, match="expected NAME"):
        options.parse_call("1up")


def test_parse_settings_reads_values_as_parse_value_does():
    assert options.parse_settings("flip,rotation=0.1,restore_best=false,flip_mode=vertical") == \
        {"flip": True, "rotation": 0.1, "restore_best": False, "flip_mode": "vertical"}
    with pytest.raises(ValueError, match="key=value items"):
        options.parse_settings("rotation=")


def test_did_you_mean():
    assert options.did_you_mean("cnnn", ["cnn", "cnn1d", "mlp"]) == " Did you mean: cnn, cnn1d?"
    assert options.did_you_mean("zzz", ["cnn"]) == ""
