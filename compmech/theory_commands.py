"""CLI subcommands for the theory: ``processes``, ``info`` and ``msp``.

`add_theory_commands` adds them to an argparse subparsers object; each sets ``func`` to a
handler ``handler(args) -> int``. Bad input raises `ProcessError` / `ValueError` with one clear
message (the main CLI prints it on one line and exits 2).
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from compmech.measures import Measure, ProcessInfo, process_info
from compmech.msp import MAX_STATES, MSP, build_msp
from compmech.streaming import stream_entropies
from hmm_processes import GeneralizedHMM, HMM, ProcessError, get_process, list_processes, load_spec

Process = HMM | GeneralizedHMM


def add_theory_commands(subparsers: Any) -> None:
    """Add the ``processes``, ``info`` and ``msp`` subcommands to ``subparsers`` (from ``add_subparsers``)."""
    p = subparsers.add_parser("processes", help="list every named process with its parameters and defaults",
                              description="List every named process with its parameters and defaults.")
    p.set_defaults(func=cmd_processes)

    p = subparsers.add_parser(
        "info", help="information measures of a process (h_mu, C_mu, E, T, S, chi, orders, dimension)",
        description="Information measures of a named process or a TOML spec file, in bits. Exact where the "
                    "mixed-state presentation is finite, else estimates (marked).")
    _process_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    p.add_argument("--seed", type=int, default=0, help="seed for the chaos-game estimates (default 0)")
    p.set_defaults(func=cmd_info)

    p = subparsers.add_parser(
        "msp", help="the mixed-state presentation: summary, and a plot of beliefs or of the MSP graph",
        description="Build the mixed-state presentation. Without --depth a finite MSP is shown as a graph; "
                    "with --depth (or for an infinite MSP) the beliefs of all words up to that length are "
                    "shown: in the 2-simplex (x = b1 + b2/2, y = sqrt(3)/2 b2, colour RGB = belief) for 3 "
                    "states, else by PCA.")
    _process_arguments(p)
    p.add_argument("--depth", type=int, default=None, metavar="L",
                   help="show beliefs of all words of length <= L (default: the graph if finite, else L = 10)")
    p.add_argument("--plot", default=None, metavar="FILE", help="write a figure (.png, .svg or .pdf)")
    p.add_argument("--max-states", type=int, default=MAX_STATES,
                   help=f"state cap before the MSP is declared infinite (default {MAX_STATES})")
    p.set_defaults(func=cmd_msp)


def _process_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("process", metavar="NAME|SPEC", help="a named process (see `processes`) or a .toml spec file")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a process parameter, e.g. --param x=0.15 (repeatable)")


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
    """A named process built with ``params``, or the process in a TOML spec file (a path ending in .toml)."""
    params = params or {}
    if spec.endswith(".toml") or os.sep in spec or Path(spec).is_file():
        if params:
            raise ProcessError(f"--param applies to named processes, not to the spec file {spec!r}; "
                               "edit the file instead")
        return load_spec(spec)
    return get_process(spec, **params)


# --- processes -------------------------------------------------------------------------------------


def cmd_processes(args: argparse.Namespace) -> int:
    """Print every named process: name, parameters with defaults, type and size, and its description
    (the docstring's first paragraph, whole, in plain text)."""
    rows = []
    for name, params in list_processes().items():
        proc = get_process(name)
        sig = ", ".join(f"{k}={v!r}" for k, v in params.items() if v is not inspect.Parameter.empty)
        kind = "GHMM" if isinstance(proc, GeneralizedHMM) else "HMM"
        rows.append((f"{name}({sig})", f"{kind}, {proc.num_states} states, {proc.vocab_size} tokens",
                     describe(_factory(name))))
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
    import hmm_processes.registry as registry

    return registry._lookup(name)


# --- info ----------------------------------------------------------------------------------------------


def cmd_info(args: argparse.Namespace) -> int:
    """Print the information measures of one process (table, or one JSON object with --json)."""
    proc = resolve_process(args.process, parse_params(args.param))
    info = process_info(proc, seed=args.seed)
    if args.json:
        print(json.dumps(info.to_dict(), allow_nan=False))
    else:
        print(format_info(info))
    return 0


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
}


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
    return text if m.method == "exact" else f"{text}  [{m.method}{', standard error' if m.error_kind == 'stderr' else ''}]"


