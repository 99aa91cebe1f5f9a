"""CLI subcommands for the theory: ``processes``, ``info`` and ``msp``.

`add_theory_commands` adds them to an argparse subparsers object; each sets ``func`` to a
handler ``handler(args) -> int``. Bad input raises `ProcessError` / `ValueError` with one clear
message (the main CLI prints it on one line and exits 2).
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

import hmm_processes.registry as registry
from compmech.measures import Measure, ProcessInfo, process_info
from compmech.mixed_states import _iter_word_counts
from compmech.msp import MAX_STATES, MSP, build_msp
from compmech.runs.errors import ConfigError
from compmech.runs.processes import build_process
from compmech.runs.settings import process_settings
from compmech.streaming import stream_entropies
from hmm_processes import (
    HMM,
    RANDOM_MARKOV,
    GeneralizedHMM,
    ProcessError,
    RandomMarkovChains,
    get_process,
    list_processes,
    load_spec,
)

Process = HMM | GeneralizedHMM


def add_theory_commands(subparsers: Any) -> None:
    """Add the ``processes``, ``info`` and ``msp`` subcommands to ``subparsers`` (from ``add_subparsers``)."""
    p = subparsers.add_parser(
        "processes",
        help="list every named process with its parameters and defaults",
        description="List every named process with its parameters and defaults.",
    )
    p.set_defaults(func=cmd_processes)

    p = subparsers.add_parser(
        "info",
        help="information measures of a process (h_mu, C_mu, E, T, S, chi, orders, dimension)",
        description="Information measures of a named process or a TOML spec file, in bits. Exact where the "
        "mixed-state presentation is finite, else estimates (marked).",
    )
    _process_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--seed", type=int, default=0, help="seed for the chaos-game estimates (default 0)")
    p.set_defaults(func=cmd_info)

    p = subparsers.add_parser(
        "msp",
        help="the mixed-state presentation: summary, and a plot of beliefs or of the MSP graph",
        description="Build the mixed-state presentation. Without --depth a finite MSP is shown as a graph; "
        "with --depth (or for an infinite MSP) the beliefs of all words up to that length are "
        "shown: in the 2-simplex (x = b1 + b2/2, y = sqrt(3)/2 b2, colour RGB = belief) for 3 "
        "states, else by PCA.",
    )
    _process_arguments(p)
    p.add_argument(
        "--depth",
        type=int,
        default=None,
        metavar="L",
        help="show beliefs of all words of length <= L (default: the graph if finite, else L = 10)",
    )
    p.add_argument("--plot", default=None, metavar="FILE", help="write a figure (.png, .svg or .pdf)")
    p.add_argument(
        "--max-states",
        type=int,
        default=MAX_STATES,
        help=f"state cap before the MSP is declared infinite (default {MAX_STATES})",
    )
    p.set_defaults(func=cmd_msp)


def _process_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "process",
        metavar="NAME|SPEC",
        help="a named process (see `processes`), a .toml spec file, "
        "or an experiment config (its [process], also a mixture or product)",
    )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a process parameter, e.g. --param x=0.15 (repeatable)",
    )


# --- resolving a process ---------------------------------------------------------------------------


def parse_params(items: list[str]) -> dict[str, Any]:
    """``["x=0.15", "max_depth=3", "flag=true"]`` -> ``{"x": 0.15, "max_depth": 3, "flag": True}``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ProcessError(f"--param expects KEY=VALUE (e.g. --param x=0.15); got {item!r}")
        if key in out:
            raise ProcessError(f"--param {key} given twice")
        out[key] = _parse_value(raw.strip())
    return out


def _parse_value(raw: str) -> Any:
    low = raw.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(raw)
        except ValueError:
            pass
    return raw


def resolve_process(spec: str, params: dict[str, Any] | None = None) -> Process:
    """A named process built with ``params``, the process in a TOML spec file (a path ending in .toml),
    or the [process] of an experiment config (a .toml file with a [process] table: one process, or a
    mixture / product of them, built as `compmech run` builds it)."""
    params = params or {}
    if spec.endswith(".toml") or os.sep in spec or Path(spec).is_file():
        if params:
            raise ProcessError(
                f"--param applies to named processes, not to the spec file or config {spec!r}; edit the file instead"
            )
        table = _process_table(Path(spec))
        if table is not None:
            try:
                settings = process_settings(table)
            except ConfigError as exc:
                raise ProcessError(f"{spec}: {exc}") from None
            return build_process(settings, base_dir=Path(spec).parent)
        return load_spec(spec)
    return get_process(spec, **params)


