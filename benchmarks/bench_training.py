"""Benchmark: train the paper's Mess3 model and report throughput and time to a relative loss.

    python benchmarks/bench_training.py [--seconds N] [--steps S] [--batch-size B] [--lr LR] ...

Prints training throughput (tokens/s, steps/s, compile time excluded where measured) and the
wall time at which the exact relative loss (CE / Bayes-optimal CE, averaged over the 10 context
positions) first reached 1.01 and 1.001. Benchmarks may tie packages together: this one uses
`hmm_processes` for sampling and `compmech` for the exact evaluation set.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import numpy as np  # noqa: E402

from compmech import mixed_states, optimal_loss_by_position  # noqa: E402
from hmm_processes import get_process, sample  # noqa: E402
from predictive_models import ExactEvalSet, TrainConfig, TransformerConfig, exact_eval, train  # noqa: E402


def mess3_setup(context_length: int = 10, x: float = 0.05, alpha: float = 0.85):
    hmm = get_process("mess3", x=x, alpha=alpha)
    ms = mixed_states(hmm, context_length)
    lvl = ms.level(context_length)
    eval_set = ExactEvalSet(
        tokens=lvl.words.astype(np.int32),
        weights=lvl.probs,
        next_token_probs=ms.prefix_next_token_probs(context_length),
        optimal_loss=optimal_loss_by_position(hmm, context_length),
    )

    def data_fn(key: jax.Array, n: int, length: int) -> jax.Array:
        return sample(hmm, key, n, length, with_beliefs=False, with_next_token_probs=False).tokens

    return hmm, eval_set, data_fn


def main(argv: list[str] | None = None) -> None:
    defaults = TrainConfig()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="train for about this many seconds: --steps is set from the measured throughput, "
        "so the whole warm-up + cosine schedule fits",
    )
    p.add_argument("--steps", type=int, default=defaults.steps)
    p.add_argument("--batch-size", type=int, default=defaults.batch_size)
    p.add_argument("--lr", type=float, default=defaults.learning_rate)
    p.add_argument("--warmup", type=int, default=defaults.warmup_steps)
    p.add_argument("--final-lr-fraction", type=float, default=defaults.final_lr_fraction)
    p.add_argument("--schedule", default=defaults.schedule)
    p.add_argument("--optimizer", default=defaults.optimizer)
    p.add_argument("--grad-clip", type=float, default=defaults.grad_clip, help="0: no clipping")
    p.add_argument("--steps-per-call", type=int, default=defaults.steps_per_call)
    p.add_argument("--eval-every", type=int, default=defaults.eval_every)
    p.add_argument("--seed", type=int, default=defaults.seed)
    p.add_argument("--progress", action="store_true", help="show the progress bar")
    p.add_argument("--no-train", action="store_true", help="only measure throughput and the activations")
    args = p.parse_args(argv)

    t0 = time.perf_counter()
    hmm, eval_set, data_fn = mess3_setup()
    mc = TransformerConfig(vocab_size=hmm.vocab_size)
    print(
        f"exact eval set: {eval_set.tokens.shape[0]} contexts, optimal loss "
        f"{eval_set.optimal_loss.mean():.4f} nats ({time.perf_counter() - t0:.2f} s to build)"
    )

    steps = args.steps
    k = args.steps_per_call
    probe = TrainConfig(batch_size=args.batch_size, steps_per_call=k, seed=args.seed)
    t = time.perf_counter()
    rate = _steps_per_second(mc, probe, data_fn)
    print(
        f"throughput: {rate:.1f} steps/s = {rate * args.batch_size * mc.context_length / 1e3:.1f} k tokens/s "
        f"(batch {args.batch_size}, {k} steps per jitted call, sampling included, no evaluation; "
        f"{time.perf_counter() - t:.1f} s with compile)"
    )
    if args.seconds is not None:  # fit the whole schedule into the time (evaluations not counted)
        steps = max(k, int(args.seconds * rate) // k * k)
    _time_activations(mc, data_fn, eval_set)
    if args.no_train:
        return
    eval_every = max(k, args.eval_every // k * k)
    tc = TrainConfig(
        steps=steps,
        batch_size=args.batch_size,
        optimizer=args.optimizer,
        learning_rate=args.lr,
        warmup_steps=min(args.warmup, steps),
        schedule=args.schedule,
        final_lr_fraction=args.final_lr_fraction,
        grad_clip=args.grad_clip or None,
        steps_per_call=k,
        eval_every=eval_every,
        checkpoint_every=eval_every,
        seed=args.seed,
    )
    print(
        f"config: {tc}\n(relative loss is evaluated every {eval_every} steps: times below are at that "
        f"granularity and include compilation)"
    )
    t = time.perf_counter()
    result = train(mc, tc, data_fn, eval_set, progress=args.progress)
    wall = time.perf_counter() - t
    hist = result.history
    tokens_per_step = tc.batch_size * mc.context_length
    print(f"\n{'step':>7} {'tokens':>9} {'elapsed':>8} {'train':>7} {'rel loss':>9}")
    for rec in hist:
        tl = f"{rec['train_loss']:.4f}" if rec["train_loss"] is not None else "   -  "
        print(f"{rec['step']:>7} {rec['tokens']:>9} {rec['elapsed_s']:>7.1f}s {tl:>7} {rec['relative_loss']:>9.5f}")
    for target in (1.01, 1.0015, 1.001):
        hit = next((r for r in hist if r["relative_loss"] <= target), None)
        print(
            f"relative loss <= {target}: "
            + (f"at step {hit['step']}, {hit['elapsed_s']:.1f} s" if hit else "not reached")
        )
    print(
        f"final: relative loss {result.final['relative_loss']:.5f} "
        f"(by position {np.round(result.final['relative_loss_by_position'], 4).tolist()}), "
        f"{tc.steps} steps in {wall:.1f} s wall = {tc.steps * tokens_per_step / wall / 1e3:.1f} k tokens/s "
        f"including compile and {len(hist)} evaluations"
    )


def _time_activations(mc: TransformerConfig, data_fn, eval_set: ExactEvalSet) -> None:
    """Residual stream of every length-10 context (3^10 of them), and one exact evaluation."""
    from predictive_models import compute_activations
    from predictive_models.transformer import init_params

    params = init_params(mc, 0)
    for attempt in ("first call, with compile", "second call"):
        t = time.perf_counter()
        acts = compute_activations(mc, params, eval_set.tokens)
        dt = time.perf_counter() - t
        print(
            f"activations of all {eval_set.tokens.shape[0]} contexts x {len(acts)} layers "
            f"({sum(a.nbytes for a in acts.values()) / 2**20:.0f} MiB): {dt:.2f} s ({attempt})"
        )
        del acts
    t = time.perf_counter()
    exact_eval(mc, params, eval_set)
    print(f"one exact evaluation: {time.perf_counter() - t:.2f} s")


def _steps_per_second(mc: TransformerConfig, tc: TrainConfig, data_fn) -> float:
    """Steady-state optimizer steps per second (data drawn and training, no evaluation)."""
    from predictive_models.training import _draw, make_optimizer, make_train_chunk
    from predictive_models.transformer import init_params

    tx = make_optimizer(tc)
    chunk = make_train_chunk(mc, tx)
    params = jax.tree.map(jax.numpy.asarray, init_params(mc, 0))
    opt_state = tx.init(params)
    k, B = tc.steps_per_call, tc.batch_size
    key = jax.random.key(0)
    batches = _draw(data_fn, key, k, B, mc.context_length + 1, mc.vocab_size, check=False)
    jax.block_until_ready(chunk(params, opt_state, batches))
    t, n = time.perf_counter(), 0
    while time.perf_counter() - t < 3.0:
        batches = _draw(data_fn, jax.random.fold_in(key, n), k, B, mc.context_length + 1, mc.vocab_size, check=False)
        params, opt_state, losses = chunk(params, opt_state, batches)
        jax.block_until_ready(losses)
        n += 1
    return n * k / (time.perf_counter() - t)


if __name__ == "__main__":
    main()
