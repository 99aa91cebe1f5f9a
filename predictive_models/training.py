"""Training loop: fresh sequences every step, fused jitted steps, exact (or sampled) evaluation, resumable runs.

One loop you can read in a minute (`train`): draw a block of batches, run ``steps_per_call``
optimizer steps in one jitted ``lax.scan``, evaluate the exact expected loss every
``eval_every`` steps, checkpoint every ``checkpoint_every`` steps. Data for call ``c`` depends only
on ``(seed, c)``, so a resumed run is bit-identical to an uninterrupted one.

`train` is `train_seeds` with one seed: S models that differ only in seed train in one vmapped jitted call,
on a device mesh (`predictive_models.parallel`: seeds and batch split over the devices of ``devices``, every
device drawing its own shard of the same global batch), each seed with its own run directory.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeGuard

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, serialization

from predictive_models.checkpoint import CheckpointError, atomic_write_bytes, load_checkpoint, save_checkpoint
from predictive_models.models import (
    ModelConfig,
    compute_log_probs,
    config_from_dict,
    config_to_dict,
    graphdef,
    init_params,
    is_model_config,
    logits_fn,
    to_state,
)
from predictive_models.parallel import TrainingMesh, check_devices, put, to_host, training_mesh

DataFn = Callable[[jax.Array, int, int], jax.Array]
"""(key, n_sequences, length) -> tokens [n_sequences, length] int32. Must be a pure function of the key; a JAX one
(traceable under jit) is drawn on the devices, each its own shard, a NumPy one on the host."""

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class TrainConfig:
    """How to train. ``tokens`` seen = step * batch_size * context_length.

    The defaults suit the paper's Mess3 model (4 layers, d_model 64) on a 2-core CPU: measured
    there, ~140 steps/s at batch 64 (~90k tokens/s), relative loss <= 1.01 after ~1000 steps
    (~15 s), <= 1.0015 after ~10-11k steps (~1.5 min) and 1.0002 at the end of the 20000 steps
    (2.5-3 min wall, evaluations included). Batch 512 trains at about half the tokens/s.
    """

    steps: int = 20000  # optimizer steps
    batch_size: int = 64  # sequences per step (fresh samples each step)
    optimizer: str = "adam"  # "adam" | "adamw" | "sgd"
    learning_rate: float = 3e-3  # the peak learning rate, reached after the warm-up
    warmup_steps: int = 500  # steps of linear warm-up from 0
    schedule: str = "cosine"  # "cosine" (decay to final_lr_fraction * lr) | "constant"
    final_lr_fraction: float = 0.0  # the cosine schedule ends at this fraction of learning_rate
    weight_decay: float = 0.0  # weight decay: decoupled with "adamw", added to the gradient with "sgd"; not with "adam"
    grad_clip: float | None = 1.0  # clip the gradient's global norm to this (None: no clipping)
    steps_per_call: int = 50  # optimizer steps fused in one jitted lax.scan
    # Sequences per gradient micro-batch: each step's gradient is the mean of batch_size / micro_batch
    # micro-batch gradients summed in a lax.scan (`micro_batch_grads`): the same step up to float32 summation
    # order, with m-fold fewer activations alive at once, so a large batch's backward pass stays in cache (on
    # 2 CPU cores batch 512 trains ~1.2x faster in micro-batches of 128). A divisor of batch_size (and a
    # multiple of the devices the batch is split over; batch_size itself: the whole batch in one pass), or
    # "auto" (`resolve_micro_batch`): on a CPU at most CPU_MICRO_ROWS = 128 sequences at a time, on a GPU or
    # TPU the whole batch. Batches of up to 128 sequences are never cut.
    micro_batch: int | str = "auto"
    eval_every: int = 1000  # steps between exact evaluations (plus step 0 and the last step)
    checkpoint_every: int = 2000  # steps between resumable checkpoints (plus the last step)
    save_at_tokens: tuple[int, ...] = ()  # extra named checkpoints: tokens_{N}.msgpack
    seed: int = 0  # data and initialisation streams are split from it
    # Where the step runs: "all" visible devices (every process's under jax.distributed; in one process the
    # most of them the batch divides over) or N (the first N). The batch is split over the devices on a
    # mesh axis "data" (`predictive_models.parallel`); the global batch, and so the run, is the same on any
    # number of devices up to float32 reduction order. Not part of a run's identity: a checkpoint written
    # on N devices resumes on M.
    devices: int | str = "all"

    def __post_init__(self) -> None:
        def fail(name: str, fix: str) -> None:
            raise ValueError(f"TrainConfig.{name} = {getattr(self, name)!r} is invalid: {fix}.")

        def is_int(v: Any) -> TypeGuard[int | np.integer]:
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

        def is_num(v: Any) -> bool:
            return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)

        for name in ("steps", "batch_size", "steps_per_call", "eval_every", "checkpoint_every"):
            if not is_int(getattr(self, name)) or getattr(self, name) < 1:
                fail(name, "pass a positive integer")
        for name in ("warmup_steps", "seed"):
            if not is_int(getattr(self, name)) or getattr(self, name) < 0:
                fail(name, "pass a non-negative integer")
        if self.optimizer not in OPTIMIZERS:
            fail("optimizer", f"pass one of {OPTIMIZERS}")
        if self.schedule not in SCHEDULES:
            fail("schedule", f"pass one of {SCHEDULES}")
        if not is_num(self.learning_rate) or not (0 < self.learning_rate < math.inf):
            fail("learning_rate", "pass a positive finite number")
        if not is_num(self.final_lr_fraction) or not (0 <= self.final_lr_fraction <= 1):
            fail("final_lr_fraction", "pass a number in [0, 1]")
        if not is_num(self.weight_decay) or not (0 <= self.weight_decay < math.inf):
            fail("weight_decay", "pass a non-negative number")
        if self.weight_decay > 0 and self.optimizer == "adam":
            fail("weight_decay", "Adam has no weight decay here; use optimizer='adamw' or weight_decay=0")
        if self.grad_clip is not None and (not is_num(self.grad_clip) or not (0 < self.grad_clip < math.inf)):
            fail("grad_clip", "pass a positive number, or None for no clipping")
        if self.micro_batch != "auto" and (
            not is_int(self.micro_batch) or self.micro_batch < 1 or self.batch_size % self.micro_batch
        ):
            fail(
                "micro_batch",
                f'pass "auto" or a positive divisor of batch_size ({self.batch_size}; '
                "batch_size itself for the whole batch in one pass)",
            )
        for name in ("eval_every", "checkpoint_every"):
            if getattr(self, name) % self.steps_per_call:
                fail(
                    name,
                    f"pass a multiple of steps_per_call ({self.steps_per_call}); events happen between fused calls",
                )
        tokens = self.save_at_tokens
        if isinstance(tokens, (int, np.integer)) or not all(is_int(n) and n >= 0 for n in tokens):
            fail("save_at_tokens", "pass a sequence of non-negative integers (token counts)")
        object.__setattr__(self, "save_at_tokens", tuple(sorted({int(n) for n in tokens})))
        for name in ("learning_rate", "final_lr_fraction", "weight_decay"):
            object.__setattr__(self, name, float(getattr(self, name)))
        if self.grad_clip is not None:
            object.__setattr__(self, "grad_clip", float(self.grad_clip))
        if self.micro_batch != "auto":
            object.__setattr__(self, "micro_batch", int(self.micro_batch))
        check_devices(self.devices)
        if not isinstance(self.devices, str):
            object.__setattr__(self, "devices", int(self.devices))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["save_at_tokens"] = list(self.save_at_tokens)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"TrainConfig: unknown field(s) {sorted(unknown)}; known fields are {sorted(known)}.")
        d = dict(d)
        if "save_at_tokens" in d:
            d["save_at_tokens"] = tuple(d["save_at_tokens"])
        return cls(**d)


# ---------------------------------------------------------------------------- exact evaluation


def _check_eval_arrays(what: str, tokens: np.ndarray, probs: np.ndarray) -> tuple[int, int]:
    """An eval set's tokens [N, T] (integers in the vocabulary) and next-token laws [N, T, V]; returns (N, T)."""
    if tokens.ndim != 2 or not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"{what}.tokens must be an integer array [N, T]; got {tokens.dtype} {tokens.shape}.")
    N, T = tokens.shape
    if probs.ndim != 3 or probs.shape[:2] != (N, T):
        raise ValueError(f"{what}.next_token_probs must have shape [N, T, V] = ({N}, {T}, V); got {probs.shape}.")
    if np.any(probs < 0) or not np.allclose(probs.sum(-1), 1.0, atol=1e-5):
        raise ValueError(f"{what}.next_token_probs rows must be probability vectors over the vocabulary.")
    if tokens.size and (tokens.min() < 0 or tokens.max() >= probs.shape[2]):
        raise ValueError(f"{what}.tokens must lie in [0, {probs.shape[2]}) (V from next_token_probs).")
    return N, T


