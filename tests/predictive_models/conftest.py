"""Session fixtures of the predictive_models tests: one tiny trained run that several test files compare against."""

import pytest
from test_training import EVAL, MODEL, config, markov_data

from predictive_models import train


@pytest.fixture(scope="session")
def markov_run(tmp_path_factory):
    """(result, train config, run directory) of the 2-token Markov chain's run, seed 3, 200 steps (read-only)."""
    run_dir = tmp_path_factory.mktemp("run")
    tc = config(save_at_tokens=(0, 10_000))
    return train(MODEL, tc, markov_data, EVAL, run_dir, progress=False), tc, run_dir
