"""The causal study: does the model *use* the belief its residual stream linearly encodes? Steer the residual stream
along the probe and ablate the probe's subspace, layer by layer, against same-norm and same-dimension controls and
against what theory says the outputs should become.

For each residual read-out (``layers``; default every one: ``embedding``, ``block_1`` .. ``block_L``):

1. **Probe.** A linear probe (OLS with intercept, `probes.LinearProbe`) from the activations to the exact beliefs is
   fitted on ``n_fit`` fresh sequences (every position pooled); its belief subspace is the column space of its
   coefficients with the all-ones target direction projected out (`probes.interventions.probe_subspace`, dimension
   S - 1 for beliefs on a simplex). Its R² is measured on the ``n_contexts`` evaluation sequences (other contexts).
   Beside it, the *encoding* map: the least-squares regression of the activations on the beliefs, ``x ≈ c + η W``
   (`probes.interventions.encoding_map`), whose row space is the subspace in which the activations vary with the
   belief. The two differ: the probe's coefficients ``Σ_x⁻¹ Cov(x, η)`` lean on low-variance directions that
   correlate with the belief, which a model need not read.
2. **Steering.** For ``n_pairs`` evaluation contexts at each steered position p, the target belief η′ is another
   context's belief (``contexts``: a fit sequence's belief at a random position) or a vertex of the simplex
   (``vertices``, HMMs only: a generalized HMM's vertices are not beliefs). Two deltas (``methods``): ``probe``, the
   minimal-norm one that moves the probe's reading of the activation from ŷ to η′
   (`probes.interventions.steering_delta`, ``(η′ − ŷ) pinv(coef)``), and ``encoding``, ``(η′ − ŷ) W`` (the
   activation moved as activations move with the belief; the probe then reads η′ up to its R²), added at
   position p only (`predictive_models.logits_with_delta`; the causal mask keeps positions < p unchanged). With
   ``q`` the model's next-token distribution at p and ``P(· | η′)`` the exact law at η′ (`theory.law_at`):

   ``closed = 1 − mean_i KL(P(·|η′_i) ‖ q_i^steered) / mean_i KL(P(·|η′_i) ‖ q_i^unsteered)``

   (a ratio of means over the pairs; its standard error by the delta method). 1: the model's output became the
   target law; 0: no closer than before; negative: farther. The controls use deltas of the same norms: a random
   direction in the whole residual space (``random``) and a random direction in the orthogonal complement of the
   method's subspace (``complement``), each averaged over ``n_random`` draws per pair. Also recorded: the KL to the
   source context's own law after steering (how far the output left η).
3. **Ablation.** At every position of the evaluation sequences, the activation's component in each method's subspace
   (the probe's, the encoding's) is
   replaced by the fit activations' mean (mean-ablation) or by another evaluation context's component at the same
   position (resample-ablation), and the model's cross-entropy against the exact next-token laws is measured
   (``H(P(·|η_t), q_t)``, averaged over positions, then mean ± standard error over the contexts); the control is a
   random subspace of the same dimension (``n_random`` draws). Beside it: the clean model's loss, the optimal loss
   (the exact finite-context floor), and the exact losses of the order-0 and order-1 predictors, which lack the
   belief (`theory.baseline_losses`).

Writes ``causal.json`` (the `CausalRecord`), ``figures/causal_layers.png`` and, for three-token processes,
``figures/causal_simplex.png``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

import predictive_models  # a lazy package (PEP 562): JAX is imported when a model is first run
from compmech.runs.contexts import SampledBlock
from compmech.runs.files import write_json_atomic
from compmech.runs.progress import phase
from compmech.runs.run_figures import save_figures
from compmech.runs.settings import ExperimentConfig
from compmech.runs.sources import Source
from compmech.studies.base import StudyInputs, StudyOutput
from compmech.studies.causal.plots import plot_causal_layers, plot_steered_simplex
from compmech.studies.causal.theory import BaselineLosses, baseline_losses, cross_entropy_nats, kl_nats, law_at
from figures import process_title
from hmm_processes import process_vectors
from probes import LinearProbe, r2
from probes.interventions import (
    ablation_delta,
    complement_deltas,
    encoding_delta,
    encoding_map,
    encoding_subspace,
    probe_subspace,
    random_deltas,
    random_subspace,
    steering_delta,
)

TARGETS = ("contexts", "vertices")
METHODS = ("probe", "encoding")
BELIEF_KINDS = ("HMM", "GeneralizedHMM")

#: The definitions causal.json states beside its numbers.
DEFINITIONS = {
    "closed": "1 - mean_i KL(P(.|eta'_i) || q_i steered) / mean_i KL(P(.|eta'_i) || q_i unsteered), over the pairs; "
    "standard error by the delta method",
    "probe": "the minimal-norm residual delta moving the probe's reading from its value at the activation "
    "to eta' ((eta' - yhat) @ pinv(coef)), added at the steered position only; subspace: coef's column space with "
    "the all-ones target direction projected out",
    "encoding": "the delta (eta' - yhat) @ W, W the least-squares map from beliefs to activations (x ~ c + eta W); "
    "subspace: W's row space",
    "random": "a random direction of the steering delta's norm (uniform on the sphere of the residual space)",
    "complement": "a random direction of the same norm in the orthogonal complement of the method's subspace",
    "loss": "cross-entropy H(P(.|eta_t), q_t) in nats against the exact next-token law, averaged over the positions "
    "of a context; mean and standard error over contexts",
    "mean_ablation": "the subspace component of every position's activation replaced by the fit activations' "
    "mean component",
    "resample_ablation": "replaced by another evaluation context's component at the same position",
    "order0": "exact loss of the stationary token law h(1) = H[X]",
    "order1": "exact loss of the law given the last token h(2) = H[X_t | X_{t-1}]",
    "optimal": "exact finite-context floor: the mean over positions of the optimal loss",
}


@dataclass(frozen=True)
class Settings:
    """[studies.causal] options."""

    # residual read-outs to intervene on (embedding, block_1 .. block_L); empty = every one
    layers: tuple[str, ...] = ()
    n_pairs: int = 400  # (eta, eta') pairs steered per layer, position and target kind
    # positions steered (0-based, negative counts from the end); the default is the last position
    positions: tuple[int, ...] = (-1,)
    # target beliefs: "contexts" (other contexts' beliefs) and/or "vertices" (the simplex's corners; HMMs only)
    targets: tuple[str, ...] = TARGETS
    n_contexts: int = 2000  # evaluation sequences: the steered contexts and the contexts whose loss is ablated
    n_fit: int = 2000  # sequences the study's probe is fitted on (all positions), and the mean for mean-ablation
    n_random: int = 4  # random-direction draws per pair, and random subspaces per layer
    # the steering deltas and ablated subspaces: "probe" (the probe's minimal-norm delta, its coefficients' column
    # space) and/or "encoding" (the regression of the activations on the beliefs, its row space)
    methods: tuple[str, ...] = ("probe", "encoding")
    seed: int = 0  # folded into the run's seed (the sequences, pairs and random draws)
    batch_size: int = 2048  # rows per forward pass

    def __post_init__(self) -> None:
        for name in ("n_pairs", "n_contexts", "n_fit", "n_random", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"[studies.causal] {name} must be a positive integer; got {v!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"[studies.causal] seed must be a non-negative integer; got {self.seed!r}")
        if (
            not self.targets
            or any(t not in TARGETS for t in self.targets)
            or len(set(self.targets)) != len(self.targets)
        ):
            raise ValueError(
                f"[studies.causal] targets must be distinct entries of {list(TARGETS)}; got {self.targets!r}"
            )
        if (
            not self.methods
            or any(m not in METHODS for m in self.methods)
            or len(set(self.methods)) != len(self.methods)
        ):
            raise ValueError(
                f"[studies.causal] methods must be distinct entries of {list(METHODS)}; got {self.methods!r}"
            )
        if not self.positions or any(isinstance(p, bool) or not isinstance(p, int) for p in self.positions):
            raise ValueError(f"[studies.causal] positions must be a non-empty list of integers; got {self.positions!r}")
        if not all(isinstance(n, str) and n for n in self.layers):
            raise ValueError(f"[studies.causal] layers must be residual read-out names; got {list(self.layers)!r}")


def check(cfg: ExperimentConfig, source: Source, model_cfg: predictive_models.ModelConfig) -> None:
    """A transformer (a residual stream to edit) on a source with known beliefs (an HMM or a generalized HMM)."""
    if predictive_models.kind_of(model_cfg) != "transformer":
        raise ValueError(
            f'the causal study edits a residual stream: it needs [model] kind = "transformer"; '
            f"got {predictive_models.kind_of(model_cfg)!r}"
        )
    if source.traits.kind not in BELIEF_KINDS:
        raise ValueError(
            f"the causal study steers toward exact beliefs: it needs an HMM or a generalized HMM process; got a "
            f"{source.traits.kind!r} source"
        )
    settings = cfg.studies.get("causal")
    layers = tuple(getattr(settings, "layers", ()) or ())
    allowed = predictive_models.residual_layers(model_cfg)
    bad = [n for n in layers if n not in allowed]
    if bad:
        raise ValueError(f"[studies.causal] layers must be residual read-outs {allowed}; got {bad}")
    T = model_cfg.context_length
    positions = tuple(getattr(settings, "positions", (-1,)) or (-1,))
    if any(not -T <= p < T for p in positions):
        raise ValueError(
            f"[studies.causal] positions must lie in [-{T}, {T - 1}] (context_length {T}); got {positions}"
        )


# ------------------------------------------------------------------------------------------- the records


@dataclass(frozen=True)
class Estimate:
    """A mean with its standard error over n independent units (contexts or pairs)."""

    mean: float
    stderr: float
    n: int


def mean_estimate(values: np.ndarray) -> Estimate:
    """The mean of ``values`` [n] and its standard error (sample standard deviation / sqrt(n))."""
    v = np.asarray(values, np.float64)
    se = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan")
    return Estimate(float(v.mean()), se, int(v.size))


def closed_fraction(kl_after: np.ndarray, kl_before: np.ndarray) -> Estimate:
    """``1 − mean(kl_after) / mean(kl_before)`` over paired units [n], with its delta-method standard error:
    with r = ā / b̄, Var(r) ≈ Var(a_i − r b_i) / (n b̄²).

    Examples
    --------
    >>> import numpy as np
    >>> closed_fraction(np.zeros(4), np.array([1.0, 2.0, 1.0, 2.0])).mean
    1.0
    """
    a, b = np.asarray(kl_after, np.float64), np.asarray(kl_before, np.float64)
    n = a.size
    with np.errstate(invalid="ignore"):  # an infinite KL (a law with a zero where the target has mass): no error bar
        r = float(a.mean() / b.mean())
        se = float(np.sqrt((a - r * b).var(ddof=1) / n) / b.mean()) if n > 1 else float("nan")
    return Estimate(1.0 - r, se, int(n))


@dataclass(frozen=True)
class SteeringResult:
    """Steering at one layer and position toward one kind of target (see the module docstring)."""

    method: str  # "probe" | "encoding"
    target: str  # "contexts" | "vertices"
    position: int  # the steered position (0-based)
    closed: Estimate  # the probe's steering delta
    closed_random: Estimate  # a random direction of the same norm
    closed_complement: Estimate  # a same-norm direction the probe cannot see
    kl_unsteered: Estimate  # KL(P(.|eta') || q) before, nats
    kl_steered: Estimate  # after the steering delta
    kl_random: Estimate
    kl_complement: Estimate
    kl_source_steered: Estimate  # KL(P(.|eta) || q steered): how far the output left the context's own law
    kl_source_unsteered: Estimate  # KL(P(.|eta) || q unsteered): the model's own error at that position
    delta_norm: Estimate  # |delta|
    activation_norm: Estimate  # |x| at that position, for scale


@dataclass(frozen=True)
class AblationResult:
    """Losses (nats per token) with a subspace ablated at every position, each over the evaluation contexts."""

    method: str  # whose subspace: "probe" | "encoding"
    dim: int  # the belief subspace's dimension (and each random subspace's)
    clean: Estimate
    mean_belief: Estimate
    resample_belief: Estimate
    mean_random: Estimate
    resample_random: Estimate
    increase_mean_belief: Estimate  # paired: ablated − clean, per context
    increase_resample_belief: Estimate
    increase_mean_random: Estimate
    increase_resample_random: Estimate


@dataclass(frozen=True)
class LayerResult:
    layer: str
    probe_rank: int  # the probe's belief subspace's dimension
    probe_r2: float  # the study's probe on the evaluation contexts (pooled R², all positions)
    principal_angles: tuple[float, ...]  # degrees, between the probe's and the encoding's subspaces
    steering: tuple[SteeringResult, ...]
    ablation: tuple[AblationResult, ...]  # one per method


@dataclass(frozen=True)
class CausalRecord:
    """causal.json."""

    layers: tuple[LayerResult, ...]
    probe_layer: str  # the headline layer (the run's probe layer when analysed, else the last)
    baselines: BaselineLosses  # order-0 / order-1 predictors, exact
    optimal_loss: float  # exact: the run's optimal loss averaged over positions
    optimal_loss_sample: Estimate  # the same floor over the evaluation contexts (mean next-token entropy)
    vocab_size: int
    belief_size: int
    notes: tuple[str, ...]
    settings: dict[str, Any]
    definitions: dict[str, str] = field(default_factory=lambda: dict(DEFINITIONS))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def layer(self, name: str) -> LayerResult:
        return next(r for r in self.layers if r.layer == name)


# ------------------------------------------------------------------------------------------- the pieces


def softmax64(logits: np.ndarray) -> np.ndarray:
    """float64 softmax along the last axis."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def pad_laws(laws: np.ndarray, width: int) -> np.ndarray:
    """Laws over the process's V tokens padded with zeros to the model's outputs (V + 1 with a start token)."""
    extra = width - laws.shape[-1]
    return laws if extra == 0 else np.concatenate([laws, np.zeros((*laws.shape[:-1], extra))], axis=-1)


