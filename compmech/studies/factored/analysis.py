"""The factored-geometry study (Shai et al. 2026, "Transformers learn factored representations"): when the process
is a product of factors, does the network hold the joint belief or each factor's belief in its own subspace?

For the analysed activations (``layers``; default the paper's probe layer) over the distinct contexts:

- the explained-variance spectrum and the components for 80/90/95/99% of the variance, the participation ratio
  and the effective rank, beside the two predictions: the joint belief's dimension ``prod(d_k) - 1`` and the
  factored one ``sum(d_k - 1)``, with ``d_k`` the dimension of factor k's belief vectors (their linear rank over
  the contexts: the number of states for a generic HMM factor);
- like with like: the same component counts, at every threshold, of the true factor beliefs side by side (what a
  factored representation holds) and of the true joint beliefs (what a joint one holds), over the same rows and
  weights, and where the activations' count falls between them (`count_comparison`): a rank is not a count of
  components for a share of the variance, so the activations' counts are set against these, not against the ranks;
- a linear probe onto each factor's belief (its marginal, `hmm_processes.factor_beliefs`) and onto the joint
  belief, with the context-disjoint held-out error, the shuffled control and the untrained model;
- the principal angles between the factors' belief subspaces (`probes.dimension.belief_subspace`, each fitted
  with the other factors' beliefs as covariates): near 90 degrees for a factored representation;
- the authors' subspace overlap between each pair of factors' probe read-out subspaces (simplexity
  ``analysis/linear_regression.py``, ``_compute_subspace_orthogonality``: the mean squared cosine of the principal
  angles; `probes.dimension.subspace_overlap` on `probes.dimension.probe_subspace`), beside its null: random subspaces
  of the factors' belief dimensions in the activations' width (`probes.dimension.random_overlap_null`);
- the same dimension measures, angles and overlaps at every ``tokens_<N>`` checkpoint of the run: the effective
  dimension over training against the factored and the joint predictions (``figures/factored_over_training.png``).

Writes ``factored.json`` and ``figures/factored_variance.png``, ``figures/factored_over_training.png`` (+ one belief
panel per factor).
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

import predictive_models  # a lazy package (PEP 562): JAX is imported when a model is first run
from compmech.runs.analysis import checkpoint_tokens
from compmech.runs.files import write_json_atomic
from compmech.runs.probing import distinct_context_rows
from compmech.runs.processes import component_processes
from compmech.runs.progress import phase
from compmech.runs.run_figures import belief_frame_of, save_figures
from compmech.runs.settings import ExperimentConfig
from compmech.runs.sources import Source
from compmech.studies.base import StudyInputs, StudyOutput
from compmech.studies.factored.plots import plot_dimension_over_training, plot_explained_variance
from figures import layer_label, plot_belief_panels, process_title
from hmm_processes import factor_beliefs
from probes import CONTEXT_TEST_FRACTION, ProbeData, evaluate_probe
from probes.dimension import (
    belief_subspace,
    principal_angles,
    probe_subspace,
    random_overlap_null,
    subspace_overlap,
    variance_spectrum,
)

WEIGHTINGS = ("probability", "uniform")


@dataclass(frozen=True)
class Settings:
    """[studies.factored] options."""

    # activations analysed (names as in [probe] layers); empty = the paper's probe layer
    layers: tuple[str, ...] = ()
    # how the distinct contexts are weighted in the variance and the fits: "probability" (as the model meets
    # them; in the sampled regime, by how often they were sampled) or "uniform" (every distinct context once)
    weighting: str = "probability"
    thresholds: tuple[float, ...] = (0.8, 0.9, 0.95, 0.99)  # variance shares whose component counts are reported
    n_repeats: int = 3  # held-out splits of each per-factor probe

    def __post_init__(self) -> None:
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f'weighting must be "probability" or "uniform"; got {self.weighting!r}')
        if not self.thresholds or any(
            isinstance(q, bool) or not isinstance(q, (int, float)) or not 0 < q <= 1 for q in self.thresholds
        ):
            raise ValueError(
                f"thresholds must be variance shares in (0, 1], e.g. [0.9, 0.95]; got {list(self.thresholds)!r}"
            )
        if isinstance(self.n_repeats, bool) or not isinstance(self.n_repeats, int) or self.n_repeats < 1:
            raise ValueError(f"n_repeats must be a positive integer; got {self.n_repeats!r}")
        if not all(isinstance(n, str) and n for n in self.layers):
            raise ValueError(f"layers must be activation names; got {list(self.layers)!r}")


def check(cfg: ExperimentConfig, source: Source, model_cfg: predictive_models.ModelConfig) -> None:
    """The process must be a product (kind "product", "coupled" or "factored") of at least two factors."""
    if cfg.process.kind not in ("product", "coupled", "factored"):
        raise ValueError(
            'the factored study needs a product process: [process] kind = "product" (or "coupled", "factored") '
            "with one [[process.components]] table per factor"
        )


def belief_rank(beliefs: np.ndarray) -> int:
    """The linear rank of a set of belief vectors [n, S] (relative tolerance 1e-9): a factor's d_k."""
    s = np.linalg.svd(np.asarray(beliefs, np.float64), compute_uv=False)
    return int(np.sum(s > s[0] * 1e-9)) if s.size and s[0] > 0 else 0


