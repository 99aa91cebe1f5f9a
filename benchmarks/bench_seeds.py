"""Benchmark: S seeds of the paper's Mess3 model trained in one vmapped step vs one after another; 1 vs 2 devices.

    python benchmarks/bench_seeds.py [--seeds 8] [--seconds 10] [--batch-size 64] [--micro-batch M] [--no-devices]

Steady-state training throughput (fresh Mess3 sequences drawn every fused call, optimizer steps, no
evaluation; compile time excluded and printed apart) of:

- sequential: S models of `compmech/experiments/mess3.toml`'s model, each its own jitted call per
  ``steps_per_call`` steps (what S lone runs do);
- vmapped: the S models stacked, one jitted call for all (`predictive_models.train_seeds`' step);
- in a subprocess with ``XLA_FLAGS=--xla_force_host_platform_device_count=2``: one model on 1 and on 2 forced
  host devices (the batch split over them). Forced host devices share the same CPU cores, so this shows the cost
  of the sharded step, not a speed-up; on GPUs each device brings its own compute.

It also prints the matmul work per token and the GFLOP/s each reaches beside a large matrix product's on the same
cores: the head-room any batching of these small models has. The machine's load average is printed first: on a
shared machine, compare the ratios of one run. The last line is ``vmapped/sequential: <ratio>x``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from hmm_processes import get_process, sample  # noqa: E402
from predictive_models import TrainConfig, make_config  # noqa: E402
from predictive_models.models import init_params  # noqa: E402
from predictive_models.parallel import put, training_mesh  # noqa: E402
from predictive_models.training import (  # noqa: E402
    _keys,
    _optimizer_and_chunk,
    _optimizer_settings,
    group_draw,
    resolve_micro_batch,
)


def mess3_model():
    """The model and the training settings of compmech/experiments/mess3.toml (the paper's Mess3 model)."""
    cfg = tomllib.loads((ROOT / "experiments" / "mess3.toml").read_text())
    params = cfg["process"]["params"]
    hmm = get_process("mess3", **params)
    mc = make_config("transformer", hmm.vocab_size, **cfg["model"])
    training = {k: v for k, v in cfg["training"].items() if k != "save_at_tokens"}
    return hmm, mc, training


class Mess3Data:
    """(key, n, length) -> Mess3 tokens [n, length]: the runner's data function, hashable for the draw cache."""

    def __init__(self, hmm):
        self.hmm = hmm

    def __call__(self, key, n: int, length: int):
        return sample(self.hmm, key, n, length, with_beliefs=False, with_next_token_probs=False).tokens


def throughput(mc, tc: TrainConfig, data_fn, n_seeds: int, groups: int, seconds: float) -> tuple[float, float]:
    """(tokens/s, compile seconds) of ``groups`` groups of ``n_seeds`` models each, trained in turn, on
    ``tc.devices``."""
    mesh = training_mesh(tc.devices, tc.batch_size, n_seeds)
    tx, chunk = _optimizer_and_chunk(mc, _optimizer_settings(tc), mesh)
    k, B, T = tc.steps_per_call, tc.batch_size, mc.context_length
    draw = group_draw(data_fn, k, B, T + 1, mesh, k)
    state = []
    for g in range(groups):
        seeds = range(g * n_seeds, (g + 1) * n_seeds)
        keys = [_keys(TrainConfig(seed=s)) for s in seeds]
        params = [jax.tree.map(np.asarray, init_params(mc, ik)) for ik, _ in keys]
        stacked = jax.tree.map(lambda *xs: np.stack(xs), *params)
        opt = jax.tree.map(lambda *xs: np.stack(xs), *[jax.tree.map(np.asarray, tx.init(p)) for p in params])
        key_data = put(np.stack([np.asarray(jax.random.key_data(dk)) for _, dk in keys]), mesh.replicated)
        state.append([put(stacked, mesh.stacked), put(opt, mesh.stacked), key_data])
    t = time.perf_counter()
    for s in state:  # compile and one call each
        s[0], s[1], losses = chunk(s[0], s[1], draw(s[2], np.int32(0)))
    jax.block_until_ready(losses)
    compile_s = time.perf_counter() - t
    t, calls = time.perf_counter(), 0
    while time.perf_counter() - t < seconds:
        calls += 1
        for s in state:
            s[0], s[1], losses = chunk(s[0], s[1], draw(s[2], np.int32(calls)))
        jax.block_until_ready(losses)
    wall = time.perf_counter() - t
    return calls * groups * n_seeds * k * B * T / wall, compile_s


def train_flops_per_token(mc) -> float:
    """Matrix-multiply FLOPs per training token of the transformer ``mc``: 3x the forward pass's (the backward
    pass computes two products per forward one), which is 2 per weight of every dense layer plus the attention
    scores and mixing (4 H Dh per key, ~(T+1)/2 keys per query on average). Elementwise work is left out, so
    this is a lower bound on the work done."""
    dense = (
        mc.n_layers
        * (mc.d_model * 3 * mc.n_heads * mc.d_head + mc.n_heads * mc.d_head * mc.d_model + 2 * mc.d_model * mc.d_mlp)
        + mc.d_model * mc.vocab_size
    )
    attention = mc.n_layers * 4 * mc.n_heads * mc.d_head * (mc.context_length + 1) / 2
    return 3 * (2 * dense + attention)


def gemm_gflops(n: int = 1024, reps: int = 20) -> float:
    """GFLOP/s of one jitted float32 n x n matrix product on this machine: what large, cache-friendly work
    reaches on the same cores (the ceiling any batching of small models can approach)."""
    a = jax.numpy.ones((n, n), jax.numpy.float32)
    f = jax.jit(lambda x: x @ x)
    f(a).block_until_ready()
    t = time.perf_counter()
    for _ in range(reps):
        f(a).block_until_ready()
    return 2 * n**3 * reps / (time.perf_counter() - t) / 1e9


def devices_main(seconds: float, batch_size: int) -> None:
    """(subprocess) one model on 1 and on 2 forced host devices."""
    hmm, mc, training = mess3_model()
    data = Mess3Data(hmm)
    for n in (1, 2):
        tc = TrainConfig(**{**training, "batch_size": batch_size, "devices": n})
        rate, compile_s = throughput(mc, tc, data, 1, 1, seconds)
        print(
            f"  {n} device{'s' if n > 1 else ' '}: {rate / 1e3:8.1f} k tokens/s (compile {compile_s:.1f} s)", flush=True
        )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10.0, help="timed seconds per measurement (after compiling)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--micro-batch",
        default="auto",
        help='[training] micro_batch of both: "auto" (the default: batches of up to 128 whole) or a '
        "divisor of the batch (the batch itself: whole)",
    )
    p.add_argument("--no-devices", action="store_true", help="skip the 1 vs 2 forced host devices measurement")
    p.add_argument("--devices-subprocess", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.devices_subprocess:
        devices_main(args.seconds, args.batch_size)
        return
    hmm, mc, training = mess3_model()
    micro_batch = args.micro_batch if args.micro_batch == "auto" else int(args.micro_batch)
    tc = TrainConfig(**{**training, "batch_size": args.batch_size, "devices": 1, "micro_batch": micro_batch})
    S = args.seeds
    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; jax {jax.__version__} "
        f"on {jax.devices()[0].platform}"
    )
    print(
        f"the paper's Mess3 model ({mc.n_layers} layers, d_model {mc.d_model}, context {mc.context_length}), "
        f"batch {tc.batch_size}, {tc.steps_per_call} steps per jitted call, {S} seeds"
    )
    data = Mess3Data(hmm)
    seq, seq_compile = throughput(mc, tc, data, 1, S, args.seconds)
    print(
        f"sequential ({S} models, one call each): {seq / 1e3:8.1f} k tokens/s in all (compile {seq_compile:.1f} s)",
        flush=True,
    )
    vm, vm_compile = throughput(mc, tc, data, S, 1, args.seconds)
    used = resolve_micro_batch(tc.micro_batch, tc.batch_size, training_mesh(1, tc.batch_size, S))
    micro = f", micro-batches of {used}" if used else ""
    print(
        f"vmapped    ({S} models, one call{micro}): {vm / 1e3:8.1f} k tokens/s in all (compile {vm_compile:.1f} s)",
        flush=True,
    )
    flops, peak = train_flops_per_token(mc), gemm_gflops()
    print(
        f"work: {flops / 1e3:.0f} k matmul FLOPs per training token; sequential {seq * flops / 1e9:.1f} GFLOP/s, "
        f"vmapped {vm * flops / 1e9:.1f} GFLOP/s, a 1024^3 float32 matrix product {peak:.1f} GFLOP/s: at most "
        f"{peak * 1e9 / (seq * flops):.1f}x over sequential is left for any batching of these models",
        flush=True,
    )
    if not args.no_devices:
        print(
            "one model on forced host devices (subprocess, XLA_FLAGS=--xla_force_host_platform_device_count=2):",
            flush=True,
        )
        env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2", "JAX_PLATFORMS": "cpu"}
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--devices-subprocess",
                "--seconds",
                str(args.seconds),
                "--batch-size",
                str(args.batch_size),
            ],
            env=env,
            check=True,
        )
    print(f"vmapped/sequential: {vm / seq:.2f}x")


if __name__ == "__main__":
    main()
