"""`compmech reproduce`: run the paper's experiments in turn and set every number it reports beside ours.

Writes ``<out>/<experiment>/`` run directories and ``<out>/reproduce.md`` + ``reproduce.json``: one
row per paper number (experiment, quantity, paper, ours, ours / paper).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from compmech import studies
from compmech.runs import (
    experiment,  # as a module: tests swap experiment.run_experiment for a stub
    seed_runs,
    shipped,
    study_seeds,
)
from compmech.runs.config import ConfigError, ExperimentConfig, config_from_dict, load_config, quick_steps
from compmech.runs.errors import SweepIncomplete
from compmech.runs.files import write_json_atomic, write_text_atomic
from compmech.runs.paper import PAPER_RESULTS
from compmech.runs.published import MIN_PUBLISHED_SEEDS, require_enough_seeds
from compmech.runs.summary import RunSummary
from compmech.runs.sweep import incomplete_message, load_sweep, run_sweep
from compmech.studies import SweepPointRun

#: The paper's experiments (Z1R is a bonus with no paper numbers), in the order they run.
EXPERIMENTS: dict[str, Path] = {name: shipped.config_path(name) for name in ("mess3", "rrxor", "z1r")}


@dataclass
class ReproduceRunner:
    """The `compmech.studies.Runner` that ``compmech reproduce`` hands a study: runs through `run_experiment`
    (finished runs reused, interrupted ones resumed), sweeps through `run_sweep`, each run recording the command
    ``compmech reproduce [--quick] --only <study>``.

    ``seed_offset`` (``--seeds N``, `compmech.runs.study_seeds`): every config checked, looked up or run, and every
    sweep point, runs at its seed + ``seed_offset``; configs read with `load` or `from_dict` keep the seed written
    in them (a config read back from a run directory is the one that ran)."""

    study: str
    quick: bool = False
    progress: bool = True
    seed_offset: int = 0
    n_seeds: int | None = None  # --seeds N, for the command each run records

    @property
    def command(self) -> str:
        seeds = "" if self.n_seeds is None else f" --seeds {self.n_seeds}"
        return f"compmech reproduce{' --quick' if self.quick else ''} --only {self.study}{seeds}"

    def seeded(self, cfg: ExperimentConfig) -> ExperimentConfig:
        """``cfg`` at this runner's seed offset (itself when the offset is 0)."""
        return cfg if self.seed_offset == 0 else dataclasses.replace(cfg, seed=cfg.seed + self.seed_offset)

    def config_path(self, name: str) -> Path:
        return shipped.config_path(name)

    def load(self, path: Path, overrides: Mapping[str, Any] | None = None) -> ExperimentConfig:
        return load_config(path, overrides)

    def from_dict(self, raw: Mapping[str, Any], source: str) -> ExperimentConfig:
        return config_from_dict(raw, source=source)

    def check(self, cfg: ExperimentConfig, run_dir: Path) -> None:
        experiment.plan_run(self.seeded(cfg), run_dir)

    def finished(self, cfg: ExperimentConfig, run_dir: Path) -> RunSummary | None:
        return experiment.finished_summary(self.seeded(cfg), run_dir)

    def run(self, cfg: ExperimentConfig, run_dir: Path) -> RunSummary:
        return experiment.run_or_reuse(self.seeded(cfg), run_dir, progress=self.progress, command=self.command)

    def sweep(self, path: Path, out_dir: Path) -> list[SweepPointRun]:
        sweep = load_sweep(path, quick=self.quick, progress=self.progress)
        if self.seed_offset:
            points = tuple(dataclasses.replace(p, cfg=self.seeded(p.cfg)) for p in sweep.points)
            sweep = dataclasses.replace(sweep, points=points)
        rows = run_sweep(sweep, out_dir, progress=self.progress, quick=self.quick)
        message = incomplete_message(sweep, rows, Path(out_dir))
        if message is not None:
            raise SweepIncomplete(message)
        return [
            SweepPointRun(name=p.name, values=dict(p.values), cfg=p.cfg, run_dir=Path(out_dir) / p.name)
            for p in sweep.points
        ]

    def say(self, text: str) -> None:
        if self.progress:
            print(text, file=sys.stderr, flush=True)