def _sample(inputs: StudyInputs, settings: Settings, n: int, stream: int) -> SampledBlock:
    import jax  # JAX only when the study samples (the module loads without it)

    key = jax.random.fold_in(jax.random.fold_in(jax.random.key(inputs.cfg.seed), 0xCA05 + settings.seed), stream)
    return inputs.source.sample_block(key, n, inputs.model_cfg.context_length, inputs.cfg.data.bos)


@dataclass(frozen=True, eq=False)
class Fitted:
    """One layer's fits: the probe (coefficients [d, S], intercept [S]), the encoding map W [S, d], each method's
    subspace basis [d, r], and the fit activations' mean [d]."""

    coef: np.ndarray
    intercept: np.ndarray
    normalizer: np.ndarray  # [S] tau: every belief has eta tau = 1 (ones for an HMM)
    W: np.ndarray
    bases: dict[str, np.ndarray]
    mean: np.ndarray

    def read(self, x: np.ndarray) -> np.ndarray:
        """The probe's reading of activations [n, d] -> [n, S]."""
        return x @ self.coef + self.intercept

    def delta(self, method: str, current: np.ndarray, target: np.ndarray) -> np.ndarray:
        """The steering deltas [n, d] of ``method`` from the readings ``current`` to ``target`` ([n, S] each)."""
        if method == "probe":
            return steering_delta(self.coef, current, target, normalizer=self.normalizer)
        return encoding_delta(self.W, current, target)


