"""Activations of each distinct prefix once: the memory-lean form of a model's activations on many strings.

A causal model's activation at position t depends on ``tokens[n, : t + 1]`` only, so a set of strings that
share prefixes (every length-T string of a process: 3^10 Mess3 strings have 88,572 distinct prefixes among
their 590,490 positions) needs one activation row per distinct prefix. `PrefixActivations` holds those rows
and, for every (string, position), the row of its prefix; ``rows[name][ids]`` is the [N, T, width] array
`compute_activations` gives, without ever building it.

Row order: by prefix length, then lexicographically by token ids (the order of `np.unique` level by level),
so the rows of length-(t + 1) prefixes are ``offsets[t]:offsets[t + 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class PrefixActivations:
    """One activation row per distinct prefix of a set of strings, and each (string, position)'s row."""

    rows: dict[str, np.ndarray]  # name -> [U, width] float32, row u = the u-th distinct prefix (module order)
    ids: np.ndarray  # [N, T] int64: ids[n, t] = the row of tokens[n, : t + 1]
    offsets: np.ndarray  # [T + 1] int64: the rows of length-(t + 1) prefixes are offsets[t]:offsets[t + 1]

    @property
    def n_prefixes(self) -> int:
        return int(self.offsets[-1])

    def per_string(self, name: str) -> np.ndarray:
        """The [N, T, width] array of ``name`` (what `compute_activations` returns): a full-size copy, for tests
        and small sets only."""
        return self.rows[name][self.ids]


PREFIX_CALL_ROWS = 1024  # prefixes per jitted step call at most: small levels padded to it cost little


def call_rows(batch_size: int, levels: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> int:
    """The one padded row count of every prefix-step call (one shape, so one compilation per output set):
    ``min(batch_size, PREFIX_CALL_ROWS, the largest level)``. Measured on Mess3's 88,572 prefixes: one shape of
    1024 rows compiles 1.2-1.4 s faster than two (256 and 4096) and evaluates within 0.1 s of them."""
    return max(1, min(int(batch_size), PREFIX_CALL_ROWS, max(len(last) for _, last, _ in levels)))


def prefix_tree(tokens: np.ndarray, vocab_size: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Distinct prefixes level by level: for each t, (parent id, last token, inverse) where the
    distinct prefixes of length t+1 are numbered 0..u_t-1 and ``inverse[n]`` is that of row n."""
    ids = np.zeros(tokens.shape[0], np.int64)
    levels = []
    for t in range(tokens.shape[1]):
        _, first, inverse = np.unique(ids * vocab_size + tokens[:, t], return_index=True, return_inverse=True)
        levels.append((ids[first], tokens[first, t], inverse.reshape(-1)))
        ids = inverse.reshape(-1)
    return levels


def prefix_index(
    levels: list[tuple[np.ndarray, np.ndarray, np.ndarray]], n_strings: int
) -> tuple[np.ndarray, np.ndarray]:
    """(ids [N, T], offsets [T + 1]) from a prefix tree (`prefix_tree`: per level t the parent ids, last
    tokens and the inverse map of the strings to that level's prefixes)."""
    sizes = np.array([len(last) for _, last, _ in levels], np.int64)  # [T] distinct prefixes per length
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    ids = np.empty((n_strings, len(levels)), np.int64)
    for t, (_, _, inverse) in enumerate(levels):
        ids[:, t] = inverse + offsets[t]
    return ids, offsets
