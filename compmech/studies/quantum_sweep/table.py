"""The sweep's table: one `SweepRow` per (process, architecture) run, from that run's own records, and its Markdown.

Every number is read, not recomputed: the relative loss and the untrained control from summary.json
(`compmech.runs.summary.RunSummary`), the probe's held-out scores from `compmech.runs.heldout_scores` (the held-out
shuffled control, as the architectures study scores its runs), and the exact losses, the order-k ceilings and
margins and the norm-shuffled control from markov_order.json (`compmech.runs.markov_order_record`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from compmech.runs.heldout_scores import LayerScores
from compmech.runs.markov_order_record import NORM_SHUFFLED, TRUE_BELIEFS, UNNORMALIZED, MarkovOrderRecord
from compmech.runs.summary import RunSummary


@dataclass(frozen=True)
class SweepRow:
    """One run of the sweep at its probe layer (the paper's; the markov_order study's verdict layer)."""

    process: str  # the process's label ("tom_quantum-beta2.25", "post_quantum", "fanizza")
    beta: float | None  # tom_quantum's beta (alpha = 1), None for the others
    kind: str  # "transformer" | "lstm" | "gru" | "rnn"
    n_params: int
    steps: int
    tokens: int
    wall_seconds: float
    run_dir: str
    # losses, nats per token, exact over every context (markov_order.json): the floor, the model, order k = 0..3
    optimal_loss: float
    model_loss: float
    order_losses: dict[str, float]  # "0".."3" -> nats per token of the order-k predictor
    relative_loss: float  # summary.json: the final loss over the optimal one (1 = Bayes optimal)
    # the probe onto the true beliefs (compmech.runs.heldout_scores, every held-out context; probe.json's splits)
    layer: str
    r2_heldout: float | None
    mse_heldout: float | None
    mse_shuffled_heldout: float | None  # the shuffled control fitted on the fit contexts, scored held out
    mse_untrained: float | None  # the same layer at initialisation, held out (summary.json's probe_untrained)
    r2_untrained: float | None
    # the order-k controls (markov_order.json): its probe onto the true beliefs (every distinct context once, held
    # out; the R² the margins use), trained and untrained, the ceilings (in sample) and the margins over them
    r2_distinct: float | None
    r2_distinct_untrained: float | None
    ceilings: dict[str, float]
    margins: dict[str, float | None]
    untrained_margins: dict[str, float | None]
    # the norm-shuffled control (markov_order.json): held-out R² onto the unnormalised beliefs and onto the same
    # vectors with their norms permuted, trained and untrained
    r2_unnormalized: float | None
    r2_norm_shuffled: float | None
    r2_unnormalized_untrained: float | None
    r2_norm_shuffled_untrained: float | None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def excess(self) -> float:
        """The model's exact loss over the floor, minus 1."""
        return self.model_loss / self.optimal_loss - 1.0


def sweep_row(
    process: str,
    beta: float | None,
    kind: str,
    summary: RunSummary,
    scores: Mapping[str, LayerScores],
    record: MarkovOrderRecord,
    run_dir: str,
) -> SweepRow:
    """The row of one finished run: ``summary`` (summary.json), ``scores`` (`compmech.runs.heldout_scores`, by layer)
    and ``record`` (its markov_order.json). The layer is the markov_order study's last analysed layer, which the run's
    probe scores must include."""
    layer = record.layers[-1]
    if layer.layer not in scores:
        raise ValueError(
            f"{run_dir}: the held-out scores have no layer {layer.layer!r} (they have {sorted(scores)}); probe the "
            "markov_order study's layer"
        )
    s = scores[layer.layer]
    untrained = summary.probe_untrained or {}
    if untrained.get("layer") not in (None, layer.layer):
        untrained = {}
    optimal, model = record.loss("optimal"), record.loss("model")
    if optimal is None or model is None:
        raise ValueError(f"{run_dir}: markov_order.json has no optimal or model loss")
    orders = {str(r.k): r.loss for r in record.losses if r.k is not None}
    if summary.model is None or summary.relative_loss is None or summary.wall_seconds is None:
        raise ValueError(f"{run_dir}: summary.json has no model, relative loss or wall time (is the run finished?)")

    def r2_of(target: str, trained: bool) -> float | None:
        p = layer.probe(target)
        return None if p is None else (p.r2_heldout_contexts if trained else p.untrained_r2_heldout_contexts)

    return SweepRow(
        process=process,
        beta=beta,
        kind=kind,
        n_params=int(summary.model.n_params),
        steps=int(summary.steps),
        tokens=int(summary.tokens),
        wall_seconds=float(summary.wall_seconds),
        run_dir=run_dir,
        optimal_loss=float(optimal),
        model_loss=float(model),
        order_losses=orders,
        relative_loss=float(summary.relative_loss),
        layer=layer.layer,
        r2_heldout=s.r2_heldout_contexts,
        mse_heldout=s.mse_heldout_contexts,
        mse_shuffled_heldout=s.mse_shuffled_heldout_contexts,
        mse_untrained=untrained.get("mse_heldout_contexts"),
        r2_untrained=untrained.get("r2_heldout_contexts"),
        r2_distinct=r2_of(TRUE_BELIEFS, True),
        r2_distinct_untrained=r2_of(TRUE_BELIEFS, False),
        ceilings=dict(record.ceilings),
        margins=dict(layer.margins),
        untrained_margins=dict(layer.untrained_margins),
        r2_unnormalized=r2_of(UNNORMALIZED, True),
        r2_norm_shuffled=r2_of(NORM_SHUFFLED, True),
        r2_unnormalized_untrained=r2_of(UNNORMALIZED, False),
        r2_norm_shuffled_untrained=r2_of(NORM_SHUFFLED, False),
    )


