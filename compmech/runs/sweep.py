"""`compmech sweep SWEEP.toml`: one experiment config and a grid of values for any of its keys, one run per point.

A sweep file is an ordinary experiment config (every section `compmech run` reads) plus a ``[sweep]`` table:

- ``grid``: dotted config keys -> lists of values, e.g. ``{ "process.coupling" = [0.0, 0.2, 1.0], "seed" =
  [0, 1] }``; the points are every combination (the first key varies slowest), at most `MAX_SWEEP_POINTS` of
  them, each value listed once;
- ``quick`` (optional): dotted keys -> values applied to every point under ``--quick`` (a smaller budget); a key
  the grid sweeps (or a table above or below it) cannot be in ``quick``: a quick override never replaces a grid
  value;
- ``metrics`` (optional): the summary.json numbers tabulated and plotted, as dotted paths (default
  `DEFAULT_METRICS`, at most `MAX_METRICS`; a study's headline is under ``studies.<name>``, e.g.
  ``studies.factored.components.0.95``);

and, to run its points as cluster jobs, an optional ``[launcher]`` table (`compmech.runs.launcher`).

Each point is checked like any config before any work and runs into ``<out>/<point>/`` (a finished run of the same
config is reused, an interrupted one resumes); the point's name is made from its values and is unique. Points that
differ only in seed (a *seed group*) train together, S models in one vmapped jitted step on the devices of
``[training] devices`` (`predictive_models.train_seeds`), each into its own run directory, as they would alone up
to float32 rounding; their probes, figures and reports then run point by point. A point that fails does not stop
the others: the sweep finishes them, marks the failure in the table and exits non-zero naming it. Then ``<out>``
gets ``sweep.json``, ``sweep.md``, ``sweep.csv``, the figure ``sweep.png`` (each metric against the first grid
key, mean and spread over the other keys) and ``sweep.html`` (the table, the figure and a link to every run's
report). One sweep writes into ``<out>`` at a time (an OS lock, `compmech.runs.files.directory_lock`).

``--shard I/N`` (0 <= I < N) runs the I-th of N shares of the seed groups (groups I, I + N, I + 2N, ...) in this
process, for a job array of your own (``--shard $SLURM_ARRAY_TASK_ID/N``): each share trains and reports its points
only, and does not take the sweep's lock. The share that finds every point finished when it ends writes the table
(unless a launcher or another sweep holds the directory; then that one writes it); ``--collect`` writes it at any
time from the finished points. ``--launcher slurm|local`` submits one job per seed group (`compmech.runs.launcher`).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import csv
import dataclasses
import hashlib
import html
import io
import itertools
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compmech.runs import shipped
from compmech.runs.config import ConfigError, ExperimentConfig, config_from_dict, read_toml, set_dotted, table_settings
from compmech.runs.distributed import is_lead_process
from compmech.runs.experiment import finished_summary, run_experiment, seedless, train_together
from compmech.runs.files import (
    DirectoryInUse,
    directory_lock,
    is_complete,
    is_locked,
    write_json_atomic,
    write_text_atomic,
)
from compmech.runs.launcher import (
    JobRecord,
    JobSpec,
    LauncherSettings,
    active_slurm_job,
    add_launcher_arguments,
    import_submitit,
    job_command,
    read_records,
    submit_jobs,
)
from compmech.runs.summary import RunSummary
from figures import save_figure
from figures.report import _CSS
from figures.sweep import plot_sweep
from hmm_processes import ProcessError

#: What a sweep tabulates when its file names no metrics.
DEFAULT_METRICS = (
    "relative_loss",
    "probe.mse_heldout_contexts",
    "probe.r2_heldout_contexts",
    "probe.mse_shuffled",
    "probe_untrained.mse_heldout_contexts",
)
#: The most points a sweep may have: its grid is counted before it is expanded, and a larger one is refused (split it
#: into several sweeps). Each point is a run directory and a row; checking 10,000 configs takes about a minute.
MAX_SWEEP_POINTS = 10_000
#: The most metrics a sweep may tabulate: each is a panel of sweep.png (3 per row).
MAX_METRICS = 24
#: The longest point name (a directory name): longer ones are cut and end in a hash of the whole name.
MAX_NAME_LENGTH = 150
#: Seconds between progress lines while the points are checked.
PROGRESS_EVERY_S = 2.0


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
    launcher: LauncherSettings = dataclasses.field(default_factory=LauncherSettings)


def _label(value: Any) -> str:
    """A grid value as it appears in a point's name: a float at full precision (its shortest exact decimal, so
    0.1 and 0.1000001 stay apart), anything else as text, with characters a file name should not hold as "_"."""
    if isinstance(value, float):
        text = repr(value)
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text)


def point_names(base: str, keys: tuple[str, ...], combos: list[tuple]) -> list[str]:
    """``<base>-<key>=<value>,...`` for each point (the last part of each key); unique: where two labels collide
    (values that differ only in characters a file name cannot hold, e.g. "a b" and "a_b"), each colliding name gets
    its point's number (``-p3``); a name past `MAX_NAME_LENGTH` is cut and ends in a hash of the whole."""
    names = [base + "-" + ",".join(f"{k.split('.')[-1]}={_label(v)}" for k, v in zip(keys, combo)) for combo in combos]
    seen: dict[str, int] = {}
    for n in names:
        seen[n] = seen.get(n, 0) + 1
    names = [n + f"-p{i + 1}" if seen[n] > 1 else n for i, n in enumerate(names)]
    return [
        n
        if len(n) <= MAX_NAME_LENGTH
        else n[: MAX_NAME_LENGTH - 13] + "-" + hashlib.sha256(n.encode()).hexdigest()[:12]
        for n in names
    ]


