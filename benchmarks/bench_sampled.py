"""Throughput of the sampled regime's probe phase: sample sequences with their beliefs, compute the activations
of every layer chunk by chunk and accumulate the probes (every layer + concat, both K-fold held-out splits,
shuffled control) on an untrained model of the config (the time does not depend on training).

Prints rows probed per second and the peak memory (the process's maximum resident set, and the Python
allocations' peak during the phase from tracemalloc).

Run: python benchmarks/bench_sampled.py [--config compmech/experiments/mess3_long.toml] [--sequences 5000]
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import time
import tracemalloc

from compmech.runs.config import load_config
from compmech.runs.experiment import plan_run
from compmech.runs.sampled import probe_model_sampled
from predictive_models.transformer import init_params


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default="compmech/experiments/mess3_long.toml")
    ap.add_argument("--sequences", type=int, default=None, help="probe sequences (default: the config's)")
    args = ap.parse_args()
    overrides = {"data.regime": "sampled"}
    if args.sequences is not None:
        overrides["data.probe_sequences"] = args.sequences
    cfg = load_config(args.config, overrides)
    plan = plan_run(cfg, "/tmp/bench-sampled-never-written")
    regime, mc = plan.regime, plan.model_cfg
    params = init_params(mc, 0)
    optimal = [1.0] * mc.context_length  # unused by the probe numbers
    # warm-up: compile the sampler and the model on one chunk's shape
    warm = dataclasses.replace(regime, probe_sequences=max(1, regime.chunk_rows // mc.context_length))
    probe_model_sampled(cfg, mc, params, plan.process, warm, plan.layer, optimal)

    tracemalloc.start()
    t = time.perf_counter()
    probe, _ = probe_model_sampled(cfg, mc, params, plan.process, regime, plan.layer, optimal)
    seconds = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rows = probe.results[probe.probe_layer].n_rows
    res = probe.results[probe.probe_layer]
    print(
        f"{cfg.name}: {regime.probe_sequences:,} sequences x {mc.context_length} = {rows:,} rows, "
        f"{len(probe.results)} probes (every layer + concat), chunks of {regime.chunk_rows:,} rows"
    )
    print(f"probe phase: {seconds:.1f} s, {rows / seconds:,.0f} rows probed per second")
    print(
        f"peak memory: Python allocations {peak / 2**20:.0f} MiB during the phase; process max RSS "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB"
    )
    print(
        f"untrained {probe.probe_layer}: mse {res.mse:.4g}, held-out contexts {res.mse_heldout_contexts:.4g}, "
        f"shuffled {res.mse_shuffled:.4g}"
    )


if __name__ == "__main__":
    main()
