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
from compmech.runs.summary import read_summary
from compmech.studies.base import Runner

#: ``--quick``: this fraction of factored.toml's steps (the sweep has its own [sweep] quick budget).
QUICK_FRACTION = 0.1


def row(label: str, run_dir: Path) -> dict[str, Any]:
    """One table row from a finished run's factored.json and summary.json."""
    d = json.loads((run_dir / "factored.json").read_text())
    summary = read_summary(run_dir)
    layer = d["layers"][d["layer"]]
    return {
        "run": label,
        "run_dir": str(run_dir),
        "relative_loss": summary.relative_loss,
        "dim_factored": d["dim_factored"],
        "dim_joint": d["dim_joint"],
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
