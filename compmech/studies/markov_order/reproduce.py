"""`compmech reproduce --only markov_order`: the order-k controls on the shipped Mess3, post-quantum and quantum
configs, with their table and figures.

Runs ``compmech/experiments/{mess3,post_quantum,tom_quantum}.toml`` with ``[studies.markov_order]`` added (orders 1, 2,
3; ``--quick``: a tenth of each config's steps), each an ordinary run in ``<out>/<config>/`` (finished runs reused),
then writes ``markov_order.md`` / ``markov_order.json`` (one row per run: the probe layer's held-out R² onto the true
beliefs and onto each order-k control, trained and untrained, the verdicts, and the exact losses) and copies each
run's figure as ``markov_order_<config>.png``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from compmech.runs.files import copy_atomic, write_json_atomic, write_text_atomic
from compmech.runs.settings import quick_steps
from compmech.runs.summary import read_summary
from compmech.studies.base import Runner

#: The shipped configs the entry runs, in order.
CONFIGS = ("mess3", "post_quantum", "tom_quantum")
#: The orders of the controls.
ORDERS = (1, 2, 3)
#: ``--quick``: this fraction of each config's steps.
QUICK_FRACTION = 0.1


def row(name: str, run_dir: Path) -> dict[str, Any]:
    """One table row from a finished run's markov_order.json and summary.json."""
    d = json.loads((run_dir / "markov_order.json").read_text(encoding="utf-8"))
    layer = d["layers"][-1]
    by = {p["target"]: p for p in layer["probes"]}
    return {
        "config": name,
        "process": d["process"],
        "run_dir": str(run_dir),
        "relative_loss": read_summary(run_dir).relative_loss,
        "layer": layer["layer"],
        "r2_heldout": {t: p["r2_heldout_contexts"] for t, p in by.items()},
        "r2_untrained": {t: p["untrained_r2_heldout_contexts"] for t, p in by.items()},
        "r2_shuffled": {t: p["r2_shuffled_heldout_contexts"] for t, p in by.items()},
        "margins": layer["margins"],
        "untrained_margins": layer["untrained_margins"],
        "verdicts": d["verdicts"],
        "ceilings": d["ceilings"],
        "losses": {r["predictor"]: r["loss"] for r in d["losses"]},
    }


def _n(v: float | None, fmt: str = ".3f") -> str:
    return "–" if v is None else format(v, fmt)


def format_markdown(rows: list[dict[str, Any]], quick: bool) -> str:
    """Three tables: the verdicts against the order-k ceilings, the authors' comparison, the exact losses."""
    orders = [str(k) for k in ORDERS]
    ks = ", ".join(orders)
    lines = [
        f"# Order-k controls ({'quick' if quick else 'full'} budget)",
        "",
        f"Command: `compmech reproduce{' --quick' if quick else ''} --only markov_order`.",
        "",
        "Does the probe onto the true beliefs (context-disjoint held-out R² at the probe layer; the untrained model's "
        "in brackets) beat the order-k ceiling, the R² of the best any function of the last k tokens gives (in "
        "sample)?",
        "",
        f"| run | relative loss | true beliefs, R² held out | ceiling k = {ks} | margin k = {ks} | beats the "
        "ceiling? |",
        "|---|---:|---:|---|---|---|",
    ]
    for r in rows:
        true = f"{_n(r['r2_heldout']['true beliefs'])} ({_n(r['r2_untrained']['true beliefs'])})"
        ceilings = ", ".join(_n(r["ceilings"].get(k)) for k in orders)
        margins = ", ".join(_n(r["margins"].get(k), "+.3f") for k in orders)
        verdict = ", ".join(f"k={k}: " + {True: "yes", False: "no", None: "–"}[r["verdicts"].get(k)] for k in orders)
        lines.append(
            f"| {r['config']}: {r['process']} | {r['relative_loss']:.5f} | {true} | {ceilings} | {margins} | "
            f"{verdict} |"
        )
    targets = [f"order-{k} states" for k in orders] + [f"order-{k} words" for k in orders]
    lines += [
        "",
        "The authors' comparison, reported, not judged: held-out R² of probes onto the order-k beliefs themselves "
        "(over the process's states, and the approximation's own word states), trained (untrained):",
        "",
        "| run | " + " | ".join(targets) + " |",
        "|---|" + "---:|" * len(targets),
    ]
    for r in rows:
        cells = [f"{_n(r['r2_heldout'].get(t))} ({_n(r['r2_untrained'].get(t))})" for t in targets]
        lines.append(f"| {r['config']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Exact cross-entropy per token (nats) over the enumerated contexts:",
        "",
        "| run | optimal | model | order-0 | " + " | ".join(f"order-{k}" for k in orders) + " |",
        "|---|---:|---:|---:|" + "---:|" * len(orders),
    ]
    for r in rows:
        loss = r["losses"]
        lines.append(
            f"| {r['config']} | {loss['optimal']:.5f} | {loss['model']:.5f} | {loss['order-0']:.5f} | "
            + " | ".join(f"{loss[f'order-{k}']:.5f}" for k in orders)
            + " |"
        )
    return "\n".join(lines) + "\n"


def reproduce(out_root: Path, runner: Runner) -> str:
    """Run the three configs with the study (reusing finished runs), write markov_order.md / .json and copy the
    figures; return the Markdown."""
    out_root = Path(out_root)
    overrides = {"studies.markov_order.orders": list(ORDERS)}
    rows = []
    for name in CONFIGS:
        path = runner.config_path(name)
        cfg = runner.load(path, overrides)
        if runner.quick:
            cfg = runner.load(path, {**overrides, "training.steps": quick_steps(cfg.training, QUICK_FRACTION)})
        run_dir = out_root / name
        runner.say(f"== markov_order: {name} ({cfg.training['steps']} steps) -> {run_dir}")
        runner.run(cfg, run_dir)
        rows.append(row(name, run_dir))
        figure = run_dir / "figures" / "markov_order.png"
        if figure.is_file():
            copy_atomic(figure, out_root / f"markov_order_{name}.png")
    markdown = format_markdown(rows, runner.quick)
    write_json_atomic(out_root / "markov_order.json", {"quick": runner.quick, "rows": rows})
    write_text_atomic(out_root / "markov_order.md", markdown)
    return markdown