def _canonical(value: Any) -> Any:
    """A grid value in a form where equal values are equal (1 and 1.0 alike; lists and tables compared inside)."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, (int, float)):
        return ("number", float(value))
    if isinstance(value, list):
        return ("list", tuple(_canonical(v) for v in value))
    if isinstance(value, dict):
        return ("table", tuple(sorted((k, _canonical(v)) for k, v in value.items())))
    return (type(value).__name__, str(value))


def _overlaps(a: str, b: str) -> bool:
    """Whether dotted keys ``a`` and ``b`` set the same value (equal, or one a table holding the other)."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def _check_metrics(path: Path, metrics: Any) -> tuple[str, ...]:
    """[sweep] metrics: a list of distinct dotted summary.json paths whose first part is a summary.json field."""
    fields = [f.name for f in dataclasses.fields(RunSummary)]
    example = 'e.g. metrics = ["relative_loss", "probe.mse_heldout_contexts"]'
    if not isinstance(metrics, list) or not metrics or not all(isinstance(m, str) for m in metrics):
        raise ConfigError(f"{path}: [sweep] metrics must be a non-empty list of summary.json paths, {example}")
    if len(metrics) > MAX_METRICS:
        raise ConfigError(
            f"{path}: [sweep] metrics lists {len(metrics)} paths; at most {MAX_METRICS} (each is a "
            "panel of sweep.png): keep the ones you compare, and read the rest from each point's "
            "summary.json"
        )
    for m in metrics:
        parts = m.split(".")
        if not m or any(not p for p in parts) or m != m.strip():
            raise ConfigError(
                f"{path}: [sweep] metrics: {m!r} is not a dotted path (names joined by single dots), {example}"
            )
        if parts[0] not in fields:
            raise ConfigError(
                f"{path}: [sweep] metrics: {m!r} starts with {parts[0]!r}, which is not a summary.json "
                f"field; the fields are {', '.join(fields)}"
            )
    repeated = [m for i, m in enumerate(metrics) if m in metrics[:i]]
    if repeated:
        raise ConfigError(f"{path}: [sweep] metrics lists {repeated[0]!r} twice; list each once")
    return tuple(metrics)


