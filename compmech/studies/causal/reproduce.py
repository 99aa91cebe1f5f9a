"""`compmech reproduce --only causal`: the causal study on the default Mess3 model, with its tables and figures.

Runs ``compmech/experiments/causal_mess3.toml`` (the paper's Mess3 model, compmech/experiments/mess3.toml with
``[studies.causal]``; a finished run is reused) and writes into the output directory ``causal.md`` and
``causal.json`` (per layer: the fraction of the KL closed by steering beside its controls, and the losses under
ablation beside random subspaces and the exact baselines), and copies the study's figures beside them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from compmech.runs.files import copy_atomic, write_json_atomic, write_text_atomic
from compmech.runs.settings import quick_steps
from compmech.runs.summary import read_summary
from compmech.studies.base import Runner

CONFIG = "causal_mess3"
#: ``--quick``: this fraction of the config's steps, and smaller samples of pairs and contexts.
QUICK_FRACTION = 0.1
QUICK_OVERRIDES = {"studies.causal.n_pairs": 200, "studies.causal.n_contexts": 1000, "studies.causal.n_fit": 1000}
FIGURES = ("causal_layers", "causal_simplex")


def _e(e: dict[str, Any], digits: int = 3) -> str:
    return f"{e['mean']:.{digits}f} ± {e['stderr']:.{digits}f}"


def format_markdown(d: dict[str, Any], relative_loss: float | None, quick: bool, command: str) -> str:
    """causal.md from a causal.json."""
    b = d["baselines"]
    lines = [
        f"# Causal interventions along the belief probe ({'quick' if quick else 'full'} budget)",
        "",
        f"Made by `{command}` (compmech/experiments/{CONFIG}.toml"
        + (f"; the model's relative loss {relative_loss:.4f}" if relative_loss is not None else "")
        + ").",
        "",
        "## Steering: fraction of the KL to the target law closed",
        "",
        "| layer | delta | target | position | closed | random direction | orthogonal complement | KL before "
        "| KL after | KL to own law after | ‖Δ‖ / ‖x‖ |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for lr in d["layers"]:
        for s in lr["steering"]:
            norms = f"{s['delta_norm']['mean']:.2f} / {s['activation_norm']['mean']:.2f}"
            lines.append(
                f"| {lr['layer']} | {s['method']} | {s['target']} | {s['position']} | {_e(s['closed'])} | "
                f"{_e(s['closed_random'])} | {_e(s['closed_complement'])} | {_e(s['kl_unsteered'], 4)} | "
                f"{_e(s['kl_steered'], 4)} | {_e(s['kl_source_steered'], 4)} | {norms} |"
            )
    lines += [
        "",
        "## Ablation: loss (nats per token) with a subspace ablated at every position",
        "",
        "| layer | subspace | dim | probe R² | angles probe/encoding | clean | mean-ablated | resampled "
        "| random: mean-ablated | random: resampled |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for lr in d["layers"]:
        angles = ", ".join(f"{a:.0f}°" for a in lr["principal_angles"])
        for a in lr["ablation"]:
            lines.append(
                f"| {lr['layer']} | {a['method']} | {a['dim']} | {lr['probe_r2']:.3f} | {angles} | "
                f"{_e(a['clean'], 4)} | {_e(a['mean_belief'], 4)} | {_e(a['resample_belief'], 4)} | "
                f"{_e(a['mean_random'], 4)} | {_e(a['resample_random'], 4)} |"
            )
    lines += [
        "",
        f"Exact baselines: optimal loss {d['optimal_loss']:.4f} (over these contexts "
        f"{_e(d['optimal_loss_sample'], 4)}), order-1 predictor {b['order1']:.4f}, order-0 predictor "
        f"{b['order0']:.4f} nats per token.",
        "",
        "Definitions: " + "; ".join(f"**{k}**: {v}" for k, v in d["definitions"].items()) + ".",
    ]
    if d["notes"]:
        lines += ["", "Notes: " + "; ".join(d["notes"]) + "."]
    return "\n".join(lines) + "\n"


def reproduce(out_root: Path, runner: Runner) -> str:
    """Run the config (reusing a finished run), write causal.md / causal.json and copy the figures; return the
    Markdown."""
    out_root = Path(out_root)
    path = runner.config_path(CONFIG)
    cfg = runner.load(path)
    if runner.quick:
        cfg = runner.load(path, {"training.steps": quick_steps(cfg.training, QUICK_FRACTION), **QUICK_OVERRIDES})
    run_dir = out_root / CONFIG
    runner.say(f"== causal: {path} ({cfg.training['steps']} steps) -> {run_dir}")
    runner.run(cfg, run_dir)
    d = json.loads((run_dir / "causal.json").read_text())
    summary = read_summary(run_dir)
    command = "compmech reproduce --only causal" + (" --quick" if runner.quick else "")
    markdown = format_markdown(d, summary.relative_loss, runner.quick, command)
    write_json_atomic(out_root / "causal.json", {"quick": runner.quick, "run_dir": str(run_dir), **d})
    write_text_atomic(out_root / "causal.md", markdown)
    for stem in FIGURES:
        src = run_dir / "figures" / f"{stem}.png"
        if src.is_file():
            copy_atomic(src, out_root / f"{stem}.png")
    return markdown