def reproducible_studies() -> dict[str, studies.Study]:
    """The studies ``--only`` accepts beside the paper's experiments (never run without it)."""
    return {name: s for name, s in studies.all_studies().items() if s.reproduce is not None}


def run_study(name: str, where: Path, *, quick: bool, progress: bool) -> str:
    """Run study ``name`` (a registered study with a reproduce entry) into ``where``; returns its Markdown table."""
    study = studies.get_study(name)
    if study.reproduce is None:
        raise ConfigError(
            f"study {name!r} has no reproduce entry; the studies --only runs are {', '.join(reproducible_studies())}"
        )
    return study.reproduce(Path(where), ReproduceRunner(name, quick=quick, progress=progress))


def run_study_seeds(
    name: str, where: Path, *, n_seeds: int, quick: bool, progress: bool, publish: Path | None = None
) -> str:
    """Run study ``name`` once per seed offset 0..n_seeds-1 into ``<where>/seeds/seed=<i>/`` and write its tables over
    the seeds, ``<where>/<name>-seeds.md`` and ``-seeds.json`` (`compmech.runs.study_seeds`); with ``publish`` (3 seeds
    or more) also the `~compmech.runs.study_seeds.PublishedStudy` there. Returns the Markdown."""
    study = studies.get_study(name)
    if study.reproduce is None:
        raise ConfigError(
            f"study {name!r} has no reproduce entry; the studies --only runs are {', '.join(reproducible_studies())}"
        )
    if n_seeds < 2:
        raise ConfigError(
            f"--seeds {n_seeds}: a spread needs at least 2 seeds (the tables publish {MIN_PUBLISHED_SEEDS} or more)"
        )
    if publish is not None:  # refused before any run
        require_enough_seeds(n_seeds, name)
    texts, copies = [], []
    for offset in range(n_seeds):
        here = study_seeds.seed_dir(Path(where), offset)
        if progress:
            print(f"== {name}: seed offset {offset} of {n_seeds} -> {here}", file=sys.stderr, flush=True)
        runner = ReproduceRunner(name, quick=quick, progress=progress, seed_offset=offset, n_seeds=n_seeds)
        texts.append(study.reproduce(here, runner))
        copies.append(json.loads((here / f"{name}.json").read_text(encoding="utf-8")))
    rerun = f"compmech reproduce{' --quick' if quick else ''} --only {name} --seeds {n_seeds}"
    command = rerun if publish is None else f"{rerun} --publish {publish}"
    numbers = study_seeds.spreads_over_seeds(copies)
    head = (
        f"<!-- {n_seeds} seeds (each run's seed + 0..{n_seeds - 1}), {'quick' if quick else 'full'} budget: "
        f"`{command}`; every number that differs between the seeds is mean ± sd over them (in a cell with its own "
        f"± errors: mean (sd s), the errors seed 0's); min–max and each seed's value in {name}-seeds.json -->"
    )
    text = study_seeds.markdown_over_seeds(texts, head)
    where = Path(where)
    write_text_atomic(where / f"{name}-seeds.md", text)
    write_json_atomic(
        where / f"{name}-seeds.json",
        {
            "study": name,
            "n_seeds": n_seeds,
            "quick": quick,
            "command": command,
            "copies": [str(study_seeds.seed_dir(where, i)) for i in range(n_seeds)],
            "numbers": [n.to_json() for n in numbers],
        },
    )
    if publish is not None:
        study_seeds.publish_study(
            publish,
            study_seeds.PublishedStudy(
                study=name,
                budget="quick" if quick else "full",
                n_seeds=n_seeds,
                command=command,
                rerun=rerun,
                made=datetime.now(UTC).isoformat(timespec="seconds"),
                environment=study_seeds.copies_environment([study_seeds.seed_dir(where, i) for i in range(n_seeds)]),
                markdown=text,
                numbers=tuple(numbers),
            ),
        )
    return text


#: ``--quick`` trains for this fraction of each config's steps (figures then show an earlier model).
QUICK_FRACTION = 0.1


