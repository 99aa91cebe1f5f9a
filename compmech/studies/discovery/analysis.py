"""Finding the belief simplex without the answer key (issue 28, part 2): from a layer's activations alone, fit a simplex
and only then compare it with the true beliefs.

For the analysed layer (default the probe layer), over the run's distinct contexts (at most ``max_contexts`` drawn at
random, every distinct context once):

1. **the simplex fit** (`probes.simplex_fit.fit_simplex`): PCA, the affine dimension k from the explained-variance
   ``variance_threshold``, a simplex with k + 1 vertices (``method``: minimum-volume enclosing, or archetypes);
   then, with the answer key, the best affine map from its barycentric coordinates to the true beliefs, fitted and
   scored on disjoint contexts (`probes.evaluate_probe`'s splits, with its held-out shuffled control), the direct
   match (no map), the vertex error against the true simplex's image, and the vertices found against the number of
   states. Controls: the same pipeline on the untrained model's activations, and the held-out shuffled assignment of
   beliefs; and the same fit told the beliefs' true dimension (which uses the answer key: it separates a wrong k from
   a wrong simplex).
2. **the dictionary route** (``sae = true``): a sparse autoencoder (`predictive_models.sae`) on the same activations,
   its live decoder directions clustered into subspaces (`probes.subspace_clustering`), the simplex fit inside each
   cluster's span, and each cluster's held-out R² for each factor's beliefs (a product process's factors; for any
   other process the one "factor" is the process): does each factor get a cluster of its own?

Writes ``discovery.json`` and ``figures/discovery_simplex.png``, ``figures/discovery_clusters.png``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

import predictive_models  # a lazy package (PEP 562): JAX is imported when a model is first run
from compmech.runs.files import write_json_atomic
from compmech.runs.processes import component_processes
from compmech.runs.progress import phase
from compmech.runs.run_figures import save_figures
from compmech.runs.settings import ExperimentConfig
from compmech.runs.sources import Source
from compmech.studies.base import StudyInputs, StudyOutput
from compmech.studies.discovery.plots import plot_cluster_table, plot_discovery
from figures import layer_label, process_title
from hmm_processes import factor_beliefs
from probes import CONTEXT_TEST_FRACTION, ProbeData, probe_rows
from probes.simplex_fit import METHODS, BeliefComparison, SimplexFit, compare_with_beliefs, fit_simplex
from probes.subspace_clustering import cluster_directions, cluster_span, factor_recovery

SAE_KINDS = ("topk", "relu")


@dataclass(frozen=True)
class Settings:
    """[studies.discovery] options; every one has a default."""

    layer: str = ""  # the activations analysed (a name as in [probe] layers); "" = the probe layer
    variance_threshold: float = 0.95  # the PCA keeps the fewest components reaching this share: the affine dimension k
    method: str = "mves"  # the simplex fit: "mves" (minimum-volume enclosing) or "archetypes" (archetypal analysis)
    max_contexts: int = 20000  # distinct contexts analysed, drawn at random (seeded) when the run has more
    n_repeats: int = 3  # context-disjoint held-out splits of each affine map / probe
    sae: bool = True  # train the sparse autoencoder and cluster its directions
    sae_kind: str = "topk"  # "topk" (Gao et al. 2024) or "relu" (L1 penalty)
    sae_latents: int = 0  # dictionary size; 0 = twice the layer's width
    sae_k: int = 4  # "topk": latents active per row
    sae_l1: float = 0.1  # "relu": L1 coefficient (in the SAE's normalised units)
    sae_steps: int = 2000  # SAE optimizer steps (Adam, batch sae_batch_size)
    sae_batch_size: int = 256  # rows per SAE step
    sae_learning_rate: float = 1e-3  # Adam's learning rate
    sae_min_frequency: float = 1e-3  # a latent is live when active on at least this share of the rows
    n_clusters: int = 0  # clusters of the live directions; 0 = chosen by the eigengap (up to max_clusters)
    max_clusters: int = 8  # the eigengap's largest choice
    span_threshold: float = 0.95  # a cluster's span keeps the singular directions holding this share of its energy
    seed: int = 0  # added to the config's seed for the context draw, the splits and the SAE

    def __post_init__(self) -> None:
        def positive_int(name: str, allow_zero: bool = False) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < (0 if allow_zero else 1):
                raise ValueError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} integer; got {v!r}")

        def share(name: str) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
                raise ValueError(f"{name} must be a share in (0, 1], e.g. 0.95; got {v!r}")

        if not isinstance(self.layer, str):
            raise ValueError(f'layer must be an activation name or ""; got {self.layer!r}')
        if self.method not in METHODS:
            raise ValueError(f'method must be "mves" or "archetypes"; got {self.method!r}')
        if self.sae_kind not in SAE_KINDS:
            raise ValueError(f'sae_kind must be "topk" or "relu"; got {self.sae_kind!r}')
        for name in ("max_contexts", "n_repeats", "sae_k", "sae_steps", "sae_batch_size", "max_clusters"):
            positive_int(name)
        for name in ("sae_latents", "n_clusters", "seed"):
            positive_int(name, allow_zero=True)
        for name in ("variance_threshold", "span_threshold", "sae_min_frequency"):
            share(name)
        if not isinstance(self.sae, bool):
            raise ValueError(f"sae must be true or false; got {self.sae!r}")
        for name in ("sae_l1", "sae_learning_rate"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0 or not np.isfinite(v):
                raise ValueError(f"{name} must be a finite number >= 0; got {v!r}")
        if self.sae_learning_rate <= 0:
            raise ValueError(f"sae_learning_rate must be positive; got {self.sae_learning_rate!r}")
        if self.sae_latents and self.sae_kind == "topk" and self.sae_k > self.sae_latents:
            raise ValueError(f"sae_k ({self.sae_k}) must be at most sae_latents ({self.sae_latents})")


def check(cfg: ExperimentConfig, source: Source, model_cfg: predictive_models.ModelConfig) -> None:
    """The probe target must be a belief over hidden states (an HMM or a generalized HMM, products included)."""
    if source.traits.kind not in ("HMM", "GeneralizedHMM"):
        raise ValueError(
            f"the discovery study needs a process with hidden-state beliefs (an HMM or a generalized HMM); "
            f"this run's source is {source.traits.kind!r}"
        )
    layer = getattr(cfg.studies.get("discovery"), "layer", "")
    if layer and layer not in predictive_models.activation_names(model_cfg):
        raise ValueError(
            f"layer {layer!r} is not an activation of this model; choose one of "
            f"{', '.join(predictive_models.activation_names(model_cfg))}"
        )


# ------------------------------------------------------------------------------------------- the records


@dataclass(frozen=True)
class FitRecord:
    """One simplex fit and its comparison with the true beliefs (a row of discovery.json's ``fits``)."""

    label: str  # "trained", "trained, told the dimension", "untrained"
    method: str
    k: int  # affine dimension
    n_vertices: int  # k + 1
    n_states: int  # the process's number of states (the beliefs' length)
    belief_dimension: int  # the true beliefs' affine dimension over these contexts
    kept_variance: float  # share of the activations' variance in the k PCA components
    outside_fraction: float  # points with a barycentric coordinate below -1e-3
    reconstruction_r2: float  # how well the (clipped) simplex reconstructs the k PCA coordinates
    converged: bool
    r2_heldout_contexts: float | None  # best affine map barycentric -> beliefs, held out by context
    r2_heldout_contexts_std: float | None
    mse_heldout_contexts: float | None
    r2_shuffled_heldout_contexts: float | None  # the same map fitted to shuffled beliefs, held out
    r2_in_sample: float
    direct_r2: float | None  # barycentric coordinates vs beliefs, best permutation, no fitted map
    vertex_error: float | None  # fitted vertices vs the true simplex's image, over its diameter
    note: str | None

    @classmethod
    def of(cls, label: str, fit: SimplexFit, cmp: BeliefComparison) -> FitRecord:
        return cls(
            label=label,
            method=fit.method,
            k=fit.k,
            n_vertices=fit.n_vertices,
            n_states=cmp.n_states,
            belief_dimension=cmp.belief_dimension,
            kept_variance=fit.kept_variance,
            outside_fraction=fit.outside_fraction,
            reconstruction_r2=fit.reconstruction_r2,
            converged=fit.converged,
            r2_heldout_contexts=cmp.r2_heldout_contexts,
            r2_heldout_contexts_std=cmp.r2_heldout_contexts_std,
            mse_heldout_contexts=cmp.mse_heldout_contexts,
            r2_shuffled_heldout_contexts=cmp.r2_shuffled_heldout_contexts,
            r2_in_sample=cmp.r2_in_sample,
            direct_r2=cmp.direct_r2,
            vertex_error=cmp.vertex_error,
            note=cmp.note,
        )


@dataclass(frozen=True)
class ClusterRecord:
    """One cluster of SAE directions: its span, the simplex inside it and each factor's held-out R² from it."""

    cluster: int
    n_directions: int
    span_dim: int
    n_vertices: int  # the simplex fitted inside the span (k chosen by variance_threshold there)
    r2_by_factor: list[float | None]  # held-out R² of each factor's beliefs from the activations on this span
    best_factor: int | None


@dataclass(frozen=True)
class SaeRecord:
    """The dictionary route: the SAE, its clusters and whether they recover the factors."""

    kind: str
    n_latents: int
    live: int  # latents active on at least sae_min_frequency of the rows
    fraction_variance_unexplained: float
    final_loss: float
    n_clusters: int
    chosen_by_eigengap: bool
    eigenvalues: list[float]  # the normalised Laplacian's smallest eigenvalues
    factors: list[str]  # the factors' names (one: the process itself, when it is not a product)
    factor_states: list[int]
    clusters: list[ClusterRecord]
    factors_recovered: list[bool]  # each factor the best of some cluster
    one_to_one: bool


@dataclass(frozen=True)
class DiscoveryRecord:
    """discovery.json."""

    layer: str
    regime: str
    n_contexts: int  # distinct contexts analysed
    n_states: int
    variance_threshold: float
    method: str
    explained: list[float]  # the trained activations' explained-variance shares (first 64)
    cumulative: list[float]
    untrained_cumulative: list[float]
    fits: list[FitRecord]  # trained, trained told the dimension, untrained
    sae: SaeRecord | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def fit(self, label: str) -> FitRecord:
        return next(f for f in self.fits if f.label == label)


TRAINED, TOLD, UNTRAINED = "trained", "trained, told the dimension", "untrained"


# ------------------------------------------------------------------------------------------- the phases


@dataclass(frozen=True, eq=False)
class Rows:
    """The analysed rows: distinct contexts (a seeded draw of at most max_contexts), their activations and targets."""

    layer: str
    X: np.ndarray  # [R, d] the trained model's activations
    X0: np.ndarray  # [R, d] the untrained model's
    data: ProbeData  # targets (the joint beliefs, then each factor's), groups, positions, context ids
    beliefs: np.ndarray  # [R, S]
    factors: list[np.ndarray]  # per factor [R, S_k] (one: the beliefs themselves)
    factor_names: list[str]
    factor_states: list[int]


def analysed_rows(inputs: StudyInputs, settings: Settings) -> Rows:
    """Activations of the trained and untrained model over the distinct contexts, with their beliefs and factors."""
    layer = settings.layer or predictive_models.probe_layer_name(inputs.model_cfg)
    ctx = inputs.ctx
    joint = ctx.beliefs  # [N, T, S]
    if inputs.cfg.process.kind in ("product", "coupled"):
        comps = component_processes(inputs.cfg)
        parts = factor_beliefs(joint, list(comps))  # K x [N, T, S_k]
        names = [f"{i}: {c.name}" for i, c in enumerate(comps)]
    else:
        parts, names = [], [inputs.process.name]
    targets = np.concatenate([joint, *parts], axis=-1)  # [N, T, S + sum S_k]

    def acts(params: Any) -> np.ndarray:
        a = predictive_models.compute_activations(inputs.model_cfg, params, ctx.tokens, names=[layer])[layer]
        return np.asarray(a)

    data = probe_rows(acts(inputs.params_state), targets, ctx.tokens, ctx.probs, rows="distinct_contexts")
    X0 = probe_rows(acts(inputs.untrained_params), targets, ctx.tokens, ctx.probs, rows="distinct_contexts").X
    R = data.X.shape[0]
    if R > settings.max_contexts:
        rng = np.random.default_rng([inputs.cfg.seed, settings.seed, 28])
        keep = np.sort(rng.choice(R, settings.max_contexts, replace=False))
        data = ProbeData(
            X=data.X[keep],
            Y=data.Y[keep],
            weights=None if data.weights is None else data.weights[keep],
            groups=data.groups[keep],
            positions=data.positions[keep],
            context_ids=data.context_ids[keep],
        )
        X0 = X0[keep]
    S = joint.shape[-1]
    beliefs = data.Y[:, :S]
    if parts:
        edges = np.cumsum([S, *(p.shape[-1] for p in parts)])
        factors = [data.Y[:, a:b] for a, b in zip(edges[:-1], edges[1:])]
    else:
        factors = [beliefs]
    return Rows(
        layer=layer,
        X=np.asarray(data.X, np.float64),
        X0=np.asarray(X0, np.float64),
        data=data,
        beliefs=beliefs,
        factors=factors,
        factor_names=names,
        factor_states=[f.shape[1] for f in factors],
    )


def _compare(rows: Rows, fit: SimplexFit, X: np.ndarray, beliefs: np.ndarray, settings: Settings, seed: int):
    d = rows.data
    return compare_with_beliefs(
        fit,
        X,
        beliefs,
        d.groups,
        contexts=d.context_ids,
        positions=d.positions,
        n_repeats=settings.n_repeats,
        context_test_fraction=CONTEXT_TEST_FRACTION,
        seed=seed,
    )


def simplex_fits(rows: Rows, settings: Settings, seed: int) -> tuple[list[FitRecord], dict[str, SimplexFit]]:
    """The trained model's fit, the same told the beliefs' dimension, and the untrained model's fit."""
    out, fits = [], {}
    trained = fit_simplex(rows.X, threshold=settings.variance_threshold, method=settings.method, seed=seed)
    cmp = _compare(rows, trained, rows.X, rows.beliefs, settings, seed)
    out.append(FitRecord.of(TRAINED, trained, cmp))
    fits[TRAINED] = trained
    told_k = max(1, min(cmp.belief_dimension, rows.X.shape[1]))
    told = fit_simplex(rows.X, dimension=told_k, method=settings.method, seed=seed)
    out.append(FitRecord.of(TOLD, told, _compare(rows, told, rows.X, rows.beliefs, settings, seed)))
    fits[TOLD] = told
    untrained = fit_simplex(rows.X0, threshold=settings.variance_threshold, method=settings.method, seed=seed)
    out.append(FitRecord.of(UNTRAINED, untrained, _compare(rows, untrained, rows.X0, rows.beliefs, settings, seed)))
    fits[UNTRAINED] = untrained
    return out, fits


def dictionary_route(rows: Rows, settings: Settings, seed: int, progress: bool) -> SaeRecord:
    """The SAE on the trained activations, its live directions clustered, a simplex in each cluster's span and each
    cluster's held-out R² for each factor."""
    width = rows.X.shape[1]
    cfg = predictive_models.SaeConfig(
        n_latents=settings.sae_latents or 2 * width,
        kind=settings.sae_kind,
        k=settings.sae_k,
        l1=float(settings.sae_l1),
        steps=settings.sae_steps,
        batch_size=settings.sae_batch_size,
        learning_rate=float(settings.sae_learning_rate),
        seed=seed,
    )
    with phase("discovery: sparse autoencoder", total=cfg.steps, enabled=progress) as tick:
        done = [0]

        def advance(step: int, loss: float) -> None:
            tick(step - done[0])
            done[0] = step

        sae = predictive_models.train_sae(rows.X.astype(np.float32), cfg, progress=advance)
    live = sae.live(rows.X, settings.sae_min_frequency)
    D = sae.W_dec[live]  # [n_live, d]
    d = rows.data
    if len(D) >= 2:
        clustering = cluster_directions(
            D, n_clusters=settings.n_clusters or None, max_clusters=settings.max_clusters, seed=seed
        )
        labels, n_clusters = clustering.labels, clustering.n_clusters
        eig, by_gap = [float(v) for v in clustering.eigenvalues], clustering.chosen_by_eigengap
    else:
        labels, n_clusters, eig, by_gap = np.zeros(len(D), dtype=int), int(len(D) > 0), [], False
    spans = [cluster_span(D[labels == c], settings.span_threshold) for c in range(n_clusters)]
    rec = factor_recovery(
        rows.X,
        spans,
        rows.factors,
        d.groups,
        contexts=d.context_ids,
        positions=d.positions,
        n_repeats=settings.n_repeats,
        seed=seed,
    )
    Xc = rows.X - rows.X.mean(axis=0)
    clusters = []
    for c, span in enumerate(spans):
        Z = Xc @ span
        n_vertices = fit_simplex(Z, threshold=settings.variance_threshold, method=settings.method, seed=seed).n_vertices
        clusters.append(
            ClusterRecord(
                cluster=c,
                n_directions=int(np.sum(labels == c)),
                span_dim=int(span.shape[1]),
                n_vertices=n_vertices,
                r2_by_factor=rec.r2[c],
                best_factor=rec.best_factor[c],
            )
        )
    return SaeRecord(
        kind=cfg.kind,
        n_latents=cfg.n_latents,
        live=int(live.sum()),
        fraction_variance_unexplained=sae.fraction_variance_unexplained(rows.X),
        final_loss=float(sae.losses[-1]),
        n_clusters=n_clusters,
        chosen_by_eigengap=by_gap,
        eigenvalues=eig,
        factors=rows.factor_names,
        factor_states=rows.factor_states,
        clusters=clusters,
        factors_recovered=rec.factors_recovered,
        one_to_one=rec.one_to_one,
    )


def draw_figures(inputs: StudyInputs, rows: Rows, record: DiscoveryRecord, fits: dict[str, SimplexFit]) -> list:
    """figures/discovery_simplex.png (the PCA with the fitted and the true simplex; the spectra) and, with the SAE,
    figures/discovery_clusters.png (cluster x factor R²)."""
    title = f"{process_title(inputs.process.name, inputs.process.params)}: {layer_label(rows.layer)}"
    trained = fits[TRAINED]
    fit_rec = record.fit(TRAINED)
    draws = {
        "discovery_simplex": lambda: plot_discovery(
            trained.pca.project(rows.X, max(2, trained.k)),
            rows.beliefs,
            trained.vertices,
            cumulative=np.asarray(record.cumulative),
            untrained_cumulative=np.asarray(record.untrained_cumulative),
            threshold=record.variance_threshold,
            k=trained.k,
            belief_dimension=fit_rec.belief_dimension,
            told_vertices=fits[TOLD].vertices,
            title=f"{title}: simplex found without the beliefs (R² held out {_n(fit_rec.r2_heldout_contexts)})",
        )
    }
    sae = record.sae
    if sae is not None and sae.clusters:
        draws["discovery_clusters"] = lambda: plot_cluster_table(
            np.array([[np.nan if v is None else v for v in c.r2_by_factor] for c in sae.clusters]),
            factor_labels=sae.factors,
            cluster_labels=[f"{c.cluster} ({c.n_directions} dirs, dim {c.span_dim})" for c in sae.clusters],
            title=f"{title}: SAE direction clusters vs factors (held-out R²)",
        )
    return save_figures(inputs.cfg, inputs.run_dir, draws)


def report_sections(record: DiscoveryRecord) -> tuple[tuple, dict[str, str], dict[str, Any]]:
    """The report's tables, the figures' captions and summary.json's headline numbers."""
    fit_rows = [
        [
            f.label,
            str(f.k),
            f"{f.n_vertices} / {f.n_states}",
            f"{f.kept_variance:.3f}",
            _n(f.r2_heldout_contexts)
            + ("" if f.r2_heldout_contexts_std is None else f" ± {f.r2_heldout_contexts_std:.2g}"),
            _n(f.r2_shuffled_heldout_contexts),
            _n(f.direct_r2),
            _n(f.vertex_error),
            f"{f.outside_fraction:.3f}",
        ]
        for f in record.fits
    ]
    tables: list[tuple[str, list[str], list[list[Any]], str]] = [
        (
            f"Discovery: the simplex fitted to {record.layer} without the beliefs",
            [
                "activations",
                "k",
                "vertices / states",
                "variance kept",
                "R² held out (contexts)",
                "R² shuffled, held out",
                "R² direct (no map)",
                "vertex error",
                "points outside",
            ],
            fit_rows,
            f"{record.n_contexts:,} distinct contexts; k from {record.variance_threshold:g} of the variance; method "
            f"{record.method}. R² held out: the best affine map from the barycentric coordinates to the true beliefs, "
            "fitted and scored on disjoint contexts (± std over splits); it equals a linear probe on the k PCA "
            "coordinates, so it tests k, not the vertices. R² direct: the barycentric coordinates against the beliefs "
            "under the best vertex permutation, no fitted map. Vertex error: largest distance from a fitted vertex "
            "to its matched corner of the true simplex's image, over that image's diameter. 'told the dimension' "
            "uses the answer key's dimension.",
        )
    ]
    sae = record.sae
    if sae is not None:
        tables.append(
            (
                "Discovery: SAE direction clusters against the factors",
                ["cluster", "directions", "span dim", "vertices", *[f"R² {n}" for n in sae.factors], "best factor"],
                [
                    [
                        str(c.cluster),
                        str(c.n_directions),
                        str(c.span_dim),
                        str(c.n_vertices),
                        *[_n(v) for v in c.r2_by_factor],
                        "–" if c.best_factor is None else sae.factors[c.best_factor],
                    ]
                    for c in sae.clusters
                ],
                f"{sae.kind} SAE, {sae.n_latents} latents ({sae.live} live), unexplained variance "
                f"{sae.fraction_variance_unexplained:.3g}; {sae.n_clusters} clusters "
                f"({'eigengap' if sae.chosen_by_eigengap else 'given'}). R²: held-out (contexts) probe of each "
                f"factor's beliefs from the activations projected on the cluster's span. Factors recovered: "
                f"{sum(sae.factors_recovered)} of {len(sae.factors)}; one to one: {sae.one_to_one}.",
            )
        )
    captions = {
        "discovery_simplex": "Left: the activations' first two principal components (coloured by the true belief, "
        "which the fit never saw), the simplex fitted without the beliefs (black; its vertices projected on these "
        "two components), the simplex fitted with k set to the beliefs' dimension (dash-dotted blue: that k comes from "
        "the answer key) and the image of the true probability simplex (dashed red, the least-squares affine map "
        "from the beliefs). Right: the cumulative explained variance of the trained and untrained activations, "
        "the threshold and the chosen k beside the beliefs' dimension.",
        "discovery_clusters": "Held-out R² of each factor's beliefs from the activations projected on each cluster "
        "of SAE decoder directions.",
    }
    t = record.fit(TRAINED)
    headline = {
        "layer": record.layer,
        "n_vertices": t.n_vertices,
        "n_states": t.n_states,
        "belief_dimension": t.belief_dimension,
        "r2_heldout_contexts": t.r2_heldout_contexts,
        "r2_untrained": record.fit(UNTRAINED).r2_heldout_contexts,
        "r2_shuffled": t.r2_shuffled_heldout_contexts,
        "direct_r2": t.direct_r2,
        "told_dimension_direct_r2": record.fit(TOLD).direct_r2,
        "sae_clusters": None if sae is None else sae.n_clusters,
        "factors_recovered": None if sae is None else int(sum(sae.factors_recovered)),
        "n_factors": None if sae is None else len(sae.factors),
    }
    return tuple(tables), captions, headline


def run(inputs: StudyInputs, settings: Settings) -> StudyOutput:
    """The study (see the module docstring); writes discovery.json and its figures."""
    seed = int(inputs.cfg.seed) + int(settings.seed)
    with phase("discovery study: simplex fits", total=None, enabled=inputs.progress):
        rows = analysed_rows(inputs, settings)
        fit_records, fits = simplex_fits(rows, settings, seed)
    sae = dictionary_route(rows, settings, seed, inputs.progress) if settings.sae else None
    record = DiscoveryRecord(
        layer=rows.layer,
        regime=inputs.regime.name,
        n_contexts=int(rows.X.shape[0]),
        n_states=int(rows.beliefs.shape[1]),
        variance_threshold=float(settings.variance_threshold),
        method=settings.method,
        explained=[float(v) for v in fits[TRAINED].pca.explained[:64]],
        cumulative=[float(v) for v in fits[TRAINED].pca.cumulative[:64]],
        untrained_cumulative=[float(v) for v in fits[UNTRAINED].pca.cumulative[:64]],
        fits=fit_records,
        sae=sae,
    )
    write_json_atomic(inputs.run_dir / "discovery.json", record.to_json())
    figs = draw_figures(inputs, rows, record, fits)
    tables, captions, headline = report_sections(record)
    return StudyOutput(
        name="discovery",
        json_file="discovery.json",
        figures=tuple(figs),
        captions={k: v for k, v in captions.items() if any(p.stem == k for p in figs)},
        tables=tables,
        headline=headline,
    )


def _n(value: Any) -> str:
    return "–" if value is None else f"{value:.4g}"
