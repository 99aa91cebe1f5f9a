"""The order-k controls of one run: does the residual stream hold more of the true belief than any predictor that
sees only the last k tokens could? (Riechers, Elliott & Shai 2025 use order-k controls; issue 27.)

Per order k in ``[studies.markov_order] orders`` and per analysed layer:

- **The order-k ceiling** (the verdict's control): the R² of the true beliefs from the best function of the last k
  tokens, i.e. each row's true belief replaced by the (row-weighted) mean of the true beliefs of the rows with the same
  last k tokens (rows that have seen fewer than k tokens keep their whole context, which determines the belief).
  No representation that keeps only the last k tokens, linear or not, can be read out better, and the number is in
  sample, so it favours the control. The verdict for k: the probe's held-out R² onto the true beliefs (context-
  disjoint, as probe.json's) exceeds the ceiling. The untrained model's margin sits beside it.
- **The authors' comparison**: context-disjoint held-out probes onto the order-k beliefs themselves, over the
  process's states (`compmech.markov_order.order_k_beliefs`, ``P(S | last k tokens)``) and, when ``words`` is on,
  the order-k approximation's own beliefs (`compmech.markov_order.markov_approximation`: one-hot on the last k tokens
  once k are seen), beside the held-out shuffled control and the untrained model. Reported, not judged: a residual
  stream that keeps the current token fits the order-1 targets almost perfectly whatever else it holds (the
  untrained model's R² onto them is near 1), so "fits the true beliefs better than the order-k beliefs" cannot be
  won at k = 1 by any model; the ceiling above is the comparison that can fail either way.
- **The norm-shuffled control** (``norms``, as the authors' analysis code): probes onto the *unnormalised* beliefs
  (`unnormalized_beliefs`: the previous belief times the last token's matrix, whose size is that token's probability
  given the past) and onto the same vectors with their norms permuted across the probe's rows
  (`probes.norm_shuffle.shuffle_belief_norms`: directions kept). Reported, not judged: see the README for what the
  gap between the two can and cannot say.
- **The exact losses**: the cross-entropy per token of the optimal predictor, the model and each order-k predictor
  (k = 0 included), summed exactly over the enumerated contexts (positions predicting a token inside the context).

Writes ``markov_order.json`` (`MarkovOrderRecord`), ``figures/markov_order.png`` and the report's tables. Needs the
exact regime (every context enumerated) and an HMM or generalized HMM source.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import predictive_models  # a lazy package (PEP 562): JAX is imported when a model is first run
from compmech.markov_order import markov_approximation, order_k_beliefs
from compmech.mixed_states import belief_trajectories
from compmech.runs.files import write_json_atomic
from compmech.runs.markov_order_record import (
    NORM_SHUFFLED,
    TRUE_BELIEFS,
    UNNORMALIZED,
    LayerRecord,
    LossRow,
    MarkovOrderRecord,
    TargetProbe,
)
from compmech.runs.probing import distinct_context_rows
from compmech.runs.progress import phase
from compmech.runs.run_figures import save_figures
from compmech.runs.settings import ExperimentConfig
from compmech.runs.sources import Source
from compmech.studies.base import StudyInputs, StudyOutput
from compmech.studies.markov_order.plots import plot_markov_order
from figures import layer_label, process_title
from hmm_processes import HMM, GeneralizedHMM
from hmm_processes.beliefs import emission_from
from hmm_processes.generalized import process_vectors
from probes import CONTEXT_TEST_FRACTION, evaluate_probe
from probes.metrics import r2
from probes.norm_shuffle import shuffle_belief_norms

WEIGHTINGS = ("uniform", "probability")
#: The largest order whose word states are probed (V^k of them).
MAX_WORD_STATES = 512


@dataclass(frozen=True)
class Settings:
    """[studies.markov_order] options."""

    orders: tuple[int, ...] = (1, 2, 3)  # the Markov orders k of the controls (each >= 1)
    layers: tuple[str, ...] = ()  # activations analysed (names as in [probe] layers); empty = the probe layer
    words: bool = True  # also probe the approximation's own beliefs (one-hot k-words: the authors' targets)
    # also probe the unnormalised beliefs and their norm-shuffled control (the authors' shuffle_belief_norms)
    norms: bool = True
    # rows: every distinct context once ("uniform", as the paper's probe) or weighted by its probability
    weighting: str = "uniform"
    n_repeats: int = 3  # context-disjoint held-out splits of each probe

    def __post_init__(self) -> None:
        bad = [k for k in self.orders if isinstance(k, bool) or not isinstance(k, int) or k < 1]
        if not self.orders or bad:
            raise ValueError(f"orders must be integers >= 1, e.g. [1, 2, 3]; got {list(self.orders)!r}")
        if len(set(self.orders)) != len(self.orders):
            raise ValueError(f"orders must not repeat; got {list(self.orders)!r}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f'weighting must be "uniform" or "probability"; got {self.weighting!r}')
        if isinstance(self.n_repeats, bool) or not isinstance(self.n_repeats, int) or self.n_repeats < 1:
            raise ValueError(f"n_repeats must be a positive integer; got {self.n_repeats!r}")
        if not isinstance(self.words, bool):
            raise ValueError(f"words must be true or false; got {self.words!r}")
        if not isinstance(self.norms, bool):
            raise ValueError(f"norms must be true or false; got {self.norms!r}")
        if not all(isinstance(n, str) and n for n in self.layers):
            raise ValueError(f"layers must be activation names; got {list(self.layers)!r}")


def check(cfg: ExperimentConfig, source: Source, model_cfg: predictive_models.ModelConfig) -> None:
    """An HMM or generalized HMM in the exact regime, context longer than the largest order."""
    if not isinstance(source.process, (HMM, GeneralizedHMM)):
        raise ValueError("the markov_order study needs an HMM or generalized HMM process (its beliefs over states)")
    if not source.traits.exact_regime:
        raise ValueError("the markov_order study needs the exact regime (every context enumerated)")
    settings = cfg.studies["markov_order"]
    length = int(cfg.model.get("context_length", 0))
    if length and max(settings.orders) >= length:
        raise ValueError(
            f"orders {list(settings.orders)}: each must be below the context length {length} (at k >= the context "
            "length the order-k predictor sees everything)"
        )


def _real_tokens(inputs: StudyInputs) -> np.ndarray:
    """The process's tokens of every context [N, T'] (the start token dropped)."""
    tokens = np.asarray(inputs.ctx.tokens)
    return tokens[:, 1:] if inputs.ctx.bos else tokens


def _with_start(inputs: StudyInputs, beliefs: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Beliefs of the real tokens [N, T', k] aligned with the model's positions (the prior at the start token)."""
    if not inputs.ctx.bos:
        return beliefs
    start = np.broadcast_to(prior, (beliefs.shape[0], 1, prior.shape[0]))
    return np.concatenate([start, beliefs], axis=1)


