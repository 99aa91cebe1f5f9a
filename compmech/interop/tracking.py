"""MLflow tracking of a finished run ([tracking] mlflow = true): parameters, metrics by step, headlines, artifacts.

The run directory stays the source of truth; MLflow gets a copy: the resolved config flattened to parameters
(``model.d_model``, ``process.params.x``, ...), every metrics.jsonl line as metrics at its step (``loss``,
``relative_loss``, ``optimal_loss``, ``train_loss``, ``tokens``), the probe's headline (``probe.mse``,
``probe.mse_heldout_contexts``, ..., ``probe_mse.<layer>``), each study's headline numbers (``<study>.<key>``),
and report.html, probe.json, summary.json, config.toml and figures/ as artifacts. The MLflow run's id, tracking
URI and experiment are written to the run directory's ``mlflow.json``; its tag ``compmech.run_dir`` points back, so
`compmech.load_run` opens a run from its MLflow id (`run_dir_of`).

Where: [tracking] tracking_uri, else a local file store ``mlruns/`` beside the run directory (MLflow 3 keeps the
file store in maintenance mode and refuses it unless ``MLFLOW_ALLOW_FILE_STORE=true``, which is set for it here,
for this process; to read that store elsewhere set it too, or choose a database URI). Tracking never blocks or
fails a run: any error (MLflow missing, a server down) is one warning line on stderr.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from compmech.runs.errors import RunDirError
from compmech.runs.files import write_json_atomic
from compmech.runs.settings import TrackingSettings

#: The file in a run directory that names its MLflow run.
MLFLOW_JSON = "mlflow.json"
#: The MLflow tag that names a run's directory.
RUN_DIR_TAG = "compmech.run_dir"
#: The metrics.jsonl fields logged as metrics (by step).
METRIC_FIELDS = ("loss", "relative_loss", "optimal_loss", "train_loss", "relative_loss_stderr", "tokens")
#: The probe result fields logged as the probe's headline.
PROBE_FIELDS = ("mse", "r2", "mse_heldout_contexts", "r2_heldout_contexts", "mse_heldout", "mse_shuffled")
#: MLflow's limit on a parameter value's length.
MAX_PARAM_CHARS = 6000


def default_uri(run_dir: Path) -> str:
    """The local file store beside the run directory: ``file:<parent>/mlruns``."""
    return (run_dir.resolve().parent / "mlruns").as_uri()


def flatten(table: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """("a.b.c", value as text) for every leaf of a nested table."""
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            yield from flatten(value, name + ".")
        else:
            text = json.dumps(value) if isinstance(value, (list, tuple, dict, bool)) or value is None else str(value)
            yield name, text[:MAX_PARAM_CHARS]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def headline_metrics(summary: Any) -> dict[str, float]:
    """The probe's and the studies' headline numbers of a `RunSummary`, by MLflow metric name."""
    out = {}
    for key in PROBE_FIELDS:
        value = _number((summary.probe or {}).get(key))
        if value is not None:
            out[f"probe.{key}"] = value
    for layer, mse in (summary.probe_mse_by_layer or {}).items():
        if _number(mse) is not None:
            out[f"probe_mse.{layer}"] = float(mse)
    for key in ("distance_r2_beliefs", "distance_r2_next_token"):
        value = _number((summary.geometry or {}).get(key))
        if value is not None:
            out[f"geometry.{key}"] = value
    for study, record in (summary.studies or {}).items():
        for key, value in record.items():
            if _number(value) is not None:
                out[f"{study}.{key}"] = float(value)
    return out


def track_run(settings: TrackingSettings, run_dir: Path, summary: Any) -> str | None:
    """Log the finished run in ``run_dir`` to MLflow; return the MLflow run id, or None after one warning line."""
    try:
        return _track(settings, Path(run_dir), summary)
    except Exception as exc:  # noqa: BLE001 -- tracking must never fail a run, whatever the library raises
        print(
            f"compmech: warning: MLflow tracking failed ({type(exc).__name__}: {' '.join(str(exc).split())[:300]}); "
            "the run directory is complete",
            file=sys.stderr,
        )
        return None


#: For a tracking server: MLflow's HTTP retries and timeout (its defaults, 7 retries with backoff and 120 s, would
#: hold a finished run for minutes when the server is down); set the variables yourself to override.
HTTP_SETTINGS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}


def _client(uri: str) -> Any:
    if uri.startswith("file:") or "://" not in uri:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 refuses its file store without it
    else:
        for key, value in HTTP_SETTINGS.items():
            os.environ.setdefault(key, value)
    from mlflow.tracking import MlflowClient  # optional ([tracking] extra): imported only when a run is tracked

    return MlflowClient(tracking_uri=uri)


def _track(settings: TrackingSettings, run_dir: Path, summary: Any) -> str:
    from mlflow.entities import Metric, Param  # optional ([tracking] extra): imported only when a run is tracked

    uri = settings.tracking_uri or default_uri(run_dir)
    client = _client(uri)
    name = settings.experiment or summary.name
    experiment = client.get_experiment_by_name(name)
    experiment_id = experiment.experiment_id if experiment is not None else client.create_experiment(name)
    run = client.create_run(
        experiment_id,
        run_name=summary.name,
        tags={RUN_DIR_TAG: str(run_dir.resolve()), "compmech.process": summary.process.name},
    )
    run_id = run.info.run_id
    try:
        import tomllib

        config = tomllib.loads((run_dir / "config.toml").read_text(encoding="utf-8"))
        params = [Param(k, v) for k, v in flatten(config)]
        for i in range(0, len(params), 100):  # MLflow takes at most 100 parameters a batch
            client.log_batch(run_id, params=params[i : i + 100])
        metrics = []
        for line in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            step = int(record.get("step", 0))
            metrics += [
                Metric(key, float(record[key]), 0, step)
                for key in METRIC_FIELDS
                if _number(record.get(key)) is not None
            ]
        metrics += [Metric(key, value, 0, int(summary.steps)) for key, value in headline_metrics(summary).items()]
        for i in range(0, len(metrics), 1000):  # MLflow takes at most 1000 metrics a batch
            client.log_batch(run_id, metrics=metrics[i : i + 1000])
        for file in ("report.html", "probe.json", "summary.json", "config.toml"):
            if (run_dir / file).is_file():
                client.log_artifact(run_id, str(run_dir / file))
        if (run_dir / "figures").is_dir():
            client.log_artifacts(run_id, str(run_dir / "figures"), artifact_path="figures")
        client.set_terminated(run_id, "FINISHED")
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    write_json_atomic(
        run_dir / MLFLOW_JSON,
        {"run_id": run_id, "tracking_uri": uri, "experiment": name, "experiment_id": experiment_id},
    )
    return run_id


def run_dir_of(run_id: str, tracking_uri: str | None = None) -> Path:
    """The run directory of an MLflow run that `track_run` logged (its ``compmech.run_dir`` tag).

    ``tracking_uri``: where to look (default: $MLFLOW_TRACKING_URI, else the local stores ``runs/mlruns`` and
    ``mlruns`` of the working directory). Raises `RunDirError` naming what is missing."""
    uris = (
        [tracking_uri]
        if tracking_uri
        else [u for u in (os.environ.get("MLFLOW_TRACKING_URI"),) if u]
        + [(Path.cwd() / d).as_uri() for d in ("runs/mlruns", "mlruns") if (Path.cwd() / d).is_dir()]
    )
    if not uris:
        raise RunDirError(
            f"{run_id!r} is not a run directory, and no MLflow store was found to look it up in; pass "
            "tracking_uri= (the [tracking] tracking_uri, or file:<runs>/mlruns)"
        )
    try:
        import mlflow.exceptions  # optional ([tracking] extra): only to open a run by its MLflow id
    except ImportError:
        raise RunDirError(
            f"{run_id!r} is not a run directory; to open an MLflow run id install the extra: "
            "pip install 'compmech[tracking]'"
        ) from None
    for uri in uris:
        try:
            run = _client(uri).get_run(run_id)
        except mlflow.exceptions.MlflowException:
            continue
        path = run.data.tags.get(RUN_DIR_TAG)
        if path:
            return Path(path)
    raise RunDirError(
        f"{run_id!r} is neither a run directory nor an MLflow run logged by compmech in "
        f"{', '.join(uris)}; pass tracking_uri= where it was logged"
    )