def load_sweep(path: str | Path, *, quick: bool = False, progress: bool = False) -> Sweep:
    """Read and check a sweep file (see the module docstring); every point's config is validated now (``progress``:
    a line on stderr every few seconds while that takes long)."""
    path = Path(path)
    raw = read_toml(path, "sweep")
    table = raw.pop("sweep", None)
    launcher = table_settings(LauncherSettings, raw.pop("launcher", {}), "launcher", str(path))
    if not isinstance(table, dict):
        raise ConfigError(
            f'{path}: a sweep file needs a [sweep] table with grid = {{ "<section.key>" = [values] }} '
            "(to run one config, use compmech run)"
        )
    unknown = sorted(set(table) - {"grid", "quick", "metrics"})
    if unknown:
        raise ConfigError(f"{path}: unknown key [sweep] {unknown[0]!r}; allowed: grid, quick, metrics")
    grid = table.get("grid")
    if not isinstance(grid, dict) or not grid or not all(isinstance(v, list) and v for v in grid.values()):
        raise ConfigError(
            f"{path}: [sweep] grid must map config keys to non-empty lists, e.g. "
            'grid = { "process.coupling" = [0.0, 0.5] }'
        )
    if "name" in grid:
        raise ConfigError(f"{path}: [sweep] grid cannot sweep name (each point's name is made from its values)")
    keys = tuple(grid)
    for key in keys:
        seen: dict[Any, int] = {}
        for i, value in enumerate(grid[key]):
            canon = _canonical(value)
            if canon in seen:
                raise ConfigError(
                    f'{path}: [sweep] grid "{key}" lists {value!r} twice (entries {seen[canon] + 1} '
                    f"and {i + 1}); list each value once"
                )
            seen[canon] = i
    n_points = math.prod(len(grid[k]) for k in keys)
    if n_points > MAX_SWEEP_POINTS:
        sizes = " x ".join(f"{len(grid[k])} {k}" for k in keys)
        raise ConfigError(
            f"{path}: [sweep] grid has {n_points:,} points ({sizes}); a sweep may have at most "
            f"{MAX_SWEEP_POINTS:,}: split it into several sweep files, or sweep fewer values"
        )
    quick_values = table.get("quick", {})
    if not isinstance(quick_values, dict):
        raise ConfigError(
            f'{path}: [sweep] quick must be a table of config keys, e.g. quick = {{ "training.steps" = 500 }}'
        )
    for q in quick_values:
        clash = next((k for k in keys if _overlaps(q, k)), None)
        if clash is not None:
            raise ConfigError(
                f'{path}: [sweep] quick sets "{q}", which the grid sweeps ("{clash}"); a quick '
                "override would replace the grid's values: remove it from quick (or from the grid)"
            )
    metrics = _check_metrics(path, table.get("metrics", list(DEFAULT_METRICS)))
    base_name = raw.get("name", path.stem)
    combos = list(itertools.product(*(grid[k] for k in keys)))
    names = point_names(str(base_name), keys, combos)
    points = []
    shown = time.monotonic()
    for i, (combo, name) in enumerate(zip(combos, names)):
        point = copy.deepcopy(raw)
        for key, value in zip(keys, combo):
            set_dotted(point, key, value)
        if quick:
            for key, value in quick_values.items():
                set_dotted(point, key, value)
        point["name"] = name
        try:
            cfg = config_from_dict(point, source=str(path))
        except ConfigError as exc:
            where = ", ".join(f"{k} = {v!r}" for k, v in zip(keys, combo))
            raise ConfigError(f"{exc} (sweep point {where})") from None
        points.append(SweepPoint(values=tuple(zip(keys, combo)), name=name, cfg=cfg))
        if progress and time.monotonic() - shown > PROGRESS_EVERY_S:
            shown = time.monotonic()
            print(f"== sweep {base_name}: read {i + 1:,} of {n_points:,} point configs", file=sys.stderr, flush=True)
    return Sweep(
        name=str(base_name), keys=keys, points=tuple(points), metrics=metrics, source=str(path), launcher=launcher
    )


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


