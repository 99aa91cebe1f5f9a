"""The architecture study's table: two rows per run (the best single layer and "concat"), the Markdown table and,
per process, which architectures found the geometry (`FOUND_FRACTION`)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compmech.runs.summary import RunSummary
from compmech.studies.architectures.study_file import ArchitectureStudy, StudyRun

#: A probe "finds the geometry" when its context-disjoint held-out MSE is at most this fraction of the
#: shuffled-target control's MSE (issue 9's criterion; the figure's titles use the same one).
FOUND_FRACTION = 0.10


@dataclass(frozen=True)
class ArchitectureRow:
    """One line of the table: one layer choice of one run.

    ``layer`` is the best single probed layer (lowest context-disjoint held-out MSE; the choice uses
    that same number, so it is slightly optimistic) or ``"concat"`` (all probed layers side by side).
    ``mse_untrained`` is the context-disjoint held-out MSE of the same layer of the model at
    initialisation (None for concat, which the runner does not probe untrained).
    """

    process: str
    kind: str
    n_params: int
    relative_loss: float  # final CE / optimal CE (1 = Bayes optimal)
    layer: str
    choice: str  # "best single layer" | "concat"
    mse_heldout_contexts: float | None
    r2_heldout_contexts: float | None
    mse_shuffled: float
    mse_untrained: float | None
    mse: float  # in-sample MSE
    heldout_over_shuffled: float | None
    found: bool | None  # heldout_over_shuffled <= FOUND_FRACTION (None when there is no held-out MSE)
    steps: int
    tokens: int
    wall_seconds: float
    run_dir: str

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or not b > 0 else a / b


def architecture_rows(run: StudyRun, summary: RunSummary, probe: dict[str, Any], run_dir: Path
                      ) -> list[ArchitectureRow]:
    """The run's two rows: its best single layer (lowest context-disjoint held-out MSE) and concat."""
    layers = probe["layers"]
    single = [n for n in layers if n != "concat"]

    def key(name: str) -> tuple[bool, float]:  # layers without a held-out MSE come last, by in-sample MSE
        v = layers[name].get("mse_heldout_contexts")
        return (v is None, layers[name]["mse"] if v is None else v)

    best = min(single, key=key)
    untrained = probe.get("untrained_by_layer") or {}
    rows = []
    for layer, choice in ((best, "best single layer"), ("concat", "concat")):
        if layer not in layers:
            continue
        res = layers[layer]
        held = res.get("mse_heldout_contexts")
        ratio = _ratio(held, res["mse_shuffled"])
        rows.append(ArchitectureRow(
            process=run.process, kind=run.kind, n_params=int(summary.model.n_params),
            relative_loss=float(summary.relative_loss), layer=layer, choice=choice,
            mse_heldout_contexts=held, r2_heldout_contexts=res.get("r2_heldout_contexts"),
            mse_shuffled=float(res["mse_shuffled"]),
            mse_untrained=(untrained.get(layer) or {}).get("mse_heldout_contexts"),
            mse=float(res["mse"]), heldout_over_shuffled=ratio,
            found=None if ratio is None else bool(ratio <= FOUND_FRACTION),
            steps=int(summary.steps), tokens=int(summary.tokens),
            wall_seconds=float(summary.wall_seconds), run_dir=str(run_dir)))
    return rows


def _num(v: float | None, fmt: str = ".3g") -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def percent(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.2g}%"


def format_markdown(rows: list[ArchitectureRow], study: ArchitectureStudy, wall_seconds: float | None = None) -> str:
    """The table and, per process, which architectures found the geometry."""
    budget = "quick budget" if study.quick else "full budget"
    lines = [f"# Architecture independence of the belief geometry ({study.name}, {budget})", "",
             f"Study file `{study.source}`; one run directory per process and architecture. The runs' own wall "
             f"times sum to {sum(r.wall_seconds for r in rows if r.choice != 'concat') / 60:.1f} min"
             + (f"; this call took {wall_seconds / 60:.1f} min (finished runs are reused)." if wall_seconds is not None
                else "."), "",
             "Held out = context-disjoint held-out probe MSE (no context in both fit and test); the best single "
             "layer is chosen by that same number (slightly optimistic). Shuffled = the shuffled-target control; "
             "untrained = the same layer of the model at initialisation, held out (not probed for concat). "
             f"A layer finds the geometry when held out <= {FOUND_FRACTION:.0%} of shuffled.", "",
             "| process | kind | params | relative loss | layer | held-out MSE | held-out R² | shuffled MSE "
             "| untrained MSE | held out / shuffled | untrained / shuffled |",
             "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        layer = r.layer if r.choice == "concat" else f"{r.layer} (best)"
        lines.append(f"| {r.process} | {r.kind} | {r.n_params:,} | {r.relative_loss:.4f} | {layer} "
                     f"| {_num(r.mse_heldout_contexts)} | {_num(r.r2_heldout_contexts, '.4f')} | {_num(r.mse_shuffled)} "
                     f"| {_num(r.mse_untrained)} | {percent(r.heldout_over_shuffled)}{' ✓' if r.found else ''} "
                     f"| {percent(_ratio(r.mse_untrained, r.mse_shuffled))} |")
    lines += ["", "Found the geometry (best single layer, held out <= "
              f"{FOUND_FRACTION:.0%} of shuffled; concat in brackets):", ""]
    for process in study.processes:
        best = {r.kind: r for r in rows if r.process == process and r.choice != "concat"}
        concat = {r.kind: r for r in rows if r.process == process and r.choice == "concat"}
        parts = []
        for kind in study.kinds:
            if kind not in best:
                parts.append(f"{kind} no run")
                continue
            b, c = best[kind], concat.get(kind)
            word = "yes" if b.found else "NO"
            parts.append(f"{kind} {word} ({percent(b.heldout_over_shuffled)}"
                         + (f"; concat {percent(c.heldout_over_shuffled)}" if c is not None else "") + ")")
        n_found = sum(1 for k in study.kinds if k in best and best[k].found)
        lines.append(f"- **{process}**: {', '.join(parts)} — {n_found} of {len(study.kinds)} find it.")
    return "\n".join(lines) + "\n"

