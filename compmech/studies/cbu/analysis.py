"""The constrained-belief-update study (Piotrowski, Riechers, Filan & Shai, ICML 2025): does the first attention layer
carry out the belief update the process predicts when it is constrained to be parallel over positions?

From the process alone (`compmech.studies.cbu.theory`): the spectrum of ``M = T.sum(0)``, the heads it calls for (a
decay rate each) and the constrained belief ``pi + sum_s u_{x_s} M^(t-s)`` (the predicted intermediate geometry); for a
product, from its factors. From the trained transformer, over the run's contexts:

- every block's attention pattern averaged over the contexts (weights as ``weighting``; with its spread), and each
  head's exponential fit against distance on within-query log-ratios (`probes.attention.fit_decay`: the fitted
  lambda, R², the parity fit for alternating eigenvalues);
- beside each predicted rate, the exact readout rate (`compmech.studies.cbu.theory.readout_decay`: the decay of the
  belief's best linear readout from the token history, over every word of ``readout_length`` tokens of each factor),
  which the first-order lambda equals only for weakly informative tokens;
- the predictions fixed before any fit (`compmech.studies.cbu.theory.process_prediction`: from the process alone)
  and block 0's heads assigned to them as a minimum-cost assignment (Hungarian, `scipy.optimize.linear_sum_assignment`)
  on the cost ``|fitted rate - predicted rate|`` (the parity fit's rate for an alternating prediction;
  ``UNMATCHED_COST`` for a head without a clean decay), with its total cost and the greedy matching's beside it; every
  head of every block compared with its nearest predicted rate; a head **carries a clean exponential decay** when a
  fit (plain or parity) has R² >= ``r2_min`` and a rate below ``max_rate`` (a flat pattern decays at rate 1 and is no
  decay head); the observed head count is the number of block-0 heads that do, beside the predicted count, and their
  fitted rates in groups (`probes.attention.rate_groups`: how many distinct decay profiles the heads carry);
- the OV vectors of block 0 (`predictive_models.ov_vectors`) projected into the belief simplex with the probe fitted
  from block 0's post-attention stream to the beliefs (its coefficients: a displacement maps to ``ov @ coef``), and
  their cosine with the predicted update directions u_x;
- linear probes (context-disjoint held out, shuffled control) from every block's stream after attention and before
  the MLP (``hook_resid_mid``; after the block when the model is attention-only) and from the final layer onto the
  constrained beliefs and onto the beliefs (for a product: each factor's, concatenated);
- a **null model for every R² onto the constrained belief**: the same probe, on the same rows and the same
  context-disjoint splits (``null_splits`` of them), from a stream computed exactly from the contexts that holds only
  the exact belief, the current token (one-hot) and the position (one-hot) (`null_stream`);
- a verdict per run that the data could make "not supported" (`Verdict`, rules in `r2_verdict` and
  `decay_verdict`): the constrained-belief hypothesis (block 0's post-attention stream beats the null by more than
  their spread over splits), the first-order decay rates, the readout rates, the head count.

`run` is its phases in order, each a function handing a typed record to the next: `predict` (the process alone),
`fit_attention` (decay fits per head, the assignment), `probe_geometry` (the post-attention geometry probes and
their null), `project_ov` (OV vectors), `judge` (the verdicts), `build_record` (cbu.json), `draw_figures` and
`study_output` (report and summary).
Writes ``cbu.json`` and ``figures/cbu.png``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import linear_sum_assignment

import predictive_models  # a lazy package (PEP 562): JAX is imported when a model is first run
from compmech.runs.contexts import ContextSet
from compmech.runs.files import write_json_atomic
from compmech.runs.processes import component_processes
from compmech.runs.progress import phase
from compmech.runs.run_figures import save_figures
from compmech.runs.settings import ExperimentConfig
from compmech.runs.sources import Source
from compmech.studies.base import StudyInputs, StudyOutput
from compmech.studies.cbu.plots import plot_cbu_panel
from compmech.studies.cbu.theory import (
    HeadPrediction,
    ReadoutDecay,
    Spectrum,
    constrained_factor_beliefs,
    factor_tokens,
    process_prediction,
    update_vectors,
)
from figures import process_title
from hmm_processes import factor_beliefs
from probes import CONTEXT_TEST_FRACTION, LinearProbe, ProbeData, ProbeRows, evaluate_probe, probe_rows
from probes.attention import RATE_GROUP_TOL, DecayFit, PatternStats, by_distance, fit_decay, mean_pattern, rate_groups

WEIGHTINGS = ("probability", "uniform")
#: The probe numbers cbu.json keeps (context-disjoint held out and the shuffled control beside the in-sample fit).
_PROBE_KEYS = (
    "mse",
    "r2",
    "mse_heldout_contexts",
    "mse_heldout_contexts_std",
    "r2_heldout_contexts",
    "heldout_contexts_note",
    "mse_shuffled",
    "n_rows",
    "n_contexts",
)
#: The cost of leaving a predicted head without a clean head (larger than any gap between two rates in [0, 1)).
UNMATCHED_COST = 1.0
SUPPORTED, NOT_SUPPORTED = "supported", "not supported"
#: What the null stream holds (`null_stream`).
NULL_FEATURES = "exact belief + current token (one-hot) + position (one-hot), computed from the contexts"
R2_RULE = (
    "supported when mean(model R²) - mean(null R²) > sqrt(sd(model R²)² + sd(null R²)²), both held out on the "
    "same context-disjoint splits (sd over splits, ddof 1; at least 2 splits), else not supported"
)


@dataclass(frozen=True)
class Settings:
    """[studies.cbu] options."""

    # how contexts are weighted in the mean attention and the probes: "probability" (as the model meets them) or
    # "uniform" (every distinct context once)
    weighting: str = "probability"
    min_distance: int = 1  # the smallest query-key distance fitted (1: leave out the query's own key)
    r2_min: float = 0.9  # a head's decay is clean when its fit has at least this within-query R² ...
    max_rate: float = 0.95  # ... and a fitted rate below this
    min_share: float = 0.01  # an eigenvalue calls for a head when it carries at least this share of the updates
    n_repeats: int = 3  # held-out splits of each probe
    readout_length: int = (
        8  # word length of the exact least-squares readout rate (`compmech.studies.cbu.theory.readout_decay`)
    )
    null_splits: int = 5  # context-disjoint splits on which each R² and its null are compared (>= 2: a spread)
    rate_tol: float = 0.1  # a predicted decay rate holds when its assigned head's fitted rate is within this

    def __post_init__(self) -> None:
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f'weighting must be "probability" or "uniform"; got {self.weighting!r}')
        if isinstance(self.min_distance, bool) or not isinstance(self.min_distance, int) or self.min_distance < 0:
            raise ValueError(f"min_distance must be an integer >= 0; got {self.min_distance!r}")
        for key in ("r2_min", "max_rate", "min_share", "rate_tol"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
                raise ValueError(f"{key} must be a number in (0, 1]; got {v!r}")
        if isinstance(self.readout_length, bool) or not isinstance(self.readout_length, int) or self.readout_length < 4:
            raise ValueError(f"readout_length must be an integer >= 4; got {self.readout_length!r}")
        if isinstance(self.n_repeats, bool) or not isinstance(self.n_repeats, int) or self.n_repeats < 1:
            raise ValueError(f"n_repeats must be a positive integer; got {self.n_repeats!r}")
        if isinstance(self.null_splits, bool) or not isinstance(self.null_splits, int) or self.null_splits < 2:
            raise ValueError(
                f"null_splits must be an integer >= 2 (a spread over splits needs two); got {self.null_splits!r}"
            )


def check(cfg: ExperimentConfig, source: Source, model_cfg: predictive_models.ModelConfig) -> None:
    """The model must be a transformer; the process one process or a product (not a mixture: no single M to use)."""
    kind = predictive_models.kind_of(model_cfg)
    if kind != "transformer":
        raise ValueError(f'the cbu study reads attention patterns: it needs [model] kind = "transformer", not {kind!r}')
    if cfg.process.kind in ("mixture", "coupled"):
        raise ValueError(
            f'the cbu study needs one process or kind = "product"; kind = "{cfg.process.kind}" has '
            "no constrained-update prediction here"
        )
    if model_cfg.context_length < 3 + int(cfg.data.bos):
        raise ValueError("the cbu study fits attention against distance: it needs [model] context_length >= 3")


def theory_factors(cfg: Any, process: Any) -> list:
    """The processes the prediction is made from: a product's factors, else the process itself."""
    if cfg.process.kind == "product":
        return component_processes(cfg)
    return [process]


