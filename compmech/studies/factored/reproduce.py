"""`compmech reproduce --only factored`: the factored-geometry study end to end, with its table and figures.

Runs ``compmech/experiments/factored.toml`` (three independent factors) and the sweep
``compmech/experiments/factored_coupled.toml`` (two factors with a hidden coupling epsilon), each an ordinary run with
``[studies.factored]`` (finished runs are reused), then writes into the output directory ``factored.md`` and
``factored.json``: for each final model the components needed for 80/90/95/99% of the variance beside the same counts of
the true factor beliefs side by side and of the true joint beliefs (like with like; the ranks sum(d_k - 1) and
prod(d_k) - 1 beside), the participation ratio, each factor's context-disjoint held-out probe R^2 (and the untrained
model's), the joint-belief probe, and the principal angles between the factors' belief subspaces; and copies the figures
beside them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from compmech.runs.files import copy_atomic, write_json_atomic, write_text_atomic
from compmech.runs.settings import quick_steps
from compmech.runs.summary import RunSummary, read_summary
from compmech.studies.base import Runner

#: ``--quick``: this fraction of factored.toml's steps (the sweep has its own [sweep] quick budget).
QUICK_FRACTION = 0.1


def _run_head(label: str, run_dir: Path) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], RunSummary]:
    """A finished run's factored.json, its probe layer's entry, the columns every table row starts with (run, run
    directory, relative loss, the factored and joint dimension predictions) and its summary."""
    d = json.loads((run_dir / "factored.json").read_text())
    summary = read_summary(run_dir)
    head = {
        "run": label,
        "run_dir": str(run_dir),
        "relative_loss": summary.relative_loss,
        "dim_factored": d["dim_factored"],
        "dim_joint": d["dim_joint"],
    }
    return d, d["layers"][d["layer"]], head, summary


def row(label: str, run_dir: Path) -> dict[str, Any]:
    """One table row from a finished run's factored.json and summary.json."""
    d, layer, head, summary = _run_head(label, run_dir)
    return {
        **head,
        "components": d["components"],
        "true_joint_components": d["true_joint_beliefs"]["components"],
        # a factored.json written before the like-with-like counts existed has none: "–" in the table
        "true_factor_components": (d.get("true_factor_beliefs") or {}).get("components"),
        "exceeds_both": d.get("exceeds_both"),
        "participation_ratio": d["participation_ratio"],
        "factor_r2_heldout_contexts": [f["r2_heldout_contexts"] for f in layer["factors"]],
        "factor_r2_heldout_contexts_untrained": [f["untrained"]["r2_heldout_contexts"] for f in layer["factors"]],
        "joint_r2_heldout_contexts": layer["joint_probe"]["r2_heldout_contexts"],
        "principal_angles": d["principal_angles"],
        "over_training": [
            {
                "tokens": e["tokens"],
                "components": e["components"],
                "min_principal_angle": min(min(a) for a in e["principal_angles"].values()),
            }
            for e in d["over_training"]
        ],
        "wall_seconds": summary.wall_seconds,
    }


def format_markdown(rows: list[dict[str, Any]], quick: bool) -> str:
    """The table: one line per final model."""

    def r2s(values: list) -> str:
        return ", ".join("–" if v is None else f"{v:.3f}" for v in values)

    def counts(c: dict | None) -> str:
        return "–" if c is None else " / ".join(str(c.get(q, "–")) for q in ("0.8", "0.9", "0.95", "0.99"))

    lines = [
        f"# Factored belief geometry ({'quick' if quick else 'full'} budget)",
        "",
        "| run | relative loss | components for 80 / 90 / 95 / 99%: activations | true factor beliefs "
        "| true joint beliefs | activations exceed both at | factored dim | joint dim | participation ratio "
        "| factor R² held out (untrained) | joint R² held out | principal angles |",
        "|---|---:|---|---|---|---|---:|---:|---:|---|---:|---|",
    ]
    for r in rows:
        angles = "; ".join(f"{pair}: {min(a):.1f}–{max(a):.1f}°" for pair, a in r["principal_angles"].items())
        above = "–" if r["exceeds_both"] is None else ", ".join(f"{float(q):.0%}" for q in r["exceeds_both"]) or "none"
        lines.append(
            f"| {r['run']} | {r['relative_loss']:.4f} | {counts(r['components'])} | "
            f"{counts(r['true_factor_components'])} | {counts(r['true_joint_components'])} | {above} | "
            f"{r['dim_factored']} | {r['dim_joint']} | "
            f"{r['participation_ratio']:.2f} | {r2s(r['factor_r2_heldout_contexts'])} "
            f"({r2s(r['factor_r2_heldout_contexts_untrained'])}) | {r['joint_r2_heldout_contexts']:.3f} | "
            f"{angles} |"
        )
    lines += [
        "",
        "Components: principal components needed for that share of the variance, each over the same "
        "distinct contexts and weights: of the probe layer's activations, of the true factor beliefs side by "
        "side (what a factored representation needs) and of the true joint beliefs (what a joint one needs); "
        "the ranks factored dim = sum(d_k - 1) and joint dim = prod(d_k) - 1 are the counts at 100%. R²: "
        "context-disjoint held-out, per factor in order. Angles: principal angles between the factors' belief "
        "subspaces (90° = orthogonal).",
    ]
    return "\n".join(lines) + "\n"


