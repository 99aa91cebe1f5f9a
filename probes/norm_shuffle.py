"""The norm-shuffled-beliefs control of Riechers, Elliott & Shai (2025, arXiv 2507.07432), on arrays.

The authors probe three targets: the normalised beliefs, the *unnormalised* ones and the unnormalised ones with their
norms shuffled. Their function, `shuffle_belief_norms` in ``epsilon_transformers/analysis/activation_analysis.py``
of github.com/adamimos/epsilon-transformers (commit c3e9e84ac867a22899094f09ee6685ea848d4f53, used by
``examples/analyze_data_cpu_parallel_ckpt.py`` there as the "Shuffled Unnormalized Beliefs" target), takes the
unnormalised belief vectors ``[n_samples, n_context, n_states]``, flattens them into rows, computes each row's
Euclidean norm, permutes the norms across all rows (``torch.randperm``) and sets each row to its own unit direction
times the norm drawn for it. `shuffle_belief_norms` below does the same on NumPy arrays, with a seed.
"""

from __future__ import annotations

import numpy as np

from probes._checks import ProbeInputError, as_float_array, require_finite


def shuffle_belief_norms(unnormalized: np.ndarray, seed: int | np.random.Generator) -> np.ndarray:
    """Each row's direction kept, the rows' Euclidean norms permuted across rows.

    Parameters
    ----------
    unnormalized
        Unnormalised belief vectors ``[..., S]`` (every leading axis is flattened into rows, as the authors'
        ``reshape(-1, S)``): row r is ``n_r * d_r`` with norm ``n_r = ||row r||`` and unit direction ``d_r``.
    seed
        The permutation's seed (or a Generator): the same seed gives the same permutation.

    Returns
    -------
    np.ndarray
        ``[..., S]`` float64, row r equal to ``d_r * n_pi(r)`` for one uniformly random permutation ``pi`` of the
        rows: the directions are untouched, the multiset of norms is the same, only which row carries which norm is
        random. A probe that reads the unnormalised beliefs better than these reads the norms (which the authors'
        unnormalised vectors tie to the probability of the last token), not only the directions.

    Raises
    ------
    ProbeInputError
        When a row has norm 0 (it has no direction to keep) or an entry is not finite.
    """
    arr = np.asarray(as_float_array("unnormalized", unnormalized, tuple(range(1, 8))), dtype=np.float64)
    require_finite("unnormalized", arr)
    rows = arr.reshape(-1, arr.shape[-1])  # [R, S]
    norms = np.linalg.norm(rows, axis=1)  # [R]
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise ProbeInputError(
            f"unnormalized row {int(zero[0])} has norm 0: it has no direction to keep; drop the rows of impossible "
            "contexts first"
        )
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    shuffled = norms[rng.permutation(norms.size)]
    return (rows / norms[:, None] * shuffled[:, None]).reshape(arr.shape)