def _metric_hint(summary: dict, dotted: str) -> str:
    """Where a dotted path leaves summary.json: the keys of the last table it reached."""
    node: Any = summary
    reached = []
    parts = dotted.split(".")
    i = 0
    while i < len(parts) and isinstance(node, dict):
        for j in range(len(parts), i, -1):
            key = ".".join(parts[i:j])
            if key in node:
                node, i = node[key], j
                reached.append(key)
                break
        else:
            break
    where = ".".join(reached) or "summary.json"
    if isinstance(node, dict):
        keys = ", ".join(list(node)[:20]) + (", ..." if len(node) > 20 else "")
        return f"{where} has the keys {keys or '(none)'}"
    return f"{where} is {type(node).__name__}, not a table"


def seed_groups(sweep: Sweep) -> list[list[SweepPoint]]:
    """The sweep's points in groups that differ only in seed (they train together), in the order of their first
    point: the unit of a shard (``--shard``) and of a launcher's job."""
    groups: dict[str, list[SweepPoint]] = {}
    for point in sweep.points:
        groups.setdefault(seedless(point.cfg), []).append(point)
    return list(groups.values())


def parse_shard(text: str) -> tuple[int, int]:
    """``"I/N"`` -> (I, N) with 0 <= I < N; `ConfigError` otherwise."""
    index, _, count = text.partition("/")
    try:
        i, n = int(index), int(count)
    except ValueError:
        i, n = -1, 0
    if not 0 <= i < n:
        raise ConfigError(
            f"--shard {text!r}: write I/N with 0 <= I < N, e.g. --shard 0/4 (the first of 4 shares of "
            "the seed groups; --shard $SLURM_ARRAY_TASK_ID/4 in an array --array=0-3)"
        )
    return i, n


def finished_points(sweep: Sweep, out_root: Path, *, progress: bool = False) -> dict[str, RunSummary]:
    """Every point checked (as `compmech run` checks a config: the process builds, the memory fits, a run directory
    of it holds the same run) before any work; the summaries of the finished ones, by point name."""
    summaries: dict[str, RunSummary] = {}
    shown = time.monotonic()
    for i, point in enumerate(sweep.points):
        try:
            summary = finished_summary(point.cfg, out_root / point.name)
        except (ConfigError, ProcessError) as exc:  # the point named (both take one message)
            where = ", ".join(f"{k} = {v!r}" for k, v in point.values)
            raise type(exc)(f"{exc} (sweep point {where})") from None
        if summary is not None:
            summaries[point.name] = summary
        if progress and time.monotonic() - shown > PROGRESS_EVERY_S:
            shown = time.monotonic()
            print(
                f"== sweep {sweep.name}: checked {i + 1:,} of {len(sweep.points):,} points", file=sys.stderr, flush=True
            )
    return summaries


def _failure(exc: BaseException) -> str:
    """One line for a failed point: the message of an input error, else the exception's type and message."""
    text = " ".join(str(exc).split())
    return text if isinstance(exc, ValueError) else f"{type(exc).__name__}: {text}"


