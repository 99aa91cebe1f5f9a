"""Probe evaluation: in-sample fit, group-split held-out error and a shuffled-target control.

Every reported probe comes with two checks beside its in-sample error:

- held-out MSE: the *groups* (strings) are split at random, the probe is fitted on
  `train_fraction` of them (the paper: 20%) and scored on the rest; mean and std over repeats.
  No group has rows on both sides. (With the paper's all-strings rows, two strings can still
  share a short prefix, i.e. identical rows, across the split; that is the paper's protocol.)
- shuffled control: Y's rows permuted at random, independent of X, fitted and scored in-sample.
  A probe that finds no structure scores about the variance of Y (Mess3 beliefs: ~0.11).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np

from probes._checks import ProbeInputError, as_float_array, as_sample_weight, check_rows
from probes.linear import _fit_stats, _predict, _solve, _targets, default_rcond
from probes.metrics import mse, r2

CONCAT = "concat"


@dataclass(frozen=True)
class ProbeResult:
    """Errors of one linear probe (MSE averaged over rows and target components)."""

    mse: float  # in-sample, fitted on all rows
    r2: float  # in-sample pooled R² (see probes.metrics.r2)
    mse_heldout: float  # mean over repeats of the test-group MSE
    mse_heldout_std: float  # population std over repeats (0 for one repeat)
    mse_shuffled: float  # in-sample MSE with Y rows permuted (control)
    n_rows: int
    n_features: int

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (floats and ints)."""
        return {k: (int(v) if k.startswith("n_") else float(v)) for k, v in asdict(self).items()}


def _fit_predict(X, Y, w, rcond, train_rows=None, test_rows=None) -> np.ndarray:
    stats = _fit_stats(X, Y, w, train_rows)
    coef, intercept, _ = _solve(stats, rcond)
    return _predict(X, coef, intercept, test_rows)


def evaluate_probe(
    X,  # [R, d]
    Y,  # [R, k]
    groups,  # [R] ints (string ids)
    *,
    sample_weight=None,  # [R] or None
    train_fraction: float = 0.2,
    n_repeats: int = 5,
    seed: int = 0,
) -> tuple[ProbeResult, np.ndarray]:
    """Fit an OLS probe (with intercept) and report in-sample, held-out and shuffled-control errors.

    Returns the result and the in-sample predictions [R, k] (float64; [R] for a 1-D Y).
    Errors are weighted by `sample_weight` where given. All randomness comes from
    ``np.random.default_rng(seed)``: the same inputs and seed give the same numbers.
    """
    X = as_float_array("X", X, 2)
    n_rows, n_features = X.shape
    if n_rows == 0:
        raise ProbeInputError("X has no rows")
    Y2, y_1d = _targets(Y, n_rows)
    groups = np.asarray(groups)
    if groups.ndim != 1:
        raise ProbeInputError(f"groups must be a 1-D array (one id per row), got shape {groups.shape}")
    check_rows("groups", groups, n_rows)
    w = as_sample_weight(sample_weight, n_rows)
    if not 0.0 < train_fraction < 1.0:
        raise ProbeInputError(f"train_fraction must be strictly between 0 and 1, got {train_fraction}")
    if int(n_repeats) != n_repeats or n_repeats < 1:
        raise ProbeInputError(f"n_repeats must be a positive integer, got {n_repeats}")
    _, group_index = np.unique(groups, return_inverse=True)
    group_index = group_index.reshape(-1)
    n_groups = int(group_index.max()) + 1
    if n_groups < 2:
        raise ProbeInputError("groups must contain at least 2 distinct ids to hold some out")

    rng = np.random.default_rng(seed)
    rcond = default_rcond(n_features, X.dtype)
    k = Y2.shape[1]

    # In-sample fit and shuffled control share X's Gram matrix: fit [Y, Y[perm]] in one pass.
    perm = rng.permutation(n_rows)
    both = _fit_predict(X, np.hstack([Y2, Y2[perm]]), w, rcond)  # [R, 2k]
    pred = both[:, :k]
    mse_in = mse(Y2, pred, w)
    r2_in = r2(Y2, pred, w)
    mse_shuf = mse(Y2[perm], both[:, k:], w)

    n_train = int(np.clip(round(train_fraction * n_groups), 1, n_groups - 1))
    held = []
    for _ in range(int(n_repeats)):
        train_group = np.zeros(n_groups, dtype=bool)
        train_group[rng.permutation(n_groups)[:n_train]] = True
        is_train = train_group[group_index]
        train_rows, test_rows = np.flatnonzero(is_train), np.flatnonzero(~is_train)
        pred_test = _fit_predict(X, Y2, w, rcond, train_rows, test_rows)
        held.append(mse(Y2[test_rows], pred_test, None if w is None else w[test_rows]))

    result = ProbeResult(
        mse=mse_in,
        r2=r2_in,
        mse_heldout=float(np.mean(held)),
        mse_heldout_std=float(np.std(held)),
        mse_shuffled=mse_shuf,
        n_rows=int(n_rows),
        n_features=int(n_features),
    )
    return result, (pred[:, 0] if y_1d else pred)


def concat_features(activations: Mapping[str, np.ndarray]) -> np.ndarray:
    """All layers side by side [R, sum d] in float32, written straight into one new array."""
    arrays = [as_float_array(f"activations[{name!r}]", a, 2) for name, a in activations.items()]
    if not arrays:
        raise ProbeInputError("activations is empty; pass at least one named layer")
    n_rows = arrays[0].shape[0]
    out = np.empty((n_rows, sum(a.shape[1] for a in arrays)), dtype=np.float32)
    col = 0
    for name, a in zip(activations, arrays):
        check_rows(f"activations[{name!r}]", a, n_rows, other="the first layer")
        out[:, col : col + a.shape[1]] = a
        col += a.shape[1]
    return out


def probe_layers(
    activations: Mapping[str, np.ndarray],  # name -> [R, d_name]
    Y,  # [R, k]
    groups,  # [R]
    *,
    include_concat: bool = True,
    **kw,
) -> tuple[dict[str, ProbeResult], dict[str, np.ndarray]]:
    """`evaluate_probe` per named layer, plus "concat" (all layers side by side) if asked.

    Keyword arguments go to `evaluate_probe` (sample_weight, train_fraction, n_repeats, seed);
    every layer uses the same seed, hence the same splits and shuffle. Returns results and
    in-sample predictions by name, in the order of `activations`, "concat" last.
    """
    if not activations:
        raise ProbeInputError("activations is empty; pass at least one named layer")
    if include_concat and CONCAT in activations:
        raise ProbeInputError(f"activations has a layer named {CONCAT!r}; rename it or pass include_concat=False")
    n_rows = np.shape(Y)[0] if np.ndim(Y) else 0
    for name, acts in activations.items():  # fail before the first fit, not after some
        shape = np.shape(acts)
        if len(shape) != 2 or shape[0] != n_rows:
            raise ProbeInputError(
                f"activations[{name!r}] has shape {shape}; each layer must be [R, d] with R = {n_rows} rows like Y"
            )
    results: dict[str, ProbeResult] = {}
    predictions: dict[str, np.ndarray] = {}
    for name, acts in activations.items():
        results[name], predictions[name] = evaluate_probe(acts, Y, groups, **kw)
    if include_concat:
        both = concat_features(activations)
        results[CONCAT], predictions[CONCAT] = evaluate_probe(both, Y, groups, **kw)
        del both
    return results, predictions
