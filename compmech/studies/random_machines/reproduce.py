"""`compmech reproduce --only random_machines`: M random processes (compmech/experiments/random_machines.toml), the
same small transformer trained and probed on each through the `Runner` (finished runs reused), each process's
measures from the theory (`theory.machine_measures`, cached in ``<out>/measures/<label>.json``), then the table,
the rank correlations of the probe error and the relative loss with each measure (`stats`), and the scatter grid.

Writes into ``<out>``: one run directory per process, ``random_machines.json`` (rows, correlations, settings),
``random_machines.md`` and ``random_machines.png``. The probe error is ``1 - R²`` of the run's probe layer on the
held-out contexts (the MSE over the variance of those targets: comparable across processes whose beliefs have
different sizes and spreads), beside the untrained model's and the shuffled-target control's MSE."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from compmech.runs.files import write_json_atomic, write_text_atomic
from compmech.runs.heldout_scores import cached_scores
from compmech.runs.summary import RunSummary
from compmech.studies.base import Runner
from compmech.studies.random_machines.plots import ScatterPanel, plot_scatter_grid, stats_title
from compmech.studies.random_machines.stats import RankCorrelation, holm, rank_correlation
from compmech.studies.random_machines.study_file import MachineRun, RandomMachineStudy, load_study
from compmech.studies.random_machines.theory import MachineMeasures, machine_measures
from figures.io import save_figure
from hmm_processes import HMM, get_process

#: The shipped study file's name (compmech/experiments/<name>.toml).
STUDY_CONFIG = "random_machines"

#: The measures each outcome is correlated with: (key, label). Values from `MachineRow.measure_value`.
MEASURES = (
    ("C_mu", "C_μ (bits)"),
    ("E", "E (bits)"),
    ("h_mu", "h_μ (bits/token)"),
    ("lyapunov_dimension", "Lyapunov dimension"),
    ("n_beliefs_context", "distinct beliefs, contexts ≤ L"),
    ("last_token_error", "beliefs unexplained by the last token"),
    ("n_states", "states"),
    ("n_tokens", "tokens"),
)
#: The outcomes: (key, label).
OUTCOMES = (("probe_error", "probe error 1 − R² (held-out contexts)"), ("relative_loss", "relative loss"))


@dataclass(frozen=True)
class MachineRow:
    """One process of the study: what it is, its measures, and its run's outcomes (probe layer = the run's)."""

    label: str
    params: dict[str, Any]
    measures: MachineMeasures
    run_dir: str
    n_params: int | None
    relative_loss: float | None
    probe_layer: str | None
    mse_heldout: float | None  # probe MSE on the held-out contexts
    r2_heldout: float | None
    mse_shuffled: float | None  # the shuffled-target control (in-sample fit)
    # the shuffled control fitted on the fit contexts and scored on the held-out ones (`compmech.runs.heldout_scores`)
    mse_shuffled_heldout: float | None
    untrained_mse_heldout: float | None  # the untrained model's probe, same layer and contexts
    untrained_r2_heldout: float | None

    @property
    def probe_error(self) -> float | None:
        return None if self.r2_heldout is None else 1.0 - self.r2_heldout

    @property
    def untrained_error(self) -> float | None:
        return None if self.untrained_r2_heldout is None else 1.0 - self.untrained_r2_heldout

    def outcome(self, key: str) -> float:
        value = getattr(self, key)
        return math.nan if value is None else float(value)

    def measure_value(self, key: str) -> float:
        """The measure ``key`` as a number for ranking: inf for an infinite one, NaN when not computed; a lower
        bound or partial sum is used as its value (the table marks it)."""
        value = getattr(self.measures, key)
        if isinstance(value, (int, float)):
            return float(value)
        return math.nan if value.value is None else float(value.value)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["measures"] = self.measures.to_json()
        out["probe_error"] = self.probe_error
        out["untrained_error"] = self.untrained_error
        return out


def cached_measures(hmm: HMM, run: MachineRun, study: RandomMachineStudy, cache: Path) -> MachineMeasures:
    """`machine_measures` of one process, kept in ``cache`` with its parameters and budgets (reused while equal)."""
    key = {"params": run.params, "budgets": study.measures, "context_length": study.context_length}
    if cache.is_file():
        try:
            saved = json.loads(cache.read_text())
            if saved.get("key") == json.loads(json.dumps(key)):
                return MachineMeasures.from_json(saved["measures"])
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a damaged cache is recomputed
    m = machine_measures(hmm, study.context_length, unifilar=run.unifilar, seed=study.seed, **study.measures)
    write_json_atomic(cache, {"key": key, "measures": m.to_json()})
    return m


def machine_row(
    run: MachineRun, summary: RunSummary, measures: MachineMeasures, run_dir: Path, shuffled_heldout: float | None
) -> MachineRow:
    probe = summary.probe or {}
    untrained = summary.probe_untrained or {}
    return MachineRow(
        label=run.label,
        params=dict(run.params),
        measures=measures,
        run_dir=str(run_dir),
        n_params=None if summary.model is None else summary.model.n_params,
        relative_loss=summary.relative_loss,
        probe_layer=summary.probe_layer,
        mse_heldout=probe.get("mse_heldout_contexts"),
        r2_heldout=probe.get("r2_heldout_contexts"),
        mse_shuffled=probe.get("mse_shuffled"),
        mse_shuffled_heldout=shuffled_heldout,
        untrained_mse_heldout=untrained.get("mse_heldout_contexts"),
        untrained_r2_heldout=untrained.get("r2_heldout_contexts"),
    )


def correlations(rows: list[MachineRow], seed: int = 0) -> list[RankCorrelation]:
    """Every (outcome, measure) rank correlation over all processes, then within each kind (unifilar, non-unifilar:
    the kind is a confounder, since the two samplers give processes of different memory), Holm-adjusted within
    each (outcome, subset) family of measures."""
    out: list[RankCorrelation] = []
    subsets = (
        ("all", rows),
        ("unifilar", [r for r in rows if r.measures.unifilar]),
        ("non-unifilar", [r for r in rows if not r.measures.unifilar]),
    )
    for subset, chosen in subsets:
        for y_key, _ in OUTCOMES:
            y = [r.outcome(y_key) for r in chosen]
            family = [
                rank_correlation(x_key, y_key, [r.measure_value(x_key) for r in chosen], y, seed=seed, subset=subset)
                for x_key, _ in MEASURES
            ]
            out += holm(family)
    return out


def _num(v: float | None, fmt: str = ".4f") -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def format_markdown(
    rows: list[MachineRow],
    corrs: list[RankCorrelation],
    study: RandomMachineStudy,
    command: str,
    seconds: float | None = None,
) -> str:
    """The study's Markdown: settings, one row per process, the correlations, the hardest processes."""
    cfg = study.runs[0].config
    lines = [
        f"# Random ε-machines ({'quick' if study.quick else 'full'}: {len(rows)} processes)",
        "",
        f"Made by `{command}` from `{study.source}`" + (f" in {seconds / 60:.1f} min." if seconds else "."),
        f"Context length {study.context_length}; the same small transformer for every process"
        f" ({rows[0].n_params:,} parameters at {rows[0].params['n_tokens']} tokens), "
        f"{cfg.training['steps']} steps of batch {cfg.training.get('batch_size')}; measure budgets {study.measures}.",
        "",
        "Probe error = 1 − R² of the run's probe layer on the held-out contexts (0: perfect; 1: no better than the "
        "mean belief); the untrained model's probe on the same layer and contexts beside it; shuffled = the "
        "shuffled-target control's MSE, fitted on the fit contexts and scored on the held-out ones (beside the probe's "
        "held-out MSE). C_μ, E, h_μ in bits: exact unless marked (± standard error, ≥ lower bound or "
        "partial sum, ∞ infinite); the Lyapunov dimension is a chaos-game estimate ± standard error, or exactly 0 "
        "where the belief measure sits on finitely many points (unifilar, or a finite mixed-state set). "
        "MSP = the number of mixed states; beliefs ≤ L = distinct beliefs after the 0..L-token words; last-token "
        "error = 1 − R² of the best belief predictor that sees only the last token (exact, on the probe's rows: "
        "what the token embedding alone can give a linear probe).",
        "",
        "| process | S | V | C_μ | E | h_μ | Lyapunov dim | MSP | beliefs ≤ L | last-token error | relative loss "
        "| probe error | untrained error | probe MSE held out | shuffled MSE held out |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        m = r.measures
        lines.append(
            f"| {r.label} | {m.n_states} | {m.n_tokens} | {m.C_mu.text()} | {m.E.text()} | {m.h_mu.text()} "
            f"| {m.lyapunov_dimension.text(2)} | {m.n_mixed_states.text(0)} | {m.n_beliefs_context} "
            f"| {m.last_token_error:.3f} "
            f"| {_num(r.relative_loss)} | {_num(r.probe_error, '.3f')} | {_num(r.untrained_error, '.3f')} "
            f"| {_num(r.mse_heldout, '.2e')} | {_num(r.mse_shuffled_heldout, '.2e')} |"
        )
    lines += [
        "",
        "## Rank correlations",
        "",
        "Spearman ρ over the processes where the measure is known (ties and ∞ ranked), its two-sided permutation p "
        "(exact up to 8 processes, else 20,000 random permutations), a percentile bootstrap 95% interval (5,000 "
        "resamples), and Holm's adjusted p over the measures of each outcome. M is small: read the intervals.",
        "",
        "| outcome | measure | n | ρ | 95% CI | p | p (Holm) |",
        "|---|---|---|---|---|---|---|",
    ]
    labels = dict(MEASURES)
    for c in corrs:
        if c.subset != "all":
            continue
        ci = "–" if c.ci_low is None or c.ci_high is None else f"[{c.ci_low:.2f}, {c.ci_high:.2f}]"
        lines.append(
            f"| {c.y} | {labels[c.x]} | {c.n} | {_num(c.rho, '.2f')} | {ci} | {_num(c.p, '.3g')} "
            f"| {_num(c.p_holm, '.3g')} |"
        )
    by = {(c.subset, c.y, c.x): c for c in corrs}
    lines += [
        "",
        "Within each kind (the kind is a confounder: the two samplers give processes of different memory), "
        "ρ (permutation p; n):",
        "",
        "| outcome | measure | unifilar | non-unifilar |",
        "|---|---|---|---|",
    ]

    def cell(c: RankCorrelation) -> str:
        return "–" if c.rho is None else f"{c.rho:.2f} ({_num(c.p, '.2g')}; {c.n})"

    for y_key, _ in OUTCOMES:
        for x_key, x_label in MEASURES:
            u, n = by[("unifilar", y_key, x_key)], by[("non-unifilar", y_key, x_key)]
            lines.append(f"| {y_key} | {x_label} | {cell(u)} | {cell(n)} |")
    hard = sorted(rows, key=lambda r: -r.outcome("probe_error") if r.probe_error is not None else math.inf)
    lines += [
        "",
        "Hardest to probe (highest probe error): "
        + ", ".join(f"{r.label} ({_num(r.probe_error, '.3f')})" for r in hard[:3])
        + "; easiest: "
        + ", ".join(f"{r.label} ({_num(r.probe_error, '.3f')})" for r in hard[::-1][:3])
        + ".",
    ]
    return "\n".join(lines) + "\n"


def write_figure(rows: list[MachineRow], corrs: list[RankCorrelation], out: Path, title: str) -> Path:
    """``<out>/random_machines.png``: each outcome (rows) against the first six measures (columns)."""
    by = {(c.y, c.x): c for c in corrs if c.subset == "all"}
    grid = []
    for y_key, y_label in OUTCOMES:
        y = np.array([r.outcome(y_key) for r in rows])
        floor = np.array([math.nan if r.untrained_error is None else r.untrained_error for r in rows])
        if y_key == "relative_loss":
            y = y - 1.0
            y_label = "relative loss − 1"
        row = []
        for x_key, x_label in MEASURES[:6]:
            c = by[(y_key, x_key)]
            row.append(
                ScatterPanel(
                    x_label=x_label,
                    y_label=y_label,
                    x=np.array([r.measure_value(x_key) for r in rows]),
                    y=y,
                    title=stats_title(c.rho, c.p, c.n, c.ci_low, c.ci_high),
                    y_floor=floor if y_key == "probe_error" else None,
                )
            )
        grid.append(row)
    labels = [r.label for r in rows]
    fig = plot_scatter_grid(grid, labels, [r.measures.unifilar for r in rows], suptitle=title)
    return save_figure(fig, out / "random_machines.png", dpi=110)


def run_machines(study: RandomMachineStudy, out: Path, runner: Runner) -> list[MachineRow]:
    """Every process run (reused when finished) and measured, in the study file's order."""
    for run in study.runs:
        runner.check(run.config, out / run.label)
    rows = []
    for i, run in enumerate(study.runs, 1):
        head = f"[{i}/{len(study.runs)}] {run.label}"
        run_dir = out / run.label
        summary = runner.finished(run.config, run_dir)
        if summary is not None:
            runner.say(f"{head}: {run_dir} is finished already: its results are reused")
        else:
            t = time.time()
            runner.say(f"{head}: start ({run.config.training['steps']} steps) -> {run_dir}")
            summary = runner.run(run.config, run_dir)
            runner.say(f"{head}: trained and probed in {time.time() - t:.0f} s")
        t = time.time()
        hmm = get_process("random_epsilon_machine", **run.params)
        assert isinstance(hmm, HMM)
        measures = cached_measures(hmm, run, study, out / "measures" / f"{run.label}.json")
        scores = cached_scores(run_dir, out / "scores" / f"{run.label}.json", runner.load(run_dir / "config.toml"))
        layer = scores.get(summary.probe_layer or "")
        row = machine_row(
            run, summary, measures, run_dir, None if layer is None else layer.mse_shuffled_heldout_contexts
        )
        runner.say(
            f"{head}: measures in {time.time() - t:.0f} s; C_mu {measures.C_mu.text()}, E {measures.E.text()}, "
            f"h_mu {measures.h_mu.text()}; relative loss {_num(row.relative_loss)}, probe error "
            f"{_num(row.probe_error, '.3f')} (untrained {_num(row.untrained_error, '.3f')})"
        )
        rows.append(row)
    return rows


def reproduce(out: Path, runner: Runner) -> str:
    """Run the shipped study file into ``out`` (its ``[quick]`` budgets under ``--quick``); return the Markdown."""
    start = time.time()
    out = Path(out)
    study = load_study(runner.config_path(STUDY_CONFIG), runner.from_dict, quick=runner.quick)
    rows = run_machines(study, out, runner)
    corrs = correlations(rows, seed=study.seed)
    command = f"compmech reproduce{' --quick' if study.quick else ''} --only random_machines"
    write_json_atomic(
        out / "random_machines.json",
        {
            "command": command,
            "quick": study.quick,
            "seed": study.seed,
            "context_length": study.context_length,
            "measure_budgets": study.measures,
            "rows": [r.to_json() for r in rows],
            "correlations": [c.to_json() for c in corrs],
        },
    )
    write_figure(
        rows,
        corrs,
        out,
        f"Random processes ({len(rows)}): probe error and relative loss against each measure "
        "(filled: trained; hollow: untrained model; ρ Spearman with bootstrap 95% CI, permutation p)",
    )
    text = format_markdown(rows, corrs, study, command, time.time() - start)
    write_text_atomic(out / "random_machines.md", text + "\n![probe error against the measures](random_machines.png)\n")
    return text