def run_sweep(
    sweep: Sweep,
    out_root: str | Path,
    *,
    progress: bool = True,
    quick: bool = False,
    shard: tuple[int, int] | None = None,
) -> list[dict]:
    """Run every point (reusing finished runs; ``shard`` = (I, N): the I-th of N shares of the seed groups only)
    and write the table, figure and page; return the rows (one per point, its ``status``: "finished", "failed:
    <why>" or "unfinished").

    Unfinished points that differ only in seed are trained together first (`compmech.runs.experiment.
    train_together`: one vmapped, jitted step for the whole group, one progress bar); then each point's
    pipeline (probe, figures, summary, report) runs on its own, its training found finished. A point (or a
    group's training) that fails is marked and the others go on.
    """
    progress = progress and is_lead_process()  # under jax.distributed, process 0 shows progress
    out_root = Path(out_root)
    lead = is_lead_process()
    lock = directory_lock(out_root, "sweep directory") if lead and shard is None else contextlib.nullcontext()
    with lock:
        summaries = finished_points(sweep, out_root, progress=progress)
        groups = seed_groups(sweep)
        chosen = groups if shard is None else groups[shard[0] :: shard[1]]
        failures: dict[str, str] = {}
        for group in chosen:
            todo = [p for p in group if p.name not in summaries]
            if len(todo) > 1:
                if progress:
                    print(
                        f"== sweep {sweep.name}: training {len(todo)} points that differ only in seed together: "
                        f"{', '.join(p.name for p in todo)}",
                        file=sys.stderr,
                        flush=True,
                    )
                try:
                    train_together([p.cfg for p in todo], [out_root / p.name for p in todo], progress=progress)
                except Exception as exc:  # noqa: BLE001 -- one group's failure is marked; the others go on
                    failures.update({p.name: _failure(exc) for p in todo})
                    _say_failed(sweep, [p.name for p in todo], failures[todo[0].name])
        mine = [p for group in chosen for p in group]
        command = f"compmech sweep {sweep.source}{' --quick' if quick else ''}"
        for i, point in enumerate(mine):
            run_dir = out_root / point.name
            if progress:
                where = ", ".join(f"{k} = {v!r}" for k, v in point.values)
                print(
                    f"== sweep {sweep.name}: point {i + 1}/{len(mine)} ({where}) -> {run_dir}",
                    file=sys.stderr,
                    flush=True,
                )
            if point.name in summaries:
                if progress:
                    print("   finished already: its results are reused", file=sys.stderr, flush=True)
                continue
            if point.name in failures:
                continue
            try:
                summary = run_experiment(point.cfg, run_dir, progress=progress, command=command)
            except Exception as exc:  # noqa: BLE001 -- one point's failure is marked; the others go on
                failures[point.name] = _failure(exc)
                _say_failed(sweep, [point.name], failures[point.name])
                continue
            if summary is not None:  # None: a helper process of a jax.distributed run
                summaries[point.name] = summary
        rows = table_rows(sweep, summaries, failures)
        if not lead:
            return rows
        _warn_metrics(sweep, summaries)
        if shard is None:
            write_table(sweep, rows, out_root, quick=quick)
        elif all(r["status"] == "finished" for r in rows):
            _write_table_if_free(sweep, rows, out_root, quick=quick, progress=progress)
    return rows


def _say_failed(sweep: Sweep, names: list[str], why: str) -> None:
    print(
        f"compmech: sweep {sweep.name}: {', '.join(names)} failed: {why}; the other points go on",
        file=sys.stderr,
        flush=True,
    )


def _write_table_if_free(sweep: Sweep, rows: list[dict], out_root: Path, *, quick: bool, progress: bool) -> None:
    """A shard that finds every point finished writes the table, unless another process holds the sweep directory
    (a launcher, or a sweep run whole: that one writes it)."""
    try:
        with directory_lock(out_root, "sweep directory"):
            write_table(sweep, rows, out_root, quick=quick)
    except DirectoryInUse:
        if progress:
            print(
                f"== sweep {sweep.name}: every point is finished; {out_root} is held by another process, which "
                "writes the table",
                file=sys.stderr,
                flush=True,
            )


def table_rows(sweep: Sweep, summaries: dict[str, RunSummary], failures: dict[str, str]) -> list[dict]:
    """One row per point: its values, its metrics (None where missing), its times and status."""
    rows = []
    for point in sweep.points:
        summary = summaries.get(point.name)
        record = summary.to_json() if summary is not None else {}
        status = (
            "finished"
            if summary is not None
            else (f"failed: {failures[point.name]}" if point.name in failures else "unfinished")
        )
        rows.append(
            {
                "point": point.name,
                **{k: v for k, v in point.values},
                **{m: metric(record, m) for m in sweep.metrics},
                "wall_seconds": None if summary is None else summary.wall_seconds,
                "train_elapsed_seconds": None if summary is None else summary.train_elapsed_seconds,
                "run_dir": point.name,
                "status": status,
            }
        )
    return rows


def metric_warnings(sweep: Sweep, summaries: dict[str, RunSummary]) -> list[str]:
    """One line per metric that no finished point's summary.json holds, saying where its path leaves the file."""
    if not summaries:
        return []
    records = [s.to_json() for s in summaries.values()]
    return [
        f"metric {m!r} is in no point's summary.json ({_metric_hint(records[0], m)}); fix [sweep] metrics"
        for m in sweep.metrics
        if all(metric(r, m) is None for r in records)
    ]