def control_targets(inputs: StudyInputs, settings: Settings) -> dict[str, np.ndarray]:
    """Every probe target by label, aligned with the model's positions: the true beliefs [N, T, S], (``norms``) the
    unnormalised beliefs [N, T, S], each order's state beliefs [N, T, S] and (``words``) word beliefs [N, T, W_k]. The
    norm-shuffled control is drawn later, over the probe's rows (`probe_layers`)."""
    process = inputs.process
    tokens = _real_tokens(inputs)
    prior = np.asarray(inputs.ctx.beliefs[0, 0]) if inputs.ctx.bos else None
    targets = {TRUE_BELIEFS: np.asarray(inputs.ctx.beliefs)}
    if settings.norms:
        targets[UNNORMALIZED] = unnormalized_beliefs(
            np.asarray(process_vectors(process)[0]),
            _prior(process, prior),
            np.asarray(inputs.ctx.beliefs),
            tokens,
            bos=inputs.ctx.bos,
        )
    for k in settings.orders:
        states = order_k_beliefs(process, tokens, k, prior=prior)
        targets[f"order-{k} states"] = _with_start(inputs, states, _prior(process, prior))
        if settings.words:
            approx = markov_approximation(process, k)
            if approx.T.shape[1] <= MAX_WORD_STATES:
                words, _ = belief_trajectories(approx, tokens)
                targets[f"order-{k} words"] = _with_start(inputs, words, approx.stationary_distribution)
    return targets


