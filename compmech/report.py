"""`compmech report RUN`: the run directory's results on one self-contained HTML page.

`build_report` reads a finished run directory (config.toml, metrics.jsonl, probe.json,
summary.json, figures/) and writes ``report.html`` beside them; the page itself is drawn by
`figures.report.render_report` from plain records. `add_report_command` adds the subcommand
to the CLI.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from compmech.config import ConfigError
from figures.report import render_report, write_report

REPORT_NAME = "report.html"
EMBEDDABLE = (".png", ".svg")  # formats a browser shows in <img>; PDFs are left out

# Captions of the figures `compmech run` draws, by file stem; others get their stem as caption.
CAPTIONS = {
    "belief_fractal": "Belief-state geometry. Left: the exact beliefs of every distinct context, in the "
                      "probability simplex (colour = belief). Middle: the linear probe's prediction from the "
                      "residual stream of the probe layer. Right: the same probe fit to shuffled beliefs "
                      "(the control: no geometry).",
    "loss_by_position": "Validation cross-entropy by context position after training, beside the optimum "
                        "(the entropy of the next token given the context).",
    "training_curve": "Exact validation loss over training, relative to the optimum (1 = optimal).",
    "probe_layers": "Belief probe MSE by layer: fit, held-out and shuffled control (paper values where given).",
    "distance_geometry": "Pairwise distances between probed beliefs (distinct contexts) against distances "
                         "between the true beliefs (left) and between the optimal next-token distributions "
                         "(right). The residual stream keeps the belief geometry, not just the next-token one.",
    "mixed_state_pca": "The mixed states (distinct beliefs) projected on their first two principal components, "
                       "and the probe's predictions projected the same way, one colour per state.",
    "belief_evolution": "The probed belief geometry at checkpoints over training (coloured by the true belief), "
                        "and the true beliefs (last panel).",
    "probe_over_training": "Probe MSE and relative loss at each checkpoint (paper values where given).",
}


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``run_dir/report.html`` (or ``out``) from a finished run directory; return its path.

    Raises `ConfigError` naming the path if ``run_dir`` is not a finished run.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f"run directory {run_dir} does not exist; pass the folder `compmech run` wrote "
                          "(runs/<name>, or its --out DIR)")
    if not (run_dir / "summary.json").is_file():
        what = "an unfinished run" if (run_dir / "config.toml").is_file() else "not a compmech run directory"
        raise ConfigError(f"{run_dir} has no summary.json ({what}); finish the run first: "
                          f"compmech run CONFIG --out {run_dir} (the same command resumes it)")
    summary = _read_json(run_dir / "summary.json")
    probe = _read_json(run_dir / "probe.json")
    metrics = _read_jsonl(run_dir / "metrics.jsonl")
    config_toml = _read_text(run_dir / "config.toml")

    process = summary.get("process") or {}
    name = summary.get("name") or run_dir.name
    html = render_report(
        title=f"compmech run {name}: {process.get('name', '?')}",
        config_toml=config_toml, summary=summary, metrics=metrics, probe=probe,
        figures=_figures(run_dir, summary), extra_tables=_extra_tables(summary))
    return write_report(Path(out) if out is not None else run_dir / REPORT_NAME, html)


def _figures(run_dir: Path, summary: dict) -> list[tuple[str, bytes, str]]:
    """The run's figures: those the summary lists, in its order, then any others in figures/.

    A figure saved in several formats is shown once (PNG preferred: a fractal's SVG can be huge).
    """
    listed = [run_dir / p for p in summary.get("figures", [])]
    found = sorted((run_dir / "figures").glob("*")) if (run_dir / "figures").is_dir() else []
    by_stem: dict[str, Path] = {}
    for path in [*listed, *found]:
        suffix = path.suffix.lower()
        if suffix not in EMBEDDABLE or not path.is_file():
            continue
        current = by_stem.get(path.stem)
        if current is None or (current.suffix.lower() != ".png" and suffix == ".png"):
            by_stem[path.stem] = path
    return [(CAPTIONS.get(stem, stem.replace("_", " ")), path.read_bytes(), path.suffix.lower())
            for stem, path in by_stem.items()]


def _extra_tables(summary: dict) -> list[tuple[str, list[str], list[list]]]:
    """The distance geometry and the probe over training, beside the paper's numbers where it has them."""
    paper = summary.get("paper") or {}
    tables = []
    geo = summary.get("geometry")
    if geo:
        rows = [["distances between true beliefs", geo["distance_r2_beliefs"], paper.get("distance_r2_beliefs")],
                ["distances between next-token distributions", geo["distance_r2_next_token"],
                 paper.get("distance_r2_next_token")]]
        tables.append((f"Distance geometry of the probed beliefs ({geo['layer']}; {geo['n_contexts']} distinct "
                       f"contexts, {geo['n_belief_states']} distinct beliefs, {geo['n_pairs']} pairs): R\u00b2 of "
                       "pairwise distances between probed beliefs against ...", ["against", "R\u00b2 (ours)",
                                                                                 "R\u00b2 (paper)"], rows))
    over = {int(float(t)): v for t, v in (paper.get("probe_mse_over_training") or {}).items()}
    evolution = summary.get("evolution") or []
    same_layer = summary.get("analysis_layer") == summary.get("probe_layer")
    if len(evolution) > 1 or over:
        rows = []
        for e in evolution:
            asked = e.get("tokens_requested", e["tokens"])
            rows.append([e["tokens"], e["relative_loss"], e["mse"], e["mse_heldout"], e["mse_shuffled"],
                         over.get(int(asked)) if same_layer else None])
        layer = summary.get("analysis_layer", summary.get("probe_layer", "?"))
        tables.append((f"Probe ({layer}) over training: refitted at checkpoints",
                       ["tokens", "relative loss", "probe MSE", "held-out MSE", "shuffled MSE", "paper MSE"], rows))
    return tables


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path} is missing: the run directory is incomplete; "
                          f"re-run compmech run CONFIG --out {path.parent}") from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(_read_text(path))
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path} is not valid JSON ({err}); re-run the experiment to rewrite it") from None


def _read_jsonl(path: Path) -> list[dict]:
    records = []
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise ConfigError(f"{path} line {number} is not valid JSON ({err}); "
                              "re-run the experiment to rewrite it") from None
    return records


# --- the CLI subcommand -----------------------------------------------------------------------------


def add_report_command(subparsers: Any) -> None:
    """Add ``report RUN [--out FILE]`` to ``subparsers`` (from ``add_subparsers``); ``func`` = `cmd_report`."""
    p = subparsers.add_parser(
        "report", help="write a run's results as one self-contained HTML page (RUN/report.html)",
        description="Write a finished run's results — what was run and how to reproduce it, the numbers "
                    "beside the paper's, the probe by layer, the loss by position, every figure and the "
                    "resolved config — as one self-contained HTML page (images embedded, no scripts).")
    p.add_argument("run", metavar="RUN", type=Path, help="a run directory written by `compmech run`")
    p.add_argument("--out", type=Path, default=None, metavar="FILE",
                   help=f"where to write the page (default: RUN/{REPORT_NAME})")
    p.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    """Build the report and print where it is."""
    path = build_report(args.run, args.out)
    print(path)
    return 0
