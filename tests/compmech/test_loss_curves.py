import numpy as np
import pytest

from compmech.loss_curves import ICLCurve


def _curve(**kw):
    args = dict(seen=np.arange(3), optimal=np.array([1.1, 1.0, 0.9]), optimal_se=np.zeros(3),
                component=np.array([[1.0, 0.9, 0.8], [0.8, 0.7, 0.6]]), component_se=np.zeros((2, 3)),
                weights=np.array([0.25, 0.75]), labels=("a", "b"), method="exact")
    args.update(kw)
    return ICLCurve(**args)


def test_known_source_is_the_prior_weighted_component_loss_and_excess_the_rest():
    c = _curve()
    np.testing.assert_allclose(c.known_source, [0.85, 0.75, 0.65])
    np.testing.assert_allclose(c.excess, [0.25, 0.25, 0.25])


@pytest.mark.parametrize("bad", [dict(method="guess"), dict(optimal=np.ones(4)),
                                 dict(component=np.ones((3, 3))), dict(labels=("a",))])
def test_inconsistent_shapes_or_method_are_refused(bad):
    with pytest.raises(ValueError):
        _curve(**bad)
