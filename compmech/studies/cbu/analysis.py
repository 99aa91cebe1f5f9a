"""The constrained-belief-update study (Piotrowski, Riechers, Filan & Shai, ICML 2025): does the first attention layer
carry out the belief update the process predicts when it is constrained to be parallel over positions?

From the process alone (`compmech.studies.cbu.theory`): the spectrum of ``M = T.sum(0)``, the heads it calls for (a decay rate
each) and the constrained belief ``pi + sum_s u_{x_s} M^(t-s)`` (the predicted intermediate geometry); for a product,
from its factors. From the trained transformer, over the run's contexts:

- every block's attention pattern averaged over the contexts (weights as ``weighting``; with its spread), and each
  head's exponential fit against distance on within-query log-ratios (`probes.attention.fit_decay`: the fitted
  lambda, R², the parity fit for alternating eigenvalues);
- beside each predicted rate, the exact readout rate (`compmech.studies.cbu.theory.readout_decay`: the decay of the belief's best
  linear readout from the token history, over every word of ``readout_length`` tokens of each factor), which the
  first-order lambda equals only for weakly informative tokens;
- the predicted heads matched to block 0's heads (each prediction, largest rate first, to the unmatched head with
  a clean decay whose fitted rate is closest; heads left over get no prediction: ``predicted_lambda`` null);
  a head **carries a clean exponential decay** when a fit (plain or parity) has R² >= ``r2_min`` and a rate below
  ``max_rate`` (a flat pattern decays at rate 1 and is no decay head); the observed head count is the number of
  block-0 heads that do, beside the predicted count, and their fitted rates in groups (`probes.attention.rate_groups`:
  how many distinct decay profiles the heads carry);
- the OV vectors of block 0 (`predictive_models.ov_vectors`) projected into the belief simplex with the probe fitted
  from block 0's post-attention stream to the beliefs (its coefficients: a displacement maps to ``ov @ coef``), and
  their cosine with the predicted update directions u_x;
- linear probes (context-disjoint held out, shuffled control) from block 0's stream after attention and before the
  MLP (``hook_resid_mid``; after the block when the model is attention-only) and from the final layer onto the
  constrained beliefs and onto the beliefs (for a product: each factor's, concatenated).

`run` is its phases in order, each a function handing a typed record to the next: `predict` (the process alone),
`fit_attention` (decay fits per head, the matching), `project_ov` (OV vectors), `probe_geometry` (the
post-attention geometry probes), `build_record` (cbu.json), `draw_figures` and `study_output` (report and summary).
Writes ``cbu.json`` and ``figures/cbu.png``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

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
from compmech.studies.cbu.theory import (HeadPrediction, ReadoutDecay, Spectrum, constrained_factor_beliefs,
                                         factor_tokens, predicted_heads, readout_decay, spectrum, update_vectors)
from figures import process_title
from hmm_processes import factor_beliefs
from probes import CONTEXT_TEST_FRACTION, LinearProbe, ProbeData, evaluate_probe, probe_rows
from probes.attention import RATE_GROUP_TOL, DecayFit, PatternStats, by_distance, fit_decay, mean_pattern, rate_groups

WEIGHTINGS = ("probability", "uniform")
#: The probe numbers cbu.json keeps (context-disjoint held out and the shuffled control beside the in-sample fit).
_PROBE_KEYS = ("mse", "r2", "mse_heldout_contexts", "mse_heldout_contexts_std", "r2_heldout_contexts",
               "heldout_contexts_note", "mse_shuffled", "n_rows", "n_contexts")


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
    readout_length: int = 8  # word length of the exact least-squares readout rate (`compmech.studies.cbu.theory.readout_decay`)

    def __post_init__(self) -> None:
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be \"probability\" or \"uniform\"; got {self.weighting!r}")
        if isinstance(self.min_distance, bool) or not isinstance(self.min_distance, int) or self.min_distance < 0:
            raise ValueError(f"min_distance must be an integer >= 0; got {self.min_distance!r}")
        for key in ("r2_min", "max_rate", "min_share"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
                raise ValueError(f"{key} must be a number in (0, 1]; got {v!r}")
        if isinstance(self.readout_length, bool) or not isinstance(self.readout_length, int) or self.readout_length < 4:
            raise ValueError(f"readout_length must be an integer >= 4; got {self.readout_length!r}")
        if isinstance(self.n_repeats, bool) or not isinstance(self.n_repeats, int) or self.n_repeats < 1:
            raise ValueError(f"n_repeats must be a positive integer; got {self.n_repeats!r}")


def check(cfg: ExperimentConfig, source: Source, model_cfg: predictive_models.ModelConfig) -> None:
    """The model must be a transformer; the process one process or a product (not a mixture: no single M to use)."""
    kind = predictive_models.kind_of(model_cfg)
    if kind != "transformer":
        raise ValueError(f"the cbu study reads attention patterns: it needs [model] kind = \"transformer\", not "
                         f"{kind!r}")
    if cfg.process.kind in ("mixture", "coupled"):
        raise ValueError(f"the cbu study needs one process or kind = \"product\"; kind = \"{cfg.process.kind}\" has "
                         "no constrained-update prediction here")
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


def match_heads(predicted: list, fits: list, r2_min: float, max_rate: float) -> list[int | None]:
    """For each predicted head (in order), the index of the block-0 head it is matched to (None: none left).

    Greedy: each prediction takes the unmatched clean head whose fitted rate (the parity fit's for an alternating
    prediction) is closest to its rate."""
    taken: set[int] = set()
    out: list[int | None] = []
    for pred in predicted:
        best, gap = None, np.inf
        for h, f in enumerate(fits):
            if h in taken or not f.clean(r2_min, max_rate):
                continue
            rate = f.fitted_lambda if pred.parity == "all" else f.parity_rate
            if rate is not None and abs(rate - pred.rate) < gap:
                best, gap = h, abs(rate - pred.rate)
        if best is not None:
            taken.add(best)
        out.append(best)
    return out


def _cos(a: np.ndarray, b: np.ndarray) -> float | None:
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return None if na == 0 or nb == 0 else float(a @ b / (na * nb))


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
    """Each block's mean attention and each head's decay fit (phase `fit_attention`), with block 0's matching."""

    stats: tuple[PatternStats, ...]  # per block: mean [H, T, T] and spread over contexts
    fits: tuple[tuple[DecayFit, ...], ...]  # per block, per head
    matched: tuple[int | None, ...]  # per predicted head: the block-0 head it is matched to
    rate_of: dict[int, HeadPrediction]  # block-0 head -> its matched prediction
    readout_at: dict[int, float | None]  # block-0 head -> the readout rate of its matched prediction


