"""Attention patterns as arrays: averaged over contexts, read against distance, and fitted with an exponential decay.

Why the fit is on ratios. A head whose scores fall linearly with the distance d = t - s from query t to key s,
``score = c_t + d log(lambda)``, has softmax weights ``a_ts = lambda^d / Z_t`` with a per-query normaliser
``Z_t = sum_{s<=t} lambda^(t-s)``. So ``log a_ts = -log Z_t + d log(lambda)``: the rows of the pattern are the
same geometric sequence, each scaled to sum to 1. We regress ``log a`` on d with one intercept per query
(a within-query, fixed-effects least squares: both sides centred per query), i.e. on the log-ratios
``log(a_ts / a_ts')`` of keys of the same query, which the normaliser cancels from. ``lambda_fit = exp(slope)``
and R² is the within-query share of the variance of ``log a`` the line explains (1: every row an exact geometric
sequence). A fit on the raw rows would read the normaliser's change with t as part of the decay. The rate's standard
error is the regression's (residual variance over ``n - queries - slopes`` degrees of freedom, through
``se(lambda) = lambda se(slope)``): it takes the residuals as independent noise, which holds for noise on each weight
and not for a systematic departure from a geometric row (then the R² says more).

A negative eigenvalue asks for weights ``lambda^d`` that alternate in sign, which softmax weights (positive) cannot
be: a head can carry ``|lambda|^d`` on keys of one parity of d only. The parity fit adds an offset for odd
distances, ``log a_ts = -log Z_t + d log(rate) + [d odd] gamma``: a head on the even distances has gamma << 0, one on
the odd distances gamma >> 0, a plain decaying head gamma ≈ 0.

Plain NumPy; the patterns come in as [N, H, T, T] (query t over keys s, zero above the diagonal).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from probes._checks import ProbeInputError, as_float_array, as_sample_weight

#: Attention weights below this are clipped before the log (a masked or vanishing weight).
LOG_FLOOR = 1e-12


@dataclass(frozen=True)
class PatternStats:
    """A head-by-head attention pattern averaged over contexts, and its spread."""

    mean: np.ndarray  # [H, T, T] weighted mean over contexts
    std: np.ndarray  # [H, T, T] weighted standard deviation over contexts
    n_contexts: int


@dataclass(frozen=True)
class DecayFit:
    """One head's exponential fit of attention against distance (see the module docstring)."""

    fitted_lambda: float | None  # exp(slope) of the plain fit (None: too few points)
    r2: float | None  # within-query R² of the plain fit
    parity_rate: float | None  # exp(slope) of the parity fit
    parity_offset: float | None  # gamma: the odd-distance offset of log attention
    parity_r2: float | None
    n_points: int  # (query, key) pairs used
    n_queries: int  # queries with at least two keys used
    rate_se: float | None = None  # standard error of fitted_lambda (see the module docstring; None: no dof left)
    parity_rate_se: float | None = None  # standard error of parity_rate

    def clean(self, r2_min: float, max_rate: float) -> bool:
        """Whether the head carries a clean exponential decay: a fit (plain or parity) with R² >= ``r2_min`` whose
        rate is below ``max_rate`` (a head whose attention does not fall with distance is no decay head)."""
        # r2 and its rate are None together (no fit), so the rate checks below never meet None
        plain = (
            self.r2 is not None
            and self.r2 >= r2_min
            and self.fitted_lambda is not None
            and self.fitted_lambda < max_rate
        )
        parity = (
            self.parity_r2 is not None
            and self.parity_r2 >= r2_min
            and self.parity_rate is not None
            and self.parity_rate < max_rate
        )
        return bool(plain or parity)

    def to_dict(self) -> dict:
        return {
            k: (None if v is None else (int(v) if k.startswith("n_") else float(v))) for k, v in asdict(self).items()
        }


def _patterns(patterns) -> np.ndarray:
    P = as_float_array("patterns", patterns, 4)
    if P.shape[2] != P.shape[3]:
        raise ProbeInputError(f"patterns must be [N, H, T, T] (queries x keys); got shape {P.shape}")
    return P


def mean_pattern(patterns, sample_weight=None) -> PatternStats:
    """patterns [N, H, T, T] (one per context), optional weights [N] -> their weighted mean and spread."""
    P = _patterns(patterns)
    w = as_sample_weight(sample_weight, P.shape[0])
    w = np.full(P.shape[0], 1.0 / P.shape[0]) if w is None else w / w.sum()
    mean = np.einsum("n,nhts->hts", w, P, dtype=np.float64)
    second = np.einsum("n,nhts->hts", w, np.square(P, dtype=np.float64))
    return PatternStats(mean=mean, std=np.sqrt(np.maximum(second - mean**2, 0.0)), n_contexts=int(P.shape[0]))


def by_distance(pattern) -> np.ndarray:
    """A pattern [H, T, T] -> [H, T, T] with out[h, t, d] = pattern[h, t, t - d] (NaN where d > t)."""
    A = as_float_array("pattern", pattern, 3)
    H, T, _ = A.shape
    out = np.full((H, T, T), np.nan)
    for t in range(T):
        out[:, t, : t + 1] = A[:, t, t::-1]
    return out


