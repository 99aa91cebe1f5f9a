"""The published numbers: each shipped experiment's headline numbers as a spread over seeds, shipped with the
package as one data file (``compmech/published/published_numbers.json``), and the check of a user's run against it.

The file is written only by ``compmech reproduce --seeds N --publish FILE`` (`compmech.runs.seed_runs`: the seeds
trained together, then each number's values, mean, sd, min and max, the budget, the command and the machine that
made them); never by hand. ``compmech reproduce --check`` and ``compmech check RUN_DIR`` read it.

The tolerance (`acceptance_k`, the formula once): a user's run is one more draw from the distribution the published
seeds sample (another seed, or the same seed on another CPU: training amplifies a last-bit difference of a float32
reduction into a difference of the size that another seed makes). For n published values with mean m and sample
sd s, the two-sided prediction interval for one more draw of a normal quantity at level ``LEVEL`` is

    m ± k s,   k = t_{n-1, (1 + LEVEL) / 2} · sqrt(1 + 1/n)

(k = 11.46 for n = 3, 5.04 for n = 5, 3.41 for n = 10 at the 99% level). It contains the published range
[min, max] for every n (no value lies further than (n - 1)/sqrt(n) sd from the mean), so it is that range widened.
A number equal over every seed (s = 0) is seed-independent up to float32 rounding: its half-width is at least
``RELATIVE_FLOOR`` |m|. At 99% an honest run falls outside for a given number with probability 1%; the numbers of
one run are strongly correlated (the layers' probe errors move together), so a check of M numbers fails by chance
far less often than M%, but not never: a number just outside while the others sit near the mean says "rerun with
more seeds" before it says "broken".
"""

from __future__ import annotations

import copy
import dataclasses
import importlib.resources
import json
import math
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compmech.runs.errors import ConfigError
from compmech.runs.summary import read_summary

#: The published-numbers file inside the package (package data, found through importlib.resources).
PUBLISHED_FILE = "published_numbers.json"
#: The file's schema version (bumped when a field changes meaning).
SCHEMA = 1
#: The level of the prediction interval a user's value is checked against (see the module docstring).
LEVEL = 0.99
#: The least half-width of the accepted interval, relative to the mean: float32 rounding of a number that no
#: seed changed (about 100 float32 ulps, 2^-23 each).
RELATIVE_FLOOR = 1e-5
#: The budgets a published entry is made at: ``compmech reproduce --quick`` or the config's own steps.
BUDGETS = ("quick", "full")
#: The summary.json ``environment`` fields that must agree between the seeds of one published spread (one machine
#: made them).
SAME_MACHINE = ("cpu", "cpu_features", "libraries", "xla_flags", "python", "jax_backend")
#: The fewest seeds a published spread (an experiment's or a study's) is made of (the issue's "at least 3").
MIN_PUBLISHED_SEEDS = 3


class PublishedError(ConfigError):
    """The published-numbers file is damaged, or holds no entry for what is asked."""


def require_enough_seeds(n_seeds: int, what: str) -> None:
    """Raise `PublishedError` unless a spread over ``n_seeds`` seeds of ``what`` (an experiment or a study) may be
    published (`MIN_PUBLISHED_SEEDS` or more)."""
    if n_seeds < MIN_PUBLISHED_SEEDS:
        raise PublishedError(
            f"--publish needs --seeds {MIN_PUBLISHED_SEEDS} or more (a spread over {n_seeds} seeds says too little); "
            f"got {n_seeds} for {what}"
        )


def machine_differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """The `SAME_MACHINE` fields in which two summary.json ``environment`` records differ (none: one machine)."""
    return [k for k in SAME_MACHINE if a.get(k) != b.get(k)]


def published_path() -> Path:
    """The published-numbers file that ships with compmech (compmech/published/ in the checkout and in a wheel)."""
    return Path(str(importlib.resources.files("compmech") / "published" / PUBLISHED_FILE))


# ------------------------------------------------------------------------------------------ quantities of a run


@dataclass(frozen=True)
class Quantity:
    """One number of a run: a dotted path into its `run_record` (a ratio when ``over`` names a denominator), what
    a table calls it, and a criterion the project states for it (``below``: the number should stay under it)."""

    path: str
    label: str
    over: str | None = None
    below: float | None = None
    paper: float | None = None  # the paper's number for it (Shai et al. 2024), where it reports one

    @property
    def key(self) -> str:
        """The number's identity in the published file (its path, or ``path/over`` for a ratio)."""
        return self.path if self.over is None else f"{self.path}/{self.over}"