def format_info(info: ProcessInfo) -> str:
    """A plain-text table of `ProcessInfo`: each measure with its error and method."""
    params = ", ".join(f"{k}={v!r}" for k, v in info.params.items())
    lines = [f"{info.name}({params})  [{info.kind.upper()}]"]
    for key, (label, unit) in _LABELS.items():
        lines.append(f"  {label:<32} {_measure_text(getattr(info, key), unit)}")
    for i, m in enumerate(info.lyapunov_exponents):
        text = "-infinite (a token collapses this direction)" if m.method == "infinite" else _measure_text(
            m, "bits/token")
        lines.append(f"  {f'Lyapunov exponent {i + 1}':<32} {text}")
    lines.append("  (\"within e\": a convergence bound; \"+- e\": a standard error; exact values to rounding)")
    for note in info.notes:
        lines.append(f"  note: {note}")
    return "\n".join(lines)


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
        print(f"beliefs per length 0..{depth}: {res.n_states.tolist()}"
              + ("" if res.exact else " (beliefs merged on a coarse grid at some lengths)"))
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
    from compmech.mixed_states import _iter_word_counts

    total = 0.0
    for L, n in enumerate(_iter_word_counts(proc)):
        total += min(n, BELIEFS_PER_LEVEL)
        if total > MAX_BELIEF_POINTS:
            if L <= depth:
                raise ProcessError(
                    f"--depth {depth}: the beliefs of {proc.name} up to that length would be about {total:.3g} points "
                    f"or more (at most {MAX_BELIEF_POINTS} are drawn); use --depth {max(L - 1, 0)} or less")
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
    """2-simplex coordinates of 3-state beliefs: x = b1 + b2 / 2, y = sqrt(3) / 2 b2. Shape [N, 2]."""
    b = np.asarray(beliefs, dtype=np.float64)
    return np.stack([b[:, 1] + b[:, 2] / 2.0, np.sqrt(3.0) / 2.0 * b[:, 2]], axis=1)