def fit_probe(X: np.ndarray, beliefs: np.ndarray, normalizer: np.ndarray | None = None) -> Fitted:
    """OLS with intercept from activations [n, d] to beliefs [n, S], the encoding map back, their subspaces and the
    activations' mean. ``normalizer``: the process's τ ([S], ``η τ = 1``; None: ones, an HMM)."""
    probe = LinearProbe().fit(X, beliefs)
    X64 = np.asarray(X, np.float64)
    W = encoding_map(X64, beliefs)
    tau = np.ones(beliefs.shape[1]) if normalizer is None else np.asarray(normalizer, np.float64)
    bases = {"probe": probe_subspace(probe.coef_, normalizer=tau), "encoding": encoding_subspace(W)}
    return Fitted(probe.coef_, probe.intercept_, tau, W, bases, X64.mean(axis=0))


def subspace_angles(A: np.ndarray, B: np.ndarray) -> tuple[float, ...]:
    """Principal angles (degrees, ascending) between the spans of two orthonormal bases [d, r] and [d, r']."""
    s = np.clip(np.linalg.svd(A.T @ B, compute_uv=False), -1.0, 1.0)
    return tuple(float(a) for a in np.degrees(np.arccos(s)))


def _targets_for(kind: str, n: int, S: int, fit: SampledBlock, rng: np.random.Generator, bos: bool) -> np.ndarray:
    """[n, S] target beliefs: other (fit) contexts' beliefs at random positions, or vertices in rotation."""
    if kind == "vertices":
        return np.eye(S)[np.arange(n) % S]
    lo = 1 if bos else 0  # the start token's belief is the prior, not a context's
    rows = rng.integers(0, fit.beliefs.shape[0], n)
    cols = rng.integers(lo, fit.beliefs.shape[1], n)
    return fit.beliefs[rows, cols]


