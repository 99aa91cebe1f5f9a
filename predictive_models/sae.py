"""A small sparse autoencoder (SAE) in JAX, trained on a matrix of activations, for finding directions without labels.

``f = act(W_enc' (x - b_dec) + b_enc)``, ``x_hat = W_dec' f + b_dec`` with ``W_dec [n_latents, d]`` whose rows
(the decoder "columns", one direction per latent) are kept at unit norm after every step, so that the sparsity
penalty cannot be dodged by shrinking the code and growing the decoder. Two kinds:

- ``"relu"``: the standard SAE (Bricken et al. 2023): ``act = ReLU`` and the loss is the squared error plus
  ``l1 * sum_i |f_i|`` per row;
- ``"topk"`` (Gao et al. 2024, "Scaling and evaluating sparse autoencoders"): only the ``k`` largest
  pre-activations of each row are kept (then a ReLU), the loss is the squared error alone; sparsity is exact.
  The AuxK loss against dead latents is not implemented: dead latents are reported (`SaeResult.live`), not revived.

The inputs are centred on their mean (``b_dec``'s start) and divided by one scalar, the root mean squared norm of the
centred rows, so that the learning rate and ``l1`` mean the same on any activations; the returned arrays are in the
inputs' units. The encoder starts as the decoder's transpose (Gao et al.). Training is optax Adam on random batches
of rows, ``steps_per_call`` steps per jitted ``lax.scan``, deterministic from ``seed`` (the same inputs, config and
seed give the same arrays on one machine). JAX and optax only; imports none of the project's other packages.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax

KINDS = ("relu", "topk")


class SaeConfigError(ValueError):
    """A field of `SaeConfig` is out of range; the message names it and the fix."""


@dataclass(frozen=True)
class SaeConfig:
    """How to train the SAE. Every field has a default that trains on a few thousand rows in seconds on a CPU."""

    n_latents: int = 64  # latents (decoder directions); a few times the input width is typical
    kind: str = "topk"  # "topk" (exactly k active latents per row) or "relu" (ReLU with an L1 penalty)
    k: int = 4  # "topk": latents kept per row (ignored by "relu")
    l1: float = 1e-2  # "relu": the L1 coefficient on the latents, in the normalised units (ignored by "topk")
    steps: int = 2000  # optimizer steps
    batch_size: int = 256  # rows per step (drawn with replacement)
    learning_rate: float = 1e-3  # Adam's learning rate, constant
    steps_per_call: int = 100  # steps fused in one jitted lax.scan (a divisor of steps is not required)
    seed: int = 0  # initialisation and batches

    def __post_init__(self) -> None:
        for name in ("n_latents", "k", "steps", "batch_size", "steps_per_call"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise SaeConfigError(f"SaeConfig.{name} must be a positive integer; got {value!r}")
        if self.kind not in KINDS:
            raise SaeConfigError(f'SaeConfig.kind must be "topk" or "relu"; got {self.kind!r}')
        if self.kind == "topk" and self.k > self.n_latents:
            raise SaeConfigError(f"SaeConfig.k ({self.k}) must be at most n_latents ({self.n_latents})")
        if not (self.l1 >= 0 and np.isfinite(self.l1)):
            raise SaeConfigError(f"SaeConfig.l1 must be a finite number >= 0; got {self.l1!r}")
        if not (self.learning_rate > 0 and np.isfinite(self.learning_rate)):
            raise SaeConfigError(
                f"SaeConfig.learning_rate must be a finite positive number; got {self.learning_rate!r}"
            )
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise SaeConfigError(f"SaeConfig.seed must be an integer; got {self.seed!r}")


@dataclass(frozen=True, eq=False)
class SaeResult:
    """A trained SAE, as NumPy arrays in the inputs' units."""

    config: SaeConfig
    W_enc: np.ndarray  # [d, n_latents]
    b_enc: np.ndarray  # [n_latents]
    W_dec: np.ndarray  # [n_latents, d] unit-norm rows: latent i's direction
    b_dec: np.ndarray  # [d]
    scale: float  # the inputs' root mean squared centred norm (the training units)
    losses: np.ndarray  # [n_calls] the mean training loss of each jitted call (normalised units)

    def encode(self, X: np.ndarray) -> np.ndarray:
        """[N, n_latents] the latents of rows X [N, d] (float64)."""
        pre = ((np.asarray(X, np.float64) - self.b_dec) / self.scale) @ self.W_enc + self.b_enc
        return _activate_np(pre, self.config)

    def decode(self, F: np.ndarray) -> np.ndarray:
        """[N, d] the reconstruction of latents F [N, n_latents]."""
        return np.asarray(F, np.float64) @ self.W_dec * self.scale + self.b_dec

    def fraction_variance_unexplained(self, X: np.ndarray) -> float:
        """||X - decode(encode(X))||^2 / ||X - mean||^2."""
        X = np.asarray(X, np.float64)
        err = float(np.sum((X - self.decode(self.encode(X))) ** 2))
        return err / float(np.sum((X - X.mean(axis=0)) ** 2))

    def live(self, X: np.ndarray, min_frequency: float = 1e-3) -> np.ndarray:
        """[n_latents] bool: latents active (> 0) on at least ``min_frequency`` of the rows of X."""
        return np.mean(self.encode(X) > 0, axis=0) >= min_frequency


