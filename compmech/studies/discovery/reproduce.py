"""`compmech reproduce --only discovery`: the discovery study on four processes, with its table and figures.

Runs four shipped configs, each with its other studies dropped and ``[studies.discovery]`` added (its defaults; the
quick budget trains the SAE for fewer steps): ``mess3.toml`` (3 states), ``rrxor.toml`` (5 states),
``tom_quantum.toml`` (a generalized HMM whose beliefs fill a disc, not a simplex) and ``factored.toml`` (a product
of three 3-state factors), each into ``<out>/discovery_<name>`` (finished runs are reused). Then writes
``discovery.md`` and ``discovery.json`` into the output directory (per run: vertices found against states, the held-out
R² of the affine map beside its controls, the direct R², the SAE's clusters and the factors they recover) and copies
the figures beside them.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from compmech.runs.files import copy_atomic, write_json_atomic, write_text_atomic
from compmech.runs.settings import quick_steps
from compmech.runs.summary import read_summary
from compmech.studies.base import Runner

#: The shipped configs the study runs, with a line on each.
CONFIGS = {
    "mess3": "Mess3 (3 states)",
    "rrxor": "RRXOR (5 states)",
    "tom_quantum": "tom_quantum (GHMM, 3-dim beliefs on a disc)",
    "factored": "product of three factors (27 joint states)",
}
#: ``--quick``: this fraction of each config's steps, and the SAE's steps.
QUICK_FRACTION = 0.1
QUICK_SAE_STEPS = 600
QUICK_PROBE_REPEATS = 1


def config_table(runner: Runner, name: str) -> dict[str, Any]:
    """The shipped config ``name`` as a table, its other studies replaced by [studies.discovery]; quick budgets."""
    raw = tomllib.loads(runner.config_path(name).read_text())
    raw["name"] = f"discovery_{name}"
    discovery: dict[str, Any] = {}
    if runner.quick:
        raw["training"]["steps"] = quick_steps({"steps_per_call": 50, **raw["training"]}, QUICK_FRACTION)
        raw.setdefault("probe", {})["n_repeats"] = QUICK_PROBE_REPEATS
        discovery["sae_steps"] = QUICK_SAE_STEPS
    raw["studies"] = {"discovery": discovery}
    return raw


def row(label: str, run_dir: Path) -> dict[str, Any]:
    """One table row from a finished run's discovery.json and summary.json."""
    d = json.loads((run_dir / "discovery.json").read_text())
    fits = {f["label"]: f for f in d["fits"]}
    t, told, u = fits["trained"], fits["trained, told the dimension"], fits["untrained"]
    sae = d["sae"]
    probe = json.loads((run_dir / "probe.json").read_text())["layers"].get(d["layer"], {})
    return {
        "run": label,
        "run_dir": str(run_dir),
        "relative_loss": read_summary(run_dir).relative_loss,
        "layer": d["layer"],
        "n_contexts": d["n_contexts"],
        "n_states": d["n_states"],
        "belief_dimension": t["belief_dimension"],
        "k": t["k"],
        "n_vertices": t["n_vertices"],
        "kept_variance": t["kept_variance"],
        "r2_heldout_contexts": t["r2_heldout_contexts"],
        "r2_heldout_contexts_std": t["r2_heldout_contexts_std"],
        "r2_shuffled_heldout_contexts": t["r2_shuffled_heldout_contexts"],
        "r2_untrained": u["r2_heldout_contexts"],
        "untrained_k": u["k"],
        "direct_r2": t["direct_r2"],
        # the run's own supervised probe of the same layer (every dimension, its rows and weights): the ceiling
        "probe_r2_heldout_contexts": probe.get("r2_heldout_contexts"),
        "vertex_error": t["vertex_error"],
        "told_r2_heldout_contexts": told["r2_heldout_contexts"],
        "told_direct_r2": told["direct_r2"],
        "told_vertex_error": told["vertex_error"],
        "sae_live": None if sae is None else sae["live"],
        "sae_fvu": None if sae is None else sae["fraction_variance_unexplained"],
        "sae_clusters": None if sae is None else sae["n_clusters"],
        "cluster_best_factors": None if sae is None else [c["best_factor"] for c in sae["clusters"]],
        "cluster_best_r2": None
        if sae is None
        else [None if c["best_factor"] is None else c["r2_by_factor"][c["best_factor"]] for c in sae["clusters"]],
        "factors_recovered": None if sae is None else sum(sae["factors_recovered"]),
        "n_factors": None if sae is None else len(sae["factors"]),
        "one_to_one": None if sae is None else sae["one_to_one"],
        "wall_seconds": read_summary(run_dir).wall_seconds,
    }


