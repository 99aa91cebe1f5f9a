"""Benchmark the theory: time of `info` (all measures) for each zoo process and for the composed processes of
compmech/experiments/mixture.toml and compmech/experiments/product.toml, and the peak memory of a depth-20 Mess3
enumeration with bounded-memory streaming.

Run from the repository root:  python benchmarks/bench_info.py [--max-states 100000]
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hmm_processes as hp  # noqa: E402
from compmech.measures import process_info  # noqa: E402
from compmech.streaming import stream_entropies  # noqa: E402


def _fmt(m) -> str:
    if m.value is None:
        return m.method
    err = "" if m.error is None else f"+-{m.error:.0e}"
    return f"{m.value:.6f}{err} {m.method[:8]}"


def bench_info() -> None:
    """Time `process_info` for every named process; print h_mu, C_mu, E with their error and method."""
    print(f"{'process':<16} {'seconds':>8}  {'h_mu':>26} {'C_mu':>26} {'E':>26}")
    for name in hp.list_processes():
        proc = hp.get_process(name)
        t0 = time.perf_counter()
        info = process_info(proc)
        dt = time.perf_counter() - t0
        print(f"{name:<16} {dt:8.3f}  {_fmt(info.h_mu):>26} {_fmt(info.C_mu):>26} {_fmt(info.E):>26}")


def bench_composed() -> None:
    """Time `process_info` for the processes of compmech/experiments/mixture.toml (two Mess3 settings, weights 1/2:
    split into its ergodic components) and compmech/experiments/product.toml (Mess3 x Mess3 x tom_quantum: split into
    factors)."""
    procs = {
        "mixture.toml": hp.mixture([hp.mess3(0.05, 0.85), hp.mess3(0.15, 0.6)], [0.5, 0.5]),
        "product.toml": hp.product([hp.mess3(0.05, 0.85), hp.mess3(0.15, 0.6), hp.tom_quantum(1.0, 3.0)]),
    }
    print(f"\n{'process':<16} {'seconds':>8}  {'h_mu':>26} {'E':>26}  structure")
    for name, proc in procs.items():
        t0 = time.perf_counter()
        info = process_info(proc)
        dt = time.perf_counter() - t0
        parts = len(info.components) or len(info.factors)
        print(f"{name:<16} {dt:8.3f}  {_fmt(info.h_mu):>26} {_fmt(info.E):>26}  {info.structure} of {parts}")


def bench_streaming(depth: int, max_states: int) -> None:
    tracemalloc.start()
    t0 = time.perf_counter()
    res = stream_entropies(hp.mess3(), depth, max_states=max_states)
    dt = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"\nMess3 (0.05, 0.85) streaming to depth {depth}, at most {max_states} beliefs per level:")
    print(f"  time {dt:.2f} s, peak traced memory {peak / 2**20:.1f} MiB (3^{depth} = {3**depth:.3g} words)")
    print(f"  beliefs kept at the last level {res.n_states[-1]}, final merge grid {res.resolution[-1]:.2g}")
    print(f"  h({depth + 1}) = {res.myopic_entropies[-1]:.9f} bits, H({depth}) = {res.block_entropies[-1]:.6f} bits")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--depth", type=int, default=20)
    ap.add_argument("--max-states", type=int, default=100_000)
    ap.add_argument("--skip-info", action="store_true")
    ap.add_argument("--skip-composed", action="store_true")
    args = ap.parse_args()
    if not args.skip_info:
        bench_info()
    if not args.skip_composed:
        bench_composed()
    for cap in sorted({20_000, args.max_states}):
        bench_streaming(args.depth, cap)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
