"""Benchmark: XLA's CPU flags on the paper's Mess3 training step, each in a fresh process, alternated.

    python benchmarks/bench_xla_flags.py [--rounds 2] [--seconds 5] [--batch-sizes 64 512]

For each round, every flag set below (and the default, first and last) trains the model of
`compmech/experiments/mess3.toml` for ``--seconds`` on pre-drawn token blocks, in its own process with ``XLA_FLAGS`` set
(XLA reads its flags once, at start-up), and prints tokens/s at each batch size (batch 512 in micro-batches of 128, as
`compmech run`'s ``micro_batch = "auto"`` trains it on a CPU). Compile time is excluded. Readings on a shared machine
vary by 10-20%: compare a flag with the default readings of the same round.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench_training's Mess3 setup

#: name -> XLA_FLAGS tried (the empty string: XLA's defaults)
FLAG_SETS = {
    "default": "",
    "xnnpack": "--xla_cpu_use_xnnpack=true",
    "vector width 256": "--xla_cpu_prefer_vector_width=256",
    "single-threaded Eigen": "--xla_cpu_multi_thread_eigen=false",
}


def measure(batch_sizes: list[int], seconds: float) -> list[float]:
    """Tokens/s of the training step at each batch size, in this process (with its XLA_FLAGS)."""
    import jax
    import jax.numpy as jnp
    from bench_training import mess3_setup

    from predictive_models import TrainConfig, TransformerConfig
    from predictive_models.models import logits_fn
    from predictive_models.training import CPU_MICRO_ROWS, _chunk_fn, _draw, make_optimizer
    from predictive_models.transformer import init_params

    hmm, _, data_fn = mess3_setup()
    mc = TransformerConfig(vocab_size=hmm.vocab_size)
    rates = []
    for B in batch_sizes:
        k = max(1, 3200 // B)  # steps per jitted call: about 3,200 sequences a call
        tx = make_optimizer(TrainConfig(batch_size=B, steps_per_call=k, eval_every=k, checkpoint_every=k))
        chunk = jax.jit(_chunk_fn(logits_fn(mc), tx, CPU_MICRO_ROWS if B > CPU_MICRO_ROWS else None))
        params = jax.tree.map(jnp.asarray, init_params(mc, 0))
        opt = tx.init(params)
        blocks = _draw(data_fn, jax.random.key(0), k, B, mc.context_length + 1, mc.vocab_size, check=False)
        jax.block_until_ready(chunk(params, opt, blocks))  # compile
        start, calls = time.perf_counter(), 0
        while time.perf_counter() - start < seconds:
            params, opt, losses = chunk(params, opt, blocks)
            jax.block_until_ready(losses)
            calls += 1
        rates.append(calls * k * B * mc.context_length / (time.perf_counter() - start))
    return rates


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--seconds", type=float, default=5.0, help="timed training per reading")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 512])
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(" ".join(f"{r:.1f}" for r in measure(args.batch_sizes, args.seconds)))
        return
    import jax

    print(
        f"jax {jax.__version__} on {jax.devices()[0].platform}; load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores; tokens/s at batch {' and '.join(map(str, args.batch_sizes))}"
    )
    order = [*FLAG_SETS, "default"]
    for r in range(args.rounds):
        for name in order:
            env = {**os.environ, "XLA_FLAGS": FLAG_SETS[name]}
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    "--seconds",
                    str(args.seconds),
                    "--batch-sizes",
                    *map(str, args.batch_sizes),
                ],
                env=env,
                capture_output=True,
                text=True,
            )
            if out.returncode:
                print(f"round {r + 1} {name:22s} failed: {out.stderr.strip().splitlines()[-1:]}")
                continue
            rates = [float(x) for x in out.stdout.split()]
            print(
                f"round {r + 1} {name:22s} "
                + "  ".join(f"{x / 1e3:6.1f}k" for x in rates)
                + (f"   ({FLAG_SETS[name]})" if FLAG_SETS[name] else ""),
                flush=True,
            )


if __name__ == "__main__":
    main()