@dataclass(frozen=True, eq=False)
class ExactEvalSet:
    """Every context of the model's length, weighted by its probability: exact expected cross-entropy."""

    tokens: np.ndarray  # [N, T] int, every allowed length-T string
    weights: np.ndarray  # [N] float64, P(string), sums to 1
    next_token_probs: np.ndarray  # [N, T, V] float64, true P(next token | tokens[:, :t+1])
    optimal_loss: np.ndarray | None = None  # [T] nats, Bayes-optimal CE by position; None: computed

    def __post_init__(self) -> None:
        tokens = np.asarray(self.tokens)
        weights = np.asarray(self.weights, np.float64)
        probs = np.asarray(self.next_token_probs, np.float64)
        N, T = _check_eval_arrays("ExactEvalSet", tokens, probs)
        if weights.shape != (N,):
            raise ValueError(f"ExactEvalSet.weights must have shape [N] = ({N},); got {weights.shape}.")
        if np.any(weights < 0) or not np.isclose(weights.sum(), 1.0, atol=1e-6):
            raise ValueError(f"ExactEvalSet.weights must be probabilities summing to 1; sum is {weights.sum()!r}.")
        # Bayes-optimal CE at position t: E over contexts of the entropy of the true next-token law.
        entropy = -np.sum(np.where(probs > 0, probs * np.log(np.where(probs > 0, probs, 1.0)), 0.0), axis=-1)
        implied = weights @ entropy  # [T] nats
        if self.optimal_loss is None:
            optimal = implied
        else:
            optimal = np.asarray(self.optimal_loss, np.float64)
            if optimal.shape != (T,):
                raise ValueError(f"ExactEvalSet.optimal_loss must have shape [T] = ({T},); got {optimal.shape}.")
            if not np.allclose(optimal, implied, rtol=1e-4, atol=1e-6):
                raise ValueError(
                    "ExactEvalSet.optimal_loss disagrees with the entropy of next_token_probs under weights "
                    f"({np.round(optimal, 6).tolist()} vs {np.round(implied, 6).tolist()}): check that "
                    "next_token_probs[:, t] is P(next | tokens[:, :t+1]) (no shift by one), or pass None."
                )
        object.__setattr__(self, "tokens", tokens)
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "next_token_probs", probs)
        object.__setattr__(self, "optimal_loss", optimal)

    @property
    def vocab_size(self) -> int:
        return int(self.next_token_probs.shape[2])


def loss_record(loss: np.ndarray, optimal: np.ndarray) -> dict[str, Any]:
    """The metrics.jsonl fields of a loss by position [T] (nats) against the optimal loss [T]: means,
    per-position lists, and relative loss = loss / optimal (1 is Bayes-optimal). Plain floats; a relative loss
    whose optimum is 0 (a position where the next token is determined) is None: undefined, never Infinity."""

    def ratio(a: float, b: float) -> float | None:
        return float(a / b) if b > 0 else None

    return {
        "loss": float(loss.mean()),
        "loss_by_position": [float(x) for x in loss],
        "optimal_loss": float(optimal.mean()),
        "optimal_loss_by_position": [float(x) for x in optimal],
        "relative_loss": ratio(loss.mean(), optimal.mean()),
        "relative_loss_by_position": [ratio(a, b) for a, b in zip(loss, optimal)],
    }