def _constrained(factors: list, tokens: np.ndarray, bos: bool) -> np.ndarray:
    """The constrained beliefs of the factors (concatenated) [N, T, sum S_k]; a start token's position gets pi."""
    words = tokens[:, 1:] if bos else tokens
    c = constrained_factor_beliefs(factors, words)
    if bos:
        pi = np.concatenate([update_vectors(f)[2] for f in factors])
        c = np.concatenate([np.broadcast_to(pi, (c.shape[0], 1, c.shape[2])), c], axis=1)
    return c


def _update_directions(factors: list, vocab: int) -> np.ndarray:
    """The predicted update direction of every token of the process [V, sum S_k] (a product token: its factors')."""
    ids = np.arange(vocab)[None, :]
    parts = factor_tokens(ids, [update_vectors(f)[0].shape[0] for f in factors])
    return np.concatenate([update_vectors(f)[0][p[0]] for f, p in zip(factors, parts)], axis=-1)


def _cos(a: np.ndarray, b: np.ndarray) -> float | None:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return None if na == 0 or nb == 0 else float(a @ b / (na * nb))


def _mean(v: Any) -> float | None:
    return None if v is None else float(np.mean(v))


# ------------------------------------------------------------------------------------- heads against predictions


def rate_costs(predicted: list[HeadPrediction], fits: list[DecayFit], r2_min: float, max_rate: float) -> np.ndarray:
    """[P, H] the cost of giving predicted head p to head h: ``|fitted rate - predicted rate|`` (the parity fit's
    rate for an alternating prediction), or ``UNMATCHED_COST`` when h carries no clean decay."""
    cost = np.full((len(predicted), len(fits)), UNMATCHED_COST)
    for h, f in enumerate(fits):
        if not f.clean(r2_min, max_rate):
            continue
        for p, pred in enumerate(predicted):
            rate = f.fitted_lambda if pred.parity == "all" else f.parity_rate
            if rate is not None:
                cost[p, h] = min(abs(rate - pred.rate), UNMATCHED_COST)
    return cost


@dataclass(frozen=True, eq=False)
class HeadAssignment:
    """Predicted heads assigned to a block's heads, one head each at most."""

    method: str  # "hungarian" (minimum total cost) or "greedy" (each prediction in order takes the cheapest head)
    cost_matrix: np.ndarray  # [P, H] (`rate_costs`)
    heads: tuple[int | None, ...]  # per prediction: its head (None: no head with a clean decay left)
    cost: float  # the total: each assigned pair's cost, UNMATCHED_COST for each prediction without a head

    def gap(self, p: int) -> float | None:
        """Prediction p's cost (its rate gap), None when it has no head."""
        h = self.heads[p]
        return None if h is None else float(self.cost_matrix[p, h])

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "heads": list(self.heads),
            "gaps": [self.gap(p) for p in range(len(self.heads))],
            "cost": self.cost,
            "cost_matrix": self.cost_matrix.tolist(),
        }


