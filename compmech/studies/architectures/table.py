"""The architecture study's table: two rows per run (the single layer picked on the validation half of the held-out
contexts, and "concat"), each reported on the test half over the shuffled control held out on the same contexts;
the Markdown table and, per process, which architectures found the geometry (`FOUND_FRACTION`)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compmech.runs.heldout_scores import LayerScores
from compmech.runs.summary import RunSummary
from compmech.studies.architectures.study_file import ArchitectureStudy, StudyRun
from probes.evaluation import CONCAT

#: A probe "finds the geometry" when its MSE on the test half of the held-out contexts is at most this fraction of
#: the shuffled-target control's MSE on the same contexts (issue 9's criterion, scored as issue 23 asks; the figure's
#: titles use the same one).
FOUND_FRACTION = 0.10


@dataclass(frozen=True)
class ArchitectureRow:
    """One line of the table: one layer choice of one run, scored as `compmech.runs.heldout_scores` does.

    ``layer`` is the single probed layer with the lowest MSE on the *validation* half of the held-out contexts
    (`pick_layer`), or ``"concat"`` (all probed layers side by side). What the row reports is the other, *test*
    half: the choice never saw it, so the number is not the minimum of several noisy ones. Every control is held
    out on the same contexts as the number it is set against: the shuffled control fitted on the fit contexts and
    scored on the test half (``mse_shuffled_test_contexts``) or on every held-out context
    (``mse_shuffled_heldout_contexts``, against the untrained model's held-out MSE from probe.json, which has the
    same splits).
    """

    process: str
    kind: str
    n_params: int
    relative_loss: float  # final CE / optimal CE (1 = Bayes optimal)
    layer: str
    choice: str  # "single layer picked on validation" | "concat"
    mse_validation_contexts: float | None  # what picked the layer (validation half)
    mse_test_contexts: float | None  # what the row reports (test half)
    r2_test_contexts: float | None
    mse_shuffled_test_contexts: float | None  # the held-out shuffled control on the test half
    test_over_shuffled: float | None  # mse_test_contexts / mse_shuffled_test_contexts
    found: bool | None  # test_over_shuffled <= FOUND_FRACTION (None when there is no test MSE)
    mse_heldout_contexts: float | None  # every held-out context (probe.json's number)
    r2_heldout_contexts: float | None
    mse_shuffled_heldout_contexts: float | None  # the held-out shuffled control on every held-out context
    mse_untrained: float | None  # the same layer at initialisation, every held-out context (None for concat)
    untrained_over_shuffled: float | None  # mse_untrained / mse_shuffled_heldout_contexts
    mse_shuffled_in_sample: float  # probe.json's in-sample shuffled control (for reference; never a denominator)
    mse: float  # in-sample MSE
    steps: int
    tokens: int
    wall_seconds: float
    run_dir: str

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or not b > 0 else a / b


def pick_layer(scores: Mapping[str, LayerScores]) -> str:
    """The single layer (never "concat") with the lowest validation-half MSE; layers without one come last, by their
    in-sample MSE (never by a number on the contexts the row then reports)."""
    single = [n for n in scores if n != CONCAT]
    if not single:
        raise ValueError("no single layer was probed; a run probes at least its probe layer")

    def key(name: str) -> tuple[bool, float]:
        v = scores[name].mse_validation_contexts
        return (v is None, scores[name].mse if v is None else v)

    return min(single, key=key)


def architecture_rows(
    run: StudyRun, summary: RunSummary, probe: dict[str, Any], scores: Mapping[str, LayerScores], run_dir: Path
) -> list[ArchitectureRow]:
    """The run's two rows: the single layer picked on the validation half (`pick_layer`) and concat, each reported on
    the test half over the held-out shuffled control. ``probe``: the run's probe.json (its untrained control)."""
    untrained = probe.get("untrained_by_layer") or {}
    rows = []
    for layer, choice in ((pick_layer(scores), "single layer picked on validation"), (CONCAT, "concat")):
        if layer not in scores:
            continue
        s = scores[layer]
        ratio = _ratio(s.mse_test_contexts, s.mse_shuffled_test_contexts)
        mse_untrained = (untrained.get(layer) or {}).get("mse_heldout_contexts")
        rows.append(
            ArchitectureRow(
                process=run.process,
                kind=run.kind,
                n_params=int(summary.model.n_params),
                relative_loss=float(summary.relative_loss),
                layer=layer,
                choice=choice,
                mse_validation_contexts=s.mse_validation_contexts,
                mse_test_contexts=s.mse_test_contexts,
                r2_test_contexts=s.r2_test_contexts,
                mse_shuffled_test_contexts=s.mse_shuffled_test_contexts,
                test_over_shuffled=ratio,
                found=None if ratio is None else bool(ratio <= FOUND_FRACTION),
                mse_heldout_contexts=s.mse_heldout_contexts,
                r2_heldout_contexts=s.r2_heldout_contexts,
                mse_shuffled_heldout_contexts=s.mse_shuffled_heldout_contexts,
                mse_untrained=mse_untrained,
                untrained_over_shuffled=_ratio(mse_untrained, s.mse_shuffled_heldout_contexts),
                mse_shuffled_in_sample=float(s.mse_shuffled),
                mse=float(s.mse),
                steps=int(summary.steps),
                tokens=int(summary.tokens),
                wall_seconds=float(summary.wall_seconds),
                run_dir=str(run_dir),
            )
        )
    return rows


