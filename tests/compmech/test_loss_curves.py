import numpy as np
import pytest

from compmech.loss_curves import ICLCurve


def _curve(**kw):
    args = dict(
        seen=np.arange(3),
        optimal=np.array([1.1, 1.0, 0.9]),
        optimal_se=np.zeros(3),
        component=np.array([[1.0, 0.9, 0.8], [0.8, 0.7, 0.6]]),
        component_se=np.zeros((2, 3)),
        weights=np.array([0.25, 0.75]),
        labels=("a", "b"),
        method="exact",
    )
    args.update(kw)
    return ICLCurve(**args)


def test_known_source_is_the_prior_weighted_component_loss_and_excess_the_rest():
    c = _curve()
    np.testing.assert_allclose(c.known_source, [0.85, 0.75, 0.65])
    np.testing.assert_allclose(c.excess, [0.25, 0.25, 0.25])


@pytest.mark.parametrize(
    "bad", [dict(method="guess"), dict(optimal=np.ones(4)), dict(component=np.ones((3, 3))), dict(labels=("a",))]
)
def test_inconsistent_shapes_or_method_are_refused(bad):
    with pytest.raises(ValueError):
        _curve(**bad)


def test_a_hybrid_curve_is_the_exact_one_then_the_monte_carlo_one():
    from compmech.loss_curves import hybrid_curve

    exact = _curve(
        seen=np.arange(2),
        optimal=np.array([1.1, 1.0]),
        optimal_se=np.zeros(2),
        component=np.array([[1.0, 0.9], [0.8, 0.7]]),
        component_se=np.zeros((2, 2)),
    )
    mc = _curve(
        optimal=np.array([1.2, 1.05, 0.95]),
        optimal_se=np.array([0.0, 0.01, 0.01]),
        component_se=np.full((2, 3), 0.01),
        method="monte_carlo",
        n_samples=100,
    )
    h = hybrid_curve(exact, mc)
    assert h.method == "hybrid" and h.last_exact_seen == 1 and h.exact.tolist() == [True, True, False]
    np.testing.assert_array_equal(h.optimal, [1.1, 1.0, 0.95])
    np.testing.assert_array_equal(h.optimal_se, [0.0, 0.0, 0.01])
    np.testing.assert_array_equal(h.component[:, 2], mc.component[:, 2]) and h.n_samples == 100
    assert _curve().exact.all() and not mc.exact.any() and mc.exact_through is None and _curve().exact_through == 2
    with pytest.raises(ValueError):
        hybrid_curve(mc, exact)
    with pytest.raises(ValueError):  # a hybrid curve needs its boundary, and zero errors before it
        _curve(method="hybrid")
    with pytest.raises(ValueError):
        _curve(method="hybrid", last_exact_seen=1, optimal_se=np.full(3, 0.01))