def _assignment(cost: np.ndarray, pairs: dict[int, int], method: str) -> HeadAssignment:
    heads = tuple(pairs[p] if p in pairs and cost[p, pairs[p]] < UNMATCHED_COST else None for p in range(cost.shape[0]))
    total = float(sum(UNMATCHED_COST if h is None else cost[p, h] for p, h in enumerate(heads)))
    return HeadAssignment(method=method, cost_matrix=cost, heads=heads, cost=total)


def hungarian_assignment(cost: np.ndarray) -> HeadAssignment:
    """The assignment of predictions (rows) to heads (columns) of least total cost
    (`scipy.optimize.linear_sum_assignment`); a prediction left without a column, or given a head of cost
    ``UNMATCHED_COST`` (no clean decay), gets no head."""
    cost = np.asarray(cost, dtype=np.float64)
    rows, cols = linear_sum_assignment(cost) if cost.size else (np.array([], int), np.array([], int))
    return _assignment(cost, {int(r): int(c) for r, c in zip(rows, cols)}, "hungarian")


def greedy_assignment(cost: np.ndarray) -> HeadAssignment:
    """Each prediction in order (largest rate first) takes the free head of least cost: the matching this study
    used before the assignment, kept for comparison (it need not have the least total cost)."""
    cost = np.asarray(cost, dtype=np.float64)
    pairs: dict[int, int] = {}
    for p in range(cost.shape[0]):
        free = [h for h in range(cost.shape[1]) if h not in pairs.values() and cost[p, h] < UNMATCHED_COST]
        if free:
            pairs[p] = min(free, key=lambda h: cost[p, h])
    return _assignment(cost, pairs, "greedy")


# ------------------------------------------------------------------------------------------ the null and verdicts


@dataclass(frozen=True)
class Verdict:
    """One hypothesis judged on the data: "supported" or "not supported", with the rule and the numbers it used."""

    hypothesis: str
    verdict: str  # SUPPORTED or NOT_SUPPORTED
    rule: str
    numbers: dict[str, Any]

    @property
    def supported(self) -> bool:
        return self.verdict == SUPPORTED

    def to_dict(self) -> dict[str, Any]:
        return {"hypothesis": self.hypothesis, "verdict": self.verdict, "rule": self.rule, **self.numbers}


def r2_verdict(
    model_r2, null_r2, hypothesis: str = "the stream holds the constrained belief beyond the null"
) -> Verdict:
    """`R2_RULE` on the held-out R² of a model and of its null, split by split ([n] each, the same splits)."""
    m, z = np.asarray(model_r2, np.float64), np.asarray(null_r2, np.float64)
    if m.shape != z.shape or m.ndim != 1:
        raise ValueError(
            f"model_r2 and null_r2 must be 1-D and of one length (one R² per split); got {m.shape}, {z.shape}"
        )
    numbers: dict[str, Any] = {
        "model_r2": float(m.mean()) if m.size else None,
        "null_r2": float(z.mean()) if z.size else None,
        "margin": None,
        "spread": None,
        "n_splits": int(m.size),
        "note": None,
    }
    if m.size < 2 or not (np.isfinite(m).all() and np.isfinite(z).all()):
        numbers["note"] = "fewer than two splits with a held-out R²: no spread, so no support"
        return Verdict(hypothesis, NOT_SUPPORTED, R2_RULE, numbers)
    margin = float(m.mean() - z.mean())
    spread = float(np.sqrt(m.var(ddof=1) + z.var(ddof=1)))
    numbers.update(margin=margin, spread=spread)
    return Verdict(hypothesis, SUPPORTED if margin > spread else NOT_SUPPORTED, R2_RULE, numbers)


def decay_verdict(
    assignment: HeadAssignment,
    rates: list[float | None],
    fitted: list[float | None],
    rate_tol: float,
    hypothesis: str,
    fitted_se: list[float | None] | None = None,
) -> Verdict:
    """Supported when every predicted head has a head with a clean decay (the assignment's) whose fitted rate lies
    within ``rate_tol`` of the predicted ``rates[p]``; not supported otherwise, or when nothing is predicted.
    ``fitted_se``: the fitted rates' standard errors, recorded beside them."""
    gaps = [
        None if h is None or r is None or f is None else abs(f - r) for h, r, f in zip(assignment.heads, rates, fitted)
    ]
    held = [g is not None and g <= rate_tol for g in gaps]
    ok = bool(held) and all(held)
    rule = (
        f"supported when every predicted head is assigned a head with a clean decay whose fitted rate is within "
        f"{rate_tol:g} of the predicted rate (fixed before the fit), else not supported"
    )
    return Verdict(
        hypothesis,
        SUPPORTED if ok else NOT_SUPPORTED,
        rule,
        {
            "predicted": [None if r is None else float(r) for r in rates],
            "fitted": fitted,
            "fitted_se": list(fitted_se) if fitted_se is not None else [None] * len(fitted),
            "gaps": gaps,
            "held": held,
            "n_held": int(sum(held)),
            "n_predicted": len(held),
            "rate_tol": rate_tol,
            "note": None if held else "no head predicted",
        },
    )


def null_stream(beliefs: np.ndarray, tokens: np.ndarray, n_token_ids: int) -> np.ndarray:
    """The null model's stream [N, T, S + n_token_ids + T]: the exact belief, the current token (one-hot over
    ``n_token_ids``, a start token included) and the position (one-hot), at every position.

    Computed from the contexts alone (no model): what any stream that holds the belief, the token and the position
    already offers a linear probe."""
    B = np.asarray(beliefs, np.float64)  # [N, T, S]
    tok = np.asarray(tokens)
    if B.shape[:2] != tok.shape:
        raise ValueError(f"beliefs {B.shape} and tokens {tok.shape} must share [N, T]")
    N, T = tok.shape
    onehot_tok = np.eye(n_token_ids)[tok]  # [N, T, V]
    onehot_pos = np.broadcast_to(np.eye(T)[None], (N, T, T))  # [N, T, T]
    return np.concatenate([B, onehot_tok, onehot_pos], axis=-1)


