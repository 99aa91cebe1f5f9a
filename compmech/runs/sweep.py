"""`compmech sweep SWEEP.toml`: one experiment config and a grid of values for any of its keys, one run per point.

A sweep file is an ordinary experiment config (every section `compmech run` reads) plus a ``[sweep]`` table:

- ``grid``: dotted config keys -> lists of values, e.g. ``{ "process.coupling" = [0.0, 0.2, 1.0], "seed" =
  [0, 1] }``; the points are every combination (the first key varies slowest);
- ``quick`` (optional): dotted keys -> values applied to every point under ``--quick`` (a smaller budget);
- ``metrics`` (optional): the summary.json numbers tabulated and plotted, as dotted paths (default
  `DEFAULT_METRICS`; a study's headline is under ``studies.<name>``, e.g. ``studies.factored.components.0.95``).

Each point is checked like any config and runs into ``<out>/<point>/`` (a finished run of the same config is
reused, an interrupted one resumes). Points that differ only in seed train together, S models in one vmapped
jitted step on the devices of ``[training] devices`` (`predictive_models.train_seeds`), each into its own run
directory, as they would alone up to float32 rounding; their probes, figures and reports then run point by
point. Then ``<out>`` gets ``sweep.json``, ``sweep.md``, ``sweep.csv``, the figure
``sweep.png`` (each metric against the first grid key, mean and spread over the other keys) and ``sweep.html``
(the table, the figure and a link to every run's report).
"""

from __future__ import annotations

import argparse
import base64
import copy
import csv
import html
import io
import itertools
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compmech.runs.config import ConfigError, ExperimentConfig, config_from_dict, read_toml, set_dotted
from compmech.runs.distributed import is_lead_process
from compmech.runs.experiment import finished_summary, run_experiment, seedless, train_together
from compmech.runs.files import write_json_atomic, write_text_atomic
from compmech.runs.summary import RunSummary
from figures import save_figure
from figures.report import _CSS
from figures.sweep import plot_sweep

#: What a sweep tabulates when its file names no metrics.
DEFAULT_METRICS = ("relative_loss", "probe.mse_heldout_contexts", "probe.r2_heldout_contexts", "probe.mse_shuffled",
                   "probe_untrained.mse_heldout_contexts")


@dataclass(frozen=True)
class SweepPoint:
    """One point of the grid: its values, its run's name and its validated config."""

    values: tuple[tuple[str, Any], ...]  # (dotted key, value) per grid key, in grid order
    name: str
    cfg: ExperimentConfig


@dataclass(frozen=True)
class Sweep:
    name: str
    keys: tuple[str, ...]
    points: tuple[SweepPoint, ...]
    metrics: tuple[str, ...]
    source: str


def _label(value: Any) -> str:
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)