def _warn_metrics(sweep: Sweep, summaries: dict[str, RunSummary]) -> None:
    for warning in metric_warnings(sweep, summaries):
        print(f"compmech: warning: sweep {sweep.name}: {warning}", file=sys.stderr, flush=True)


def _cell(value: Any) -> str:
    """Four significant digits; six near 1 (a relative loss of 1.0008 is not "1.001", nor 1.00004 "1")."""
    if isinstance(value, float):
        return "–" if not math.isfinite(value) else f"{value:.6g}" if 0.99 < abs(value) < 1.01 else f"{value:.4g}"
    if value is None:
        return "–"
    return str(value)


def _columns(sweep: Sweep, rows: list[dict]) -> list[str]:
    """The table's columns: grid keys, metrics, and the status when a point did not finish."""
    return [*sweep.keys, *sweep.metrics] + (["status"] if any(r.get("status") != "finished" for r in rows) else [])


def markdown_table(sweep: Sweep, rows: list[dict]) -> str:
    """The rows as a Markdown table: grid keys, then metrics (and the status when a point did not finish)."""
    cols = _columns(sweep, rows)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_cell(r.get(c)).replace("|", "\\|") for c in cols) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def write_table(sweep: Sweep, rows: list[dict], out_root: Path, *, quick: bool = False) -> None:
    """sweep.json, sweep.md, sweep.csv, sweep.png and sweep.html in ``out_root``."""
    budget = "quick budget" if quick else "full budget"
    write_json_atomic(
        out_root / "sweep.json",
        {
            "name": sweep.name,
            "source": sweep.source,
            "quick": quick,
            "keys": list(sweep.keys),
            "metrics": list(sweep.metrics),
            "rows": rows,
        },
    )
    write_text_atomic(
        out_root / "sweep.md",
        f"# Sweep {sweep.name} ({budget})\n\nFrom `{sweep.source}`; each row "
        f"is the run directory `<point>` beside this file.\n\n" + markdown_table(sweep, rows),
    )
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf,
        fieldnames=["point", *sweep.keys, *sweep.metrics, "wall_seconds", "train_elapsed_seconds", "run_dir", "status"],
    )
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(out_root / "sweep.csv", buf.getvalue())
    x_key = sweep.keys[0]
    series = {m: [r.get(m) for r in rows] for m in sweep.metrics}
    # the other swept keys (not repeats over seed) split the points that share an x into separate lines
    other = [k for k in sweep.keys[1:] if k != "seed"]
    groups = [", ".join(f"{k} = {r[k]}" for k in other) for r in rows] if other else None
    fig = plot_sweep(
        [r[x_key] for r in rows], series, x_label=x_key, title=f"sweep {sweep.name} ({budget})", groups=groups
    )
    png = save_figure(fig, out_root / "sweep.png")
    write_text_atomic(out_root / "sweep.html", sweep_page(sweep, rows, png.read_bytes(), budget))


def sweep_page(sweep: Sweep, rows: list[dict], png: bytes, budget: str) -> str:
    """A small self-contained page: the figure, and the table with a link to each run's report."""
    cols = _columns(sweep, rows)

    def breakable(name: str) -> str:  # a dotted metric path may wrap after its dots and underscores
        return html.escape(name).replace(".", ".<wbr>").replace("_", "_<wbr>")

    head = "<th>run</th>" + "".join(f"<th class=num>{breakable(c)}</th>" for c in cols)
    body = "".join(
        '<tr><td><a href="'
        + html.escape(f"{r['run_dir']}/report.html")
        + '">'
        + html.escape(r["point"])
        + "</a></td>"
        + "".join(f"<td class=num>{html.escape(_cell(r.get(c)))}</td>" for c in cols)
        + "</tr>"
        for r in rows
    )
    img = base64.b64encode(png).decode()
    done = sum(r.get("status") == "finished" for r in rows)
    return (
        f"<!DOCTYPE html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n"
        f'<meta name=viewport content="width=device-width, initial-scale=1">\n'
        f"<title>sweep {html.escape(sweep.name)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        f"<h1>Sweep {html.escape(sweep.name)}</h1>\n<p class=note>{html.escape(budget)}; from "
        f"<code>{html.escape(sweep.source)}</code>; {len(rows)} runs"
        + (f", {len(rows) - done} of them not finished (see the status column)" if done < len(rows) else "")
        + ".</p>\n"
        f'<figure><img src="data:image/png;base64,{img}" alt="each metric against {html.escape(sweep.keys[0])}" '
        f'style="max-width:100%"></figure>\n<div class=scroll><table><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>\n</main>\n</body>\n</html>\n"
    )