def heldout_r2_by_split(X: np.ndarray, Y: np.ndarray, rows: ProbeRows, n_splits: int, seed: int) -> np.ndarray:
    """[n_splits] the pooled R² of an OLS probe X -> Y on held-out contexts, one context-disjoint split each (split
    i drawn from ``seed + i``: the same splits for every X on the same rows). NaN where a split is withheld."""
    out = []
    for i in range(n_splits):
        r = evaluate_probe(
            X,
            Y,
            rows.groups,
            contexts=rows.context_ids,
            positions=rows.positions,
            sample_weight=rows.weights,
            n_repeats=1,
            context_test_fraction=CONTEXT_TEST_FRACTION,
            seed=seed + i,
        ).result.r2_heldout_contexts
        out.append(np.nan if r is None else r)
    return np.array(out)


@dataclass(frozen=True)
class NullComparison:
    """One layer's held-out R² onto the constrained belief beside its null's, on the same splits."""

    layer: str
    model_r2: tuple[float, ...]  # per split: the layer's stream -> the constrained belief
    null_r2: tuple[float, ...]  # per split: the null stream -> the constrained belief
    beliefs_r2: tuple[float, ...]  # per split: the layer's stream -> the exact belief
    verdict: Verdict

    @property
    def beliefs_r2_higher(self) -> bool:
        """Whether the stream is held out closer to the exact belief than to the constrained one."""
        return bool(np.mean(self.beliefs_r2) > np.mean(self.model_r2))

    def to_dict(self) -> dict[str, Any]:
        def sd(v):
            return float(np.std(v, ddof=1)) if len(v) > 1 else None

        return {
            "layer": self.layer,
            "model_r2": list(self.model_r2),
            "null_r2": list(self.null_r2),
            "beliefs_r2": list(self.beliefs_r2),
            "model_r2_mean": _mean(self.model_r2),
            "model_r2_sd": sd(self.model_r2),
            "null_r2_mean": _mean(self.null_r2),
            "null_r2_sd": sd(self.null_r2),
            "beliefs_r2_mean": _mean(self.beliefs_r2),
            "beliefs_r2_sd": sd(self.beliefs_r2),
            "beliefs_r2_higher": self.beliefs_r2_higher,
            "verdict": self.verdict.verdict,
            "margin": self.verdict.numbers["margin"],
            "spread": self.verdict.numbers["spread"],
        }


def compare_to_null(
    X: np.ndarray,
    null_X: np.ndarray,
    rows: ProbeRows,
    k: int,
    n_splits: int,
    seed: int,
    layer: str = "stream",
    null_r2: np.ndarray | None = None,
) -> NullComparison:
    """A stream's held-out R² onto the constrained belief (``rows.Y[:, :k]``) and onto the belief (``rows.Y[:, k:]``)
    beside the null stream's onto the constrained belief (``null_r2``: already computed on these splits), judged by
    `r2_verdict`. ``X`` and ``null_X`` are row-aligned with ``rows``."""
    model = heldout_r2_by_split(X, rows.Y[:, :k], rows, n_splits, seed)
    beliefs = heldout_r2_by_split(X, rows.Y[:, k:], rows, n_splits, seed)
    null = heldout_r2_by_split(null_X, rows.Y[:, :k], rows, n_splits, seed) if null_r2 is None else null_r2
    return NullComparison(
        layer=layer,
        model_r2=tuple(map(float, model)),
        null_r2=tuple(map(float, null)),
        beliefs_r2=tuple(map(float, beliefs)),
        verdict=r2_verdict(model, null),
    )


# ------------------------------------------------------------------------------------------------------- the phases


@dataclass(frozen=True)
class Prediction:
    """What the process alone predicts (phase `predict`), fixed before anything of the model is read."""

    factors: tuple  # the processes the prediction is made from (a product's factors, else the process)
    spectra: tuple[Spectrum, ...]  # one per factor
    joint: Spectrum  # the process's own spectrum (a product's: the products of the factors' eigenvalues)
    heads: tuple[HeadPrediction, ...]  # the heads the constrained update calls for, largest rate first
    readouts: tuple[ReadoutDecay, ...]  # the exact readout decay of each factor
    readout_of: tuple[float | None, ...]  # per predicted head: its factors' readout rate (None: ambiguous)


@dataclass(frozen=True)
class AttentionFits:
    """Each block's mean attention and each head's decay fit (phase `fit_attention`), with block 0's assignment."""

    stats: tuple[PatternStats, ...]  # per block: mean [H, T, T] and spread over contexts
    fits: tuple[tuple[DecayFit, ...], ...]  # per block, per head
    assignment: HeadAssignment  # the predicted heads assigned to block 0's (Hungarian)
    greedy: HeadAssignment  # the greedy matching, for comparison
    rate_of: dict[int, HeadPrediction]  # block-0 head -> its assigned prediction
    readout_at: dict[int, float | None]  # block-0 head -> the readout rate of its assigned prediction

    @property
    def matched(self) -> tuple[int | None, ...]:
        return self.assignment.heads


@dataclass(frozen=True, eq=False)
class GeometryProbes:
    """The post-attention geometry probes and their null (phase `probe_geometry`)."""

    mid: str  # block 0's stream after attention, before the MLP
    final: str  # the final layer
    layers: tuple[str, ...]  # every probed layer: each block's post-attention stream, then the final layer
    targets: np.ndarray  # [N, T, 2 k]: the constrained beliefs, then the beliefs
    k: int  # the constrained beliefs' width (sum S_k)
    results: dict[str, dict[str, dict[str, Any]]]  # layer -> target ("constrained", "beliefs") -> probe numbers
    predictions: dict[tuple[str, str], np.ndarray]  # (layer, target) -> in-sample predictions [R, k]
    mid_rows: ProbeData  # the mid layer's probe rows (the OV projection and the figure use them)
    null: dict[str, NullComparison]  # layer -> its R² onto the constrained belief beside the null's