def predicted_dimensions(ranks: list[int]) -> tuple[int, int]:
    """(joint, factored) dimensions from the factors' d_k: prod(d_k) - 1 and sum(d_k - 1)."""
    return int(np.prod(ranks)) - 1, int(sum(r - 1 for r in ranks))


# ------------------------------------------------------------------------------------------- the records


@dataclass(frozen=True, eq=False)
class FactorTargets:
    """What the study probes for, on the run's contexts: the joint belief beside each factor's."""

    layers: tuple[str, ...]  # the analysed activations; layers[0] is the headline layer
    factors: tuple[Any, ...]  # each factor's process (an HMM or a generalized HMM), in [process] order
    targets: np.ndarray  # [N, T, S + sum S_k] the joint belief, then each factor's belief (its marginal)
    edges: np.ndarray  # [K + 2] column edges of the joint block and each factor's block in targets


@dataclass(frozen=True, eq=False)
class ContextRows:
    """The distinct-context rows of the analysed activations (trained and untrained) and their targets."""

    X: dict[str, np.ndarray]  # layer -> [R, d] the trained model's activations
    X0: dict[str, np.ndarray]  # layer -> [R, d] the untrained model's
    data: ProbeData  # the rows' targets, weights and ids (its X: the first layer's)
    weights: np.ndarray | None  # [R] the rows' weights in the variance and the fits; None: uniform
    joint: np.ndarray  # [R, S] the joint belief
    factors: tuple[np.ndarray, ...]  # K x [R, S_k] each factor's belief
    ranks: list[int]  # d_k: each factor's belief rank over the rows
    dim_joint: int  # prod(d_k) - 1
    dim_factored: int  # sum(d_k - 1)


@dataclass(frozen=True)
class ThresholdCounts:
    """At one variance share: the components the activations need, beside those the true beliefs need over the same
    rows and weights, and where the activations fall."""

    threshold: str  # the variance share, as in the spectra's ``components`` keys (e.g. "0.95")
    activations: int
    factor_beliefs: int  # the true factor beliefs side by side: a factored representation's count
    joint_beliefs: int  # the true joint beliefs: a joint representation's count
    verdict: str  # one of VERDICTS

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


#: Where the activations' count falls: at most both true counts, between them, or above both.
VERDICTS = ("at most both", "between", "exceeds both")


@dataclass(frozen=True, eq=False)
class LayerProbes:
    """Each analysed layer's measures and probes (its record in factored.json), and the per-factor predictions."""

    by_layer: dict[str, dict[str, Any]]  # layer -> the dimension measures, untrained ones, joint and factor probes
    predictions: dict[tuple[str, int], np.ndarray]  # (layer, factor) -> [R, S_k] in-sample probe predictions


# ------------------------------------------------------------------------------------------- the measures


