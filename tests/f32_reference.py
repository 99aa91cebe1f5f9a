"""The models written out in float64 NumPy, each value carried with a bound on a float32 evaluation's rounding.

Rule 1 of tests/conftest.py's docstring. Every value v of the forward pass comes with e >= |fl32(v) - v|, the
most a float32 evaluation of it can be off, to first order in u = 2**-24, whatever order XLA sums in and
however it fuses (each bound below holds for any summation order; gamma_n = n u / (1 - n u)):

- a matrix product plus bias, fan-in n:  y = x @ W + b,  e_y = e_x @ |W| + gamma_{n+1} (|x| @ |W| + |b|)
- a sum or product of two values:        e = e_a + e_b + u |a + b|,   e = |a| e_b + |b| e_a + u |a b|
- ReLU passes e on (1-Lipschitz); tanh and the logistic scale it by their slopes, 1 - tanh^2 and s (1 - s);
  exp, log, tanh, logistic and rsqrt add F32_ELEMENTWISE_ULPS ulps of their result
- LayerNorm (width d, scale s): e_y = |s| / sigma (e + mean(e) + |x_n| mean(|x_n| e)) (its Jacobian) plus
  its own rounding: the mean and the variance (flax's mean(x^2) - mean(x)^2 or the two-pass form) are sums of
  d terms, then an rsqrt, a product and a sum
- softmax over n keys: e_p = p (e_s + sum_j p_j e_s_j) (its Jacobian) plus p times its own rounding
  (the exp of s - max, the sum of n terms, the division)
- attention's weighted sum of values (n keys): e_z = e_p @ |v| + p @ e_v + gamma_n p @ |v|

A float32 forward then lies within ``bound`` of the float64 one, and two float32 forwards that differ in
reduction order within ``2 * bound`` of each other. The float64 side's own rounding (u = 1.1e-16) is
2**-29 times smaller and left out. Bounds are first order: valid while they are small against the values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import numpy as np
from tolerances import F32_ELEMENTWISE_ULPS, F32_U, gamma32

U, ELEM = F32_U, F32_ELEMENTWISE_ULPS * F32_U


@dataclass(frozen=True)
class Reference:
    """A float64 forward pass and the rule-1 bounds of a float32 evaluation of it."""

    logits: np.ndarray  # [N, T, V]
    log_probs: np.ndarray  # [N, T, V], log softmax of the logits
    acts: dict  # canonical activation name -> float64 array
    bound: dict  # "logits", "log_probs" and every name in acts -> the bound, same shape


def _f64(p):
    return jax.tree.map(lambda a: np.asarray(a, np.float64), p)


def _lin(q: dict, x: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x @ W (+ b): the bias, if any, counted as one more term of the sum."""
    W = q["kernel"]
    b = q.get("bias", np.zeros(W.shape[1]))
    y = x @ W + b
    return y, e @ np.abs(W) + gamma32(W.shape[0] + 1) * (np.abs(x) @ np.abs(W) + np.abs(b))


def _plus_product(r, er, y, ey, fan_in):
    """r + y where y came out of a matrix product of ``fan_in`` terms: XLA may fuse the addition into the product,
    the addend then taking part in every partial sum (gamma_{fan_in + 2} |r|) rather than one rounding."""
    s = r + y
    return s, er + ey + gamma32(fan_in + 2) * np.abs(r) + U * np.abs(s)


def _add(a, ea, b, eb):
    y = a + b
    return y, ea + eb + U * np.abs(y)


def _mul(a, ea, b, eb):
    y = a * b
    return y, np.abs(a) * eb + np.abs(b) * ea + U * np.abs(y)