@dataclass(frozen=True, eq=False)
class GeometryProbes:
    """The post-attention geometry probes (phase `probe_geometry`)."""

    mid: str  # block 0's stream after attention, before the MLP
    final: str  # the final layer
    targets: np.ndarray  # [N, T, 2 k]: the constrained beliefs, then the beliefs
    k: int  # the constrained beliefs' width (sum S_k)
    results: dict[str, dict[str, dict[str, Any]]]  # layer -> target ("constrained", "beliefs") -> probe numbers
    predictions: dict[tuple[str, str], np.ndarray]  # (layer, target) -> in-sample predictions [R, k]
    mid_rows: ProbeData  # the mid layer's probe rows (the OV projection and the figure use them)


@dataclass(frozen=True, eq=False)
class OVProjection:
    """Block 0's OV vectors in the belief simplex (phase `project_ov`)."""

    ov: np.ndarray  # [H, V(+1), sum S_k] each token's OV vector mapped by the probe's coefficients
    updates: np.ndarray  # [V, sum S_k] the predicted update directions u_x
    vocab: int  # V (without a start token)
    cosine: list[list[float | None]]  # [H][V] cos(OV, u_x)
    factor_share: list[list[float]]  # [H][factors] the share of each factor's coordinates in a head's OV vectors


