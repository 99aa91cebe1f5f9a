"""`compmech report RUN`: the run directory's results on one self-contained HTML page.

`build_report` reads a finished run directory (config.toml, metrics.jsonl, probe.json,
summary.json, figures/, and process.json when the runner wrote one) and writes ``report.html``
beside them; the page itself is drawn by
`figures.report.render_report` from plain records. `add_report_command` adds the subcommand
to the CLI.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import os
import subprocess
import tomllib
from pathlib import Path
from typing import Any

from compmech.runs.errors import RunDirError
from compmech.runs.files import directory_lock
from compmech.runs.summary import RunSummary
from figures import layer_label, sci
from figures.report import (
    SAME_GEOMETRY_NOTE,
    Provenance,
    fmt_number,
    model_kind_label,
    paper_number,
    process_label,
    render_report,
    same_distance_geometry,
    write_report,
)
from figures.simplex import DENSITY_ABOVE

REPORT_NAME = "report.html"
EMBEDDABLE = (".png", ".svg")  # formats a browser shows in <img>; PDFs are left out

# Captions of the figures `compmech run` draws, by file stem; others get their stem as caption.
CAPTIONS = {
    "belief_fractal": "Belief-state geometry. Left: the exact beliefs of every distinct context, in the "
    "belief set's own frame: the probability simplex for an HMM's beliefs (corners: the hidden "
    "states; colour = belief), otherwise the axes named on the panel (the principal axes of "
    "the belief set, or the Bloch disk of a qubit's states). Right: the linear "
    "probe's prediction from the residual stream of the layer named above it, coloured by the true "
    "belief; the × and the dark dots: the same probe fit to shuffled beliefs (the control, which "
    f"collapses to about the mean belief). Above {DENSITY_ABOVE:,} contexts each panel is a 2-D histogram: a "
    "bin's colour is the mean colour of its contexts, its opacity grows with their number (log "
    "scale), so the dense parts of the probed geometry stay visible.",
    "loss_by_position": "Validation cross-entropy by context position after training (dots) beside the optimum "
    "(open squares: the entropy of the next token given the context), and the excess loss, "
    "model − optimum.",
    "training_curve": "Relative loss − 1 (CE / optimal CE − 1, log scale; 0 would be optimal) over training, "
    "from the evaluation before the first step: exact validation loss, and the training "
    "batches' loss as a light line.",
    "probe_layers": "Belief probe MSE by layer: in-sample, held-out on contexts the fit never saw, and held out "
    "by the paper's string split; the paper's values in black where it gives them; the dashed "
    "line: the shuffled-target control (about the variance of the beliefs, the error of a probe "
    "that has learnt nothing).",
    "distance_geometry": "Pairwise distances between probed beliefs (distinct contexts) against distances "
    "between the true beliefs (left) and between the optimal next-token distributions "
    "(right). The residual stream keeps the belief geometry, not just the next-token one.",
    "mixed_state_pca": "The mixed states (distinct beliefs) projected on their first two principal components, "
    "and the probe's predictions projected the same way, one colour per state.",
    "belief_evolution": "The probed belief geometry at checkpoints over training (coloured by the true belief), "
    "and the true beliefs (last panel).",
    "probe_over_training": "Probe MSE and relative loss at each checkpoint (paper values where given).",
}
#: Captions of the interactive pages `compmech run` writes with plotly installed (figures/interactive_*.html).
INTERACTIVE_CAPTIONS = {
    "interactive_belief_simplex": "The belief simplex: true beliefs and the probe's predictions; hover a point "
    "for its context string, the context's probability and its belief.",
}


#: A run directory's file is missing, unreadable, or not what `compmech run` writes (one error type with load_run).
RunDirectoryError = RunDirError


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``run_dir/report.html`` (or ``out``) from a finished run directory; return its path.

    Only files inside ``run_dir`` are embedded. Raises `RunDirectoryError` (a `ConfigError`)
    naming the file if ``run_dir`` is not a finished run or one of its files is damaged.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirectoryError(
            f"run directory {run_dir} does not exist; pass the folder `compmech run` wrote "
            "(runs/<name>, or its --out DIR)"
        )
    if not (run_dir / "summary.json").is_file():
        points = sorted(p.name for p in run_dir.iterdir() if (p / "config.toml").is_file())
        if not (run_dir / "config.toml").is_file() and ((run_dir / "sweep.json").is_file() or points):
            example = f", e.g. compmech report {run_dir / points[0]}" if points else ""
            raise RunDirectoryError(
                f"{run_dir} is a sweep directory (one run directory per point): its page is "
                f"{run_dir / 'sweep.html'}, which compmech sweep FILE --collect --out {run_dir} "
                f"rewrites; compmech report takes one point's run directory{example}"
            )
        what = "an unfinished run" if (run_dir / "config.toml").is_file() else "not a compmech run directory"
        raise RunDirectoryError(
            f"{run_dir} has no summary.json ({what}); finish the run first: "
            f"compmech run CONFIG --out {run_dir} (the same command resumes it)"
        )
    summary = read_run_json(run_dir / "summary.json", SUMMARY_KEYS)
    try:  # the schema in one place (`RunSummary`); the page itself reads the file's fields defensively
        RunSummary.from_json(summary)
    except (TypeError, ValueError) as exc:
        raise RunDirectoryError(
            f"{run_dir / 'summary.json'} is damaged: it {exc}; re-run the experiment to rewrite it"
        ) from None
    probe = read_run_json(run_dir / "probe.json", PROBE_KEYS)
    _check_probe(run_dir / "probe.json", probe)
    metrics = read_run_jsonl(run_dir / "metrics.jsonl")
    config_toml = _read_text(run_dir / "config.toml")
    process = None
    if (run_dir / "process.json").is_file():
        process = read_run_json(run_dir / "process.json", PROCESS_KEYS)
        _check_process(run_dir / "process.json", process)

    target = Path(out) if out is not None else run_dir / REPORT_NAME
    html = render_report(
        title=report_title(summary, config_toml, run_dir),
        config_toml=config_toml,
        summary=summary,
        metrics=metrics,
        probe=probe,
        figures=_figures(run_dir, summary),
        extra_tables=_extra_tables(summary),
        process=process,
        provenance=provenance(),
        interactive=_interactive(run_dir, target),
    )
    return write_report(target, html)


#: The keys each file must have, and the JSON type of each (as a Python type or tuple of types).
SUMMARY_KEYS = {"process": dict, "steps": int, "tokens": (int, float)}
PROBE_KEYS = {"layers": dict}
METRIC_KEYS = {"step": int, "tokens": (int, float)}
PROCESS_KEYS = {"name": str, "T": list}


def report_title(summary: dict, config_toml: str, run_dir: Path) -> str:
    """What was run, in one line: 'mess3 (x = 0.05, alpha = 0.85): 4-layer transformer, 400 steps, 2.6e5 tokens'."""
    try:
        config = tomllib.loads(config_toml)
    except tomllib.TOMLDecodeError:
        config = {}
    model = config.get("model") or {}
    what = process_label(summary.get("process") or {})
    analysis = config.get("analysis")
    if isinstance(analysis, dict):  # an analysis directory (`compmech.runs.analyze`): a model trained elsewhere
        return (
            f"{what}: activations of {analysis.get('model', 'a model trained elsewhere')} "
            f"(analysis {summary.get('name') or run_dir.name})"
        )
    parts = []
    if model.get("n_layers") is not None:
        parts.append(f"{model['n_layers']}-layer {model_kind_label(model.get('kind', 'transformer'))}")
    parts.append(f"{summary.get('steps', '?')} steps")
    if isinstance(summary.get("tokens"), (int, float)):
        parts.append(f"{sci(summary['tokens'])} tokens")
    name = summary.get("name") or run_dir.name
    return f"{what}: {', '.join(parts)} (run {name})"


def provenance() -> Provenance:
    """compmech's version, the git commit of the checkout it runs from (None outside one), and the date now (UTC)."""
    try:
        version = importlib.metadata.version("compmech")
    except importlib.metadata.PackageNotFoundError:
        version = None
    commit = None
    root = Path(__file__).resolve().parents[2]
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
        if done.returncode == 0 and done.stdout.strip():
            commit = done.stdout.strip()
            dirty = subprocess.run(
                ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            )
            if dirty.returncode == 0 and dirty.stdout.strip():
                commit += " (with uncommitted changes)"
    except (OSError, subprocess.SubprocessError):
        commit = None
    date = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return Provenance(version=version, commit=commit, date=date)