def _layer_norm(q: dict, x: np.ndarray, e: np.ndarray, eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray]:
    d = x.shape[-1]
    s, b = q["scale"], q["bias"]
    mu = x.mean(-1, keepdims=True)
    c = x - mu
    var = (c**2).mean(-1, keepdims=True)
    sigma = np.sqrt(var + eps)
    xn = c / sigma
    y = xn * s + b
    # the Jacobian of (x - mean) / sigma, bounded row by row
    prop = np.abs(s) / sigma * (e + e.mean(-1, keepdims=True) + np.abs(xn) * (np.abs(xn) * e).mean(-1, keepdims=True))
    # its own rounding: mean (d terms), centring, variance (d squares, and the fast form's mu^2), rsqrt, scale, bias
    e_mu = gamma32(d + 1) * np.abs(x).mean(-1, keepdims=True)
    e_c = e_mu + U * np.abs(c)
    e_var = gamma32(d + 3) * ((x**2).mean(-1, keepdims=True) + mu**2) + 2 * e_mu * (
        np.abs(mu) + np.abs(c).mean(-1, keepdims=True)
    )
    rel_sigma = 0.5 * (e_var / (var + eps) + U) + ELEM
    e_xn = e_c / sigma + np.abs(xn) * (rel_sigma + 2 * U)
    own = np.abs(s) * e_xn + U * np.abs(xn * s) + U * np.abs(y)
    return y, prop + own