#: The held-out probe error on unseen contexts is "well below the control" under 10% of the shuffled control.
CONTROL_CRITERION = 0.10


def run_record(run_dir: str | Path) -> dict[str, Any]:
    """A finished run's numbers as one table: summary.json's fields, plus ``layers`` (probe.json's per-layer
    results) and ``evolution_at`` (the probe refitted over training, by the token count asked for)."""
    run_dir = Path(run_dir)
    record = read_summary(run_dir).to_json()
    try:
        probe = json.loads((run_dir / "probe.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        probe = {}
    try:
        seed = tomllib.loads((run_dir / "config.toml").read_text(encoding="utf-8")).get("seed")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        seed = None
    record["seed"] = seed if isinstance(seed, int) else None
    record["layers"] = probe.get("layers", {})
    record["evolution_at"] = {
        _tokens_key(e): e for e in record.get("evolution") or [] if isinstance(e, dict) and "tokens" in e
    }
    return record


def _tokens_key(entry: Mapping[str, Any]) -> str:
    """An evolution entry's key: the token count asked for ([training] save_at_tokens), else the one reached."""
    return str(int(entry.get("tokens_requested", entry["tokens"])))


def lookup(record: Mapping[str, Any], path: str) -> float | None:
    """The number at ``path`` ("probe.mse", "layers.block_4.mse_heldout_contexts") of a record; None when absent,
    null or not a finite number."""
    node: Any = record
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, (int, float)) or not math.isfinite(node):
        return None
    return float(node)


def value_of(record: Mapping[str, Any], quantity: Quantity) -> float | None:
    """``quantity``'s value in ``record`` (a ratio divided out; None when a part is absent or the denominator 0)."""
    top = lookup(record, quantity.path)
    if quantity.over is None or top is None:
        return top
    bottom = lookup(record, quantity.over)
    return None if not bottom else top / bottom


def quantities_for(record: Mapping[str, Any]) -> list[Quantity]:
    """The headline numbers of a run, named after its layers: relative loss; the headline layer's probe (in sample,
    held out on unseen contexts, the paper's string split, the shuffled control, held-out over control with its
    criterion); the distance geometry; every layer's probe (in sample and on unseen contexts); the probe refitted
    over training at each saved token count. Absent ones (a withheld held-out error) are left out."""
    layer = record.get("probe_layer") or "headline layer"
    analysis = record.get("analysis_layer") or layer
    out = [
        Quantity("relative_loss", "relative loss (CE / optimum)"),
        Quantity("probe.mse", f"probe MSE, in sample ({layer})"),
        Quantity("probe.mse_heldout_contexts", f"held-out MSE on unseen contexts ({layer})"),
        Quantity("probe.mse_heldout", f"held-out MSE, the paper's string split ({layer})"),
        Quantity("probe.mse_shuffled", f"shuffled-control MSE ({layer})"),
        Quantity(
            "probe.mse_heldout_contexts",
            f"held-out MSE on unseen contexts / shuffled control ({layer})",
            over="probe.mse_shuffled",
            below=CONTROL_CRITERION,
        ),
        Quantity("geometry.distance_r2_beliefs", f"distance R² of probed vs true beliefs ({analysis})"),
    ]
    if not (record.get("geometry") or {}).get("next_token_distances_proportional_to_beliefs"):
        # (where next-token distances are belief distances up to scale, the two R² are one number)
        out.append(
            Quantity(
                "geometry.distance_r2_next_token", f"distance R² of probed beliefs vs next-token laws ({analysis})"
            )
        )
    for name in record.get("layers") or {}:
        if name == layer:
            continue  # the headline layer's are above
        out.append(Quantity(f"layers.{name}.mse", f"probe MSE, in sample, {name}"))
        out.append(Quantity(f"layers.{name}.mse_heldout_contexts", f"held-out MSE on unseen contexts, {name}"))
    final = {
        _tokens_key(e)
        for e in record.get("evolution") or []
        if isinstance(e, Mapping) and "tokens" in e and e.get("step") == record.get("steps")
    }
    for tokens in sorted(set(record.get("evolution_at") or {}) - final, key=int):  # the final model's are above
        out.append(Quantity(f"evolution_at.{tokens}.mse", f"probe MSE after {int(tokens):.2g} tokens ({analysis})"))
        out.append(
            Quantity(
                f"evolution_at.{tokens}.mse_heldout_contexts",
                f"held-out MSE after {int(tokens):.2g} tokens ({analysis})",
            )
        )
    return [dataclasses.replace(q, paper=paper_number(record, q)) for q in out if value_of(record, q) is not None]


def paper_number(record: Mapping[str, Any], quantity: Quantity) -> float | None:
    """The paper's number for ``quantity`` (summary.json's ``paper``: `compmech.runs.paper.PAPER_RESULTS`), or None.
    Its unlabelled probe numbers are of the headline layer (after the last block)."""
    paper = record.get("paper") or {}
    path = quantity.path
    if quantity.over is not None or not paper:
        return None
    names = {
        "relative_loss": "relative_loss",
        "probe.mse": "probe_mse",
        "probe.mse_heldout": "probe_mse_heldout",
        "probe.mse_shuffled": "probe_mse_shuffled",
        "geometry.distance_r2_beliefs": "distance_r2_beliefs",
        "geometry.distance_r2_next_token": "distance_r2_next_token",
    }
    by_layer = paper.get("layer_mse") or {}
    found: Any = paper.get(names[path]) if path in names else None
    if path == "probe.mse" and found is None:
        found = by_layer.get(record.get("probe_layer"))
    elif path.startswith("layers.") and path.endswith(".mse"):
        found = by_layer.get(path.split(".")[1])
    elif path.startswith("evolution_at.") and path.endswith(".mse"):
        found = {str(int(k)): v for k, v in (paper.get("probe_mse_over_training") or {}).items()}.get(
            path.split(".")[1]
        )
    return float(found) if isinstance(found, (int, float)) and not isinstance(found, bool) else None


# ------------------------------------------------------------------------------------------------- spreads


def acceptance_k(n: int, level: float = LEVEL) -> float:
    """k of the accepted interval m ± k s for one more draw, from n published values (module docstring):
    t_{n-1, (1+level)/2} · sqrt(1 + 1/n). Raises ValueError for n < 2 (one value has no spread)."""
    if n < 2:
        raise ValueError(f"a spread needs at least 2 seeds; got {n}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1); got {level}")
    from scipy.stats import t  # scipy.stats takes a second to import: only when a check is made

    return float(t.ppf((1 + level) / 2, n - 1) * math.sqrt(1 + 1 / n))


@dataclass(frozen=True)
class Spread:
    """One number over the seeds: its values (in seed order) and their mean, sample sd (n - 1), min and max."""

    values: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.values or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in self.values):
            raise ValueError(f"a spread needs finite values; got {self.values!r}")

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return math.fsum(self.values) / self.n

    @property
    def sd(self) -> float:
        if self.n < 2:
            return 0.0
        m = self.mean
        return math.sqrt(math.fsum((v - m) ** 2 for v in self.values) / (self.n - 1))

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def max(self) -> float:
        return max(self.values)

    def accepted(self, level: float = LEVEL) -> tuple[float, float]:
        """The interval a user's value is checked against: the prediction interval m ± k s (`acceptance_k`), its
        half-width at least ``RELATIVE_FLOOR`` |m|; it contains [min, max]."""
        half = max(acceptance_k(self.n, level) * self.sd, RELATIVE_FLOOR * abs(self.mean))
        return min(self.mean - half, self.min), max(self.mean + half, self.max)

    def meeting(self, below: float) -> int:
        """How many seeds' values lie below ``below``."""
        return sum(v < below for v in self.values)

    def to_json(self) -> dict[str, Any]:
        """Every value (in seed order), mean, sd, min, max and n."""
        return {
            "values": list(self.values),
            "mean": self.mean,
            "sd": self.sd,
            "min": self.min,
            "max": self.max,
            "n": self.n,
        }