def collect_sweep(sweep: Sweep, out_root: str | Path, *, quick: bool = False, progress: bool = True) -> list[dict]:
    """The table, figure and page from the points finished so far (``--collect``); the others marked unfinished."""
    out_root = Path(out_root)
    with directory_lock(out_root, "sweep directory"):
        summaries = finished_points(sweep, out_root, progress=progress)
        rows = table_rows(sweep, summaries, {})
        _warn_metrics(sweep, summaries)
        write_table(sweep, rows, out_root, quick=quick)
    return rows


def launch_sweep(
    sweep: Sweep,
    sweep_file: Path,
    out_root: str | Path,
    *,
    cluster: str,
    quick: bool = False,
    progress: bool = True,
    wait: bool = True,
) -> list[dict] | None:
    """Run the sweep's unfinished seed groups as jobs (`compmech.runs.launcher`): one job per group, each running
    ``compmech sweep FILE --shard I/N`` (N: the sweep's groups), then (``wait``) the table of every point, the ones
    whose jobs failed marked with the job's log file. Returns the rows, or None when it did not wait."""
    out_root = Path(out_root)
    import_submitit()  # before any check: say at once when the extra is missing

    def say(text: str) -> None:
        if progress:
            print(f"== sweep {sweep.name}: {text}", file=sys.stderr, flush=True)

    with directory_lock(out_root, "sweep directory"):
        summaries = finished_points(sweep, out_root, progress=progress)  # every point checked before any job
        groups = seed_groups(sweep)
        stored = read_records(out_root)
        specs, attached = [], []
        submitit = import_submitit()
        for i, group in enumerate(groups):
            if all(p.name in summaries for p in group):
                continue
            busy = [p.name for p in group if is_locked(out_root / p.name)]
            if busy:
                say(f"seed group {i} ({', '.join(busy)}) is being run by another process: not submitted again")
                continue
            spec = JobSpec(i, tuple(p.name for p in group), job_command(sweep_file, out_root, i, len(groups), quick))
            job = active_slurm_job(submitit, out_root, stored.get(str(i))) if cluster == "slurm" else None
            if job is not None:
                say(f"seed group {i}: job {job.job_id} is still {job.state}: not submitted again")
                attached.append(JobRecord(spec, str(job.job_id), str(job.paths.stdout), str(job.paths.stderr), job))
                continue
            specs.append(spec)
        if not specs and not attached:
            say("every point is finished (or run elsewhere): no job to submit")
        else:
            say(
                f"{len(specs)} job(s) to submit ({cluster}), one per seed group with unfinished points, of "
                f"{len(groups)} groups"
            )
        records = submit_jobs(
            specs,
            out_root,
            cluster,
            sweep.launcher,
            name=f"compmech-{sweep.name}",
            attached=attached,
            wait=wait,
            say=say,
            finished=lambda spec: all(is_complete(out_root / n) for n in spec.points),
        )
        if not wait:
            print(
                f"submitted {len(records)} job(s); when they are done: compmech sweep {sweep.source}"
                f"{' --quick' if quick else ''} --collect --out {out_root}"
            )
            return None
        summaries = finished_points(sweep, out_root, progress=False)
        failures = {
            name: f"job {r.job_id} did not finish it; log {r.stderr}"
            for r in records
            for name in r.spec.points
            if name not in summaries
        }
        rows = table_rows(sweep, summaries, failures)
        _warn_metrics(sweep, summaries)
        write_table(sweep, rows, out_root, quick=quick)
    return rows


