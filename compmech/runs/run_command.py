"""`compmech run [CONFIG]`: one experiment end to end, and its results printed beside the paper's."""

from __future__ import annotations

import argparse
import json
import shlex
import tomllib
from pathlib import Path
from typing import Any

from compmech.runs import shipped
from compmech.runs.config import ConfigError, load_config
from compmech.runs.experiment import run_experiment
from compmech.runs.summary import RunSummary
from figures.report import ResultRow, fmt_number, paper_number, result_rows

RUN_HELP = "run an experiment end to end (default: the paper's Mess3 experiment)"

#: The line printed under the results table.
HOW_TO_READ = (
    "'ours' is this run, 'paper' Shai et al. (2024) where it reports the number; relative loss 1 "
    "is the Bayes optimum; a probe MSE far below the shuffled-control MSE means the residual "
    "stream holds the belief geometry."
)


def add_run_command(sub) -> None:
    """Add ``run [CONFIG] [--set KEY=VALUE ...] [--steps N] [--seed S] [--out DIR] [--no-progress]``."""
    run = sub.add_parser("run", help=RUN_HELP)
    run.add_argument(
        "config",
        nargs="?",
        default=None,
        help=f"an experiment TOML file, or the name of a shipped one (compmech configs lists them; "
        f"default: {shipped.DEFAULT_NAME})",
    )
    run.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config key, by its dotted name and a TOML value, e.g. --set model.d_model=128 "
        "--set 'process.params={x = 0.1}' (repeatable)",
    )
    run.add_argument("--steps", type=int, help="override [training] steps (the same as --set training.steps=N)")
    run.add_argument("--seed", type=int, help="override the seed (the same as --set seed=S)")
    run.add_argument(
        "--out",
        type=Path,
        help="run directory (default: runs/<name>, suffixed by the overrides, e.g. runs/mess3-steps5000-d_model128)",
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bar or stage messages")
    run.set_defaults(func=_cmd_run)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """``["model.d_model=128", ...]`` -> {"model.d_model": 128, ...}: each value a TOML value (a bare word that is
    not one is taken as a string). Raises `ConfigError` naming the item when it has no ``=``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not part.isidentifier() for part in key.split(".")):
            raise ConfigError(f"--set {item!r}: write KEY=VALUE with a dotted config key, e.g. --set model.d_model=128")
        try:
            out[key] = tomllib.loads(f"v = {text.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[key] = text.strip()  # a bare word: a string (e.g. --set model.kind=gru)
    return out


def default_run_dir(
    name: str, steps: int | None = None, seed: int | None = None, overrides: dict[str, Any] | None = None
) -> Path:
    """``runs/<name>``, suffixed by the command-line overrides (``-steps5000``, ``-seed4``, ``-d_model128``: the last
    part of each key and its value).

    A run with overrides is a different run, so it gets its own directory: the default run's
    directory is never refused as "a different config" because of an override.
    """
    suffix = (f"-steps{steps}" if steps is not None else "") + (f"-seed{seed}" if seed is not None else "")
    for key, value in (overrides or {}).items():
        text = json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else str(value)
        suffix += "-" + "".join(c if c.isalnum() or c in "._" else "_" for c in key.split(".")[-1] + text)
    return Path("runs") / f"{name}{suffix}"


def _cmd_run(args: argparse.Namespace) -> int:
    path = shipped.resolve(args.config)
    overrides = parse_overrides(args.overrides)
    if args.steps is not None:
        overrides["training.steps"] = args.steps
    if args.seed is not None:
        overrides["seed"] = args.seed
    cfg = load_config(path, overrides)
    sets = {k: v for k, v in overrides.items() if k not in ("training.steps", "seed")}
    out = args.out if args.out is not None else default_run_dir(cfg.name, args.steps, args.seed, sets)
    argv = getattr(args, "argv", None) or ["run", *([str(args.config)] if args.config else [])]
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
        rows.append(
            ResultRow(
                "probe MSE, in-sample (all layers, concat)",
                concat,
                fmt_number(concat),
                (summary.paper.get("layer_mse") or {}).get("concat"),
                3,
            )
        )
    lines = [
        f"run {summary.name}: {summary.steps} steps, {summary.tokens:.3g} tokens, {summary.wall_seconds:.0f} s",
        f"{'':52s} {'ours':>21s} {'paper':>8s}",
    ]
    for row in rows:
        theirs = paper_number(row.paper) if row.paper is not None else ""
        lines.append(f"{row.label:52s} {row.ours_text:>21s} {theirs:>8s}")
    lines += [n for n in notes if "withheld" in n or n.startswith("†")]
    phases = summary.phase_seconds
    if phases:
        lines.append("time by phase: " + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items()))
    return "\n".join(lines)
