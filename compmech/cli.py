"""The `compmech` command line: run, reproduce and report experiments; process theory (processes, info, msp)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from compmech.config import DEFAULT_CONFIG, load_config
from compmech.report import add_report_command
from compmech.reproduce import add_reproduce_command
from compmech.theory_commands import add_theory_commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="compmech", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run an experiment end to end (default: the paper's Mess3 experiment)")
    run.add_argument("config", nargs="?", default=None,
                     help=f"experiment TOML file (default: {DEFAULT_CONFIG.relative_to(DEFAULT_CONFIG.parents[1])})")
    run.add_argument("--steps", type=int, help="override [training] steps")
    run.add_argument("--seed", type=int, help="override the seed")
    run.add_argument("--out", type=Path, help="run directory (default: runs/<name>)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar or stage messages")
    run.set_defaults(func=_cmd_run)

    add_theory_commands(sub)
    add_report_command(sub)
    add_reproduce_command(sub)
    return parser


def _cmd_run(args: argparse.Namespace) -> int:
    from compmech.experiment import run_experiment

    path = Path(args.config) if args.config else DEFAULT_CONFIG
    overrides = {}
    if args.steps is not None:
        overrides["training.steps"] = args.steps
    if args.seed is not None:
        overrides["seed"] = args.seed
    cfg = load_config(path, overrides)
    command = "compmech " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else None
    summary = run_experiment(cfg, args.out, progress=not args.no_progress, command=command)
    print(format_summary(summary))
    return 0


def format_summary(summary: dict) -> str:
    """A short plain-text table of a run's results beside the paper's numbers."""
    paper = summary.get("paper", {})
    probe = summary["probe"]
    rows = [
        ("relative loss (CE / optimum)", summary["relative_loss"], paper.get("relative_loss")),
        (f"probe MSE ({summary['probe_layer']})", probe["mse"], paper.get("probe_mse")),
        ("probe R^2", probe["r2"], None),
        ("held-out probe MSE", probe["mse_heldout"], paper.get("probe_mse_heldout")),
        ("shuffled-control MSE", probe["mse_shuffled"], paper.get("probe_mse_shuffled")),
    ]
    by_layer = summary.get("probe_mse_by_layer", {})
    if "concat" in by_layer:
        rows.append(("probe MSE (all layers, concat)", by_layer["concat"],
                     paper.get("layer_mse", {}).get("concat")))
    geo = summary.get("geometry")
    if geo:
        rows.append((f"distance R^2 vs beliefs ({geo['layer']})", geo["distance_r2_beliefs"],
                     paper.get("distance_r2_beliefs")))
        rows.append((f"distance R^2 vs next-token ({geo['layer']})", geo["distance_r2_next_token"],
                     paper.get("distance_r2_next_token")))
    lines = [f"run {summary['name']}: {summary['steps']} steps, {summary['tokens']:.3g} tokens, "
             f"{summary['wall_seconds']:.0f} s", f"{'':40s} {'ours':>10s} {'paper':>10s}"]
    for label, ours, theirs in rows:
        lines.append(f"{label:40s} {ours:10.5f} {theirs if theirs is not None else '':>10}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as exc:  # ConfigError, ProcessError and the libraries' own input checks
        print(f"compmech: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("compmech: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
