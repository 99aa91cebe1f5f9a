"""``compmech reproduce --seeds N [--publish FILE]`` and ``compmech reproduce --check``: an experiment over seeds
0..N-1 trained together, its numbers as spreads, the published-numbers file, and the check of a user's runs.

``--seeds N`` runs each experiment's shipped config (``--quick``: a tenth of its steps, as ``compmech reproduce
--quick``) at seeds 0..N-1 into ``<out>/seeds/<name>-seed=<s>/``. The seeds train together exactly as a sweep over
``seed`` trains them (`compmech.runs.experiment.train_together`: one vmapped, jitted step for all N, each seed's
initial parameters and data drawn from its own seed), then each run is probed and reported on its own. Finished
runs are reused, interrupted ones resume. It writes ``<out>/seeds.md`` (per number: mean ± sd, min–max, every
seed's value, the command) and ``<out>/seeds.json``; with ``--publish FILE`` it also merges the entries into FILE
(the package's file is ``compmech/published/published_numbers.json``; it is written only this way).

``--check`` runs what the published file holds at the budget asked (``--only`` picks experiments): seed 0 alone
into ``<out>/<name>/`` (the run ``compmech reproduce [--quick]`` makes, reused when finished), or with ``--seeds N``
the N seeds together, and compares every number with its published spread (`compmech.runs.published`: the
tolerance and why). Exit status 1 when a number lies outside, with what to try.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from compmech.runs import (
    experiment,  # as a module: tests swap its functions for stubs
    shipped,
)
from compmech.runs.config import ExperimentConfig, load_config, quick_steps
from compmech.runs.errors import ConfigError
from compmech.runs.files import COMPLETE_MARK, write_json_atomic, write_text_atomic
from compmech.runs.published import (
    MIN_PUBLISHED_SEEDS,
    Published,
    PublishedEntry,
    PublishedError,
    PublishedNumber,
    Spread,
    Verdict,
    check_record,
    config_identity,
    first_difference,
    format_verdicts,
    load_published,
    machine_differences,
    published_path,
    quantities_for,
    require_enough_seeds,
    run_record,
    spread_table,
    value_of,
    verdict_summary,
)

#: The folder of ``<out>`` that holds the seeds' run directories.
SEEDS_DIR = "seeds"


def budget_config(
    path: Path, *, quick: bool, fraction: float, overrides: Mapping[str, Any] | None = None
) -> ExperimentConfig:
    """``path``'s config at the budget asked: its own steps, or (``quick``) ``fraction`` of them, as ``compmech
    reproduce --quick`` runs it."""
    overrides = dict(overrides or {})
    cfg = load_config(path, overrides)
    if quick:
        cfg = load_config(path, {**overrides, "training.steps": quick_steps(cfg.training, fraction)})
    return cfg


def seed_configs(path: Path, seeds: Sequence[int], *, quick: bool, fraction: float) -> list[ExperimentConfig]:
    """One config per seed, named ``<name>-seed=<s>`` (a sweep over ``seed`` names its points so)."""
    base = budget_config(path, quick=quick, fraction=fraction)
    return [
        budget_config(path, quick=quick, fraction=fraction, overrides={"seed": s, "name": f"{base.name}-seed={s}"})
        for s in seeds
    ]


def run_seeds(cfgs: Sequence[ExperimentConfig], out_root: Path, *, progress: bool, command: str) -> list[Path]:
    """Run configs that differ only in seed: the unfinished ones trained together (one vmapped step), then each
    run's pipeline on its own; finished runs reused. Returns the run directories, ``<out_root>/seeds/<name>``."""
    dirs = [Path(out_root) / SEEDS_DIR / cfg.name for cfg in cfgs]
    pending = [i for i, (cfg, d) in enumerate(zip(cfgs, dirs)) if experiment.finished_summary(cfg, d) is None]
    if len(pending) > 1:
        if progress:
            print(
                f"== training {len(pending)} seeds together: {', '.join(cfgs[i].name for i in pending)}",
                file=sys.stderr,
                flush=True,
            )
        experiment.train_together([cfgs[i] for i in pending], [dirs[i] for i in pending], progress=progress)
    for cfg, d in zip(cfgs, dirs):
        experiment.run_or_reuse(cfg, d, progress=progress, command=command)
    return dirs


