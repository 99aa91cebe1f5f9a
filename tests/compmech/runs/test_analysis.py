"""compmech.runs.analysis: the geometry record says when next-token geometry is belief geometry up to scale."""

import numpy as np
import pytest

from compmech.mixed_states import mixed_states
from compmech.runs.analysis import geometry_analysis
from compmech.runs.records import PROBE_FIELDS, ProbeOutcome, probe_fields
from compmech.runs.sources import source_of
from hmm_processes.named import mess3, rrxor
from probes import probe_rows


def probe_of(hmm, length: int, noise: float = 0.02):
    """A `ProbeOutcome` as `compmech.runs.probing.probe_model` returns it, with noisy beliefs as the predictions."""
    ms = mixed_states(hmm, length)
    tokens = ms.level(length).words
    beliefs = ms.prefix_beliefs(length)  # [N, T, S]
    data = probe_rows(np.zeros(beliefs.shape[:2] + (1,), np.float32), beliefs, tokens)
    pred = data.Y + noise * np.random.default_rng(0).standard_normal(data.Y.shape)
    return ProbeOutcome(
        results={},
        probe_layer="block_1",
        data=data,
        predictions={"block_1": pred},
        shuffled=pred,
        untrained=None,
        info={},
    )


def test_mess3_next_token_geometry_is_belief_geometry_up_to_scale():
    hmm = mess3()
    geo = geometry_analysis(source_of(hmm), probe_of(hmm, 5), "block_1", seed=0)
    assert geo.next_token_distances_proportional_to_beliefs is True
    # E = M A with M = T.sum(0) (diagonal 1 - 2x, off-diagonal x) and A circulant (alpha, beta): on the
    # simplex's tangent space they scale by 1 - 3x and alpha - beta = (3 alpha - 1) / 2
    x, alpha = 0.05, 0.85
    assert geo.next_token_distance_scale == pytest.approx((1 - 3 * x) * (3 * alpha - 1) / 2, rel=1e-12)
    assert geo.distance_r2_next_token == pytest.approx(geo.distance_r2_beliefs, abs=1e-9)
    assert "equal by construction" in geo.next_token_geometry_note


def test_rrxor_next_token_geometry_differs():
    hmm = rrxor()
    geo = geometry_analysis(source_of(hmm), probe_of(hmm, 6), "block_1", seed=0)
    assert geo.next_token_distances_proportional_to_beliefs is False
    assert geo.next_token_distance_scale is None
    assert geo.distance_r2_next_token < geo.distance_r2_beliefs - 0.1
    assert "can differ" in geo.next_token_geometry_note


def test_probe_fields_carry_the_heldout_contexts_error():
    assert "mse_heldout_contexts" in PROBE_FIELDS and "mse_heldout" in PROBE_FIELDS
    record = {k: 0.5 for k in PROBE_FIELDS} | {"n_rows": 3}
    assert probe_fields(record) == {k: 0.5 for k in PROBE_FIELDS}