@dataclass(frozen=True, eq=False)
class OVProjection:
    """Block 0's OV vectors in the belief simplex (phase `project_ov`)."""

    ov: np.ndarray  # [H, V(+1), sum S_k] each token's OV vector mapped by the probe's coefficients
    updates: np.ndarray  # [V, sum S_k] the predicted update directions u_x
    vocab: int  # V (without a start token)
    cosine: list[list[float | None]]  # [H][V] cos(OV, u_x)
    factor_share: list[list[float]]  # [H][factors] the share of each factor's coordinates in a head's OV vectors


@dataclass(frozen=True)
class Verdicts:
    """The run's verdicts (phase `judge`)."""

    constrained_belief: Verdict  # block 0's post-attention stream against the null
    decay_first_order: Verdict  # the first-order rates |lambda|
    decay_readout: Verdict  # the exact readout rates
    head_count: Verdict  # observed clean heads in block 0 = predicted heads

    def to_dict(self) -> dict[str, Any]:
        return {
            "constrained_belief": self.constrained_belief.to_dict(),
            "decay_first_order": self.decay_first_order.to_dict(),
            "decay_readout": self.decay_readout.to_dict(),
            "head_count": self.head_count.to_dict(),
        }


def predict(cfg: ExperimentConfig, process: Any, settings: Settings) -> Prediction:
    """The prediction from the process alone (`compmech.studies.cbu.theory.process_prediction`)."""
    factors = theory_factors(cfg, process)
    p = process_prediction(
        process,
        factors if len(factors) > 1 else None,
        min_share=settings.min_share,
        readout_length=settings.readout_length,
    )
    return Prediction(
        factors=tuple(factors),
        spectra=p.spectra,
        joint=p.joint,
        heads=p.heads,
        readouts=p.readouts,
        readout_of=p.readout_of,
    )


def fit_attention(
    acts: dict[str, np.ndarray], patterns: list[str], ctx: ContextSet, prediction: Prediction, settings: Settings
) -> AttentionFits:
    """Each block's mean attention and each head's decay fit; the predicted heads assigned to block 0's.

    Takes the patterns out of ``acts`` (they are the largest activations)."""
    w = ctx.probs if settings.weighting == "probability" else None
    stats, layers = [], []
    for name in patterns:
        st = mean_pattern(acts.pop(name), w)  # [H, T, T]
        stats.append(st)
        layers.append(tuple(fit_decay(st.mean, min_distance=settings.min_distance, min_query=int(ctx.bos))))
    cost = rate_costs(list(prediction.heads), list(layers[0]), settings.r2_min, settings.max_rate)
    assignment = hungarian_assignment(cost)
    rate_of = {h: p for p, h in zip(prediction.heads, assignment.heads) if h is not None}
    readout_at = {h: r for r, h in zip(prediction.readout_of, assignment.heads) if h is not None}
    return AttentionFits(
        stats=tuple(stats),
        fits=tuple(layers),
        assignment=assignment,
        greedy=greedy_assignment(cost),
        rate_of=rate_of,
        readout_at=readout_at,
    )


def probe_geometry(
    acts: dict[str, np.ndarray],
    mids: list[str],
    final: str,
    ctx: ContextSet,
    prediction: Prediction,
    settings: Settings,
    seed: int,
) -> GeometryProbes:
    """Linear probes from each block's stream after attention (``mids``, block 0's first) and the final layer onto
    the constrained beliefs and onto the beliefs (context-disjoint held out, shuffled control); each layer's R² onto
    the constrained belief beside the null stream's (`compare_to_null`) on ``null_splits`` common splits."""
    factors = list(prediction.factors)
    beliefs = ctx.beliefs if len(factors) == 1 else np.concatenate(factor_beliefs(ctx.beliefs, factors), axis=-1)
    constrained = _constrained(factors, ctx.tokens, ctx.bos)  # [N, T, sum S_k]
    targets = np.concatenate([constrained, beliefs], axis=-1)
    k = constrained.shape[-1]
    fit_kw = dict(
        sample_weight=None, n_repeats=settings.n_repeats, context_test_fraction=CONTEXT_TEST_FRACTION, seed=seed
    )
    # the null: the exact (joint) belief, the token and the position; its rows are the probes' rows
    null_X = probe_rows(
        null_stream(ctx.beliefs, ctx.tokens, ctx.next_token_probs.shape[-1]),
        targets,
        ctx.tokens,
        ctx.probs,
        rows="distinct_contexts",
        weighting=settings.weighting,
    )
    null_r2 = None
    layers = tuple(dict.fromkeys([*mids, final]))
    results, preds, null = {}, {}, {}
    mid_rows = None
    for name in layers:
        rows = probe_rows(
            acts[name], targets, ctx.tokens, ctx.probs, rows="distinct_contexts", weighting=settings.weighting
        )
        kw = {**fit_kw, "sample_weight": rows.weights, "contexts": rows.context_ids, "positions": rows.positions}
        out = {}
        for target, Y in (("constrained", rows.Y[:, :k]), ("beliefs", rows.Y[:, k:])):
            ev = evaluate_probe(rows.X, Y, rows.groups, **kw)
            r = ev.result.to_dict()  # the string split of the paper is meaningless on distinct-context rows
            out[target] = {key: r[key] for key in _PROBE_KEYS}
            preds[(name, target)] = ev.predictions
        results[name] = out
        null[name] = compare_to_null(rows.X, null_X.X, rows, k, settings.null_splits, seed, layer=name, null_r2=null_r2)
        null_r2 = np.array(null[name].null_r2)
        if name == mids[0]:
            mid_rows = rows
    return GeometryProbes(
        mid=mids[0],
        final=final,
        layers=layers,
        targets=targets,
        k=k,
        results=results,
        predictions=preds,
        mid_rows=mid_rows,
        null=null,
    )


