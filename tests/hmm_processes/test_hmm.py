"""Validation of the HMM type, named processes and the registry."""

import numpy as np
import pytest

import hmm_processes as hp
from hmm_processes import HMM, ProcessError


def test_mess3_matches_definition():
    h = hp.mess3(x=0.05, alpha=0.85)
    beta, y, x = 0.075, 0.9, 0.05
    assert h.T.shape == (3, 3, 3)
    assert h.T[0, 0, 0] == pytest.approx(0.85 * y)
    assert h.T[0, 1, 0] == pytest.approx(0.85 * x)
    assert h.T[2, 1, 0] == pytest.approx(beta * x)
    np.testing.assert_allclose(h.T.sum(axis=(0, 2)), 1.0)
    np.testing.assert_allclose(h.stationary_distribution, np.ones(3) / 3)


@pytest.mark.parametrize("factory, pi", [(hp.golden_mean, [2 / 3, 1 / 3]), (hp.even, [2 / 3, 1 / 3])])
def test_stationary_distribution(factory, pi):
    h = factory(0.5)
    np.testing.assert_allclose(h.stationary_distribution, pi, atol=1e-12)
    np.testing.assert_allclose(h.stationary_distribution @ h.state_transition_matrix, h.stationary_distribution)


@pytest.mark.parametrize(
    "T, message",
    [
        (np.ones((2, 2)), r"shape \[V, S, S\]"),
        (np.ones((2, 2, 3)) / 6, "square"),
        (np.array([[[np.nan]], [[1.0]]]), "finite"),
        (np.array([[[1.2]], [[-0.2]]]), "negative"),
        (np.array([[[0.3]], [[0.3]]]), "add to"),
        ("abc", "numeric"),
    ],
)
def test_invalid_transition_tensors_raise_clear_errors(T, message):
    with pytest.raises(ProcessError, match=message):
        HMM(T)


def test_hmm_is_read_only():
    h = hp.golden_mean()
    with pytest.raises(ValueError):
        h.T[0, 0, 0] = 0.0


def test_registry_get_process_and_errors():
    h = hp.get_process("mess3", x=0.15, alpha=0.6)
    assert h.params == {"x": 0.15, "alpha": 0.6}
    with pytest.raises(ProcessError, match="unknown process 'mess4'.*mess3"):
        hp.get_process("mess4")
    with pytest.raises(ProcessError, match="no parameter 'beta'.*alpha"):
        hp.get_process("mess3", beta=0.1)
    with pytest.raises(ProcessError, match="alpha must be in"):
        hp.get_process("mess3", alpha=1.5)
    assert "alpha" in hp.list_processes()["mess3"]


def test_unregister_and_the_registry_scope_restore_what_was_there():
    mess3 = hp.registry._lookup("mess3")
    with hp.process_registry_scope():
        hp.register_process("scoped_one", lambda: hp.get_process("golden_mean"))
        hp.register_process("mess3", lambda: hp.get_process("golden_mean"), overwrite=True)
        assert hp.get_process("mess3").T.shape[1] == 2
        hp.unregister_process("golden_mean")
        assert "golden_mean" not in hp.list_processes()
    assert "scoped_one" not in hp.list_processes()
    assert "golden_mean" in hp.list_processes()
    assert hp.registry._lookup("mess3") is mess3
    with pytest.raises(ProcessError, match="unknown process 'scoped_one'"):
        hp.unregister_process("scoped_one")


@pytest.mark.parametrize(
    "value, message",
    [
        ([0.5, 0.5, 0.1], "sum to 1"),
        ([1.0], r"one entry per state \(3\)"),
        ([np.nan, 0.5, 0.5], r"start\[0\]"),
        ([1.2, -0.2, 0.0], r"start\[1\] = .*>= 0"),
        ("abc", "numeric"),
    ],
)
def test_probability_vector_check_names_the_problem(value, message):
    from hmm_processes.hmm import check_probability_vector

    with pytest.raises(ProcessError, match=message):
        check_probability_vector(value, 3, "start")


def test_sample_and_mixed_states_share_the_start_distribution_check():
    import jax

    from compmech import mixed_states

    h = hp.mess3()
    float32_start = np.float32([0.3, 0.3, 0.4])  # sums to 1 only within float32 rounding
    assert hp.sample(h, jax.random.key(0), 2, 2, initial=float32_start).tokens.shape == (2, 2)
    assert mixed_states(h, 1, prior=float32_start).level(1).probs.sum() == pytest.approx(1.0)
    with pytest.raises(ProcessError, match="sample: initial sums to 1.2"):
        hp.sample(h, jax.random.key(0), 2, 2, initial=[0.5, 0.6, 0.1])
    with pytest.raises(ProcessError, match=r"mixed_states: prior\[0\]"):
        mixed_states(h, 2, prior=[-0.1, 0.6, 0.5])
