"""Probe rows from per-string arrays: which (string, position) pairs become rows, and their weights.

Alignment (fixed elsewhere, used as is here): ``activations[n, t]`` is the model's activation
after reading ``tokens[n, : t + 1]`` and ``targets[n, t]`` the belief after that same prefix.

Two row sets:

- ``"all_strings"`` (the paper's default): every string once, each of its T positions a row,
  all positions pooled: N * T rows. A short prefix recurs once per string that starts with it
  (for all 3^10 Mess3 strings, the length-1 prefix "0" is 3^9 rows).
- ``"distinct_contexts"``: each distinct prefix ``tokens[n, : t + 1]`` once, taken from the first
  string (in row order) that contains it. A causal model gives the same activation to the same
  prefix, so nothing is lost; only the implicit multiplicity weighting of short prefixes goes.

Two weightings:

- ``"uniform"``: weights None (every row counts once).
- ``"probability"``: the row for prefix u at position t gets weight P(u) / (T * Σ_s P(s)), so the
  weights sum to 1 and every position carries the same total weight 1/T. For ``"all_strings"`` this
  is P(string) on each row of the string: summed over the rows that share prefix u it gives
  P(u) exactly when every allowed string is present. For ``"distinct_contexts"`` P(u) is computed
  as Σ P(s) over the given strings s that start with u. Both row sets therefore give the same
  weighted fit. Never the default: weighted in-sample R² can look good for random features.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from probes._checks import ProbeInputError, as_float_array, require_finite

ROW_SETS = ("all_strings", "distinct_contexts")
WEIGHTINGS = ("uniform", "probability")


@dataclass(frozen=True, eq=False)
class ProbeRows:
    """The rows of a probe without their activations (`probe_targets`): what every layer's fit shares.

    The activations to go with them are one row per distinct context, in increasing ``context_ids`` order
    (`probes.probe_layers` with ``per_context=True``), so no [R, d] array is ever needed.
    """

    Y: np.ndarray  # [R, k] float64 targets
    weights: np.ndarray | None  # [R] summing to 1, or None for uniform
    groups: np.ndarray  # [R] int: string the row came from (first string containing it)
    positions: np.ndarray  # [R] int: t, the prefix is tokens[group, : t + 1]
    context_ids: np.ndarray  # [R] int: distinct_prefix_ids of the row's prefix

    @property
    def n_rows(self) -> int:
        return int(self.Y.shape[0])


@dataclass(frozen=True, eq=False)
class ProbeData(ProbeRows):
    """Rows ready for a probe: `ProbeRows` with each row's activations; every array has one entry (or row) per
    probe row."""

    X: np.ndarray  # [R, d] activations (dtype kept, float32 stays float32)


def _as_tokens(tokens) -> np.ndarray:
    tokens = np.asarray(tokens)
    if tokens.ndim != 2:
        raise ProbeInputError(f"tokens must be a 2-D [N, T] integer array, got shape {tokens.shape}")
    if tokens.dtype.kind not in "iu":
        raise ProbeInputError(f"tokens must hold integers, got dtype {tokens.dtype}")
    if tokens.size and tokens.min() < 0:
        raise ProbeInputError("tokens must be non-negative token ids")
    return tokens.astype(np.int64, copy=False)


def distinct_prefix_ids(tokens) -> np.ndarray:
    """Ids [N, T] with ``ids[n, t] == ids[m, s]`` iff ``tokens[n, : t + 1] == tokens[m, : s + 1]``.

    Ids run 0..(number of distinct prefixes - 1), ordered by prefix length, then lexicographically.
    """
    tokens = _as_tokens(tokens)
    n, t_len = tokens.shape
    ids = np.empty((n, t_len), dtype=np.int64)
    prev = np.zeros(n, dtype=np.int64)  # id of tokens[:, :t] among prefixes of length t
    vocab = int(tokens.max()) + 1 if tokens.size else 1
    offset = 0
    for t in range(t_len):
        uniq, prev = np.unique(prev * vocab + tokens[:, t], return_inverse=True)
        prev = prev.reshape(-1)
        ids[:, t] = prev + offset
        offset += uniq.size
    return ids


def _checked_targets(
    targets, tokens, string_probs, rows: str, weighting: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(targets [N, T, k] float, tokens [N, T] int64, string probabilities [N] float64 or None), checked."""
    if rows not in ROW_SETS:
        raise ProbeInputError(f"rows must be one of {ROW_SETS}, got {rows!r}")
    if weighting not in WEIGHTINGS:
        raise ProbeInputError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    targ = as_float_array("targets", targets, 3)
    tok = _as_tokens(tokens)
    n, t_len = tok.shape
    if targ.shape[:2] != (n, t_len):
        raise ProbeInputError(
            f"targets has shape {targ.shape} but tokens has {tok.shape}; the first two axes [N, T] must match"
        )
    if n * t_len == 0:
        raise ProbeInputError("tokens has no strings or no positions")
    require_finite("targets", targ)
    probs = None
    if weighting == "probability":
        if string_probs is None:
            raise ProbeInputError('string_probs is required for weighting="probability"')
    if string_probs is not None:
        probs = np.asarray(string_probs, dtype=np.float64)
        if probs.shape != (n,):
            raise ProbeInputError(f"string_probs must have shape ({n},), got {probs.shape}")
        if not np.all(np.isfinite(probs)) or np.any(probs < 0) or not probs.sum() > 0:
            raise ProbeInputError("string_probs must be finite, non-negative and not all zero")
    return targ, tok, probs