def comparison_rows(name: str, summary: RunSummary, probe: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per number the paper reports for this experiment (or our headline numbers if it has none)."""
    paper = PAPER_RESULTS.get(name, {})
    layers = probe["layers"]
    rows: list[tuple[str, float | None, float | None]] = []
    if "relative_loss" in paper or not paper:
        rows.append(("relative loss (CE / optimum)", paper.get("relative_loss"), summary.relative_loss))
    headline = summary.probe_layer  # the paper's choice: after the last block, before the final LayerNorm
    if "probe_mse" in paper or not paper:
        rows.append(
            (f"held-out MSE on unseen contexts ({headline})", None, layers[headline].get("mse_heldout_contexts"))
        )
        rows.append((f"probe MSE ({headline})", paper.get("probe_mse"), layers[headline]["mse"]))
        rows.append(
            (
                f"held-out probe MSE, paper's string split ({headline})",
                paper.get("probe_mse_heldout"),
                layers[headline].get("mse_heldout"),
            )
        )
        rows.append(
            (f"shuffled-control MSE ({headline})", paper.get("probe_mse_shuffled"), layers[headline]["mse_shuffled"])
        )
    if summary.analysis_layer == headline:
        seen = {int(e.get("tokens_requested", e["tokens"])): e["mse"] for e in summary.evolution}
        for tokens, mse in (paper.get("probe_mse_over_training") or {}).items():
            rows.append((f"probe MSE after {tokens:.2g} tokens", mse, seen.get(int(tokens))))
    for layer, mse in (paper.get("layer_mse") or {}).items():
        rows.append((f"probe MSE, {layer}", mse, layers.get(layer, {}).get("mse")))
        rows.append(
            (f"held-out MSE on unseen contexts, {layer}", None, layers.get(layer, {}).get("mse_heldout_contexts"))
        )
    geo = summary.geometry
    if "distance_r2_beliefs" in paper or (not paper and geo):
        rows.append(("distance R^2 vs beliefs", paper.get("distance_r2_beliefs"), geo.get("distance_r2_beliefs")))
        rows.append(
            ("distance R^2 vs next-token", paper.get("distance_r2_next_token"), geo.get("distance_r2_next_token"))
        )
    return [
        {"experiment": name, "quantity": q, "paper": p, "ours": o, "ratio": (o / p if p and o is not None else None)}
        for q, p, o in rows
    ]


def format_markdown(rows: list[dict[str, Any]], header: str) -> str:
    """The rows as a Markdown table."""

    def num(v: float | None) -> str:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "–"
        return f"{v:.6g}"

    lines = [header, "", "| experiment | quantity | paper | ours | ours / paper |", "|---|---|---:|---:|---:|"]
    for r in rows:
        ratio = "–" if r["ratio"] is None else f"{r['ratio']:.4g}×"
        lines.append(f"| {r['experiment']} | {r['quantity']} | {num(r['paper'])} | {num(r['ours'])} | {ratio} |")
    return "\n".join(lines) + "\n"


def reproduce(
    out_root: Path,
    *,
    quick: bool = False,
    only: list[str] | None = None,
    progress: bool = True,
    experiments: dict[str, Path] | None = None,
) -> list[dict[str, Any]]:
    """Run each experiment (reusing a finished run, resuming an interrupted one) and write the comparison table."""
    experiments = experiments or EXPERIMENTS
    names = only or list(experiments)
    unknown = [n for n in names if n not in experiments]
    if unknown:
        raise ConfigError(
            f"unknown experiment {unknown[0]!r}; choose from {', '.join(experiments)}"
            + (f" (or the study {', '.join(reproducible_studies())})" if experiments is EXPERIMENTS else "")
        )
    rows: list[dict[str, Any]] = []
    runs = {}
    for name in names:
        cfg = load_config(experiments[name])
        if quick:
            cfg = load_config(experiments[name], {"training.steps": quick_steps(cfg.training, QUICK_FRACTION)})
        if progress:
            print(f"== {name}: {experiments[name]} ({cfg.training['steps']} steps)", file=sys.stderr, flush=True)
        run_dir = out_root / name
        summary = experiment.finished_summary(cfg, run_dir)  # a finished run (completion mark) of this config is reused
        if summary is not None and progress:
            print(f"   {run_dir} is finished already: its results are reused", file=sys.stderr, flush=True)
        if summary is None:
            summary = experiment.run_experiment(
                cfg,
                run_dir,
                progress=progress,
                command=f"compmech reproduce{' --quick' if quick else ''} --only {name}",
            )
        probe = json.loads((run_dir / "probe.json").read_text())
        rows += comparison_rows(name, summary, probe)
        runs[name] = {"run_dir": str(run_dir), "wall_seconds": summary.wall_seconds, "tokens": summary.tokens}
    budget = f"quick budget ({QUICK_FRACTION:g} of each config's steps)" if quick else "full budget"
    header = f"# Shai et al. (2024) reproduced: {', '.join(names)} ({budget})\n\n" + "\n".join(
        f"- {n}: {r['tokens']:.3g} tokens, {r['wall_seconds']:.0f} s, run directory `{r['run_dir']}`"
        for n, r in runs.items()
    )
    write_text_atomic(out_root / "reproduce.md", format_markdown(rows, header))
    write_json_atomic(out_root / "reproduce.json", {"quick": quick, "runs": runs, "rows": rows})
    return rows


def add_reproduce_command(subparsers: Any) -> None:
    """Add ``reproduce [--quick] [--only NAME ...] [--out DIR]`` to the CLI."""
    extra = reproducible_studies()
    p = subparsers.add_parser(
        "reproduce",
        help="run the paper's experiments (Mess3, RRXOR, Z1R) and compare; "
        f"--only {' | '.join(extra)}: the studies beyond the paper",
        description=__doc__,
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"train for {QUICK_FRACTION:g} of each config's steps (minutes, not the full budget)",
    )
    p.add_argument(
        "--only",
        nargs="+",
        metavar="NAME",
        help=f"run only these ({', '.join(EXPERIMENTS)}), or a study (not run by default): "
        + "; ".join(f"'{k}': {v.summary}" for k, v in extra.items())
        + ". A study alone writes into --out DIR (default: runs/reproduce[-quick]/<study>)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where the runs and the table go (default: runs/reproduce, or runs/reproduce-quick)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars or stage messages")
    seed_runs.add_seed_arguments(p)  # --seeds N, --publish FILE, --check, --published FILE
    p.set_defaults(func=_cmd_reproduce)


def _cmd_reproduce(args: argparse.Namespace) -> int:
    extra = reproducible_studies()
    # a study's name with "-" for "_" is accepted too (random-machines)
    args.only = [n.replace("-", "_") if n.replace("-", "_") in extra else n for n in args.only or []] or None
    asked = [n for n in args.only or [] if n in extra]
    if asked and seed_runs.wants_seeds(args):  # a study's tables over seeds
        if args.check or len(asked) != len(args.only) or (args.publish is not None and len(asked) != 1):
            raise ConfigError(
                "with a study, --seeds N runs that study alone (--only STUDY --seeds N [--publish FILE]); --check "
                "takes the experiment configs (mess3, rrxor, ...)"
            )
        if args.seeds is None:
            raise ConfigError(f"--publish with a study needs --seeds N (3 or more): --only {asked[0]} --seeds 3")
        for name in asked:
            where = (
                args.out
                if args.out is not None and len(asked) == 1
                else (args.out or Path("runs") / ("reproduce-quick" if args.quick else "reproduce")) / name
            )
            print(
                run_study_seeds(
                    name,
                    where,
                    n_seeds=args.seeds,
                    quick=args.quick,
                    progress=not args.no_progress,
                    publish=args.publish,
                )
            )
            print(
                f"written to {where / (name + '-seeds.md')} (and {name}-seeds.json; each seed's copy in {where}/seeds/)"
            )
        return 0
    if seed_runs.wants_seeds(args):  # spreads over seeds, the published numbers, the check against them
        return seed_runs.reproduce_command(args, default_names=list(EXPERIMENTS), fraction=QUICK_FRACTION)
    out = args.out or Path("runs") / ("reproduce-quick" if args.quick else "reproduce")
    only = list(args.only or [])
    chosen = [n for n in only if n in extra]
    paper = [n for n in only if n not in extra]
    if not chosen or paper:  # no --only: the paper's experiments, as always
        rows = reproduce(out, quick=args.quick, only=paper or None, progress=not args.no_progress)
        print(format_markdown(rows, f"# written to {out / 'reproduce.md'}"))
    for name in chosen:
        # --out DIR with one study alone: DIR itself; else a subfolder per study beside the paper's experiments
        where = args.out if args.out is not None and not paper and len(chosen) == 1 else out / name
        print(run_study(name, where, quick=args.quick, progress=not args.no_progress))
        print(f"written to {where / (name + '.md')} (and {name}.json, figures, one run directory per run)")
    return 0
