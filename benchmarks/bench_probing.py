"""Post-training time of `compmech run`: probing every layer + concat, distance geometry, and one
training-evolution refit per checkpoint (activations, rows, probe of one layer), on an untrained model
of the config (the time does not depend on training). Also prints the headline layer's probe numbers
and the process's peak resident memory.

Run: python benchmarks/bench_probing.py [--config compmech/experiments/mess3.toml] [--checkpoints 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import time

from compmech.runs.analysis import geometry_analysis
from compmech.runs.config import load_config
from compmech.runs.experiment import analysis_layer, context_set
from compmech.runs.probing import context_activations, probe_model, probed_layers
from compmech.runs.processes import build_process
from predictive_models import prefix_activations
from predictive_models.transformer import init_params
from probes import CONTEXT_TEST_FRACTION, probe_layers, probe_targets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default="compmech/experiments/mess3.toml")
    ap.add_argument("--checkpoints", type=int, default=3, help="evolution refits to time")
    args = ap.parse_args()
    cfg = load_config(args.config)
    hmm = build_process(cfg.process)
    mc = cfg.model_config(hmm.vocab_size)
    ctx = context_set(hmm, mc.context_length)
    layer = analysis_layer(cfg, mc)

    t = time.perf_counter()
    probe = probe_model(cfg, mc, init_params(mc, 0), ctx, layer)
    print(
        f"probe_model (activations, every layer + concat, both held-out splits, control): "
        f"{time.perf_counter() - t:.1f} s"
    )
    t = time.perf_counter()
    geometry_analysis(hmm, probe, layer, cfg.seed)
    print(f"distance geometry: {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    data = probe_targets(ctx.beliefs, ctx.tokens, ctx.probs)
    for seed in range(1, args.checkpoints + 1):  # what training_evolution does per checkpoint, minus exact_eval
        acts = prefix_activations(
            mc, init_params(mc, seed), ctx.tokens, names=probed_layers(cfg.probe, mc) if layer == "concat" else [layer]
        )
        probe_layers(
            context_activations(acts, ctx.tokens, data.context_ids),
            data.Y,
            data.groups,
            contexts=data.context_ids,
            positions=data.positions,
            include_concat=layer == "concat",
            only_concat=layer == "concat",
            per_context=True,
            n_repeats=cfg.probe.n_repeats,
            context_test_fraction=CONTEXT_TEST_FRACTION,
            seed=cfg.seed,
        )
    print(f"evolution refits, {args.checkpoints} checkpoints: {time.perf_counter() - t:.1f} s")
    print(f"{layer} (untrained):", json.dumps(probe.results[layer].to_dict()))
    print(f"peak resident memory: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
