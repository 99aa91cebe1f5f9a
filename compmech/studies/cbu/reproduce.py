"""`compmech reproduce --only cbu`: the constrained-belief-update study end to end, with its table and figures.

Runs the sweep ``compmech/experiments/cbu_mess3.toml`` (a one-layer transformer on Mess3 at three x: lambda = 1 - 3x),
the sweep ``compmech/experiments/cbu_authors.toml`` (the authors' notebook settings: Mess3 with x in {0.15, 0.5} and
alpha in {0.2, 0.6}, context 9, two blocks) and ``compmech/experiments/cbu_product.toml`` with three pairs of Mess3
factors (lambda = (0.7, 0.7), (0.7, 0.3), (0.7, -0.3): one, two and three predicted heads), each an ordinary run with
``[studies.cbu]`` (finished runs are reused), then writes into the output directory ``cbu.md`` and ``cbu.json`` (one
row per run: predicted and fitted decay rates, the assignment of heads and its cost, head counts, every R² beside
its null, the verdicts) and copies each run's ``figures/cbu.png``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from compmech.runs.files import copy_atomic, write_json_atomic, write_text_atomic
from compmech.runs.settings import quick_steps, set_dotted
from compmech.runs.summary import read_summary
from compmech.studies.base import Runner
from probes.attention import rate_groups

#: ``--quick``: this fraction of cbu_product.toml's steps, one probe split, coarser figures (the Mess3 sweep has its
#: own [sweep] quick budget).
QUICK_FRACTION = 0.15
QUICK = {"probe.n_repeats": 1, "studies.cbu.n_repeats": 1}
#: Beside the sweep: Mess3 at x = 0.1 with less informative tokens (alpha 0.6), where the exact readout rate is
#: nearer the first-order lambda (0.61 against 0.7; 0.35 at alpha 0.85).
MESS3_EXTRA: tuple[tuple[str, dict[str, Any]], ...] = (
    ("alpha_06", {"process.params.x": 0.1, "process.params.alpha": 0.6}),
)
#: The product runs: (label, the two factors' lambda); x = (1 - lambda) / 3, alpha as in cbu_product.toml.
PRODUCT_PAIRS: tuple[tuple[str, tuple[float, float]], ...] = (
    ("product_07_07", (0.7, 0.7)),
    ("product_07_03", (0.7, 0.3)),
    ("product_07_m03", (0.7, -0.3)),
)


def row(label: str, run_dir: Path) -> dict[str, Any]:
    """One table row from a finished run's cbu.json and summary.json."""
    d = json.loads((run_dir / "cbu.json").read_text())
    summary = read_summary(run_dir)
    heads = [h for h in d["heads"] if h["layer"] == 0]
    mid = d["probes"][d["probes"]["intermediate_layer"]]
    fin = d["probes"][d["probes"]["final_layer"]]
    main = d["main_head"]
    return {
        "run": label,
        "run_dir": str(run_dir),
        "relative_loss": summary.relative_loss,
        "predicted_lambdas": [p["eigenvalue"] for p in d["predicted_heads"]],
        "predicted_head_count": d["predicted_head_count"],
        "observed_head_count": d["observed_head_count"],
        "n_heads": d["n_heads"],
        "main_predicted_lambda": d["main_predicted_lambda"],
        "observed_rate_groups": len(rate_groups([h["fitted_lambda"] for h in heads if h["clean_decay"]])),
        "main_fitted_lambda": d["main_fitted_lambda"],
        "main_readout_lambda": d.get("main_readout_lambda"),
        "heads": [
            {
                "layer": h["layer"],
                "head": h["head"],
                "predicted_lambda": h["predicted_lambda"],
                "readout_lambda": h.get("readout_lambda"),
                "fitted_lambda": h["fitted_lambda"],
                "rate_se": h.get("rate_se"),
                "parity_rate_se": h.get("parity_rate_se"),
                "ov_factor_share": h.get("ov_factor_share"),
                "r2": h["r2"],
                "parity_rate": h["parity_rate"],
                "parity_offset": h["parity_offset"],
                "parity_r2": h["parity_r2"],
                "clean_decay": h["clean_decay"],
                "nearest_gap": h.get("nearest_gap"),
                "ov_update_cosine_mean": h.get("ov_update_cosine_mean"),
            }
            for h in d["heads"]
        ],
        "main_ov_update_cosine": heads[main]["ov_update_cosine_mean"] if main is not None else None,
        "intermediate_r2_constrained": mid["constrained"]["r2_heldout_contexts"],
        "intermediate_r2_beliefs": mid["beliefs"]["r2_heldout_contexts"],
        "final_r2_constrained": fin["constrained"]["r2_heldout_contexts"],
        "final_r2_beliefs": fin["beliefs"]["r2_heldout_contexts"],
        "n_layers": d.get("n_layers", 1),
        "assignment": d.get("assignment"),
        "greedy_cost": (d.get("greedy_assignment") or {}).get("cost"),
        "null": [c for c in (d.get("null_model") or {}).get("layers", {}).values()],
        "verdicts": {k: v["verdict"] for k, v in (d.get("verdicts") or {}).items()},
        "decay_held": {
            k: (d["verdicts"][k]["n_held"], d["verdicts"][k]["n_predicted"])
            for k in ("decay_first_order", "decay_readout")
            if k in (d.get("verdicts") or {})
        },
        "wall_seconds": summary.wall_seconds,
    }


