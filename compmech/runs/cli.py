"""The `compmech` command line: run, reproduce and report experiments; process theory (processes, info, msp)."""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys

import compmech
from compmech.runs.compiles import enable_persistent_cache
from compmech.runs.distributed import initialize_from_environment

#: Subcommand -> (module that adds it, its adder function, one-line help). Only the module of the
#: command being run is imported, so `compmech --help` and the theory commands never import JAX
#: (or matplotlib) for nothing.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": (
        "compmech.runs.run_command",
        "add_run_command",
        "run an experiment end to end (default: the paper's Mess3 experiment)",
    ),
    "reproduce": (
        "compmech.runs.reproduce",
        "add_reproduce_command",
        "run the paper's experiments (Mess3, RRXOR, Z1R) and compare; --only STUDY: a study beyond the "
        "paper (compmech reproduce --help lists them)",
    ),
    "check": (
        "compmech.runs.check_command",
        "add_check_command",
        "compare a finished run's numbers with the published spread over seeds (exit 1 when one lies outside)",
    ),
    "sweep": (
        "compmech.runs.sweep",
        "add_sweep_command",
        "run one config over a grid of values of its keys (one run per point) and tabulate the results",
    ),
    "report": (
        "compmech.runs.report",
        "add_report_command",
        "write a run's results as one self-contained HTML page (RUN/report.html)",
    ),
    "configs": (
        "compmech.runs.shipped",
        "add_configs_command",
        "list the experiment configs and process specs that ship with compmech",
    ),
    "probe": (
        "compmech.runs.analyze_commands",
        "add_probe_command",
        "analyse the activations of a model trained elsewhere (.npz or .safetensors) for a process's beliefs",
    ),
    "contexts": (
        "compmech.runs.analyze_commands",
        "add_contexts_command",
        "write a process's exact evaluation set (strings, probabilities, beliefs, next-token laws) as .npz",
    ),
    "export-tl": (
        "compmech.interop.transformer_lens",
        "add_export_tl_command",
        "export a run's trained transformer for TransformerLens (HookedTransformer config + state dict)",
    ),
    "processes": (
        "compmech.runs.theory_commands",
        "add_theory_commands",
        "list every named process with its parameters and defaults",
    ),
    "info": (
        "compmech.runs.theory_commands",
        "add_theory_commands",
        "information measures of a process (h_mu, C_mu, E, T, S, chi, orders, dimension)",
    ),
    "msp": (
        "compmech.runs.theory_commands",
        "add_theory_commands",
        "the mixed-state presentation: summary, and a plot of beliefs or of the MSP graph",
    ),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The CLI's parser: every command in full (``command=None``), or only ``command``'s module
    imported and the other commands listed by name and help (what `main` uses, to start fast)."""
    parser = argparse.ArgumentParser(prog="compmech", description=__doc__)
    parser.add_argument("--version", action="version", version=f"compmech {compmech.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (module, adder, _) in COMMANDS.items():
        if (command is None or name == command) and name not in sub.choices:
            getattr(importlib.import_module(module), adder)(sub)
    for name, (_, _, help_text) in COMMANDS.items():
        if name not in sub.choices:  # listed in --help; choosing it rebuilds the parser with its module
            sub.add_parser(name, help=help_text)
    return parser


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
        return (
            f"the disk is full (writing{where or ' the run directory'}); free some space, or pass "
            "--out on another disk, and run the same command again (a run resumes)"
        )
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
        enable_persistent_cache()  # before anything compiles: a repeated run loads its XLA programs from disk
    try:
        if args.command in ("run", "sweep", "reproduce"):  # one process per host: join them (from the environment)
            initialize_from_environment()
        return int(args.func(args) or 0)
    except SystemExit as exc:  # sys.exit() in code the command ran (a plugin's module or factory): the command did
        # not finish, so it never exits 0
        print(
            f"compmech: error: the command stopped before it finished: code it ran called sys.exit({exc.code!r})",
            file=sys.stderr,
        )
        return exc.code if isinstance(exc.code, int) and exc.code not in (0, 2) else 1
    except ValueError as exc:  # ConfigError, ProcessError and the libraries' own input checks
        print(f"compmech: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except MemoryError:
        print(
            "compmech: error: out of memory; make the run smaller ([model] context_length, d_model, "
            "[training] batch_size)",
            file=sys.stderr,
        )
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
