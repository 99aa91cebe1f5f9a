"""The `compmech` command line: run, reproduce and report experiments; process theory (processes, info, msp)."""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import shlex
import sys
from pathlib import Path

#: Subcommand -> (module that adds it, its adder function, one-line help). Only the module of the
#: command being run is imported, so `compmech --help` and the theory commands never import JAX
#: (or matplotlib) for nothing.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("compmech.runs.cli", "add_run_command",
            "run an experiment end to end (default: the paper's Mess3 experiment)"),
    "reproduce": ("compmech.runs.reproduce", "add_reproduce_command",
                  "run the paper's experiments (Mess3, RRXOR, Z1R) and compare; "
                  "--only architectures | factored: the studies beyond the paper"),
    "sweep": ("compmech.runs.sweep", "add_sweep_command",
              "run one config over a grid of values of its keys (one run per point) and tabulate the results"),
    "report": ("compmech.runs.report", "add_report_command",
               "write a run's results as one self-contained HTML page (RUN/report.html)"),
    "processes": ("compmech.runs.theory_commands", "add_theory_commands",
                  "list every named process with its parameters and defaults"),
    "info": ("compmech.runs.theory_commands", "add_theory_commands",
             "information measures of a process (h_mu, C_mu, E, T, S, chi, orders, dimension)"),
    "msp": ("compmech.runs.theory_commands", "add_theory_commands",
            "the mixed-state presentation: summary, and a plot of beliefs or of the MSP graph"),
}

#: The line printed under the results table.
HOW_TO_READ = ("'ours' is this run, 'paper' Shai et al. (2024) where it reports the number; relative loss 1 "
               "is the Bayes optimum; a probe MSE far below the shuffled-control MSE means the residual "
               "stream holds the belief geometry.")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The CLI's parser: every command in full (``command=None``), or only ``command``'s module
    imported and the other commands listed by name and help (what `main` uses, to start fast)."""
    parser = argparse.ArgumentParser(prog="compmech", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, adder, _) in COMMANDS.items():
        if (command is None or name == command) and name not in sub.choices:
            getattr(importlib.import_module(module), adder)(sub)
    for name, (_, _, help_text) in COMMANDS.items():
        if name not in sub.choices:  # listed in --help; choosing it rebuilds the parser with its module
            sub.add_parser(name, help=help_text)
    return parser


def add_run_command(sub) -> None:
    """Add ``run [CONFIG] [--steps N] [--seed S] [--out DIR] [--no-progress]``."""
    from compmech.runs.config import DEFAULT_CONFIG

    run = sub.add_parser("run", help=COMMANDS["run"][2])
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
    from compmech.runs.config import DEFAULT_CONFIG, load_config
    from compmech.runs.experiment import run_experiment

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
    if not summary:  # a helper process of a jax.distributed run: process 0 reports
        return 0
    print(format_summary(summary))
    print(HOW_TO_READ)
    print(f"run directory: {out}")
    print(f"report:        {out / 'report.html'}  (open it in a browser)")
    return 0


def format_summary(summary: dict) -> str:
    """A short plain-text table of a run's results beside the paper's numbers (the report's first table's rows,
    `figures.report.result_rows`, with the concatenated-layer probe and the time by phase)."""
    from figures.report import ResultRow, fmt_number, paper_number, result_rows

    rows, notes = result_rows(summary)
    concat = summary.get("probe_mse_by_layer", {}).get("concat")
    if concat is not None:
        rows.append(ResultRow("probe MSE, in-sample (all layers, concat)", concat, fmt_number(concat),
                              (summary.get("paper", {}).get("layer_mse") or {}).get("concat"), 3))
    lines = [f"run {summary['name']}: {summary['steps']} steps, {summary['tokens']:.3g} tokens, "
             f"{summary['wall_seconds']:.0f} s", f"{'':52s} {'ours':>21s} {'paper':>8s}"]
    for row in rows:
        theirs = paper_number(row.paper) if row.paper is not None else ""
        lines.append(f"{row.label:52s} {row.ours_text:>21s} {theirs:>8s}")
    lines += [n for n in notes if "withheld" in n or n.startswith("†")]
    phases = summary.get("phase_seconds")
    if phases:
        lines.append("time by phase: " + ", ".join(f"{k} {v:.1f} s" for k, v in phases.items()))
    return "\n".join(lines)


def _command_of(argv: list[str]) -> str | None:
    """The subcommand named in ``argv`` (its first word that is not an option), if any."""
    for word in argv:
        if not word.startswith("-"):
            return word
    return None


def os_error_message(exc: OSError) -> str:
    """One line for a failed file operation: which file, what went wrong, what to do."""
    where = f" {exc.filename}" if exc.filename else ""
    if exc.errno == errno.ENOSPC:
        return (f"the disk is full (writing{where or ' the run directory'}); free some space, or pass "
                "--out on another disk, and run the same command again (a run resumes)")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write{where}: {exc.strerror}; pass --out DIR in a writable place"
    return f"file operation failed on{where or ' a file'}: {exc.strerror or exc}"


#: The commands that train models: the persistent XLA compilation cache is on for them.
TRAINING_COMMANDS = ("run", "reproduce", "sweep")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(_command_of(argv) or "").parse_args(argv)
    args.argv = argv  # the command as typed, recorded in the run's summary
    if _command_of(argv) in TRAINING_COMMANDS:
        from compmech.runs.compiles import enable_persistent_cache

        enable_persistent_cache()  # before anything compiles: a repeated run loads its XLA programs from disk
    try:
        if args.command in ("run", "sweep", "reproduce"):  # one process per host: join them (from the environment)
            from compmech.runs.distributed import initialize_from_environment

            initialize_from_environment()
        return int(args.func(args) or 0)
    except ValueError as exc:  # ConfigError, ProcessError and the libraries' own input checks
        print(f"compmech: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except MemoryError:
        print("compmech: error: out of memory; make the run smaller ([model] context_length, d_model, "
              "[training] batch_size)", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader of stdout went away (e.g. `compmech msp ... | head`): not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        print(f"compmech: error: {os_error_message(exc)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("compmech: interrupted; run the same command again to resume", file=sys.stderr)
        return 130


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


if __name__ == "__main__":
    sys.exit(main())