def _angles(
    X: np.ndarray, Ys: list[np.ndarray] | tuple[np.ndarray, ...], w: np.ndarray | None
) -> dict[str, list[float]]:
    """Principal angles (degrees) between each pair of factors' belief subspaces in X."""
    bases = []
    for k, Y in enumerate(Ys):
        others = np.concatenate([o for j, o in enumerate(Ys) if j != k], axis=1) if len(Ys) > 1 else None
        bases.append(belief_subspace(X, Y, sample_weight=w, others=others))
    return {
        f"{i}-{j}": [float(a) for a in principal_angles(bases[i], bases[j])]
        for i, j in itertools.combinations(range(len(Ys)), 2)
    }


def _overlaps(X: np.ndarray, Ys: list[np.ndarray] | tuple[np.ndarray, ...], w: np.ndarray | None) -> dict[str, float]:
    """The authors' subspace overlap (`probes.dimension.subspace_overlap`) between each pair of factors' probe
    read-out subspaces in X (`probes.dimension.probe_subspace`): 0 orthogonal, 1 nested."""
    bases = [probe_subspace(X, Y, sample_weight=w) for Y in Ys]
    return {f"{i}-{j}": subspace_overlap(bases[i], bases[j]) for i, j in itertools.combinations(range(len(Ys)), 2)}


def _measures(
    X: np.ndarray, Ys: list[np.ndarray] | tuple[np.ndarray, ...], w: np.ndarray | None, thresholds
) -> dict[str, Any]:
    """The explained-variance spectrum of X [R, d] with its dimension measures, and the factors' principal angles
    and subspace overlaps."""
    spec = variance_spectrum(X, sample_weight=w, thresholds=thresholds)
    return {**spec.to_dict(), "principal_angles": _angles(X, Ys, w), "subspace_overlap": _overlaps(X, Ys, w)}


def overlap_nulls(width: int, ranks: list[int], seed: int) -> dict[str, dict[str, Any]]:
    """Per pair of factors, the overlap of random subspaces of the factors' belief dimensions (d_k - 1) in the
    activations' width: the null beside the measured overlap (`probes.dimension.random_overlap_null`)."""
    return {
        f"{i}-{j}": random_overlap_null(width, max(ranks[i] - 1, 1), max(ranks[j] - 1, 1), seed=seed).to_dict()
        for i, j in itertools.combinations(range(len(ranks)), 2)
    }


# ------------------------------------------------------------------------------------------- the phases


def factor_targets(inputs: StudyInputs, settings: Settings) -> FactorTargets:
    """The analysed layers and the probe targets: the joint belief of every context and each factor's marginal."""
    layers = tuple(settings.layers) or (predictive_models.probe_layer_name(inputs.model_cfg),)
    factors = tuple(component_processes(inputs.cfg))
    joint = inputs.ctx.beliefs  # [N, T, S]
    parts = factor_beliefs(joint, list(factors))  # K x [N, T, S_k]
    sizes = [joint.shape[-1], *(p.shape[-1] for p in parts)]
    targets = np.concatenate([joint, *parts], axis=-1)  # [N, T, S + sum S_k]
    return FactorTargets(layers=layers, factors=factors, targets=targets, edges=np.cumsum([0, *sizes]))


def context_rows(inputs: StudyInputs, targets: FactorTargets, settings: Settings) -> ContextRows:
    """The trained and the untrained model's activations over the distinct contexts, the targets split into the
    joint and the factors' beliefs, the factors' ranks d_k and the two predicted dimensions."""
    names = list(targets.layers)
    X, data = distinct_context_rows(
        inputs.model_cfg, inputs.params_state, inputs.ctx, names, targets.targets, settings.weighting
    )
    X0, _ = distinct_context_rows(
        inputs.model_cfg, inputs.untrained_params, inputs.ctx, names, targets.targets, settings.weighting
    )
    w = data.weights if settings.weighting == "probability" else None
    edges = targets.edges
    joint, *factors = (data.Y[:, a:b] for a, b in zip(edges[:-1], edges[1:]))
    ranks = [belief_rank(Y) for Y in factors]
    dim_joint, dim_factored = predicted_dimensions(ranks)
    return ContextRows(
        X=X,
        X0=X0,
        data=data,
        weights=w,
        joint=joint,
        factors=tuple(factors),
        ranks=ranks,
        dim_joint=dim_joint,
        dim_factored=dim_factored,
    )


