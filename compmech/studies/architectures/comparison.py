"""The architecture-independence study: the same processes learned by a transformer, an LSTM, a GRU and a
vanilla RNN of similar parameter counts, each probed for the belief geometry.

Riechers, Elliott & Shai (2025) report that transformers, RNNs, LSTMs and GRUs all represent the belief
states of classical, quantum and post-quantum processes linearly. A study file
(``experiments/architectures.toml``, its format documented at its top) names the processes, the models
and the training budgets; each (process, kind) pair becomes an ordinary `ExperimentConfig` (built by the config
reader, so every check of a config applies) and an ordinary run directory ``<out>/<process>-<kind>/``, run by the
`compmech.studies.Runner` it is handed (a finished run of the same config is reused, an interrupted one resumed).
Then, in ``<out>``:

- ``architectures.json``: a list of rows, two per run (`ArchitectureRow`): the best single layer and
  "concat" (every probed layer side by side);
- ``architectures.md``: the same as a Markdown table, and per process which architectures found the
  geometry (context-disjoint held-out MSE at most `FOUND_FRACTION` of the shuffled control);
- ``architectures.png``: the grid figure (`compmech.studies.architectures.plots`), rows = processes, columns = the
  exact beliefs and each architecture's probed beliefs of the run's figure layer;
- ``geometry/<process>-<kind>.npz``: the figure's arrays of each run (true and probed beliefs of the
  distinct contexts), so a second call redraws without refitting.
"""

from __future__ import annotations

import dataclasses
import io
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import predictive_models  # a lazy package (PEP 562): JAX is imported when a model is first run
from compmech.runs.analysis import distinct_rows
from compmech.runs.errors import ConfigError
from compmech.runs.files import write_bytes_atomic, write_json_atomic, write_text_atomic
from compmech.runs.processes import build_process
from compmech.runs.progress import phase
from compmech.runs.regime import choose_regime
from compmech.runs.report import read_run_json
from compmech.runs.run_figures import belief_frame_of
from compmech.runs.settings import ExperimentConfig
from compmech.runs.sources import source_of
from compmech.runs.summary import RunSummary
from compmech.runs.toml_io import read_toml
from compmech.studies.architectures.plots import ProbedCell, ProcessRow, plot_architecture_grid
from compmech.studies.base import Runner
from figures import process_title, save_figure
from probes import LinearProbe, probe_rows

#: Builds an `ExperimentConfig` from a parsed config table and its source label (`Runner.from_dict`).
BuildConfig = Callable[[Mapping[str, Any], str], ExperimentConfig]

#: A probe "finds the geometry" when its context-disjoint held-out MSE is at most this fraction of the
#: shuffled-target control's MSE (issue 9's criterion; the figure's titles use the same one).
FOUND_FRACTION = 0.10

_TOP_KEYS = ("name", "seed", "kinds", "models", "training", "probe", "processes")
_PROCESS_KEYS = ("process", "context_length", "training", "training_by_kind", "quick", "probe")


@dataclass(frozen=True)
class StudyRun:
    """One (process, kind) pair of a study: its label and its ordinary experiment config."""

    process: str  # the key of its [processes.<name>] table
    kind: str  # "transformer" | "rnn" | "gru" | "lstm"
    config: ExperimentConfig  # named "<process>-<kind>"

    @property
    def name(self) -> str:
        return self.config.name


@dataclass(frozen=True)
class ArchitectureStudy:
    """A loaded study file: the runs in the order they run (process by process, ``kinds`` order within)."""

    name: str
    source: str  # the study file
    quick: bool  # built with each process's ``quick`` training overrides
    processes: tuple[str, ...]
    kinds: tuple[str, ...]
    runs: tuple[StudyRun, ...]