def unnormalized_beliefs(
    T: np.ndarray, prior: np.ndarray, beliefs: np.ndarray, tokens: np.ndarray, *, bos: bool
) -> np.ndarray:
    """The authors' unnormalised beliefs [N, T, S], aligned with the model's positions: at a position that reads
    token x, the previous (normalised) belief times ``T[x]`` before it is divided by its sum, i.e. ``eta_{t-1} T^(x_t)``
    (``eta_{-1}`` the prior); its direction is the belief ``beliefs[:, t]`` and its sum ``eta_{t-1} T^(x_t) tau`` the
    probability of the last token given the ones before. With a start token, its position keeps the prior.

    As ``GHMM.derive_mixed_state_tree`` builds ``unnorm_state_prob_vector`` (the numerator of
    ``_compute_next_distribution``) in ``epsilon_transformers/process/GHMM.py`` of github.com/adamimos/
    epsilon-transformers (commit c3e9e84ac867a22899094f09ee6685ea848d4f53): one step unnormalised, not the forward
    vector of the whole word. ``T`` [V, S, S], ``prior`` [S], ``beliefs`` [N, T, S], ``tokens`` [N, T'] (the process's
    tokens, the start token dropped; T' = T - 1 with one, T without)."""
    beliefs = np.asarray(beliefs, np.float64)
    tokens = np.asarray(tokens)
    start = beliefs[:, :1] if bos else np.broadcast_to(prior, (beliefs.shape[0], 1, prior.shape[0]))
    real = beliefs[:, 1:] if bos else beliefs  # [N, T', S] the beliefs after each real token
    previous = np.concatenate([start, real[:, :-1]], axis=1)  # [N, T', S] the belief before each real token
    out = np.empty_like(real)
    for v in range(T.shape[0]):
        at = tokens == v  # [N, T']
        out[at] = previous[at] @ T[v]
    return np.concatenate([beliefs[:, :1], out], axis=1) if bos else out


def window_ids(inputs: StudyInputs, k: int) -> np.ndarray:
    """An id per (string, position) [N, T] for what an order-k predictor sees there: the last k tokens, or the whole
    context where fewer than k tokens have been seen (the start token's position: nothing)."""
    tokens = _real_tokens(inputs)  # [N, T']
    N, L = tokens.shape
    win = np.full((N, L, k), -1, dtype=np.int64)  # -1: before the first token
    for t in range(L):
        part = tokens[:, max(0, t - k + 1) : t + 1]
        win[:, t, k - part.shape[1] :] = part
    if inputs.ctx.bos:
        win = np.concatenate([np.full((N, 1, k), -2, dtype=np.int64), win], axis=1)  # the start token: nothing seen
    _, ids = np.unique(win.reshape(-1, k), axis=0, return_inverse=True)
    return ids.reshape(win.shape[:2])


def ceiling_r2(Y: np.ndarray, groups: np.ndarray, weights: np.ndarray | None) -> float:
    """R² of ``Y`` [R, S] from its (weighted) mean within each group [R]: the best any function of the group gives."""
    w = np.ones(Y.shape[0]) if weights is None else np.asarray(weights, np.float64)
    _, inverse = np.unique(groups, return_inverse=True)
    total = np.zeros((inverse.max() + 1, Y.shape[1]))
    np.add.at(total, inverse, w[:, None] * Y)
    mass = np.bincount(inverse, weights=w)
    return float(r2(Y, (total / mass[:, None])[inverse], sample_weight=w))


def _prior(process: HMM | GeneralizedHMM, prior: np.ndarray | None) -> np.ndarray:
    return np.asarray(process_vectors(process)[1] if prior is None else prior, dtype=np.float64)


def exact_losses(
    inputs: StudyInputs, settings: Settings, log_probs: np.ndarray, targets: dict[str, np.ndarray]
) -> tuple[list[LossRow], str]:
    """The cross-entropy per token (nats) of the optimal predictor, the model (``log_probs`` [N, T, V(+1)]) and each
    order-k predictor (k = 0, and ``orders`` from their state beliefs in ``targets``, `control_targets`), exact over
    the enumerated contexts: positions t predicting token t + 1 inside the context, weighted by the strings'
    probabilities."""
    ctx, process = inputs.ctx, inputs.process
    tokens = np.asarray(ctx.tokens)  # [N, T]
    probs = np.asarray(ctx.probs) / np.sum(ctx.probs)  # [N]
    nxt = tokens[:, 1:]  # [N, T-1], the token each position t < T-1 predicts
    T_, _, tau = process_vectors(process)
    E = emission_from(T_, tau)  # [S, V]

    def ce(law: np.ndarray) -> float:  # law [N, T-1, V] of the token at t+1
        p = np.take_along_axis(law, nxt[..., None], axis=-1)[..., 0]  # [N, T-1]
        return float(probs @ -np.log(p).mean(axis=1))

    optimal = ce(np.asarray(ctx.next_token_probs)[:, :-1])
    rows = [LossRow("optimal", None, optimal, 0.0)]
    rows.append(LossRow("model", None, ce(np.exp(np.asarray(log_probs, np.float64))[:, :-1]), 0.0))
    prior = np.asarray(ctx.beliefs[0, 0]) if ctx.bos else _prior(process, None)
    M = T_.sum(axis=0)
    first = 0 if ctx.bos else 1  # the state distribution after position 0's token, with nothing seen
    zero = np.stack([prior @ np.linalg.matrix_power(M, first + t) for t in range(nxt.shape[1])])  # [T-1, S]
    rows.append(LossRow("order-0", 0, ce(np.broadcast_to(zero @ E, (*nxt.shape, E.shape[1]))), 0.0))
    for k in settings.orders:
        rows.append(LossRow(f"order-{k}", k, ce(targets[f"order-{k} states"][:, :-1] @ E), 0.0))
    out = [LossRow(r.predictor, r.k, r.loss, r.loss / optimal - 1.0) for r in rows]
    where = "positions 0..T-2, each predicting the next token inside the context (the start token's included)"
    return out, where if ctx.bos else where.replace(" (the start token's included)", "")