def predict(cfg: ExperimentConfig, process: Any, settings: Settings) -> Prediction:
    """The prediction from the process alone: spectra, heads (a decay rate each) and the exact readout rates."""
    factors = theory_factors(cfg, process)
    spectra = [spectrum(f) for f in factors]
    predicted = predicted_heads(spectra, min_share=settings.min_share)
    joint = spectrum(process) if len(factors) > 1 else spectra[0]
    readouts = [readout_decay(f, settings.readout_length) for f in factors]
    # the readout rate of a predicted head: its factors' (mean |rate|), when each of them excites one eigenvalue only
    n_eig = [len({p.eigenvalue for p in predicted if k in p.factors}) for k in range(len(factors))]
    readout_of = [None if any(n_eig[k] > 1 for k in p.factors) else
                  float(np.mean([abs(readouts[k].rate) for k in p.factors])) for p in predicted]
    return Prediction(factors=tuple(factors), spectra=tuple(spectra), joint=joint, heads=tuple(predicted),
                      readouts=tuple(readouts), readout_of=tuple(readout_of))


def fit_attention(acts: dict[str, np.ndarray], patterns: list[str], ctx: ContextSet, prediction: Prediction,
                  settings: Settings) -> AttentionFits:
    """Each block's mean attention and each head's decay fit; the predicted heads matched to block 0's.

    Takes the patterns out of ``acts`` (they are the largest activations)."""
    w = ctx.probs if settings.weighting == "probability" else None
    stats, layers = [], []
    for name in patterns:
        st = mean_pattern(acts.pop(name), w)  # [H, T, T]
        stats.append(st)
        layers.append(tuple(fit_decay(st.mean, min_distance=settings.min_distance, min_query=int(ctx.bos))))
    matched = match_heads(list(prediction.heads), layers[0], settings.r2_min, settings.max_rate)
    rate_of = {h: p for p, h in zip(prediction.heads, matched) if h is not None}
    readout_at = {h: r for r, h in zip(prediction.readout_of, matched) if h is not None}
    return AttentionFits(stats=tuple(stats), fits=tuple(layers), matched=tuple(matched), rate_of=rate_of,
                         readout_at=readout_at)


def probe_geometry(acts: dict[str, np.ndarray], mid: str, final: str, ctx: ContextSet, prediction: Prediction,
                   settings: Settings, seed: int) -> GeometryProbes:
    """Linear probes from the stream after attention (``mid``) and the final layer onto the constrained beliefs
    and onto the beliefs (context-disjoint held out, shuffled control)."""
    factors = list(prediction.factors)
    beliefs = ctx.beliefs if len(factors) == 1 else np.concatenate(factor_beliefs(ctx.beliefs, factors), axis=-1)
    constrained = _constrained(factors, ctx.tokens, ctx.bos)  # [N, T, sum S_k]
    targets = np.concatenate([constrained, beliefs], axis=-1)
    k = constrained.shape[-1]
    fit_kw = dict(sample_weight=None, n_repeats=settings.n_repeats, context_test_fraction=CONTEXT_TEST_FRACTION,
                  seed=seed)
    results, preds = {}, {}
    mid_rows = None
    for name in (mid, final):
        rows = probe_rows(acts[name], targets, ctx.tokens, ctx.probs, rows="distinct_contexts",
                          weighting=settings.weighting)
        kw = {**fit_kw, "sample_weight": rows.weights, "contexts": rows.context_ids, "positions": rows.positions}
        out = {}
        for target, Y in (("constrained", rows.Y[:, :k]), ("beliefs", rows.Y[:, k:])):
            ev = evaluate_probe(rows.X, Y, rows.groups, **kw)
            r = ev.result.to_dict()  # the string split of the paper is meaningless on distinct-context rows
            out[target] = {key: r[key] for key in _PROBE_KEYS}
            preds[(name, target)] = ev.predictions
        results[name] = out
        if name == mid:
            mid_rows = rows
    return GeometryProbes(mid=mid, final=final, targets=targets, k=k, results=results, predictions=preds,
                          mid_rows=mid_rows)


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
    ov_share = [[float(np.sum(ov[h, :vocab, a:b] ** 2) / max(np.sum(ov[h, :vocab] ** 2), 1e-300))
                 for a, b in zip(edges[:-1], edges[1:])] for h in range(ov.shape[0])]
    return OVProjection(ov=ov, updates=u, vocab=vocab, cosine=ov_cos, factor_share=ov_share)


