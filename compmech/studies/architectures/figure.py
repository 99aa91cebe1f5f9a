"""The architecture study's grid figure, ``<out>/architectures.png``: each run's figure layer probed beside the exact
beliefs of its process (drawn by `compmech.studies.architectures.plots`), the arrays of each run refitted once and
kept in ``<out>/geometry/<process>-<kind>.npz`` so that a second call redraws without refitting."""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

import predictive_models  # a lazy package (PEP 562): JAX is imported when a model is first run
from compmech.runs.analysis import distinct_rows
from compmech.runs.errors import ConfigError
from compmech.runs.files import write_bytes_atomic
from compmech.runs.processes import build_process
from compmech.runs.regime import choose_regime
from compmech.runs.report import read_run_json
from compmech.runs.run_figures import belief_frame_of
from compmech.runs.settings import ExperimentConfig
from compmech.runs.sources import source_of
from compmech.studies.architectures.plots import ProbedCell, ProcessRow, plot_architecture_grid
from compmech.studies.architectures.study_file import ArchitectureStudy, FinishedRun, StudyRun
from figures import process_title, save_figure
from probes import LinearProbe, probe_rows


def figure_geometry(run_dir: Path, layer: str, cfg: ExperimentConfig) -> tuple[np.ndarray, np.ndarray]:
    """(true beliefs [n, S], probed beliefs [n, S]) of the distinct contexts of a finished exact-regime
    run (``cfg``: its config.toml), for ``layer`` (a probed layer or "concat"): the OLS probe refitted on the run's
    rows and settings (the same fit as its probe.json in-sample numbers), evaluated on each distinct context once."""
    source = source_of(build_process(cfg.process, base_dir=run_dir))
    model_config, params = predictive_models.load_model(run_dir / "checkpoints" / "final.msgpack")
    if choose_regime(cfg, source, model_config.context_length).sampled:
        raise ConfigError(
            f"{run_dir} ran in the sampled regime: its contexts are too many to draw every one; the "
            "architecture study's figure needs exact-regime runs (a shorter context_length)"
        )
    ctx = source.context_set(model_config.context_length, cfg.data.bos)
    probed = read_run_json(run_dir / "probe.json")["layers"]
    names = [n for n in probed if n != "concat"] if layer == "concat" else [layer]
    acts = predictive_models.compute_activations(model_config, params, ctx.tokens, names=names)  # {name: [N, T, d]}
    X = acts[names[0]] if len(names) == 1 else np.concatenate([acts[n] for n in names], axis=-1)
    del acts
    settings = cfg.probe
    data = probe_rows(X, ctx.beliefs, ctx.tokens, ctx.probs, rows=settings.rows, weighting=settings.weighting)
    fit = LinearProbe().fit(data.X, data.Y, sample_weight=data.weights)
    first = distinct_rows(data.context_ids)
    return np.asarray(data.Y[first], dtype=np.float64), np.asarray(fit.predict(data.X[first]), dtype=np.float64)


def cached_geometry(run_dir: Path, layer: str, cache: Path, cfg: ExperimentConfig) -> tuple[np.ndarray, np.ndarray]:
    """`figure_geometry`, kept in ``cache`` (.npz) with the run's config and the layer: reused while both match."""
    config_text = (run_dir / "config.toml").read_text()
    if cache.is_file():
        try:
            with np.load(cache, allow_pickle=False) as z:
                if str(z["config"]) == config_text and str(z["layer"]) == layer:
                    return z["true"], z["probed"]
        except (OSError, KeyError, ValueError):
            pass  # a damaged cache is recomputed
    true, probed = figure_geometry(run_dir, layer, cfg)
    buf = io.BytesIO()
    np.savez_compressed(buf, true=true, probed=probed, layer=np.array(layer), config=np.array(config_text))
    write_bytes_atomic(cache, buf.getvalue())
    return true, probed


def process_row(
    process: str,
    runs: Sequence[StudyRun],
    finished: Mapping[str, FinishedRun],
    out: Path,
    on_run: Callable[[int], None] | None = None,
) -> ProcessRow | None:
    """One row of the grid: the exact beliefs of ``process`` and one cell per run (None: no finished run); None
    when no run of it has finished. Every run of one process must share its contexts."""
    cells: list[ProbedCell | None] = []
    true = None
    for run in runs:
        done = finished.get(run.name)
        if done is None:
            cells.append(None)
            continue
        layer = done.summary.analysis_layer
        t, probed = cached_geometry(out / run.name, layer, out / "geometry" / f"{run.name}.npz", done.config)
        if on_run is not None:
            on_run(1)
        if true is None:
            true = t
        elif t.shape != true.shape or not np.allclose(t, true):
            raise ConfigError(
                f"{out / run.name}: its contexts differ from the other {process} runs'; "
                "every run of one process must share its process and context length"
            )
        scored = done.scores[layer]  # the test half over the shuffled control held out on it, as in the table
        cells.append(
            ProbedCell(
                kind=run.kind,
                n_params=int(done.summary.model.n_params),
                layer=layer,
                mse_heldout=_number(scored.mse_test_contexts),
                mse_shuffled=_number(scored.mse_shuffled_test_contexts),
                probed=probed,
            )
        )
    if true is None:
        return None
    source = source_of(build_process(runs[0].config.process, base_dir=runs[0].config.base_dir))
    return ProcessRow(
        title=f"{process_title(source.name, source.params)}\ncontext {runs[0].config.model['context_length']}",
        true_beliefs=true,
        cells=cells,
        frame=belief_frame_of(source, true),
        state_names=source.traits.belief_names,
    )


def write_figure(
    study: ArchitectureStudy,
    finished: Mapping[str, FinishedRun],
    out: Path,
    on_run: Callable[[int], None] | None = None,
) -> Path:
    """``<out>/architectures.png``: each run's figure layer (the run's analysis layer: its probe layer unless
    [probe] figure_layer says otherwise), probed beside the exact beliefs, in the process's belief frame.
    ``finished``: the finished runs by name. ``on_run(1)`` is called after each run's arrays are ready (a progress
    bar's tick)."""
    grid = []
    for process in study.processes:
        row = process_row(process, [r for r in study.runs if r.process == process], finished, out, on_run)
        if row is not None:
            grid.append(row)
    fig = plot_architecture_grid(
        grid,
        study.kinds,
        suptitle="Linear probes of the belief geometry, by architecture\n(each run's probe layer, or its "
        "[probe] figure_layer; held out = MSE on the test half of the held-out contexts, as a % of the "
        "shuffled control scored there)",
    )
    return save_figure(fig, out / "architectures.png", dpi=110)


def _number(value: float | None) -> float:
    return float("nan") if value is None else float(value)