@dataclass(frozen=True)
class PublishedNumber:
    """A quantity and its spread over the published seeds."""

    quantity: Quantity
    spread: Spread

    def to_json(self) -> dict[str, Any]:
        s = self.spread
        out = {
            "key": self.quantity.key,
            "label": self.quantity.label,
            "path": self.quantity.path,
            "over": self.quantity.over,
            "below": self.quantity.below,
            "paper": self.quantity.paper,
            **s.to_json(),
        }
        if self.quantity.below is not None:
            out["seeds_below"] = s.meeting(self.quantity.below)
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PublishedNumber:
        q = Quantity(
            path=str(data["path"]),
            label=str(data["label"]),
            over=data.get("over"),
            below=data.get("below"),
            paper=data.get("paper"),
        )
        return cls(q, Spread(tuple(float(v) for v in data["values"])))


# ------------------------------------------------------------------------------------------- the published file


def config_identity(config: Mapping[str, Any]) -> dict[str, Any]:
    """A parsed config.toml without what does not make another experiment: its name, its seed, and [training]
    devices (the same numbers up to float32 reduction order on N or M devices)."""
    out = copy.deepcopy(dict(config))
    out.pop("name", None)
    out.pop("seed", None)
    if isinstance(out.get("training"), dict):
        out["training"].pop("devices", None)
    return out