def project_ov(mc: Any, params_state: Any, probes_: GeometryProbes, prediction: Prediction, bos: bool) -> OVProjection:
    """Block 0's OV vectors projected into the belief simplex by the probe from the post-attention stream to the
    beliefs, their cosine with the predicted update directions and each factor's share of them."""
    rows, k = probes_.mid_rows, probes_.k
    coef = LinearProbe().fit(rows.X, rows.Y[:, k:], rows.weights).coef_  # [d_model, sum S_k]
    ov = predictive_models.ov_vectors(mc, params_state, 0).astype(np.float64) @ coef  # [H, V, sum S_k]
    vocab = ov.shape[1] - int(bos)
    u = _update_directions(list(prediction.factors), vocab)  # [V, sum S_k]
    ov_cos = [[_cos(ov[h, x], u[x]) for x in range(vocab)] for h in range(ov.shape[0])]
    edges = np.cumsum([0, *(sp.stationary.shape[0] for sp in prediction.spectra)])
    ov_share = [
        [
            float(np.sum(ov[h, :vocab, a:b] ** 2) / max(np.sum(ov[h, :vocab] ** 2), 1e-300))
            for a, b in zip(edges[:-1], edges[1:])
        ]
        for h in range(ov.shape[0])
    ]
    return OVProjection(ov=ov, updates=u, vocab=vocab, cosine=ov_cos, factor_share=ov_share)


def _assigned_rates(prediction: Prediction, attention: AttentionFits, *, se: bool = False) -> list[float | None]:
    """Per predicted head: its assigned block-0 head's fitted rate (the parity fit's when alternating), or with
    ``se`` that rate's standard error."""
    out: list[float | None] = []
    for p, h in zip(prediction.heads, attention.matched):
        f = None if h is None else attention.fits[0][h]
        if f is None:
            out.append(None)
        elif se:
            out.append(f.rate_se if p.parity == "all" else f.parity_rate_se)
        else:
            out.append(f.fitted_lambda if p.parity == "all" else f.parity_rate)
    return out


def judge(prediction: Prediction, attention: AttentionFits, probes_: GeometryProbes, settings: Settings) -> Verdicts:
    """The run's verdicts, each of which the data could make "not supported"."""
    fitted = _assigned_rates(prediction, attention)
    fitted_se = _assigned_rates(prediction, attention, se=True)
    observed = sum(f.clean(settings.r2_min, settings.max_rate) for f in attention.fits[0])
    n_pred = len(prediction.heads)
    count = Verdict(
        "block 0 has as many heads with a clean decay as the process predicts",
        SUPPORTED if observed == n_pred else NOT_SUPPORTED,
        "supported when the number of block-0 heads with a clean decay equals the predicted number",
        {"predicted": n_pred, "observed": int(observed)},
    )
    null = probes_.null[probes_.mid]
    return Verdicts(
        constrained_belief=Verdict(
            "block 0's post-attention stream holds the constrained belief beyond a stream of "
            "the exact belief, the token and the position",
            null.verdict.verdict,
            R2_RULE,
            {
                **null.verdict.numbers,
                "layer": probes_.mid,
                "beliefs_r2": _mean(null.beliefs_r2),
                "beliefs_r2_higher": null.beliefs_r2_higher,
            },
        ),
        decay_first_order=decay_verdict(
            attention.assignment,
            [p.rate for p in prediction.heads],
            fitted,
            settings.rate_tol,
            "block 0's heads decay at the first-order rates |lambda|",
            fitted_se,
        ),
        decay_readout=decay_verdict(
            attention.assignment,
            list(prediction.readout_of),
            fitted,
            settings.rate_tol,
            "block 0's heads decay at the exact readout rates",
            fitted_se,
        ),
        head_count=count,
    )


def _head_entries(
    prediction: Prediction, attention: AttentionFits, ov: OVProjection, settings: Settings
) -> list[dict[str, Any]]:
    """One entry per head of every block: its prediction (block 0), its fit, the nearest predicted rate (every block)
    and its OV vectors (block 0)."""
    heads_out = []
    for l, fits in enumerate(attention.fits):
        near = rate_costs(list(prediction.heads), list(fits), settings.r2_min, settings.max_rate)  # [P, H]
        for h, f in enumerate(fits):
            p = attention.rate_of.get(h) if l == 0 else None
            j = int(np.argmin(near[:, h])) if near.shape[0] and near[:, h].min() < UNMATCHED_COST else None
            entry = {
                "layer": l,
                "head": h,
                "predicted_lambda": None if p is None else p.rate,
                "predicted_eigenvalue": None if p is None else p.eigenvalue,
                "predicted_parity": None if p is None else p.parity,
                "readout_lambda": attention.readout_at.get(h) if l == 0 else None,
                "clean_decay": f.clean(settings.r2_min, settings.max_rate),
                **f.to_dict(),
                "nearest_predicted_lambda": None if j is None else prediction.heads[j].rate,
                "nearest_gap": None if j is None else float(near[j, h]),
            }
            if l == 0:
                cos = [c for c in ov.cosine[h] if c is not None]
                entry["ov_update_cosine"] = ov.cosine[h]
                entry["ov_update_cosine_mean"] = float(np.mean(cos)) if cos else None
                entry["ov_factor_share"] = ov.factor_share[h]
            heads_out.append(entry)
    return heads_out


def _main_rate(prediction: Prediction, attention: AttentionFits) -> tuple[int | None, DecayFit | None, float | None]:
    """The main (largest-rate) prediction's head, its fit and its fitted rate (the parity fit's when alternating)."""
    main = attention.matched[0] if prediction.heads else None
    main_fit = attention.fits[0][main] if main is not None else None
    main_rate = _assigned_rates(prediction, attention)[0] if main is not None else None
    return main, main_fit, main_rate