def _n(v: Any, fmt: str = ".3f") -> str:
    return "–" if v is None else format(v, fmt)


def format_markdown(rows: list[dict[str, Any]], quick: bool) -> str:
    """The two tables: the simplex fits, and the SAE clusters against the factors."""
    lines = [
        f"# Finding the belief simplex without the answer key ({'quick' if quick else 'full'} budget)",
        "",
        "| run | relative loss | vertices found / states (k; beliefs' dim) | variance kept | R² held out "
        "| R² shuffled, held out | R² untrained (its k) | supervised probe R² | R² direct | vertex error "
        "| told the dim: R² direct, vertex error |",
        "|---|---:|---|---:|---|---:|---|---:|---:|---:|---|",
    ]
    for r in rows:
        std = "" if r["r2_heldout_contexts_std"] is None else f" ± {r['r2_heldout_contexts_std']:.3f}"
        lines.append(
            f"| {r['run']} | {r['relative_loss']:.4f} | {r['n_vertices']} / {r['n_states']} ({r['k']}; "
            f"{r['belief_dimension']}) | {r['kept_variance']:.3f} | {_n(r['r2_heldout_contexts'])}{std} | "
            f"{_n(r['r2_shuffled_heldout_contexts'])} | {_n(r['r2_untrained'])} ({r['untrained_k']}) | "
            f"{_n(r.get('probe_r2_heldout_contexts'))} | {_n(r['direct_r2'])} | {_n(r['vertex_error'])} | "
            f"{_n(r['told_direct_r2'])}, "
            f"{_n(r['told_vertex_error'])} |"
        )
    lines += [
        "",
        "| run | SAE live latents (unexplained variance) | clusters | each cluster's best factor (its R²) "
        "| factors recovered | one to one |",
        "|---|---|---:|---|---|---|",
    ]
    for r in rows:
        if r["sae_clusters"] is None:
            continue
        pairs = zip(r["cluster_best_factors"], r["cluster_best_r2"])
        best = ", ".join("–" if b is None else f"{b} ({_n(v, '.2f')})" for b, v in pairs)
        lines.append(
            f"| {r['run']} | {r['sae_live']} ({r['sae_fvu']:.3g}) | {r['sae_clusters']} | {best} | "
            f"{r['factors_recovered']} of {r['n_factors']} | {r['one_to_one']} |"
        )
    lines += [
        "",
        "k: the PCA dimension reaching 95% of the activations' variance over the distinct contexts; the fit has k + 1 "
        "vertices. R² held out: the best affine map from the fitted simplex's barycentric coordinates to the true "
        "beliefs, fitted and scored on disjoint contexts (± std over splits); it equals a linear probe on the k PCA "
        "coordinates. R² shuffled: the same map fitted to permuted beliefs, held out. R² untrained: the whole pipeline "
        "on the untrained model (its own k). Supervised probe R²: the run's own linear probe of the same layer from "
        "every dimension (probe.json, its rows and weights), held out by context: what a readout given the beliefs "
        "reaches. R² direct: barycentric coordinates against the beliefs under the best "
        "vertex permutation, no map (only when vertices = states). Vertex error: the largest distance from a fitted "
        "vertex to its matched corner of the true simplex's image, over that image's diameter. 'told the dim': the "
        "fit with k set to the beliefs' dimension (uses the answer key). Factor 'best': the factor whose beliefs the "
        "cluster's span predicts best (held-out R²); a non-product process has one factor, itself.",
    ]
    return "\n".join(lines) + "\n"


def reproduce(out_root: Path, runner: Runner) -> str:
    """Run the four configs (reusing finished runs), write discovery.md / discovery.json and copy the figures."""
    out_root = Path(out_root)
    rows = []
    for name, label in CONFIGS.items():
        path = runner.config_path(name)
        cfg = runner.from_dict(config_table(runner, name), source=str(path))
        run_dir = out_root / f"discovery_{name}"
        runner.say(f"== discovery: {path} ({cfg.training['steps']} steps) -> {run_dir}")
        runner.run(cfg, run_dir)
        rows.append(row(f"{label} (compmech/experiments/{name}.toml)", run_dir))
        for stem in ("discovery_simplex", "discovery_clusters"):
            src = run_dir / "figures" / f"{stem}.png"
            if src.is_file():
                copy_atomic(src, out_root / f"{stem}_{name}.png")
    markdown = format_markdown(rows, runner.quick)
    write_json_atomic(out_root / "discovery.json", {"quick": runner.quick, "rows": rows})
    write_text_atomic(out_root / "discovery.md", markdown)
    return markdown
