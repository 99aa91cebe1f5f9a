"""A linear probe whose memory does not grow with the rows: normal equations accumulated chunk by chunk.

For runs too big to enumerate (the sampled regime), rows arrive in chunks (activations of sampled
sequences, their exact beliefs as targets). `ChunkedProbe` keeps, per cell of two fold assignments,
only the weighted sums a least-squares fit and its error need (`probes.linear._Moments` plus the
target's second moment): O(K² D²) numbers for K folds and D features, whatever the row count.

Two held-out errors, both K-fold cross-validated from the per-fold sums (fit on the other folds'
sums, score the held-out fold through its second moments — no second pass over the rows):

- by **sequence** (`ProbeResult.mse_heldout`): a row's fold is a hash of its sequence id, so all
  rows of a sequence fall in one fold. Unlike the exact regime (fit on 20% of the strings, score on
  80%), the fit here is on (K-1)/K of the sequences.
- by **distinct context** (`ProbeResult.mse_heldout_contexts`): a row's fold is a hash of its
  context id (its prefix), so no context has rows on both sides, even where contexts repeat (early
  positions). Rows marked ``holdout=False`` (positions with fewer contexts than folds, where one
  held-out context would carry a whole position) are in every fit and never scored — the exact
  regime's rule for positions with fewer than 1/fraction contexts.

The ``_std`` fields are the population std over the K folds. The shuffled control permutes the
targets within each chunk (a seeded generator, independent of X) and is fitted and scored in-sample,
as in the exact regime. Sums are in float64 around a shift taken from the first chunk (so second
moments do not cancel), in a fixed order: same rows, chunks and seed give the same bits.

The error of a fit (coef B, intercept c, in shifted coordinates z = x - x0, t = y - y0) on a set
with sums W = Σw, s = Σ w z, M = Σ w z zᵀ, P = Σ w z tᵀ, sy = Σ w t, Q = Σ w ||t||² is exactly

    SSE = Q - 2 tr(Bᵀ P) - 2 c·sy + tr(Bᵀ M B) + 2 c·(Bᵀ s) + W ||c||²

The only per-distinct-context memory is the context ids themselves (8 bytes each, plus one byte per
id of fold flags), kept to count distinct contexts exactly (`ProbeResult.n_contexts`) and to withhold
a held-out number when its fit has fewer distinct contexts than parameters, as the exact regime does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import numpy as np

from probes._checks import ProbeInputError, as_float_array, as_sample_weight, check_rows
from probes.evaluation import CONCAT, ProbeEvaluation, ProbeResult, _underdetermined
from probes.linear import _Moments, _solve, default_rcond, one_blas_thread

#: Default number of folds of each held-out split.
N_FOLDS = 5

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _mix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser on uint64 (wrapping arithmetic): a well-spread hash of each id."""
    x = np.asarray(x).astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def hash_folds(ids, n_folds: int, seed: int = 0) -> np.ndarray:
    """Fold [n] int64 in 0..n_folds-1 of each id: a seeded hash, so an id lands in the same fold in every chunk."""
    ids = np.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise ProbeInputError(f"ids must be integers, got dtype {ids.dtype}")
    salt = _mix64(np.array([seed], np.uint64) + np.uint64(0x9E3779B97F4A7C15))[0]
    return (_mix64(ids.astype(np.uint64) ^ salt) % np.uint64(n_folds)).astype(np.int64)


def prefix_hashes(tokens) -> np.ndarray:
    """Context ids [N, T] uint64: a 64-bit hash of each prefix tokens[n, : t + 1] (same prefix, same id).

    For contexts too many to number (V^T beyond 2^63), the hash stands in for `distinct_prefix_ids`;
    two distinct prefixes collide with probability ~ 2^-64 per pair (~3e-8 for a million contexts).
    """
    tokens = np.asarray(tokens)
    if tokens.ndim != 2 or tokens.dtype.kind not in "iu":
        raise ProbeInputError(f"tokens must be a 2-D [N, T] integer array, got {tokens.dtype} {tokens.shape}")
    out = np.empty(tokens.shape, np.uint64)
    h = np.full(tokens.shape[0], 0x243F6A8885A308D3, np.uint64)
    for t in range(tokens.shape[1]):
        h = _mix64(h ^ (tokens[:, t].astype(np.uint64) + np.uint64(1)))
        out[:, t] = h
    return out


#: (W, s, M, P, sy, Q) of one layer's columns: `_Sums.block`'s result.
_Block = tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]