def _head_entries(attention: AttentionFits, ov: OVProjection, settings: Settings) -> list[dict[str, Any]]:
    """One entry per head of every block: its prediction (block 0), its fit, its OV vectors (block 0)."""
    heads_out = []
    for l, fits in enumerate(attention.fits):
        for h, f in enumerate(fits):
            p = attention.rate_of.get(h) if l == 0 else None
            entry = {"layer": l, "head": h, "predicted_lambda": None if p is None else p.rate,
                     "predicted_eigenvalue": None if p is None else p.eigenvalue,
                     "predicted_parity": None if p is None else p.parity,
                     "readout_lambda": attention.readout_at.get(h) if l == 0 else None,
                     "clean_decay": f.clean(settings.r2_min, settings.max_rate), **f.to_dict()}
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
    main_rate = None
    if main_fit is not None:
        main_rate = main_fit.fitted_lambda if prediction.heads[0].parity == "all" else main_fit.parity_rate
    return main, main_fit, main_rate


def build_record(inputs: StudyInputs, settings: Settings, prediction: Prediction, attention: AttentionFits,
                 ov: OVProjection, probes_: GeometryProbes) -> dict[str, Any]:
    """cbu.json's content."""
    predicted, spectra = prediction.heads, prediction.spectra
    heads_out = _head_entries(attention, ov, settings)
    observed = sum(f.clean(settings.r2_min, settings.max_rate) for f in attention.fits[0])
    groups = rate_groups([f.fitted_lambda for f in attention.fits[0] if f.clean(settings.r2_min, settings.max_rate)])
    main, _, main_rate = _main_rate(prediction, attention)
    return {
        "weighting": settings.weighting, "regime": inputs.regime.name, "n_contexts": int(inputs.ctx.tokens.shape[0]),
        "settings": {"min_distance": settings.min_distance, "r2_min": settings.r2_min, "max_rate": settings.max_rate,
                     "min_share": settings.min_share},
        "spectrum": prediction.joint.to_dict(),
        "factor_spectra": [s.to_dict() for s in spectra] if len(prediction.factors) > 1 else None,
        "predicted_heads": [{**p.to_dict(), "readout_rate": r} for p, r in zip(predicted, prediction.readout_of)],
        "matched_heads": list(attention.matched),
        "readout_decay": [r.to_dict() for r in prediction.readouts], "readout_length": settings.readout_length,
        "predicted_head_count": len(predicted), "observed_head_count": int(observed),
        "observed_rate_groups": groups, "rate_group_tol": RATE_GROUP_TOL,
        "n_heads": int(inputs.model_cfg.n_heads),
        "main_head": main, "main_predicted_lambda": predicted[0].rate if predicted else None,
        "main_fitted_lambda": main_rate, "main_readout_lambda": prediction.readout_of[0] if predicted else None,
        "heads": heads_out,
        "mean_attention": [st.mean.tolist() for st in attention.stats],
        "attention_spread": [st.std.tolist() for st in attention.stats],
        "probes": {"intermediate_layer": probes_.mid, "final_layer": probes_.final, **probes_.results},
    }


def draw_figures(inputs: StudyInputs, settings: Settings, prediction: Prediction, attention: AttentionFits,
                 ov: OVProjection, probes_: GeometryProbes, main: int | None) -> list[Path]:
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
            dist, spread, [None if rate_of.get(h) is None else rate_of[h].rate for h in range(dist.shape[0])],
            [readout_at.get(h) for h in range(dist.shape[0])], ov.ov[shown][:ov.vocab, X3], ov.updates[:, X3],
            rows.Y[:, X3], mid_pred, rows.Y[:, k:k + 3],
            min_distance=settings.min_distance, main_head=shown, title=title)
    return save_figures(inputs.cfg, inputs.run_dir, draws)