def json_line(record: dict[str, Any]) -> str:
    """One metrics.jsonl line: strict JSON, a NaN or infinite number written as null (NaN and Infinity are not
    JSON)."""

    def finite(v: Any) -> Any:
        if isinstance(v, float):
            return v if math.isfinite(v) else None
        if isinstance(v, dict):
            return {k: finite(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [finite(x) for x in v]
        return v

    return json.dumps(finite(record), allow_nan=False) + "\n"


class TrainingDiverged(ValueError):
    """The loss or the parameters turned non-finite (NaN or infinite): training stopped at once, the last good
    checkpoint kept."""


def exact_eval(config: ModelConfig, params_state: Any, eval_set: ExactEvalSet) -> dict[str, Any]:
    """Exact expected next-token cross-entropy of the model over every context, in nats.

    loss_by_position[t] = sum_n w_n sum_x p[n, t, x] * (-log softmax(logits[n, t])[x]);
    relative loss = loss / Bayes-optimal loss (1 is perfect). Returns plain floats and lists.
    ``params_state``: an ``nnx.State``, the model, or a pure dict of parameters.
    """
    if eval_set.vocab_size != config.vocab_size:
        raise ValueError(f"eval_set has vocabulary {eval_set.vocab_size}, the model {config.vocab_size}.")
    log_q = compute_log_probs(config, params_state, eval_set.tokens)  # [N, T, V] float32
    loss = -np.einsum("n,ntx,ntx->t", eval_set.weights, eval_set.next_token_probs, log_q.astype(np.float64))
    assert eval_set.optimal_loss is not None  # set by ExactEvalSet.__post_init__
    return loss_record(loss, eval_set.optimal_loss)


@dataclass(frozen=True, eq=False)
class SampledEvalSet:
    """A fixed held-out sample of sequences with their exact next-token laws: for contexts too many to enumerate.

    The loss at position t is the mean over the N sequences of the cross-entropy of the model against
    the exact next-token law, -Σ_x p[n, t, x] log q[n, t, x], an unbiased estimate of the expected loss
    (the sequences being drawn from the process), reported with its standard error std_n / sqrt(N).
    ``optimal_loss`` is the exact Bayes-optimal loss by position (the myopic entropy, from theory), not
    estimated from the sample, so relative loss = loss / optimal has the sample's error only.
    """

    tokens: np.ndarray  # [N, T] int, sampled sequences (held out: not drawn from the training stream)
    next_token_probs: np.ndarray  # [N, T, V] float64, true P(next token | tokens[:, :t+1])
    optimal_loss: np.ndarray  # [T] nats, exact Bayes-optimal CE by position

    def __post_init__(self) -> None:
        tokens = np.asarray(self.tokens)
        probs = np.asarray(self.next_token_probs, np.float64)
        optimal = np.asarray(self.optimal_loss, np.float64)
        N, T = _check_eval_arrays("SampledEvalSet", tokens, probs)
        if N < 2:
            raise ValueError(f"SampledEvalSet needs at least 2 sequences for a standard error; got {N}.")
        if optimal.shape != (T,) or not np.all(np.isfinite(optimal)) or np.any(optimal <= 0):
            raise ValueError(
                f"SampledEvalSet.optimal_loss must be positive finite nats of shape [T] = ({T},); "
                f"got shape {optimal.shape}."
            )
        object.__setattr__(self, "tokens", tokens)
        object.__setattr__(self, "next_token_probs", probs)
        object.__setattr__(self, "optimal_loss", optimal)

    @property
    def vocab_size(self) -> int:
        return int(self.next_token_probs.shape[2])


def sampled_eval(
    config: ModelConfig, params_state: Any, eval_set: SampledEvalSet, batch_size: int = 1024
) -> dict[str, Any]:
    """Next-token cross-entropy on a fixed sample (nats), by position, with standard errors.

    The keys of `exact_eval`, plus ``loss_stderr``, ``loss_by_position_stderr``, ``relative_loss_stderr``,
    ``relative_loss_by_position_stderr`` and ``n_sequences``. The mean over positions is taken per
    sequence first, so its standard error counts the correlation between positions.
    """
    if eval_set.vocab_size != config.vocab_size:
        raise ValueError(f"eval_set has vocabulary {eval_set.vocab_size}, the model {config.vocab_size}.")
    N = eval_set.tokens.shape[0]
    ce = np.empty(eval_set.tokens.shape)  # [N, T] per-sequence cross-entropy against the exact law
    for a in range(0, N, batch_size):
        log_q = compute_log_probs(config, params_state, eval_set.tokens[a : a + batch_size], method="full")
        ce[a : a + batch_size] = -np.einsum(
            "ntx,ntx->nt", eval_set.next_token_probs[a : a + batch_size], log_q.astype(np.float64)
        )
    loss = ce.mean(axis=0)  # [T]
    stderr = ce.std(axis=0, ddof=1) / np.sqrt(N)  # [T]
    per_seq = ce.mean(axis=1)  # [N]
    mean_stderr = float(per_seq.std(ddof=1) / np.sqrt(N))
    optimal = eval_set.optimal_loss
    return {
        **loss_record(loss, optimal),
        "loss_stderr": mean_stderr,
        "loss_by_position_stderr": [float(x) for x in stderr],
        "relative_loss_stderr": mean_stderr / float(optimal.mean()),
        "relative_loss_by_position_stderr": [float(x) for x in stderr / optimal],
        "n_sequences": int(N),
    }


def evaluate_model(config: ModelConfig, params_state: Any, eval_set: ExactEvalSet | SampledEvalSet) -> dict[str, Any]:
    """`exact_eval` or `sampled_eval`, whichever the eval set is for."""
    if isinstance(eval_set, SampledEvalSet):
        return sampled_eval(config, params_state, eval_set)
    if isinstance(eval_set, ExactEvalSet):
        return exact_eval(config, params_state, eval_set)
    raise TypeError(f"eval_set must be an ExactEvalSet or a SampledEvalSet; got {type(eval_set).__name__}.")


# ---------------------------------------------------------------------------- optimizer and step


def learning_rate_schedule(tc: TrainConfig) -> optax.Schedule:
    """Linear warm-up from 0 to ``learning_rate``, then cosine decay to ``final_lr_fraction * lr``
    at ``steps`` (or constant)."""
    lr = tc.learning_rate
    if tc.schedule == "cosine":
        return optax.warmup_cosine_decay_schedule(
            init_value=0.0,
            peak_value=lr,
            warmup_steps=tc.warmup_steps,
            decay_steps=max(tc.steps, tc.warmup_steps + 1),
            end_value=lr * tc.final_lr_fraction,
        )
    if tc.warmup_steps == 0:
        return optax.constant_schedule(lr)
    return optax.join_schedules(
        [optax.linear_schedule(0.0, lr, tc.warmup_steps), optax.constant_schedule(lr)], [tc.warmup_steps]
    )


def make_optimizer(tc: TrainConfig) -> optax.GradientTransformation:
    """clip_by_global_norm (if grad_clip) then Adam / AdamW / SGD on the warm-up + decay schedule."""
    schedule = learning_rate_schedule(tc)
    parts = [optax.clip_by_global_norm(tc.grad_clip)] if tc.grad_clip is not None else []
    if tc.optimizer == "adam":
        parts.append(optax.adam(schedule))
    elif tc.optimizer == "adamw":
        parts.append(optax.adamw(schedule, weight_decay=tc.weight_decay))
    else:
        if tc.weight_decay:
            parts.append(optax.add_decayed_weights(tc.weight_decay))
        parts.append(optax.sgd(schedule))
    return optax.chain(*parts)


def _chunk_fn(
    forward: Callable[[dict, jax.Array], jax.Array],
    tx: optax.GradientTransformation,
    micro_batch: int | None = None,
    data_shards: int = 1,
):
    """The pure function (params, opt_state, batches [k, B, T+1]) -> (params, opt_state, losses [k]): k optimizer
    steps in one ``lax.scan`` on the next-token cross-entropy of ``forward(params, tokens [B, T]) -> logits
    [B, T, V]`` (it reads x_1..x_T and predicts x_2..x_{T+1}). Not jitted: `train_chunk` and `group_chunk` jit it.

    ``micro_batch`` (a divisor of B, a multiple of ``data_shards``): each step's loss and gradient are the means
    over B / micro_batch micro-batches, summed in a ``lax.scan`` (`micro_batch_grads`); None: the whole batch."""

    def loss_fn(params: dict, batch: jax.Array) -> jax.Array:  # batch [B, T+1]
        logits = forward(params, batch[:, :-1])  # [B, T, V]
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch[:, 1:]).mean()

    value_and_grad = micro_batch_grads(jax.value_and_grad(loss_fn), micro_batch, data_shards)

    def step(carry, batch):
        params, opt_state = carry
        loss, grads = value_and_grad(params, batch)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

    def chunk(params: dict, opt_state: Any, batches: jax.Array):
        (new_params, opt_state), losses = jax.lax.scan(step, (params, opt_state), batches)
        return new_params, opt_state, losses

    return chunk


def micro_batch_grads(
    value_and_grad: Callable[[dict, jax.Array], tuple[jax.Array, Any]], micro_batch: int | None, data_shards: int = 1
) -> Callable[[dict, jax.Array], tuple[jax.Array, Any]]:
    """``value_and_grad`` (params, batch [B, L]) -> (mean loss, its gradient) computed micro-batch by micro-batch.

    The batch is cut into m = B / micro_batch equal micro-batches and their losses and gradients are summed in a
    ``lax.scan``, then divided by m: the mean over equal parts is the mean over the batch, so the step is the same
    up to float32 summation order, while the activations alive at once shrink m-fold (on a CPU the large-batch
    backward pass then stays in cache; see `TrainConfig.micro_batch`). Micro-batch j takes micro_batch /
    data_shards consecutive rows from each of the ``data_shards`` equal blocks the mesh splits the batch into, so
    every micro-batch stays spread over the devices. None, or micro_batch >= B: ``value_and_grad`` itself."""
    if micro_batch is None:
        return value_and_grad

    def grads(params: dict, batch: jax.Array) -> tuple[jax.Array, Any]:
        B, L = batch.shape
        if micro_batch >= B:
            return value_and_grad(params, batch)
        m, D = B // micro_batch, data_shards
        parts = batch.reshape(D, m, micro_batch // D, L).swapaxes(0, 1).reshape(m, micro_batch, L)

        def add(total, part):  # part [micro_batch, L]
            return jax.tree.map(jnp.add, total, value_and_grad(params, part)), None

        zero = (jnp.zeros((), jnp.float32), jax.tree.map(jnp.zeros_like, params))
        total, _ = jax.lax.scan(add, zero, parts)
        return jax.tree.map(lambda x: x / np.float32(m), total)

    return grads


def train_chunk(forward: Callable[[dict, jax.Array], jax.Array], tx: optax.GradientTransformation):
    """A jitted pure function (params, opt_state, batches [k, B, T+1]) -> (params, opt_state, losses [k]) for one
    model on the default device (see `_chunk_fn`); `train` uses `group_chunk`, its vmapped and sharded form."""
    return jax.jit(_chunk_fn(forward, tx))


def make_train_chunk(config: ModelConfig, tx: optax.GradientTransformation):
    """`train_chunk` of the model of ``config`` (any family)."""
    return train_chunk(logits_fn(config), tx)


CPU_MICRO_ROWS = 128
"""On a CPU, "auto" micro-batches keep at most this many sequences of a model in one forward and backward pass.
Measured alone on 2 cores (`benchmarks/bench_torch.py --batch-sizes 512 [--micro-batch 512]`): the paper's Mess3
model at batch 512 trained at 60-65k tokens/s in micro-batches of 128 against 48k in one pass. Not applied across
the models of a seed group: 8 seeds vmapped at batch 64 ran at 50k tokens/s whole and 41k in micro-batches of
16 (`benchmarks/bench_seeds.py [--micro-batch 16]`)."""


def resolve_micro_batch(micro_batch: int | str, batch_size: int, mesh: TrainingMesh) -> int | None:
    """The micro-batch the step uses (None: the whole batch) for ``TrainConfig.micro_batch`` on ``mesh``.

    "auto": on GPUs and TPUs the whole batch (they have the memory and the parallelism); on a CPU, for a batch of
    more than CPU_MICRO_ROWS sequences, the largest divisor of ``batch_size`` that is a multiple of the data
    shards in [CPU_MICRO_ROWS / 4, CPU_MICRO_ROWS] (none, e.g. a prime batch size: the whole batch). An integer
    is used as given (batch_size: the whole batch)."""
    if micro_batch != "auto":
        return None if int(micro_batch) >= batch_size else int(micro_batch)
    if mesh.mesh.devices.flat[0].platform != "cpu" or batch_size <= CPU_MICRO_ROWS:
        return None
    D = mesh.data_shards
    fits = [m for m in range(D, batch_size, D) if batch_size % m == 0 and CPU_MICRO_ROWS // 4 <= m <= CPU_MICRO_ROWS]
    return max(fits) if fits else None


def group_chunk(
    config: ModelConfig, tx: optax.GradientTransformation, mesh: TrainingMesh, micro_batch: int | None = None
):
    """`_chunk_fn` vmapped over S models and jitted on ``mesh``: (params [S, ...], opt_state [S, ...], batches
    [S, k, B, T+1]) -> (params, opt_state, losses [S, k]). The seed axis is split over the mesh's ``seeds``
    axis, each batch over ``data``; the gradient's mean over the batch is then an all-reduce over ``data``.
    With S = 1 the step is the unbatched one, wrapped to take and give the same stacked arrays. ``micro_batch``:
    see `micro_batch_grads` (it must be a multiple of the mesh's data shards)."""
    if micro_batch is not None and micro_batch % mesh.data_shards:
        raise ValueError(
            f"TrainConfig.micro_batch = {micro_batch} does not split over the {mesh.data_shards} "
            f"devices the batch is split over: pass a multiple of {mesh.data_shards}, or set "
            "[training] devices to a divisor of it."
        )
    one = _chunk_fn(logits_fn(config), tx, micro_batch, mesh.data_shards)
    if mesh.n_seeds == 1:  # a lone run: the unbatched step (vmap over one model costs ~20% more compile time)

        def fn(params, opt_state, batches):
            squeeze = functools.partial(jax.tree.map, lambda x: x[0])
            out = one(squeeze(params), squeeze(opt_state), batches[0])
            return jax.tree.map(lambda x: x[None], out)
    else:
        fn = jax.vmap(one)
    return jax.jit(
        fn,
        in_shardings=(mesh.stacked, mesh.stacked, mesh.batches),
        out_shardings=(mesh.stacked, mesh.stacked, mesh.replicated),
    )


def _optimizer_settings(tc: TrainConfig) -> TrainConfig:
    """``tc`` with every field that does not affect the optimizer or the step set to its default (a cache key)."""
    base = TrainConfig()
    return dataclasses.replace(
        base,
        steps=tc.steps,
        optimizer=tc.optimizer,
        learning_rate=tc.learning_rate,
        warmup_steps=tc.warmup_steps,
        schedule=tc.schedule,
        final_lr_fraction=tc.final_lr_fraction,
        weight_decay=tc.weight_decay,
        grad_clip=tc.grad_clip,
        batch_size=tc.batch_size,
        micro_batch=tc.micro_batch,
    )


@functools.lru_cache(maxsize=16)
def _optimizer_and_chunk(config: ModelConfig, settings: TrainConfig, mesh: TrainingMesh):
    """One optimizer and compiled group step per (model, optimizer settings, mesh): no recompiling when `train`
    is called again in the same process (a resume, a test, a sweep over seeds)."""
    tx = make_optimizer(settings)
    return tx, group_chunk(config, tx, mesh, resolve_micro_batch(settings.micro_batch, settings.batch_size, mesh))


@functools.lru_cache(maxsize=16)
def group_draw(data_fn: DataFn, k: int, B: int, length: int, mesh: TrainingMesh, n: int | None = None):
    """A jitted function (data key data [S, 2] uint32, call) -> tokens [S, n, B, length] int32 laid out as
    ``mesh.batches``: seed s's batches of fused call ``call`` are ``data_fn(fold_in(key_s, call), k * B, length)``
    as [k, B, length], the first ``n`` of them (default all k; fewer in a last, shorter call), exactly what a
    lone run of that seed draws. Each device computes only its own shard: the sampler runs
    elementwise over sequences, and JAX's partitionable threefry gives every random number the same value
    however the array is split, so the global batch is the same on any number of devices by construction.
    Cached per (data_fn, shapes, mesh): a data function that compares equal (a process's sampler, say)
    compiles once per process."""

    def one(key_data: jax.Array, call: jax.Array) -> jax.Array:
        key = jax.random.fold_in(jax.random.wrap_key_data(key_data), call)
        return jnp.asarray(data_fn(key, k * B, length), jnp.int32).reshape(k, B, length)[:n]

    return jax.jit(
        jax.vmap(one, in_axes=(0, None)), in_shardings=(mesh.replicated, mesh.replicated), out_shardings=mesh.batches
    )


def _traceable(data_fn: DataFn, key: jax.Array, n: int, length: int) -> bool:
    """Whether ``data_fn(key, n, length)`` traces under jit (then it is drawn on the devices by `group_draw`); a
    NumPy function is not, and is drawn on the host by `_host_draw`. Wrong shapes or dtypes are errors."""
    try:
        out = jax.eval_shape(lambda kk: data_fn(kk, n, length), key)
    except Exception:  # noqa: BLE001 - a function that does not trace is drawn on the host instead
        return False
    shape, dtype = tuple(getattr(out, "shape", ())), getattr(out, "dtype", None)
    if shape != (n, length) or dtype is None or not np.issubdtype(dtype, np.integer):
        raise ValueError(
            f"data_fn(key, {n}, {length}) must return integer tokens of shape ({n}, {length}); got {dtype} {shape}."
        )
    return True


def _host_draw(
    data_fn: DataFn,
    data_keys: list[jax.Array],
    k: int,
    B: int,
    length: int,
    mesh: TrainingMesh,
    n: int,
    vocab_size: int,
):
    """`group_draw` for a data function that does not trace (NumPy, say): each seed's call drawn on the host
    with `_draw` (the same tokens), then laid out on the mesh."""

    def draw(_key_data: Any, call: Any) -> jax.Array:
        tokens = [
            np.asarray(_draw(data_fn, jax.random.fold_in(dk, int(call)), k, B, length, vocab_size, check=True))[:n]
            for dk in data_keys
        ]  # S x [n, B, length]
        return put(np.stack(tokens), mesh.batches)

    return draw


# ---------------------------------------------------------------------------- the loop


@dataclass
class TrainResult:
    model_config: ModelConfig
    params_state: nnx.State  # the trained model's nnx.State
    history: list[dict[str, Any]]  # every evaluation record (as in metrics.jsonl), resumed ones included
    final: dict[str, Any]  # the last evaluation record
    wall_seconds: float  # wall time of this call
    resumed_from_step: int | None  # step the run resumed from, None for a fresh start
    train_config: TrainConfig | None = None
    run_dir: Path | None = None
    stopped_early: bool = False  # True when stopped by ``stop_after_steps``

    def model(self):
        """The trained model (a `Transformer` or a `RecurrentModel`)."""
        return nnx.merge(graphdef(self.model_config), self.params_state)


def _config_mismatch(saved: dict, current: dict, what: str) -> str | None:
    for key in sorted(set(saved) | set(current)):
        if saved.get(key, "<missing>") != current.get(key, "<missing>"):
            return (
                f"{what}.{key} = {current.get(key, '<missing>')!r} here but "
                f"{saved.get(key, '<missing>')!r} in the checkpoint"
            )
    return None


def _read_metrics(path: Path, up_to_step: int) -> list[dict[str, Any]]:
    records = []
    if path.exists():
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(
                f"{path} is damaged (not UTF-8 text at byte {exc.start}); delete it and "
                "checkpoints/latest.msgpack to train this run from the beginning"
            ) from None
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:  # a line cut short by a crash
                continue
            if record.get("step", math.inf) <= up_to_step:
                records.append(record)
    return records


def _format_tokens(n: int) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return str(n)


def _keys(train_config: TrainConfig) -> tuple[jax.Array, jax.Array]:
    """(initialisation key, data key), both split from the config's one seed."""
    init_key, data_key = jax.random.split(jax.random.key(train_config.seed))
    return init_key, data_key


def initial_params(model_config: ModelConfig, train_config: TrainConfig) -> dict:
    """The parameters `train` starts from (same seed, before any step): the untrained-model control."""
    return init_params(model_config, _keys(train_config)[0])


def train(
    model_config: ModelConfig,
    train_config: TrainConfig,
    data_fn: DataFn,
    eval_set: ExactEvalSet | SampledEvalSet,
    run_dir: str | Path | None = None,
    *,
    progress: bool = True,
    stop_after_steps: int | None = None,
) -> TrainResult:
    """Train a model of any registered family (a `TransformerConfig`, a `RecurrentConfig`, ...) on fresh
    sequences from ``data_fn``, evaluating on ``eval_set``. Every family trains through the same loop,
    checkpoints and resumes the same way: this is `train_seeds` with one seed.

    ``eval_set``: an `ExactEvalSet` (exact expected loss) or a `SampledEvalSet` (a fixed held-out
    sample: the same metrics.jsonl keys plus the standard errors, see `sampled_eval`).

    With ``run_dir``: appends evaluations to ``metrics.jsonl``, keeps ``checkpoints/latest.msgpack``
    (every ``checkpoint_every`` steps, at the end, and on Ctrl-C), ``final.msgpack`` and
    ``tokens_{N}.msgpack``; and resumes from ``latest.msgpack`` if it exists with the same configs.
    ``stop_after_steps`` (for tests): stop, checkpointing, after the first call that reaches it.
    """
    return train_seeds(
        model_config, [train_config], data_fn, eval_set, [run_dir], progress=progress, stop_after_steps=stop_after_steps
    )[0]


@dataclass
class _Member:
    """One seed of a group: its config, files and running sums (the group shares the step count)."""

    tc: TrainConfig
    run_dir: Path | None
    history: list[dict[str, Any]]
    loss_sum: float = 0.0
    loss_count: int = 0
    elapsed_before: float = 0.0
    resumed_from: int | None = None
    pending_tokens: list[int] = dataclasses.field(default_factory=list)

    @property
    def ckpt_dir(self) -> Path | None:
        return self.run_dir / "checkpoints" if self.run_dir is not None else None

    @property
    def metrics_path(self) -> Path | None:
        return self.run_dir / "metrics.jsonl" if self.run_dir is not None else None


def _check_group(mc: ModelConfig, tcs: list[TrainConfig], eval_sets: list[Any], run_dirs: list[Path | None]) -> None:
    if not is_model_config(mc) or not tcs or not all(isinstance(tc, TrainConfig) for tc in tcs):
        raise TypeError(
            "train_seeds(model_config: a registered family's config (TransformerConfig, RecurrentConfig, "
            "...), train_configs: [TrainConfig, ...], ...)"
        )
    for tc in tcs[1:]:
        problem = _config_mismatch(
            dataclasses.replace(tcs[0], seed=0).to_dict(), dataclasses.replace(tc, seed=0).to_dict(), "train_config"
        )
        if problem:
            raise ValueError(
                f"train_seeds trains models that differ only in seed; {problem} (seed "
                f"{tc.seed}) vs seed {tcs[0].seed}: train them in separate groups."
            )
    named = [d.resolve() for d in run_dirs if d is not None]
    if len(set(named)) != len(named):
        raise ValueError("train_seeds: every seed needs its own run directory; two are the same.")
    if len(eval_sets) != len(tcs):
        raise ValueError(
            f"train_seeds: {len(tcs)} train configs but {len(eval_sets)} eval sets; pass one eval set "
            "(shared) or one per seed."
        )
    for eval_set in eval_sets:
        if not isinstance(eval_set, (ExactEvalSet, SampledEvalSet)):
            raise TypeError(f"eval_set must be an ExactEvalSet or a SampledEvalSet; got {type(eval_set).__name__}.")
        if eval_set.vocab_size != mc.vocab_size:
            raise ValueError(
                f"eval_set has vocabulary {eval_set.vocab_size} but model_config.vocab_size is "
                f"{mc.vocab_size}; build both from the same process."
            )
        if eval_set.tokens.shape[1] > mc.context_length:
            raise ValueError(
                f"eval_set contexts have length {eval_set.tokens.shape[1]} > "
                f"model_config.context_length {mc.context_length}."
            )


def _stack(trees: list[Any]) -> Any:
    """Trees of equal structure -> one tree whose leaves have a new leading axis [S, ...] (NumPy)."""
    return jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]), *trees)