def probe_layers(
    inputs: StudyInputs, settings: Settings, targets: dict[str, np.ndarray]
) -> tuple[list[LayerRecord], dict[str, float]]:
    """Every analysed layer's probes onto every target, trained and untrained, with the margins over the order-k
    ceilings; and the ceilings (`ceiling_r2` of the true beliefs over each order's `window_ids`, on the rows)."""
    layers = list(settings.layers) or [predictive_models.probe_layer_name(inputs.model_cfg)]
    labels = list(targets)
    sizes = [targets[t].shape[-1] for t in labels]
    edges = np.cumsum([0, *sizes])
    ids = np.stack([window_ids(inputs, k) for k in settings.orders], axis=-1).astype(np.float64)  # [N, T, K]
    stacked = np.concatenate([targets[t] for t in labels] + [ids], axis=-1)  # [N, T, sum sizes + K]
    X, data = distinct_context_rows(
        inputs.model_cfg, inputs.params_state, inputs.ctx, layers, stacked, settings.weighting
    )
    X0, _ = distinct_context_rows(
        inputs.model_cfg, inputs.untrained_params, inputs.ctx, layers, stacked, settings.weighting
    )
    w = data.weights if settings.weighting == "probability" else None
    Y = {t: data.Y[:, a:b] for t, a, b in zip(labels, edges[:-1], edges[1:])}
    if UNNORMALIZED in Y:  # the norms permuted over the probe's rows (each distinct context once), seeded by the run
        Y[NORM_SHUFFLED] = shuffle_belief_norms(Y[UNNORMALIZED], inputs.cfg.seed)
        labels.append(NORM_SHUFFLED)
    row_ids = data.Y[:, edges[-1] :].astype(np.int64)  # [R, K]
    ceilings = {str(k): ceiling_r2(Y[TRUE_BELIEFS], row_ids[:, i], w) for i, k in enumerate(settings.orders)}
    fit = dict(
        contexts=data.context_ids,
        positions=data.positions,
        sample_weight=w,
        n_repeats=settings.n_repeats,
        context_test_fraction=CONTEXT_TEST_FRACTION,
        seed=inputs.cfg.seed,
        heldout_scores=True,
    )
    records = []
    for layer in layers:
        found = []
        for t in labels:
            ev = evaluate_probe(X[layer], Y[t], data.groups, **fit)
            ev0 = evaluate_probe(X0[layer], Y[t], data.groups, **fit)
            held = ev.heldout
            k = int(t.split("-")[1].split()[0]) if t.startswith("order-") else None
            found.append(
                TargetProbe(
                    target=t,
                    k=k,
                    dim=int(Y[t].shape[1]),
                    r2=float(ev.result.r2),
                    r2_heldout_contexts=ev.result.r2_heldout_contexts,
                    mse_heldout_contexts=ev.result.mse_heldout_contexts,
                    r2_shuffled_heldout_contexts=None if held is None else held.r2_shuffled_heldout_contexts,
                    untrained_r2_heldout_contexts=ev0.result.r2_heldout_contexts,
                )
            )
        true = found[0]

        def margin(value: float | None, ceiling: float) -> float | None:
            return None if value is None else float(value - ceiling)

        records.append(
            LayerRecord(
                layer=layer,
                probes=found,
                margins={k: margin(true.r2_heldout_contexts, c) for k, c in ceilings.items()},
                untrained_margins={k: margin(true.untrained_r2_heldout_contexts, c) for k, c in ceilings.items()},
            )
        )
    return records, ceilings