def _finished_at(run_dir: Path) -> str:
    """When the run finished (its completion mark's time, UTC), or ""."""
    try:
        return str(json.loads((run_dir / COMPLETE_MARK).read_text(encoding="utf-8")).get("finished_at", ""))
    except (OSError, ValueError):
        return ""


def make_entry(
    experiment_name: str,
    cfgs: Sequence[ExperimentConfig],
    dirs: Sequence[Path],
    *,
    quick: bool,
    command: str,
    rerun: str,
) -> PublishedEntry:
    """The published entry of finished seed runs: every headline number (`quantities_for`) that each seed has,
    as its spread; the machine from the runs' summary.json. Raises `PublishedError` when the seeds ran on
    different machines or library versions (one entry is one machine's spread)."""
    records = [run_record(d) for d in dirs]
    envs = [r.get("environment") or {} for r in records]
    for cfg, env in zip(cfgs[1:], envs[1:]):
        differing = machine_differences(env, envs[0])
        if differing:
            raise PublishedError(
                f"{cfg.name} ran on another machine than {cfgs[0].name} ({', '.join(differing)} "
                "differ): one entry is one machine's spread; delete those runs and run again"
            )
    numbers = []
    for q in quantities_for(records[0]):
        values = [value_of(r, q) for r in records]
        if all(v is not None for v in values):  # a number some seed withholds is not published
            numbers.append(PublishedNumber(q, Spread(tuple(values))))
    walls = [r.get("wall_seconds") for r in records]
    trains = [r.get("train_elapsed_seconds") for r in records if r.get("train_elapsed_seconds") is not None]
    return PublishedEntry(
        experiment=experiment_name,
        budget="quick" if quick else "full",
        steps=int(cfgs[0].training["steps"]),
        seeds=tuple(cfg.seed for cfg in cfgs),
        command=command,
        rerun=rerun,
        config=config_identity(tomllib.loads(cfgs[0].to_toml())),
        environment=envs[0],
        made=max(_finished_at(d) for d in dirs),
        numbers=tuple(numbers),
        wall_seconds=sum(walls) if all(w is not None for w in walls) else None,
        train_elapsed_seconds=max(trains) if trains else None,
        paper=dict(records[0].get("paper") or {}),
    )


def _resolve(name: str, experiments: Mapping[str, Path] | None) -> Path:
    if experiments is not None:
        if name not in experiments:
            raise ConfigError(f"unknown experiment {name!r}; choose from {', '.join(experiments)}")
        return Path(experiments[name])
    return shipped.config_path(name)


def reproduce_seeds(
    names: Sequence[str],
    out_root: Path,
    *,
    n_seeds: int,
    quick: bool,
    fraction: float,
    progress: bool = True,
    command: str | None = None,
    experiments: Mapping[str, Path] | None = None,
) -> list[PublishedEntry]:
    """Each experiment over seeds 0..n_seeds-1 trained together (`run_seeds`); writes ``<out_root>/seeds.md`` and
    ``seeds.json``; returns the entries (`PublishedEntry`), for `publish`."""
    if n_seeds < 2:
        raise ConfigError(f"--seeds must be at least 2 (a spread needs two values); got {n_seeds}")
    out_root = Path(out_root)
    q = " --quick" if quick else ""
    paths = {name: _resolve(name, experiments) for name in names}  # every name checked before anything runs
    entries = []
    for name in names:
        cfgs = seed_configs(paths[name], range(n_seeds), quick=quick, fraction=fraction)
        for cfg in cfgs:
            experiment.plan_run(cfg, out_root / SEEDS_DIR / cfg.name)  # checked before the first one trains
        rerun = f"compmech reproduce{q} --seeds {n_seeds} --only {name}"
        if progress:
            print(
                f"== {name}: {paths[name]} ({cfgs[0].training['steps']} steps), seeds 0..{n_seeds - 1}",
                file=sys.stderr,
                flush=True,
            )
        dirs = run_seeds(cfgs, out_root, progress=progress, command=rerun)
        entries.append(make_entry(name, cfgs, dirs, quick=quick, command=command or rerun, rerun=rerun))
    budget = "quick budget (a tenth of each config's steps)" if quick else "full budget"
    text = (
        f"# {', '.join(names)} over {n_seeds} seeds trained together ({budget})\n\n"
        f"Made by `{command or f'compmech reproduce{q} --seeds {n_seeds} --only ' + ' '.join(names)}`; each seed's "
        f"run directory is `{SEEDS_DIR}/<name>-seed=<s>/` beside this file.\n\n"
        + "\n".join(spread_table(e) for e in entries)
    )
    write_text_atomic(out_root / "seeds.md", text)
    write_json_atomic(out_root / "seeds.json", Published(tuple(entries)).to_json())
    return entries