def study_output(record: dict[str, Any], figs: list[Path], settings: Settings, prediction: Prediction,
                 attention: AttentionFits, probes_: GeometryProbes) -> StudyOutput:
    """The report's tables and captions and summary.json's headline numbers."""
    def n(v: Any) -> str:
        return "–" if v is None else f"{v:.3g}"

    heads_out = record["heads"]
    observed, groups = record["observed_head_count"], record["observed_rate_groups"]
    _, main_fit, main_rate = _main_rate(prediction, attention)
    head_rows = [[str(e["layer"]), str(e["head"]), n(e["predicted_lambda"]), n(e["readout_lambda"]),
                  n(e["fitted_lambda"]), n(e["r2"]),
                  n(e["parity_rate"]), n(e["parity_r2"]), "yes" if e["clean_decay"] else "no",
                  n(e.get("ov_update_cosine_mean"))] for e in heads_out]
    probe_rows_t = [[f"{layer} -> {target}", n(r["r2_heldout_contexts"]), n(r["mse_heldout_contexts"]),
                     n(r["mse_shuffled"])] for layer, d in probes_.results.items() for target, r in d.items()]
    tables = (
        ("Constrained belief update: attention heads",
         ["layer", "head", "predicted λ", "readout rate", "fitted λ", "R²", "parity rate", "parity R²", "clean decay",
          "OV·u cosine"], head_rows,
         f"Predicted heads: {len(prediction.heads)}; heads with a clean exponential decay in block 0: {observed} "
         f"(R² >= {settings.r2_min:g}, rate < {settings.max_rate:g}), in {len(groups)} group(s) of rates (gaps > "
         f"{RATE_GROUP_TOL:g}). Fits on within-query log-ratios of the mean "
         f"attention, distances >= {settings.min_distance}."),
        ("Constrained belief update: probes", ["probe", "R² held out (contexts)", "MSE held out", "MSE shuffled"],
         probe_rows_t, "Linear probes onto the constrained beliefs (the predicted intermediate geometry) and the "
                       "beliefs; context-disjoint held-out splits."),
    )
    captions = {"cbu": "(a) Mean attention of the last query against distance for each block-0 head, with its spread "
                       "over contexts and the predicted rate^d (dashed: first-order lambda; dotted: the exact readout rate); (b) the main head's OV vectors projected into "
                       "the belief simplex by the probe (solid) and the predicted update directions u_x (dotted); "
                       "(c) the constrained beliefs; (d) the post-attention stream probed onto them, coloured by the "
                       "true belief (a product: its first factor)."}
    mid, final = probes_.mid, probes_.final
    mid_c = probes_.results[mid]["constrained"]
    headline = {"predicted_head_count": len(prediction.heads), "observed_head_count": int(observed),
                "observed_rate_groups": len(groups),
                "main_predicted_lambda": record["main_predicted_lambda"], "main_fitted_lambda": main_rate,
                "main_readout_lambda": record["main_readout_lambda"],
                "main_r2": None if main_fit is None else main_fit.r2,
                "intermediate_r2_constrained": mid_c["r2_heldout_contexts"],
                "intermediate_r2_beliefs": probes_.results[mid]["beliefs"]["r2_heldout_contexts"],
                "final_r2_beliefs": probes_.results[final]["beliefs"]["r2_heldout_contexts"]}
    return StudyOutput(name="cbu", json_file="cbu.json", figures=tuple(figs), captions=captions, tables=tables,
                       headline=headline)


def run(inputs: StudyInputs, settings: Settings) -> StudyOutput:
    """The study (see the module docstring): its phases in order; writes cbu.json and figures/cbu.png."""
    cfg, ctx, mc = inputs.cfg, inputs.ctx, inputs.model_cfg
    prediction = predict(cfg, inputs.process, settings)
    mid = "blocks.0.hook_resid_post" if mc.attn_only else "blocks.0.hook_resid_mid"
    final = predictive_models.probe_layer_name(mc)
    patterns = [f"blocks.{l}.attn.hook_pattern" for l in range(mc.n_layers)]
    with phase("cbu study", total=None, enabled=inputs.progress):
        acts = predictive_models.compute_activations(mc, inputs.params_state, ctx.tokens,
                                                     names=[*patterns, mid, final], method="full")
        attention = fit_attention(acts, patterns, ctx, prediction, settings)
        probes_ = probe_geometry(acts, mid, final, ctx, prediction, settings, cfg.seed)
        ov = project_ov(mc, inputs.params_state, probes_, prediction, ctx.bos)
    record = build_record(inputs, settings, prediction, attention, ov, probes_)
    write_json_atomic(inputs.run_dir / "cbu.json", record)
    figs = draw_figures(inputs, settings, prediction, attention, ov, probes_, record["main_head"])
    return study_output(record, figs, settings, prediction, attention, probes_)
