"""A study's tables over seeds: ``compmech reproduce --only STUDY --seeds N [--quick]``.

The study's ``reproduce`` entry runs N times, once per seed offset i = 0..N-1, each into ``<out>/seeds/seed=<i>/``
with every run's seed raised by i (the `compmech.studies.Runner` it is handed adds the offset to each config it
checks and runs, sweeps' points included; a config read back from a run directory keeps the seed it ran with).
Finished runs are reused, so a later ``--seeds M`` (M > N) trains only the new offsets. Then:

- ``<out>/<study>-seeds.json``: every number of the study's ``<study>.json`` that all N copies hold at the same path
  (bools and strings aside), as a spread over the seeds: its values in seed order, mean, sample sd, min and max
  (`compmech.runs.published.Spread`, the formula once);
- ``<out>/<study>-seeds.md``: the study's own Markdown (seed offset 0's ``<study>.md``) with every table cell's number
  that differs between the seeds written ``mean ± sd`` over the N seeds (to the digits seed 0's table printed, or to the
  sd's first significant digit where those would print it as 0); a number equal in every copy (a label, a count the
  seeds agree on) is left as it was; in a cell that carries its own errors ("x ± e"), each estimate is written
  ``mean (sd s)`` and the errors are seed 0's; a cell whose words differ between the copies (a verdict "yes" for one
  seed and "no" for another, a different count of numbers) keeps seed 0's text, marked ``(seed 0; seeds: ...)`` with
  every seed's cell. A table is found in each copy by its header, so lines a seed prints and another does not (a list
  of flagged positions) do not shift the rest; rows line up in order when every copy's table has as many, otherwise by
  their first cell, and a row only some seeds have is merged over those and says whose it is
  (``| 11 (seeds 0, 2 only) | ...``). min–max and every value are in the JSON.

Seeds here run one after another (each study's runs are its own configs, of different shapes), not vmapped
together as ``--seeds`` does for one experiment config.

With ``--publish FILE`` (3 seeds or more) the page and the spreads are also written to FILE as a `PublishedStudy`
(the package's are ``compmech/published/studies/<study>-<budget>.json``, package data beside the experiments'
``published_numbers.json``; written only this way). A study's README shows its tables over seeds between the markers
``<!-- published seeds: STUDY BUDGET -->`` and ``<!-- published seeds: end -->``; every table row between them must
be a row of the published page (`rows_not_published`; a test holds every README to its file).
"""

from __future__ import annotations

import importlib.resources
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compmech.runs.files import write_json_atomic
from compmech.runs.published import BUDGETS, PublishedError, Spread, machine_differences, require_enough_seeds

#: The folder of ``<out>`` that holds one copy of the study per seed offset.
SEEDS_DIR = "seeds"

# A number inside a Markdown cell: not part of a word or a name (block_4, seed=3 keeps its digit: "=" counts as
# a word join here), optionally signed, with thousands separators ("16,978" is one number), decimals and an exponent;
# a trailing % is kept by the caller.
_NUMBER = re.compile(r"(?<![\w.=/])[-−]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])")


def seed_dir(out: Path, offset: int) -> Path:
    """Where seed offset ``offset``'s copy of the study is written."""
    return Path(out) / SEEDS_DIR / f"seed={offset}"


@dataclass(frozen=True)
class SeedNumber:
    """One number of the study's JSON over the seeds: its path (keys and list indices joined by ".")."""

    path: str
    spread: Spread

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, **self.spread.to_json()}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SeedNumber:
        return cls(str(data["path"]), Spread(tuple(float(v) for v in data["values"])))