def _member_tree(tree: Any, s: int) -> Any:
    """Seed s's slice of a stacked host tree."""
    return jax.tree.map(lambda x: x[s], tree)


def train_seeds(
    model_config: ModelConfig,
    train_configs: list[TrainConfig],
    data_fn: DataFn,
    eval_set: ExactEvalSet | SampledEvalSet | list[ExactEvalSet | SampledEvalSet],
    run_dirs: list[str | Path | None] | None = None,
    *,
    progress: bool = True,
    stop_after_steps: int | None = None,
) -> list[TrainResult]:
    """Train S models that differ only in seed together: parameters and optimizer states stacked on a leading
    axis, the fused step vmapped over it, one jitted call per ``steps_per_call`` steps for all S, on the mesh
    of ``devices`` (`predictive_models.parallel.training_mesh`: seeds and batch split over the devices).

    Seed s's initial parameters and data come from its own seed exactly as a lone `train` draws them, and
    ``run_dirs[s]`` is an ordinary run directory (metrics.jsonl, checkpoints, resume), so each result equals
    that of the seed trained alone up to float32 rounding of the batched arithmetic. Every seed must resume
    from the same step (or all start fresh). ``eval_set``: one for every seed, or a list of one per seed (a
    sampled regime's held-out sample is drawn from the seed). One progress bar for the group. Under
    `jax.distributed` every process runs this with the same arguments; process 0 alone writes files and shows
    progress.
    """
    mc, tcs = model_config, list(train_configs)
    dirs = [Path(d) if d is not None else None for d in (run_dirs or [None] * len(tcs))]
    if len(dirs) != len(tcs):
        raise ValueError(f"train_seeds: {len(tcs)} train configs but {len(dirs)} run directories.")
    eval_sets = list(eval_set) if isinstance(eval_set, (list, tuple)) else [eval_set] * len(tcs)
    _check_group(mc, tcs, eval_sets, dirs)
    t_start = time.perf_counter()
    tc0, S = tcs[0], len(tcs)
    T, B, k = mc.context_length, tc0.batch_size, tc0.steps_per_call
    tokens_per_step = B * T
    mesh = training_mesh(tc0.devices, B, S)
    writer = jax.process_index() == 0
    tx, chunk = _optimizer_and_chunk(mc, _optimizer_settings(tc0), mesh)
    schedule = learning_rate_schedule(tc0)
    keys = [_keys(tc) for tc in tcs]

    # ---- start fresh or resume, seed by seed
    members = [_Member(tc=tc, run_dir=d, history=[]) for tc, d in zip(tcs, dirs)]
    params_list, opt_list, steps = [], [], []
    for member, (init_key, _) in zip(members, keys):
        params = jax.tree.map(np.asarray, init_params(mc, init_key))  # = initial_params(mc, tc)
        opt_state = jax.tree.map(np.asarray, tx.init(params))
        step = 0
        ckpt_dir = member.ckpt_dir
        if ckpt_dir is not None and (ckpt_dir / "latest.msgpack").exists():
            params, opt_state, step = _resume(member, mc, tx, params, opt_state)
        steps.append(step)
        params_list.append(params)
        opt_list.append(opt_state)
    if len(set(steps)) != 1:
        raise ValueError(
            f"train_seeds: the seeds' run directories are at different steps ({steps}); a group "
            "resumes together, so train these seeds separately (or as groups at the same step)."
        )
    step = steps[0]
    for member in members:
        if member.metrics_path is not None:  # keep only records up to the resume step (none when fresh)
            member.history = _read_metrics(member.metrics_path, step if member.resumed_from is not None else -1)
            if writer:
                atomic_write_bytes(member.metrics_path, "".join(json_line(r) for r in member.history).encode())
    params = put(_stack(params_list), mesh.stacked)  # [S, ...] on the mesh
    opt_state = put(_stack(opt_list), mesh.stacked)
    data_keys = put(np.stack([np.asarray(jax.random.key_data(dk)) for _, dk in keys]), mesh.replicated)  # [S, 2]
    draws: dict[int, Any] = {}  # n steps -> its jitted draw (k, and a last shorter call's n)
    host: dict[str, Any] = {}  # the host copy of the stacked parameters and state at the current step

    def host_state() -> tuple[Any, Any]:
        if host.get("step") != step:
            host.update(step=step, params=to_host(params, mesh.replicated), opt=to_host(opt_state, mesh.replicated))
        return host["params"], host["opt"]

    def elapsed(member: _Member) -> float:
        return member.elapsed_before + time.perf_counter() - t_start

    def save(name: str, which: list[_Member] | None = None) -> None:
        p_host, o_host = host_state()
        for s, member in enumerate(members):
            if member.ckpt_dir is None or not writer or (which is not None and member not in which):
                continue
            save_checkpoint(
                member.ckpt_dir / name,
                params=_member_tree(p_host, s),
                opt_state=_member_tree(o_host, s),
                step=step,
                model_config=mc,
                train_config=member.tc,
                extra={
                    "tokens": step * tokens_per_step,
                    "train_loss_sum": member.loss_sum,
                    "train_loss_count": member.loss_count,
                    "elapsed_s": elapsed(member),
                },
            )

    def evaluate(member: _Member, s: int) -> dict[str, Any]:
        # The record is written before the running mean is reset: a Ctrl-C before the write leaves
        # the sum intact (the resumed run evaluates this step again and writes the same record), and
        # a resumed run whose metrics already hold this step restarts the sum from zero (below).
        p_host, _ = host_state()
        record = {
            "step": step,
            "tokens": step * tokens_per_step,
            **evaluate_model(mc, _member_tree(p_host, s), eval_sets[s]),
            "train_loss": member.loss_sum / member.loss_count if member.loss_count else None,
            "learning_rate": float(np.asarray(schedule(step))),
            "elapsed_s": elapsed(member),
        }
        if member.metrics_path is not None and writer:
            with open(member.metrics_path, "a") as f:
                f.write(json_line(record))
        member.history.append(record)
        member.loss_sum, member.loss_count = 0.0, 0
        return record

    # A named checkpoint is saved right after the fused call that reaches its token count. One that an
    # interruption cut short (its call being the last one done) is saved on resume, from the same parameters.
    resumed = members[0].resumed_from is not None
    last_call_start = max(step - k, 0) if resumed else step
    for member in members:
        pending = [n for n in tc0.save_at_tokens if n > last_call_start * tokens_per_step or (step == 0 and n == 0)]
        if member.ckpt_dir is not None:
            pending = [
                n
                for n in pending
                if n > step * tokens_per_step or not (member.ckpt_dir / f"tokens_{n}.msgpack").exists()
            ]
        member.pending_tokens = pending

    def save_named() -> None:
        for member in members:
            while member.pending_tokens and step * tokens_per_step >= member.pending_tokens[0]:
                save(f"tokens_{member.pending_tokens[0]}.msgpack", [member])
                member.pending_tokens.pop(0)

    is_eval_step = step % tc0.eval_every == 0 or step == tc0.steps
    for member in members:
        if member.resumed_from is not None and member.history and member.history[-1]["step"] == step:
            member.loss_sum, member.loss_count = 0.0, 0  # evaluated before the interruption: the mean restarts
    # The bar starts after the first jitted call, so its rate and ETA leave out the compile time.
    bar = _NullBar()
    show = progress and writer
    assert eval_sets[0].optimal_loss is not None  # set by ExactEvalSet.__post_init__ (SampledEvalSet: required)
    optimal = float(np.mean(eval_sets[0].optimal_loss))
    stopped_early = False
    try:
        if show and step < tc0.steps:
            what = "the model and the training step" if S == 1 else f"the training step of {S} seeds together"
            print(
                f"train: compiling {what} on {mesh.describe()} (the first call takes a few seconds; "
                f"optimal loss {optimal:.4f} nats) ...",
                file=sys.stderr,
                flush=True,
            )
        for s, member in enumerate(members):
            if member.resumed_from is None or (
                is_eval_step and (not member.history or member.history[-1]["step"] < step)
            ):
                evaluate(member, s)  # step 0, or the evaluation an interruption cut short
        save_named()  # step 0's, or one an interruption cut short
        call, first = step // k, True  # data for call c comes from fold_in(data_key, c) only
        traceable = step < tc0.steps and _traceable(data_fn, keys[0][1], k * B, T + 1)
        while step < tc0.steps:
            n = min(k, tc0.steps - step)
            if n not in draws:
                draws[n] = (
                    group_draw(data_fn, k, B, T + 1, mesh, n)
                    if traceable
                    else _host_draw(data_fn, [dk for _, dk in keys], k, B, T + 1, mesh, n, mc.vocab_size)
                )
            batches = draws[n](data_keys, np.int32(call))  # [S, n, B, T+1]
            if first:
                _check_tokens(batches, mc.vocab_size, mesh)
            new_params, new_opt_state, losses = chunk(params, opt_state, batches)
            losses = np.asarray(losses.addressable_data(0), np.float64)  # [S, n], replicated
            finite = np.asarray(_finite_check(mesh)(new_params).addressable_data(0))  # [S]
            if not (np.all(np.isfinite(losses)) and np.all(finite)):
                _diverged(members, losses, finite, step, tc0)  # raises; the last good checkpoint is kept
            # one statement, so Ctrl-C never separates the new parameters from their step count and loss sums
            params, opt_state, step, call, last_train, was_first = (
                new_params,
                new_opt_state,
                step + n,
                call + 1,
                losses.mean(axis=1),
                first,
            )
            for s, member in enumerate(members):
                member.loss_sum, member.loss_count = member.loss_sum + float(losses[s].sum()), member.loss_count + n
            first = False
            if step % tc0.eval_every == 0 or step == tc0.steps:
                for s, member in enumerate(members):
                    evaluate(member, s)
            if step % tc0.checkpoint_every == 0 or step == tc0.steps:
                save("latest.msgpack")
            save_named()
            if was_first:  # the rate (and ETA) count from here: the compile is behind us
                bar = _progress_bar(tc0.steps, step, show, S)
            else:
                bar.update(n)
            bar.set_postfix_str(
                _postfix(
                    step,
                    tokens_per_step,
                    float(last_train.mean()),
                    optimal,
                    [m.history[-1] for m in members if m.history],
                )
            )
            if stop_after_steps is not None and step >= stop_after_steps and step < tc0.steps:
                save("latest.msgpack")
                stopped_early = True
                break
    except KeyboardInterrupt:
        if any(m.ckpt_dir is not None for m in members):
            save("latest.msgpack")
            if writer:
                where = ", ".join(str(m.ckpt_dir / "latest.msgpack") for m in members if m.ckpt_dir is not None)
                print(f"\ninterrupted at step {step}: saved {where}; run again to resume.", file=sys.stderr)
        raise
    finally:
        bar.close()
    if not stopped_early:
        save("final.msgpack")
    p_host, _ = host_state()
    wall = time.perf_counter() - t_start
    return [
        TrainResult(
            model_config=mc,
            params_state=to_state(mc, _member_tree(p_host, s)),
            history=m.history,
            final=m.history[-1] if m.history else {},
            wall_seconds=wall,
            resumed_from_step=m.resumed_from,
            train_config=m.tc,
            run_dir=m.run_dir,
            stopped_early=stopped_early,
        )
        for s, m in enumerate(members)
    ]