def incomplete_message(sweep: Sweep, rows: list[dict], out: Path) -> str | None:
    """The one line that names the points that did not finish (None when every point did)."""
    bad = [r for r in rows if r["status"] != "finished"]
    if not bad:
        return None
    first = bad[0]
    more = (
        f" (and {len(bad) - 1} more: {', '.join(r['point'] for r in bad[1:4])}{', ...' if len(bad) > 4 else ''})"
        if len(bad) > 1
        else ""
    )
    return (
        f"sweep {sweep.name}: {len(bad)} of {len(rows)} points did not finish: {first['point']} "
        f"{first['status']}{more}; the table in {out / 'sweep.md'} marks them; run the same command again to "
        "retry them (finished points are reused)"
    )


def add_sweep_command(subparsers: Any) -> None:
    """Add ``sweep SWEEP.toml [--quick] [--out DIR] [--shard I/N | --launcher slurm|local | --collect]``."""
    p = subparsers.add_parser(
        "sweep",
        help="run one config over a grid of values (one run per point) and tabulate",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "sweep",
        type=Path,
        help="a sweep file (an experiment config plus a [sweep] table), or a shipped sweep's name "
        "(sweep_mess3_seeds; `compmech configs` lists them)",
    )
    p.add_argument("--quick", action="store_true", help="apply the file's [sweep] quick overrides (a smaller budget)")
    p.add_argument("--out", type=Path, default=None, help="where the runs and the table go (default: runs/<name>)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars or stage messages")
    p.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help="run only the I-th of N shares of the seed groups (0 <= I < N), e.g. in a job array",
    )
    p.add_argument(
        "--collect",
        action="store_true",
        help="write the table, figure and page from the points finished so far (no training)",
    )
    add_launcher_arguments(p)
    p.set_defaults(func=_cmd_sweep)


def _cmd_sweep(args: argparse.Namespace) -> int:
    chosen = [
        flag
        for flag, on in (
            ("--shard", args.shard is not None),
            ("--collect", args.collect),
            ("--launcher", args.launcher is not None),
        )
        if on
    ]
    if len(chosen) > 1:
        raise ConfigError(
            f"{' and '.join(chosen)} cannot be combined: --shard runs one share here, --launcher "
            "submits every share as a job, --collect only writes the table"
        )
    shard = parse_shard(args.shard) if args.shard is not None else None
    progress = not args.no_progress
    args.sweep = shipped.resolve(args.sweep)  # a file, or a shipped sweep's name
    sweep = load_sweep(args.sweep, quick=args.quick, progress=progress)
    out = args.out or Path("runs") / (sweep.name + ("-quick" if args.quick else ""))
    if args.launcher is not None:
        rows = launch_sweep(
            sweep,
            Path(args.sweep),
            out,
            cluster=args.launcher,
            quick=args.quick,
            progress=progress,
            wait=not args.no_wait,
        )
        if rows is None:  # submitted, not waited for
            return 0
    elif args.collect:
        rows = collect_sweep(sweep, out, quick=args.quick, progress=progress)
    else:
        rows = run_sweep(sweep, out, progress=progress, quick=args.quick, shard=shard)
    if not is_lead_process():  # a helper process of a jax.distributed run: process 0 reports
        return 0
    if shard is not None:
        mine = {p.name for g in seed_groups(sweep)[shard[0] :: shard[1]] for p in g}
        rows_mine = [r for r in rows if r["point"] in mine]
        failed = [r for r in rows_mine if r["status"] != "finished"]
        print(
            f"shard {shard[0]}/{shard[1]}: {len(rows_mine) - len(failed)} of {len(rows_mine)} points finished"
            + (
                ""
                if all(r["status"] == "finished" for r in rows)
                else f"; the table is written when every point is (by the last shard, or compmech sweep {args.sweep} "
                f"--collect --out {out})"
            )
        )
        if failed:
            print(f"compmech: error: {incomplete_message(sweep, rows_mine, out)}", file=sys.stderr)
            return 1
        return 0
    print(markdown_table(sweep, rows))
    print(f"written to {out / 'sweep.html'}")
    message = incomplete_message(sweep, rows, out)
    if message is not None:
        print(f"compmech: error: {message}", file=sys.stderr)
        return 1
    return 0
