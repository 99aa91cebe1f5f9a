"""Probe evaluation: in-sample fit, two held-out errors and a shuffled-target control.

Every reported probe comes with three checks beside its in-sample error:

- held-out MSE over **distinct contexts** (`mse_heldout_contexts`, the honest one): at every
  position separately, the distinct contexts (prefixes) of that length are split at random,
  floor(`context_test_fraction` * n) of its n held out (none where n < 1 / fraction, e.g. Mess3's
  three one-token contexts); the probe is fitted on the rows of the other contexts and scored on the
  rows of the held-out ones. No context has rows on both sides, so a
  probe that memorises contexts (more features than contexts, random features) fails it. Rows keep
  the weighting of the in-sample fit (with the paper's all-strings rows a context counts once per
  string that contains it, on both sides), so the held-out and in-sample numbers weigh positions
  and contexts alike and can be compared directly.
- held-out MSE over **strings** (`mse_heldout`, the paper's protocol): the *groups* (strings) are
  split at random, the probe is fitted on `train_fraction` of them (the paper: 20%) and scored on
  the rest. With all-strings rows, two strings share every short prefix, so most test rows' contexts
  are also fit rows: this number cannot reveal a probe that fails on unseen contexts.
- shuffled control: Y's rows permuted at random, independent of X, fitted and scored in-sample.
  A probe that finds no structure scores about the variance of Y (Mess3 beliefs: ~0.11).

Opt-in (``heldout_scores=True``, `HeldoutScores`): the shuffled control held out as the probe is (fitted on the
fit contexts' permuted targets, scored on the held-out contexts' permuted targets: an in-sample control is lower
than a held-out one by what the fit memorises, so a held-out error is divided by a held-out control), and each
context split's held-out contexts halved at random at every position into a *validation* half and a *test* half:
choose among probes (layers) by the validation number and report the test number, which the choice never saw.
These are drawn after every other split, so the numbers above do not change when they are asked for.

Either held-out number is withheld (None, with a one-line note) when a fit split has fewer distinct
contexts than the probe has parameters: minimum-norm least squares then interpolates its fit rows
and its test error means nothing.

Speed and determinism: rows that share a context (the same prefix) have the same activation in a
causal model, so each context is one row of the least-squares problem with its row count as weight
(`probes.linear._Moments`); every split's statistics are then sums over contexts, computed in float64
in a fixed chunk order. For 3^10 Mess3 strings that is 88,572 context rows instead of 590,490.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields

import numpy as np

from probes._checks import ProbeInputError, as_float_array, as_sample_weight, check_rows, require_finite
from probes.linear import (
    Rows,
    _Moments,
    _moments,
    _predict,
    _solve,
    _targets,
    _weighted_mean,
    default_rcond,
    one_blas_thread,
)

CONCAT = "concat"
#: Default fraction of each position's distinct contexts held out in the context-disjoint split.
CONTEXT_TEST_FRACTION = 0.2


@dataclass(frozen=True)
class ProbeResult:
    """Errors of one linear probe (MSE averaged over rows and target components).

    A held-out number is None when its note says why (a fit split with fewer distinct contexts
    than parameters); the note is None when the number is given.
    """

    mse: float  # in-sample, fitted on all rows
    r2: float  # in-sample pooled R² (see probes.metrics.r2)
    mse_heldout_contexts: float | None  # mean over repeats of the held-out-contexts MSE
    mse_heldout_contexts_std: float | None  # population std over repeats (0 for one repeat)
    r2_heldout_contexts: float | None  # mean over repeats of the pooled R² on the held-out contexts' rows
    heldout_contexts_note: str | None  # why the held-out-contexts numbers are withheld, or None
    mse_heldout: float | None  # paper's protocol: mean over repeats of the test-string MSE
    mse_heldout_std: float | None  # population std over repeats (0 for one repeat)
    heldout_note: str | None  # why mse_heldout is withheld, or None
    mse_shuffled: float  # in-sample MSE with Y rows permuted (control)
    n_rows: int
    n_features: int
    n_contexts: int  # distinct contexts among the rows (= n_rows when every row is its own)

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (floats, ints, strings and None)."""

        def plain(key, value):
            if value is None or isinstance(value, str):
                return value
            return int(value) if key.startswith("n_") else float(value)

        return {k: plain(k, v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class HeldoutScores:
    """The opt-in held-out scores of one probe (``heldout_scores=True``; see the module docstring), each the mean
    over the context splits' repeats, on the same fits and held-out contexts as ``mse_heldout_contexts``.

    Every number is None when the context-disjoint split is withheld (``note`` says why); a validation number is
    None when no position held out two or more contexts (``note`` says so).
    """

    mse_shuffled_heldout_contexts: float | None  # the shuffled control fitted on the fit contexts, scored held out
    r2_shuffled_heldout_contexts: float | None  # its pooled R² on the held-out contexts' (permuted) targets
    mse_validation_contexts: float | None  # the probe on the validation half of the held-out contexts
    mse_test_contexts: float | None  # ... on the test half (disjoint from the fit and the validation contexts)
    mse_test_contexts_std: float | None  # population std over repeats
    r2_test_contexts: float | None  # pooled R² on the test half
    mse_shuffled_validation_contexts: float | None  # the held-out shuffled control on the validation half
    mse_shuffled_test_contexts: float | None  # ... on the test half
    note: str | None  # why numbers are withheld, or None

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (floats, strings and None)."""
        return {k: v if v is None or isinstance(v, str) else float(v) for k, v in asdict(self).items()}


@dataclass(frozen=True, eq=False)
class ProbeEvaluation:
    """One evaluated probe: its errors and the in-sample and shuffled-control predictions, row by row.

    Rows that share a context share a prediction, so the predictions are kept one per context
    (``by_context``, ``shuffled_by_context``) and spread over the rows on access (``predictions``,
    ``shuffled``: a fresh [R, k] array each time): ~7x less memory for the paper's all-strings rows.
    """

    result: ProbeResult
    by_context: np.ndarray  # [U, k] float64 ([U] for a 1-D Y): the in-sample probe's prediction per context
    shuffled_by_context: np.ndarray  # [U, k] float64 ([U] for a 1-D Y): the shuffled-control probe's
    row_context: np.ndarray | None = None  # [R] the context (index into by_context) of each row; None: U = R
    heldout: HeldoutScores | None = None  # the opt-in held-out scores (``heldout_scores=True``), else None

    @property
    def predictions(self) -> np.ndarray:
        """[R, k] float64 ([R] for a 1-D Y): the in-sample probe's predictions, row by row."""
        return self.by_context if self.row_context is None else self.by_context[self.row_context]

    @property
    def shuffled(self) -> np.ndarray:
        """[R, k] float64 ([R] for a 1-D Y): the shuffled-control probe's predictions, row by row."""
        return self.shuffled_by_context if self.row_context is None else self.shuffled_by_context[self.row_context]


@dataclass(frozen=True, eq=False)
class _Rows:
    """A weighted set of rows, summed per context: all a fit or an error on that set needs, [U]-sized.

    With row weights v (zero outside the set), over the rows of context u: c_u = Σ v, S_u = Σ v y,
    the weighted mean ȳ_u = S_u / c_u and the scatter around it q_u = Σ v ||y - ȳ_u||² (zero when
    the rows share one target, as beliefs do). The squared error of predictions ŷ_u (one per
    context) on the set is then exactly

        SSE = Σ_u (c_u ||ȳ_u - ŷ_u||² + q_u)

    so no error needs a pass over the rows, and a small error is not lost to cancellation.
    """

    c: np.ndarray  # [U]
    S: np.ndarray  # [U, k]
    y_mean: np.ndarray  # [U, k] (0 where c = 0)
    scatter: np.ndarray  # [U]
    Q: float  # Σ v ||y||² over the set (for the total sum of squares)

    @classmethod
    def of(cls, inverse: np.ndarray, n_contexts: int, v: np.ndarray, Y: np.ndarray) -> _Rows:
        """Per-context sums (bincount, in row order) of the rows weighted by v [R]."""

        def total(values):
            return np.bincount(inverse, weights=values, minlength=n_contexts)

        c = total(v)
        S = np.stack([total(v * Y[:, j]) for j in range(Y.shape[1])], axis=1).reshape(n_contexts, Y.shape[1])
        y_mean = np.divide(S, c[:, None], out=np.zeros_like(S), where=c[:, None] > 0)
        Q = total(v * np.square(Y).sum(axis=1))  # [U]
        scatter = np.maximum(Q - c * np.square(y_mean).sum(axis=1), 0.0)  # rounding can dip below 0
        return cls(c, S, y_mean, scatter, float(np.sum(Q)))

    def subset(self, index: np.ndarray) -> _Rows:
        y_mean, c = self.y_mean[index], self.c[index]
        Q = float(np.sum(self.scatter[index]) + np.sum(c * np.square(y_mean).sum(axis=1)))
        return _Rows(c, self.S[index], y_mean, self.scatter[index], Q)

    def sse(self, pred: np.ndarray) -> float:  # pred [U, k] (or [len(subset), k])
        """Σ v ||y - ŷ||² over the set's rows (numpy's sums, not BLAS: the same bits on any thread count)."""
        return float(np.sum(self.c * np.square(self.y_mean - pred).sum(axis=1)) + np.sum(self.scatter))

    def mse(self, pred: np.ndarray) -> float:
        """SSE / (k Σ v), as `probes.metrics.mse` on the rows."""
        return self.sse(pred) / (self.S.shape[1] * float(np.sum(self.c)))

    def r2(self, pred: np.ndarray) -> float:
        """Pooled R² = 1 - SSE / SST on the set's rows, SST around the set's own mean (`probes.metrics.r2`)."""
        W = float(np.sum(self.c))
        sst = self.Q - float(np.square(self.S.sum(axis=0)).sum()) / W
        return float("nan") if not sst > 0 else 1.0 - self.sse(pred) / sst


@dataclass(frozen=True, eq=False)
class _Design:
    """The rows grouped by context, and every split, drawn once and shared by all layers."""

    first: np.ndarray  # [U] row index of each context's first row
    inverse: np.ndarray  # [R] context index of each row
    all_rows: _Rows  # every row, targets Y
    shuffled_rows: _Rows  # every row, targets Y[perm] (the shuffled control)
    # fit contexts [u_fit], fit rows [U], test rows and their contexts [u_test] (only those with test rows)
    string_splits: list[tuple[np.ndarray, _Rows, _Rows, np.ndarray]]
    context_splits: list[np.ndarray]  # held-out contexts (sorted) [u_test]; fit = the others
    y_1d: bool
    # opt-in: each context split's held-out contexts halved, (validation [u_val], test [u_tst]), both sorted
    halves: list[tuple[np.ndarray, np.ndarray]] | None = None


def _context_test_sets(position: np.ndarray, test_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Held-out contexts [u_test] (sorted): at each position floor(f * n) of its n contexts, drawn at random.

    A position with fewer than 1/f contexts (Mess3 at f = 0.2: the 3 one-token contexts) holds none
    out: there, one held-out context would carry a whole position's weight, and predicting it from
    the other one or two would measure extrapolation to a separate cluster, not memorisation.
    """
    chosen = [np.zeros(0, np.int64)]
    for p in np.unique(position):
        members = np.flatnonzero(position == p)
        n_test = int(np.floor(test_fraction * members.size))  # at most n - 1, as f < 1
        if n_test:
            chosen.append(members[rng.permutation(members.size)[:n_test]])
    return np.sort(np.concatenate(chosen))


def _halves(test: np.ndarray, position: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Held-out contexts ``test`` [u_test] halved at random at each position: floor(m / 2) of a position's m
    held-out contexts to the validation half, the rest to the test half; (validation, test), each sorted."""
    validation = [np.zeros(0, np.int64)]
    for p in np.unique(position[test]):
        members = test[position[test] == p]
        validation.append(members[rng.permutation(members.size)[: members.size // 2]])
    val = np.sort(np.concatenate(validation))
    return val, np.setdiff1d(test, val, assume_unique=True)


def _design(
    Y,
    n_rows: int,
    groups,
    contexts,
    positions,
    sample_weight,
    train_fraction: float,
    n_repeats: int,
    context_test_fraction: float,
    seed: int,
    heldout_scores: bool = False,
) -> _Design:
    Y2, y_1d = _targets(Y, n_rows)
    groups = np.asarray(groups)
    if groups.ndim != 1:
        raise ProbeInputError(f"groups must be a 1-D array (one id per row), got shape {groups.shape}")
    check_rows("groups", groups, n_rows)
    w = as_sample_weight(sample_weight, n_rows)
    w = np.ones(n_rows) if w is None else w
    if not 0.0 < train_fraction < 1.0:
        raise ProbeInputError(f"train_fraction must be strictly between 0 and 1, got {train_fraction}")
    if not 0.0 < context_test_fraction < 1.0:
        raise ProbeInputError(f"context_test_fraction must be strictly between 0 and 1, got {context_test_fraction}")
    if int(n_repeats) != n_repeats or n_repeats < 1:
        raise ProbeInputError(f"n_repeats must be a positive integer, got {n_repeats}")
    _, group_index = np.unique(groups, return_inverse=True)
    group_index = group_index.reshape(-1)
    n_groups = int(group_index.max()) + 1
    if n_groups < 2:
        raise ProbeInputError("groups must contain at least 2 distinct ids to hold some out")

    if contexts is None:
        first, inverse = np.arange(n_rows), np.arange(n_rows)
    else:
        contexts = _row_ids("contexts", contexts, n_rows, "one context id per row")
        _, first, inverse = np.unique(contexts, return_index=True, return_inverse=True)
        inverse = inverse.reshape(-1)
    n_contexts = first.size
    if positions is None:
        position = np.zeros(n_contexts, np.int64)
    else:
        positions = _row_ids("positions", positions, n_rows, "one position per row")
        position = positions[first]
        if not np.array_equal(position[inverse], positions):
            raise ProbeInputError(
                "positions differ between rows of the same context; a context (prefix) "
                "has one position: pass the positions that belong to the context ids"
            )

    rng = np.random.default_rng(seed)
    perm = rng.permutation(n_rows)  # the shuffled control (drawn first, as it always was)
    all_rows = _Rows.of(inverse, n_contexts, w, Y2)
    shuffled_rows = _Rows.of(inverse, n_contexts, w, Y2[perm])

    n_train = int(np.clip(round(train_fraction * n_groups), 1, n_groups - 1))
    string_splits = []
    for _ in range(int(n_repeats)):
        train_group = np.zeros(n_groups, dtype=bool)
        train_group[rng.permutation(n_groups)[:n_train]] = True
        is_train = train_group[group_index]  # [R]
        fit = _Rows.of(inverse, n_contexts, w * is_train, Y2)
        test = _Rows.of(inverse, n_contexts, w * ~is_train, Y2)
        test_contexts = np.flatnonzero(test.c > 0)
        string_splits.append((np.flatnonzero(fit.c > 0), fit, test.subset(test_contexts), test_contexts))

    context_splits = []
    for _ in range(int(n_repeats)):
        test = _context_test_sets(position, context_test_fraction, rng)
        if test.size == 0:
            raise ProbeInputError(
                f"cannot hold out contexts: no position has {int(np.ceil(1 / context_test_fraction))} or more "
                "distinct contexts; pass more strings, a larger context_test_fraction, or positions=None"
            )
        context_splits.append(test)
    # drawn after every other split, so asking for them changes none of the numbers above
    halves = [_halves(test, position, rng) for test in context_splits] if heldout_scores else None
    return _Design(first, inverse, all_rows, shuffled_rows, string_splits, context_splits, y_1d, halves)


def _underdetermined(n_fit_contexts: int, n_features: int) -> str | None:
    """The note for a fit split with fewer distinct contexts than parameters (features + intercept)."""
    n_params = n_features + 1
    if n_fit_contexts >= n_params:
        return None
    return (
        f"underdetermined: {n_fit_contexts} distinct fit contexts < {n_params} parameters "
        f"({n_features} features + intercept)"
    )


def _evaluate(
    Xc: Rows,  # [U, d] one row per context (float32 kept)
    design: _Design,
    on_fit: Callable[[], None] | None,
) -> ProbeEvaluation:
    """Every fit of one probe from the moments of its context rows; see the module docstring.

    BLAS runs on one thread here (`one_blas_thread`), so the numbers do not depend on the thread count.
    """
    with one_blas_thread():
        return _evaluate_fits(Xc, design, on_fit)


def _evaluate_fits(Xc: Rows, design: _Design, on_fit: Callable[[], None] | None) -> ProbeEvaluation:
    n_contexts, n_features = Xc.shape
    rcond = default_rcond(n_features, Xc.dtype)
    everything, shuffled_rows = design.all_rows, design.shuffled_rows
    k = everything.S.shape[1]
    tick = on_fit or (lambda: None)

    x0 = _weighted_mean(Xc, everything.c)  # [d] the shift every split's moments share
    both = _moments(Xc, everything.c, np.hstack([everything.S, shuffled_rows.S]), x0)  # P [d, 2k]: Y, Y[perm]
    coef, intercept, _ = _solve(both.stats(), rcond)  # [d, 2k], [2k]
    pred_both = _predict(Xc, coef, intercept)  # [U, 2k]
    pred, shuffled = pred_both[:, :k], pred_both[:, k:]
    tick()

    held, held_fit = [], []
    for fit_contexts, fit, test, test_contexts in design.string_splits:
        m = _moments(Xc, fit.c, fit.S, x0, fit_contexts)
        held_fit.append(m.n_rows)
        cf, ic, _ = _solve(m.stats(), rcond)
        held.append(test.mse(_predict(Xc, cf, ic, test_contexts)))
        tick()

    ctx_mse, ctx_r2, ctx_fit, scored = [], [], [], []
    full = _Moments(both.x0, both.weight, both.s, both.M, both.P[:, :k], both.sy[:k], both.n_rows)
    for i, test in enumerate(design.context_splits):
        m = full - _moments(Xc, everything.c, everything.S, x0, test)  # fit = every context but the test ones
        ctx_fit.append(m.n_rows)
        cf, ic, _ = _solve(m.stats(), rcond)
        p = _predict(Xc, cf, ic, test)  # [u_test, k]
        rows = everything.subset(test)
        ctx_mse.append(rows.mse(p))
        ctx_r2.append(rows.r2(p))
        if design.halves is not None:
            scored.append(_heldout_split(Xc, design, both, x0, rcond, test, p, design.halves[i]))
        tick()

    heldout_note = _underdetermined(min(held_fit), n_features)
    contexts_note = _underdetermined(min(ctx_fit), n_features)
    result = ProbeResult(
        mse=everything.mse(pred),
        r2=everything.r2(pred),
        mse_heldout_contexts=None if contexts_note else float(np.mean(ctx_mse)),
        mse_heldout_contexts_std=None if contexts_note else float(np.std(ctx_mse)),
        r2_heldout_contexts=None if contexts_note else float(np.mean(ctx_r2)),
        heldout_contexts_note=contexts_note,
        mse_heldout=None if heldout_note else float(np.mean(held)),
        mse_heldout_std=None if heldout_note else float(np.std(held)),
        heldout_note=heldout_note,
        mse_shuffled=shuffled_rows.mse(shuffled),
        n_rows=int(design.inverse.size),
        n_features=int(n_features),
        n_contexts=int(n_contexts),
    )
    heldout = None if design.halves is None else _heldout_scores(scored, contexts_note)
    if design.y_1d:
        pred, shuffled = pred[:, 0], shuffled[:, 0]
    # [U, k] per context (a copy: not views of pred_both's [U, 2k]); rows map to them by design.inverse
    return ProbeEvaluation(result, np.ascontiguousarray(pred), np.ascontiguousarray(shuffled), design.inverse, heldout)


def _heldout_split(
    Xc: Rows,
    design: _Design,
    both: _Moments,
    x0: np.ndarray,
    rcond: float,
    test: np.ndarray,
    pred: np.ndarray,
    halves: tuple[np.ndarray, np.ndarray],
) -> dict[str, float]:
    """One context split's opt-in scores: the probe's predictions ``pred`` [u_test, k] of the held-out contexts
    ``test`` scored on each half, and the shuffled control refitted on the fit contexts and scored held out."""
    everything, shuffled_rows = design.all_rows, design.shuffled_rows
    k = everything.S.shape[1]
    full = _Moments(both.x0, both.weight, both.s, both.M, both.P[:, k:], both.sy[k:], both.n_rows)  # Y[perm]
    m = full - _moments(Xc, shuffled_rows.c, shuffled_rows.S, x0, test)
    cf, ic, _ = _solve(m.stats(), rcond)
    ps = _predict(Xc, cf, ic, test)  # [u_test, k] the shuffled control's predictions of the held-out contexts
    val, tst = (np.searchsorted(test, h) for h in halves)  # positions of each half within test
    out = {
        "mse_shuffled_heldout_contexts": shuffled_rows.subset(test).mse(ps),
        "r2_shuffled_heldout_contexts": shuffled_rows.subset(test).r2(ps),
        "mse_test_contexts": everything.subset(halves[1]).mse(pred[tst]),
        "r2_test_contexts": everything.subset(halves[1]).r2(pred[tst]),
        "mse_shuffled_test_contexts": shuffled_rows.subset(halves[1]).mse(ps[tst]),
    }
    if halves[0].size:
        out["mse_validation_contexts"] = everything.subset(halves[0]).mse(pred[val])
        out["mse_shuffled_validation_contexts"] = shuffled_rows.subset(halves[0]).mse(ps[val])
    return out


def _heldout_scores(scored: list[dict[str, float]], contexts_note: str | None) -> HeldoutScores:
    """The repeats' opt-in scores averaged into one `HeldoutScores` (all None under ``contexts_note``)."""
    keys = [f.name for f in fields(HeldoutScores) if f.name != "note"]
    if contexts_note:
        return HeldoutScores(**dict.fromkeys(keys), note=contexts_note)
    note = None
    if any("mse_validation_contexts" not in s for s in scored):
        note = "no position held out two or more contexts: no validation half"
    values = {}
    for key in keys:
        if key == "mse_test_contexts_std":
            values[key] = float(np.std([s["mse_test_contexts"] for s in scored]))
        else:
            got = [s[key] for s in scored if key in s]  # the validation keys are missing where a split had no half
            values[key] = None if len(got) < len(scored) else float(np.mean(got))
    return HeldoutScores(**values, note=note)


def _context_rows(name: str, X: np.ndarray, design: _Design) -> np.ndarray:
    """X's first row of each context [U, d], after checking every row equals its context's row."""
    require_finite(name, X)
    Xc = X[design.first]
    if design.first.size == X.shape[0]:
        return Xc
    step = max(1, 2**22 // max(X.shape[1], 1))
    for a in range(0, X.shape[0], step):
        same = X[a : a + step] == Xc[design.inverse[a : a + step]]
        if not same.all():
            row = a + int(np.flatnonzero(~same.all(axis=1))[0])
            raise ProbeInputError(
                f"{name} differs between rows of the same context (row {row} and row "
                f"{int(design.first[design.inverse[row]])}); a causal model gives one activation per prefix: "
                "compute activations once per distinct prefix, or pass contexts=None to treat each row alone"
            )
    return Xc


def _row_ids(name: str, ids, n_rows: int, what: str) -> np.ndarray:
    """``ids`` as a 1-D integer array with one entry per row, or a `ProbeInputError` naming ``name``."""
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise ProbeInputError(f"{name} must be a 1-D integer array ({what}), got {ids.dtype} {ids.shape}")
    check_rows(name, ids, n_rows)
    return ids


def evaluate_probe(
    X,  # [R, d]
    Y,  # [R, k]
    groups,  # [R] ints (string ids)
    *,
    contexts=None,  # [R] ints: context (prefix) id of each row, or None (every row its own context)
    positions=None,  # [R] ints: position of each row's context (the strata), or None (one stratum)
    sample_weight=None,  # [R] or None
    train_fraction: float = 0.2,
    n_repeats: int = 5,
    context_test_fraction: float = CONTEXT_TEST_FRACTION,
    seed: int = 0,
    on_fit: Callable[[], None] | None = None,
    heldout_scores: bool = False,
) -> ProbeEvaluation:
    """Fit an OLS probe (with intercept); report in-sample, held-out and shuffled-control errors.

    Parameters: `contexts` groups rows that share a prefix (`probes.rows.ProbeData.context_ids`):
    their X rows must be equal (a causal model), and the context-disjoint split holds out whole
    contexts; `positions` stratifies that split (`ProbeData.positions`). `train_fraction` is the
    fraction of strings fitted in the paper's split, `context_test_fraction` the fraction of each
    position's contexts held out in the context split; each split is drawn `n_repeats` times.
    Errors are weighted by `sample_weight` where given. `on_fit()` is called after each of the
    1 + 2 n_repeats fits (for a progress bar). All randomness comes from
    ``np.random.default_rng(seed)``: the same inputs and seed give the same numbers. With ``heldout_scores``
    the evaluation's ``heldout`` carries the held-out shuffled control and the validation / test halves
    (`HeldoutScores`); every other number is unchanged.
    """
    X = as_float_array("X", X, 2)
    if X.shape[0] == 0:
        raise ProbeInputError("X has no rows")
    design = _design(
        Y,
        X.shape[0],
        groups,
        contexts,
        positions,
        sample_weight,
        train_fraction,
        n_repeats,
        context_test_fraction,
        seed,
        heldout_scores,
    )
    return _evaluate(_context_rows("X", X, design), design, on_fit)


def probe_fits(n_repeats: int, n_probes: int, include_concat: bool = True) -> int:
    """How many least-squares fits `probe_layers` makes for `n_probes` layers (for a progress bar's total)."""
    return (n_probes + bool(include_concat)) * (1 + 2 * int(n_repeats))


class _Columns:
    """All layers side by side [U, sum d] in float32, built a chunk of rows at a time.

    Reads like the array `concat_features` returns (``shape``, ``dtype``, ``X[a:b]`` and ``X[rows]`` give
    the same float32 rows) for the fits in `probes.linear`, which only ever take a chunk of rows at once:
    the concatenated-layer probe then costs one chunk, never a copy of every layer.
    """

    def __init__(self, blocks: list[np.ndarray]):  # each [U, d_i], the same U
        self.blocks = blocks
        self.shape = (blocks[0].shape[0], sum(b.shape[1] for b in blocks))
        self.dtype = np.dtype(np.float32)

    def __getitem__(self, rows) -> np.ndarray:  # rows: a slice or an integer index array
        picked = [b[rows] for b in self.blocks]
        out = np.empty((picked[0].shape[0], self.shape[1]), np.float32)  # [chunk, sum d]
        col = 0
        for p in picked:
            out[:, col : col + p.shape[1]] = p
            col += p.shape[1]
        return out


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
    only_concat: bool = False,
    contexts=None,  # [R] or None
    positions=None,  # [R] or None
    sample_weight=None,
    train_fraction: float = 0.2,
    n_repeats: int = 5,
    context_test_fraction: float = CONTEXT_TEST_FRACTION,
    seed: int = 0,
    on_fit: Callable[[], None] | None = None,
    per_context: bool = False,
    heldout_scores: bool = False,
) -> dict[str, ProbeEvaluation]:
    """`evaluate_probe` per named layer, plus "concat" (all layers side by side) if asked.

    Every layer uses the same splits and shuffle (drawn once from `seed`, the validation / test halves of
    ``heldout_scores`` too, so layers chosen on one half are compared on the same contexts); the arguments are those
    of `evaluate_probe`. With ``per_context=True`` each layer is given as one row per distinct context,
    ``activations[name]`` [U, d] with row u the u-th smallest id of ``contexts`` (required), instead of one
    row per row of Y: the same fits without the [R, d] arrays (`probes.rows.probe_targets` gives the rows).
    The concatenation is read from the layers' context rows a chunk at a time (never an [R, sum d] or
    [U, sum d] copy). Returns evaluations by name, in the order of `activations`, "concat" last;
    with ``only_concat=True`` just "concat" (the layers are not fitted one by one).
    """
    if only_concat and not include_concat:
        raise ProbeInputError("only_concat=True needs include_concat=True")
    if not activations:
        raise ProbeInputError("activations is empty; pass at least one named layer")
    if include_concat and CONCAT in activations:
        raise ProbeInputError(f"activations has a layer named {CONCAT!r}; rename it or pass include_concat=False")
    if per_context and contexts is None:
        raise ProbeInputError("per_context=True needs contexts (the context id of each row of Y)")
    n_rows = np.shape(Y)[0] if np.ndim(Y) else 0
    if not per_context:
        for name, acts in activations.items():  # fail before the first fit, not after some
            shape = np.shape(acts)
            if len(shape) != 2 or shape[0] != n_rows:
                raise ProbeInputError(
                    f"activations[{name!r}] has shape {shape}; each layer must be [R, d] with R = {n_rows} rows like Y"
                )
    if n_rows == 0:
        raise ProbeInputError("Y has no rows")
    design = _design(
        Y,
        n_rows,
        groups,
        contexts,
        positions,
        sample_weight,
        train_fraction,
        n_repeats,
        context_test_fraction,
        seed,
        heldout_scores,
    )
    if per_context:
        n_contexts = design.first.size
        for name, acts in activations.items():
            shape = np.shape(acts)
            if len(shape) != 2 or shape[0] != n_contexts:
                raise ProbeInputError(
                    f"activations[{name!r}] has shape {shape}; with per_context=True each layer "
                    f"must be [U, d] with U = {n_contexts}, one row per distinct context id"
                )
    rows = {}
    for name, a in activations.items():
        a = as_float_array(f"activations[{name!r}]", a, 2)
        if per_context:
            require_finite(f"activations[{name!r}]", a)
            rows[name] = a
        else:
            rows[name] = _context_rows(f"activations[{name!r}]", a, design)
    out = {} if only_concat else {name: _evaluate(Xc, design, on_fit) for name, Xc in rows.items()}
    if include_concat:
        out[CONCAT] = _evaluate(_Columns(list(rows.values())), design, on_fit)
    return out
