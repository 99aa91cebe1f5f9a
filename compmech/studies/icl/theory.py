"""In-context learning of a non-ergodic mixture: the exact per-position optimal loss, the told-the-source and
the never-inferring predictors' losses, the posterior over sources, and fits of the in-context learning curve.

A mixture (`hmm_processes.mixture`) draws component k with probability w_k once per sequence; its state space
is the union of the components' (block k holds component k's states) and its prior is ``w_k pi_k`` on block k.
For a context x_{1:n} (``seen = n`` tokens) and a next-token law q, the expected loss on sequences of
component k is

    L_k[q](n) = E_{x ~ component k} [ sum_x' P_k(x' | x_{1:n}) (-ln q(x' | x_{1:n})) ]   (nats)

(the inner sum is the exact cross-entropy against the told law, so a Monte-Carlo estimate carries no
next-token sampling noise). Three predictors are measured this way:

- the Bayes-optimal one, q = P_mix(. | x_{1:n}) from the mixture's belief (the source unknown, inferred):
  ``optimal(n) = sum_k w_k L_k[P_mix](n)``, the mixture's myopic entropy h(n + 1);
- the one told the source: ``component[k](n) = L_k[P_k](n)``, component k's own myopic entropy;
- the one that assumes component j and never infers (component j's belief update from its stationary
  distribution, whatever the sequence's source): ``fixed_source[j](n) = sum_k w_k L_k[P_j](n)``.

Each is an average over the words of length ``max_seen`` (the per-position terms of a long word are those of
its prefixes), either exactly over every allowed word with its probability (``method = "exact"``, while the
words are few enough) or over sampled words (``"monte_carlo"``: `n_samples` words drawn in float64 from the
exact next-token law, stratified by component, ``n_k ~ w_k n_samples``; standard error from the per-word
spread of each stratum, ``se^2 = sum_k w_k^2 var_k / n_k``). ``method = "auto"`` is exact wherever the words
can be enumerated: exact at every position when the words of length ``max_seen`` are few enough, else a hybrid
(`compmech.loss_curves.hybrid_curve`): exact through the longest enumerable length, Monte Carlo beyond, the
boundary recorded in the curve (``last_exact_seen``). The same holds for random Markov chains.

`icl_theory` is the one dispatch point over source families (a mixture of HMMs/GHMMs here; another family
is one more branch), as `source_posterior` is for the source-posterior probe targets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from compmech.fractal import belief_chaos_game
from compmech.information import next_token_distribution
from compmech.loss_curves import ICLCurve, hybrid_curve
from compmech.markov_chains import (
    all_words,
    exact_positions,
    markov_icl_curve,
    markov_icl_curve_exact,
    markov_source_posterior,
    markov_unigram_loss,
    markov_unigram_loss_exact,
)
from compmech.mixed_states import belief_trajectories, mixed_states, word_counts
from hmm_processes import (
    HMM,
    GeneralizedHMM,
    ProcessError,
    RandomMarkovChains,
    bayes_predictive,
    component_posterior,
    log_marginal_probability,
    process_vectors,
)

#: "auto" enumerates the words of a length when at most this many are allowed (the chains: contexts, all lengths).
MAX_EXACT_WORDS = 200_000
#: Default Monte-Carlo sample (words, over all components).
N_SAMPLES = 20_000
#: A predictor that gives a possible token probability below this is charged -ln(PROB_FLOOR) = 27.6 nats
#: for it (only a never-inferring predictor can: the others give every possible token its probability).
PROB_FLOOR = 1e-12
#: Words evaluated at once (memory: chunk x (max_seen + 1) x V float64 per predictor).
CHUNK_WORDS = 20_000

FIXED_SOURCE_TEXT = (
    "the predictor that assumes one component and never infers the source: component j's own belief update from "
    "its stationary distribution, applied to every sequence of the mixture; its expected loss on the mixture is "
    "sum_k w_k E_k[cross-entropy of P_k against P_j]"
)


# ---------------------------------------------------------------------------- the mixture's parts


@dataclass(frozen=True, eq=False)
class MixtureParts:
    """A mixture's components as blocks of its states: weights, edges and each component's prior on its block."""

    weights: np.ndarray  # [K] P(component k)
    edges: np.ndarray  # [K + 1] block k is states edges[k]:edges[k + 1]
    priors: np.ndarray  # [K, S] component k's stationary distribution on its block (zeros elsewhere)
    labels: tuple[str, ...]  # [K] readable names

    @property
    def n_components(self) -> int:
        return int(self.weights.shape[0])


def is_mixture(process: object) -> bool:
    """Whether ``process`` is an `hmm_processes.mixture` (its params record the components' state counts)."""
    params = getattr(process, "params", None)
    return isinstance(params, dict) and isinstance(params.get("component_states"), list)


def mixture_parts(process: HMM | GeneralizedHMM) -> MixtureParts:
    """The components of an `hmm_processes.mixture`, read off its block structure (`ProcessError` otherwise)."""
    if not is_mixture(process):
        raise ProcessError(
            f"{getattr(process, 'name', process)!r} is not a mixture of processes; build it with "
            'hmm_processes.mixture (in a config: [process] kind = "mixture")'
        )
    sizes = [int(s) for s in process.params["component_states"]]
    _, pi, tau = process_vectors(process)
    edges = np.cumsum([0, *sizes])
    if edges[-1] != process.num_states:
        raise ProcessError(
            f"{process.name!r}: component_states {sizes} do not add up to its {process.num_states} states"
        )
    K = len(sizes)
    weights = np.array([pi[a:z] @ tau[a:z] for a, z in zip(edges[:-1], edges[1:])])  # [K]
    priors = np.zeros((K, process.num_states))
    for k, (a, z) in enumerate(zip(edges[:-1], edges[1:])):
        priors[k, a:z] = pi[a:z] / weights[k]
    comps = process.params.get("components") or [{} for _ in sizes]
    labels = tuple(_label(c, k) for k, c in enumerate(comps))
    maps = process.params.get("vocab_maps")
    if maps is not None:  # components that differ only in their tokens: the map tells them apart
        labels = tuple(f"{lab} via {list(m)}" for lab, m in zip(labels, maps))
    return MixtureParts(weights=weights, edges=edges, priors=priors, labels=labels)


def _label(component: dict, k: int) -> str:
    rest = ", ".join(
        f"{key} = {v:g}" if isinstance(v, float) else f"{key} = {v}"
        for key, v in component.items()
        if key not in ("name", "components")
    )
    name = component.get("name", f"component {k}")
    return f"{name} ({rest})" if rest else str(name)


# ---------------------------------------------------------------------------- per-word terms


def _predictives(process: HMM | GeneralizedHMM, words: np.ndarray, prior: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Next-token laws along each word from ``prior``: [N, L + 1, V] (row n: after n tokens) and ln P(word) [N].

    A word impossible from ``prior`` has log-probability -inf and NaN laws from where it became impossible.
    """
    beliefs, logp = belief_trajectories(process, words, prior=prior)  # [N, L, S], [N]
    b = np.concatenate([np.broadcast_to(prior, (words.shape[0], 1, prior.shape[0])), beliefs], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return next_token_distribution(b, process.emission_matrix), logp


def _cross_entropy(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """sum_x p(x) (-ln q(x)) over the last axis, with q floored at `PROB_FLOOR` where p > 0; [..., V] -> [...]."""
    q = np.nan_to_num(q, nan=0.0)  # a law past where the word became impossible for this predictor: 0
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(p > 0, -p * np.log(np.maximum(q, PROB_FLOOR)), 0.0)
    return terms.sum(axis=-1)


def _stratum_terms(
    process: HMM | GeneralizedHMM, parts: MixtureParts, words: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """For words of component k: the per-word losses [N, K + 1, L + 1] (predictor 0: the mixture's; 1 + j:
    component j's fixed one) against component k's told law, and ln P_k(word) [N]."""
    _, pi, _ = process_vectors(process)
    p_k, logp_k = _predictives(process, words, parts.priors[k])  # the told law
    q_mix, _ = _predictives(process, words, np.asarray(pi, np.float64))
    out = np.empty((words.shape[0], parts.n_components + 1, words.shape[1] + 1))
    out[:, 0] = _cross_entropy(p_k, q_mix)
    for j in range(parts.n_components):
        q_j = p_k if j == k else _predictives(process, words, parts.priors[j])[0]
        out[:, 1 + j] = _cross_entropy(p_k, q_j)
    return out, logp_k


# ---------------------------------------------------------------------------- the theory


@dataclass(frozen=True, eq=False)
class ICLTheory:
    """The in-context learning curve of a source (`ICLCurve`) and the never-inferring predictors' losses."""

    curve: ICLCurve
    fixed_source: np.ndarray  # [J, P] nats: expected loss of each never-inferring predictor (see `definition`)
    fixed_source_se: np.ndarray  # [J, P] standard errors (zeros when exact)
    fixed_source_labels: tuple[str, ...]  # [J]
    definition: str  # what the never-inferring predictors are

    @property
    def best_fixed_source(self) -> int:
        """The never-inferring predictor of lowest mean loss over the positions."""
        return int(np.argmin(self.fixed_source.mean(axis=1)))


def mixture_icl_theory(
    process: HMM | GeneralizedHMM,
    max_seen: int,
    *,
    method: str = "auto",
    n_samples: int = N_SAMPLES,
    seed: int = 0,
    max_exact_words: int = MAX_EXACT_WORDS,
) -> ICLTheory:
    """The ICL curve of a mixture for seen = 0..``max_seen`` tokens (see the module docstring).

    ``method``: "exact" (every allowed word of length ``max_seen``; refused beyond ``max_exact_words`` words),
    "monte_carlo" (``n_samples`` sampled words, float64 NumPy generator seeded with ``seed``, at every position),
    or "auto": exact when the words of length ``max_seen`` are at most ``max_exact_words``, else exact through the
    longest length whose words are (the curve's ``last_exact_seen``) and Monte Carlo beyond (a "hybrid" curve;
    the never-inferring predictors the same way).
    """
    parts = mixture_parts(process)
    max_seen = int(max_seen)
    if max_seen < 0:
        raise ProcessError(f"max_seen must be >= 0; got {max_seen}")
    if method not in ("auto", "exact", "monte_carlo"):
        raise ProcessError(f'method must be "auto", "exact" or "monte_carlo"; got {method!r}')
    counts = word_counts(process, max_seen)  # [max_seen + 1] bounds on the allowed words of each length
    n_words = float(counts[-1])
    if method == "exact" and n_words > max_exact_words:
        raise ProcessError(
            f"exact ICL curve of {process.name} to {max_seen} tokens needs up to {n_words:.3g} words, "
            f'more than max_exact_words = {max_exact_words}; use method = "monte_carlo"'
        )
    if method != "auto":
        return _mixture_theory(process, parts, max_seen, method, n_samples, seed)
    if n_words <= max_exact_words:
        return _mixture_theory(process, parts, max_seen, "exact", n_samples, seed)
    # exact through the longest length whose words can be enumerated (length 0 always: one word), Monte Carlo beyond
    last_exact = int(np.flatnonzero(np.cumprod(counts <= max_exact_words))[-1])
    exact = _mixture_theory(process, parts, last_exact, "exact", n_samples, seed)
    sampled = _mixture_theory(process, parts, max_seen, "monte_carlo", n_samples, seed)
    n = last_exact + 1
    return ICLTheory(
        curve=hybrid_curve(exact.curve, sampled.curve),
        fixed_source=np.concatenate([exact.fixed_source, sampled.fixed_source[:, n:]], axis=1),
        fixed_source_se=np.concatenate([exact.fixed_source_se, sampled.fixed_source_se[:, n:]], axis=1),
        fixed_source_labels=sampled.fixed_source_labels,
        definition=sampled.definition,
    )


def _mixture_theory(
    process: HMM | GeneralizedHMM, parts: MixtureParts, max_seen: int, method: str, n_samples: int, seed: int
) -> ICLTheory:
    """`mixture_icl_theory` at every position by one method: "exact" (every allowed word of length ``max_seen``)
    or "monte_carlo"."""
    K, P = parts.n_components, max_seen + 1
    mean = np.zeros((K, K + 1, P))  # stratum k, predictor, position
    var = np.zeros((K, K + 1, P))  # variance of the stratum's mean (0 when exact)
    if method == "exact":
        words = mixed_states(process, max_seen).level(max_seen).words.astype(np.int64)  # [N, L]
        for k in range(K):
            for a in range(0, max(words.shape[0], 1), CHUNK_WORDS):
                terms, logp = _stratum_terms(process, parts, words[a : a + CHUNK_WORDS], k)
                w = np.exp(logp)  # P_k(word); 0 for words component k cannot emit
                mean[k] += np.einsum("n,njp->jp", w, np.nan_to_num(terms, nan=0.0, posinf=0.0))
        n_used = 0
    else:
        n_k = np.maximum(2, np.round(parts.weights * int(n_samples)).astype(int))
        rng = np.random.default_rng(seed)
        T, _, tau = process_vectors(process)
        for k in range(K):
            acc = np.zeros((K + 1, P))
            acc2 = np.zeros((K + 1, P))
            for a in range(0, n_k[k], CHUNK_WORDS):
                n = min(CHUNK_WORDS, n_k[k] - a)
                words = _sample_words(T, parts.priors[k], tau, n, max_seen, rng)
                terms, _ = _stratum_terms(process, parts, words, k)
                acc += terms.sum(axis=0)
                acc2 += np.square(terms).sum(axis=0)
            mean[k] = acc / n_k[k]
            var[k] = np.maximum(acc2 / n_k[k] - mean[k] ** 2, 0.0) * n_k[k] / (n_k[k] - 1) / n_k[k]
        n_used = int(n_k.sum())
    w = parts.weights
    optimal = w @ mean[:, 0]  # [P]
    optimal_se = np.sqrt(np.square(w) @ var[:, 0])
    component = mean[np.arange(K), 1 + np.arange(K)]  # [K, P]
    component_se = np.sqrt(var[np.arange(K), 1 + np.arange(K)])
    fixed = np.einsum("k,kjp->jp", w, mean[:, 1:])  # [K, P]
    fixed_se = np.sqrt(np.einsum("k,kjp->jp", np.square(w), var[:, 1:]))
    curve = ICLCurve(
        seen=np.arange(P),
        optimal=optimal,
        optimal_se=optimal_se,
        component=component,
        component_se=component_se,
        weights=w.copy(),
        labels=parts.labels,
        method=method,
        n_samples=n_used,
    )
    return ICLTheory(
        curve=curve,
        fixed_source=fixed,
        fixed_source_se=fixed_se,
        fixed_source_labels=tuple(f"assumes {lab}" for lab in parts.labels),
        definition=FIXED_SOURCE_TEXT,
    )


def _sample_words(
    T: np.ndarray, prior: np.ndarray, tau: np.ndarray, n: int, length: int, rng: np.random.Generator
) -> np.ndarray:
    """``n`` words [n, length] (int64) drawn from the exact next-token law from ``prior`` (float64 chaos game)."""
    words = np.zeros((n, length), np.int64)
    for t, (_, _, x, _, _) in enumerate(belief_chaos_game(T, prior, tau, n, length, rng)):
        words[:, t] = x
    return words


UNIGRAM_TEXT = (
    "the in-context unigram predictor: (alpha + n_j) / (k alpha + t), token counts of the context, blind to their "
    "order (Bayes for i.i.d. tokens); the strategy models pass through, on a training-loss plateau, before the "
    "bigram (induction-head) solution (Edelman et al. 2024)"
)


def markov_icl_theory(
    source: RandomMarkovChains,
    max_seen: int,
    *,
    method: str = "auto",
    n_samples: int = N_SAMPLES,
    seed: int = 0,
    max_exact_words: int = MAX_EXACT_WORDS,
) -> ICLTheory:
    """The ICL theory of random Markov chains for seen = 0..``max_seen`` tokens (`compmech.markov_chains`): the
    Dirichlet-count optimum and the told-the-matrix loss, and the in-context unigram predictor as the one
    predictor that does not use the order of the tokens. "exact": every context enumerated (refused beyond
    ``max_exact_words`` contexts in all); "monte_carlo": ``n_samples`` chains at every position; "auto": exact at
    the first positions whose contexts number at most ``max_exact_words`` in all, Monte Carlo beyond (a "hybrid"
    curve, or an exact one when every position fits)."""
    P = int(max_seen) + 1
    if int(max_seen) < 0:
        raise ProcessError(f"max_seen must be >= 0; got {max_seen}")
    if method not in ("auto", "exact", "monte_carlo"):
        raise ProcessError(f'method must be "auto", "exact" or "monte_carlo"; got {method!r}')
    n = P if method == "exact" else exact_positions(source, P, max_exact_words) if method == "auto" else 0
    if n == P:  # every position enumerated (refused by the exact functions beyond max_exact_words)
        curve = markov_icl_curve_exact(source, P, max_words=max_exact_words)
        unigram, unigram_se = markov_unigram_loss_exact(source, P, max_words=max_exact_words), np.zeros(P)
    else:
        curve = markov_icl_curve(source, P, n_samples=n_samples, seed=seed)
        unigram, unigram_se = markov_unigram_loss(source, P, n_samples=n_samples, seed=seed + 1)
        if n > 0:  # "auto": exact at the first n positions, Monte Carlo beyond
            curve = hybrid_curve(markov_icl_curve_exact(source, n, max_words=max_exact_words), curve)
            unigram = np.concatenate([markov_unigram_loss_exact(source, n, max_words=max_exact_words), unigram[n:]])
            unigram_se = np.concatenate([np.zeros(n), unigram_se[n:]])
    return ICLTheory(
        curve=curve,
        fixed_source=unigram[None],
        fixed_source_se=unigram_se[None],
        fixed_source_labels=("in-context unigram",),
        definition=UNIGRAM_TEXT,
    )


def has_icl_theory(process: object) -> bool:
    """Whether `icl_theory` covers ``process`` (a non-ergodic source of a known family)."""
    return is_mixture(process) or isinstance(process, RandomMarkovChains)


def icl_theory(process: HMM | GeneralizedHMM, max_seen: int, **options) -> ICLTheory:
    """The in-context learning theory of a non-ergodic source, for seen = 0..``max_seen`` tokens.

    The one dispatch over source families: a mixture of HMMs/GHMMs (`mixture_icl_theory`) or random Markov
    chains (`markov_icl_theory`); ``options``: method, n_samples, seed, max_exact_words. Raises `ProcessError`
    for a process that is no such source.
    """
    if is_mixture(process):
        return mixture_icl_theory(process, max_seen, **options)
    if isinstance(process, RandomMarkovChains):
        return markov_icl_theory(process, max_seen, **options)
    raise ProcessError(
        f"{getattr(process, 'name', process)!r} is not a non-ergodic source with an in-context "
        'learning theory; use [process] kind = "mixture" (a mixture of HMMs/GHMMs) or '
        'kind = "random_markov"'
    )


@dataclass(frozen=True, eq=False)
class EnumeratedWords:
    """Every allowed word of one length with its probability and the exact next-token law after each prefix."""

    words: np.ndarray  # [N, L] int64
    probs: np.ndarray  # [N] P(word), summing to 1
    laws: np.ndarray  # [N, L + 1, V] float64: row n is P(next | the word's first n tokens)


def enumerated_words(process: HMM | GeneralizedHMM | RandomMarkovChains, length: int) -> EnumeratedWords:
    """Every allowed word of ``length`` >= 1 tokens of a source `icl_theory` covers, with the exact next-token laws
    along it (from the stationary prior: a mixture's ``w_k pi_k``; the chains' uniform first token and Dirichlet
    predictive). What a model's loss is measured on exactly at the positions whose contexts can be enumerated."""
    length = int(length)
    if length < 1:
        raise ProcessError(f"length must be >= 1; got {length}")
    if isinstance(process, RandomMarkovChains):
        words = all_words(process.n_states, length)  # [k^L, L]
        probs = np.exp(log_marginal_probability(process, words))
        first = np.broadcast_to(np.asarray(process.first_token_law, np.float64), (words.shape[0], 1, process.n_states))
        laws = np.concatenate([first, bayes_predictive(process, words)], axis=1)  # [N, L + 1, k]
        return EnumeratedWords(words=words, probs=probs, laws=laws)
    if not has_icl_theory(process):
        raise ProcessError(
            f"{getattr(process, 'name', process)!r} has no in-context learning theory; use a mixture "
            "or random Markov chains"
        )
    level = mixed_states(process, length).level(length)
    words = level.words.astype(np.int64)  # [N, L]
    _, pi, _ = process_vectors(process)
    laws, _ = _predictives(process, words, np.asarray(pi, np.float64))  # [N, L + 1, V]
    return EnumeratedWords(words=words, probs=np.asarray(level.probs, np.float64), laws=laws)


def component_emissions(process: object) -> np.ndarray | None:
    """[K, V] bool: which tokens each component of a mixture can emit (a nonzero entry of its block of ``T[x]``);
    None for a source that is not a mixture (random Markov chains: every chain emits every token)."""
    if not is_mixture(process):
        return None
    parts = mixture_parts(process)  # type: ignore[arg-type]
    T, _, _ = process_vectors(process)  # type: ignore[arg-type]
    e = parts.edges
    return np.stack([np.any(T[:, a:z, a:z] != 0, axis=(1, 2)) for a, z in zip(e[:-1], e[1:])])


def source_posterior(
    process: HMM | GeneralizedHMM, tokens: np.ndarray | None = None, beliefs: np.ndarray | None = None
) -> np.ndarray:
    """P(source | context) along sequences, [N, T, K]: row t after ``tokens[:, :t+1]`` (the probe target).

    The one dispatch for the source-posterior targets. A mixture: the belief's mass on each component's block
    (`hmm_processes.component_posterior`), from ``beliefs`` [N, T, S] when given (e.g. with a start token, whose
    belief is the prior), else from exact float64 beliefs along ``tokens`` [N, T].
    """
    if is_mixture(process):
        if beliefs is None:
            if tokens is None:
                raise ProcessError("source_posterior needs tokens or beliefs")
            beliefs, _ = belief_trajectories(process, np.asarray(tokens))
        return component_posterior(process, beliefs)
    if isinstance(process, RandomMarkovChains):  # the posterior's mean transition matrix, [N, T, k*k]
        if beliefs is not None:  # the runner's beliefs of a chain source are that very mean
            return np.asarray(beliefs, np.float64)
        if tokens is None:
            raise ProcessError("source_posterior needs tokens or beliefs")
        return markov_source_posterior(process, np.asarray(tokens))
    raise ProcessError(
        f"{getattr(process, 'name', process)!r} has no source posterior; use a mixture or random Markov chains"
    )


# ---------------------------------------------------------------------------- fits of the excess


@dataclass(frozen=True)
class CurveFit:
    """A two-parameter fit of an excess-loss curve e(n), by least squares on ln e (unweighted).

    ``power_law``: e = a n^(-b), rate = b; ``exponential``: e = a exp(-n / tau), rate = tau. Standard errors
    from the least-squares covariance (residual variance x (X'X)^-1; a and tau by the delta method).
    """

    model: str  # "power_law" | "exponential"
    a: float
    a_se: float
    rate: float  # b (power law) or tau (exponential, in tokens)
    rate_se: float
    r2_log: float  # R² of the fit on ln e
    rmse_log: float  # root-mean-square residual on ln e
    n_points: int
    seen_min: int
    seen_max: int

    def predict(self, seen: np.ndarray) -> np.ndarray:
        n = np.asarray(seen, np.float64)
        return self.a * (n**-self.rate if self.model == "power_law" else np.exp(-n / self.rate))

    def to_json(self) -> dict:
        return {k: (float(v) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class ExcessFits:
    """Both fits of one excess curve, and which is better (lower rmse on ln e: both have two parameters)."""

    power_law: CurveFit | None
    exponential: CurveFit | None
    better: str | None  # "power_law" | "exponential" | None (too few points)
    note: str  # which points were fitted

    def to_json(self) -> dict:
        return {
            "power_law": None if self.power_law is None else self.power_law.to_json(),
            "exponential": None if self.exponential is None else self.exponential.to_json(),
            "better": self.better,
            "note": self.note,
        }


def fit_points(
    seen: np.ndarray,
    excess: np.ndarray,
    excess_se: np.ndarray | None = None,
    *,
    min_seen: int = 1,
    min_excess: float = 1e-9,
) -> np.ndarray:
    """[P] bool: the points `fit_excess` uses: seen >= ``min_seen`` (>= 1), excess above ``min_excess`` and, with
    ``excess_se``, above 2 standard errors."""
    n = np.asarray(seen, np.float64)
    e = np.asarray(excess, np.float64)
    keep = (n >= max(min_seen, 1)) & (e > min_excess)
    if excess_se is not None:
        keep &= e > 2.0 * np.asarray(excess_se, np.float64)
    return keep


def fit_excess(
    seen: np.ndarray,
    excess: np.ndarray,
    excess_se: np.ndarray | None = None,
    *,
    min_seen: int = 1,
    min_excess: float = 1e-9,
    only: np.ndarray | None = None,
) -> ExcessFits:
    """Fit e(n) = a n^-b and e(n) = a exp(-n / tau) to an excess curve [P] by least squares on ln e.

    Points fitted (`fit_points`): seen >= ``min_seen`` (>= 1: a power law has no value at n = 0) where the excess
    is above ``min_excess`` and, with ``excess_se``, above 2 standard errors (ln of a noise-level excess says
    nothing); with ``only`` ([P] bool), among those the positions it marks.
    """
    n = np.asarray(seen, np.float64)
    e = np.asarray(excess, np.float64)
    keep = fit_points(seen, excess, excess_se, min_seen=min_seen, min_excess=min_excess)
    if only is not None:
        keep &= np.asarray(only, bool)
    note = (
        f"unweighted least squares on ln(excess) over seen >= {max(min_seen, 1)} where the excess is > "
        f"{min_excess:g}"
        + (" and > 2 standard errors" if excess_se is not None else "")
        + (" at the positions given" if only is not None else "")
        + f": {int(keep.sum())} points"
    )
    if keep.sum() < 3:
        return ExcessFits(None, None, None, note + " (fewer than 3: no fit)")
    x, y = n[keep], np.log(e[keep])
    fits = {}
    for model, feature in (("power_law", np.log(x)), ("exponential", x)):
        X = np.stack([np.ones_like(feature), feature], axis=1)
        coef, *_ = np.linalg.lstsq(X, y, rcond=None)
        resid = y - X @ coef
        dof = max(len(y) - 2, 1)
        cov = (resid @ resid / dof) * np.linalg.inv(X.T @ X)
        se0, se1 = np.sqrt(np.diag(cov))
        sst = float(np.sum((y - y.mean()) ** 2))
        r2 = 1.0 - float(resid @ resid) / sst if sst > 0 else float("nan")
        a = math.exp(coef[0])
        slope = float(coef[1])
        if model == "power_law":
            rate, rate_se = -slope, float(se1)
        else:
            rate = -1.0 / slope if slope != 0 else float("inf")
            rate_se = float(se1) / slope**2 if slope != 0 else float("inf")
        fits[model] = CurveFit(
            model=model,
            a=a,
            a_se=a * float(se0),
            rate=float(rate),
            rate_se=float(rate_se),
            r2_log=float(r2),
            rmse_log=float(np.sqrt(np.mean(resid**2))),
            n_points=int(len(y)),
            seen_min=int(x.min()),
            seen_max=int(x.max()),
        )
    better = min(fits, key=lambda m: fits[m].rmse_log)
    return ExcessFits(fits["power_law"], fits["exponential"], better, note)


#: Two decay rates agree when their difference is at most this many of its standard errors.
AGREE_SE = 2.0


@dataclass(frozen=True)
class RateDifference:
    """One fitted form's rate (b of a power law, tau of an exponential) for the model and the theory, fitted at the
    same positions, and their difference with its error (the two fits' errors in quadrature)."""

    model: str  # "power_law" | "exponential"
    theory_rate: float
    theory_rate_se: float
    model_rate: float
    model_rate_se: float
    difference: float  # model - theory
    difference_se: float
    agree: bool | None  # |difference| <= AGREE_SE * difference_se (False beyond); None: within the errors but
    #                     undetermined, the errors too large to tell the theory's rate from twice it
    #                     (AGREE_SE * difference_se >= |theory rate|)

    def to_json(self) -> dict:
        return {k: (float(v) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class DecayComparison:
    """The model's measured excess and the theory's fitted at the same positions, and their rates compared."""

    model_fit: ExcessFits
    theory_fit: ExcessFits
    seen: tuple[int, ...]  # the positions both fits use
    power_law: RateDifference | None
    exponential: RateDifference | None
    rule: str

    def to_json(self) -> dict:
        return {
            "model": self.model_fit.to_json(),
            "theory": self.theory_fit.to_json(),
            "seen": list(self.seen),
            "power_law": None if self.power_law is None else self.power_law.to_json(),
            "exponential": None if self.exponential is None else self.exponential.to_json(),
            "rule": self.rule,
        }


def compare_decay(
    seen: np.ndarray,
    model_excess: np.ndarray,
    model_se: np.ndarray | None,
    theory_excess: np.ndarray,
    theory_se: np.ndarray | None = None,
    *,
    min_seen: int = 1,
) -> DecayComparison:
    """Fit the model's measured excess [P] and the theory's [P] at the same positions (those `fit_points` keeps for
    both) and compare each form's rate: difference (model - theory) with the two errors in quadrature; they agree
    when it is at most `AGREE_SE` of its errors. A comparison that can say no: the model's curve is its own
    measured loss minus the told-the-source loss, never the theory's curve plus something."""
    both = fit_points(seen, model_excess, model_se, min_seen=min_seen) & fit_points(
        seen, theory_excess, theory_se, min_seen=min_seen
    )
    model_fit = fit_excess(seen, model_excess, model_se, min_seen=min_seen, only=both)
    theory_fit = fit_excess(seen, theory_excess, theory_se, min_seen=min_seen, only=both)
    diffs = {}
    for form in ("power_law", "exponential"):
        m, t = getattr(model_fit, form), getattr(theory_fit, form)
        if m is None or t is None:
            diffs[form] = None
            continue
        d, se = m.rate - t.rate, math.hypot(m.rate_se, t.rate_se)
        within = bool(abs(d) <= AGREE_SE * se)
        agree = None if within and not AGREE_SE * se < abs(t.rate) else within
        diffs[form] = RateDifference(
            model=form,
            theory_rate=t.rate,
            theory_rate_se=t.rate_se,
            model_rate=m.rate,
            model_rate_se=m.rate_se,
            difference=float(d),
            difference_se=float(se),
            agree=agree,
        )
    rule = (
        f"agree when |model - theory| <= {AGREE_SE:g} standard errors (the fits' errors in quadrature), both "
        f"fitted at the same positions; differ beyond; undetermined (null) when they agree only because "
        f"{AGREE_SE:g} standard errors reach the theory's rate itself"
    )
    return DecayComparison(
        model_fit=model_fit,
        theory_fit=theory_fit,
        seen=tuple(int(x) for x in np.asarray(seen)[both]),
        power_law=diffs["power_law"],
        exponential=diffs["exponential"],
        rule=rule,
    )
