"""`compmech reproduce --only icl`: the in-context learning study end to end, with its tables and figures.

Runs ``compmech/experiments/icl_mess3.toml`` (three Mess3 settings, one per sequence, context 32) and
``compmech/experiments/icl_markov.toml`` (random Markov chains, k = 3, context 64), each with ``[studies.icl]`` (a
finished run is reused), then writes into the output directory ``icl.md`` and ``icl.json``: the fitted
exponents and rates of the excess loss for the theory and the model, the issue's targets (the model within 2%
of the optimum at every position with >= 4 tokens seen; below the best never-inferring predictor early; the
source posterior decodable, held-out R² >= 0.9 at positions with >= 8 tokens seen), the posterior probes by
layer and the losses at a few positions; and copies the study's figures beside them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from compmech.runs.files import copy_atomic, write_json_atomic, write_text_atomic
from compmech.runs.settings import quick_steps
from compmech.runs.summary import read_summary
from compmech.studies.base import Runner

#: The study's runs: run directory name = shipped config name -> label in the tables.
RUNS: dict[str, str] = {
    "icl_mess3": "three Mess3 settings, one per sequence (compmech/experiments/icl_mess3.toml)",
    "icl_markov": "random Markov chains, k = 3, a Dirichlet(1) prior on each row "
    "(compmech/experiments/icl_markov.toml)",
}
#: ``--quick``: this fraction of the config's steps, and smaller probe and evaluation samples.
QUICK_FRACTION = 0.1
QUICK_OVERRIDES = {
    "data.probe_sequences": 2000,
    "studies.icl.probe_sequences": 1000,
    "studies.icl.eval_sequences": 2000,
    "studies.icl.n_repeats": 1,
}
FIGURES = ("icl_loss", "icl_training", "icl_probe")


def row(label: str, run_dir: Path) -> dict[str, Any]:
    """The numbers of one finished run, from its icl.json and summary.json."""
    d = json.loads((run_dir / "icl.json").read_text())
    summary = read_summary(run_dir)
    t = d["targets"]
    best = d["best_layer"]
    key8 = next(k for k in t if k.startswith("posterior_min_r2_heldout_contexts_seen_ge_"))
    gap_key = next(k for k in t if k.startswith("max_relative_gap_seen_ge_"))
    return {
        "run": label,
        "run_dir": str(run_dir),
        "tokens": summary.tokens,
        "wall_seconds": summary.wall_seconds,
        "theory_method": d["theory"]["method"],
        "theory_samples": d["theory"]["n_samples"],
        "theory_last_exact_seen": d["theory"].get("last_exact_seen"),
        "optimal_exact": d.get("optimal_loss_by_position_exact"),
        "model_exact": d.get("model_loss_by_position_exact"),
        "model_eval": d["model_eval"],
        "below_optimum": d.get("below_optimum"),
        "fits": d["fits"],
        "seen": d["seen"],
        "optimal": d["optimal_loss_by_position"],
        "optimal_se": d["optimal_loss_by_position_se"],
        "known_source": d["known_source_loss_by_position"],
        "best_fixed_source": d["best_fixed_source"],
        "best_fixed_source_loss": d["fixed_source_loss_by_position"][
            d["fixed_source_labels"].index(d["best_fixed_source"])
        ],
        "model": d["model_loss_by_position"],
        "model_se": d["model_loss_by_position_se"],
        "model_gap": d["model_gap_by_position"],
        "relative_gap": d["model_relative_gap_by_position"],
        "relative_gap_se": d["model_relative_gap_by_position_se"],
        "max_relative_gap": t[gap_key],
        "gap_min_seen": int(gap_key.rsplit("_", 1)[-1]),
        "within_2_percent": t["within_2_percent"],
        "model_below_best_fixed_source_early": t["model_below_best_fixed_source_early"],
        "early_seen": t["early_seen"],
        "model_loss_early": t["model_loss_early"],
        "best_fixed_source_loss_early": t["best_fixed_source_loss_early"],
        "best_layer": best,
        "posterior_min_r2_seen_ge": int(key8.rsplit("_", 1)[-1]),
        "posterior_min_r2_heldout_contexts": t[key8],
        "posterior": {
            name: {
                "r2_heldout_contexts": p["r2_heldout_contexts"],
                "min_r2_heldout_contexts": p[key8.replace("posterior_", "")],
                "r2_shuffled": p["pooled"]["r2_shuffled"],
                "untrained_r2_heldout_contexts": p["untrained"]["r2_heldout_contexts"],
                "belief_r2_heldout_contexts": d["belief_probe"][name]["r2_heldout_contexts"],
            }
            for name, p in d["posterior_probe"].items()
        },
        "transition": d["transition"],
        "induction_max": (
            None if not d.get("induction") else max(max(v["all"]["score"]) for v in d["induction"].values())
        ),
        "induction_baseline": (
            None if not d.get("induction") else next(iter(d["induction"].values()))["all"]["baseline"]
        ),
    }


def _v(x: Any, fmt: str = ".4g") -> str:
    return "–" if x is None else format(x, fmt)


def _fit(f: dict | None) -> str:
    return "–" if f is None else f"{f['rate']:.3g} ± {f['rate_se']:.2g} (rmse ln {f['rmse_log']:.3g})"


def _agree(v: bool | None) -> str:
    return {True: "yes", False: "no", None: "undetermined"}[v]


def _decay_lines(r: dict[str, Any]) -> list[str]:
    """The model's measured excess against the theory's, fitted at the same positions (an older icl.json: none)."""
    c = r["fits"].get("comparison")
    if c is None:
        return []
    seen = c["seen"]
    lines = [
        "",
        f"Decay of the excess, the model's measured curve against the theory's, both fitted at the same "
        f"{len(seen)} positions ({seen[0] if seen else '–'}-{seen[-1] if seen else '–'} tokens seen):",
        "",
        "| form | theory | model | model - theory | agree |",
        "|---|---|---|---|---|",
    ]
    for form in ("power_law", "exponential"):
        d = c[form]
        if d is not None:
            lines.append(
                f"| {form.replace('_', ' ')} | {d['theory_rate']:.3g} ± {d['theory_rate_se']:.2g} | "
                f"{d['model_rate']:.3g} ± {d['model_rate_se']:.2g} | "
                f"{d['difference']:+.3g} ± {d['difference_se']:.2g} | {_agree(d['agree'])} |"
            )
    return lines + ["", f"Rule: {c['rule']}."]


def format_markdown(rows: list[dict[str, Any]], quick: bool) -> str:
    """The tables: the fits, the targets, the probes by layer and the losses at a few positions."""
    lines = [f"# In-context learning ({'quick' if quick else 'full'} budget)", ""]
    for r in rows:
        lines += [
            f"## {r['run']}",
            "",
            f"{r['tokens']:.3g} tokens trained; theory: {r['theory_method']}"
            + (f" ({r['theory_samples']:,} sampled words)" if r["theory_samples"] else "")
            + (f"; {r['wall_seconds']:.0f} s" if r.get("wall_seconds") else "")
            + ".",
            "",
            "| excess loss of | power law a n^-b: b | exponential a exp(-n/tau): tau (tokens) | better |",
            "|---|---|---|---|",
        ]
        for who in ("theory", "model"):
            f = r["fits"][who]
            lines.append(f"| {who} | {_fit(f['power_law'])} | {_fit(f['exponential'])} | {f['better'] or '–'} |")
        lines += [
            "",
            f"Excess = loss minus the told-the-source loss (the model's: its measured loss); theory: "
            f"{r['fits']['theory']['note']}; model: {r['fits']['model']['note']}.",
        ]
        lines += _decay_lines(r)
        lines += [
            "",
            "| target | measured | met |",
            "|---|---|---|",
            f"| model within 2% of the optimum at every position with >= {r['gap_min_seen']} tokens seen "
            f"| max (model - optimal) / optimal = {100 * r['max_relative_gap']:.3f}% | "
            f"{'yes' if r['within_2_percent'] else 'no'} |",
            f"| model below the best baseline predictor ({r['best_fixed_source']}) at "
            f"{', '.join(map(str, r['early_seen']))} tokens seen | model "
            f"{', '.join(f'{x:.4f}' for x in r['model_loss_early'])} vs "
            f"{', '.join(f'{x:.4f}' for x in r['best_fixed_source_loss_early'])} nats | "
            f"{'yes' if r['model_below_best_fixed_source_early'] else 'no'} |",
            f"| source posterior decodable: held-out R² >= 0.9 at every position with >= "
            f"{r['posterior_min_r2_seen_ge']} tokens seen, best layer ({r['best_layer']}) | min R² "
            f"{_v(r['posterior_min_r2_heldout_contexts'], '.3f')}, shuffled "
            f"{_v(r['posterior'][r['best_layer']]['r2_shuffled'], '.3f')} | "
            f"{'yes' if (r['posterior_min_r2_heldout_contexts'] or 0) >= 0.9 else 'no'} |",
            "",
            "| layer | posterior R² held out (pooled) | min over positions | shuffled | untrained | "
            "belief R² held out |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, p in r["posterior"].items():
            lines.append(
                f"| {name} | {_v(p['r2_heldout_contexts'], '.3f')} | {_v(p['min_r2_heldout_contexts'], '.3f')} "
                f"| {_v(p['r2_shuffled'], '.3f')} | {_v(p['untrained_r2_heldout_contexts'], '.3f')} | "
                f"{_v(p['belief_r2_heldout_contexts'], '.3f')} |"
            )
        check = r["below_optimum"]
        by_pos = None if check is None else check["by_position"]
        if r["optimal_exact"] is not None:
            ev = r["model_eval"]
            last = r["theory_last_exact_seen"]
            lines += [
                "",
                f"Theory exact through {last if last is not None else '–'} tokens seen"
                + (", Monte Carlo beyond" if r["theory_method"] == "hybrid" else "")
                + f"; the model's loss exact (every context, {ev['exact_strings']:,} strings) at its first "
                f"{ev['exact_positions']} positions"
                + (f", on {ev['sequences']:,} sampled sequences beyond" if ev["sequences"] else "")
                + ".",
            ]
        if check is not None:
            lines += [
                "Model below the exact optimum by more than its error (model - optimal < -(errors in "
                "quadrature + float32 normalisation bound)): "
                + (
                    f"none ({'passed' if check['passed'] else 'failed'})"
                    if check["passed"]
                    else "at " + ", ".join(map(str, check["violations_seen"])) + " tokens seen (failed)"
                )
                + "; below the Monte-Carlo optimum by more than the errors at "
                + (", ".join(map(str, check["below_at_monte_carlo_optimum_seen"])) or "no")
                + " tokens seen (a one-error rule flags about 16% of positions by chance)."
            ]
        lines += [
            "",
            "| tokens seen | optimal | told the source | baseline (best) | model | model over optimal |"
            + (" model - optimal (tolerance) |" if by_pos else ""),
            "|---:|---:|---:|---:|---:|---:|" + ("---:|" if by_pos else ""),
        ]
        for i, s in enumerate(r["seen"]):
            if s in (0, 1, 2, 3, 4, 8, 16, 32, 64) or i == len(r["seen"]) - 1 or (by_pos and by_pos[i]["below"]):
                exact_opt = r["optimal_exact"] is not None and r["optimal_exact"][i]
                exact_model = r["model_exact"] is not None and r["model_exact"][i]
                line = (
                    f"| {s} | {r['optimal'][i]:.5f}"
                    + (" (exact)" if exact_opt else f" ± {r['optimal_se'][i]:.5f}")
                    + f" | {r['known_source'][i]:.4f} | {r['best_fixed_source_loss'][i]:.4f} | {r['model'][i]:.5f}"
                    + (" (exact)" if exact_model else f" ± {r['model_se'][i]:.5f}")
                    + f" | {100 * r['relative_gap'][i]:.3f} ± {100 * r['relative_gap_se'][i]:.3f}% |"
                )
                if by_pos:
                    b = by_pos[i]
                    rows_offset = r["model"][i] - r["model_gap"][i] - r["optimal"][i]  # the rows' own optimum's
                    line += (
                        f" {b['difference']:+.5f} ({b['tolerance']:.1e})"
                        + (f" **below**; rows' own optimum {rows_offset:+.5f}" if b["below"] else "")
                        + " |"
                    )
                lines.append(line)
        tr = r["transition"]
        if tr is not None:
            lines += [
                "",
                "Over training: the model's in-context gain / the optimum's at "
                + ", ".join(f"{t:.3g}: {f:.2f}" for t, f in zip(tr["tokens"], tr["icl_fraction"]))
                + f" tokens -> {tr['kind']} ({tr['rule']}).",
            ]
        if r["induction_max"] is not None:
            lines += [
                f"Largest induction score of a head (every earlier occurrence): {r['induction_max']:.3f} "
                f"(uniform attention: {r['induction_baseline']:.3f})."
            ]
        lines.append("")
    return "\n".join(lines)


def reproduce(out_root: Path, runner: Runner) -> str:
    """Run both configs (reusing finished runs), write icl.md / icl.json, copy the figures; return the Markdown."""
    out_root = Path(out_root)
    rows = []
    for name, label in RUNS.items():
        path = runner.config_path(name)
        cfg = runner.load(path)
        if runner.quick:
            cfg = runner.load(path, {"training.steps": quick_steps(cfg.training, QUICK_FRACTION), **QUICK_OVERRIDES})
        run_dir = out_root / name
        runner.say(f"== icl: {path} ({cfg.training['steps']} steps) -> {run_dir}")
        runner.run(cfg, run_dir)
        rows.append(row(label, run_dir))
        for fig in FIGURES:
            src = run_dir / "figures" / f"{fig}.png"
            if src.is_file():
                copy_atomic(src, out_root / f"{name}_{fig}.png")
    markdown = format_markdown(rows, runner.quick)
    write_json_atomic(out_root / "icl.json", {"quick": runner.quick, "rows": rows})
    write_text_atomic(out_root / "icl.md", markdown)
    return markdown


# ---------------------------------------------------------------------------- compmech reproduce --only icl-mr-name

#: The induction-head setting of the paper (the authors' dursley_wonka config): run directory = config name.
MR_NAME_RUN = "icl_mr_name"
#: ``--quick``: this fraction of the authors' 1000 steps (batch 512 kept), smaller evaluation and probe samples.
MR_NAME_QUICK_FRACTION = 0.3
MR_NAME_QUICK_OVERRIDES = {
    "data.probe_sequences": 500,
    "studies.icl.probe_sequences": 300,
    "studies.icl.eval_sequences": 1000,
    "studies.icl.theory_samples": 5000,
}
MR_NAME_FIGURES = (*FIGURES, "icl_transition")


def mr_name_markdown(r: dict[str, Any], d: dict[str, Any], quick: bool) -> str:
    """The icl tables of the run (`format_markdown`), then the loss on the name tokens by count over training and the
    step change beside the induction score's rise."""
    lines = [format_markdown([r], quick).replace("# In-context learning", "# In-context learning of a name", 1)]
    ident, t = d.get("identifying_tokens"), d.get("step_timing")
    if ident is not None:
        opt = ident["optimal"]
        heads = [f"{c}{'+' if opt['top_open'] and c == opt['count'][-1] else ''}" for c in opt["count"]]
        lines += [
            f"### Loss on the name tokens ({', '.join(ident['token_names'])}) by how many names were seen before",
            "",
            "| | " + " | ".join(f"{h} seen" for h in heads) + " |",
            "|---|" + "---:|" * len(heads),
        ]

        def cells(rec: dict[str, Any]) -> str:
            return " | ".join(
                "–" if v is None else f"{v:.4f}" + ("" if e is None else f" ± {e:.4f}")
                for v, e in zip(rec["loss"], rec["loss_se"])
            )

        lines.append(f"| Bayes optimum | {cells(opt)} |")
        for p in ident["over_training"]:
            lines.append(f"| model, step {p['step']:,} | {cells(p)} |")
        lines += [
            "| predictions | " + " | ".join(f"{n:,}" for n in opt["n"]) + " |",
            "",
            f"{ident['n_sequences']:,} fresh sequences; ± a standard error clustered by sequence. "
            + ident["definition"]
            + ".",
            "",
        ]
    if t is not None:
        c = t["step_change"]
        rise = t["induction_half_rise"]
        fall = t.get("identifying_gain_half_rise")
        lines += [
            "### The step change in the loss and the induction heads (optimizer steps)",
            "",
            "| what | found | at | interval |",
            "|---|---|---:|---|",
            f"| step change in the held-out loss | {'yes' if c['found'] else 'no'} | "
            + ("–" if c["step"] is None else f"{c['step']:,.0f} ± {c['uncertainty']:,.0f}")
            + " | "
            + ("–" if c["step_lo"] is None else f"{c['step_lo']:,.0f}-{c['step_hi']:,.0f}")
            + " |",
        ]
        for what, h in (("induction score, half rise", rise), ("in-context gain on the name, half rise", fall)):
            if h is not None:
                lines.append(
                    f"| {what} | {'yes' if h['found'] else 'no'} | "
                    + ("–" if h["at"] is None else f"{h['at']:,.0f}")
                    + " | "
                    + ("–" if h["lo"] is None else f"between checkpoints {h['lo']:,.0f} and {h['hi']:,.0f}")
                    + " |"
                )
        coincide = {True: "yes", False: "no", None: "undetermined"}[t["coincide"]]
        lines += [
            "",
            f"{c['reason']}" + (f"; drop {c['drop']:.4f} nats" if c["drop"] is not None else "") + ". "
            f"Step change and induction rise coincide ({t['coincide_rule']}): {coincide}.",
            "",
            f"Rule: {c['rule']}.",
            "",
        ]
    return "\n".join(lines)