def probe_every_layer(rows: ContextRows, targets: FactorTargets, settings: Settings, seed: int) -> LayerProbes:
    """For each analysed layer: its dimension measures (trained and untrained), a probe onto each factor's belief
    (and the untrained model's) and onto the joint belief, context-disjoint held out as in probe.json."""
    data, w = rows.data, rows.weights
    fit = dict(
        contexts=data.context_ids,
        positions=data.positions,
        sample_weight=w,
        n_repeats=settings.n_repeats,
        context_test_fraction=CONTEXT_TEST_FRACTION,
        seed=seed,
    )

    def probe(Xl: np.ndarray, Y: np.ndarray) -> dict[str, Any]:
        return evaluate_probe(Xl, Y, data.groups, **fit).result.to_dict()

    by_layer, predictions = {}, {}
    for name in targets.layers:
        per_factor = []
        for k, (f, Y) in enumerate(zip(targets.factors, rows.factors)):
            ev = evaluate_probe(rows.X[name], Y, data.groups, **fit)
            predictions[(name, k)] = ev.predictions
            per_factor.append(
                {
                    "factor": k,
                    "process": f.name,
                    "n_states": int(f.num_states),
                    "belief_rank": rows.ranks[k],
                    **ev.result.to_dict(),
                    "untrained": probe(rows.X0[name], Y),
                }
            )
        by_layer[name] = {
            **_measures(rows.X[name], rows.factors, w, settings.thresholds),
            "untrained": _measures(rows.X0[name], rows.factors, w, settings.thresholds),
            "joint_probe": probe(rows.X[name], rows.joint),
            "factors": per_factor,
        }
    return LayerProbes(by_layer=by_layer, predictions=predictions)