@dataclass(frozen=True)
class ArchitectureRow:
    """One line of the table: one layer choice of one run.

    ``layer`` is the best single probed layer (lowest context-disjoint held-out MSE; the choice uses
    that same number, so it is slightly optimistic) or ``"concat"`` (all probed layers side by side).
    ``mse_untrained`` is the context-disjoint held-out MSE of the same layer of the model at
    initialisation (None for concat, which the runner does not probe untrained).
    """

    process: str
    kind: str
    n_params: int
    relative_loss: float  # final CE / optimal CE (1 = Bayes optimal)
    layer: str
    choice: str  # "best single layer" | "concat"
    mse_heldout_contexts: float | None
    r2_heldout_contexts: float | None
    mse_shuffled: float
    mse_untrained: float | None
    mse: float  # in-sample MSE
    heldout_over_shuffled: float | None
    found: bool | None  # heldout_over_shuffled <= FOUND_FRACTION (None when there is no held-out MSE)
    steps: int
    tokens: int
    wall_seconds: float
    run_dir: str

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------- the study file

def _table(value: Any, where: str, example: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a table, e.g. {example}; got {value!r}")
    return value


def _unknown(table: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    bad = sorted(set(table) - set(allowed))
    if bad:
        raise ConfigError(f"{where}: unknown key {bad[0]!r}; allowed: {', '.join(allowed)}")


def load_study(path: str | Path, build: BuildConfig, *, quick: bool = False) -> ArchitectureStudy:
    """Read and validate a study file; every (process, kind) pair becomes an `ExperimentConfig` (``build``: the
    config reader, `compmech.runs.config.config_from_dict`, or a `Runner`'s ``from_dict``).

    Bad input raises one `ConfigError` naming the file, the key and the fix. With ``quick``, each
    process's ``quick`` table overrides its training (the ``--quick`` budget).
    """
    KINDS = predictive_models.KINDS
    path = Path(path)
    raw = read_toml(path, "study")
    src = str(path)
    _unknown(raw, _TOP_KEYS, src)
    name = raw.get("name", path.stem)
    if not isinstance(name, str) or not name or any(c in name for c in "/\\ "):
        raise ConfigError(f"{src}: name must be a non-empty string without spaces or slashes; got {name!r}")
    seed = raw.get("seed", 0)
    kinds = raw.get("kinds")
    if not isinstance(kinds, list) or not kinds or not all(isinstance(k, str) for k in kinds) \
            or len(set(kinds)) != len(kinds):
        raise ConfigError(f"{src}: kinds must be a non-empty list of distinct model kinds, e.g. "
                          f"kinds = [\"transformer\", \"lstm\", \"gru\", \"rnn\"]; got {kinds!r}")
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise ConfigError(f"{src}: kinds: {bad[0]!r} is not a model kind; choose from {', '.join(KINDS)}")
    models = _table(raw.get("models"), f"{src}: models", "[models.gru] n_layers = 2, d_hidden = 108")
    for kind in kinds:
        if kind not in models:
            raise ConfigError(f"{src}: no [models.{kind}] table; add one with that kind's [model] fields "
                              f"(sizes; context_length comes from each process)")
        model = _table(models[kind], f"{src}: [models.{kind}]", "n_layers = 2")
        for key in ("kind", "context_length"):
            if key in model:
                raise ConfigError(f"{src}: [models.{kind}] {key} is set by the study (the table's name / each "
                                  f"process's context_length); remove it")
    extra = sorted(set(models) - set(kinds))
    if extra:
        raise ConfigError(f"{src}: [models.{extra[0]}] names a kind not in kinds; add it to kinds or remove the table")
    training = dict(_table(raw.get("training", {}), f"{src}: [training]", "learning_rate = 3e-3"))
    probe = dict(_table(raw.get("probe", {}), f"{src}: [probe]", "n_repeats = 2"))
    processes = _table(raw.get("processes"), f"{src}: processes",
                       "[processes.mess3] process = { name = \"mess3\" }, context_length = 10")
    if not processes:
        raise ConfigError(f"{src}: no [processes.<name>] table; add at least one")

    runs = []
    for pname, ptable in processes.items():
        where = f"{src} [processes.{pname}]"
        if any(c in pname for c in "/\\ "):
            raise ConfigError(f"{where}: the process label must have no spaces or slashes (it names run directories)")
        ptable = _table(ptable, where, "process = { name = \"mess3\" }, context_length = 10")
        _unknown(ptable, _PROCESS_KEYS, where)
        for key in ("process", "context_length"):
            if key not in ptable:
                raise ConfigError(f"{where}: missing {key}; add e.g. "
                                  + ("process = { name = \"mess3\", params = { x = 0.05 } }" if key == "process"
                                     else "context_length = 10"))
        if "quick" not in ptable:
            raise ConfigError(f"{where}: missing quick (the --quick training overrides); add e.g. "
                              f"quick = {{ steps = 500 }}")
        by_kind = _table(ptable.get("training_by_kind", {}), f"{where} training_by_kind",
                         "training_by_kind = { rnn = { learning_rate = 1e-2 } }")
        unknown_kinds = sorted(set(by_kind) - set(kinds))
        if unknown_kinds:
            raise ConfigError(f"{where} training_by_kind: {unknown_kinds[0]!r} is not one of the study's kinds "
                              f"({', '.join(kinds)}); remove it or add it to kinds")
        for kind in kinds:
            train = {**training, **_table(ptable.get("training", {}), f"{where} training", "{ steps = 3000 }"),
                     **_table(by_kind.get(kind, {}), f"{where} training_by_kind.{kind}", "{ learning_rate = 1e-2 }")}
            if quick:
                train.update(_table(ptable["quick"], f"{where} quick", "{ steps = 500 }"))
            config_raw = {
                "name": f"{pname}-{kind}", "seed": seed,
                "process": ptable["process"],
                "model": {"kind": kind, "context_length": ptable["context_length"], **models[kind]},
                "training": train,
                "probe": {**probe, **_table(ptable.get("probe", {}), f"{where} probe", "{ n_repeats = 2 }")},
            }
            # the source names the study file first: a spec path in [process] is found beside it
            cfg = build(config_raw, f"{src} [processes.{pname}, kind {kind}]")
            runs.append(StudyRun(process=pname, kind=kind, config=cfg))
    return ArchitectureStudy(name=name, source=src, quick=quick, processes=tuple(processes), kinds=tuple(kinds),
                             runs=tuple(runs))


# --------------------------------------------------------------------------------------- the table

def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or not b > 0 else a / b


def architecture_rows(run: StudyRun, summary: RunSummary, probe: dict[str, Any], run_dir: Path
                      ) -> list[ArchitectureRow]:
    """The run's two rows: its best single layer (lowest context-disjoint held-out MSE) and concat."""
    layers = probe["layers"]
    single = [n for n in layers if n != "concat"]

    def key(name: str) -> tuple[bool, float]:  # layers without a held-out MSE come last, by in-sample MSE
        v = layers[name].get("mse_heldout_contexts")
        return (v is None, layers[name]["mse"] if v is None else v)

    best = min(single, key=key)
    untrained = probe.get("untrained_by_layer") or {}
    rows = []
    for layer, choice in ((best, "best single layer"), ("concat", "concat")):
        if layer not in layers:
            continue
        res = layers[layer]
        held = res.get("mse_heldout_contexts")
        ratio = _ratio(held, res["mse_shuffled"])
        rows.append(ArchitectureRow(
            process=run.process, kind=run.kind, n_params=int(summary.model.n_params),
            relative_loss=float(summary.relative_loss), layer=layer, choice=choice,
            mse_heldout_contexts=held, r2_heldout_contexts=res.get("r2_heldout_contexts"),
            mse_shuffled=float(res["mse_shuffled"]),
            mse_untrained=(untrained.get(layer) or {}).get("mse_heldout_contexts"),
            mse=float(res["mse"]), heldout_over_shuffled=ratio,
            found=None if ratio is None else bool(ratio <= FOUND_FRACTION),
            steps=int(summary.steps), tokens=int(summary.tokens),
            wall_seconds=float(summary.wall_seconds), run_dir=str(run_dir)))
    return rows


def _num(v: float | None, fmt: str = ".3g") -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.2g}%"


def format_markdown(rows: list[ArchitectureRow], study: ArchitectureStudy, wall_seconds: float | None = None) -> str:
    """The table and, per process, which architectures found the geometry."""
    budget = "quick budget" if study.quick else "full budget"
    lines = [f"# Architecture independence of the belief geometry ({study.name}, {budget})", "",
             f"Study file `{study.source}`; one run directory per process and architecture. The runs' own wall "
             f"times sum to {sum(r.wall_seconds for r in rows if r.choice != 'concat') / 60:.1f} min"
             + (f"; this call took {wall_seconds / 60:.1f} min (finished runs are reused)." if wall_seconds is not None
                else "."), "",
             "Held out = context-disjoint held-out probe MSE (no context in both fit and test); the best single "
             "layer is chosen by that same number (slightly optimistic). Shuffled = the shuffled-target control; "
             "untrained = the same layer of the model at initialisation, held out (not probed for concat). "
             f"A layer finds the geometry when held out <= {FOUND_FRACTION:.0%} of shuffled.", "",
             "| process | kind | params | relative loss | layer | held-out MSE | held-out R² | shuffled MSE "
             "| untrained MSE | held out / shuffled | untrained / shuffled |",
             "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        layer = r.layer if r.choice == "concat" else f"{r.layer} (best)"
        lines.append(f"| {r.process} | {r.kind} | {r.n_params:,} | {r.relative_loss:.4f} | {layer} "
                     f"| {_num(r.mse_heldout_contexts)} | {_num(r.r2_heldout_contexts, '.4f')} | {_num(r.mse_shuffled)} "
                     f"| {_num(r.mse_untrained)} | {_pct(r.heldout_over_shuffled)}{' ✓' if r.found else ''} "
                     f"| {_pct(_ratio(r.mse_untrained, r.mse_shuffled))} |")
    lines += ["", "Found the geometry (best single layer, held out <= "
              f"{FOUND_FRACTION:.0%} of shuffled; concat in brackets):", ""]
    for process in study.processes:
        best = {r.kind: r for r in rows if r.process == process and r.choice != "concat"}
        concat = {r.kind: r for r in rows if r.process == process and r.choice == "concat"}
        parts = []
        for kind in study.kinds:
            if kind not in best:
                parts.append(f"{kind} no run")
                continue
            b, c = best[kind], concat.get(kind)
            word = "yes" if b.found else "NO"
            parts.append(f"{kind} {word} ({_pct(b.heldout_over_shuffled)}"
                         + (f"; concat {_pct(c.heldout_over_shuffled)}" if c is not None else "") + ")")
        n_found = sum(1 for k in study.kinds if k in best and best[k].found)
        lines.append(f"- **{process}**: {', '.join(parts)} — {n_found} of {len(study.kinds)} find it.")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------- the figure

def figure_geometry(run_dir: Path, layer: str, cfg: ExperimentConfig) -> tuple[np.ndarray, np.ndarray]:
    """(true beliefs [n, S], probed beliefs [n, S]) of the distinct contexts of a finished exact-regime
    run (``cfg``: its config.toml), for ``layer`` (a probed layer or "concat"): the OLS probe refitted on the run's
    rows and settings (the same fit as its probe.json in-sample numbers), evaluated on each distinct context once."""
    source = source_of(build_process(cfg.process, base_dir=run_dir))
    model_config, params = predictive_models.load_model(run_dir / "checkpoints" / "final.msgpack")
    if choose_regime(cfg, source, model_config.context_length).sampled:
        raise ConfigError(f"{run_dir} ran in the sampled regime: its contexts are too many to draw every one; the "
                          "architecture study's figure needs exact-regime runs (a shorter context_length)")
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


def write_figure(study: ArchitectureStudy, summaries: dict[str, RunSummary], probes: dict[str, dict[str, Any]],
                 out: Path, configs: dict[str, ExperimentConfig], on_run: Callable[[int], None] | None = None
                 ) -> Path:
    """``<out>/architectures.png``: each run's figure layer (the run's analysis layer: its probe layer unless
    [probe] figure_layer says otherwise), probed beside the exact beliefs, in the process's belief frame.
    ``configs``: each run's config as its run directory records it. ``on_run(1)`` is called after each run's arrays
    are ready (a progress bar's tick)."""
    grid = []
    for process in study.processes:
        runs = [r for r in study.runs if r.process == process]
        cells: list[ProbedCell | None] = []
        true = None
        for run in runs:
            summary = summaries.get(run.name)
            if summary is None:
                cells.append(None)
                continue
            layer = summary.analysis_layer
            t, probed = cached_geometry(out / run.name, layer, out / "geometry" / f"{run.name}.npz", configs[run.name])
            if on_run is not None:
                on_run(1)
            if true is None:
                true = t
            elif t.shape != true.shape or not np.allclose(t, true):
                raise ConfigError(f"{out / run.name}: its contexts differ from the other {process} runs'; "
                                  "every run of one process must share its process and context length")
            res = probes[run.name]["layers"][layer]
            cells.append(ProbedCell(kind=run.kind, n_params=int(summary.model.n_params), layer=layer,
                                    mse_heldout=res["mse_heldout_contexts"], mse_shuffled=res["mse_shuffled"],
                                    probed=probed))
        if true is None:
            continue
        source = source_of(build_process(runs[0].config.process, base_dir=runs[0].config.base_dir))
        grid.append(ProcessRow(
            title=f"{process_title(source.name, source.params)}\ncontext {runs[0].config.model['context_length']}",
            true_beliefs=true, cells=cells, frame=belief_frame_of(source, true), state_names=source.traits.belief_names))
    fig = plot_architecture_grid(
        grid, study.kinds,
        suptitle="Linear probes of the belief geometry, by architecture\n(each run's probe layer, or its "
                 "[probe] figure_layer; held out = context-disjoint MSE, as a % of the shuffled control)")
    return save_figure(fig, out / "architectures.png", dpi=110)


# --------------------------------------------------------------------------------------- running it

def run_study(study: ArchitectureStudy, out: str | Path, runner: Runner) -> list[ArchitectureRow]:
    """Run every pair (reusing finished runs, resuming interrupted ones), then write the json, md and png.

    Every run is checked first (`Runner.check`: the process builds, the model fits, the directory can be
    written), so a bad last pair fails before the first one trains.
    """
    out = Path(out)
    start = time.time()
    rows: list[ArchitectureRow] = []
    summaries: dict[str, RunSummary] = {}
    probes: dict[str, dict[str, Any]] = {}
    configs: dict[str, ExperimentConfig] = {}
    for run in study.runs:
        runner.check(run.config, out / run.name)
    for i, run in enumerate(study.runs, 1):
        run_dir = out / run.name
        head = f"[{i}/{len(study.runs)}] {run.process} x {run.kind}"
        summary = runner.finished(run.config, run_dir)
        if summary is not None:
            runner.say(f"{head}: {run_dir} is finished already: its results are reused")
        else:
            runner.say(f"{head}: start ({run.config.training['steps']} steps, batch "
                       f"{run.config.training.get('batch_size')}) -> {run_dir}")
            t = time.time()
            summary = runner.run(run.config, run_dir)
            runner.say(f"{head}: done in {time.time() - t:.0f} s")
        probe = read_run_json(run_dir / "probe.json")
        summaries[run.name], probes[run.name] = summary, probe
        configs[run.name] = runner.load(run_dir / "config.toml")
        new = architecture_rows(run, summary, probe, run_dir)
        rows += new
        best = new[0]
        runner.say(f"{head}: {summary.model.n_params:,} params, relative loss {summary.relative_loss:.4f}, "
                   f"best layer {best.layer} held out {_pct(best.heldout_over_shuffled)} of shuffled")
    write_json_atomic(out / "architectures.json", [r.to_json() for r in rows])
    # the figure's arrays: each run's figure-layer probe refitted once (then cached in <out>/geometry)
    with phase("grid figure", total=len(summaries), enabled=runner.progress, unit="run") as tick:
        write_figure(study, summaries, probes, out, configs, on_run=tick)
    write_text_atomic(out / "architectures.md", format_markdown(rows, study, time.time() - start)
                      + "\n![belief geometry by architecture](architectures.png)\n")
    return rows
