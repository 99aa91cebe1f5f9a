"""Ordinary least squares probe, fitted from a float64 Gram matrix accumulated over row chunks.

Why not `np.linalg.lstsq(X, Y)`: the probe input is ~600k rows x up to ~400 float32 features
(all layers concatenated); lstsq would need a float64 copy of X and an SVD of it. The normal
equations on centred data need only d x d numbers, summed chunk by chunk in float64:

    x̄ = Σ w_i x_i / Σ w_i,   G = Σ w_i (x_i - x̄)(x_i - x̄)ᵀ,   C = Σ w_i (x_i - x̄)(y_i - ȳ)ᵀ
    coef = G⁺ C,   intercept = ȳ - x̄ᵀ coef

G⁺ is the pseudo-inverse from an eigendecomposition with a relative cutoff, so rank-deficient
inputs (LayerNorm outputs lie on an affine hyperplane; duplicated features) give the
minimum-norm least-squares solution instead of noise-amplified coefficients.

G and C are computed from additive sums around a fixed shift x0 (`_Moments`), so the statistics
of a subset follow from those of the whole and of its complement, and a row may stand for many
identical rows (a weight = its count): `probes.evaluation` fits every split from one row per
distinct context this way. BLAS runs on one thread in the fits (`one_blas_thread`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from threadpoolctl import threadpool_limits

from probes._checks import (
    ProbeInputError,
    as_float_array,
    as_sample_weight,
    check_rows,
)
from probes.metrics import r2


class Rows(Protocol):
    """What the chunked fits read of X [n, d]: an ndarray, or anything that gives its ``shape``, ``dtype`` and a
    chunk of rows (``X[a:b]``, ``X[rows]``) as an ndarray (`probes.evaluation`'s concatenated layers)."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def dtype(self) -> np.dtype: ...

    def __getitem__(self, rows: Any, /) -> np.ndarray: ...


# Rows per chunk: about 8 MB of float64 per chunk, at least 512 rows.
_CHUNK_BYTES = 8 * 2**20


def _chunk_rows(n_features: int) -> int:
    return max(512, _CHUNK_BYTES // (8 * max(n_features, 1)))


def _chunks(n: int, size: int):
    for start in range(0, n, size):
        yield start, min(start + size, n)


def _take(X: Rows, rows: np.ndarray | None, start: int, stop: int) -> np.ndarray:
    """Rows start:stop of X, or of X[rows] (a chunk-sized gather, never the whole subset)."""
    return X[start:stop] if rows is None else X[rows[start:stop]]


def one_blas_thread():
    """A context in which BLAS and LAPACK run on one thread: the same bits whatever the thread count.

    OpenBLAS splits some sums between threads (matrix-vector products, the tridiagonal reduction
    inside the eigensolver), so with 1 and 2 threads the same probe fit differed in its last bits
    (measured on a 60,000 x 384 problem). Inside this context the fits are bit-identical under any
    OMP_NUM_THREADS; on a loaded 2-core machine one BLAS thread is also no slower.
    """
    return threadpool_limits(limits=1, user_api="blas")


def default_rcond(n_features: int, dtype) -> float:
    """Relative eigenvalue cutoff for the Gram matrix.

    Eigenvalues below rcond * max eigenvalue are treated as zero. Two floors: float64 round-off
    in G itself (~ d * eps64), and the resolution of the input (a singular value below
    ~10 * eps of the input dtype, relative to the largest, is rounding noise; eigenvalues are
    squared singular values). For float32 input this is about 1.4e-12.
    """
    eps_in = np.finfo(dtype).eps if np.issubdtype(dtype, np.floating) else np.finfo(np.float64).eps
    return float(max(10 * n_features * np.finfo(np.float64).eps, (10 * eps_in) ** 2))


@dataclass
class _Stats:
    """Sufficient statistics of a (weighted, optionally centred) least-squares problem."""

    x_mean: np.ndarray  # [d]
    y_mean: np.ndarray  # [k]
    gram: np.ndarray  # [d, d]
    xty: np.ndarray  # [d, k]
    weight_sum: float


@dataclass
class _Moments:
    """Weighted sums over a set of rows of X (shifted by a fixed point x0) and of Y.

    With row weights c_i, shifted rows z_i = x_i - x0 and weighted targets s_i = c_i y_i:

        W = Σ c_i,   s = Σ c_i z_i,   M = Σ c_i z_i z_iᵀ,   P = Σ z_i s_iᵀ,   Sy = Σ s_i

    Every entry is a plain sum over rows, so the moments of disjoint row sets add (and subtract):
    one pass over all rows and one over a test subset give the moments of its complement. Rows may
    stand for many identical rows: a context seen n times is one row with weight n and s = Σ w y.
    """

    x0: np.ndarray  # [d] the shift
    weight: float  # W
    s: np.ndarray  # [d]
    M: np.ndarray  # [d, d]
    P: np.ndarray  # [d, k]
    sy: np.ndarray  # [k]
    n_rows: int  # rows with positive weight (distinct contexts, when rows are contexts)

    def __sub__(self, other: _Moments) -> _Moments:
        return _Moments(
            self.x0,
            self.weight - other.weight,
            self.s - other.s,
            self.M - other.M,
            self.P - other.P,
            self.sy - other.sy,
            self.n_rows - other.n_rows,
        )

    def stats(self) -> _Stats:
        """The centred statistics: x̄ = x0 + s/W, G = M - s sᵀ/W, C = P - s ȳᵀ, ȳ = Sy/W."""
        if not self.weight > 0:
            raise ProbeInputError("sample_weight is zero on every row being fitted")
        shift = self.s / self.weight  # [d] x̄ - x0
        y_mean = self.sy / self.weight  # [k]
        gram = self.M - np.outer(self.s, shift)
        gram = (gram + gram.T) / 2  # exactly symmetric for eigh
        return _Stats(self.x0 + shift, y_mean, gram, self.P - np.outer(self.s, y_mean), self.weight)


def _moments(
    X: Rows,  # [n, d] float32 or float64
    c: np.ndarray,  # [n] float64 row weights (counts)
    S: np.ndarray,  # [n, k] float64 weighted target sums per row (c * y for single rows)
    x0: np.ndarray,  # [d] shift
    rows: np.ndarray | None = None,  # sorted row indices to use, or None for all
) -> _Moments:
    """`_Moments` of X[rows] in float64, chunk by chunk in a fixed order (one chunk alive at a time)."""
    n = X.shape[0] if rows is None else rows.shape[0]
    d, k = X.shape[1], S.shape[1]
    cr = c if rows is None else c[rows]
    Sr = S if rows is None else S[rows]
    M, P, s = np.zeros((d, d)), np.zeros((d, k)), np.zeros(d)
    for a, b in _chunks(n, _chunk_rows(d)):
        z = _take(X, rows, a, b).astype(np.float64)  # [chunk, d], a fresh float64 copy
        z -= x0
        s += cr[a:b] @ z
        P += z.T @ Sr[a:b]
        z *= np.sqrt(cr[a:b])[:, None]
        M += z.T @ z  # numpy uses BLAS syrk for this symmetric product
        del z
    if not (np.all(np.isfinite(M)) and np.all(np.isfinite(P))):
        raise ProbeInputError("X contains NaN or infinite values; drop or fix those rows")
    return _Moments(x0, float(cr.sum()), s, M, P, Sr.sum(axis=0), int(np.count_nonzero(cr)))


def _weighted_mean(X: Rows, c: np.ndarray) -> np.ndarray:
    """Σ c_i x_i / Σ c_i [d] in float64, chunk by chunk."""
    total = np.zeros(X.shape[1])
    for a, b in _chunks(X.shape[0], _chunk_rows(X.shape[1])):
        total += c[a:b] @ X[a:b].astype(np.float64, copy=False)
    if not np.all(np.isfinite(total)):
        raise ProbeInputError("X contains NaN or infinite values; drop or fix those rows")
    return total / c.sum()


def _fit_stats(
    X: np.ndarray,  # [n, d] float32 or float64
    Y: np.ndarray,  # [n, k] float64
    w: np.ndarray | None,  # [n] or None
    fit_intercept: bool = True,
) -> _Stats:
    """The statistics of one fit: moments around the weighted mean (or around 0 without intercept)."""
    c = np.ones(X.shape[0]) if w is None else w
    if not c.sum() > 0:
        raise ProbeInputError("sample_weight is zero on every row being fitted")
    x0 = _weighted_mean(X, c) if fit_intercept else np.zeros(X.shape[1])
    m = _moments(X, c, c[:, None] * Y, x0)
    if fit_intercept:
        return m.stats()
    return _Stats(np.zeros(X.shape[1]), np.zeros(Y.shape[1]), m.M, m.P, m.weight)


def _solve(stats: _Stats, rcond: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Minimum-norm coef = G⁺ C (eigenvalues below rcond * max treated as zero); intercept; rank."""
    evals, evecs = np.linalg.eigh(stats.gram)
    top = evals[-1] if evals.size else 0.0
    keep = evals > rcond * top if top > 0 else np.zeros(evals.shape, bool)
    v = evecs[:, keep]  # [d, r]
    coef = v @ ((v.T @ stats.xty) / evals[keep][:, None])  # [d, k]
    intercept = stats.y_mean - stats.x_mean @ coef  # [k]
    return coef, intercept, int(keep.sum())


def _predict(X: Rows, coef: np.ndarray, intercept: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """X @ coef + intercept in float64, chunk by chunk (no float64 copy of X)."""
    n = X.shape[0] if rows is None else rows.shape[0]
    out = np.empty((n, coef.shape[1]))
    for a, b in _chunks(n, _chunk_rows(X.shape[1])):
        out[a:b] = _take(X, rows, a, b).astype(np.float64, copy=False) @ coef
    out += intercept
    return out


class LinearProbe:
    """Ordinary least squares Y ≈ X @ coef_ + intercept_, scikit-learn style.

    Attributes after `fit`: ``coef_`` [d, k], ``intercept_`` [k] (zeros without intercept),
    ``rank_`` (effective rank of the centred Gram matrix), ``n_features_in_``.
    A 1-D Y is fitted as one column; `predict` then returns a 1-D array.

    Parameters
    ----------
    fit_intercept : fit an intercept (centre X and Y) — the paper's probe does.
    rcond : relative eigenvalue cutoff of the Gram matrix; None picks `default_rcond` from the
        number of features and X's dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from probes import LinearProbe
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 5))  # [rows, features]
    >>> Y = X @ rng.normal(size=(5, 3)) + 0.5  # [rows, targets]: linear in X, with an offset
    >>> probe = LinearProbe().fit(X, Y)
    >>> probe.coef_.shape, bool(np.allclose(probe.predict(X), Y)), probe.intercept_.round(6)
    ((5, 3), True, array([0.5, 0.5, 0.5]))
    """

    def __init__(self, fit_intercept: bool = True, rcond: float | None = None):
        self.fit_intercept = fit_intercept
        self.rcond = rcond

    def __repr__(self) -> str:
        head = f"LinearProbe(fit_intercept={self.fit_intercept}, rcond={self.rcond})"
        if not hasattr(self, "coef_"):
            return head + " (not fitted)"
        d, k = self.coef_.shape
        return head + f": fitted, {d} features -> {k} targets, rank {self.rank_}"

    def fit(self, X, Y, sample_weight=None) -> LinearProbe:
        """Fit on X [n, d] (float32 kept as is) and Y [n, k]; `sample_weight` [n] acts as row counts."""
        X = as_float_array("X", X, 2)
        Y2, self._y_1d = _targets(Y, X.shape[0])
        w = as_sample_weight(sample_weight, X.shape[0])
        if X.shape[0] == 0:
            raise ProbeInputError("X has no rows")
        rcond = default_rcond(X.shape[1], X.dtype) if self.rcond is None else float(self.rcond)
        with one_blas_thread():
            stats = _fit_stats(X, Y2, w, self.fit_intercept)
            self.coef_, self.intercept_, self.rank_ = _solve(stats, rcond)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X) -> np.ndarray:
        """Predictions [n, k] in float64 ([n] if fitted on a 1-D Y)."""
        if not hasattr(self, "coef_"):
            raise ProbeInputError("this LinearProbe is not fitted yet; call fit(X, Y) first")
        X = as_float_array("X", X, 2)
        if X.shape[1] != self.n_features_in_:
            raise ProbeInputError(f"X has {X.shape[1]} features but the probe was fitted on {self.n_features_in_}")
        with one_blas_thread():
            out = _predict(X, self.coef_, self.intercept_)
        if not np.all(np.isfinite(out)):
            raise ProbeInputError("X contains NaN or infinite values; drop or fix those rows")
        return out[:, 0] if self._y_1d else out

    def score(self, X, Y, sample_weight=None) -> float:
        """Pooled R² of the predictions on (X, Y); see `probes.metrics.r2`."""
        return r2(Y, self.predict(X), sample_weight)


def _targets(Y, n_rows: int) -> tuple[np.ndarray, bool]:
    """Y as float64 [n, k] (finite, matching X's rows) and whether it was 1-D."""
    Y = as_float_array("Y", Y, (1, 2))
    was_1d = Y.ndim == 1
    Y = np.asarray(Y[:, None] if was_1d else Y, dtype=np.float64)
    check_rows("Y", Y, n_rows)
    if not np.all(np.isfinite(Y)):
        raise ProbeInputError("Y contains NaN or infinite values; drop or fix those rows")
    return Y, was_1d