def _select_rows(
    targ: np.ndarray, tok: np.ndarray, probs: np.ndarray | None, rows: str, weighting: str
) -> tuple[ProbeRows, np.ndarray | None]:
    """The rows (see the module docstring) and their flat (string * T + position) indices into [N, T] arrays
    (None for ``"all_strings"``: every entry, in order)."""
    n, t_len = tok.shape
    ids = distinct_prefix_ids(tok).reshape(-1)  # [N * T]
    Y_all = targ.reshape(n * t_len, targ.shape[2])
    row_weight = None
    if weighting == "probability":
        assert probs is not None  # required for "probability" (`_checked_targets`)
        row_weight = np.repeat(probs, t_len) / (t_len * probs.sum())  # [N * T], sums to 1

    if rows == "all_strings":
        return ProbeRows(
            Y=Y_all,
            weights=row_weight,
            groups=np.repeat(np.arange(n), t_len),
            positions=np.tile(np.arange(t_len), n),
            context_ids=ids,
        ), None

    _, first = np.unique(ids, return_index=True)
    order = np.sort(first)  # first occurrence of each prefix, in row-major (string, position) order
    weights = None
    if row_weight is not None:
        prefix_prob = np.bincount(ids, weights=row_weight)  # P(u) / (T Σ P), per context id
        weights = prefix_prob[ids[order]]
    return ProbeRows(
        Y=Y_all[order], weights=weights, groups=order // t_len, positions=order % t_len, context_ids=ids[order]
    ), order


def probe_targets(
    targets,  # [N, T, k]
    tokens,  # [N, T] int
    string_probs=None,  # [N] or None
    *,
    rows: str = "all_strings",
    weighting: str = "uniform",
) -> ProbeRows:
    """The rows `probe_rows` would make, without activations: for fits from one activation row per distinct
    context (`probes.probe_layers` with ``per_context=True``), which never needs the [R, d] arrays."""
    targ, tok, probs = _checked_targets(targets, tokens, string_probs, rows, weighting)
    return _select_rows(targ, tok, probs, rows, weighting)[0]


def probe_rows(
    activations,  # [N, T, d]
    targets,  # [N, T, k]
    tokens,  # [N, T] int
    string_probs=None,  # [N] or None
    *,
    rows: str = "all_strings",
    weighting: str = "uniform",
) -> ProbeData:
    """Flatten per-string arrays into probe rows; see the module docstring for the options."""
    targ, tok, probs = _checked_targets(targets, tokens, string_probs, rows, weighting)
    acts = as_float_array("activations", activations, 3)
    n, t_len = tok.shape
    if acts.shape[:2] != (n, t_len):
        raise ProbeInputError(
            f"activations has shape {acts.shape} but tokens has {tok.shape}; the first two axes [N, T] must match"
        )
    require_finite("activations", acts)
    picked, order = _select_rows(targ, tok, probs, rows, weighting)
    X_all = acts.reshape(n * t_len, acts.shape[2])  # a view for contiguous input
    return ProbeData(
        X=X_all if order is None else X_all[order],
        Y=picked.Y,
        weights=picked.weights,
        groups=picked.groups,
        positions=picked.positions,
        context_ids=picked.context_ids,
    )