def _inside(run_dir: Path, path: Path) -> bool:
    """True if ``path`` (links followed) lies inside ``run_dir``."""
    try:
        return path.resolve().is_relative_to(run_dir.resolve())
    except OSError:
        return False


def _figures(run_dir: Path, summary: dict) -> list[tuple[str, bytes, str]]:
    """The run's figures: those the summary lists, in its order, then any others in figures/.

    Only files inside ``run_dir`` are shown: a listed path that leads outside it (``..``, an
    absolute path, a symbolic link) is skipped. A figure saved in several formats is shown once
    (PNG preferred: a fractal's SVG can be huge).
    """
    listed = summary.get("figures", [])
    if not isinstance(listed, list) or not all(isinstance(p, str) for p in listed):
        raise RunDirectoryError(
            f'{run_dir / "summary.json"}: "figures" must be a list of paths (strings) '
            "inside the run directory; re-run the experiment to rewrite it"
        )
    found = sorted((run_dir / "figures").glob("*")) if (run_dir / "figures").is_dir() else []
    by_stem: dict[str, Path] = {}
    for path in [*(run_dir / p for p in listed), *found]:
        suffix = path.suffix.lower()
        if suffix not in EMBEDDABLE or not path.is_file() or not _inside(run_dir, path):
            continue
        current = by_stem.get(path.stem)
        if current is None or (current.suffix.lower() != ".png" and suffix == ".png"):
            by_stem[path.stem] = path
    captions = dict(CAPTIONS)
    for study in (summary.get("studies") or {}).values():  # each study captions its own figures
        if isinstance(study, dict) and isinstance(study.get("captions"), dict):
            captions.update({str(k): str(v) for k, v in study["captions"].items()})
    return [
        (captions.get(stem, stem.replace("_", " ")), path.read_bytes(), path.suffix.lower())
        for stem, path in by_stem.items()
    ]


