"""Sampling throughput: tokens per second with and without beliefs (target: >= 10M/s with beliefs on 2 cores).

Run: python benchmarks/bench_sampling.py [--batch 100000] [--length 10] [--repeats 7]
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from hmm_processes import get_process, sample


def throughput(hmm, batch: int, length: int, repeats: int, **flags) -> tuple[float, float]:
    """(median tokens/s, compile seconds) of one jitted sample call."""
    t0 = time.perf_counter()
    jax.block_until_ready(sample(hmm, jax.random.key(0), batch, length, **flags))
    compile_s = time.perf_counter() - t0
    times = []
    for r in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(sample(hmm, jax.random.key(r + 1), batch, length, **flags))
        times.append(time.perf_counter() - t0)
    return batch * length / float(np.median(times)), compile_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, default=100_000)
    ap.add_argument("--length", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    for name in ("mess3", "golden_mean"):
        hmm = get_process(name)
        for label, flags in [
            ("tokens only", dict(with_beliefs=False, with_next_token_probs=False)),
            ("tokens + beliefs", dict(with_beliefs=True, with_next_token_probs=False)),
            ("tokens + beliefs + next-token probs", dict()),
        ]:
            tps, comp = throughput(hmm, args.batch, args.length, args.repeats, **flags)
            print(f"{name:12s} {label:36s} {tps / 1e6:7.1f} M tokens/s  (compile {comp:.2f} s)")


if __name__ == "__main__":
    main()