def numeric_leaves(data: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    """Every finite int or float in a JSON value with its dotted path (bools, strings and nulls skipped).

    Examples
    --------
    >>> list(numeric_leaves({"a": [1.5, {"b": 2}], "c": True, "d": None}))
    [('a.0', 1.5), ('a.1.b', 2.0)]
    """
    if isinstance(data, bool) or data is None:
        return
    if isinstance(data, (int, float)):
        if math.isfinite(data):
            yield prefix, float(data)
        return
    if isinstance(data, Mapping):
        for k, v in data.items():
            yield from numeric_leaves(v, f"{prefix}.{k}" if prefix else str(k))
    elif isinstance(data, (list, tuple)):
        for i, v in enumerate(data):
            yield from numeric_leaves(v, f"{prefix}.{i}" if prefix else str(i))


def spreads_over_seeds(copies: Sequence[Any]) -> list[SeedNumber]:
    """The numbers every copy holds at the same path, as spreads (in the first copy's order).

    Examples
    --------
    >>> [(n.path, n.spread.mean) for n in spreads_over_seeds([{"x": 1.0, "y": 3}, {"x": 2.0}])]
    [('x', 1.5)]
    """
    if not copies:
        raise ValueError("spreads over seeds need at least one copy of the study's results")
    tables = [dict(numeric_leaves(c)) for c in copies]
    first = list(numeric_leaves(copies[0]))
    return [
        SeedNumber(path, Spread(tuple(t[path] for t in tables))) for path, _ in first if all(path in t for t in tables)
    ]


def _decimals(token: str) -> tuple[str, int]:
    """How seed 0's table printed a number: ("f", decimals) or ("e", mantissa decimals)."""
    body = token.lstrip("-−")
    if "e" in body.lower():
        mantissa = re.split("[eE]", body)[0]
        return "e", len(mantissa.split(".")[1]) if "." in mantissa else 0
    return "f", len(body.split(".")[1]) if "." in body else 0


_MAX_DECIMALS = 12  # an sd below 1e-12 (float noise between seeds) prints as 0 at 12 decimals


def _mean_sd(token: str, values: Sequence[float], own_errors: bool = False) -> str:
    """``mean ± sd`` over the seeds, to the digits of seed 0's ``token``; ``mean (sd s)`` in a cell that carries its own
    ± errors (so the seeds' spread is not read as one of them). An sd that those digits would print as 0 (seeds that
    differ below seed 0's last digit) is printed to its first significant digit instead, and the mean to as many
    decimals: "0.90 ± 0.04", not "0.9 ± 0.0"."""
    spread = Spread(tuple(values))
    kind, d = _decimals(token)
    if kind == "e":
        mean, sd = f"{spread.mean:.{d}e}", f"{spread.sd:.1e}"
    else:
        d = max(d, 1) if d == 0 and spread.sd < 1 else d  # integers that vary (a count) get one decimal
        if 0 < spread.sd < 0.5 * 10.0**-d:  # an sd that seed 0's digits would print as 0: to its first digit
            d = min(-math.floor(math.log10(spread.sd)), _MAX_DECIMALS)
        comma = "," if "," in token else ""  # thousands separators as seed 0's table wrote them
        mean, sd = f"{spread.mean:{comma}.{d}f}", f"{spread.sd:{comma}.{d}f}"
    return f"{mean} (sd {sd})" if own_errors else f"{mean} ± {sd}"


def _as_float(token: str) -> float:
    return float(token.replace("−", "-").replace(",", ""))


def _cell_over_seeds(cells: Sequence[str]) -> str:
    """Seed 0's cell with each number that differs between the copies written mean ± sd; in a cell that carries its
    own errors ("x ± e"), each estimate reads "mean (sd s)" and the errors after a ± are seed 0's."""
    words = [_NUMBER.sub("#", c).strip() for c in cells]  # the cell's text without its numbers
    if any(w != words[0] for w in words):  # a verdict, a label or a count of numbers that differs between seeds
        each = [c.strip() for c in cells]
        said = ", ".join(each) if all(len(c) <= 24 for c in each) else "they differ"
        return f" {each[0]} (seed 0; seeds: {said}) "
    tokens = [_NUMBER.findall(c) for c in cells]
    columns = [[_as_float(t[i]) for t in tokens] for i in range(len(tokens[0]))]
    counter = iter(range(len(columns)))
    own_errors = "±" in cells[0]

    def replace(match: re.Match[str]) -> str:
        i = next(counter)
        values = columns[i]
        if all(v == values[0] for v in values):
            return match.group(0)
        if own_errors and cells[0][: match.start()].rstrip().endswith("±"):
            return match.group(0)  # an error of seed 0's estimate
        return _mean_sd(match.group(0), values, own_errors)

    return _NUMBER.sub(replace, cells[0])


def _cells(line: str) -> list[str] | None:
    s = line.strip()
    if not (s.startswith("|") and s.endswith("|")) or len(s) < 2:
        return None
    return s[1:-1].split("|")


def _blocks(lines: Sequence[str]) -> list[str | list[str]]:
    """A page as its lines outside tables (str) and its tables (each a list of consecutive table lines)."""
    blocks: list[str | list[str]] = []
    for line in lines:
        if _cells(line) is None:
            blocks.append(line)
        elif blocks and isinstance(blocks[-1], list):
            blocks[-1].append(line)
        else:
            blocks.append([line])
    return blocks


def _numbered(names: Sequence[str]) -> list[tuple[str, int]]:
    """Each name with how many times it came before: the key that tells repeats apart (two tables with one header, two
    rows with one first cell)."""
    counts: dict[str, int] = {}
    keys: list[tuple[str, int]] = []
    for name in names:
        keys.append((name, counts.get(name, 0)))
        counts[name] = counts.get(name, 0) + 1
    return keys


def _tables_by_header(blocks: Sequence[str | list[str]]) -> dict[tuple[str, int], list[str]]:
    """A page's tables by (header line, how many tables with that header came before): the key that finds the same
    table in another seed's page however many lines or tables come before it."""
    tables = [b for b in blocks if isinstance(b, list)]
    return dict(zip(_numbered([t[0].strip() for t in tables]), tables, strict=True))


def _head_and_body(table: Sequence[str]) -> tuple[list[str], list[str]]:
    """A table's lines down to its separator row (inclusive), and its body rows (none when it has no separator)."""
    for i, line in enumerate(table):
        cells = _cells(line)
        if cells is not None and set("".join(cells).strip()) <= set("-: "):
            return list(table[: i + 1]), list(table[i + 1 :])
    return list(table), []


def _row_keys(body: Sequence[str]) -> list[tuple[str, int]]:
    """Each body row's key: its first cell, and how many rows before it had that first cell."""
    return _numbered([(cells[0] if (cells := _cells(line)) else line).strip() for line in body])


def _union_order(orders: Sequence[Sequence[tuple[str, int]]]) -> list[tuple[str, int]]:
    """The keys of every order, each once: the first order's, and each key another order adds just before the next
    key of that order already placed (at the end when none follows); keys that are all numbers in numeric order."""
    merged = list(orders[0])
    for order in orders[1:]:
        for i, key in enumerate(order):
            if key in merged:
                continue
            following = next((k for k in order[i + 1 :] if k in merged), None)
            merged.insert(merged.index(following) if following is not None else len(merged), key)
    if all(_NUMBER.fullmatch(first) for first, _ in merged):  # rows keyed by a number (a position): in its order
        merged.sort(key=lambda k: (_as_float(k[0]), k[1]))
    return merged


def _merged_row(rows: Sequence[list[str]], seeds: Sequence[int], n_copies: int) -> str:
    """One body row over the seeds that have it (``rows[i]`` is seed ``seeds[i]``'s cells); a row not every seed's
    table has says whose it is in its first cell."""
    if any(len(r) != len(rows[0]) for r in rows):  # a row that does not line up: the first seed's cells
        rows, seeds = rows[:1], seeds[:1]
    merged = [_cell_over_seeds([r[j] for r in rows]) for j in range(len(rows[0]))]
    merged = [m if m.startswith(" ") else f" {m} " for m in merged]
    if len(seeds) < n_copies:
        whose = f"seed {seeds[0]}" if len(seeds) == 1 else "seeds " + ", ".join(str(i) for i in seeds)
        merged[0] = f"{merged[0].rstrip()} ({whose} only) "
    return "|" + "|".join(merged) + "|"


def _table_over_seeds(tables: Sequence[list[str] | None]) -> list[str]:
    """Seed 0's table (``tables[0]``) over the copies that have it (None: a copy without this table): rows that line
    up (the same count) merge in order, otherwise by their first cell; a row some copies lack is merged over those that
    have it and says so."""
    head, body0 = _head_and_body(tables[0] or [])
    bodies = [_head_and_body(t)[1] if t is not None else None for t in tables]
    have = [i for i, b in enumerate(bodies) if b is not None]
    if all(len(b) == len(body0) for b in bodies if b is not None):
        keyed = [[(str(r), 0) for r in range(len(body0))] if b is not None else [] for b in bodies]
    else:
        keyed = [_row_keys(b) if b is not None else [] for b in bodies]
    rows_by_key = [dict(zip(k, b or [], strict=True)) for k, b in zip(keyed, bodies, strict=True)]
    out = list(head)
    for key in _union_order([keyed[i] for i in have]):
        seeds = [i for i in have if key in rows_by_key[i]]
        cells = [_cells(rows_by_key[i][key]) for i in seeds]
        out.append(_merged_row([c for c in cells if c is not None], seeds, len(tables)))
    return out


def markdown_over_seeds(texts: Sequence[str], n_label: str) -> str:
    """Seed 0's Markdown with every table body cell's varying numbers as mean ± sd over the copies (the module
    docstring). Lines outside tables, header rows and separators are seed 0's. A table is found in each copy by its
    header (and how many tables with that header came before); its rows merge in order when every copy has as many,
    otherwise by their first cell, and a row that only some copies have is merged over those, its first cell saying
    whose it is ("(seeds 0, 2 only)"). ``n_label`` heads the page (what was run, how many seeds).

    Examples
    --------
    >>> table = "| a | b |\\n|---|---|\\n| x1 | {} |"
    >>> page = markdown_over_seeds([table.format("0.10"), table.format("0.30")], "2 seeds")
    >>> page.splitlines()[-1]
    '| x1 | 0.20 ± 0.14 |'
    >>> flagged = ["| t | loss |\\n|---|---|\\n| 3 | 0.5 |", "| t | loss |\\n|---|---|\\n| 3 | 0.7 |\\n| 9 | 0.2 |"]
    >>> markdown_over_seeds(flagged, "2 seeds").splitlines()[-2:]
    ['| 3 | 0.6 ± 0.1 |', '| 9 (seed 1 only) | 0.2 |']
    """
    if not texts:
        raise ValueError("a table over seeds needs at least one copy")
    pages = [_blocks(t.splitlines()) for t in texts]
    others = [_tables_by_header(p) for p in pages[1:]]
    out = [n_label, ""]
    keys = iter(_tables_by_header(pages[0]))  # seed 0's tables' keys, in the page's order
    for block in pages[0]:
        if isinstance(block, str):
            out.append(block)
        else:
            key = next(keys)
            out.extend(_table_over_seeds([block, *(o.get(key) for o in others)]))
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------------- a study's published spreads

#: The package folder (under compmech/published/) that holds the studies' published spreads.
PUBLISHED_STUDIES = "studies"
#: The schema of a published study file (bumped when a field changes meaning).
STUDY_SCHEMA = 1
# The README markers around a study's published tables over seeds: <!-- published seeds: STUDY BUDGET --> ... end.
_MARK = re.compile(r"<!--\s*published seeds:\s*(\S+)(?:\s+(\S+))?\s*-->")


@dataclass(frozen=True)
class PublishedStudy:
    """A study's tables over seeds, as shipped: the study, the budget (``quick`` or ``full``), how many seed copies,
    the command that wrote it and the one that reruns it, when and where (summary.json's ``environment`` of this
    machine), the page over the seeds (``markdown``: every varying number mean ± sd) and every number's spread."""

    study: str
    budget: str  # "quick" | "full"
    n_seeds: int
    command: str
    rerun: str
    made: str  # when (UTC, ISO 8601)
    environment: dict[str, Any]
    markdown: str
    numbers: tuple[SeedNumber, ...]

    def __post_init__(self) -> None:
        if self.budget not in BUDGETS:
            raise ValueError(f"budget must be one of {BUDGETS}; got {self.budget!r}")

    def table_rows(self) -> set[str]:
        """The body rows of the page's tables (stripped lines that start and end with "|")."""
        return {line.strip() for line in self.markdown.splitlines() if _cells(line) is not None}

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": STUDY_SCHEMA,
            "study": self.study,
            "budget": self.budget,
            "n_seeds": self.n_seeds,
            "command": self.command,
            "rerun": self.rerun,
            "made": self.made,
            "environment": self.environment,
            "markdown": self.markdown,
            "numbers": [n.to_json() for n in self.numbers],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PublishedStudy:
        if data.get("schema") != STUDY_SCHEMA:
            raise ValueError(f"its schema is {data.get('schema')!r}; this compmech reads schema {STUDY_SCHEMA}")
        return cls(
            study=str(data["study"]),
            budget=str(data["budget"]),
            n_seeds=int(data["n_seeds"]),
            command=str(data["command"]),
            rerun=str(data["rerun"]),
            made=str(data.get("made", "")),
            environment=dict(data.get("environment") or {}),
            markdown=str(data["markdown"]),
            numbers=tuple(SeedNumber.from_json(n) for n in data["numbers"]),
        )


def published_studies_dir() -> Path:
    """The folder of the studies' published spreads that ships with compmech (compmech/published/studies/)."""
    return Path(str(importlib.resources.files("compmech") / "published" / PUBLISHED_STUDIES))


def published_study_path(study: str, budget: str) -> Path:
    """Where the package keeps ``study``'s published spread at ``budget``:
    ``<published>/studies/<study>-<budget>.json``."""
    return published_studies_dir() / f"{study}-{budget}.json"


def load_published_study(path: str | Path) -> PublishedStudy:
    """The `PublishedStudy` in ``path``; a missing or damaged file raises `PublishedError` naming it and the command
    that writes it."""
    path = Path(path)
    fix = "write it with compmech reproduce --only STUDY --seeds 3 [--quick] --publish FILE"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PublishedError(f"{path} cannot be read ({exc}); {fix}") from None
    try:
        return PublishedStudy.from_json(data)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise PublishedError(f"{path} is damaged: {exc}; {fix}") from None


def publish_study(path: str | Path, record: PublishedStudy) -> None:
    """Write ``record`` to ``path`` atomically (the one way a published study file is written)."""
    require_enough_seeds(record.n_seeds, record.study)
    write_json_atomic(Path(path), record.to_json())


def marked_rows(page: str) -> dict[tuple[str, str], list[str]]:
    """The table rows a README shows between ``<!-- published seeds: STUDY BUDGET -->`` and
    ``<!-- published seeds: end -->``, by (study, budget).

    Examples
    --------
    >>> page = "<!-- published seeds: icl quick -->\\n| a | b |\\n|---|---|\\n| x | 1 |\\n<!-- published seeds: end -->"
    >>> marked_rows(page)
    {('icl', 'quick'): ['| a | b |', '|---|---|', '| x | 1 |']}
    """
    found: dict[tuple[str, str], list[str]] = {}
    open_key: tuple[str, str] | None = None
    for number, line in enumerate(page.splitlines(), 1):
        match = _MARK.search(line)
        if match and match.group(1) == "end" and match.group(2) is None:
            if open_key is None:
                raise ValueError(f"line {number}: 'published seeds: end' without an opening marker")
            open_key = None
        elif match:
            if open_key is not None or match.group(2) is None:
                raise ValueError(f"line {number}: expected <!-- published seeds: STUDY BUDGET --> after an end marker")
            open_key = (match.group(1), match.group(2))
            found.setdefault(open_key, [])
        elif open_key is not None and line.strip().startswith("|"):  # a row, or a line that should have been one
            found[open_key].append(line.strip())
    if open_key is not None:
        raise ValueError(f"the marker for {open_key[0]} {open_key[1]} is never closed (<!-- published seeds: end -->)")
    return found


def rows_not_published(rows: Sequence[str], record: PublishedStudy) -> list[str]:
    """The rows of ``rows`` (a README's marked table rows) that are not rows of the published page, in order."""
    published = record.table_rows()
    return [r for r in rows if r.strip() not in published]


def copies_environment(copies: Sequence[Path]) -> dict[str, Any]:
    """The machine every run of the seed copies ran on (their summary.json ``environment``); raises `PublishedError`
    when two runs ran on machines that differ (`machine_differences`) (one published spread is one machine's)."""
    envs: list[tuple[Path, dict[str, Any]]] = []
    for copy in copies:
        for summary in sorted(Path(copy).rglob("summary.json")):
            try:
                env = json.loads(summary.read_text(encoding="utf-8")).get("environment")
            except (OSError, ValueError):
                continue
            if isinstance(env, dict):
                envs.append((summary.parent, env))
    if not envs:
        return {}
    first_dir, first = envs[0]
    for where, env in envs[1:]:
        differing = machine_differences(env, first)
        if differing:
            raise PublishedError(
                f"{where} ran on another machine than {first_dir} ({', '.join(differing)} differ): one published "
                "spread is one machine's; delete the older copies and run again"
            )
    return first