def _softmax(s: np.ndarray, e_s: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Softmax over the last axis (entries where mask is False get probability 0, exactly)."""
    if mask is not None:
        s = np.where(mask, s, -np.inf)
        e_s = np.where(mask, e_s, 0.0)
    m = s.max(-1, keepdims=True)
    z = np.exp(s - m)
    p = z / z.sum(-1, keepdims=True)
    n = s.shape[-1] if mask is None else mask.sum(-1, keepdims=True)
    shift = np.where(np.isfinite(s), np.abs(s - m), 0.0)
    prop = p * (e_s + (p * e_s).sum(-1, keepdims=True))
    own_rel = (U * shift + ELEM) + (p * (U * shift + ELEM)).sum(-1, keepdims=True) + gamma32(n) + U
    return p, prop + p * own_rel


def log_softmax(x: np.ndarray, e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log softmax over the last axis, as jax.nn.log_softmax computes it: x - max - log(sum(exp(x - max)))."""
    m = x.max(-1, keepdims=True)
    z = np.exp(x - m)
    lse = np.log(z.sum(-1, keepdims=True))
    y = x - m - lse
    q = z / z.sum(-1, keepdims=True)
    prop = e + (q * e).sum(-1, keepdims=True)
    rel_sum = (q * (U * np.abs(x - m) + ELEM)).sum(-1, keepdims=True) + gamma32(x.shape[-1])
    own = U * np.abs(x - m) + rel_sum + ELEM * np.abs(lse) + U * np.abs(y)
    return y, prop + own


def transformer(c, params: dict, tokens: np.ndarray) -> Reference:
    """The float64 forward of ``c`` (a TransformerConfig; every variant) on ``tokens`` [N, T], every canonical
    activation included, with the rule-1 bound of each value."""
    p = _f64(params)
    tokens = np.asarray(tokens)
    N, T = tokens.shape
    acts, bounds = {}, {}
    x = acts["hook_embed"] = p["embed"]["embedding"][tokens]
    e = bounds["hook_embed"] = np.zeros_like(x)
    if c.positional == "learned":
        acts["hook_pos_embed"] = np.broadcast_to(p["pos_embed"][:T], x.shape)
        bounds["hook_pos_embed"] = np.zeros_like(x)
        x, e = _add(x, e, p["pos_embed"][:T], 0.0)
    causal = np.tril(np.ones((T, T), bool))
    for layer in range(c.n_layers):
        b, q = f"blocks.{layer}.", p["blocks"][layer]
        acts[b + "hook_resid_pre"], bounds[b + "hook_resid_pre"] = x, e
        h, eh = _layer_norm(q["ln1"], x, e) if c.layer_norm else (x, e)
        qkv, e_qkv = _lin(q["attn"]["qkv"], h, eh)
        qkv, e_qkv = qkv.reshape(N, T, 3, c.n_heads, c.d_head), e_qkv.reshape(N, T, 3, c.n_heads, c.d_head)
        (qq, k, v), (eq, ek, ev) = np.moveaxis(qkv, 2, 0), np.moveaxis(e_qkv, 2, 0)
        root = math.sqrt(c.d_head)
        scores = np.einsum("nthd,nshd->nhts", qq, k) / root
        e_scores = (
            np.einsum("nthd,nshd->nhts", eq, np.abs(k))
            + np.einsum("nthd,nshd->nhts", np.abs(qq), ek)
            + gamma32(c.d_head + 1) * np.einsum("nthd,nshd->nhts", np.abs(qq), np.abs(k))
        ) / root
        pattern, e_pattern = _softmax(scores, e_scores, causal)
        acts[b + "attn.hook_pattern"], bounds[b + "attn.hook_pattern"] = pattern, e_pattern
        z = np.einsum("nhts,nshd->nthd", pattern, v).reshape(N, T, -1)
        n_keys = causal.sum(-1)[None, :, None, None]  # [1, T, 1, 1]: position t averages t + 1 values
        e_z = (
            np.einsum("nhts,nshd->nthd", e_pattern, np.abs(v))
            + np.einsum("nhts,nshd->nthd", pattern, ev)
            + gamma32(n_keys) * np.einsum("nhts,nshd->nthd", pattern, np.abs(v))
        ).reshape(N, T, -1)
        a, ea = _lin(q["attn"]["out"], z, e_z)
        acts[b + "hook_attn_out"], bounds[b + "hook_attn_out"] = a, ea
        x, e = _plus_product(x, e, a, ea, z.shape[-1])
        if not c.attn_only:
            acts[b + "hook_resid_mid"], bounds[b + "hook_resid_mid"] = x, e
            h, eh = _layer_norm(q["ln2"], x, e) if c.layer_norm else (x, e)
            up, e_up = _lin(q["mlp"]["up"], h, eh)
            m, em = _lin(q["mlp"]["down"], np.maximum(up, 0), e_up)  # ReLU: 1-Lipschitz
            acts[b + "hook_mlp_out"], bounds[b + "hook_mlp_out"] = m, em
            x, e = _plus_product(x, e, m, em, c.d_mlp)
        acts[b + "hook_resid_post"], bounds[b + "hook_resid_post"] = x, e
    if c.layer_norm:
        x, e = _layer_norm(p["ln_final"], x, e)
        acts["ln_final.hook_normalized"], bounds["ln_final.hook_normalized"] = x, e
    logits, bounds["logits"] = _lin(p["unembed"], x, e)
    log_probs, bounds["log_probs"] = log_softmax(logits, bounds["logits"])
    return Reference(logits, log_probs, acts, bounds)


def _sigmoid(x, e):
    s = 1 / (1 + np.exp(-x))
    return s, s * (1 - s) * e + ELEM * s


def _tanh(x, e):
    t = np.tanh(x)
    return t, (1 - t**2) * e + ELEM * np.abs(t)


def recurrent(c, params: dict, tokens: np.ndarray) -> Reference:
    """The float64 forward of ``c`` (a RecurrentConfig: rnn, gru or lstm) on ``tokens`` [N, T], position by
    position over all rows at once, every named state included, with the rule-1 bound of each value."""
    p = _f64(params)
    tokens = np.asarray(tokens)
    N, T = tokens.shape
    H = c.d_hidden
    names = ["embed"] + [
        f"layers.{l}.{k}" for l in range(c.n_layers) for k in (("hidden", "cell") if c.kind == "lstm" else ("hidden",))
    ]
    acts = {n: np.zeros((N, T, c.d_embed if n == "embed" else H)) for n in names}
    bounds = {n: np.zeros_like(a) for n, a in acts.items()}
    logits, e_logits = np.zeros((N, T, c.vocab_size)), np.zeros((N, T, c.vocab_size))
    h = [np.zeros((N, H)) for _ in range(c.n_layers)]
    eh = [np.zeros((N, H)) for _ in range(c.n_layers)]
    cell = [np.zeros((N, H)) for _ in range(c.n_layers)]
    ec = [np.zeros((N, H)) for _ in range(c.n_layers)]
    for t in range(T):
        x = p["embed"]["embedding"][tokens[:, t]]
        ex = np.zeros_like(x)
        acts["embed"][:, t] = x
        for l in range(c.n_layers):
            q = p["layers"][l]
            gx, egx = _lin(q["input"], x, ex)
            gh, egh = _lin(q["recurrent"], h[l], eh[l])  # a bias for the GRU only
            if c.kind == "rnn":
                h[l], eh[l] = _tanh(*_plus_product(gx, egx, gh, egh, H))
            elif c.kind == "gru":
                r, er = _sigmoid(*_plus_product(gx[:, :H], egx[:, :H], gh[:, :H], egh[:, :H], H))
                z, ez = _sigmoid(
                    *_plus_product(gx[:, H : 2 * H], egx[:, H : 2 * H], gh[:, H : 2 * H], egh[:, H : 2 * H], H)
                )
                rn, ern = _mul(r, er, gh[:, 2 * H :], egh[:, 2 * H :])
                n, en = _tanh(*_add(gx[:, 2 * H :], egx[:, 2 * H :], rn, ern))
                one_minus_z, e1z = 1 - z, ez + U * np.abs(1 - z)
                h[l], eh[l] = _add(*_mul(one_minus_z, e1z, n, en), *_mul(z, ez, h[l], eh[l]))
            else:
                g, eg = _plus_product(gx, egx, gh, egh, H)
                i, ei = _sigmoid(g[:, :H], eg[:, :H])
                f, ef = _sigmoid(g[:, H : 2 * H], eg[:, H : 2 * H])
                gg, egg = _tanh(g[:, 2 * H : 3 * H], eg[:, 2 * H : 3 * H])
                o, eo = _sigmoid(g[:, 3 * H :], eg[:, 3 * H :])
                cell[l], ec[l] = _add(*_mul(f, ef, cell[l], ec[l]), *_mul(i, ei, gg, egg))
                h[l], eh[l] = _mul(o, eo, *_tanh(cell[l], ec[l]))
                acts[f"layers.{l}.cell"][:, t], bounds[f"layers.{l}.cell"][:, t] = cell[l], ec[l]
            acts[f"layers.{l}.hidden"][:, t], bounds[f"layers.{l}.hidden"][:, t] = h[l], eh[l]
            x, ex = h[l], eh[l]
        logits[:, t], e_logits[:, t] = _lin(p["readout"], x, ex)
    bounds["logits"] = e_logits
    log_probs, bounds["log_probs"] = log_softmax(logits, e_logits)
    return Reference(logits, log_probs, acts, bounds)


def forward(c, params: dict, tokens: np.ndarray) -> Reference:
    """`transformer` or `recurrent`, whichever ``c`` is."""
    return (recurrent if hasattr(c, "d_hidden") else transformer)(c, params, tokens)


def exact_eval_bound(c, params: dict, eval_set) -> np.ndarray:
    """[T] bound on |exact_eval's loss_by_position - its float64 value| for these parameters: the loss is the
    float64 sum_n w_n sum_x p[n, t, x] (-log q[n, t, x]) of float32 log-probabilities, so each position's loss is
    off by at most sum_n w_n sum_x p[n, t, x] e_logq[n, t, x] (w and p sum to 1)."""
    bound = forward(c, params, eval_set.tokens).bound["log_probs"]
    return np.einsum("n,ntx,ntx->t", eval_set.weights, eval_set.next_token_probs, bound)