@functools.lru_cache(maxsize=16)
def _finite_check(mesh: TrainingMesh):
    """A jitted (params [S, ...]) -> [S] bool: whether every parameter of each model is finite."""

    def fn(params):
        leaves = [jnp.all(jnp.isfinite(x.reshape(x.shape[0], -1)), axis=1) for x in jax.tree.leaves(params)]
        return functools.reduce(jnp.logical_and, leaves)

    return jax.jit(fn, in_shardings=(mesh.stacked,), out_shardings=mesh.replicated)


def _diverged(members: list[_Member], losses: np.ndarray, finite: np.ndarray, step: int, tc: TrainConfig) -> None:
    """Raise `TrainingDiverged` for the fused call after ``step`` whose losses [S, n] or parameters (``finite`` [S])
    turned non-finite: at the first such step, naming the seed and the last good checkpoint (nothing after
    ``step`` is written)."""
    bad = ~np.isfinite(losses)  # [S, n]
    firsts = [step + int(np.argmax(row)) + 1 if row.any() else step + losses.shape[1] for row in bad]
    s = min((i for i in range(len(members)) if bad[i].any() or not finite[i]), key=lambda i: firsts[i])
    member = members[s]
    seed = f" (seed {member.tc.seed})" if len(members) > 1 else ""
    kept = ""
    if member.ckpt_dir is not None and (member.ckpt_dir / "latest.msgpack").exists():
        kept = f"; the last good checkpoint is {member.ckpt_dir / 'latest.msgpack'}"
    raise TrainingDiverged(
        f"training diverged at step {firsts[s]}{seed}: the loss or the parameters are no longer "
        f"finite; lower the learning rate (now {tc.learning_rate:g}){kept}"
    )