def _process_table(path: Path) -> Any:
    """The [process] table of an experiment config at ``path``; None for a spec file (or an unreadable
    file, which `load_spec` then reports)."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    return doc.get("process") if isinstance(doc.get("process"), dict) else None


# --- processes -------------------------------------------------------------------------------------


def cmd_processes(args: argparse.Namespace) -> int:
    """Print every named process: name, parameters with defaults, type and size, and its description
    (the docstring's first paragraph, whole, in plain text)."""
    rows = []
    for name, params in list_processes().items():
        proc = get_process(name)
        sig = ", ".join(f"{k}={v!r}" for k, v in params.items() if v is not inspect.Parameter.empty)
        kind = "GHMM" if isinstance(proc, GeneralizedHMM) else "HMM"
        rows.append(
            (f"{name}({sig})", f"{kind}, {proc.num_states} states, {proc.vocab_size} tokens", describe(_factory(name)))
        )
    # the continuous family a config names by kind (not in the registry: it is no HMM)
    rows.append(
        (
            "random_markov(n_states, concentration=1.0)",
            'Markov-chain family, no HMM, n_states tokens; a config names it with kind = "random_markov"',
            describe(RandomMarkovChains),
        )
    )
    for head, size, doc in rows:
        print(f"{head}  [{size}]")
        for line in textwrap.wrap(doc, width=96, initial_indent="    ", subsequent_indent="    "):
            print(line)
    return 0


def describe(obj: Any) -> str:
    """The first paragraph of ``obj``'s docstring on one line, with reST markup (``code``, `names`) removed."""
    doc = inspect.getdoc(obj) or ""
    para = doc.split("\n\n")[0]
    text = " ".join(para.split())
    return text.replace("``", "").replace("`", "")


def _factory(name: str):
    return registry._lookup(name)


# --- info ----------------------------------------------------------------------------------------------


def cmd_info(args: argparse.Namespace) -> int:
    """Print the information measures of one process (table, or one JSON object with --json)."""
    if args.process == RANDOM_MARKOV:
        raise ProcessError(
            f"{RANDOM_MARKOV} is a family of Markov chains (one drawn per sequence), not one HMM: "
            "info has no measures for it; its in-context learning curve is "
            "compmech.markov_chains.markov_icl_curve, and a config runs it with [process] kind = "
            f'"{RANDOM_MARKOV}"'
        )
    proc = resolve_process(args.process, parse_params(args.param))
    checked = check_valid(proc, None)  # before any measure: an invalid process gets none
    info = process_info(proc, seed=args.seed)
    if args.json:
        print(
            json.dumps(
                {**info.to_dict(), "checked_depth": None if math.isinf(checked) else int(checked)}, allow_nan=False
            )
        )
    else:
        print(format_info(info))
        if not math.isinf(checked):
            print(f"  note: {checked_note(checked)}")
    return 0


def check_valid(proc: Any, depth: int | None) -> float:
    """Refuse what is not one HMM or generalized HMM (random Markov chains, a family: `ProcessError`), and a
    generalized HMM with a word of negative probability up to ``depth`` tokens (None: as deep as the check goes,
    `hmm_processes.GeneralizedHMM.check_words`); return the length up to which every word was checked (inf: all)."""
    if not isinstance(proc, (HMM, GeneralizedHMM)):
        raise ProcessError(
            f"{getattr(proc, 'name', type(proc).__name__)} is a family of processes ({type(proc).__name__}"
            "), not one HMM: the theory commands have no measures for it; a config runs it with "
            "compmech run"
        )
    return proc.check_words(depth) if isinstance(proc, GeneralizedHMM) else math.inf


def checked_note(checked: float) -> str:
    """What `check_valid`'s depth means when the check could not be completed."""
    return (
        f"word probabilities checked >= 0 for every word of up to {checked:.0f} tokens, not every length (the "
        "generalized HMM's state vectors keep growing); the measures take it as valid beyond"
    )


_LABELS = {
    "h_mu": ("entropy rate h_mu", "bits/token"),
    "C_mu": ("statistical complexity C_mu", "bits"),
    "E": ("excess entropy E", "bits"),
    "T": ("transient information T", "bits"),
    "S": ("synchronization information S", "bits"),
    "chi": ("crypticity chi = C_mu - E", "bits"),
    "markov_order": ("Markov order R", ""),
    "cryptic_order": ("cryptic order k", ""),
    "n_mixed_states": ("mixed states (MSP size)", ""),
    "n_causal_states": ("causal states", ""),
    "lyapunov_dimension": ("Lyapunov dimension", ""),
    "information_dimension": ("information dimension", ""),
}
#: Shown only when computed (a product's).
_OPTIONAL = {"information_dimension"}


def _measure_text(m: Measure, unit: str) -> str:
    """``value +- error unit  [method]`` for one measure."""
    if m.value is None:
        return m.method
    if isinstance(m.value, float):
        text = f"{m.value:.8f}" if m.error is None or m.error < 1e-7 else f"{m.value:.6f}"
        if m.error is not None and m.method != "exact":
            sym = "+-" if m.error_kind == "stderr" else "within"
            text += f" {sym} {m.error:.1e}"
    else:
        text = str(m.value)
    text = f"{text} {unit}".rstrip()
    return (
        text if m.method == "exact" else f"{text}  [{m.method}{', standard error' if m.error_kind == 'stderr' else ''}]"
    )


def format_info(info: ProcessInfo, indent: str = "") -> str:
    """A plain-text table of `ProcessInfo`: each measure with its error and method; a mixture's components and a
    product's factors follow, each with its own table, indented."""
    params = ", ".join(f"{k}={v!r}" for k, v in info.params.items())
    kind = info.kind.upper()
    if info.structure == "mixture":
        n = len(info.components)
        kind += f", non-ergodic: {n} ergodic component{'s' if n > 1 else ''}"
    elif info.structure == "product":
        kind += f", product of {len(info.factors)} independent factors"
    lines = [f"{indent}{info.name}({params})  [{kind}]"]
    for key, (label, unit) in _LABELS.items():
        m = getattr(info, key)
        if key in _OPTIONAL and m.value is None:
            continue
        if key == "lyapunov_dimension" and m.method == "upper bound":
            label = "Kaplan-Yorke dimension"
        lines.append(f"{indent}  {label:<32} {_measure_text(m, unit)}")
    for i, m in enumerate(info.lyapunov_exponents):
        text = (
            "-infinite (a token collapses this direction)" if m.method == "infinite" else _measure_text(m, "bits/token")
        )
        lines.append(f"{indent}  {f'Lyapunov exponent {i + 1}':<32} {text}")
    if not indent:
        lines.append('  ("within e": a convergence bound; "+- e": a standard error; exact values to rounding)')
    for note in info.notes:
        lines.append(f"{indent}  note: {note}")
    for k, c in enumerate(info.components):
        merged = "".join(f" + {_states(m)}" for m in c.merged)
        lines.append(
            f"{indent}  component {k + 1} of {len(info.components)}: weight {c.weight:.6g}, states "
            f"{_states(c.states)}{merged}"
        )
        lines.append(format_info(c.info, indent + "    "))
    for k, f in enumerate(info.factors):
        lines.append(f"{indent}  factor {k + 1} of {len(info.factors)}:")
        lines.append(format_info(f, indent + "    "))
    return "\n".join(lines)


def _states(states: tuple[int, ...]) -> str:
    s = list(states)
    return f"{s[0]}-{s[-1]}" if len(s) > 1 and s == list(range(s[0], s[-1] + 1)) else ",".join(map(str, s))


# --- msp -------------------------------------------------------------------------------------------------


def cmd_msp(args: argparse.Namespace) -> int:
    """Summarise the MSP; with --plot draw its graph (finite) or its beliefs to a depth (fractal)."""
    if args.depth is not None and args.depth < 0:
        raise ProcessError(f"--depth must be >= 0; got {args.depth}")
    if not 1 <= args.max_states <= MAX_MSP_STATES:
        raise ProcessError(f"--max-states must be in 1..{MAX_MSP_STATES}; got {args.max_states}")
    if args.plot:
        _check_plot_path(args.plot)
    proc = resolve_process(args.process, parse_params(args.param))
    checked = check_valid(proc, args.depth)
    if not math.isinf(checked) and (args.depth is None or checked < args.depth):
        print(f"note: {checked_note(checked)}")
    if args.depth is not None:
        check_belief_depth(proc, args.depth)
    msp = build_msp(proc, max_states=args.max_states)
    graph_mode = args.depth is None and msp.finite
    if graph_mode:
        print(_msp_summary(msp))
        if args.plot:
            _save(plot_msp_graph(msp), args.plot)
    else:
        depth = 10 if args.depth is None else args.depth
        if msp.finite:
            print(_msp_summary(msp, edges=False))
        else:
            print(f"{proc.name}: MSP looks infinite ({msp.reason})")
        res = stream_entropies(proc, depth, keep_levels=True, max_states=BELIEFS_PER_LEVEL)
        B = np.concatenate([b for b, _ in res.levels])
        print(
            f"beliefs per length 0..{depth}: {res.n_states.tolist()}"
            + ("" if res.exact else " (beliefs merged on a coarse grid at some lengths)")
        )
        if args.plot:
            _save(plot_beliefs(proc, B, title=f"{proc.name}: beliefs of all words up to length {depth}"), args.plot)
    if args.plot:
        print(f"wrote {args.plot}")
    return 0


#: `msp`: beliefs kept per word length (more are merged on a coarser grid), and in all.
BELIEFS_PER_LEVEL = 200_000
MAX_BELIEF_POINTS = 2_000_000
#: `msp --max-states` at most this (the search holds every state's belief and successors).
MAX_MSP_STATES = 1_000_000


def check_belief_depth(proc: Process, depth: int) -> None:
    """`ProcessError` when the beliefs of all words up to ``depth`` would be more than `MAX_BELIEF_POINTS`
    points (at most `BELIEFS_PER_LEVEL` per length), with the largest depth that fits."""

    total = 0.0
    for L, n in enumerate(_iter_word_counts(proc)):
        total += min(n, BELIEFS_PER_LEVEL)
        if total > MAX_BELIEF_POINTS:
            if L <= depth:
                raise ProcessError(
                    f"--depth {depth}: the beliefs of {proc.name} up to that length would be about {total:.3g} points "
                    f"or more (at most {MAX_BELIEF_POINTS} are drawn); use --depth {max(L - 1, 0)} or less"
                )
            return
        if L >= depth:
            return


def _msp_summary(msp: MSP, edges: bool = True) -> str:
    proc = msp.process
    lines = [f"{proc.name}: finite MSP with {msp.num_states} states"]
    rec = msp.recurrent
    labels, weights = msp.causal_classes()
    lines.append(f"  recurrent {int(rec.sum())}, transient {int((~rec).sum())}, causal states {weights.size}")
    if edges and msp.num_states <= 64:
        tok = proc.token_names or tuple(str(x) for x in range(proc.vocab_size))
        lines.append("  transitions (state -token|prob-> state), R = recurrent:")
        for i, x, j, p in msp.transitions():
            lines.append(f"    {i}{'R' if rec[i] else ''} -{tok[x]}|{p:.4g}-> {j}{'R' if rec[j] else ''}")
    return "\n".join(lines)


def simplex_coordinates(beliefs: np.ndarray) -> np.ndarray:
    """2-simplex coordinates of 3-state beliefs [N, 3] -> [N, 2] (figures.simplex_coords)."""
    from figures import simplex_coords  # lazy: matplotlib loads only when a plot is asked (info stays quick)

    return simplex_coords(beliefs)


def plot_beliefs(proc: Process, beliefs: np.ndarray, *, title: str = ""):
    """Scatter of beliefs [N, S] (figures.msp_graph.plot_beliefs): simplex corners named by the process's states."""
    from figures.msp_graph import plot_beliefs as draw  # lazy: matplotlib loads only when a plot is asked

    # a generalized HMM's "beliefs" are quasi-probabilities: never drawn as points of a simplex
    return draw(
        beliefs, state_names=proc.state_names, simplex=None if isinstance(proc, HMM) else False, title=title or None
    )


def plot_msp_graph(msp: MSP):
    """The finite MSP as a graph (figures.msp_graph.plot_msp_graph), named by the process's states and tokens."""
    # lazy: matplotlib loads only when a plot is asked
    from figures import process_title
    from figures.msp_graph import plot_msp_graph as draw  # lazy: as above

    proc = msp.process
    return draw(
        msp.beliefs,
        msp.next_state,
        msp.token_probs,
        msp.depth,
        msp.recurrent,
        token_names=proc.token_names,
        state_names=proc.state_names,
        simplex=proc.num_states == 3 and isinstance(proc, HMM),
        title=f"{process_title(proc.name, proc.params)}: mixed-state presentation",
    )


def _check_plot_path(path: str) -> tuple[Path, str]:
    """The plot target and its format; `ProcessError` for an unsupported type or a missing folder."""
    target = Path(path)
    ext = target.suffix.lower().lstrip(".")
    if ext not in ("png", "svg", "pdf"):
        raise ProcessError(f"--plot: unsupported file type {target.suffix!r}; use .png, .svg or .pdf")
    if not target.parent.exists():
        raise ProcessError(f"--plot: folder {str(target.parent)!r} does not exist")
    return target, ext


def _save(fig, path: str) -> None:
    """Write a figure atomically (temporary file in the same folder, then rename)."""
    from figures.io import save_figure  # lazy: matplotlib loads only when a plot is asked

    try:
        target, _ = _check_plot_path(path)
    except ProcessError:
        _close_figure(fig)
        raise
    save_figure(fig, target, dpi=150)


def _close_figure(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)