def _within_fit(
    y: np.ndarray, Xs: list[np.ndarray], q: np.ndarray
) -> tuple[np.ndarray, float, np.ndarray | None] | None:
    """Least squares of y on the columns Xs with one intercept per group q (all centred per group):
    (coefficients, within-group R², their standard errors or None when no degree of freedom is left), or None when
    the centred design is degenerate."""

    def centre(v: np.ndarray) -> np.ndarray:
        sums = np.bincount(q, weights=v)
        counts = np.bincount(q)
        return v - (sums / np.maximum(counts, 1))[q]

    yc = centre(y)
    X = np.stack([centre(x.astype(np.float64)) for x in Xs], axis=1)
    if np.linalg.matrix_rank(X) < X.shape[1]:
        return None
    coef, *_ = np.linalg.lstsq(X, yc, rcond=None)
    sst = float(yc @ yc)
    resid = yc - X @ coef
    dof = y.size - (int(q.max()) + 1) - X.shape[1]  # one intercept per group, one slope per column
    se = None if dof <= 0 else np.sqrt(float(resid @ resid) / dof * np.diag(np.linalg.inv(X.T @ X)))
    return coef, (1.0 - float(resid @ resid) / sst) if sst > 0 else 1.0, se


def fit_decay(pattern, *, min_distance: int = 1, max_distance: int | None = None, min_query: int = 0) -> list[DecayFit]:
    """Each head's exponential decay of attention with distance, fitted on within-query log-ratios.

    pattern [H, T, T]: a mean pattern (`mean_pattern`). Used: keys at distance ``min_distance <= d <= max_distance``
    (default every distance) of queries ``t >= min_query``; a query counts when it has at least two such keys (the
    parity fit needs both parities among a head's points). ``min_distance = 1`` leaves out each query's own key,
    whose token the residual stream carries anyway (the model need not attend to it)."""
    A = as_float_array("pattern", pattern, 3)
    if A.shape[1] != A.shape[2]:
        raise ProbeInputError(f"pattern must be [H, T, T]; got shape {A.shape}")
    if isinstance(min_distance, bool) or not isinstance(min_distance, (int, np.integer)) or min_distance < 0:
        raise ProbeInputError(f"min_distance must be an integer >= 0; got {min_distance!r}")
    H, T, _ = A.shape
    dmax = T - 1 if max_distance is None else int(max_distance)
    qs, ds = [], []
    for t in range(max(min_query, 0), T):
        d = np.arange(min_distance, min(t, dmax) + 1)
        if d.size >= 2:
            qs.append(np.full(d.size, t))
            ds.append(d)
    fits = []
    for h in range(H):
        if not qs:
            fits.append(DecayFit(None, None, None, None, None, 0, 0))
            continue
        q = np.concatenate(qs)
        d = np.concatenate(ds)
        y = np.log(np.maximum(A[h, q, q - d], LOG_FLOOR))
        _, qi = np.unique(q, return_inverse=True)
        plain = _within_fit(y, [d], qi)
        parity = _within_fit(y, [d, d % 2], qi)
        fits.append(
            DecayFit(
                fitted_lambda=None if plain is None else float(np.exp(plain[0][0])),
                r2=None if plain is None else float(plain[1]),
                parity_rate=None if parity is None else float(np.exp(parity[0][0])),
                parity_offset=None if parity is None else float(parity[0][1]),
                parity_r2=None if parity is None else float(parity[1]),
                n_points=int(d.size),
                n_queries=len(qs),
                rate_se=None if plain is None or plain[2] is None else float(np.exp(plain[0][0]) * plain[2][0]),
                parity_rate_se=None
                if parity is None or parity[2] is None
                else float(np.exp(parity[0][0]) * parity[2][0]),
            )
        )
    return fits


def geometric_pattern(
    rates, T: int, *, parity: tuple[str, ...] | None = None, noise: float = 0.0, seed: int = 0
) -> np.ndarray:
    """A synthetic causal pattern [H, T, T]: head h's row t is ``rate_h^(t-s)`` over keys s <= t, normalised (with
    ``parity[h]`` "even"/"odd", keys of the other parity of t - s get 1e-6 of that), times ``exp(noise * N(0, 1))``
    before the normalisation. For tests and for the figures' predicted curves."""
    rates = np.asarray(rates, np.float64)
    rng = np.random.default_rng(seed)
    out = np.zeros((rates.size, T, T))
    for h, r in enumerate(rates):
        for t in range(T):
            d = np.arange(t, -1, -1)  # key s = 0..t at distance t - s
            w = r**d
            if parity is not None and parity[h] in ("even", "odd"):
                w = np.where(d % 2 == (0 if parity[h] == "even" else 1), w, 1e-6 * w)
            w = w * np.exp(noise * rng.standard_normal(d.size))
            out[h, t, : t + 1] = w / w.sum()
    return out


#: Fitted rates closer than this (to a neighbour, in sorted order) are one group in `rate_groups`.
RATE_GROUP_TOL = 0.1


def rate_groups(rates, tol: float = RATE_GROUP_TOL) -> list[list[float]]:
    """Fitted decay rates grouped: sorted, a new group wherever the gap to the previous rate exceeds ``tol``.

    How many distinct decay profiles a layer's heads carry (several heads of one rate are one group)."""
    r = sorted(float(v) for v in rates)
    groups: list[list[float]] = []
    for v in r:
        if groups and v - groups[-1][-1] <= tol:
            groups[-1].append(v)
        else:
            groups.append([v])
    return groups