def _verdict_cell(r: dict[str, Any], key: str) -> str:
    v = r.get("verdicts", {}).get(key)
    return "–" if v is None else ("**supported**" if v == "supported" else "not supported")


def format_markdown(rows: list[dict[str, Any]], quick: bool) -> str:
    """The tables: one line per run (the verdicts), one per probed layer (every R² beside its null), one per head."""

    def n(v: Any, f: str = ".3f") -> str:
        return "–" if v is None else format(v, f)

    def pm(se: Any) -> str:
        return "" if se is None else f" ± {se:.3f}"

    def held(r: dict[str, Any], key: str) -> str:
        h = r.get("decay_held", {}).get(key)
        return "" if h is None else f" ({h[0]}/{h[1]})"

    lines = [
        f"# Constrained belief updates ({'quick' if quick else 'full'} budget)",
        "",
        "| run | relative loss | predicted λ | main head: predicted λ / readout rate / fitted λ | heads predicted / "
        "clean (of) / rate groups | assignment cost (greedy) | decay at first-order λ | decay at readout rate | "
        "OV·u cosine | mid → constrained R² | null R² | margin / spread | constrained belief | mid → belief R² | "
        "final → belief R² |",
        "|---|---:|---|---|---|---|---|---|---:|---:|---:|---|---|---:|---:|",
    ]
    for r in rows:
        mid = r["null"][0] if r.get("null") else {}
        a = r.get("assignment") or {}
        lines.append(
            f"| {r['run']} | {r['relative_loss']:.4f} | {', '.join(n(v, '.2f') for v in r['predicted_lambdas'])} | "
            f"{n(r['main_predicted_lambda'])} / {n(r['main_readout_lambda'])} / {n(r['main_fitted_lambda'])} | "
            f"{r['predicted_head_count']} / {r['observed_head_count']} ({r['n_heads']}) / "
            f"{r['observed_rate_groups']} | "
            f"{n(a.get('cost'), '.2f')} ({n(r.get('greedy_cost'), '.2f')}) | "
            f"{_verdict_cell(r, 'decay_first_order')}{held(r, 'decay_first_order')} | "
            f"{_verdict_cell(r, 'decay_readout')}{held(r, 'decay_readout')} | "
            f"{n(r['main_ov_update_cosine'])} | {n(mid.get('model_r2_mean'))} | {n(mid.get('null_r2_mean'))} | "
            f"{n(mid.get('margin'))} / {n(mid.get('spread'))} | {_verdict_cell(r, 'constrained_belief')} | "
            f"{n(mid.get('beliefs_r2_mean'))}{' (higher)' if mid.get('beliefs_r2_higher') else ''} | "
            f"{n(r['final_r2_beliefs'])} |"
        )
    lines += [
        "",
        "| run | layer | → constrained R² (sd) | null → constrained R² (sd) | → belief R² (sd) | margin | "
        "spread | verdict |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        for c in r.get("null", []):
            lines.append(
                f"| {r['run']} | {c['layer']} | {n(c['model_r2_mean'])} ({n(c['model_r2_sd'])}) | "
                f"{n(c['null_r2_mean'])} ({n(c['null_r2_sd'])}) | {n(c['beliefs_r2_mean'])} "
                f"({n(c['beliefs_r2_sd'])}) | {n(c['margin'])} | {n(c['spread'])} | {c['verdict']} |"
            )
    lines += [
        "",
        "| run | block | head | predicted λ | readout rate | fitted λ | R² | parity rate | odd offset | "
        "parity R² | clean | gap to nearest predicted λ | OV·u cosine | OV share per factor |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for r in rows:
        for h in r["heads"]:
            share = ", ".join(f"{v:.2f}" for v in h.get("ov_factor_share") or [])
            lines.append(
                f"| {r['run']} | {h.get('layer', 0)} | {h['head']} | {n(h['predicted_lambda'])} | "
                f"{n(h.get('readout_lambda'))} | "
                f"{n(h['fitted_lambda'])}{pm(h.get('rate_se'))} | {n(h['r2'])} | "
                f"{n(h['parity_rate'])}{pm(h.get('parity_rate_se'))} | "
                f"{n(h['parity_offset'], '.2f')} | {n(h['parity_r2'])} | {'yes' if h['clean_decay'] else 'no'} | "
                f"{n(h.get('nearest_gap'))} | {n(h.get('ov_update_cosine_mean'))} | {share} |"
            )
    lines += [
        "",
        "Predicted λ: the first-order eigenvalue (compmech.studies.cbu.theory), fixed from the process alone "
        "before any fit; readout rate: the decay of the exact belief's best linear readout from the token history "
        "(compmech.studies.cbu.theory.readout_decay), the rate the first order tends to only for weakly informative "
        "tokens. Fitted λ: exp(slope) of log mean attention against query-key distance, fitted on "
        "within-query log-ratios (distances >= 1), ± its regression standard error; clean: a fit with R² >= 0.9 and "
        "rate < 0.95 (the parity fit "
        "adds an odd-distance offset, for alternating eigenvalues); rate groups: the clean heads' fitted rates "
        "grouped where they differ by more than 0.1. Assignment: block 0's heads given to the predictions by least "
        "total |fitted - predicted λ| (Hungarian; 1 per prediction left without a clean head), the greedy "
        "matching's cost in brackets. Decay verdicts: supported when every predicted head's assigned head is "
        "within 0.1 of the predicted rate ((held/predicted)). OV·u: cosine between the main head's OV vectors, "
        "projected into the belief simplex by the probe, and the predicted update directions. R²: "
        "context-disjoint held out, means over 5 common splits, from block 0's stream after attention (mid) and "
        "after the last block (final). Null: a probe fitted the same way from a stream of the exact belief, the "
        "current token and the position (one-hot), computed from the contexts. Constrained belief: supported "
        "when mean(mid R²) - mean(null R²) > sqrt(sd² + sd²) over the splits; '(higher)': the same stream is held "
        "out closer to the exact belief.",
    ]
    return "\n".join(lines) + "\n"


def reproduce(out_root: Path, runner: Runner) -> str:
    """Run the Mess3 sweep and the three products (reusing finished runs), write cbu.md / cbu.json, copy figures;
    return the Markdown."""
    out_root = Path(out_root)
    mess3 = runner.config_path("cbu_mess3")
    sweep_dir = out_root / "cbu_mess3"
    points = runner.sweep(mess3, sweep_dir)
    rows = [(f"mess3 x = {p.values['process.params.x']:g}", p.run_dir, p.name.removeprefix("cbu_")) for p in points]
    authors = runner.sweep(runner.config_path("cbu_authors"), out_root / "cbu_authors")
    authors_rows = [
        (
            f"mess3 x = {p.values['process.params.x']:g}, alpha = {p.values['process.params.alpha']:g} "
            f"(authors', 2 blocks)",
            p.run_dir,
            p.name.removeprefix("cbu_").replace("=", "").replace(",", "_").replace(".", ""),
        )
        for p in authors
    ]
    for stem, over in MESS3_EXTRA:
        raw = points[0].cfg.to_dict()
        for key, value in over.items():
            set_dotted(raw, key, value)
        raw["name"] = f"cbu_mess3-{stem}"
        cfg = runner.from_dict(raw, source=str(mess3))
        run_dir = out_root / f"cbu_mess3_{stem}"
        runner.run(cfg, run_dir)
        p = cfg.process.params
        rows.append((f"mess3 x = {p['x']:g}, alpha = {p['alpha']:g}", run_dir, f"mess3_{stem}"))
    product = runner.config_path("cbu_product")
    base = runner.load(product)
    alpha = base.process.components[0].params.get("alpha", 0.85)
    for label, lams in PRODUCT_PAIRS:
        over = {
            "process.components": [
                {"name": "mess3", "params": {"x": (1.0 - lam) / 3.0, "alpha": alpha}} for lam in lams
            ]
        }
        if runner.quick:
            over["training.steps"] = quick_steps(base.training, QUICK_FRACTION)
            over.update(QUICK)
        cfg = runner.load(product, over)
        run_dir = out_root / label
        runner.say(f"== cbu {label}: lambda = {lams} ({cfg.training['steps']} steps) -> {run_dir}")
        runner.run(cfg, run_dir)
        rows.append((f"mess3 x mess3, λ = ({lams[0]:g}, {lams[1]:g})", run_dir, label))
    rows += authors_rows
    table = [row(label, d) for label, d, _ in rows]
    markdown = format_markdown(table, runner.quick)
    write_json_atomic(out_root / "cbu.json", {"quick": runner.quick, "rows": table})
    write_text_atomic(out_root / "cbu.md", markdown)
    for _, d, stem in rows:
        src = d / "figures" / "cbu.png"
        if src.is_file():
            copy_atomic(src, out_root / f"cbu_{stem}.png")
    return markdown
