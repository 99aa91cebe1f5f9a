"""Same inputs, same bits: the probe numbers do not depend on the BLAS thread count."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# 8000 x 256 float32 rows: large enough that OpenBLAS splits work between 2 threads (with BLAS left
# unpinned, 1 and 2 threads gave different predictions here).
SCRIPT = """
import hashlib
import numpy as np
from probes import evaluate_probe
n, d = 8000, 256
rng = np.random.default_rng(0)
X = rng.standard_normal((n, d)).astype(np.float32)
Y = rng.dirichlet(np.ones(3), n)
ev = evaluate_probe(X, Y, np.arange(n) // 10, positions=np.arange(n) % 10, n_repeats=2)
print(hashlib.sha256(ev.predictions.tobytes() + ev.shuffled.tobytes() + repr(ev.result).encode()).hexdigest())
"""


def run_with_threads(n: int) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": str(n), "OPENBLAS_NUM_THREADS": str(n)}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True, check=True, timeout=300
    )
    return out.stdout.strip()


def test_probe_numbers_identical_with_one_and_two_blas_threads():
    one, two = run_with_threads(1), run_with_threads(2)
    assert len(one) == 64
    assert one == two