@dataclass(frozen=True, eq=False)
class Steered:
    """The contexts steered at one position: their activations there, tokens, exact and model laws."""

    X: np.ndarray  # [n, T, d] activations at the layer
    tokens: np.ndarray  # [n, T]
    laws_source: np.ndarray  # [n, V_model] the exact law at each context's belief at the position
    unsteered: np.ndarray  # [n, V_model] the model's distribution at the position
    position: int


def steer(
    inputs: StudyInputs,
    layer: str,
    fitted: Fitted,
    ctx: Steered,
    targets: np.ndarray,  # [n, S]
    kind: str,
    method: str,
    settings: Settings,
    rng: np.random.Generator,
) -> tuple[SteeringResult, np.ndarray]:
    """Steer each context toward its target with ``method``'s delta; the result and the steered laws [n, V_model]."""
    n, T, d = ctx.X.shape
    p = ctx.position
    x = ctx.X[:, p].astype(np.float64)  # [n, d]
    delta = fitted.delta(method, fitted.read(x), targets)  # [n, d]
    norms = np.linalg.norm(delta, axis=1)
    law_target = pad_laws(law_at(inputs.process, targets), ctx.unsteered.shape[1])  # [n, V_model]

    def run(d_at_position: np.ndarray) -> np.ndarray:
        full = np.zeros((n, T, d), np.float32)
        full[:, p] = d_at_position
        logits = predictive_models.logits_with_delta(
            inputs.model_cfg, inputs.params_state, ctx.tokens, layer, full, batch_size=settings.batch_size
        )
        return softmax64(logits[:, p])  # [n, V_model]

    steered = run(delta)
    kl_before = kl_nats(law_target, ctx.unsteered)
    kl_after = kl_nats(law_target, steered)
    kl_rand = np.mean([kl_nats(law_target, run(random_deltas(norms, d, rng))) for _ in range(settings.n_random)], 0)
    basis = fitted.bases[method]
    kl_comp = np.mean(
        [kl_nats(law_target, run(complement_deltas(norms, basis, rng))) for _ in range(settings.n_random)], 0
    )
    result = SteeringResult(
        method=method,
        target=kind,
        position=int(p),
        closed=closed_fraction(kl_after, kl_before),
        closed_random=closed_fraction(kl_rand, kl_before),
        closed_complement=closed_fraction(kl_comp, kl_before),
        kl_unsteered=mean_estimate(kl_before),
        kl_steered=mean_estimate(kl_after),
        kl_random=mean_estimate(kl_rand),
        kl_complement=mean_estimate(kl_comp),
        kl_source_steered=mean_estimate(kl_nats(ctx.laws_source, steered)),
        kl_source_unsteered=mean_estimate(kl_nats(ctx.laws_source, ctx.unsteered)),
        delta_norm=mean_estimate(norms),
        activation_norm=mean_estimate(np.linalg.norm(x, axis=1)),
    )
    return result, steered


