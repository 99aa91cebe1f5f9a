"""`probes.norm_shuffle.shuffle_belief_norms`: the authors' norm-shuffled-beliefs control (Riechers, Elliott & Shai
2025; `shuffle_belief_norms` in epsilon_transformers/analysis/activation_analysis.py of adamimos/epsilon-transformers,
commit c3e9e84ac867a22899094f09ee6685ea848d4f53) on planted arrays."""

import numpy as np
import pytest

from probes import ProbeInputError
from probes.norm_shuffle import shuffle_belief_norms


def planted(seed=0, shape=(50, 6, 4)):
    """Rows with planted unit directions and norms spread over two decades (no two equal)."""
    rng = np.random.default_rng(seed)
    directions = rng.normal(size=shape)
    directions /= np.linalg.norm(directions, axis=-1, keepdims=True)
    norms = rng.uniform(0.01, 1.0, size=shape[:-1])
    return directions, norms, directions * norms[..., None]


def test_directions_are_kept_and_the_norms_are_a_permutation():
    directions, norms, x = planted()
    out = shuffle_belief_norms(x, seed=7)
    assert out.shape == x.shape and out.dtype == np.float64
    new_norms = np.linalg.norm(out, axis=-1)
    # each row is its own direction times a positive number: the direction is kept exactly (float64 rounding)
    np.testing.assert_allclose(out / new_norms[..., None], directions, atol=1e-12)
    # the norms are the old ones, rearranged: the same sorted list
    np.testing.assert_allclose(np.sort(new_norms.ravel()), np.sort(norms.ravel()), rtol=1e-12)
    # and rearranged across all rows (leading axes flattened, as the authors' reshape(-1, S)): most rows moved
    assert np.mean(~np.isclose(new_norms, norms, rtol=1e-12)) > 0.9
    moved_across_strings = np.any(~np.isin(np.round(new_norms[0], 12), np.round(norms[0], 12)))
    assert moved_across_strings  # string 0's rows took norms of other strings' rows


def test_the_same_seed_gives_the_same_shuffle_and_another_seed_another():
    _, _, x = planted(1)
    a, b, c = (shuffle_belief_norms(x, seed=s) for s in (3, 3, 4))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    np.testing.assert_array_equal(shuffle_belief_norms(x, np.random.default_rng(3)), a)  # a Generator works too


def test_a_two_dimensional_input_is_rows_and_the_input_is_not_modified():
    _, _, x = planted(2, shape=(30, 3))
    before = x.copy()
    out = shuffle_belief_norms(x, seed=0)
    np.testing.assert_array_equal(x, before)
    assert out.shape == (30, 3)


def test_a_zero_row_or_a_nan_is_refused_by_name():
    _, _, x = planted(3, shape=(10, 3))
    x[4] = 0.0
    with pytest.raises(ProbeInputError, match="row 4 has norm 0"):
        shuffle_belief_norms(x, seed=0)
    x[4] = np.nan
    with pytest.raises(ProbeInputError, match="unnormalized"):
        shuffle_belief_norms(x, seed=0)