def reproduce(out_root: Path, runner: Runner) -> str:
    """Run both parts (reusing finished runs), write factored.md / factored.json and copy the figures; return the
    Markdown."""
    out_root = Path(out_root)
    path = runner.config_path("factored")
    cfg = runner.load(path)
    if runner.quick:
        cfg = runner.load(path, {"training.steps": quick_steps(cfg.training, QUICK_FRACTION)})
    run_dir = out_root / "factored"
    runner.say(f"== factored: {path} ({cfg.training['steps']} steps) -> {run_dir}")
    runner.run(cfg, run_dir)
    rows = [row("three independent factors (compmech/experiments/factored.toml)", run_dir)]
    sweep_dir = out_root / "factored_coupled"
    points = runner.sweep(runner.config_path("factored_coupled"), sweep_dir)
    rows += [row(f"two coupled factors, epsilon = {p.values['process.coupling']:g}", p.run_dir) for p in points]
    markdown = format_markdown(rows, runner.quick)
    write_json_atomic(out_root / "factored.json", {"quick": runner.quick, "rows": rows})
    write_text_atomic(out_root / "factored.md", markdown)
    for src, name in (
        (run_dir / "figures" / "factored_variance.png", "factored_variance.png"),
        (sweep_dir / "sweep.png", "factored_coupled.png"),
    ):
        if src.is_file():
            copy_atomic(src, out_root / name)
    return markdown


#: `compmech reproduce --only coupled_factors`: the factored processes with the authors' dependency structures.
COUPLED_CONFIGS = (
    ("independent (the control): Mess3 x SNS x SNS", "factored_independent3"),
    ("chain: Mess3 -> SNS -> SNS", "factored_chain3"),
    ("symmetric: Mess3 x SNS x SNS", "factored_symmetric3"),
    ("transition-coupled: Mess3 x SNS x SNS", "factored_tcoupled3"),
    ("chain with a GHMM: tom_quantum -> SNS -> SNS", "factored_ghmm_chain3"),
)
#: ``--quick``: these steps of each coupled config (of 4000; 256,000 tokens), with the checkpoints inside them.
COUPLED_QUICK = {"training.steps": 1000, "training.save_at_tokens": [2_560, 7_680, 25_600, 76_800]}


def coupled_row(label: str, run_dir: Path) -> dict[str, Any]:
    """One row of the coupled-factors table: the dimensions over training against the predictions, and the overlaps
    beside their nulls."""
    d, layer, head, summary = _run_head(label, run_dir)
    return {
        **head,
        "joint_belief_dim": d["joint_belief_dim"],
        "belief_ranks": [f["belief_rank"] for f in d["factors"]],
        "true_factor_components_95": d["true_factor_beliefs"]["components"]["0.95"],
        "true_joint_components_95": d["true_joint_beliefs"]["components"]["0.95"],
        "over_training": [
            {
                "tokens": e["tokens"],
                "components_95": e["components"]["0.95"],
                "participation_ratio": e["participation_ratio"],
                "subspace_overlap": e["subspace_overlap"],
            }
            for e in d["over_training"]
        ]
        + [
            {
                "tokens": d["final_tokens"],
                "components_95": d["components"]["0.95"],
                "participation_ratio": d["participation_ratio"],
                "subspace_overlap": d["subspace_overlap"],
            }
        ],
        "untrained_components_95": layer["untrained"]["components"]["0.95"],
        "subspace_overlap": d["subspace_overlap"],
        "subspace_overlap_untrained": d["subspace_overlap_untrained"],
        "overlap_null": d["overlap_null"],
        "factor_r2_heldout_contexts": [f["r2_heldout_contexts"] for f in layer["factors"]],
        "joint_r2_heldout_contexts": layer["joint_probe"]["r2_heldout_contexts"],
        "wall_seconds": summary.wall_seconds,
    }


