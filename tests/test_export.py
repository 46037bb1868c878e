"""``labkit export`` (labkit.export): the export is reloaded and must predict as the trained model
does, else it is removed."""

import numpy as np
import pytest


@pytest.mark.parametrize("fmt", ["keras", "savedmodel"])
def test_export_reloads_and_checks_predictions(cli, digits_run, tmp_path, fmt):
    output = tmp_path / ("m.keras" if fmt == "keras" else "saved")
    result = cli("export", digits_run.path, "--format", fmt, "--output", output)
    assert result.exit_code == 0, result.output
    assert f"Exported {fmt} → {output} (checked on 64 examples" in result.output
    assert output.exists()


def test_export_mismatch_fails_and_removes_the_export(digits_run, tmp_path, monkeypatch):
    from labkit import export
    from labkit.errors import LabkitError

    monkeypatch.setattr(export, "_reload_keras", lambda path: lambda x: np.full((len(x), 10), 0.1))
    output = tmp_path / "bad.keras"
    with pytest.raises(LabkitError, match="disagrees with the trained model"):
        export.export(digits_run.path, "keras", str(output))
    assert not output.exists()