def load_sweep(path: str | Path, *, quick: bool = False) -> Sweep:
    """Read and check a sweep file (see the module docstring); every point's config is validated now."""
    path = Path(path)
    raw = read_toml(path, "sweep")
    table = raw.pop("sweep", None)
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: a sweep file needs a [sweep] table with grid = {{ \"<section.key>\" = [values] }} "
                          "(to run one config, use compmech run)")
    unknown = sorted(set(table) - {"grid", "quick", "metrics"})
    if unknown:
        raise ConfigError(f"{path}: unknown key [sweep] {unknown[0]!r}; allowed: grid, quick, metrics")
    grid = table.get("grid")
    if not isinstance(grid, dict) or not grid or not all(isinstance(v, list) and v for v in grid.values()):
        raise ConfigError(f"{path}: [sweep] grid must map config keys to non-empty lists, e.g. "
                          "grid = { \"process.coupling\" = [0.0, 0.5] }")
    if "name" in grid:
        raise ConfigError(f"{path}: [sweep] grid cannot sweep name (each point's name is made from its values)")
    quick_values = table.get("quick", {})
    if not isinstance(quick_values, dict):
        raise ConfigError(f"{path}: [sweep] quick must be a table of config keys, e.g. quick = {{ \"training.steps\" = 500 }}")
    metrics = table.get("metrics", list(DEFAULT_METRICS))
    if not isinstance(metrics, list) or not metrics or not all(isinstance(m, str) and m for m in metrics):
        raise ConfigError(f"{path}: [sweep] metrics must be a list of summary.json paths, e.g. [\"relative_loss\"]")
    base_name = raw.get("name", path.stem)
    keys = tuple(grid)
    points = []
    for combo in itertools.product(*(grid[k] for k in keys)):
        point = copy.deepcopy(raw)
        for key, value in zip(keys, combo):
            set_dotted(point, key, value)
        if quick:
            for key, value in quick_values.items():
                set_dotted(point, key, value)
        name = base_name + "-" + ",".join(f"{k.split('.')[-1]}={_label(v)}" for k, v in zip(keys, combo))
        point["name"] = name
        try:
            cfg = config_from_dict(point, source=str(path))
        except ConfigError as exc:
            where = ", ".join(f"{k} = {v!r}" for k, v in zip(keys, combo))
            raise ConfigError(f"{exc} (sweep point {where})") from None
        points.append(SweepPoint(values=tuple(zip(keys, combo)), name=name, cfg=cfg))
    return Sweep(name=base_name, keys=keys, points=tuple(points), metrics=tuple(metrics), source=str(path))


def metric(summary: dict, dotted: str) -> Any:
    """The value at a dotted path of summary.json (keys may contain dots, e.g. ``components.0.95``), or None."""
    node: Any = summary
    parts = dotted.split(".")
    i = 0
    while i < len(parts):
        if not isinstance(node, dict):
            return None
        for j in range(len(parts), i, -1):  # the longest key that matches
            key = ".".join(parts[i:j])
            if key in node:
                node, i = node[key], j
                break
        else:
            return None
    return node


def run_sweep(sweep: Sweep, out_root: str | Path, *, progress: bool = True, quick: bool = False) -> list[dict]:
    """Run every point (reusing finished runs) and write the table, figure and page; return the rows.

    Unfinished points that differ only in seed are trained together first (`compmech.runs.experiment.
    train_together`: one vmapped, jitted step for the whole group, one progress bar); then each point's
    pipeline (probe, figures, summary, report) runs on its own, its training found finished.
    """
    progress = progress and is_lead_process()  # under jax.distributed, process 0 shows progress
    out_root = Path(out_root)
    summaries: dict[str, RunSummary] = {}
    for point in sweep.points:
        summary = finished_summary(point.cfg, out_root / point.name)
        if summary is not None:
            summaries[point.name] = summary
    groups: dict[str, list[SweepPoint]] = {}
    for point in sweep.points:
        if point.name not in summaries:
            groups.setdefault(seedless(point.cfg), []).append(point)
    for group in groups.values():
        if len(group) > 1:
            if progress:
                print(f"== sweep {sweep.name}: training {len(group)} points that differ only in seed together: "
                      f"{', '.join(p.name for p in group)}", file=sys.stderr, flush=True)
            train_together([p.cfg for p in group], [out_root / p.name for p in group], progress=progress)
    rows = []
    for i, point in enumerate(sweep.points):
        run_dir = out_root / point.name
        where = ", ".join(f"{k} = {v!r}" for k, v in point.values)
        if progress:
            print(f"== sweep {sweep.name}: point {i + 1}/{len(sweep.points)} ({where}) -> {run_dir}", file=sys.stderr,
                  flush=True)
        summary = summaries.get(point.name)
        if summary is not None and progress:
            print("   finished already: its results are reused", file=sys.stderr, flush=True)
        if summary is None:
            summary = run_experiment(point.cfg, run_dir, progress=progress,
                                     command=f"compmech sweep {sweep.source}{' --quick' if quick else ''}")
        record = summary.to_json()
        rows.append({"point": point.name, **{k: v for k, v in point.values},
                     **{m: metric(record, m) for m in sweep.metrics}, "wall_seconds": summary.wall_seconds,
                     "train_elapsed_seconds": summary.train_elapsed_seconds, "run_dir": point.name})
    if is_lead_process():  # under jax.distributed the other processes only train
        write_table(sweep, rows, out_root, quick=quick)
    return rows


def _cell(value: Any) -> str:
    """Four significant digits; six near 1 (a relative loss of 1.0008 is not "1.001", nor 1.00004 "1")."""
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.6g}" if 0.99 < abs(value) < 1.01 else f"{value:.4g}"
    if value is None:
        return "–"
    return str(value)