def format_coupled_markdown(rows: list[dict[str, Any]], quick: bool) -> str:
    """Two tables: the effective dimension over training against the predictions; the overlaps beside the nulls."""
    lines = [
        f"# Coupled factors: effective dimension and subspace overlap ({'quick' if quick else 'full'} budget)",
        "",
        "| run | relative loss | d_k | factored sum(d_k - 1) | joint prod(d_k) - 1 | joint beliefs' rank | true factor "
        "/ joint beliefs, components for 95% | untrained | activations' components for 95% over training (tokens: "
        "count, participation ratio) |",
        "|---|---:|---|---:|---:|---:|---|---:|---|",
    ]
    for r in rows:
        evo = "; ".join(
            f"{e['tokens']:.2g}: {e['components_95']}, {e['participation_ratio']:.2f}" for e in r["over_training"]
        )
        lines.append(
            f"| {r['run']} | {r['relative_loss']:.4f} | {r['belief_ranks']} | {r['dim_factored']} | {r['dim_joint']} | "
            f"{r['joint_belief_dim']} | {r['true_factor_components_95']} / {r['true_joint_components_95']} | "
            f"{r['untrained_components_95']} | {evo} |"
        )
    lines += [
        "",
        "| run | pair | subspace overlap, final (untrained) | random subspaces: mean, 95th pct | over training | "
        "factor R² held out | joint R² held out |",
        "|---|---|---|---|---|---|---:|",
    ]
    for r in rows:
        for pair, v in r["subspace_overlap"].items():
            null = r["overlap_null"][pair]
            evo = ", ".join(f"{e['subspace_overlap'][pair]:.3f}" for e in r["over_training"])
            r2 = ", ".join("–" if x is None else f"{x:.3f}" for x in r["factor_r2_heldout_contexts"])
            lines.append(
                f"| {r['run']} | {pair} | {v:.3f} ({r['subspace_overlap_untrained'][pair]:.3f}) | "
                f"{null['mean']:.3f}, {null['q95']:.3f} | {evo} | {r2} | {r['joint_r2_heldout_contexts']:.3f} |"
            )
    lines += [
        "",
        "Components: principal components of the probe layer's activations over the distinct contexts (probability "
        "weights) needed for 95% of the variance, at each checkpoint and at the end, beside the same count for the "
        "true factor beliefs side by side and for the true joint beliefs; d_k: each factor's belief rank. Overlap: the "
        "authors' subspace overlap (simplexity, analysis/linear_regression.py: the mean squared cosine of the "
        "principal angles between two factors' probe read-out subspaces; 0 orthogonal, 1 nested), beside random "
        "subspaces of the factors' belief dimensions in the activations' width.",
    ]
    return "\n".join(lines) + "\n"


def reproduce_coupled(out_root: Path, runner: Runner) -> str:
    """Run the four coupled-factor configs (reusing finished runs), write coupled_factors.md / .json and copy each
    run's over-training figure; return the Markdown."""
    out_root = Path(out_root)
    rows = []
    for label, name in COUPLED_CONFIGS:
        path = runner.config_path(name)
        cfg = runner.load(path, COUPLED_QUICK if runner.quick else None)
        run_dir = out_root / name
        runner.say(f"== coupled_factors: {path} ({cfg.training['steps']} steps) -> {run_dir}")
        runner.run(cfg, run_dir)
        rows.append(coupled_row(label, run_dir))
        for stem in ("factored_over_training", "factored_variance"):
            src = run_dir / "figures" / f"{stem}.png"
            if src.is_file():
                copy_atomic(src, out_root / f"{name}_{stem.removeprefix('factored_')}.png")
    markdown = format_coupled_markdown(rows, runner.quick)
    write_json_atomic(out_root / "coupled_factors.json", {"quick": runner.quick, "rows": rows})
    write_text_atomic(out_root / "coupled_factors.md", markdown)
    return markdown
