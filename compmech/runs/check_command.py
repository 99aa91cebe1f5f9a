"""``compmech check RUN_DIR [RUN_DIR ...]``: a finished run's numbers against the published spread over seeds.

The run's config.toml picks the published entry (the same config but for name, seed and devices: a shipped
experiment at its full or quick budget, as ``compmech run NAME`` or ``compmech reproduce [--quick]`` ran it). Per
number it prints the published mean ± sd (min–max, n), the accepted interval (the published range widened to the
99% prediction interval for one more seed: `compmech.runs.published`), the run's value and whether it lies inside.
Exit status 1 when one lies outside (with what to try), 2 when the run or its config has no published numbers.
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path
from typing import Any

from compmech.runs.errors import ConfigError, RunDirError
from compmech.runs.files import write_text_atomic
from compmech.runs.published import (
    PublishedEntry,
    Verdict,
    check_record,
    format_verdicts,
    load_published,
    published_path,
    published_tables,
    run_record,
    splice_tables,
    verdict_summary,
)


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """A run directory's config.toml, parsed. Raises `RunDirError` naming the file when it is missing or bad."""
    path = Path(run_dir) / "config.toml"
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirError(f"{path} is missing: {run_dir} is not a run directory (compmech run writes one)") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise RunDirError(f"{path} cannot be read ({exc})") from None


def check_run_dirs(run_dirs: list[Path], published_file: Path | None = None) -> tuple[str, bool]:
    """The check of each run directory against its published entry, as text; and whether every number lies
    inside. Raises `PublishedError` (a ConfigError) when a run's config has no published entry."""
    published = load_published(published_file)
    verdicts: list[Verdict] = []
    entries: dict[str, PublishedEntry] = {}
    environments: dict[str, dict[str, Any]] = {}
    heads = []
    for run_dir in run_dirs:
        entry = published.match(read_run_config(run_dir))
        record = run_record(run_dir)
        verdicts += check_record(entry, record, published.level)
        entries.setdefault(entry.experiment, entry)
        environments.setdefault(entry.experiment, record.get("environment") or {})
        heads.append(
            f"- {run_dir}: {entry.experiment} at the {entry.budget} budget (seed {record.get('seed', '?')}); "
            f"published over {len(entry.seeds)} seeds by `{entry.rerun or entry.command}` on "
            f"{entry.environment.get('cpu', '?')}"
        )
    text = (
        "\n".join(heads)
        + "\n\n"
        + format_verdicts(verdicts, published.level)
        + "\n"
        + verdict_summary(verdicts, entries, environments, published.level)
    )
    return text, not any(v.inside is False for v in verdicts)


def add_check_command(subparsers: Any) -> None:
    """Add ``check RUN_DIR [RUN_DIR ...] [--published FILE]`` and ``check --tables [--update PAGE]``."""
    p = subparsers.add_parser(
        "check",
        help="compare a finished run's numbers with the published spread over seeds",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run_dirs", type=Path, nargs="*", metavar="RUN_DIR", help="a finished run directory")
    p.add_argument(
        "--published",
        type=Path,
        metavar="FILE",
        default=None,
        help=f"the published-numbers file (default: the one shipped, {published_path()})",
    )
    p.add_argument("--tables", action="store_true", help="print the published numbers as Markdown tables")
    p.add_argument(
        "--update",
        type=Path,
        metavar="PAGE",
        default=None,
        help="with --tables: write them into the Markdown page PAGE between its markers (docs/reproducibility.md)",
    )
    p.set_defaults(func=_cmd_check)


def _cmd_check(args: argparse.Namespace) -> int:
    if args.tables:
        tables = published_tables(load_published(args.published))
        if args.update is None:
            print(tables)
        else:
            write_text_atomic(args.update, splice_tables(args.update.read_text(encoding="utf-8"), tables))
            print(f"written the published tables into {args.update}")
        return 0
    if not args.run_dirs:
        raise ConfigError(
            "name a finished run directory (compmech check RUN_DIR), or print the published numbers "
            "(compmech check --tables)"
        )
    text, ok = check_run_dirs(list(args.run_dirs), args.published)
    print(text)
    return 0 if ok else 1