def _n(v: float | None, fmt: str = ".3f") -> str:
    return "–" if v is None else format(v, fmt)


def _yes(margin: float | None) -> str:
    return "–" if margin is None else ("yes" if margin > 0 else "no")


def format_markdown(
    rows: Sequence[SweepRow], *, quick: bool, orders: Sequence[int], wall_seconds: float | None = None
) -> str:
    """Two tables: per process the loss floor and the order-k losses; per run the model's loss, the probe beside its
    controls, the order-k margins and the norm-shuffled control."""
    ks = [str(k) for k in orders]
    processes = list(dict.fromkeys(r.process for r in rows))
    first = {p: next(r for r in rows if r.process == p) for p in processes}
    lines = [
        f"# The quantum / post-quantum sweep ({'quick' if quick else 'full'} budget)",
        "",
        f"Command: `compmech reproduce{' --quick' if quick else ''} --only quantum-sweep`. The runs' own wall times "
        f"sum to {sum(r.wall_seconds for r in rows) / 60:.1f} min"
        + (f"; this call took {wall_seconds / 60:.1f} min (finished runs are reused)." if wall_seconds else "."),
        "",
        "Exact cross-entropy per token (nats) over every context of length 8: the loss floor (the optimal predictor) "
        "and the order-k predictors (the optimal predictor that sees only the last k tokens), the same for every "
        "architecture:",
        "",
        "| process | floor | order-0 | " + " | ".join(f"order-{k}" for k in ks) + " |",
        "|---|---:|---:|" + "---:|" * len(ks),
    ]
    for p in processes:
        r = first[p]
        lines.append(
            f"| {p} | {r.optimal_loss:.5f} | {_n(r.order_losses.get('0'), '.5f')} | "
            + " | ".join(_n(r.order_losses.get(k), ".5f") for k in ks)
            + " |"
        )
    lines += [
        "",
        "Per run, at the paper's probe layer: the model's exact loss over the floor (and summary.json's "
        "relative loss); the probe onto the true beliefs, held out on unseen contexts (R², MSE) beside the "
        "shuffled-target control held out on the same contexts and the untrained model; the margin of the "
        "held-out R² over each order-k ceiling (the R² of the best any function of the last k tokens gives; "
        "> 0: the model holds more than the last k tokens could; that R² is the markov_order study's probe, every "
        "distinct context once, shown first, untrained in brackets); and the norm-shuffled control (held-out R² "
        "onto the unnormalised beliefs, then onto the same vectors with their norms shuffled; untrained in "
        "brackets).",
        "",
        "| process | kind | loss / floor − 1 | relative loss | R² held out | MSE held out | shuffled MSE | "
        "untrained MSE (R²) | R²: margin k = " + ", ".join(ks) + " | beats k = " + ", ".join(ks) + " | unnormalised R² "
        "| norm-shuffled R² |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---|---:|---:|",
    ]
    for r in rows:
        margins = ", ".join(_n(r.margins.get(k), "+.3f") for k in ks)
        beats = ", ".join(_yes(r.margins.get(k)) for k in ks)
        lines.append(
            f"| {r.process} | {r.kind} | {r.excess:.2%} | {r.relative_loss:.4f} | {_n(r.r2_heldout)} | "
            f"{_n(r.mse_heldout, '.3g')} | {_n(r.mse_shuffled_heldout, '.3g')} | {_n(r.mse_untrained, '.3g')} "
            f"({_n(r.r2_untrained)}) | {_n(r.r2_distinct)} ({_n(r.r2_distinct_untrained)}): {margins} | {beats} | "
            f"{_n(r.r2_unnormalized)} "
            f"({_n(r.r2_unnormalized_untrained)}) | {_n(r.r2_norm_shuffled)} ({_n(r.r2_norm_shuffled_untrained)}) |"
        )
    return "\n".join(lines) + "\n"
