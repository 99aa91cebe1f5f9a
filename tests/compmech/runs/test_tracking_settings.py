"""[tracking]: read and checked like every section, written only when on, never failing a run."""

import tomllib
from pathlib import Path

import pytest

from compmech.interop.tracking import flatten, track_run
from compmech.runs.config import ConfigError, load_config
from compmech.runs.settings import TrackingSettings

TINY = Path(__file__).resolve().parents[2] / "data" / "tiny_mess3.toml"


def test_tracking_is_off_by_default_and_left_out_of_the_resolved_config():
    cfg = load_config(TINY)
    assert cfg.tracking == TrackingSettings() and "tracking" not in tomllib.loads(cfg.to_toml())


def test_tracking_table_is_read_and_checked():
    cfg = load_config(TINY, {"tracking.mlflow": True, "tracking.tracking_uri": "sqlite:///m.db"})
    assert cfg.tracking == TrackingSettings(mlflow=True, tracking_uri="sqlite:///m.db")
    assert tomllib.loads(cfg.to_toml())["tracking"]["mlflow"] is True
    with pytest.raises(ConfigError, match=r"unknown key \[tracking\] 'mlflw'"):
        load_config(TINY, {"tracking.mlflw": True})
    with pytest.raises(ConfigError, match=r"\[tracking\] mlflow must be bool"):
        load_config(TINY, {"tracking.mlflow": "yes"})


def test_a_tracking_failure_is_one_warning_line(tmp_path, capsys, monkeypatch):
    """Whatever goes wrong (here: MLflow missing, or a store that cannot be created), track_run returns None and
    says so in one line; it never raises."""
    import builtins

    real = builtins.__import__

    def no_mlflow(name, *args, **kwargs):
        if name.startswith("mlflow"):
            raise ImportError("No module named 'mlflow'")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_mlflow)
    assert track_run(TrackingSettings(mlflow=True), tmp_path, summary=None) is None
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("compmech: warning: MLflow tracking failed")


def test_flatten_names_every_leaf():
    assert dict(flatten({"model": {"d_model": 64, "kind": "transformer"}, "probe": {"layers": []}, "seed": 3})) == {
        "model.d_model": "64",
        "model.kind": "transformer",
        "probe.layers": "[]",
        "seed": "3",
    }
