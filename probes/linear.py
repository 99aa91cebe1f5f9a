"""Ordinary least squares probe, fitted from a float64 Gram matrix accumulated over row chunks.

Why not `np.linalg.lstsq(X, Y)`: the probe input is ~600k rows x up to ~400 float32 features
(all layers concatenated); lstsq would need a float64 copy of X and an SVD of it. The normal
equations on centred data need only d x d numbers, summed chunk by chunk in float64:

    x̄ = Σ w_i x_i / Σ w_i,   G = Σ w_i (x_i - x̄)(x_i - x̄)ᵀ,   C = Σ w_i (x_i - x̄)(y_i - ȳ)ᵀ
    coef = G⁺ C,   intercept = ȳ - x̄ᵀ coef

G⁺ is the pseudo-inverse from an eigendecomposition with a relative cutoff, so rank-deficient
inputs (LayerNorm outputs lie on an affine hyperplane; duplicated features) give the
minimum-norm least-squares solution instead of noise-amplified coefficients.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from probes._checks import (
    ProbeInputError,
    as_float_array,
    as_sample_weight,
    check_rows,
)
from probes.metrics import r2

# Rows per chunk: about 8 MB of float64 per chunk, at least 512 rows.
_CHUNK_BYTES = 8 * 2**20


def _chunk_rows(n_features: int) -> int:
    return max(512, _CHUNK_BYTES // (8 * max(n_features, 1)))


def _chunks(n: int, size: int):
    for start in range(0, n, size):
        yield start, min(start + size, n)


def _take(X: np.ndarray, rows: np.ndarray | None, start: int, stop: int) -> np.ndarray:
    """Rows start:stop of X, or of X[rows] (a chunk-sized gather, never the whole subset)."""
    return X[start:stop] if rows is None else X[rows[start:stop]]


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


def _fit_stats(
    X: np.ndarray,  # [n, d] float32 or float64
    Y: np.ndarray,  # [n, k] float64
    w: np.ndarray | None,  # [n] or None
    rows: np.ndarray | None = None,  # sorted row indices to use, or None for all
    fit_intercept: bool = True,
) -> _Stats:
    """Two passes over X in float64 chunks: the (weighted) means, then G and C around them."""
    n = X.shape[0] if rows is None else rows.shape[0]
    d, k = X.shape[1], Y.shape[1]
    size = _chunk_rows(d)
    wr = None if w is None else (w if rows is None else w[rows])
    Yr = Y if rows is None else Y[rows]
    weight_sum = float(n if wr is None else wr.sum())
    if weight_sum <= 0:
        raise ProbeInputError("sample_weight is zero on every row being fitted")

    x_mean = np.zeros(d)
    y_mean = np.zeros(k)
    if fit_intercept:
        for a, b in _chunks(n, size):
            chunk = _take(X, rows, a, b)
            if wr is None:
                x_mean += np.add.reduce(chunk, axis=0, dtype=np.float64)
            else:
                x_mean += wr[a:b] @ chunk.astype(np.float64, copy=False)
        x_mean /= weight_sum
        y_mean = (Yr.sum(axis=0) if wr is None else wr @ Yr) / weight_sum
        if not np.all(np.isfinite(x_mean)):
            raise ProbeInputError("X contains NaN or infinite values; drop or fix those rows")

    gram = np.zeros((d, d))
    xty = np.zeros((d, k))
    for a, b in _chunks(n, size):
        c = _take(X, rows, a, b).astype(np.float64)  # [chunk, d], a fresh float64 copy
        yc = Yr[a:b] - y_mean  # [chunk, k]
        if fit_intercept:
            c -= x_mean
        if wr is not None:
            sw = np.sqrt(wr[a:b])[:, None]
            c *= sw
            yc *= sw
        gram += c.T @ c  # numpy uses BLAS syrk for this symmetric product
        xty += c.T @ yc
        del c, yc  # free this chunk before the next is made: one chunk alive at a time
    if not (np.all(np.isfinite(gram)) and np.all(np.isfinite(xty))):
        raise ProbeInputError("X contains NaN or infinite values; drop or fix those rows")
    return _Stats(x_mean, y_mean, gram, xty, weight_sum)


def _solve(stats: _Stats, rcond: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Minimum-norm coef = G⁺ C (eigenvalues below rcond * max treated as zero); intercept; rank."""
    evals, evecs = np.linalg.eigh(stats.gram)
    top = evals[-1] if evals.size else 0.0
    keep = evals > rcond * top if top > 0 else np.zeros(evals.shape, bool)
    v = evecs[:, keep]  # [d, r]
    coef = v @ ((v.T @ stats.xty) / evals[keep][:, None])  # [d, k]
    intercept = stats.y_mean - stats.x_mean @ coef  # [k]
    return coef, intercept, int(keep.sum())


def _predict(
    X: np.ndarray, coef: np.ndarray, intercept: np.ndarray, rows: np.ndarray | None = None
) -> np.ndarray:
    """X @ coef + intercept in float64, chunk by chunk (no float64 copy of X)."""
    n = X.shape[0] if rows is None else rows.shape[0]
    out = np.empty((n, coef.shape[1]))
    for a, b in _chunks(n, _chunk_rows(X.shape[1])):
        out[a:b] = _take(X, rows, a, b).astype(np.float64, copy=False) @ coef
    out += intercept
    return out


class LinearProbe:
    """Ordinary least squares Y ≈ X @ coef_ + intercept_, scikit-learn style.

    Parameters
    ----------
    fit_intercept : fit an intercept (centre X and Y) — the paper's probe does.
    rcond : relative eigenvalue cutoff of the Gram matrix; None picks `default_rcond` from the
        number of features and X's dtype.

    Attributes after `fit`: ``coef_`` [d, k], ``intercept_`` [k] (zeros without intercept),
    ``rank_`` (effective rank of the centred Gram matrix), ``n_features_in_``.
    A 1-D Y is fitted as one column; `predict` then returns a 1-D array.
    """

    def __init__(self, fit_intercept: bool = True, rcond: float | None = None):
        self.fit_intercept = fit_intercept
        self.rcond = rcond

    def fit(self, X, Y, sample_weight=None) -> "LinearProbe":
        """Fit on X [n, d] (float32 kept as is) and Y [n, k]; `sample_weight` [n] acts as row counts."""
        X = as_float_array("X", X, 2)
        Y2, self._y_1d = _targets(Y, X.shape[0])
        w = as_sample_weight(sample_weight, X.shape[0])
        if X.shape[0] == 0:
            raise ProbeInputError("X has no rows")
        rcond = default_rcond(X.shape[1], X.dtype) if self.rcond is None else float(self.rcond)
        stats = _fit_stats(X, Y2, w, None, self.fit_intercept)
        self.coef_, self.intercept_, self.rank_ = _solve(stats, rcond)
        self.n_features_in_ = X.shape[1]
        return self

    def predict(self, X) -> np.ndarray:
        """Predictions [n, k] in float64 ([n] if fitted on a 1-D Y)."""
        if not hasattr(self, "coef_"):
            raise ProbeInputError("this LinearProbe is not fitted yet; call fit(X, Y) first")
        X = as_float_array("X", X, 2)
        if X.shape[1] != self.n_features_in_:
            raise ProbeInputError(
                f"X has {X.shape[1]} features but the probe was fitted on {self.n_features_in_}"
            )
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