def publish(path: Path, entries: Sequence[PublishedEntry]) -> Published:
    """Merge ``entries`` into the published-numbers file ``path`` (an entry of the same experiment and budget
    replaced, the others kept) and write it atomically."""
    for e in entries:
        require_enough_seeds(len(e.seeds), e.experiment)
    merged = load_published(path).merged(entries)
    write_json_atomic(path, merged.to_json())
    return merged


def check_runs(
    names: Sequence[str],
    out_root: Path,
    published: Published,
    *,
    quick: bool,
    fraction: float,
    n_seeds: int | None = None,
    progress: bool = True,
    experiments: Mapping[str, Path] | None = None,
) -> tuple[list[Verdict], dict[str, PublishedEntry], dict[str, dict[str, Any]]]:
    """Run each experiment as ``compmech reproduce [--quick]`` does (seed 0 alone into ``<out>/<name>``; with
    ``n_seeds``, seeds 0..n-1 together into ``<out>/seeds/``), reusing finished runs, and check every published
    number. Every name's entry and config are checked before anything runs: a shipped config changed since the
    numbers were published is refused, naming the key. Returns the verdicts, the entries and each run's
    environment (for `verdict_summary`)."""
    budget = "quick" if quick else "full"
    out_root = Path(out_root)
    q = " --quick" if quick else ""
    plans: list[tuple[str, PublishedEntry, list[ExperimentConfig]]] = []
    for name in names:
        entry = published.entry(name, budget)
        if entry is None:
            have = published.experiments(budget)
            raise PublishedError(
                f"no published numbers for {name} at the {budget} budget; published at it: "
                f"{', '.join(have) or 'none'}" + ("" if quick else " (try --quick)")
            )
        path = _resolve(name, experiments)
        cfgs = (
            seed_configs(path, range(n_seeds), quick=quick, fraction=fraction)
            if n_seeds
            else [budget_config(path, quick=quick, fraction=fraction)]
        )
        mine = config_identity(tomllib.loads(cfgs[0].to_toml()))
        if mine != entry.config:
            raise PublishedError(
                f"{name}'s config has changed since its numbers were published (at "
                f"{first_difference(mine, entry.config)}): the published spread is not of this "
                f"config; regenerate it with {entry.rerun} --publish FILE"
            )
        plans.append((name, entry, cfgs))
    verdicts: list[Verdict] = []
    entries: dict[str, PublishedEntry] = {}
    environments: dict[str, dict[str, Any]] = {}
    for name, entry, cfgs in plans:
        if progress:
            print(
                f"== check {name} ({budget} budget, {cfgs[0].training['steps']} steps) against {len(entry.seeds)} "
                "published seeds",
                file=sys.stderr,
                flush=True,
            )
        if n_seeds:
            dirs = run_seeds(
                cfgs, out_root, progress=progress, command=f"compmech reproduce{q} --seeds {n_seeds} --only {name}"
            )
        else:
            dirs = [out_root / name]
            experiment.run_or_reuse(cfgs[0], dirs[0], progress=progress, command=f"compmech reproduce{q} --only {name}")
        for d in dirs:
            record = run_record(d)
            verdicts += check_record(entry, record, published.level)
            environments.setdefault(name, record.get("environment") or {})
        entries[name] = entry
    return verdicts, entries, environments


# ------------------------------------------------------------------------------------------------ the command