def _layout(proc: Process, beliefs: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """2-D positions and RGB colours for beliefs, and the name of the projection."""
    S = beliefs.shape[1]
    if S == 3 and isinstance(proc, HMM):
        return simplex_coordinates(beliefs), np.clip(beliefs, 0, 1), "2-simplex"
    if S == 1:
        return np.zeros((beliefs.shape[0], 2)), np.full((beliefs.shape[0], 3), 0.3), "single state"
    if S == 2 and isinstance(proc, HMM):
        xy = np.stack([beliefs[:, 1], np.zeros(beliefs.shape[0])], axis=1)
        col = np.stack([beliefs[:, 0], np.zeros(beliefs.shape[0]), beliefs[:, 1]], axis=1)
        return xy, np.clip(col, 0, 1), "P(state 1)"
    X = beliefs - beliefs.mean(axis=0)
    _, _, Vt = np.linalg.svd(X, full_matrices=False)
    k = min(3, Vt.shape[0])
    Z = X @ Vt[:k].T
    if k < 3:
        Z = np.concatenate([Z, np.zeros((Z.shape[0], 3 - k))], axis=1)
    span = Z.max(axis=0) - Z.min(axis=0)
    col = (Z - Z.min(axis=0)) / np.where(span > 0, span, 1.0)
    return Z[:, :2], col, "PCA"


def plot_beliefs(proc: Process, beliefs: np.ndarray, *, title: str = ""):
    """Scatter of beliefs: 2-simplex with RGB = belief for 3 states, else PCA (colour = first 3 PCs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xy, col, proj = _layout(proc, beliefs)
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.scatter(xy[:, 0], xy[:, 1], c=col, s=2, linewidths=0)
    if proj == "2-simplex":
        ax.plot([0, 1, 0.5, 0], [0, 0, np.sqrt(3) / 2, 0], color="0.6", lw=0.8)
        ax.set_aspect("equal")
        ax.axis("off")
    else:
        ax.set_xlabel(f"{proj} 1" if proj == "PCA" else proj)
        ax.set_ylabel("PCA 2" if proj == "PCA" else "")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def plot_msp_graph(msp: MSP):
    """The finite MSP as a graph, arrows coloured by token.

    With 3 states the nodes sit at their beliefs in the 2-simplex. Otherwise the layout is layered:
    one row per breadth-first depth from the prior (top), the recurrent states (the epsilon-machine)
    in the bottom row, and nodes ordered within a row by the first principal component of their beliefs.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    proc = msp.process
    xy, col, proj = _layout(proc, msp.beliefs)
    rec = msp.recurrent
    if proj != "2-simplex":
        xy, proj = _layered_layout(xy[:, 0], msp.depth, rec), "rows by depth from the prior; recurrent states last"
    tok = proc.token_names or tuple(str(x) for x in range(proc.vocab_size))
    palette = plt.get_cmap("tab10")
    width = 6.5 if proj == "2-simplex" else max(6.5, 0.55 * max(np.bincount(msp.depth[~rec]).max(), rec.sum()))
    fig, ax = plt.subplots(figsize=(width, 6))
    rad = 0.12  # arc curvature; the label sits on the arc, so opposite edges get separate labels
    loops = np.zeros(msp.num_states, int)
    for i, x, j, p in msp.transitions():
        color = palette(x % 10)
        if i == j:  # a self-loop: written beside the node
            ax.annotate(f"\u21ba {tok[x]}|{p:.2g}", xy[i], xytext=(0, 8 + 8 * loops[i]),
                        textcoords="offset points", ha="center", fontsize=6, color=color)
            loops[i] += 1
            continue
        ax.annotate("", xy=xy[j], xytext=xy[i],
                    arrowprops=dict(arrowstyle="->", color=color, lw=0.7, alpha=0.75, shrinkA=6,
                                    shrinkB=6, connectionstyle=f"arc3,rad={rad}"))
        if msp.num_states <= 20:
            (dx, dy) = xy[j] - xy[i]
            on_arc = 0.5 * (xy[i] + xy[j]) + 0.5 * rad * np.array([dy, -dx])
            ax.text(on_arc[0], on_arc[1], f"{p:.2g}", fontsize=6, color=color, ha="center", va="center")
    ax.scatter(xy[:, 0], xy[:, 1], c=col, s=np.where(rec, 90, 35), edgecolors=np.where(rec, "k", "0.6"),
               linewidths=0.8, zorder=3)
    ax.legend(handles=[Line2D([], [], color=palette(x % 10), label=f"token {tok[x]}") for x in range(len(tok))],
              loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=min(len(tok), 6), fontsize=7, frameon=False)
    ax.set_title(f"{proc.name}: MSP, {msp.num_states} states ({int(rec.sum())} recurrent, outlined)\n"
                 f"layout: {proj}", fontsize=8)
    ax.set_aspect("equal" if proj == "2-simplex" else "auto")
    ax.axis("off")
    fig.tight_layout()
    return fig


def _layered_layout(order_key: np.ndarray, depth: np.ndarray, recurrent: np.ndarray) -> np.ndarray:
    """Node positions [n, 2]: transient states in rows by depth, recurrent states in one row below."""
    row = np.where(recurrent, (depth[~recurrent].max() + 1) if (~recurrent).any() else 0, depth)
    xy = np.zeros((row.shape[0], 2))
    for r in np.unique(row):
        members = np.flatnonzero(row == r)
        members = members[np.argsort(order_key[members], kind="stable")]
        xy[members, 0] = np.arange(members.size) - (members.size - 1) / 2
        xy[members, 1] = -r
    return xy


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
    from figures.io import save_figure

    try:
        target, _ = _check_plot_path(path)
    except ProcessError:
        _close_figure(fig)
        raise
    save_figure(fig, target, dpi=150)


def _close_figure(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)