def _resume(
    member: _Member, mc: ModelConfig, tx: optax.GradientTransformation, params: Any, opt_state: Any
) -> tuple[Any, Any, int]:
    """Seed ``member``'s parameters, optimizer state and step from its ``latest.msgpack`` (configs checked);
    sets its running sums and resume step."""
    path = member.ckpt_dir / "latest.msgpack"  # type: ignore[operator]
    ckpt = load_checkpoint(path)
    saved_tc = TrainConfig.from_dict(ckpt["train_config"]).to_dict()
    here = member.tc.to_dict()
    for key in ("devices", "micro_batch"):  # a run moves between device counts and micro-batch sizes
        saved_tc.pop(key, None)
        here.pop(key, None)
    problem = _config_mismatch(
        config_to_dict(config_from_dict(ckpt["model_config"])), config_to_dict(mc), "model_config"
    ) or _config_mismatch(saved_tc, here, "train_config")
    if problem:
        raise ValueError(
            f"{member.run_dir} holds a run with different settings ({problem}); use a new run "
            f"directory (or delete this one) to train with these settings."
        )
    try:
        params = jax.tree.map(np.asarray, ckpt["params"])
        opt_state = jax.tree.map(np.asarray, serialization.from_state_dict(opt_state, ckpt["opt_state"]))
        step = int(ckpt["step"])
        member.resumed_from = step
        member.loss_sum = float(ckpt.get("train_loss_sum", 0.0))
        member.loss_count = int(ckpt.get("train_loss_count", 0))
        member.elapsed_before = float(ckpt.get("elapsed_s", 0.0))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(
            f"checkpoint {path} is damaged ({type(exc).__name__}: {exc}); delete it to train "
            "this run from the beginning"
        ) from None
    return params, opt_state, step