def add_seed_arguments(p: argparse.ArgumentParser) -> None:
    """``--seeds N``, ``--publish FILE``, ``--check`` and ``--published FILE`` on ``compmech reproduce``."""
    p.add_argument(
        "--seeds",
        type=int,
        metavar="N",
        default=None,
        help="run each experiment at seeds 0..N-1, trained together (one vmapped step), and tabulate "
        "mean ± sd and min–max per number (<out>/seeds.md); --only takes any shipped experiment "
        "config (e.g. post_quantum), or one study (its runs at each run's seed + 0..N-1, one after another; its "
        "tables over the seeds in <out>/<study>-seeds.md)",
    )
    p.add_argument(
        "--publish",
        type=Path,
        metavar="FILE",
        default=None,
        help="with --seeds (3 or more): merge the spreads into the published-numbers file FILE (the "
        "package's is compmech/published/published_numbers.json); with one study, write its tables over the seeds "
        "to FILE (the package's are compmech/published/studies/<study>-<budget>.json)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="compare your runs with the published numbers (each number: published mean ± sd, yours, "
        "inside the accepted interval or not); exit status 1 when one lies outside. Without --only: "
        "every experiment published at the budget; with --seeds N: N seeds, each checked",
    )
    p.add_argument(
        "--published",
        type=Path,
        metavar="FILE",
        default=None,
        help=f"the published-numbers file --check reads (default: the one shipped, {published_path()})",
    )


def wants_seeds(args: argparse.Namespace) -> bool:
    """Whether ``compmech reproduce`` was asked for seeds, publishing or a check (this module's flows)."""
    return args.seeds is not None or args.publish is not None or args.check


def typed_command(args: argparse.Namespace) -> str | None:
    """The command line as typed (`compmech.runs.cli.main` records it), or None when called otherwise."""
    argv = getattr(args, "argv", None)
    return None if argv is None else "compmech " + shlex.join(argv)


def reproduce_command(
    args: argparse.Namespace,
    *,
    default_names: Sequence[str],
    fraction: float,
    experiments: Mapping[str, Path] | None = None,
) -> int:
    """``compmech reproduce`` with ``--seeds``, ``--publish`` or ``--check`` (see the module docstring)."""
    out = args.out or Path("runs") / ("reproduce-quick" if args.quick else "reproduce")
    progress = not args.no_progress
    if args.publish is not None and args.check:
        raise ConfigError(
            "--publish and --check: choose one (publish the spreads of your seeds, or check your runs "
            "against the published ones)"
        )
    if args.publish is not None and args.seeds is None:
        raise ConfigError(
            f"--publish needs --seeds N (N >= {MIN_PUBLISHED_SEEDS}): a published number is a spread over seeds"
        )
    budget = "quick" if args.quick else "full"
    if args.check:
        published = load_published(args.published)
        names = list(args.only or published.experiments(budget))
        if not names:
            raise PublishedError(
                f"{args.published or published_path()} holds no numbers at the {budget} budget"
                + ("" if args.quick else "; try --quick")
            )
        verdicts, entries, environments = check_runs(
            names,
            out,
            published,
            quick=args.quick,
            fraction=fraction,
            n_seeds=args.seeds,
            progress=progress,
            experiments=experiments,
        )
        text = (
            f"# Check against the published numbers ({budget} budget)\n\n"
            + "\n".join(
                f"- {e.experiment}: {len(e.seeds)} seeds, `{e.rerun or e.command}`, made on "
                f"{e.environment.get('cpu', '?')}"
                for e in entries.values()
            )
            + "\n\n"
            + format_verdicts(verdicts, published.level)
            + "\n"
            + verdict_summary(verdicts, entries, environments, published.level)
        )
        write_text_atomic(out / "check.md", text)
        print(text)
        print(f"written to {out / 'check.md'}")
        return 1 if any(v.inside is False for v in verdicts) else 0
    names = list(args.only or (load_published().experiments(budget) or default_names))
    entries = reproduce_seeds(
        names,
        out,
        n_seeds=args.seeds,
        quick=args.quick,
        fraction=fraction,
        progress=progress,
        command=typed_command(args),
        experiments=experiments,
    )
    print((out / "seeds.md").read_text(encoding="utf-8"))
    print(f"written to {out / 'seeds.md'} (and seeds.json)")
    if args.publish is not None:
        merged = publish(args.publish, entries)
        print(
            f"published: {args.publish} ({len(merged.entries)} entries: "
            f"{', '.join(f'{e.experiment} ({e.budget})' for e in merged.entries)})"
        )
    return 0
