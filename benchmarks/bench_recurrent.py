"""Benchmark: training throughput of the RNN, GRU and LSTM beside the paper's Mess3 transformer.

    python benchmarks/bench_recurrent.py [--layers 2] [--batch-size 64] [--seconds 3] [--kinds rnn,gru,lstm]

Each recurrent kind gets the d_hidden (with ``--layers`` layers, d_embed = d_hidden) whose parameter
count is closest to the paper's Mess3 transformer (4 layers, d_model 64, d_mlp 256: counted from its
`init_params`); the counts are printed. Throughput is optimizer steps of the project's default
optimizer (`make_optimizer(TrainConfig())`: AdamW with warm-up and cosine decay) at context 10,
``steps_per_call`` steps fused in one jitted ``lax.scan``, timed after compilation over about
``--seconds`` seconds; the batches are sampled beforehand (sampling is not timed). All four models
go through the same step function, so the ratios compare architectures only. Then the time to
compute every layer's hidden state for all 3^10 contexts (what the exact-regime probe phase needs).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from flax import nnx  # noqa: E402

from hmm_processes import get_process, sample  # noqa: E402
from predictive_models import recurrent, transformer  # noqa: E402
from predictive_models.training import TrainConfig, make_optimizer, train_chunk  # noqa: E402


def matched_config(
    kind: str, n_layers: int, target: int, vocab_size: int, context_length: int
) -> recurrent.RecurrentConfig:
    """The config of ``kind`` whose parameter count is closest to ``target`` (bisection on d_hidden:
    the count grows with it)."""

    def config(d: int) -> recurrent.RecurrentConfig:
        return recurrent.RecurrentConfig(kind, vocab_size, context_length, n_layers, d)

    lo, hi = 1, 4096  # the smallest d with n_params >= target lies in [lo, hi]
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if recurrent.n_params(config(mid)) < target else (lo, mid)
    return min((config(d) for d in (max(lo - 1, 1), lo)), key=lambda c: abs(recurrent.n_params(c) - target))


def steps_per_second(forward, params: dict, tc: TrainConfig, pool: jax.Array, seconds: float) -> tuple[float, float]:
    """(steady-state optimizer steps/s, compile + first call seconds) cycling over ``pool`` [n, k, B, T+1]."""
    tx = make_optimizer(tc)
    chunk = train_chunk(forward, tx)
    params = jax.tree.map(jnp.asarray, params)
    opt_state = tx.init(params)
    t = time.perf_counter()
    params, opt_state, losses = chunk(params, opt_state, pool[0])
    jax.block_until_ready(losses)
    compile_s = time.perf_counter() - t
    t, n = time.perf_counter(), 0
    while time.perf_counter() - t < seconds:
        params, opt_state, losses = chunk(params, opt_state, pool[n % pool.shape[0]])
        jax.block_until_ready(losses)
        n += 1
    return n * tc.steps_per_call / (time.perf_counter() - t), compile_s


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layers", type=int, default=2, help="recurrent layers (d_hidden is then matched)")
    p.add_argument("--batch-size", type=int, default=TrainConfig().batch_size)
    p.add_argument("--steps-per-call", type=int, default=TrainConfig().steps_per_call)
    p.add_argument("--seconds", type=float, default=3.0, help="timed seconds per model, after compilation")
    p.add_argument("--kinds", default="transformer,rnn,gru,lstm", help="comma-separated models to time")
    args = p.parse_args(argv)

    hmm = get_process("mess3", x=0.05, alpha=0.85)
    T, B, k = 10, args.batch_size, args.steps_per_call
    tc = TrainConfig(steps=100 * k, batch_size=B, steps_per_call=k, eval_every=k, checkpoint_every=k)
    pool = sample(
        hmm, jax.random.key(0), 4 * k * B, T + 1, with_beliefs=False, with_next_token_probs=False
    ).tokens.reshape(4, k, B, T + 1)
    tconf = transformer.TransformerConfig(vocab_size=hmm.vocab_size, context_length=T)
    target = int(sum(leaf.size for leaf in jax.tree.leaves(transformer.init_params(tconf, 0))))
    print(
        f"paper's Mess3 transformer (4 layers, d_model 64, d_mlp 256): {target:,} parameters; "
        f"batch {B} x context {T}, {k} steps per jitted call, {jax.devices()[0].platform}"
    )
    print(f"{'model':<12} {'layers':>6} {'d_hidden':>8} {'params':>9} {'steps/s':>8} {'k tokens/s':>10} {'compile':>8}")
    configs = []
    for kind in args.kinds.split(","):
        if kind == "transformer":
            gdef = transformer.graphdef(tconf)
            forward, params = (lambda q, x, gdef=gdef: nnx.merge(gdef, q)(x)), transformer.init_params(tconf, 0)
            layers, width, count = tconf.n_layers, tconf.d_model, target
        else:
            rc = matched_config(kind, args.layers, target, hmm.vocab_size, T)
            forward, params = recurrent.logits_fn(rc), recurrent.init_params(rc, 0)
            layers, width, count = rc.n_layers, rc.d_hidden, recurrent.n_params(rc)
        rate, compile_s = steps_per_second(forward, params, tc, pool, args.seconds)
        print(
            f"{kind:<12} {layers:>6} {width:>8} {count:>9,} {rate:>8.1f} {rate * B * T / 1e3:>10.1f} "
            f"{compile_s:>7.1f}s",
            flush=True,
        )
        if kind != "transformer":
            configs.append(rc)
    words = np.array(np.meshgrid(*[np.arange(hmm.vocab_size)] * T, indexing="ij")).reshape(T, -1).T.astype(np.int32)
    for rc in configs:  # the probe phase's work in the exact regime
        params = recurrent.init_params(rc, 0)
        times = []
        for _ in range(2):
            t = time.perf_counter()
            acts = recurrent.activations(rc, params, words)
            times.append(time.perf_counter() - t)
        print(
            f"{rc.kind}: hidden states of all {words.shape[0]:,} length-{T} contexts x {len(acts)} layers "
            f"({sum(a.nbytes for a in acts.values()) / 2**20:.0f} MiB): {times[1]:.2f} s "
            f"({times[0]:.2f} s with compile)"
        )


if __name__ == "__main__":
    main()
