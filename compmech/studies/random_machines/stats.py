"""Rank correlations for a small sample, with their uncertainty: Spearman's rho (ties and infinities ranked as
they order), an exact two-sided permutation p-value for up to `EXACT_PERMUTATION_MAX` points (every permutation
of one variable against the other) or a Monte-Carlo one (with the +1 correction, so never 0) beyond, a percentile
bootstrap 95% interval, and Holm's adjustment for the several measures each outcome is tested against."""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import rankdata

#: Up to this many points every permutation is enumerated (8! = 40,320).
EXACT_PERMUTATION_MAX = 8
#: Monte-Carlo permutations beyond it, and bootstrap resamples.
N_PERMUTATIONS = 20_000
N_BOOTSTRAP = 5_000


@dataclass(frozen=True)
class RankCorrelation:
    """Spearman's rho of ``n`` pairs with its two-sided permutation p-value (``p_method`` "exact" or "monte carlo"),
    its percentile bootstrap 95% interval (None when too few resamples are defined), and Holm's adjusted p
    (filled in by `holm`)."""

    x: str
    y: str
    n: int
    rho: float | None
    p: float | None
    p_method: str
    ci_low: float | None
    ci_high: float | None
    p_holm: float | None = None
    subset: str = "all"  # which processes: "all", "unifilar", "non-unifilar"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _rho_of_ranks(rx: np.ndarray, ry: np.ndarray) -> np.ndarray:
    """Pearson correlation of rank vectors along the last axis (Spearman's rho with ties averaged); NaN if constant."""
    rx = rx - rx.mean(axis=-1, keepdims=True)
    ry = ry - ry.mean(axis=-1, keepdims=True)
    den = np.sqrt((rx**2).sum(-1) * (ry**2).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (rx * ry).sum(-1) / np.where(den > 0, den, 1.0), np.nan)


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho of ``x``, ``y`` [n] (infinities rank last; NaN when either is constant)."""
    return float(_rho_of_ranks(rankdata(x), rankdata(y)))


def rank_correlation(
    x_name: str, y_name: str, x: Any, y: Any, *, seed: int = 0, subset: str = "all"
) -> RankCorrelation:
    """`RankCorrelation` of the pairs where both ``x`` and ``y`` are known (not NaN; infinities kept: they rank)."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    n = int(x.size)
    if n < 3:
        return RankCorrelation(x_name, y_name, n, None, None, "too few points", None, None, subset=subset)
    rx, ry = rankdata(x), rankdata(y)
    rho = float(_rho_of_ranks(rx, ry))
    if math.isnan(rho):
        return RankCorrelation(x_name, y_name, n, None, None, "constant", None, None, subset=subset)
    rng = np.random.default_rng(seed)
    if n <= EXACT_PERMUTATION_MAX:
        perms = np.array(list(itertools.permutations(range(n))))  # [n!, n]
        null = _rho_of_ranks(rx[None, :], ry[perms])
        p = float(np.mean(np.abs(null) >= abs(rho) - 1e-12))
        method = "exact"
    else:
        perms = np.argsort(rng.random((N_PERMUTATIONS, n)), axis=1)
        null = _rho_of_ranks(rx[None, :], ry[perms])
        p = float((1 + np.sum(np.abs(null) >= abs(rho) - 1e-12)) / (N_PERMUTATIONS + 1))
        method = "monte carlo"
    idx = rng.integers(0, n, size=(N_BOOTSTRAP, n))
    boot = _rho_of_ranks(rankdata(x[idx], axis=1), rankdata(y[idx], axis=1))  # [N_BOOTSTRAP]
    boot = boot[~np.isnan(boot)]
    lo = hi = None
    if boot.size >= N_BOOTSTRAP // 2:
        lo, hi = (float(v) for v in np.quantile(boot, [0.025, 0.975]))
    return RankCorrelation(x_name, y_name, n, rho, p, method, lo, hi, subset=subset)


def holm(tests: list[RankCorrelation]) -> list[RankCorrelation]:
    """Holm's step-down adjustment of the p-values of one family of tests (those with a p), in the given order."""
    have = [i for i, t in enumerate(tests) if t.p is not None]
    order = sorted(have, key=lambda i: tests[i].p)  # type: ignore[arg-type, return-value]
    adjusted: dict[int, float] = {}
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * float(tests[i].p)))  # type: ignore[arg-type]
        adjusted[i] = running
    return [
        RankCorrelation(**{**asdict(t), "p_holm": adjusted.get(i)}) if i in adjusted else t for i, t in enumerate(tests)
    ]
