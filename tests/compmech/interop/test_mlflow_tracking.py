"""[tracking] mlflow = true (the [tracking] extra): a run leaves an MLflow run that mlflow.search_runs finds with its
parameters, the relative loss by step and the report; compmech.load_run opens the run from its MLflow id."""

import json

import pytest

mlflow = pytest.importorskip("mlflow")

import compmech  # noqa: E402
from compmech.runs.cli import main  # noqa: E402

CONFIG = """
name = "tracked"
seed = 3
[process]
name = "mess3"
[model]
context_length = 4
n_layers = 1
d_model = 8
n_heads = 1
d_head = 4
d_mlp = 16
[training]
steps = 100
batch_size = 16
steps_per_call = 50
eval_every = 50
checkpoint_every = 50
[probe]
n_repeats = 1
[tracking]
mlflow = true
experiment = "compmech-tests"
"""


@pytest.fixture(scope="module")
def tracked(tmp_path_factory):
    root = tmp_path_factory.mktemp("tracked")
    (root / "tracked.toml").write_text(CONFIG)
    run_dir = root / "runs" / "tracked"
    assert main(["run", str(root / "tracked.toml"), "--out", str(run_dir), "--no-progress"]) == 0
    return run_dir


def test_the_mlflow_run_has_params_metrics_by_step_and_the_report(tracked, monkeypatch):
    record = json.loads((tracked / "mlflow.json").read_text())
    uri = record["tracking_uri"]
    assert uri == (tracked.parent / "mlruns").resolve().as_uri()  # the file store beside the runs
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 reads its file store only with this
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["compmech-tests"])
    row = runs[runs.run_id == record["run_id"]].iloc[0]
    assert row["params.model.d_model"] == "8" and row["params.process.name"] == "mess3"
    assert row["params.training.steps"] == "100"
    client = mlflow.tracking.MlflowClient(uri)
    history = client.get_metric_history(record["run_id"], "relative_loss")
    metrics = [json.loads(x) for x in (tracked / "metrics.jsonl").read_text().splitlines()]
    assert [(m.step, m.value) for m in history] == [(m["step"], pytest.approx(m["relative_loss"])) for m in metrics]
    assert row["metrics.probe.mse"] == pytest.approx(json.loads((tracked / "summary.json").read_text())["probe"]["mse"])
    artifacts = {a.path for a in client.list_artifacts(record["run_id"])}
    assert {"report.html", "probe.json", "summary.json", "config.toml", "figures"} <= artifacts


def test_load_run_opens_an_mlflow_run_id(tracked):
    record = json.loads((tracked / "mlflow.json").read_text())
    run = compmech.load_run(record["run_id"], tracking_uri=record["tracking_uri"])
    assert run.path == tracked.resolve() and run.config.name == "tracked"
    with pytest.raises(compmech.RunDirError, match="neither a run directory nor an MLflow run"):
        compmech.load_run("0" * 32, tracking_uri=record["tracking_uri"])


def test_an_unreachable_tracker_is_one_warning_and_does_not_hold_the_run(tmp_path, capsys):
    """A tracking server that does not answer (a closed local port): one warning line, within seconds."""
    import time

    (tmp_path / "c.toml").write_text(
        CONFIG.replace('experiment = "compmech-tests"', 'tracking_uri = "http://127.0.0.1:9"')
    )
    from compmech.interop.tracking import track_run
    from compmech.runs.config import load_config
    from compmech.runs.summary import ProcessName, RunSummary

    cfg = load_config(tmp_path / "c.toml")
    start = time.time()
    assert (
        track_run(cfg.tracking, tmp_path, RunSummary(name="x", process=ProcessName("mess3"), steps=0, tokens=0)) is None
    )
    assert time.time() - start < 60
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "MLflow tracking failed" in err[0]


def test_a_finished_run_exports_itself_to_transformer_lens(tracked):
    """run.to_transformer_lens() on the run this module trained: the same logits within the float32 bound."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformer_lens")
    import numpy as np

    import predictive_models
    from compmech.interop.transformer_lens import float32_bound

    run = compmech.load_run(tracked)
    hooked = run.to_transformer_lens()
    tokens = run.contexts.tokens
    ours = predictive_models.compute_logits(run.model_config, run.params, tokens, method="full")
    with torch.no_grad():
        theirs = hooked(torch.as_tensor(tokens)).numpy()
    assert np.abs(theirs - ours).max() <= float32_bound(run.model_config, np.abs(ours).max())