@dataclass
class _Sums:
    """Weighted sums of one cell (rows of one sequence fold and one context fold), shifted coordinates."""

    weight: float  # W = Σ w
    s: np.ndarray  # [D] Σ w z
    M: np.ndarray  # [D, D] Σ w z zᵀ
    P: np.ndarray  # [D, 2k] Σ w z tᵀ for the targets, then for the shuffled targets
    sy: np.ndarray  # [2k] Σ w t (targets, shuffled targets)
    Q: np.ndarray  # [2] Σ w ||t||² (targets, shuffled targets)
    n_rows: int

    @classmethod
    def zeros(cls, D: int, k: int) -> _Sums:
        return cls(0.0, np.zeros(D), np.zeros((D, D)), np.zeros((D, 2 * k)), np.zeros(2 * k), np.zeros(2), 0)

    def add(self, other: _Sums) -> _Sums:
        return _Sums(
            self.weight + other.weight,
            self.s + other.s,
            self.M + other.M,
            self.P + other.P,
            self.sy + other.sy,
            self.Q + other.Q,
            self.n_rows + other.n_rows,
        )

    def block(self, cols: slice, k: int, shuffled: bool = False) -> _Block:
        """(W, s, M, P, sy, Q) of one layer's columns, for the targets or the shuffled targets."""
        j = slice(k, 2 * k) if shuffled else slice(0, k)
        return (
            self.weight,
            self.s[cols],
            self.M[cols, cols],
            self.P[cols, j],
            self.sy[j],
            float(self.Q[1 if shuffled else 0]),
        )


def _fit(
    W: float, s: np.ndarray, M: np.ndarray, P: np.ndarray, sy: np.ndarray, rcond: float
) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares coef [d, k] and intercept [k] in shifted coordinates, from a set's sums."""
    d = s.shape[0]
    coef, intercept, _ = _solve(_Moments(np.zeros(d), W, s, M, P, sy, 0).stats(), rcond)
    return coef, intercept


def _sse(sums: tuple, coef: np.ndarray, intercept: np.ndarray) -> float:
    """Exact SSE of a fit on a set, from the set's sums (formula in the module docstring)."""
    W, s, M, P, sy, Q = sums
    return float(
        Q
        - 2 * np.sum(coef * P)
        - 2 * intercept @ sy
        + np.sum(coef * (M @ coef))
        + 2 * intercept @ (coef.T @ s)
        + W * intercept @ intercept
    )


def _sst(sums: tuple) -> float:
    W, _, _, _, sy, Q = sums
    return float(Q - sy @ sy / W)