def _activate_np(pre: np.ndarray, cfg: SaeConfig) -> np.ndarray:
    if cfg.kind == "relu":
        return np.maximum(pre, 0.0)
    kth = -np.partition(-pre, cfg.k - 1, axis=1)[:, cfg.k - 1 : cfg.k]  # [N, 1] the k-th largest
    return np.where(pre >= kth, np.maximum(pre, 0.0), 0.0)


def _activate(pre: jax.Array, kind: str, k: int) -> jax.Array:
    if kind == "relu":
        return jax.nn.relu(pre)
    values, idx = jax.lax.top_k(pre, k)  # [B, k]
    out = jnp.zeros_like(pre)
    return jax.vmap(lambda o, i, v: o.at[i].set(jax.nn.relu(v)))(out, idx, values)


def _loss(params: dict, x: jax.Array, kind: str, k: int, l1: float) -> jax.Array:
    f = _activate((x - params["b_dec"]) @ params["W_enc"] + params["b_enc"], kind, k)  # [B, n]
    x_hat = f @ params["W_dec"] + params["b_dec"]
    mse = jnp.mean(jnp.sum((x - x_hat) ** 2, axis=1))
    return mse + (l1 * jnp.mean(jnp.sum(jnp.abs(f), axis=1)) if kind == "relu" else 0.0)


def _unit_rows(W: jax.Array) -> jax.Array:
    return W / jnp.maximum(jnp.linalg.norm(W, axis=1, keepdims=True), 1e-12)


@functools.partial(jax.jit, static_argnames=("n_steps", "kind", "k", "batch_size", "learning_rate"))
def _train_call(params, opt_state, data, key, *, n_steps, kind, k, l1, batch_size, learning_rate):
    """``n_steps`` Adam steps in one lax.scan; returns the new state and the mean loss."""
    tx = optax.adam(learning_rate)

    def step(carry, step_key):
        params, opt_state = carry
        idx = jax.random.randint(step_key, (batch_size,), 0, data.shape[0])
        loss, grads = jax.value_and_grad(_loss)(params, data[idx], kind, k, l1)
        updates, opt_state = tx.update(grads, opt_state, params)
        params = dict(optax.apply_updates(params, updates))  # type: ignore[arg-type]  # a dict in, a dict out
        params["W_dec"] = _unit_rows(params["W_dec"])  # type: ignore[arg-type]
        return (params, opt_state), loss

    (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), jax.random.split(key, n_steps))
    return params, opt_state, jnp.mean(losses)


def train_sae(
    X: np.ndarray,  # [N, d]
    config: SaeConfig = SaeConfig(),
    progress: Callable[[int, float], None] | None = None,
) -> SaeResult:
    """Train an SAE on the rows of X (see the module docstring). ``progress(step, loss)`` is called after each
    jitted call of ``config.steps_per_call`` steps."""
    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] < 2 or not np.issubdtype(X.dtype, np.number):
        raise SaeConfigError(f"X must be a numeric [N, d] array with N >= 2 rows; got shape {X.shape}")
    if not np.all(np.isfinite(X)):
        raise SaeConfigError("X contains NaN or infinite values; drop or fix those rows")
    mean = X.mean(axis=0, dtype=np.float64)
    scale = float(np.sqrt(np.mean(np.sum((X - mean) ** 2, axis=1))))
    if not scale > 0:
        raise SaeConfigError("X has zero variance (every row the same); nothing to learn")
    data = jnp.asarray((X - mean) / scale, jnp.float32)  # [N, d] centred, unit rms norm
    d, n = X.shape[1], config.n_latents
    key_init, key_train = jax.random.split(jax.random.PRNGKey(config.seed))
    W_dec = _unit_rows(jax.random.normal(key_init, (n, d), jnp.float32))
    params = {
        "W_enc": W_dec.T,
        "b_enc": jnp.zeros((n,), jnp.float32),
        "W_dec": W_dec,
        "b_dec": jnp.zeros((d,), jnp.float32),
    }
    opt_state = optax.adam(config.learning_rate).init(params)
    losses, done, call = [], 0, 0
    while done < config.steps:
        n_steps = min(config.steps_per_call, config.steps - done)
        params, opt_state, loss = _train_call(
            params,
            opt_state,
            data,
            jax.random.fold_in(key_train, call),
            n_steps=n_steps,
            kind=config.kind,
            k=config.k,
            l1=float(config.l1),
            batch_size=config.batch_size,
            learning_rate=float(config.learning_rate),
        )
        done, call = done + n_steps, call + 1
        losses.append(float(loss))
        if not np.isfinite(losses[-1]):
            raise FloatingPointError(f"the SAE's loss became {losses[-1]} at step {done}; lower learning_rate")
        if progress is not None:
            progress(done, losses[-1])
    p = {name: np.asarray(v, np.float64) for name, v in params.items()}
    return SaeResult(
        config=config,
        W_enc=p["W_enc"],
        b_enc=p["b_enc"],
        W_dec=p["W_dec"],
        b_dec=mean + p["b_dec"] * scale,
        scale=scale,
        losses=np.asarray(losses),
    )
