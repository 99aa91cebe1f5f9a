"""Session fixtures of the predictive_models tests: one tiny trained run that several test files compare against,
and how far that run moves when only its summation order changes."""

from dataclasses import dataclass

import numpy as np
import pytest
from test_training import EVAL, MODEL, config, loss_array, markov_data, max_param_diff

from predictive_models import train


@pytest.fixture(scope="session")
def markov_run(tmp_path_factory):
    """(result, train config, run directory) of the 2-token Markov chain's run, seed 3, 200 steps (read-only)."""
    run_dir = tmp_path_factory.mktemp("run")
    tc = config(save_at_tokens=(0, 10_000))
    return train(MODEL, tc, markov_data, EVAL, run_dir, progress=False), tc, run_dir


@dataclass(frozen=True)
class ReorderSpread:
    """How far seed 3's 200-step run moves when only the order of its sums changes (tests/conftest.py, rule 2).

    The run is trained again on one device in micro-batches of 16 and of 8 sequences (the same gradient, summed
    in another order; that micro-batching equals the whole batch is test_training's own test) and compared with
    the whole-batch run (`markov_run`). Adam turns those rounding differences into parameter differences of
    ~1e-3 after 200 steps (seen 3e-4 to 2e-3 over five XLA CPU settings and four seeds), far above any
    a-priori rounding bound and far below another seed's ~0.4."""

    params: float  # the largest parameter difference of the two reorderings
    losses: float  # the largest relative difference of their exact losses, over every evaluation

    def param_tolerance(self, factor: float) -> float:
        return factor * self.params

    def loss_rtol(self, factor: float) -> float:
        return factor * self.losses


@pytest.fixture(scope="session")
def reorder_spread(markov_run) -> ReorderSpread:
    whole = markov_run[0]
    runs = [train(MODEL, config(micro_batch=m), markov_data, EVAL, progress=False) for m in (16, 8)]
    return ReorderSpread(
        params=max(max_param_diff(r.params_state, whole.params_state) for r in runs),
        losses=max(float(np.max(np.abs(loss_array(r) / loss_array(whole) - 1))) for r in runs),
    )