def context_losses(logits: np.ndarray, laws: np.ndarray) -> np.ndarray:
    """Per context: the cross-entropy of the model's distributions against the exact laws, averaged over positions.
    logits [n, T, V_model], laws [n, T, V_model] -> [n] nats."""
    return cross_entropy_nats(laws, softmax64(logits)).mean(axis=1)


def ablate(
    inputs: StudyInputs,
    layer: str,
    fitted: Fitted,
    methods: tuple[str, ...],
    X: np.ndarray,  # [n, T, d]
    tokens: np.ndarray,  # [n, T]
    laws: np.ndarray,  # [n, T, V_model]
    clean: np.ndarray,  # [n] the clean model's per-context loss
    settings: Settings,
    rng: np.random.Generator,
) -> tuple[AblationResult, ...]:
    """Mean- and resample-ablation of each method's subspace and of random subspaces of its dimension, at every
    position; one result per method."""
    n, T, d = X.shape
    flat = X.reshape(n * T, d).astype(np.float64)
    donors = X[rng.permutation(n)].reshape(n * T, d)  # another context's activation at the same position

    def loss(basis: np.ndarray, replacement: np.ndarray) -> np.ndarray:
        delta = ablation_delta(flat, basis, replacement).reshape(n, T, d)
        logits = predictive_models.logits_with_delta(
            inputs.model_cfg, inputs.params_state, tokens, layer, delta, batch_size=settings.batch_size
        )
        return context_losses(logits, laws)

    random_by_dim: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    out = []
    for method in methods:
        basis = fitted.bases[method]
        r = basis.shape[1]
        if r not in random_by_dim:  # the same random subspaces for every method of one dimension
            rand = [random_subspace(d, r, rng) for _ in range(settings.n_random)]
            random_by_dim[r] = (
                np.mean([loss(R, fitted.mean) for R in rand], axis=0),
                np.mean([loss(R, donors) for R in rand], axis=0),
            )
        mean_r, res_r = random_by_dim[r]
        mean_b, res_b = loss(basis, fitted.mean), loss(basis, donors)
        out.append(
            AblationResult(
                method=method,
                dim=r,
                clean=mean_estimate(clean),
                mean_belief=mean_estimate(mean_b),
                resample_belief=mean_estimate(res_b),
                mean_random=mean_estimate(mean_r),
                resample_random=mean_estimate(res_r),
                increase_mean_belief=mean_estimate(mean_b - clean),
                increase_resample_belief=mean_estimate(res_b - clean),
                increase_mean_random=mean_estimate(mean_r - clean),
                increase_resample_random=mean_estimate(res_r - clean),
            )
        )
    return tuple(out)