def _interactive(run_dir: Path, report: Path) -> list[tuple[str, str]]:
    """(caption, link relative to the report) of each interactive page in figures/ (``interactive_*.html``, written
    when plotly is installed), so the report links them wherever it is written (``--out``)."""
    folder = run_dir / "figures"
    pages = sorted(folder.glob("interactive_*.html")) if folder.is_dir() else []
    return [
        (
            INTERACTIVE_CAPTIONS.get(page.stem, page.stem.replace("_", " ")),
            Path(os.path.relpath(page.resolve(), report.resolve().parent)).as_posix(),
        )
        for page in pages
        if page.is_file() and _inside(run_dir, page)
    ]


def _extra_tables(summary: dict) -> list[tuple]:
    """The distance geometry and the probe over training, beside the paper's numbers where it has them."""
    paper = summary.get("paper") if isinstance(summary.get("paper"), dict) else {}
    tables = [
        tuple(t)
        for study in (summary.get("studies") or {}).values()
        if isinstance(study, dict)
        for t in study.get("tables", [])
        if isinstance(t, list) and len(t) == 4
    ]
    geo = summary.get("geometry")
    if isinstance(geo, dict) and geo:
        same = same_distance_geometry(geo)
        rows = [
            [
                "distances between true beliefs",
                fmt_number(geo.get("distance_r2_beliefs"), 3),
                paper_number(paper.get("distance_r2_beliefs")),
            ],
            [
                "distances between next-token distributions" + (" †" if same else ""),
                fmt_number(geo.get("distance_r2_next_token"), 3),
                paper_number(paper.get("distance_r2_next_token")),
            ],
        ]
        headers = ["against", "R\u00b2 (ours)"] + (["R\u00b2 (paper)"] if "distance_r2_beliefs" in paper else [])
        rows = [r[: len(headers)] for r in rows]
        tables.append(
            (
                f"Distance geometry of the probed beliefs ({layer_label(geo.get('layer', '?'))})",
                headers,
                rows,
                f"R\u00b2 of pairwise distances between probed beliefs against the distances named, over "
                f"{_count(geo.get('n_contexts'))} distinct contexts ({_count(geo.get('n_belief_states'))} "
                f"distinct beliefs, {_count(geo.get('n_pairs'))} pairs)."
                + (" † " + SAME_GEOMETRY_NOTE if same else ""),
            )
        )
    over = {int(float(t)): v for t, v in (paper.get("probe_mse_over_training") or {}).items()}
    evolution = summary.get("evolution") or []
    same_layer = summary.get("analysis_layer") == summary.get("probe_layer")
    if len(evolution) > 1 or over:
        contexts = any("mse_heldout_contexts" in e for e in evolution)
        rows = []
        for e in evolution:
            asked = e.get("tokens_requested", e.get("tokens"))
            row = [e.get("tokens"), e.get("relative_loss")]
            if contexts:
                row.append(e.get("mse_heldout_contexts"))
            row += [e.get("mse"), e.get("mse_heldout"), e.get("mse_shuffled")]
            if over:
                row.append(paper_number(over.get(int(asked)) if same_layer and asked is not None else None))
            rows.append(row)
        headers = (
            ["tokens", "relative loss"]
            + (["held-out MSE, unseen contexts"] if contexts else [])
            + ["probe MSE (in-sample)", "held-out MSE (string split)", "shuffled MSE"]
            + (["paper MSE"] if over else [])
        )
        layer = summary.get("analysis_layer", summary.get("probe_layer", "?"))
        tables.append((f"Probe ({layer_label(layer)}) over training: refitted at checkpoints", headers, rows))
    return tables