def reproduce_mr_name(out_root: Path, runner: Runner) -> str:
    """Run compmech/experiments/icl_mr_name.toml (reusing a finished run), write icl_mr_name.md / .json, copy the
    figures; return the Markdown."""
    out_root = Path(out_root)
    path = runner.config_path(MR_NAME_RUN)
    cfg = runner.load(path)
    if runner.quick:
        cfg = runner.load(
            path, {"training.steps": quick_steps(cfg.training, MR_NAME_QUICK_FRACTION), **MR_NAME_QUICK_OVERRIDES}
        )
    run_dir = out_root / MR_NAME_RUN
    runner.say(f"== icl-mr-name: {path} ({cfg.training['steps']} steps) -> {run_dir}")
    runner.run(cfg, run_dir)
    r = row("two mr_name processes whose names differ (compmech/experiments/icl_mr_name.toml)", run_dir)
    d = json.loads((run_dir / "icl.json").read_text())
    for fig in MR_NAME_FIGURES:
        src = run_dir / "figures" / f"{fig}.png"
        if src.is_file():
            copy_atomic(src, out_root / f"{MR_NAME_RUN}_{fig}.png")
    markdown = mr_name_markdown(r, d, runner.quick)
    write_json_atomic(
        out_root / "icl_mr_name.json",
        {
            "quick": runner.quick,
            "row": r,
            "identifying_tokens": d.get("identifying_tokens"),
            "step_timing": d.get("step_timing"),
        },
    )
    write_text_atomic(out_root / "icl_mr_name.md", markdown)
    return markdown