def _num(v: float | None, fmt: str = ".3g") -> str:
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def percent(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.2g}%"


def format_markdown(rows: list[ArchitectureRow], study: ArchitectureStudy, wall_seconds: float | None = None) -> str:
    """The table and, per process, which architectures found the geometry."""
    budget = "quick budget" if study.quick else "full budget"
    lines = [
        f"# Architecture independence of the belief geometry ({study.name}, {budget})",
        "",
        f"Study file `{study.source}`; one run directory per process and architecture. The runs' own wall "
        f"times sum to {sum(r.wall_seconds for r in rows if r.choice != 'concat') / 60:.1f} min"
        + (
            f"; this call took {wall_seconds / 60:.1f} min (finished runs are reused)."
            if wall_seconds is not None
            else "."
        ),
        "",
        "Every probe is context-disjoint: at each position a fifth of the distinct contexts is held out of the "
        "fit, and the held-out contexts are halved at random into a validation half and a test half. The single "
        "layer is picked by its validation MSE; test = its MSE on the test half, which the fit and the pick never "
        "saw. Shuffled = the shuffled-target control fitted on the same fit contexts and scored on the same "
        "test half. Untrained = the same layer of the model at initialisation (probe.json, every held-out "
        "context; not probed for concat), over the shuffled control held out on those contexts. "
        f"A layer finds the geometry when test <= {FOUND_FRACTION:.0%} of shuffled.",
        "",
        "| process | kind | params | relative loss | layer | validation MSE | test MSE | test R² "
        "| shuffled MSE (test) | untrained MSE | test / shuffled | untrained / shuffled |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        layer = r.layer if r.choice == "concat" else f"{r.layer} (picked)"
        lines.append(
            f"| {r.process} | {r.kind} | {r.n_params:,} | {r.relative_loss:.4f} | {layer} "
            f"| {_num(r.mse_validation_contexts)} | {_num(r.mse_test_contexts)} "
            f"| {_num(r.r2_test_contexts, '.4f')} | {_num(r.mse_shuffled_test_contexts)} "
            f"| {_num(r.mse_untrained)} | {percent(r.test_over_shuffled)}{' ✓' if r.found else ''} "
            f"| {percent(r.untrained_over_shuffled)} |"
        )
    lines += [
        "",
        "Found the geometry (the layer picked on validation, test <= "
        f"{FOUND_FRACTION:.0%} of the held-out shuffled control; concat in brackets):",
        "",
    ]
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
            parts.append(
                f"{kind} {word} ({percent(b.test_over_shuffled)}"
                + (f"; concat {percent(c.test_over_shuffled)}" if c is not None else "")
                + ")"
            )
        n_found = sum(1 for k in study.kinds if k in best and best[k].found)
        lines.append(f"- **{process}**: {', '.join(parts)} — {n_found} of {len(study.kinds)} find it.")
    return "\n".join(lines) + "\n"