# ------------------------------------------------------------------------------------------- the study


def run(inputs: StudyInputs, settings: Settings) -> StudyOutput:
    """The study (see the module docstring); writes causal.json and its figures."""
    cfg, model_cfg = inputs.cfg, inputs.model_cfg
    layers = tuple(settings.layers) or tuple(predictive_models.residual_layers(model_cfg))
    process = inputs.process
    S = inputs.source.traits.belief_size
    T = model_cfg.context_length
    positions = tuple(dict.fromkeys(p % T for p in settings.positions))
    methods = tuple(settings.methods)
    notes: list[str] = []
    kinds = tuple(settings.targets)
    if "vertices" in kinds and inputs.source.traits.kind != "HMM":
        kinds = tuple(k for k in kinds if k != "vertices") or ("contexts",)
        notes.append("vertices skipped: a generalized HMM's simplex vertices are not beliefs")
    if cfg.data.bos and 0 in positions:
        notes.append("position 0 is the start token: its belief is the prior for every context")
    rng = np.random.default_rng([cfg.seed, settings.seed, 0xCA05])
    fit = _sample(inputs, settings, settings.n_fit, 0)
    ev = _sample(inputs, settings, settings.n_contexts, 1)
    n_pairs = min(settings.n_pairs, settings.n_contexts)
    pairs = rng.choice(settings.n_contexts, n_pairs, replace=False)
    with phase("causal study", total=2 * len(layers), enabled=inputs.progress) as tick:
        acts_fit = predictive_models.compute_activations(model_cfg, inputs.params_state, fit.tokens, names=list(layers))
        acts_ev = predictive_models.compute_activations(model_cfg, inputs.params_state, ev.tokens, names=list(layers))
        logits = predictive_models.compute_logits(model_cfg, inputs.params_state, ev.tokens)  # [n, T, V_model]
        V_model = logits.shape[-1]
        laws = pad_laws(ev.next_token_probs, V_model)  # [n, T, V_model] exact
        clean = context_losses(logits, laws)
        model_q = softmax64(logits)
        results, simplex = [], {}
        for layer in layers:
            Xf = acts_fit[layer].reshape(-1, acts_fit[layer].shape[-1])
            fitted = fit_probe(Xf, fit.beliefs.reshape(-1, S), process_vectors(process)[2])
            Xe = acts_ev[layer]
            read = fitted.read(Xe.reshape(-1, Xe.shape[-1]).astype(np.float64))
            probe_r2 = float(r2(ev.beliefs.reshape(-1, S), read))
            steering = []
            for p in positions:
                ctx = Steered(Xe[pairs], ev.tokens[pairs], laws[pairs, p], model_q[pairs, p], p)
                for kind in kinds:
                    targets = _targets_for(kind, n_pairs, S, fit, rng, cfg.data.bos)
                    for method in methods:
                        res, steered = steer(inputs, layer, fitted, ctx, targets, kind, method, settings, rng)
                        steering.append(res)
                        if p == positions[0] and kind == kinds[0]:
                            simplex[(layer, method)] = (pad_laws(law_at(process, targets), V_model), steered)
            tick(1)
            ablation = ablate(inputs, layer, fitted, methods, Xe, ev.tokens, laws, clean, settings, rng)
            tick(1)
            angles = subspace_angles(fitted.bases["probe"], fitted.bases["encoding"])
            results.append(LayerResult(layer, int(fitted.bases["probe"].shape[1]), probe_r2, angles, tuple(steering),
                                       ablation))  # fmt: skip
    probe_layer = predictive_models.probe_layer_name(model_cfg)
    record = CausalRecord(
        layers=tuple(results),
        probe_layer=probe_layer if probe_layer in layers else layers[-1],
        baselines=baseline_losses(process),
        optimal_loss=float(np.mean(inputs.source.optimal_loss(T, cfg.data.bos).values)),
        optimal_loss_sample=mean_estimate(cross_entropy_nats(laws, laws).mean(axis=1)),
        vocab_size=int(process.vocab_size),
        belief_size=int(S),
        notes=tuple(notes),
        settings=asdict(settings),
    )
    write_json_atomic(inputs.run_dir / "causal.json", record.to_json())
    figs = draw_figures(inputs, record, simplex, kinds[0], methods)
    tables, captions, headline = report_sections(record)
    return StudyOutput(
        name="causal",
        json_file="causal.json",
        figures=tuple(figs),
        captions=captions,
        tables=tables,
        headline=headline,
    )