def build_record(
    inputs: StudyInputs,
    settings: Settings,
    prediction: Prediction,
    attention: AttentionFits,
    ov: OVProjection,
    probes_: GeometryProbes,
    verdicts: Verdicts,
) -> dict[str, Any]:
    """cbu.json's content."""
    predicted, spectra = prediction.heads, prediction.spectra
    heads_out = _head_entries(prediction, attention, ov, settings)
    observed = sum(f.clean(settings.r2_min, settings.max_rate) for f in attention.fits[0])
    groups = rate_groups([f.fitted_lambda for f in attention.fits[0] if f.clean(settings.r2_min, settings.max_rate)])
    main, _, main_rate = _main_rate(prediction, attention)
    return {
        "weighting": settings.weighting,
        "regime": inputs.regime.name,
        "n_contexts": int(inputs.ctx.tokens.shape[0]),
        "settings": {
            "min_distance": settings.min_distance,
            "r2_min": settings.r2_min,
            "max_rate": settings.max_rate,
            "min_share": settings.min_share,
            "null_splits": settings.null_splits,
            "rate_tol": settings.rate_tol,
        },
        "spectrum": prediction.joint.to_dict(),
        "factor_spectra": [s.to_dict() for s in spectra] if len(prediction.factors) > 1 else None,
        "predicted_heads": [{**p.to_dict(), "readout_rate": r} for p, r in zip(predicted, prediction.readout_of)],
        "matched_heads": list(attention.matched),
        "assignment": attention.assignment.to_dict(),
        "greedy_assignment": attention.greedy.to_dict(),
        "readout_decay": [r.to_dict() for r in prediction.readouts],
        "readout_length": settings.readout_length,
        "predicted_head_count": len(predicted),
        "observed_head_count": int(observed),
        "observed_rate_groups": groups,
        "rate_group_tol": RATE_GROUP_TOL,
        "n_heads": int(inputs.model_cfg.n_heads),
        "n_layers": len(attention.fits),
        "main_head": main,
        "main_predicted_lambda": predicted[0].rate if predicted else None,
        "main_fitted_lambda": main_rate,
        "main_readout_lambda": prediction.readout_of[0] if predicted else None,
        "heads": heads_out,
        "mean_attention": [st.mean.tolist() for st in attention.stats],
        "attention_spread": [st.std.tolist() for st in attention.stats],
        "probes": {
            "intermediate_layer": probes_.mid,
            "final_layer": probes_.final,
            "layers": list(probes_.layers),
            **probes_.results,
        },
        "null_model": {
            "features": NULL_FEATURES,
            "target": "the constrained belief",
            "n_splits": settings.null_splits,
            "rule": R2_RULE,
            "layers": {name: c.to_dict() for name, c in probes_.null.items()},
        },
        "verdicts": verdicts.to_dict(),
    }


def draw_figures(
    inputs: StudyInputs,
    settings: Settings,
    prediction: Prediction,
    attention: AttentionFits,
    ov: OVProjection,
    probes_: GeometryProbes,
    main: int | None,
) -> list[Path]:
    """figures/cbu.png: factor 0's three coordinates for the simplex panels (a product's first factor)."""
    ctx, k = inputs.ctx, probes_.k
    T = ctx.tokens.shape[1]
    dist = by_distance(attention.stats[0].mean)[:, T - 1]  # [H, T] the last query
    spread = by_distance(attention.stats[0].std)[:, T - 1]
    shown = main if main is not None else 0
    X3 = slice(0, 3)
    rows = probes_.mid_rows
    mid_pred = probes_.predictions[(probes_.mid, "constrained")][:, X3]
    title = f"{process_title(inputs.process.name, inputs.process.params)}: constrained belief update"
    rate_of, readout_at = attention.rate_of, attention.readout_at
    draws = {}
    if k >= 3 and prediction.spectra[0].updates.shape[1] == 3:
        draws["cbu"] = lambda: plot_cbu_panel(
            dist,
            spread,
            [None if rate_of.get(h) is None else rate_of[h].rate for h in range(dist.shape[0])],
            [readout_at.get(h) for h in range(dist.shape[0])],
            ov.ov[shown][: ov.vocab, X3],
            ov.updates[:, X3],
            rows.Y[:, X3],
            mid_pred,
            rows.Y[:, k : k + 3],
            min_distance=settings.min_distance,
            main_head=shown,
            title=title,
        )
    return save_figures(inputs.cfg, inputs.run_dir, draws)