def _count(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else "?"


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise RunDirectoryError(
            f"{path} is missing: the run directory is incomplete; re-run compmech run CONFIG --out {path.parent}"
        ) from None
    except UnicodeDecodeError as err:
        raise RunDirectoryError(
            f"{path} is not UTF-8 text (byte {err.start}: {err.reason}); the file is damaged, "
            "re-run the experiment to rewrite it"
        ) from None
    except OSError as err:
        raise RunDirectoryError(f"{path} cannot be read ({err.strerror or err})") from None


def _json_type(value: Any) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "true/false",
        type(None): "null",
        int: "a number",
        float: "a number",
    }.get(type(value), type(value).__name__)


def _check_keys(path: Path, record: Any, keys: dict, where: str = "") -> None:
    """``record`` must be a JSON object with every key in ``keys`` of the type given."""
    if not isinstance(record, dict):
        raise RunDirectoryError(
            f"{path}{where} must hold a JSON object, got {_json_type(record)}; re-run the experiment to rewrite it"
        )
    for key, kind in keys.items():
        if key not in record:
            raise RunDirectoryError(f'{path}{where} has no "{key}" key; re-run the experiment to rewrite it')
        value = record[key]
        if isinstance(value, bool) or not isinstance(value, kind):
            want = _json_type(kind[0]() if isinstance(kind, tuple) else kind())
            raise RunDirectoryError(
                f'{path}{where}: "{key}" must be {want}, got {_json_type(value)}; re-run the experiment to rewrite it'
            )