def _check_tokens(batches: jax.Array, vocab_size: int, mesh: TrainingMesh) -> None:
    """The first call's tokens must lie in the model's vocabulary."""
    lo, hi = (int(x) for x in to_host((jnp.min(batches), jnp.max(batches)), mesh.replicated))
    if lo < 0 or hi >= vocab_size:
        raise ValueError(f"data_fn returned tokens in [{lo}, {hi}]; the model's vocabulary is [0, {vocab_size}).")


def _draw(data_fn: DataFn, key: jax.Array, k: int, B: int, length: int, vocab_size: int, check: bool) -> jax.Array:
    """Data for one fused call of one model on the default device: ``data_fn(key, k * B, length)`` as
    [k, B, length] int32 (the benchmarks' lone step, and `_host_draw`'s; `train` draws with `group_draw`)."""
    tokens = data_fn(key, k * B, length)
    if check:
        shape, dtype = tuple(np.shape(tokens)), np.asarray(tokens[:1]).dtype
        if shape != (k * B, length) or not np.issubdtype(dtype, np.integer):
            raise ValueError(
                f"data_fn(key, {k * B}, {length}) must return integer tokens of shape "
                f"({k * B}, {length}); got {dtype} {shape}."
            )
        lo, hi = int(jnp.min(tokens)), int(jnp.max(tokens))
        if lo < 0 or hi >= vocab_size:
            raise ValueError(f"data_fn returned tokens in [{lo}, {hi}]; the model's vocabulary is [0, {vocab_size}).")
    return jnp.asarray(tokens, jnp.int32).reshape(k, B, length)


