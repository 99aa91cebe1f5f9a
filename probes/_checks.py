"""Input checks shared by the probe modules: each failure raises `ProbeInputError` naming the argument."""

from __future__ import annotations

import numpy as np


class ProbeInputError(ValueError):
    """An argument to a probe function has the wrong shape, dtype or values; the message names it."""


def as_float_array(name: str, value, ndim: int | tuple[int, ...]) -> np.ndarray:
    """`value` as a floating array of the given rank, without copying float32/float64 input."""
    arr = np.asarray(value)
    ndims = (ndim,) if isinstance(ndim, int) else ndim
    if arr.ndim not in ndims:
        want = " or ".join(f"{n}-D" for n in ndims)
        raise ProbeInputError(f"{name} must be a {want} array, got shape {arr.shape}")
    if arr.dtype.kind == "b" or arr.dtype.kind not in "fiu":
        raise ProbeInputError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    return arr


def require_finite(name: str, arr: np.ndarray) -> None:
    """Raise if `arr` holds NaN or inf, in one float64 reduction (no boolean array the size of `arr`).

    The float64 sum of finite float32 values cannot overflow, so it is finite iff every entry is.
    """
    if arr.size and not np.isfinite(np.add.reduce(arr, axis=None, dtype=np.float64)):
        raise ProbeInputError(f"{name} contains NaN or infinite values; drop or fix those rows")


def as_sample_weight(sample_weight, n_rows: int, name: str = "sample_weight") -> np.ndarray | None:
    """Validated float64 weights [n_rows] (non-negative, finite, positive sum), or None for uniform."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.shape != (n_rows,):
        raise ProbeInputError(f"{name} must have shape ({n_rows},) (one weight per row), got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise ProbeInputError(f"{name} contains NaN or infinite values")
    if np.any(w < 0):
        raise ProbeInputError(f"{name} must be non-negative")
    if not w.sum() > 0:
        raise ProbeInputError(f"{name} must have a positive sum")
    return w


def check_rows(name: str, arr: np.ndarray, n_rows: int, other: str = "X") -> None:
    if arr.shape[0] != n_rows:
        raise ProbeInputError(f"{name} has {arr.shape[0]} rows but {other} has {n_rows}; they must match row for row")