class ChunkedProbe:
    """OLS probes (with intercept) of several layers at once, from rows added chunk by chunk.

    `add` the chunks, then `results()` (one `probes.ProbeResult` per layer, "concat" last) and
    `evaluations(X_kept)` for the predictions on rows kept aside (e.g. for the belief figures).

    Parameters
    ----------
    layer_dims : layer name -> number of features, in order; every `add` passes these layers.
    n_targets : k, the number of target components (belief-state dimension S).
    n_folds : K, folds of each held-out split (by sequence hash, by context hash); at least 2.
    include_concat : also probe "concat" (all layers side by side); per-layer sums are its blocks.
    seed : seeds the fold hashes and the shuffled control's within-chunk permutations.
    """

    def __init__(
        self,
        layer_dims: Mapping[str, int],
        n_targets: int,
        *,
        n_folds: int = N_FOLDS,
        include_concat: bool = True,
        seed: int = 0,
    ):
        if not layer_dims:
            raise ProbeInputError("layer_dims is empty; pass at least one named layer")
        if include_concat and CONCAT in layer_dims:
            raise ProbeInputError(f"a layer is named {CONCAT!r}; rename it or pass include_concat=False")
        if int(n_folds) != n_folds or n_folds < 2:
            raise ProbeInputError(f"n_folds must be an integer >= 2, got {n_folds}")
        if int(n_targets) != n_targets or n_targets < 1:
            raise ProbeInputError(f"n_targets must be a positive integer, got {n_targets}")
        self.layer_dims = {str(name): int(d) for name, d in layer_dims.items()}
        self.n_targets, self.n_folds, self.include_concat, self.seed = (
            int(n_targets),
            int(n_folds),
            include_concat,
            seed,
        )
        self._cols: dict[str, slice] = {}
        col = 0
        for name, d in self.layer_dims.items():
            self._cols[name] = slice(col, col + d)
            col += d
        if include_concat:
            self._cols[CONCAT] = slice(0, col)
        self.n_features = col
        self._cells: list[list[_Sums]] | None = None  # [K][K + 1]: sequence fold x (context fold or "never held out")
        self._x0: np.ndarray | None = None  # [D] shift
        self._y0: np.ndarray | None = None  # [k] shift
        self._rng = np.random.default_rng(seed)
        self._ids = np.zeros(0, np.uint64)  # distinct context ids seen (sorted)
        self._flags = np.zeros((0, 0), bool)  # [U, K + 1]: seen in sequence fold a; last column: ever held-out-able
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []  # per chunk: distinct ids, their flags
        self._pending_rows = 0
        self.n_rows = 0

    # ------------------------------------------------------------------ accumulation

    def add(
        self, activations: Mapping[str, np.ndarray], Y, sequence_ids, context_ids, *, weights=None, holdout=None
    ) -> None:
        """Add one chunk: activations {name: [n, d]}, Y [n, k], sequence_ids [n], context_ids [n] (integers).

        ``weights`` [n] (None: uniform) act as row counts. ``holdout`` [n] bool (None: all True): False
        keeps a row in every context-split fit and out of every context-split score.
        """
        X = self._features(activations)
        n = X.shape[0]
        Y = as_float_array("Y", Y, 2)
        if Y.shape != (n, self.n_targets):
            raise ProbeInputError(f"Y has shape {Y.shape}; expected ({n}, {self.n_targets}) (rows x n_targets)")
        Y = np.asarray(Y, np.float64)
        if not np.all(np.isfinite(Y)):
            raise ProbeInputError("Y contains NaN or infinite values; drop or fix those rows")
        seq, ctx = (
            self._ids_arg(name, v, n) for name, v in (("sequence_ids", sequence_ids), ("context_ids", context_ids))
        )
        w = as_sample_weight(weights, n)
        w = np.ones(n) if w is None else w
        hold = np.ones(n, bool) if holdout is None else np.asarray(holdout, bool)
        if hold.shape != (n,):
            raise ProbeInputError(f"holdout must have shape ({n},) (one flag per row), got {hold.shape}")
        if n == 0:
            return
        K, k, D = self.n_folds, self.n_targets, self.n_features
        if self._cells is None:
            self._x0 = X.astype(np.float64).mean(axis=0)
            self._y0 = Y.mean(axis=0)
            self._cells = [[_Sums.zeros(D, k) for _ in range(K + 1)] for _ in range(K)]
        assert self._x0 is not None and self._y0 is not None  # set with the cells, by the first chunk
        seq_fold = hash_folds(seq, K, self.seed)
        ctx_fold = np.where(hold, hash_folds(ctx, K, self.seed + 1), K)
        t = Y - self._y0  # [n, k]
        t_sh = t[self._rng.permutation(n)]  # the shuffled control: targets permuted within the chunk
        targets = np.hstack([t, t_sh])  # [n, 2k]
        cell = seq_fold * (K + 1) + ctx_fold
        with one_blas_thread():
            for c in np.unique(cell):
                rows = np.flatnonzero(cell == c)
                z = X[rows].astype(np.float64)  # [m, D]
                z -= self._x0
                wr, tr = w[rows], targets[rows]
                sq = np.stack(
                    [np.sum(wr * np.square(tr[:, :k]).sum(axis=1)), np.sum(wr * np.square(tr[:, k:]).sum(axis=1))]
                )
                part = _Sums(
                    float(wr.sum()),
                    wr @ z,
                    (z * wr[:, None]).T @ z,
                    z.T @ (wr[:, None] * tr),
                    wr @ tr,
                    sq,
                    int(rows.size),
                )
                a, b = divmod(int(c), K + 1)
                self._cells[a][b] = self._cells[a][b].add(part)
        if not np.all(np.isfinite(self._cells[0][0].M)):
            raise ProbeInputError("activations contain NaN or infinite values; drop or fix those rows")
        self._track_contexts(ctx, seq_fold, hold)
        self.n_rows += n

    def _features(self, activations: Mapping[str, np.ndarray]) -> np.ndarray:
        if set(activations) != set(self.layer_dims):
            raise ProbeInputError(
                f"activations has layers {sorted(activations)}; this probe was made for "
                f"{sorted(self.layer_dims)}: pass exactly those"
            )
        arrays = [as_float_array(f"activations[{name!r}]", activations[name], 2) for name in self.layer_dims]
        n = arrays[0].shape[0]
        for name, a in zip(self.layer_dims, arrays):
            check_rows(f"activations[{name!r}]", a, n, other="the first layer")
            if a.shape[1] != self.layer_dims[name]:
                raise ProbeInputError(
                    f"activations[{name!r}] has {a.shape[1]} features; layer_dims says {self.layer_dims[name]}"
                )
        return arrays[0] if len(arrays) == 1 else np.hstack(arrays)  # [n, D], one chunk only

    @staticmethod
    def _ids_arg(name: str, value, n: int) -> np.ndarray:
        ids = np.asarray(value)
        if ids.shape != (n,) or ids.dtype.kind not in "iu":
            raise ProbeInputError(
                f"{name} must be an integer array of shape ({n},) (one id per row), got {ids.dtype} {ids.shape}"
            )
        return ids.astype(np.uint64)

    def _track_contexts(self, ctx: np.ndarray, seq_fold: np.ndarray, hold: np.ndarray) -> None:
        """Remember each distinct context id with the sequence folds it occurred in (merged lazily)."""
        self._pending.append(self._distinct(ctx, seq_fold, hold))
        self._pending_rows += self._pending[-1][0].size
        if self._pending_rows > max(2**14, self._ids.size):
            self._merge()

    def _distinct(
        self, ids: np.ndarray, seq_fold: np.ndarray | None, hold: np.ndarray | None, flags: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Distinct ids (sorted) [u] and their flags [u, K + 1] (or-ed over the rows of each id)."""
        uniq, inverse = np.unique(ids, return_inverse=True)
        if flags is None:
            rows = np.arange(ids.size)
            flags = np.zeros((ids.size, self.n_folds + 1), bool)
            flags[rows, seq_fold] = True
            flags[:, -1] = hold
        merged = np.zeros((uniq.size, self.n_folds + 1), bool)
        np.logical_or.at(merged, inverse.reshape(-1), flags)
        return uniq, merged

    def _merge(self) -> None:
        if not self._pending:
            return
        ids = np.concatenate([self._ids] + [p[0] for p in self._pending])
        flags = np.concatenate([self._flags.reshape(-1, self.n_folds + 1)] + [p[1] for p in self._pending])
        self._ids, self._flags = self._distinct(ids, None, None, flags)
        self._pending, self._pending_rows = [], 0

    # ------------------------------------------------------------------ results

    def _require_rows(self) -> None:
        if self._cells is None:
            raise ProbeInputError("no rows were added; call add(...) with at least one chunk first")

    def _sum_cells(self, keep) -> _Sums:
        assert self._cells is not None  # callers check `_require_rows` first
        total = _Sums.zeros(self.n_features, self.n_targets)
        for a in range(self.n_folds):
            for b in range(self.n_folds + 1):
                if keep(a, b):
                    total = total.add(self._cells[a][b])
        return total

    def n_contexts(self) -> int:
        """Distinct context ids among the rows added so far."""
        self._merge()
        return int(self._ids.size)

    def results(self) -> dict[str, ProbeResult]:
        """One `ProbeResult` per layer ("concat" last if asked); held-out numbers as in the module docstring."""
        self._require_rows()
        self._merge()
        K = self.n_folds
        total = self._sum_cells(lambda a, b: True)
        seq_test = [self._sum_cells(lambda a, b, f=f: a == f) for f in range(K)]
        ctx_test = [self._sum_cells(lambda a, b, f=f: b == f) for f in range(K)]
        # distinct fit contexts of each split: seen in another sequence fold / hashed to another context fold
        seq_flags = self._flags[:, :K]
        seq_fit_contexts = [int(np.count_nonzero(np.delete(seq_flags, f, axis=1).any(axis=1))) for f in range(K)]
        ctx_fold = np.where(self._flags[:, K], hash_folds(self._ids, K, self.seed + 1), K)
        ctx_fit_contexts = [int(np.count_nonzero(ctx_fold != f)) for f in range(K)]
        out = {}
        with one_blas_thread():
            for name, cols in self._cols.items():
                out[name] = self._result(cols, total, seq_test, ctx_test, seq_fit_contexts, ctx_fit_contexts)
        return out

    def _result(
        self,
        cols: slice,
        total: _Sums,
        seq_test: list[_Sums],
        ctx_test: list[_Sums],
        seq_fit_contexts: list[int],
        ctx_fit_contexts: list[int],
    ) -> ProbeResult:
        k = self.n_targets
        d = cols.stop - cols.start
        rcond = default_rcond(d, np.float32)
        every = total.block(cols, k)
        W = every[0]
        coef, intercept = _fit(*every[:5], rcond)
        shuffled = total.block(cols, k, shuffled=True)
        coef_sh, intercept_sh = _fit(*shuffled[:5], rcond)

        def heldout(tests: list[_Sums]) -> tuple[list[float], list[float]]:
            mses, r2s = [], []
            for test in tests:
                if test.weight <= 0:
                    continue
                fit = cast(_Block, tuple(a - b for a, b in zip(every, test.block(cols, k))))
                if not fit[0] > 0:
                    continue
                cf, ic = _fit(*fit[:5], rcond)
                held = test.block(cols, k)
                sse = max(_sse(held, cf, ic), 0.0)
                mses.append(sse / (k * held[0]))
                sst = _sst(held)
                r2s.append(1.0 - sse / sst if sst > 0 else float("nan"))
            return mses, r2s

        seq_mse, _ = heldout(seq_test)
        ctx_mse, ctx_r2 = heldout(ctx_test)
        seq_note = _underdetermined(min(seq_fit_contexts), d)
        if seq_note is None and len(seq_mse) < 2:
            seq_note = "fewer than 2 sequence folds hold rows; add rows from more sequences"
        ctx_note = _underdetermined(min(ctx_fit_contexts), d)
        if ctx_note is None and len(ctx_mse) < 2:
            ctx_note = "fewer than 2 context folds hold rows; add rows from more distinct contexts"
        sse_in = max(_sse(every, coef, intercept), 0.0)
        sst_in = _sst(every)
        return ProbeResult(
            mse=sse_in / (k * W),
            r2=1.0 - sse_in / sst_in if sst_in > 0 else float("nan"),
            mse_heldout_contexts=None if ctx_note else float(np.mean(ctx_mse)),
            mse_heldout_contexts_std=None if ctx_note else float(np.std(ctx_mse)),
            r2_heldout_contexts=None if ctx_note else float(np.mean(ctx_r2)),
            heldout_contexts_note=ctx_note,
            mse_heldout=None if seq_note else float(np.mean(seq_mse)),
            mse_heldout_std=None if seq_note else float(np.std(seq_mse)),
            heldout_note=seq_note,
            mse_shuffled=max(_sse(shuffled, coef_sh, intercept_sh), 0.0) / (k * W),
            n_rows=int(self.n_rows),
            n_features=int(d),
            n_contexts=int(self._ids.size),
        )

    def coefficients(self, name: str, shuffled: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The in-sample fit of one probe on all rows: coef [d, k], intercept [k] (y ≈ x @ coef + intercept)."""
        self._require_rows()
        if name not in self._cols:
            raise ProbeInputError(f"no probe named {name!r}; probes: {list(self._cols)}")
        cols = self._cols[name]
        total = self._sum_cells(lambda a, b: True)
        with one_blas_thread():
            coef, c = _fit(
                *total.block(cols, self.n_targets, shuffled)[:5], default_rcond(cols.stop - cols.start, np.float32)
            )
        assert self._x0 is not None and self._y0 is not None  # set with the cells (`_require_rows`)
        return coef, c + self._y0 - self._x0[cols] @ coef

    def evaluations(self, activations: Mapping[str, np.ndarray]) -> dict[str, ProbeEvaluation]:
        """Every probe's result with its in-sample and shuffled-control predictions on the given rows.

        ``activations`` {name: [m, d]} are rows kept aside (e.g. a subset for the belief figures);
        the predictions [m, k] use the fits on all added rows.
        """
        X = self._features(activations)
        results = self.results()
        out = {}
        for name, cols in self._cols.items():
            Xn = X[:, cols].astype(np.float64)
            preds = []
            for shuffled in (False, True):
                coef, intercept = self.coefficients(name, shuffled)
                preds.append(Xn @ coef + intercept)
            out[name] = ProbeEvaluation(results[name], preds[0], preds[1])
        return out

    def state_nbytes(self) -> int:
        """Bytes held by the accumulator's arrays (the sums, and the distinct context ids with their flags)."""
        self._merge()
        sums = (
            0
            if self._cells is None
            else sum(
                c.s.nbytes + c.M.nbytes + c.P.nbytes + c.sy.nbytes + c.Q.nbytes for row in self._cells for c in row
            )
        )
        return int(sums + self._ids.nbytes + self._flags.nbytes)