def draw_figures(inputs: StudyInputs, record: CausalRecord, simplex: dict, kind: str, methods: tuple[str, ...]) -> list:
    """causal_layers (every run) and causal_simplex (three-token processes)."""
    title = process_title(inputs.process.name, inputs.process.params)
    figs: dict[str, Any] = {"causal_layers": lambda: plot_causal_layers(record, title=title)}
    if record.vocab_size == 3:
        panels = [(f"{lr.layer}: {m} delta", *simplex[(lr.layer, m)]) for m in methods for lr in record.layers]
        figs["causal_simplex"] = lambda: plot_steered_simplex(
            panels, columns=len(record.layers), target_kind=kind, title=title
        )
    return save_figures(inputs.cfg, inputs.run_dir, figs)


def _e(e: Estimate, digits: int = 3) -> str:
    return f"{e.mean:.{digits}f} ± {e.stderr:.{digits}f}"


def report_sections(record: CausalRecord) -> tuple[tuple, dict[str, str], dict[str, Any]]:
    """The report's tables, the figures' captions and summary.json's headline numbers."""
    steer_rows = [
        [lr.layer, s.method, s.target, str(s.position), _e(s.closed), _e(s.closed_random), _e(s.closed_complement),
         _e(s.kl_unsteered, 4), _e(s.kl_steered, 4), f"{s.delta_norm.mean:.2f} / {s.activation_norm.mean:.2f}"]
        for lr in record.layers
        for s in lr.steering
    ]  # fmt: skip
    b = record.baselines
    abl_rows = [
        [lr.layer, a.method, str(a.dim), f"{lr.probe_r2:.3f}", _e(a.clean, 4), _e(a.mean_belief, 4),
         _e(a.resample_belief, 4), _e(a.mean_random, 4), _e(a.resample_random, 4)]
        for lr in record.layers
        for a in lr.ablation
    ]  # fmt: skip
    tables = (
        (
            "Causal: steering toward a target belief (fraction of the KL to the target law closed)",
            [
                "layer",
                "delta",
                "target",
                "position",
                "closed",
                "random direction",
                "orthogonal complement",
                "KL before",
                "KL after",
                "|delta| / |x|",
            ],
            steer_rows,
            f"closed = {DEFINITIONS['closed']}. Deltas: probe = {DEFINITIONS['probe']}; encoding = "
            f"{DEFINITIONS['encoding']}. Controls: same-norm deltas. Mean ± standard error over pairs.",
        ),  # fmt: skip
        (
            "Causal: ablating a subspace (loss in nats per token, every position)",
            [
                "layer",
                "subspace",
                "dim",
                "probe R²",
                "clean",
                "mean-ablated",
                "resample-ablated",
                "random subspace: mean",
                "random subspace: resample",
            ],
            abl_rows,
            f"Baselines (exact): optimal {record.optimal_loss:.4f}, order-1 predictor {b.order1:.4f}, "
            f"order-0 predictor {b.order0:.4f}. Mean ± standard error over contexts.",
        ),  # fmt: skip
    )
    captions = {
        "causal_layers": "Fraction of the KL to the target law closed by steering, per layer, with the probe's "
        "minimal-norm delta and with the encoding delta, beside same-norm random and orthogonal-complement deltas; "
        "right: loss with a subspace ablated (mean, resample) beside random subspaces of the same dimension, the clean "
        "model and the exact baselines.",
        "causal_simplex": "Next-token distributions in the simplex of tokens after steering toward targets (dots), "
        "beside the target laws (rings), one panel per layer and delta.",
    }
    head = record.layer(record.probe_layer)
    headline: dict[str, Any] = {"layer": head.layer}
    for s in head.steering:
        if s.position == head.steering[0].position and s.target == head.steering[0].target:
            headline[f"closed_{s.method}"] = s.closed.mean
            headline[f"closed_{s.method}_stderr"] = s.closed.stderr
            headline[f"closed_{s.method}_random"] = s.closed_random.mean
            headline[f"closed_{s.method}_complement"] = s.closed_complement.mean
    for a in head.ablation:
        headline[f"ablation_{a.method}_increase_mean"] = a.increase_mean_belief.mean
        headline[f"ablation_{a.method}_increase_resample"] = a.increase_resample_belief.mean
        headline[f"ablation_{a.method}_increase_random_resample"] = a.increase_resample_random.mean
    return tables, captions, headline