def _progress_bar(total: int, initial: int, enabled: bool, n_seeds: int = 1):
    from tqdm import tqdm

    return tqdm(
        total=total,
        initial=initial,
        unit="step",
        file=sys.stderr,
        disable=not enabled,
        dynamic_ncols=True,
        desc="train" if n_seeds == 1 else f"train {n_seeds} seeds",
    )


class _NullBar:
    """Stands in for the bar until the first jitted call has returned (nothing to show yet)."""

    def update(self, n: int) -> None:
        pass

    def set_postfix_str(self, s: str) -> None:
        pass

    def close(self) -> None:
        pass


def _postfix(step: int, tokens_per_step: int, train_loss: float | None, optimal: float, records: list[dict]) -> str:
    """tokens seen, training loss beside the optimal loss (nats; the mean over a group's seeds), last exact
    relative loss @ its step (a group's: the range over its seeds)."""
    parts = [f"tokens={_format_tokens(step * tokens_per_step)}"]
    if train_loss is not None:
        parts.append(f"loss={train_loss:.4f} (optimal {optimal:.4f})")
    if records:
        rel = [r["relative_loss"] for r in records]
        text = f"{rel[0]:.5f}" if len(rel) == 1 else f"{min(rel):.5f}..{max(rel):.5f}"
        parts.append(f"rel={text}@{records[0]['step']}")
    return " ".join(parts)