def first_difference(a: Mapping[str, Any], b: Mapping[str, Any], prefix: str = "") -> str:
    """The first key (dotted) at which two parsed configs differ, as "key: A here, B there"; "" when equal."""
    for key in sorted(set(a) | set(b)):
        x, y = a.get(key), b.get(key)
        if isinstance(x, Mapping) and isinstance(y, Mapping):
            found = first_difference(x, y, f"{prefix}{key}.")
            if found:
                return found
        elif x != y:
            return f"{prefix}{key}: {x!r} here, {y!r} published"
    return ""


@dataclass(frozen=True)
class PublishedEntry:
    """One experiment at one budget over its seeds: what was run (the config without name and seed), by which
    command, on which machine (summary.json's ``environment`` of its first seed), and its numbers."""

    experiment: str
    budget: str  # "quick" | "full"
    steps: int
    seeds: tuple[int, ...]
    command: str  # the command line that wrote this entry
    rerun: str  # the command that reruns exactly these seeds (and checks them: add --check)
    config: dict[str, Any]  # config_identity of the seeds' config
    environment: dict[str, Any]
    made: str  # when (UTC, ISO 8601)
    numbers: tuple[PublishedNumber, ...]
    wall_seconds: float | None = None  # every seed's run, summed (training shared by the seeds counted once each)
    train_elapsed_seconds: float | None = None  # the seeds' shared training (one vmapped step for all)
    paper: dict[str, Any] = field(default_factory=dict)  # the paper's numbers for this process, where it has them

    def __post_init__(self) -> None:
        if self.budget not in BUDGETS:
            raise ValueError(f"budget must be one of {BUDGETS}; got {self.budget!r}")

    def number(self, key: str) -> PublishedNumber | None:
        return next((n for n in self.numbers if n.quantity.key == key), None)

    def to_json(self) -> dict[str, Any]:
        return {
            "experiment": self.experiment,
            "budget": self.budget,
            "steps": self.steps,
            "seeds": list(self.seeds),
            "command": self.command,
            "rerun": self.rerun,
            "made": self.made,
            "wall_seconds": self.wall_seconds,
            "train_elapsed_seconds": self.train_elapsed_seconds,
            "environment": self.environment,
            "config": self.config,
            "paper": self.paper,
            "numbers": [n.to_json() for n in self.numbers],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PublishedEntry:
        return cls(
            experiment=str(data["experiment"]),
            budget=str(data["budget"]),
            steps=int(data["steps"]),
            seeds=tuple(int(s) for s in data["seeds"]),
            command=str(data["command"]),
            rerun=str(data.get("rerun", "")),
            config=dict(data["config"]),
            environment=dict(data.get("environment") or {}),
            made=str(data.get("made", "")),
            numbers=tuple(PublishedNumber.from_json(n) for n in data["numbers"]),
            wall_seconds=data.get("wall_seconds"),
            train_elapsed_seconds=data.get("train_elapsed_seconds"),
            paper=dict(data.get("paper") or {}),
        )


@dataclass(frozen=True)
class Published:
    """The published-numbers file: entries by (experiment, budget), and the level its check uses."""

    entries: tuple[PublishedEntry, ...] = ()
    level: float = LEVEL

    def entry(self, experiment: str, budget: str) -> PublishedEntry | None:
        return next((e for e in self.entries if e.experiment == experiment and e.budget == budget), None)

    def experiments(self, budget: str) -> list[str]:
        """The experiments published at ``budget``, in file order."""
        return [e.experiment for e in self.entries if e.budget == budget]

    def merged(self, new: Iterable[PublishedEntry]) -> Published:
        """These entries with ``new`` replacing any of the same experiment and budget (others kept, in order)."""
        new = list(new)
        replaced = {(e.experiment, e.budget) for e in new}
        kept = [e for e in self.entries if (e.experiment, e.budget) not in replaced]
        return Published(tuple(kept + new), self.level)

    def match(self, config: Mapping[str, Any]) -> PublishedEntry:
        """The entry whose config is ``config`` (a parsed config.toml) but for name, seed and devices. Raises
        `PublishedError` naming the nearest entry and the first key where it differs."""
        mine = config_identity(config)
        for entry in self.entries:
            if entry.config == mine:
                return entry
        if not self.entries:
            raise PublishedError(
                "the published-numbers file holds no entries; make them with compmech reproduce "
                "--seeds 3 --publish FILE"
            )
        name = (config.get("process") or {}).get("name")
        near = sorted(
            self.entries,
            key=lambda e: (e.config.get("process") != mine.get("process"), e.experiment != name, e.budget != "full"),
        )[0]
        raise PublishedError(
            f"this run's config matches no published one; the nearest, {near.experiment} at the "
            f"{near.budget} budget, differs at {first_difference(mine, near.config)} (published: "
            f"{', '.join(f'{e.experiment} ({e.budget})' for e in self.entries)}; run one with "
            f"compmech reproduce [--quick] --only NAME, or compmech run NAME)"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "about": "Written by compmech reproduce --seeds N --publish FILE, never by hand: each experiment's "
            "numbers over its seeds (trained together), with the command and the machine that made "
            "them. compmech reproduce --check and compmech check RUN_DIR compare a run with them.",
            "tolerance": {
                "level": self.level,
                "relative_floor": RELATIVE_FLOOR,
                "rule": "accepted: mean ± k sd, k = t_{n-1,(1+level)/2} sqrt(1 + 1/n) (the prediction "
                "interval for one more seed; it contains [min, max]); half-width at least "
                "relative_floor |mean|",
            },
            "entries": [e.to_json() for e in self.entries],
        }

    @classmethod
    def from_json(cls, data: Any) -> Published:
        if not isinstance(data, Mapping) or not isinstance(data.get("entries"), list):
            raise ValueError("it is not a published-numbers table (no 'entries' list)")
        if data.get("schema") != SCHEMA:
            raise ValueError(f"its schema is {data.get('schema')!r}; this compmech reads schema {SCHEMA}")
        level = float((data.get("tolerance") or {}).get("level", LEVEL))
        return cls(tuple(PublishedEntry.from_json(e) for e in data["entries"]), level)


def load_published(path: str | Path | None = None) -> Published:
    """The published numbers in ``path`` (default: the file that ships with compmech). A missing file holds no
    entries; a damaged one raises `PublishedError` naming it."""
    path = Path(path) if path is not None else published_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Published()
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise PublishedError(
            f"{path} cannot be read ({exc}); regenerate it with compmech reproduce --seeds 3 --publish FILE"
        ) from None
    try:
        return Published.from_json(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise PublishedError(
            f"{path} is damaged: {exc}; regenerate it with compmech reproduce --seeds 3 --publish FILE"
        ) from None


# ------------------------------------------------------------------------------------------------- the check


@dataclass(frozen=True)
class Verdict:
    """One number of a user's run against its published spread."""

    experiment: str
    number: PublishedNumber
    accepted: tuple[float, float]
    value: float | None  # None: the run has no such number
    seed: int | None = None

    @property
    def inside(self) -> bool | None:
        if self.value is None:
            return None
        return self.accepted[0] <= self.value <= self.accepted[1]


def check_record(entry: PublishedEntry, record: Mapping[str, Any], level: float = LEVEL) -> list[Verdict]:
    """Every published number of ``entry`` against the same number of a run (its `run_record`)."""
    seed = record.get("seed") if isinstance(record.get("seed"), int) else None
    return [
        Verdict(entry.experiment, n, n.spread.accepted(level), value_of(record, n.quantity), seed)
        for n in entry.numbers
    ]


def _num(v: float | None) -> str:
    """Four significant digits; seven near 1 (relative losses 1.000186 and 1.000193 differ)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{v:.7g}" if 0.99 < abs(v) < 1.01 else f"{v:.4g}"


def _pm(spread: Spread) -> str:
    return f"{_num(spread.mean)} ± {spread.sd:.2g}"


def format_verdicts(verdicts: Sequence[Verdict], level: float = LEVEL) -> str:
    """The check as a Markdown table: per number the published mean ± sd (min–max, n), the accepted interval, the
    user's value and whether it lies inside."""
    lines = [
        f"| experiment | seed | quantity | published mean ± sd | published min–max (n) | accepted ({level:.0%}) "
        "| yours | |",
        "|---|---:|---|---:|---:|---:|---:|---|",
    ]
    for v in verdicts:
        s = v.number.spread
        mark = {True: "ok", False: "**OUTSIDE**", None: "missing"}[v.inside]
        lines.append(
            f"| {v.experiment} | {'' if v.seed is None else v.seed} | {v.number.quantity.label} | {_pm(s)} | "
            f"{_num(s.min)}–{_num(s.max)} ({s.n}) | [{_num(v.accepted[0])}, {_num(v.accepted[1])}] | "
            f"{_num(v.value)} | {mark} |"
        )
    return "\n".join(lines) + "\n"


def environment_differences(published: Mapping[str, Any], mine: Mapping[str, Any]) -> list[str]:
    """What differs between the machine that made an entry and a run's: CPU, library versions, XLA flags, Python."""
    out = []
    for key in ("cpu", "cpu_features"):
        if published.get(key) != mine.get(key):
            out.append(f"{key}: {mine.get(key)!r} here, {published.get(key)!r} published")
    libs, my_libs = published.get("libraries") or {}, mine.get("libraries") or {}
    for name in sorted(set(libs) | set(my_libs)):
        if libs.get(name) != my_libs.get(name):
            out.append(f"{name}: {my_libs.get(name)} here, {libs.get(name)} published")
    for key in ("python", "compmech", "xla_flags", "jax_backend"):
        if published.get(key) != mine.get(key):
            out.append(f"{key}: {mine.get(key)!r} here, {published.get(key)!r} published")
    return out


def verdict_summary(
    verdicts: Sequence[Verdict],
    entries: Mapping[str, PublishedEntry],
    environments: Mapping[str, Mapping[str, Any]],
    level: float = LEVEL,
) -> str:
    """The check's last lines: how many numbers lie inside; when some do not, which and what to try (the versions
    and CPU that made the table, more seeds)."""
    inside = [v for v in verdicts if v.inside]
    outside = [v for v in verdicts if v.inside is False]
    missing = [v for v in verdicts if v.inside is None]
    ns = sorted({v.number.spread.n for v in verdicts})
    ks = ", ".join(f"k = {acceptance_k(n, level):.3g} for n = {n}" for n in ns if n >= 2)
    lines = [
        f"{len(inside)} of {len(verdicts)} numbers lie within the published spread widened to the {level:.0%} "
        f"prediction interval for one more seed (mean ± k sd, {ks})"
        + (f"; {len(missing)} the run does not have" if missing else "")
        + "."
    ]
    if not outside:
        return "\n".join(lines) + "\n"
    lines.append(
        f"OUTSIDE: {len(outside)} number(s): "
        + "; ".join(
            f"{v.experiment}{'' if v.seed is None else f' seed {v.seed}'} {v.number.quantity.label} "
            f"= {_num(v.value)}, accepted [{_num(v.accepted[0])}, {_num(v.accepted[1])}]"
            for v in outside
        )
        + "."
    )
    lines.append("What to try:")
    for name in sorted({v.experiment for v in outside}):
        entry = entries[name]
        mine = environments.get(name, {})
        diffs = environment_differences(entry.environment, mine)
        libs, my_libs = entry.environment.get("libraries") or {}, mine.get("libraries") or {}
        pins = " ".join(f"{k}=={v}" for k, v in sorted(libs.items()) if v and my_libs.get(k) != v)
        lines.append(
            f"- {name}: the table was made by `{entry.rerun or entry.command}` on {entry.made[:10]} "
            f"({len(entry.seeds)} seeds, {entry.budget} budget). "
            + (
                "Your machine differs: "
                + "; ".join(diffs)
                + "."
                + (f" Install the versions that made the table (pip install {pins}) and check again." if pins else "")
                + " Another CPU alone can move a number by about a seed's spread."
                if diffs
                else "Your machine and versions are those that made the table: a number outside is more than "
                "float32 rounding. Is the install complete (compmech --version), the run unmodified?"
            )
        )
    quick = " --quick" if entries[outside[0].experiment].budget == "quick" else ""
    names = " ".join(sorted({v.experiment for v in outside}))
    lines.append(
        f"- More seeds: `compmech reproduce --check --seeds 5{quick} --only {names}` trains five seeds "
        "together and checks each: if most lie inside, yours was a tail draw (with 3 published seeds the sd "
        "itself is uncertain by about half); if most lie outside, the result moved on your machine: report "
        "it with your summary.json's environment."
    )
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------- tables


def spread_table(entry: PublishedEntry) -> str:
    """One entry as Markdown: a heading line with its budget, seeds, command and machine, then per number the mean
    ± sd, min–max, each seed's value, and for a number with a criterion how many seeds meet it."""
    env = entry.environment
    libs = env.get("libraries") or {}
    accelerators = [d for d in env.get("devices") or [] if not str(d).startswith("cpu")]  # e.g. cuda:0
    budget = (
        f"quick budget ({entry.steps} steps, labelled as such: not the config's full budget)"
        if entry.budget == "quick"
        else f"full budget ({entry.steps} steps)"
    )
    head = (
        f"**{entry.experiment}**, {budget}, seeds {', '.join(map(str, entry.seeds))} trained together. "
        f"Made by `{entry.command}` on {entry.made[:10]}: {env.get('cpu', '?')}"
        + (f" ({env['cpu_features']})" if env.get("cpu_features") else "")
        + f", Python {env.get('python', '?')}, "
        f"jax {libs.get('jax', '?')}, flax {libs.get('flax', '?')}"
        + (f", XLA_FLAGS={env['xla_flags']!r}" if env.get("xla_flags") else "")
        + (f", trained on {', '.join(accelerators)}" if accelerators else "")
        + "."
    )
    header = ["| quantity | mean ± sd | min–max | seeds | paper | criterion |", "|---|---:|---:|---:|---:|---|"]

    def row(n: PublishedNumber) -> str:
        s, q = n.spread, n.quantity
        crit = "" if q.below is None else f"< {q.below:g}: met by {s.meeting(q.below)} of {s.n} seeds"
        return (
            f"| {q.label} | {_pm(s)} | {_num(s.min)}–{_num(s.max)} | {' / '.join(_num(v) for v in s.values)} "
            f"| {_num(q.paper)} | {crit} |"
        )

    detail = [n for n in entry.numbers if n.quantity.path.startswith(("layers.", "evolution_at."))]
    lines = [head, "", *header, *(row(n) for n in entry.numbers if n not in detail)]
    if detail:
        lines += [
            "",
            f"<details><summary>{entry.experiment} ({entry.budget}): every layer, and the probe over "
            "training</summary>",
            "",
            *header,
            *(row(n) for n in detail),
            "",
            "</details>",
        ]
    return "\n".join(lines) + "\n"


def published_tables(published: Published) -> str:
    """Every entry's table, full budgets first (what docs/reproducibility.md shows between its markers)."""
    order = sorted(published.entries, key=lambda e: (e.budget != "full", e.experiment))
    return "\n".join(spread_table(e) for e in order)


#: The markers between which a Markdown page shows `published_tables` (docs/reproducibility.md).
TABLES_BEGIN, TABLES_END = "<!-- published tables: begin -->\n", "<!-- published tables: end -->"


def splice_tables(page: str, tables: str) -> str:
    """``page`` with the text between its markers replaced by ``tables``. Raises ValueError when a marker is
    missing."""
    if TABLES_BEGIN not in page or TABLES_END not in page:
        raise ValueError(f"the page has no {TABLES_BEGIN.strip()} ... {TABLES_END} markers to write the tables between")
    head, rest = page.split(TABLES_BEGIN, 1)
    return head + TABLES_BEGIN + "\n" + tables.strip() + "\n\n" + TABLES_END + rest.split(TABLES_END, 1)[1]
