"""`compmech run [CONFIG]`: one experiment end to end, and its results printed beside the paper's."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from compmech.runs.config import DEFAULT_CONFIG, load_config
from compmech.runs.experiment import run_experiment
from compmech.runs.summary import RunSummary
from figures.report import ResultRow, fmt_number, paper_number, result_rows

RUN_HELP = "run an experiment end to end (default: the paper's Mess3 experiment)"

#: The line printed under the results table.
HOW_TO_READ = ("'ours' is this run, 'paper' Shai et al. (2024) where it reports the number; relative loss 1 "
               "is the Bayes optimum; a probe MSE far below the shuffled-control MSE means the residual "
               "stream holds the belief geometry.")


def add_run_command(sub) -> None:
    """Add ``run [CONFIG] [--steps N] [--seed S] [--out DIR] [--no-progress]``."""
    run = sub.add_parser("run", help=RUN_HELP)
    run.add_argument("config", nargs="?", default=None,
                     help=f"experiment TOML file (default: {DEFAULT_CONFIG.relative_to(DEFAULT_CONFIG.parents[1])})")
    run.add_argument("--steps", type=int, help="override [training] steps")
    run.add_argument("--seed", type=int, help="override the seed")
    run.add_argument("--out", type=Path,
                     help="run directory (default: runs/<name>, or runs/<name>-steps<N>-seed<S> with overrides)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar or stage messages")
    run.set_defaults(func=_cmd_run)


def default_run_dir(name: str, steps: int | None = None, seed: int | None = None) -> Path:
    """``runs/<name>``, suffixed by the command-line overrides (``-steps5000``, ``-seed4``).

    A run with overrides is a different run, so it gets its own directory: the default run's
    directory is never refused as "a different config" because of an override.
    """
    suffix = (f"-steps{steps}" if steps is not None else "") + (f"-seed{seed}" if seed is not None else "")
    return Path("runs") / f"{name}{suffix}"


def _cmd_run(args: argparse.Namespace) -> int:
    path = Path(args.config) if args.config else DEFAULT_CONFIG
    overrides = {}
    if args.steps is not None:
        overrides["training.steps"] = args.steps
    if args.seed is not None:
        overrides["seed"] = args.seed
    cfg = load_config(path, overrides)
    out = args.out if args.out is not None else default_run_dir(cfg.name, args.steps, args.seed)
    argv = getattr(args, "argv", None) or ["run", *([str(path)] if args.config else [])]
    command = "compmech " + " ".join(shlex.quote(a) for a in argv)
    summary = run_experiment(cfg, out, progress=not args.no_progress, command=command)
    if summary is None:  # a helper process of a jax.distributed run: process 0 reports
        return 0
    print(format_summary(summary))
    print(HOW_TO_READ)
    print(f"run directory: {out}")
    print(f"report:        {out / 'report.html'}  (open it in a browser)")
    return 0


def format_summary(summary: RunSummary) -> str:
    """A short plain-text table of a run's results beside the paper's numbers (the report's first table's rows,
    `figures.report.result_rows`, with the concatenated-layer probe and the time by phase)."""
    rows, notes = result_rows(summary.to_json())
    concat = summary.probe_mse_by_layer.get("concat")
    if concat is not None:
        rows.append(ResultRow("probe MSE, in-sample (all layers, concat)", concat, fmt_number(concat),
                              (summary.paper.get("layer_mse") or {}).get("concat"), 3))
    lines = [f"run {summary.name}: {summary.steps} steps, {summary.tokens:.3g} tokens, "
             f"{summary.wall_seconds:.0f} s", f"{'':52s} {'ours':>21s} {'paper':>8s}"]
    for row in rows:
        theirs = paper_number(row.paper) if row.paper is not None else ""
        lines.append(f"{row.label:52s} {row.ours_text:>21s} {theirs:>8s}")
    lines += [n for n in notes if "withheld" in n or n.startswith("†")]
    phases = summary.phase_seconds
    if phases:
        lines.append("time by phase: " + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items()))
    return "\n".join(lines)