def belief_spectra(
    joint: np.ndarray, factors: tuple[np.ndarray, ...] | list[np.ndarray], weights: np.ndarray | None, thresholds
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The true beliefs' own explained-variance spectra over the rows the activations use, with the same weights:
    (the joint beliefs [R, S], with the factors' principal angles in them; the factor beliefs side by side
    [R, sum S_k]). A factored representation needs the second's components, a joint one the first's."""
    joint_spec = _measures(joint, factors, weights, thresholds)
    side_by_side = np.concatenate(list(factors), axis=1)  # [R, sum S_k]
    return joint_spec, variance_spectrum(side_by_side, sample_weight=weights, thresholds=thresholds).to_dict()


def count_comparison(
    activations: dict[str, int], factor_beliefs: dict[str, int], joint_beliefs: dict[str, int]
) -> list[ThresholdCounts]:
    """At every threshold (the keys of ``activations``, a spectrum's ``components``), the activations' count beside
    the true factor beliefs' and the true joint beliefs', and where it falls (`VERDICTS`)."""
    out = []
    for q, n in activations.items():
        f, j = int(factor_beliefs[q]), int(joint_beliefs[q])
        verdict = VERDICTS[0] if n <= min(f, j) else VERDICTS[2] if n > max(f, j) else VERDICTS[1]
        out.append(ThresholdCounts(threshold=q, activations=int(n), factor_beliefs=f, joint_beliefs=j, verdict=verdict))
    return out


def over_training(
    inputs: StudyInputs, targets: FactorTargets, rows: ContextRows, settings: Settings
) -> list[dict[str, Any]]:
    """The headline layer's dimension measures and angles at every ``tokens_<N>`` checkpoint of the run."""
    layer = targets.layers[0]
    evolution = []
    paths = sorted((inputs.run_dir / "checkpoints").glob("tokens_*.msgpack"), key=checkpoint_tokens)
    with phase("factored study over training", total=len(paths), enabled=inputs.progress) as tick:
        for path in paths:
            ckpt = predictive_models.load_checkpoint(path)
            Xc, _ = distinct_context_rows(
                inputs.model_cfg, ckpt["params"], inputs.ctx, [layer], targets.targets, settings.weighting
            )
            m = _measures(Xc[layer], rows.factors, rows.weights, settings.thresholds)
            evolution.append(
                {
                    "tokens_requested": checkpoint_tokens(path),
                    "step": int(ckpt["step"]),
                    "tokens": int(ckpt["step"])
                    * int(ckpt["train_config"]["batch_size"])
                    * int(inputs.model_cfg.context_length),
                    **m,
                }
            )
            tick()
    return evolution


def factored_record(
    inputs: StudyInputs,
    targets: FactorTargets,
    rows: ContextRows,
    probes: LayerProbes,
    truth: dict[str, Any],
    truth_factors: dict[str, Any],
    evolution: list[dict[str, Any]],
    settings: Settings,
) -> dict[str, Any]:
    """factored.json: the headline layer's measures first, then every layer, the truths and the evolution."""
    layer = targets.layers[0]
    final = probes.by_layer[layer]
    counts = count_comparison(final["components"], truth_factors["components"], truth["components"])
    return {
        "layer": layer,
        "weighting": settings.weighting,
        "regime": inputs.regime.name,
        "n_contexts": int(rows.data.n_rows),
        "factors": [
            {"process": f.name, "n_states": int(f.num_states), "belief_rank": r}
            for f, r in zip(targets.factors, rows.ranks)
        ],
        "dim_joint": rows.dim_joint,
        "dim_factored": rows.dim_factored,
        # the true joint beliefs' own affine dimension over the rows (prod(d_k) - 1 for independent factors; a
        # coupled process's joint beliefs may span fewer)
        "joint_belief_dim": belief_rank(rows.joint) - 1,
        "components": final["components"],
        "participation_ratio": final["participation_ratio"],
        "effective_rank": final["effective_rank"],
        "principal_angles": final["principal_angles"],
        "subspace_overlap": final["subspace_overlap"],
        "subspace_overlap_untrained": final["untrained"]["subspace_overlap"],
        "overlap_null": overlap_nulls(int(rows.X[layer].shape[1]), rows.ranks, inputs.cfg.seed),
        "final_tokens": _final_tokens(inputs),
        "layers": probes.by_layer,
        "true_joint_beliefs": truth,
        "true_factor_beliefs": truth_factors,
        "components_like_with_like": [c.to_json() for c in counts],
        "exceeds_both": [c.threshold for c in counts if c.verdict == VERDICTS[2]],
        "over_training": evolution,
    }


def draw_figures(
    inputs: StudyInputs, targets: FactorTargets, rows: ContextRows, probes: LayerProbes, record: dict[str, Any]
) -> list[Path]:
    """figures/factored_variance.png (the spectra over training) and one belief panel per factor."""
    layer = record["layer"]
    final, truth, evolution = probes.by_layer[layer], record["true_joint_beliefs"], record["over_training"]
    curves = [np.asarray(e["cumulative"]) for e in evolution] + [np.asarray(final["cumulative"])]
    labels = [f"{e['tokens']:.2g} tokens" for e in evolution] + ["final"]
    title = f"{_title(inputs.process)}: explained variance of the activations {layer_label(layer)}"
    draws = {
        "factored_variance": lambda: plot_explained_variance(
            curves,
            labels,
            dim_factored=rows.dim_factored,
            dim_joint=rows.dim_joint,
            untrained=np.asarray(final["untrained"]["cumulative"]),
            truth=np.asarray(truth["cumulative"]),
            factor_truth=np.asarray(record["true_factor_beliefs"]["cumulative"]),
            title=title,
        )
    }
    share = "0.95" if "0.95" in final["components"] else next(iter(final["components"]))
    points = [*evolution, {**final, "tokens": record["final_tokens"]}]
    pairs = list(final["subspace_overlap"])
    draws["factored_over_training"] = lambda: plot_dimension_over_training(
        [max(float(e["tokens"]), 1.0) for e in points],
        np.array([e["components"][share] for e in points], dtype=float),
        np.array([e["participation_ratio"] for e in points], dtype=float),
        share=share,
        dim_factored=rows.dim_factored,
        dim_joint=rows.dim_joint,
        joint_belief_dim=record["joint_belief_dim"],
        truth_counts=(int(record["true_factor_beliefs"]["components"][share]), int(truth["components"][share])),
        overlaps={p: np.array([e["subspace_overlap"][p] for e in points]) for p in pairs},
        nulls={p: (record["overlap_null"][p]["mean"], record["overlap_null"][p]["q95"]) for p in pairs},
        untrained=(float(final["untrained"]["components"][share]), dict(final["untrained"]["subspace_overlap"])),
        title=f"{_title(inputs.process)}: {layer_label(layer)} over training",
    )
    for k, (f, Y) in enumerate(zip(targets.factors, rows.factors)):
        res = final["factors"][k]
        draws[f"factor_{k}_beliefs"] = lambda f=f, Y=Y, k=k, res=res: plot_belief_panels(
            Y,
            probes.predictions[(layer, k)],
            frame=belief_frame_of(f, Y),
            state_names=f.state_names,
            titles=["true belief of this factor", f"probed, {layer_label(layer)}"],
            suptitle=f"factor {k}: {process_title(f.name, f.params)}: held-out MSE {res['mse_heldout_contexts']:.3g} "
            f"(shuffled {res['mse_shuffled']:.3g})",
        )
    return save_figures(inputs.cfg, inputs.run_dir, draws)


def report_sections(
    targets: FactorTargets, rows: ContextRows, record: dict[str, Any], settings: Settings
) -> tuple[tuple, dict[str, str], dict[str, Any]]:
    """The report's tables, the figures' captions and summary.json's headline numbers."""
    layer = record["layer"]
    final, truth, truth_factors = record["layers"][layer], record["true_joint_beliefs"], record["true_factor_beliefs"]
    counts = [ThresholdCounts(**c) for c in record["components_like_with_like"]]
    probe_rows_ = [
        [
            f"factor {r['factor']}: {r['process']}",
            _n(r["r2_heldout_contexts"]),
            _n(r["mse_heldout_contexts"]),
            _n(r["mse_shuffled"]),
            _n(r["untrained"]["mse_heldout_contexts"]),
        ]
        for r in final["factors"]
    ]
    probe_rows_.append(
        [
            "joint belief",
            _n(final["joint_probe"]["r2_heldout_contexts"]),
            _n(final["joint_probe"]["mse_heldout_contexts"]),
            _n(final["joint_probe"]["mse_shuffled"]),
            "–",
        ]
    )
    comp = final["components"]
    nulls = record["overlap_null"]
    angle_text = "; ".join(
        f"factors {pair}: {min(a):.1f}°–{max(a):.1f}°" for pair, a in final["principal_angles"].items()
    )
    tables = (
        (
            f"Factored geometry: dimension of {layer}",
            ["measure", "value"],
            [
                ["joint-belief dimension, prod(d_k) - 1", str(rows.dim_joint)],
                ["factored dimension, sum(d_k - 1)", str(rows.dim_factored)],
                ["participation ratio", _n(final["participation_ratio"])],
                ["effective rank", _n(final["effective_rank"])],
                ["true joint beliefs' affine dimension", str(record["joint_belief_dim"])],
                *(
                    [
                        f"subspace overlap, factors {pair} (random subspaces: mean, 95th pct)",
                        f"{v:.3f} ({nulls[pair]['mean']:.3f}, {nulls[pair]['q95']:.3f})",
                    ]
                    for pair, v in final["subspace_overlap"].items()
                ),
            ],
            f"Over the {rows.data.n_rows:,} distinct contexts ({settings.weighting} weights); d_k = "
            f"{rows.ranks} (each factor's belief rank). Principal angles between the factors' belief subspaces: "
            f"{angle_text}.",
        ),
        (
            "Factored geometry: components for each share of the variance, like with like",
            [
                "share of the variance",
                f"activations ({layer})",
                "true factor beliefs, side by side",
                "true joint beliefs",
                "the activations",
            ],
            [[c.threshold, str(c.activations), str(c.factor_beliefs), str(c.joint_beliefs), c.verdict] for c in counts],
            "Principal components needed for that share of the variance, each over the same distinct contexts and "
            "weights: a factored representation needs the factor beliefs' count, a joint one the joint beliefs' count "
            '(the ranks sum(d_k - 1) and prod(d_k) - 1 are the counts at 100%). "exceeds both": the activations '
            "need more components than either.",
        ),
        (
            "Factored geometry: per-factor probes",
            ["target", "R² held out (contexts)", "MSE held out", "MSE shuffled", "MSE held out, untrained"],
            probe_rows_,
            f"Linear probes from {layer} onto each factor's belief (its marginal) and onto the joint belief; "
            "context-disjoint held-out splits as in probe.json.",
        ),
    )
    captions = {
        "factored_variance": "Cumulative explained variance of the activations over the distinct contexts at each "
        "checkpoint (light to dark) and at the end, against the number of principal components; "
        "the dashed lines mark the factored dimension sum(d_k - 1) and the joint dimension "
        "prod(d_k) - 1; grey: the untrained model; dotted: the true joint beliefs (red) and the true factor "
        "beliefs side by side (blue), over the same contexts and weights.",
        "factored_over_training": "Left: the activations' effective dimension at each checkpoint and at the end "
        "(components for 95% of the variance; participation ratio) against the factored prediction sum(d_k - 1) and "
        "the joint one prod(d_k) - 1, and the true factor and joint beliefs' own counts for 95% (dotted). Right: the "
        "authors' subspace overlap (mean squared cosine of the principal angles) between each pair of factors' probe "
        "read-out subspaces, beside random subspaces of the same dimensions (dotted: mean; band: up to the 95th "
        "percentile); x: the untrained model.",
        **{
            f"factor_{k}_beliefs": f"Factor {k}'s belief (its marginal of the joint belief) and its linear probe "
            f"from {layer}."
            for k in range(len(targets.factors))
        },
    }
    headline = {
        "dim_joint": rows.dim_joint,
        "dim_factored": rows.dim_factored,
        "components": comp,
        "true_joint_components": truth["components"],
        "true_factor_components": truth_factors["components"],
        "exceeds_both": record["exceeds_both"],
        "participation_ratio": final["participation_ratio"],
        "min_principal_angle": min((min(a) for a in final["principal_angles"].values()), default=None),
        "max_subspace_overlap": max(final["subspace_overlap"].values(), default=None),
        "joint_belief_dim": record["joint_belief_dim"],
        "factor_r2_heldout_contexts": [r["r2_heldout_contexts"] for r in final["factors"]],
        "min_factor_r2_heldout_contexts": min(r["r2_heldout_contexts"] for r in final["factors"]),
    }
    return tables, captions, headline


def run(inputs: StudyInputs, settings: Settings) -> StudyOutput:
    """The study (see the module docstring); writes factored.json and its figures."""
    targets = factor_targets(inputs, settings)
    with phase("factored study", total=None, enabled=inputs.progress):
        rows = context_rows(inputs, targets, settings)
        probes = probe_every_layer(rows, targets, settings, inputs.cfg.seed)
        truth, truth_factors = belief_spectra(rows.joint, rows.factors, rows.weights, settings.thresholds)
    evolution = over_training(inputs, targets, rows, settings)
    record = factored_record(inputs, targets, rows, probes, truth, truth_factors, evolution, settings)
    write_json_atomic(inputs.run_dir / "factored.json", record)
    figs = draw_figures(inputs, targets, rows, probes, record)
    tables, captions, headline = report_sections(targets, rows, record, settings)
    return StudyOutput(
        name="factored",
        json_file="factored.json",
        figures=tuple(figs),
        captions=captions,
        tables=tables,
        headline=headline,
    )


def _title(process: Any) -> str:
    """A figure's title for the process: a factored process with a dependency structure by its name (its factors and
    structure; "product" would misread it), any other by `figures.process_title`."""
    if isinstance(process.params, dict) and "structure" in process.params:
        return str(process.name)  # e.g. "factored_chain(mess3, sns, sns)"
    return process_title(process.name, process.params)


def _final_tokens(inputs: StudyInputs) -> int:
    """Tokens the final model was trained on (steps x batch x context, as the checkpoints' tokens)."""
    tc = inputs.cfg.train_config()
    return int(tc.steps) * int(tc.batch_size) * int(inputs.model_cfg.context_length)


def _n(value: Any) -> str:
    return "–" if value is None else f"{value:.4g}"