def markdown_table(sweep: Sweep, rows: list[dict]) -> str:
    """The rows as a Markdown table: grid keys, then metrics."""
    cols = [*sweep.keys, *sweep.metrics]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(r.get(c)) for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_table(sweep: Sweep, rows: list[dict], out_root: Path, *, quick: bool = False) -> None:
    """sweep.json, sweep.md, sweep.csv, sweep.png and sweep.html in ``out_root``."""
    budget = "quick budget" if quick else "full budget"
    write_json_atomic(out_root / "sweep.json", {"name": sweep.name, "source": sweep.source, "quick": quick,
                                                "keys": list(sweep.keys), "metrics": list(sweep.metrics),
                                                "rows": rows})
    write_text_atomic(out_root / "sweep.md", f"# Sweep {sweep.name} ({budget})\n\nFrom `{sweep.source}`; each row "
                      f"is the run directory `<point>` beside this file.\n\n" + markdown_table(sweep, rows))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["point", *sweep.keys, *sweep.metrics, "wall_seconds",
                                             "train_elapsed_seconds", "run_dir"])
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(out_root / "sweep.csv", buf.getvalue())
    x_key = sweep.keys[0]
    series = {m: [r.get(m) for r in rows] for m in sweep.metrics}
    fig = plot_sweep([r[x_key] for r in rows], series, x_label=x_key, title=f"sweep {sweep.name} ({budget})")
    png = save_figure(fig, out_root / "sweep.png")
    write_text_atomic(out_root / "sweep.html", sweep_page(sweep, rows, png.read_bytes(), budget))


def sweep_page(sweep: Sweep, rows: list[dict], png: bytes, budget: str) -> str:
    """A small self-contained page: the figure, and the table with a link to each run's report."""
    cols = [*sweep.keys, *sweep.metrics]
    def breakable(name: str) -> str:  # a dotted metric path may wrap after its dots and underscores
        return html.escape(name).replace(".", ".<wbr>").replace("_", "_<wbr>")

    head = "<th>run</th>" + "".join(f"<th class=num>{breakable(c)}</th>" for c in cols)
    body = "".join("<tr><td><a href=\"" + html.escape(f"{r['run_dir']}/report.html") + "\">"
                   + html.escape(r["point"]) + "</a></td>"
                   + "".join(f"<td class=num>{html.escape(_cell(r.get(c)))}</td>" for c in cols) + "</tr>"
                   for r in rows)
    img = base64.b64encode(png).decode()
    return (f"<!DOCTYPE html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n"
            f"<meta name=viewport content=\"width=device-width, initial-scale=1\">\n"
            f"<title>sweep {html.escape(sweep.name)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
            f"<h1>Sweep {html.escape(sweep.name)}</h1>\n<p class=note>{html.escape(budget)}; from "
            f"<code>{html.escape(sweep.source)}</code>; {len(rows)} runs.</p>\n"
            f"<figure><img src=\"data:image/png;base64,{img}\" alt=\"each metric against {html.escape(sweep.keys[0])}\" "
            f"style=\"max-width:100%\"></figure>\n<div class=scroll><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table></div>\n</main>\n</body>\n</html>\n")


def add_sweep_command(subparsers: Any) -> None:
    """Add ``sweep SWEEP.toml [--quick] [--out DIR] [--no-progress]``."""
    p = subparsers.add_parser("sweep", help="run one config over a grid of values (one run per point) and tabulate",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep", type=Path, help="a sweep file: an experiment config plus a [sweep] table")
    p.add_argument("--quick", action="store_true", help="apply the file's [sweep] quick overrides (a smaller budget)")
    p.add_argument("--out", type=Path, default=None, help="where the runs and the table go (default: runs/<name>)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars or stage messages")
    p.set_defaults(func=_cmd_sweep)


def _cmd_sweep(args: argparse.Namespace) -> int:
    sweep = load_sweep(args.sweep, quick=args.quick)
    out = args.out or Path("runs") / (sweep.name + ("-quick" if args.quick else ""))
    rows = run_sweep(sweep, out, progress=not args.no_progress, quick=args.quick)
    if not is_lead_process():  # a helper process of a jax.distributed run: process 0 reports
        return 0
    print(markdown_table(sweep, rows))
    print(f"written to {out / 'sweep.html'}")
    return 0
