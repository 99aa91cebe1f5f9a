"""`compmech reproduce --only quantum-sweep`: tom_quantum at five betas beside post_quantum and fanizza, each learned
by a transformer, an LSTM, a GRU and an RNN, each run with the order-k and norm-shuffled controls.

Every point (`grid.sweep_points`) is an ordinary run in ``<out>/<process>-<kind>/`` through the `Runner` it is handed
(finished runs reused, interrupted ones resumed); its probe is scored with held-out controls by
`compmech.runs.heldout_scores` (cached in ``<out>/scores/``) and its controls read from its markov_order.json. Writes
``quantum_sweep.json`` (the rows, `table.SweepRow`), ``quantum_sweep.md`` and ``quantum_sweep.png``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from compmech.runs.files import write_json_atomic, write_text_atomic
from compmech.runs.heldout_scores import cached_scores
from compmech.runs.markov_order_record import read_markov_order
from compmech.runs.toml_io import read_toml
from compmech.studies.base import Runner
from compmech.studies.quantum_sweep.grid import (
    ARCHITECTURES,
    KINDS,
    ORDERS,
    PROCESSES,
    SweepPoint,
    read_models,
    sweep_points,
)
from compmech.studies.quantum_sweep.plots import plot_quantum_sweep
from compmech.studies.quantum_sweep.table import SweepRow, format_markdown, sweep_row
from figures.io import save_figure

#: ``--quick``: the processes and architectures it keeps. The full grid is 7 x 4 runs of about 18 s each even at the
#: quick budget (a run's compilation, exact evaluation, probes, controls and figures); to stay well within 10 minutes
#: on 2 cores shared with other jobs the quick sweep drops beta = 2.55 and 4.3 (keeping 2.25, 3.5 and sqrt(51)):
#: 5 x 4 runs (measured: 6 min 28 s at load 2.5-4).
QUICK_PROCESSES = tuple(p.label for p in PROCESSES if p.beta not in (2.55, 4.3))
QUICK_KINDS = KINDS


def finish_point(point: SweepPoint, out: Path, runner: Runner, head: str) -> SweepRow:
    """The run of one point (the finished one reused, else run now) and its row."""
    run_dir = out / point.name
    summary = runner.finished(point.cfg, run_dir)
    if summary is not None:
        runner.say(f"{head}: {run_dir} is finished already: its results are reused")
    else:
        runner.say(f"{head}: start ({point.cfg.training['steps']} steps) -> {run_dir}")
        t = time.time()
        summary = runner.run(point.cfg, run_dir)
        runner.say(f"{head}: done in {time.time() - t:.0f} s")
    config = runner.load(run_dir / "config.toml")
    scores = cached_scores(run_dir, out / "scores" / f"{point.name}.json", config)
    return sweep_row(
        point.process.label,
        point.process.beta,
        point.kind,
        summary,
        scores,
        read_markov_order(run_dir),
        str(run_dir),
    )


def _label(row: SweepRow) -> str:
    return row.process if row.beta is None else f"β = {row.beta:.4g}"


def figure_arrays(rows: Sequence[SweepRow], kinds: Sequence[str], orders: Sequence[int]) -> dict[str, Any]:
    """The figure's arrays from the rows: [P, K] per architecture (NaN where a point has no run), [P, O] per order."""
    processes = list(dict.fromkeys(r.process for r in rows))
    labels = {r.process: _label(r) for r in rows}
    at = {(r.process, r.kind): r for r in rows}
    first = {p: next(r for r in rows if r.process == p) for p in processes}

    def grid(get) -> np.ndarray:
        return np.array(
            [
                [np.nan if (p, k) not in at or get(at[p, k]) is None else get(at[p, k]) for k in kinds]
                for p in processes
            ],
            dtype=np.float64,
        )

    def by_order(get) -> np.ndarray:
        return np.array([[get(first[p], str(k)) for k in orders] for p in processes], dtype=np.float64)

    return {
        "processes": [labels[p] for p in processes],
        "excess": grid(lambda r: r.excess),
        "order_excess": by_order(lambda r, k: r.order_losses[k] / r.optimal_loss - 1.0),
        "r2": grid(lambda r: r.r2_distinct),
        "r2_untrained": grid(lambda r: r.r2_distinct_untrained),
        "ceilings": by_order(lambda r, k: r.ceilings[k]),
        "r2_unnormalized": grid(lambda r: r.r2_unnormalized),
        "r2_norm_shuffled": grid(lambda r: r.r2_norm_shuffled),
    }


def write_outputs(
    rows: Sequence[SweepRow], out: Path, *, quick: bool, kinds: Sequence[str], wall_seconds: float | None = None
) -> str:
    """quantum_sweep.json, .md and .png from the rows; returns the Markdown."""
    markdown = format_markdown(rows, quick=quick, orders=ORDERS, wall_seconds=wall_seconds)
    arrays = figure_arrays(rows, kinds, ORDERS)
    fig = plot_quantum_sweep(
        arrays["processes"],
        list(kinds),
        arrays["excess"],
        arrays["order_excess"],
        list(ORDERS),
        arrays["r2"],
        arrays["r2_untrained"],
        arrays["ceilings"],
        arrays["r2_unnormalized"],
        arrays["r2_norm_shuffled"],
        title=f"tom_quantum (α = 1) over β, post_quantum and fanizza, context 8 "
        f"({'quick' if quick else 'full'} budget)",
    )
    save_figure(fig, out / "quantum_sweep.png")
    write_json_atomic(
        out / "quantum_sweep.json", {"quick": quick, "orders": list(ORDERS), "rows": [r.to_json() for r in rows]}
    )
    write_text_atomic(out / "quantum_sweep.md", markdown)
    return markdown


def run_sweep(points: Sequence[SweepPoint], out: str | Path, runner: Runner, *, kinds: Sequence[str]) -> str:
    """Check every point, run each (reusing finished runs), then write the table and figure; returns the Markdown."""
    out = Path(out)
    start = time.time()
    for point in points:  # every run checked before the first trains
        runner.check(point.cfg, out / point.name)
    rows = [
        finish_point(p, out, runner, f"== quantum_sweep [{i + 1}/{len(points)}] {p.name}") for i, p in enumerate(points)
    ]
    return write_outputs(rows, out, quick=runner.quick, kinds=kinds, wall_seconds=time.time() - start)


def shipped_points(runner: Runner) -> list[SweepPoint]:
    """The shipped grid (``--quick``: `QUICK_PROCESSES` x `QUICK_KINDS` at the quick budgets)."""
    models = read_models(runner.config_path(ARCHITECTURES))
    processes = [p for p in PROCESSES if not runner.quick or p.label in QUICK_PROCESSES]
    kinds = QUICK_KINDS if runner.quick else KINDS

    def base_of(name: str) -> tuple[Mapping[str, Any], str]:
        path = runner.config_path(name)
        return read_toml(path), str(path)

    return sweep_points(processes, kinds, base_of, models, runner.from_dict, quick=runner.quick)


def reproduce(out_root: Path, runner: Runner) -> str:
    """The shipped sweep into ``out_root``; returns the Markdown table."""
    return run_sweep(shipped_points(runner), out_root, runner, kinds=QUICK_KINDS if runner.quick else KINDS)