def read_run_json(path: Path, keys: dict | None = None) -> dict:
    """A run directory's JSON object file, with ``keys`` (name -> type) checked; `RunDirError` naming it otherwise."""
    try:
        record = json.loads(_read_text(path))
    except json.JSONDecodeError as err:
        raise RunDirectoryError(f"{path} is not valid JSON ({err}); re-run the experiment to rewrite it") from None
    _check_keys(path, record, keys or {})
    return record


def _check_probe(path: Path, probe: dict) -> None:
    for name, res in probe["layers"].items():
        if not isinstance(res, dict):
            raise RunDirectoryError(
                f'{path}: layers["{name}"] must be an object of probe metrics, got '
                f"{_json_type(res)}; re-run the experiment to rewrite it"
            )
        for key, value in res.items():
            if (
                key.startswith(("mse", "r2"))
                and value is not None
                and (isinstance(value, bool) or not isinstance(value, (int, float)))
            ):
                raise RunDirectoryError(
                    f'{path}: layers["{name}"]["{key}"] must be a number or null, got '
                    f"{_json_type(value)}; re-run the experiment to rewrite it"
                )


def _check_process(path: Path, process: dict) -> None:
    """T must be a [V][S][S] nested list of numbers; names, when given, lists of the right length."""
    T = process["T"]
    ok = bool(T) and all(isinstance(m, list) for m in T)
    S = len(T[0]) if ok else 0
    ok = (
        ok
        and S > 0
        and all(
            len(m) == S
            and all(
                isinstance(r, list)
                and len(r) == S
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in r)
                for r in m
            )
            for m in T
        )
    )
    if not ok:
        raise RunDirectoryError(
            f'{path}: "T" must be a V x S x S nested list of numbers (T[x][i][j] = '
            "P(emit x, go to j | in i)); re-run the experiment to rewrite it"
        )
    for key, n in (("state_names", S), ("token_names", len(T))):
        names = process.get(key)
        if names is not None and (not isinstance(names, list) or len(names) != n):
            raise RunDirectoryError(
                f'{path}: "{key}" must be null or a list of {n} names; re-run the experiment to rewrite it'
            )


def read_run_jsonl(path: Path) -> list[dict]:
    """A run's metrics.jsonl, each record checked for the metric keys; `RunDirError` naming the line otherwise."""
    records = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise RunDirectoryError(
                f"{path} line {number} is not valid JSON ({err}); re-run the experiment to rewrite it"
            ) from None
        _check_keys(path, record, METRIC_KEYS, f" line {number}")
        records.append(record)
    return records


# --- the CLI subcommand -----------------------------------------------------------------------------


def add_report_command(subparsers: Any) -> None:
    """Add ``report RUN [--out FILE]`` to ``subparsers`` (from ``add_subparsers``); ``func`` = `cmd_report`."""
    p = subparsers.add_parser(
        "report",
        help="write a run's results as one self-contained HTML page (RUN/report.html)",
        description="Write a finished run's results — what was run and how to reproduce it, the numbers "
        "beside the paper's, the probe by layer, the loss by position, every figure and the "
        "resolved config — as one self-contained HTML page (images embedded, no scripts).",
    )
    p.add_argument("run", metavar="RUN", type=Path, help="a run directory written by `compmech run`")
    p.add_argument(
        "--out", type=Path, default=None, metavar="FILE", help=f"where to write the page (default: RUN/{REPORT_NAME})"
    )
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    """Build the report and print where it is (holding the run directory's lock: not while a run writes there)."""
    run_dir = Path(args.run)
    own = run_dir.is_dir() and (run_dir / "config.toml").is_file()
    with directory_lock(run_dir) if own else contextlib.nullcontext():
        path = build_report(run_dir, args.out)
    print(path)
    return 0
