"""Suite-wide setup, and the rule every numeric tolerance between float32 computations follows.

XLA cache. `compmech run`/`reproduce`/`sweep` (called in-process by many tests) turn on JAX's persistent
compilation cache (`compmech.runs.compiles`); for the test session it lives in a fresh temporary directory,
shared with the subprocesses the tests start (``COMPMECH_XLA_CACHE``), and removed at the end. Under
pytest-xdist each worker process has its own (JAX writes cache entries without a lock when the cache has no size
limit, so two processes must not share one).

Parallel runs. `make test` runs the suite on pytest-xdist workers with ``--dist loadfile``: each test file runs
on one worker, so that its module-scoped fixtures (tiny trained runs) are made once, and the files that share an
expensive session fixture (ONE_WORKER below) run on one worker together, so that it too is made once
(`pytest_xdist_make_scheduler`). Other session fixtures are made once per worker that needs them. Tests write
only under ``tmp_path``. (``--dist loadgroup`` would group by marks, but pytest-xdist 3.8 loses the groups under
pytest 9.2's node ids: pytest-dev/pytest-xdist#1386.)

Slow cases. Long end-to-end cases carry ``@pytest.mark.slow``: `make test` skips them, `make test-all` (and CI)
runs them.

Tolerances between float32 computations
---------------------------------------
Two float32 computations of one quantity that differ in the order of their reductions (devices,
micro-batches, vmapped seeds against one by one, the prefix (KV-cache) path against the full forward,
chunks against the whole, jit against eager, XLA's fusion, vector width and thread count, which differ from
machine to machine) agree only up to rounding, and how closely depends on the processor. A tolerance between
them is therefore never a number seen on one machine. It is derived, where it is asserted, from one of:

1. **A rounding bound.** A sum of n float32 terms, in any order, is within gamma_n * sum_i |x_i| of the exact
   sum, gamma_n = n u / (1 - n u), u = 2**-24 (Higham, *Accuracy and Stability of Numerical Algorithms*,
   2nd ed., eq. 3.5 and section 4.2; a dot product likewise with sum_i |x_i y_i|). Two such evaluations
   differ by at most `tolerances.f32_sum_bound(n, scale)` = 2 gamma_n * scale, scale = sum_i |x_i|. A chain
   of reductions adds each stage's bound, carried through the later stages to first order: beside a float64
   NumPy version of the computation, `tests/f32_reference.py` does so for the transformer and recurrent
   forwards and `tests/f32_sampler.py` for the sampler's belief recursion. A float32 result must then lie
   within ``bound`` of the float64 one, and two float32 results within ``2 * bound`` of each other
   (`tolerances.assert_within`). Elementwise functions (exp, log, tanh, logistic, rsqrt), which XLA evaluates
   by polynomial approximations, count F32_ELEMENTWISE_ULPS ulps each. These are worst-case bounds: 10 to
   10^4 times the differences seen, and still far below what a wrong formula, position or weight produces.
2. **A measured spread**, when training amplifies rounding. Adam divides every update by the gradient's
   running RMS, so a parameter whose gradient is near zero moves by up to a learning-rate step per step in a
   direction rounding decides; after a few hundred steps no useful a-priori bound is left. Then the same
   quantity is measured, in the same session on the same machine, under a perturbation of the same kind that
   is known to be legitimate (micro-batches on or off, the batch's rows permuted: only the order of the sums
   changes), and the difference under test must be within SPREAD_FACTOR times that spread; the test also
   asserts that SPREAD_FACTOR times the spread stays far below what a real fault (another seed) produces.
3. **A property that does not depend on rounding**: a statistic within a multiple of its own standard error;
   bitwise equality where the arithmetic is identical (the same compiled program on the same inputs: a
   resumed run, a rerun with the same seed, a 2-way sum in either order).

Float64 computations that are exact up to rounding (the theory: beliefs, word probabilities, entropies)
keep tight tolerances, 1e-9 to 1e-15: u = 1.1e-16 there, times at most ~1e6 terms. float32 results compared
with exact float64 values follow 1 (the float32 side's own bound). A test that changes a tolerance cites this
docstring ("tests/conftest.py, rule N").
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

_CACHE: str | None = None


def pytest_configure(config) -> None:
    global _CACHE
    _CACHE = tempfile.mkdtemp(prefix="compmech-test-xla-")
    os.environ["COMPMECH_XLA_CACHE"] = _CACHE


def pytest_unconfigure(config) -> None:
    if _CACHE is not None:
        shutil.rmtree(_CACHE, ignore_errors=True)


ONE_WORKER = {
    "tests/compmech/runs/test_icl_study.py": "mixture_run",
    "tests/compmech/runs/test_mixture_run.py": "mixture_run",
}
"""Test files that share one xdist worker, by the session fixture they share: `mixture_run` (tests/compmech/runs/
conftest.py) trains and analyses for ~1 min, more than its two files' own tests. `markov_run` (~15 s) is cheaper
made on two workers than test_training and test_parallel (minutes each) queued on one."""


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist's: unknown (and not called) without it
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` with the files of ONE_WORKER as one unit (one scheduling unit per other file)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FilesSharingFixtures(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = super()._split_scope(nodeid)
            return ONE_WORKER.get(path, path)

    return FilesSharingFixtures(config, log)


@pytest.fixture(autouse=True)
def _process_registry_restored():
    """Every test leaves the process registry as it found it: a test that registers a plugin (a factory that
    exits, returns None, ...) must not change what `compmech processes` lists in the next test on its worker."""
    from hmm_processes import process_registry_scope  # here: the conftest imports nothing of ours eagerly

    with process_registry_scope():
        yield
