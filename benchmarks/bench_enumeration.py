"""Exact enumeration time for all Mess3 words at depths 8-14 (target: depth 14 under 2 s on 2 cores).

Run: python benchmarks/bench_enumeration.py [--max-depth 14]
"""

from __future__ import annotations

import argparse
import resource
import time

from compmech import mixed_states, myopic_entropies
from hmm_processes import get_process


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--min-depth", type=int, default=8)
    ap.add_argument("--max-depth", type=int, default=14)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    hmm = get_process("mess3", x=0.05, alpha=0.85)
    print(f"{'depth':>5s} {'words':>10s} {'enumerate s':>12s} {'+ words s':>10s} {'h(L+1) bits':>12s}")
    for depth in range(args.min_depth, args.max_depth + 1):
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            ms = mixed_states(hmm, depth)
            best = min(best, time.perf_counter() - t0)
        t0 = time.perf_counter()
        _ = ms.level(depth).words
        words_s = time.perf_counter() - t0
        h = myopic_entropies(ms)[-1]
        print(f"{depth:5d} {len(ms.level(depth)):10d} {best:12.3f} {words_s:10.3f} {h:12.6f}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory: {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