def _n(value: float | None, fmt: str = ".4f") -> str:
    return "–" if value is None else format(value, fmt)


def report_tables(record: MarkovOrderRecord) -> tuple[tuple[str, list[str], list[list[Any]], str], ...]:
    layer = record.layers[-1]
    probe_rows_ = [
        [
            p.target,
            p.dim,
            _n(p.r2_heldout_contexts),
            _n(p.r2_shuffled_heldout_contexts),
            _n(p.untrained_r2_heldout_contexts),
            _n(p.r2),
        ]
        for p in layer.probes
    ]
    loss_rows = [[r.predictor, _n(r.loss, ".5f"), _n(r.excess, ".2%")] for r in record.losses]
    verdicts = "; ".join(
        f"k = {k}: {'yes' if v else 'no' if v is not None else '–'} (ceiling {_n(record.ceilings[k], '.4f')}, "
        f"margin {_n(layer.margins[k], '+.4f')}, untrained {_n(layer.untrained_margins[k], '+.4f')})"
        for k, v in record.verdicts.items()
    )
    return (
        (
            f"Order-k controls: probes at {layer_label(layer.layer)}",
            ["target", "size", "R² held out", "shuffled (held out)", "untrained (held out)", "R² in sample"],
            probe_rows_,
            "context-disjoint held-out R² (pooled over the target's coordinates). Does the probe onto the true "
            "beliefs (held out) beat the best any function of the last k tokens gives (the order-k ceiling, in "
            f"sample)? {verdicts}. The rows onto the order-k targets are the authors' comparison, reported, not "
            "judged (the current token alone fits the order-1 targets).",
        ),
        (
            "Order-k controls: cross-entropy per token",
            ["predictor", "nats / token", "above optimal"],
            loss_rows,
            f"exact over the {record.n_contexts} enumerated contexts; {record.positions}",
        ),
    )


def run(inputs: StudyInputs, settings: Settings) -> StudyOutput:
    """The study (module docstring); writes markov_order.json and figures/markov_order.png."""
    with phase("markov_order study", total=None, enabled=inputs.progress):
        targets = control_targets(inputs, settings)
        layers, ceilings = probe_layers(inputs, settings, targets)
        log_probs = predictive_models.compute_log_probs(inputs.model_cfg, inputs.params_state, inputs.ctx.tokens)
        losses, positions = exact_losses(inputs, settings, log_probs, targets)
    last = layers[-1]
    verdicts = {k: (None if m is None else bool(m > 0)) for k, m in last.margins.items()}
    record = MarkovOrderRecord(
        process=process_title(inputs.process.name, inputs.process.params),
        orders=list(settings.orders),
        weighting=settings.weighting,
        n_contexts=int(np.asarray(inputs.ctx.tokens).shape[0]),
        positions=positions,
        losses=losses,
        ceilings=ceilings,
        layers=layers,
        verdicts=verdicts,
    )
    write_json_atomic(inputs.run_dir / "markov_order.json", record.to_json())
    shown = [r for r in losses if r.predictor != "optimal"]
    figs: list[Path] = save_figures(
        inputs.cfg,
        inputs.run_dir,
        {
            "markov_order": lambda: plot_markov_order(
                [p.target for p in last.probes],
                [p.r2_heldout_contexts for p in last.probes],
                [p.untrained_r2_heldout_contexts for p in last.probes],
                [p.r2_shuffled_heldout_contexts for p in last.probes],
                [r.predictor for r in shown],
                [r.loss for r in shown],
                losses[0].loss,
                ceilings=[(f"order-{k} ceiling", c) for k, c in ceilings.items()],
                title=f"{record.process}: order-k controls, {layer_label(last.layer)}",
            )
        },
    )
    headline = {
        "verdicts": verdicts,
        "margins": dict(last.margins),
        "losses": {r.predictor: r.loss for r in losses},
    }
    return StudyOutput(
        name="markov_order",
        json_file="markov_order.json",
        figures=tuple(figs),
        captions={
            "markov_order": "Left: context-disjoint held-out R² of probes onto the true beliefs and onto each "
            "order-k control (the order-k predictor's beliefs over the process's states, and the approximation's "
            "own word states), for the trained model, the untrained one and the held-out shuffled control. Right: "
            "exact cross-entropy per token of the order-k predictors, the model and the optimum."
        },
        tables=report_tables(record),
        headline=headline,
    )
