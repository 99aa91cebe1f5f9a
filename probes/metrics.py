"""Probe error measures: mean squared error and pooled R², optionally weighted by row."""

from __future__ import annotations

import numpy as np

from probes._checks import ProbeInputError, as_float_array, as_sample_weight


def _pair(Y, Yhat) -> tuple[np.ndarray, np.ndarray]:
    Y = as_float_array("Y", Y, (1, 2))
    Yhat = as_float_array("Yhat", Yhat, (1, 2))
    if Y.shape != Yhat.shape:
        raise ProbeInputError(f"Yhat has shape {Yhat.shape} but Y has shape {Y.shape}; they must match")
    if Y.ndim == 1:
        Y, Yhat = Y[:, None], Yhat[:, None]
    if Y.shape[0] == 0:
        raise ProbeInputError("Y has no rows")
    for name, arr in (("Y", Y), ("Yhat", Yhat)):
        if not np.all(np.isfinite(arr)):
            raise ProbeInputError(f"{name} contains NaN or infinite values")
    return Y, Yhat


def mse(Y, Yhat, sample_weight=None) -> float:
    """Mean squared error, averaged over rows (weighted by `sample_weight` if given) and components.

    mse = sum_i w_i sum_j (Y_ij - Yhat_ij)^2 / (k sum_i w_i)     # Y, Yhat: [n, k] (or [n])
    """
    Y, Yhat = _pair(Y, Yhat)
    w = as_sample_weight(sample_weight, Y.shape[0])
    sq = np.square(Y - Yhat).mean(axis=1)  # [n]
    # numpy's own (pairwise) sums, not BLAS dot: the same bits whatever the BLAS thread count
    return float(np.mean(sq) if w is None else np.sum(w * sq) / w.sum())


def r2(Y, Yhat, sample_weight=None) -> float:
    """Pooled (variance-weighted) coefficient of determination.

    R² = 1 - SSE / SST, both summed over rows and components, with
    SSE = sum_ij w_i (Y_ij - Yhat_ij)^2 and SST = sum_ij w_i (Y_ij - Ybar_j)^2, where Ybar_j is the
    (weighted) mean of component j. This is scikit-learn's ``multioutput="variance_weighted"``:
    components with more variance count for more, and one constant component does not make R²
    undefined. Returns nan if every component of Y is constant.
    """
    Y, Yhat = _pair(Y, Yhat)
    w = as_sample_weight(sample_weight, Y.shape[0])
    if w is None:
        w = np.ones(Y.shape[0])
    # numpy's own sums, not BLAS products: the same bits whatever the BLAS thread count
    ybar = np.sum(w[:, None] * Y, axis=0) / w.sum()  # [k]
    sse = float(np.sum(w * np.square(Y - Yhat).sum(axis=1)))
    sst = float(np.sum(w * np.square(Y - ybar).sum(axis=1)))
    if sst == 0.0:
        return float("nan")
    return 1.0 - sse / sst
