"""The in-context learning curve of a non-ergodic source: the record every source family's theory returns.

A non-ergodic source draws one component (a process, or a point of a continuous family such as a
random Markov chain) per sequence. The Bayes-optimal predictor must infer the component from the context,
so its expected loss falls with the number of tokens seen; a predictor told the component loses less.
The gap between the two is the in-context learning curve. Each family's theory (`compmech.studies.icl.theory` for
mixtures of HMMs/GHMMs, `compmech.markov_chains` for random Markov chains) fills this one record.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METHODS = ("exact", "monte_carlo")


@dataclass(frozen=True, eq=False)
class ICLCurve:
    """Per-position expected losses (nats) of the source-unknown and the source-told predictors.

    Position ``p`` predicts the token that follows ``seen[p]`` tokens of the sequence (``seen = 0``: the
    first token, from the prior alone; a model sees it only with a start token). ``component[k]`` is the
    expected loss of a predictor told that the sequence comes from component ``k`` (for a continuous
    family ``K = 1``: the loss of a predictor told the drawn point, averaged over the prior).
    Standard errors are zero for exact curves.
    """

    seen: np.ndarray  # [P] int: tokens seen before the predicted one, increasing
    optimal: np.ndarray  # [P] nats: E[-log P(x_next | context)] of the Bayes-optimal (source-unknown) predictor
    optimal_se: np.ndarray  # [P] its Monte-Carlo standard error (zeros when exact)
    component: np.ndarray  # [K, P] nats: expected loss of the predictor told the source, per component
    component_se: np.ndarray  # [K, P] their standard errors (zeros when exact)
    weights: np.ndarray  # [K] prior weight of each component (K = 1, [1.0], for a continuous family)
    labels: tuple[str, ...]  # [K] a readable name per component
    method: str  # "exact" | "monte_carlo"
    n_samples: int = 0  # sequences sampled (0 when exact)

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

    @property
    def known_source(self) -> np.ndarray:
        """[P] nats: the expected loss when told the source (the components' losses, prior-weighted)."""
        return self.weights @ self.component

    @property
    def excess(self) -> np.ndarray:
        """[P] nats: what not knowing the source costs at each position (>= 0; falls to 0 as it is learned)."""
        return self.optimal - self.known_source