def study_output(
    record: dict[str, Any],
    figs: list[Path],
    settings: Settings,
    prediction: Prediction,
    attention: AttentionFits,
    probes_: GeometryProbes,
    verdicts: Verdicts,
) -> StudyOutput:
    """The report's tables and captions and summary.json's headline numbers."""

    def n(v: Any) -> str:
        return "–" if v is None else f"{v:.3g}"

    heads_out = record["heads"]
    observed, groups = record["observed_head_count"], record["observed_rate_groups"]
    _, main_fit, main_rate = _main_rate(prediction, attention)
    head_rows = [
        [
            str(e["layer"]),
            str(e["head"]),
            n(e["predicted_lambda"]),
            n(e["readout_lambda"]),
            n(e["fitted_lambda"]),
            n(e["r2"]),
            n(e["parity_rate"]),
            n(e["parity_r2"]),
            "yes" if e["clean_decay"] else "no",
            n(e["nearest_gap"]),
            n(e.get("ov_update_cosine_mean")),
        ]
        for e in heads_out
    ]
    probe_rows_t = [
        [f"{layer} -> {target}", n(r["r2_heldout_contexts"]), n(r["mse_heldout_contexts"]), n(r["mse_shuffled"])]
        for layer, d in probes_.results.items()
        for target, r in d.items()
    ]
    null_rows = [
        [
            c.layer,
            n(_mean(c.model_r2)),
            n(_mean(c.null_r2)),
            n(_mean(c.beliefs_r2)),
            n(c.verdict.numbers["margin"]),
            n(c.verdict.numbers["spread"]),
            c.verdict.verdict,
        ]
        for c in probes_.null.values()
    ]
    a, g = attention.assignment, attention.greedy
    verdict_rows = [
        [v.hypothesis, v.verdict, v.rule]
        for v in (verdicts.constrained_belief, verdicts.decay_first_order, verdicts.decay_readout, verdicts.head_count)
    ]
    tables = (
        (
            "Constrained belief update: attention heads",
            [
                "layer",
                "head",
                "predicted λ",
                "readout rate",
                "fitted λ",
                "R²",
                "parity rate",
                "parity R²",
                "clean decay",
                "gap to nearest predicted λ",
                "OV·u cosine",
            ],
            head_rows,
            f"Predicted heads: {len(prediction.heads)}; heads with a clean exponential decay in block 0: {observed} "
            f"(R² >= {settings.r2_min:g}, rate < {settings.max_rate:g}), in {len(groups)} group(s) of rates (gaps > "
            f"{RATE_GROUP_TOL:g}). Fits on within-query log-ratios of the mean "
            f"attention, distances >= {settings.min_distance}. Block 0's heads assigned to the predictions by least "
            f"total |rate gap| (Hungarian): {list(a.heads)}, cost {a.cost:.3g} (greedy: {list(g.heads)}, cost "
            f"{g.cost:.3g}; {UNMATCHED_COST:g} per prediction without a clean head).",
        ),
        (
            "Constrained belief update: probes",
            ["probe", "R² held out (contexts)", "MSE held out", "MSE shuffled"],
            probe_rows_t,
            "Linear probes onto the constrained beliefs (the predicted intermediate geometry) and the "
            "beliefs; context-disjoint held-out splits.",
        ),
        (
            "Constrained belief update: against the null",
            ["layer", "→ constrained R²", "null → constrained R²", "→ belief R²", "margin", "spread", "verdict"],
            null_rows,
            f"Null: {NULL_FEATURES}. Means over {settings.null_splits} common context-disjoint splits. "
            f"Rule: {R2_RULE}.",
        ),
        (
            "Constrained belief update: verdicts",
            ["hypothesis", "verdict", "rule"],
            verdict_rows,
            'Each verdict could have come out "not supported" on these data.',
        ),
    )
    captions = {
        "cbu": "(a) Mean attention of the last query against distance for each block-0 head, with its spread "
        "over contexts and the predicted rate^d (dashed: first-order lambda; dotted: the exact readout rate); "
        "(b) the main head's OV vectors projected into "
        "the belief simplex by the probe (solid) and the predicted update directions u_x (dotted); "
        "(c) the constrained beliefs; (d) the post-attention stream probed onto them, coloured by the "
        "true belief (a product: its first factor)."
    }
    mid, final = probes_.mid, probes_.final
    mid_c = probes_.results[mid]["constrained"]
    null_mid = probes_.null[mid]
    headline = {
        "predicted_head_count": len(prediction.heads),
        "observed_head_count": int(observed),
        "observed_rate_groups": len(groups),
        "main_predicted_lambda": record["main_predicted_lambda"],
        "main_fitted_lambda": main_rate,
        "main_readout_lambda": record["main_readout_lambda"],
        "main_r2": None if main_fit is None else main_fit.r2,
        "intermediate_r2_constrained": mid_c["r2_heldout_contexts"],
        "intermediate_r2_beliefs": probes_.results[mid]["beliefs"]["r2_heldout_contexts"],
        "final_r2_beliefs": probes_.results[final]["beliefs"]["r2_heldout_contexts"],
        "intermediate_r2_null": _mean(null_mid.null_r2),
        "intermediate_null_margin": null_mid.verdict.numbers["margin"],
        "intermediate_null_spread": null_mid.verdict.numbers["spread"],
        "assignment_cost": a.cost,
        "greedy_cost": g.cost,
        "verdict_constrained_belief": verdicts.constrained_belief.verdict,
        "verdict_decay_first_order": verdicts.decay_first_order.verdict,
        "verdict_decay_readout": verdicts.decay_readout.verdict,
        "verdict_head_count": verdicts.head_count.verdict,
    }
    return StudyOutput(
        name="cbu", json_file="cbu.json", figures=tuple(figs), captions=captions, tables=tables, headline=headline
    )


def run(inputs: StudyInputs, settings: Settings) -> StudyOutput:
    """The study (see the module docstring): its phases in order; writes cbu.json and figures/cbu.png."""
    cfg, ctx, mc = inputs.cfg, inputs.ctx, inputs.model_cfg
    prediction = predict(cfg, inputs.process, settings)  # before anything of the model is read
    post = "hook_resid_post" if mc.attn_only else "hook_resid_mid"
    mids = [f"blocks.{l}.{post}" for l in range(mc.n_layers)]
    final = predictive_models.probe_layer_name(mc)
    patterns = [f"blocks.{l}.attn.hook_pattern" for l in range(mc.n_layers)]
    with phase("cbu study", total=None, enabled=inputs.progress):
        acts = predictive_models.compute_activations(
            mc, inputs.params_state, ctx.tokens, names=list(dict.fromkeys([*patterns, *mids, final])), method="full"
        )
        attention = fit_attention(acts, patterns, ctx, prediction, settings)
        probes_ = probe_geometry(acts, mids, final, ctx, prediction, settings, cfg.seed)
        ov = project_ov(mc, inputs.params_state, probes_, prediction, ctx.bos)
    verdicts = judge(prediction, attention, probes_, settings)
    record = build_record(inputs, settings, prediction, attention, ov, probes_, verdicts)
    write_json_atomic(inputs.run_dir / "cbu.json", record)
    figs = draw_figures(inputs, settings, prediction, attention, ov, probes_, record["main_head"])
    return study_output(record, figs, settings, prediction, attention, probes_, verdicts)
