"""The in-context learning curve of a non-ergodic source: the record every source family's theory returns.

A non-ergodic source draws one component (a process, or a point of a continuous family such as a
random Markov chain) per sequence. The Bayes-optimal predictor must infer the component from the context,
so its expected loss falls with the number of tokens seen; a predictor told the component loses less.
The gap between the two is the in-context learning curve. Each family's theory (`compmech.studies.icl.theory` for
mixtures of HMMs/GHMMs, `compmech.markov_chains` for random Markov chains) fills this one record.

A curve is exact (every word enumerated), Monte Carlo (sampled words, with standard errors) or a hybrid of the
two (`hybrid_curve`): exact at the first positions, whose words can always be enumerated, up to
``last_exact_seen``, and Monte Carlo beyond.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METHODS = ("exact", "monte_carlo", "hybrid")


@dataclass(frozen=True, eq=False)
class ICLCurve:
    """Per-position expected losses (nats) of the source-unknown and the source-told predictors.

    Position ``p`` predicts the token that follows ``seen[p]`` tokens of the sequence (``seen = 0``: the
    first token, from the prior alone; a model sees it only with a start token). ``component[k]`` is the
    expected loss of a predictor told that the sequence comes from component ``k`` (for a continuous
    family ``K = 1``: the loss of a predictor told the drawn point, averaged over the prior).
    Standard errors are zero for exact curves, and at the exact positions of a hybrid one.
    """

    seen: np.ndarray  # [P] int: tokens seen before the predicted one, increasing
    optimal: np.ndarray  # [P] nats: E[-log P(x_next | context)] of the Bayes-optimal (source-unknown) predictor
    optimal_se: np.ndarray  # [P] its Monte-Carlo standard error (zeros when exact)
    component: np.ndarray  # [K, P] nats: expected loss of the predictor told the source, per component
    component_se: np.ndarray  # [K, P] their standard errors (zeros when exact)
    weights: np.ndarray  # [K] prior weight of each component (K = 1, [1.0], for a continuous family)
    labels: tuple[str, ...]  # [K] a readable name per component
    method: str  # "exact" | "monte_carlo" | "hybrid" (exact through last_exact_seen, Monte Carlo beyond)
    n_samples: int = 0  # sequences sampled (0 when exact)
    last_exact_seen: int | None = None  # "hybrid" only: the last position computed exactly

    def __post_init__(self) -> None:
        p = len(self.seen)
        k = len(self.weights)
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}; got {self.method!r}")
        if self.optimal.shape != (p,) or self.optimal_se.shape != (p,):
            raise ValueError(f"optimal and optimal_se must have shape ({p},)")
        if self.component.shape != (k, p) or self.component_se.shape != (k, p):
            raise ValueError(f"component and component_se must have shape ({k}, {p})")
        if len(self.labels) != k:
            raise ValueError(f"labels must name the {k} components")
        if (self.method == "hybrid") != (self.last_exact_seen is not None):
            raise ValueError("last_exact_seen is given for a hybrid curve, and only for one")
        if self.method == "hybrid":
            if not int(self.seen[0]) <= self.last_exact_seen < int(self.seen[-1]):
                raise ValueError(
                    f"last_exact_seen must lie in [{int(self.seen[0])}, {int(self.seen[-1])}); "
                    f"got {self.last_exact_seen}"
                )
            exact = self.exact
            if np.any(self.optimal_se[exact] != 0) or np.any(self.component_se[:, exact] != 0):
                raise ValueError("a hybrid curve's standard errors must be zero at its exact positions")

    @property
    def exact(self) -> np.ndarray:
        """[P] bool: the positions computed exactly (all for "exact", none for "monte_carlo")."""
        if self.method == "hybrid":
            return np.asarray(self.seen) <= self.last_exact_seen
        return np.full(len(self.seen), self.method == "exact")

    @property
    def exact_through(self) -> int | None:
        """The last position computed exactly (None when none is)."""
        exact = self.exact
        return int(np.asarray(self.seen)[exact][-1]) if exact.any() else None

    @property
    def known_source(self) -> np.ndarray:
        """[P] nats: the expected loss when told the source (the components' losses, prior-weighted)."""
        return self.weights @ self.component

    @property
    def excess(self) -> np.ndarray:
        """[P] nats: what not knowing the source costs at each position (>= 0; falls to 0 as it is learned)."""
        return self.optimal - self.known_source


def hybrid_curve(exact: ICLCurve, sampled: ICLCurve) -> ICLCurve:
    """The exact curve at its positions and the Monte-Carlo one beyond them (their values copied, bit for bit).

    ``exact`` (method "exact") must cover the first positions of ``sampled`` (method "monte_carlo"), with the same
    components; when it covers them all it is returned as it is.
    """
    if exact.method != "exact" or sampled.method != "monte_carlo":
        raise ValueError(
            f"hybrid_curve joins an exact curve and a Monte-Carlo one; got {exact.method!r} and {sampled.method!r}"
        )
    n, P = len(exact.seen), len(sampled.seen)
    if n > P or not np.array_equal(exact.seen, sampled.seen[:n]):
        raise ValueError("the exact curve's positions must be the first positions of the Monte-Carlo one")
    if not np.array_equal(exact.weights, sampled.weights) or exact.labels != sampled.labels:
        raise ValueError("the exact and the Monte-Carlo curves must have the same components")
    if n == P:
        return exact
    return ICLCurve(
        seen=sampled.seen.copy(),
        optimal=np.concatenate([exact.optimal, sampled.optimal[n:]]),
        optimal_se=np.concatenate([exact.optimal_se, sampled.optimal_se[n:]]),
        component=np.concatenate([exact.component, sampled.component[:, n:]], axis=1),
        component_se=np.concatenate([exact.component_se, sampled.component_se[:, n:]], axis=1),
        weights=sampled.weights.copy(),
        labels=sampled.labels,
        method="hybrid",
        n_samples=sampled.n_samples,
        last_exact_seen=int(exact.seen[-1]),
    )
