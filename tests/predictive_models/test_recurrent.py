"""Recurrent models: config validation, activation names, the recurrence against NumPy, subsets,
determinism, and a short training run on Mess3 that approaches the Bayes-optimal loss."""

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from f32_reference import recurrent as numpy_recurrence
from tolerances import assert_within

from compmech import mixed_states, optimal_loss_by_position
from hmm_processes import get_process, sample
from predictive_models.recurrent import (
    KINDS,
    RecurrentConfig,
    _jitted_forward,
    activation_names,
    activations,
    compute_log_probs,
    compute_logits,
    init_params,
    layer_names,
    logits_fn,
    n_params,
    probe_layer_name,
    run_batched,
    to_model,
    to_state,
)
from predictive_models.training import train_chunk


def tiny(kind: str, **kw) -> RecurrentConfig:
    return RecurrentConfig(
        **{"kind": kind, "vocab_size": 5, "context_length": 7, "n_layers": 2, "d_hidden": 6, "d_embed": 4, **kw}
    )


def tokens(n: int = 9, T: int = 7, V: int = 5, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, V, (n, T)).astype(np.int32)


# ---------------------------------------------------------------------------- config


def test_defaults_and_round_trip():
    c = RecurrentConfig("gru", vocab_size=3)
    assert (c.context_length, c.n_layers, c.d_hidden, c.d_embed) == (10, 1, 64, 64)
    for kind in KINDS:
        assert RecurrentConfig.from_dict(tiny(kind).to_dict()) == tiny(kind)
    with pytest.raises(ValueError, match="d_hiden"):
        RecurrentConfig.from_dict({**tiny("rnn").to_dict(), "d_hiden": 3})


@pytest.mark.parametrize(
    "field, value",
    [
        ("vocab_size", 0),
        ("context_length", -1),
        ("n_layers", 0),
        ("d_hidden", 2.5),
        ("d_embed", "4"),
        ("n_layers", True),
    ],
)
def test_bad_config_names_the_field(field, value):
    kwargs = dict(kind="lstm", vocab_size=3)
    kwargs[field] = value
    with pytest.raises(ValueError, match=field):
        RecurrentConfig(**kwargs)


def test_bad_kind_lists_the_kinds():
    with pytest.raises(ValueError, match="'rnn', 'gru', 'lstm'.*'transformer'"):
        RecurrentConfig("transformer", vocab_size=3)


def test_bad_names_and_tokens():
    c = tiny("gru")
    p = init_params(c, 0)
    with pytest.raises(ValueError, match="layers.0.cell"):  # GRUs have no cell state
        activations(c, p, tokens(), ["layers.0.cell"])
    with pytest.raises(ValueError, match="distinct"):
        activations(c, p, tokens(), ["embed", "embed"])
    with pytest.raises(ValueError, match="context_length 7"):
        activations(c, p, tokens(T=8))
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        compute_logits(c, p, tokens() + 5)
    with pytest.raises(ValueError, match="method"):
        compute_log_probs(c, p, tokens(), method="kv")


# ---------------------------------------------------------------------------- names


@pytest.mark.parametrize("kind", KINDS)
def test_documented_names_are_exactly_those_returned(kind):
    c = tiny(kind)
    names = activation_names(c)
    expected = ["embed", "layers.0.hidden", "layers.1.hidden"]
    if kind == "lstm":
        expected = ["embed", "layers.0.hidden", "layers.0.cell", "layers.1.hidden", "layers.1.cell"]
    assert names == expected
    logits, acts = run_batched(c, init_params(c, 0), tokens(), names)
    assert list(acts) == names
    assert logits.shape == (9, 7, 5) and logits.dtype == np.float32
    for name, a in acts.items():
        assert a.dtype == np.float32 and a.shape == (9, 7, 4 if name == "embed" else 6), name
    assert layer_names(c) == ["layers.0.hidden", "layers.1.hidden"]
    assert probe_layer_name(c) == "layers.1.hidden"
    assert set(layer_names(c)) <= set(names) and probe_layer_name(c) in names


# ---------------------------------------------------------------------------- the maths


# f32_reference.recurrent: the recurrence written out in float64 NumPy, position by position, each value with the
# bound a float32 evaluation keeps to (tests/conftest.py, rule 1): a float32 path lies within `bound` of it, two
# float32 paths (batched differently, prefix-shared or not, jitted or eager) within 2 * bound of each other.


@pytest.mark.parametrize("kind", KINDS)
def test_states_match_a_step_by_step_numpy_recurrence(kind):
    c = tiny(kind)
    p = init_params(c, 3)
    toks = tokens(n=4, seed=1)
    logits, acts = run_batched(c, p, toks, activation_names(c))
    ref = numpy_recurrence(c, p, toks)
    for name in activation_names(c):
        assert_within(acts[name], ref.acts[name], ref.bound[name], name)
    assert_within(logits, ref.logits, ref.bound["logits"], "logits")
    # the log-probabilities are the log-softmax of these logits
    log_q = compute_log_probs(c, p, toks)
    assert_within(log_q, ref.log_probs, ref.bound["log_probs"], "log_probs")
    # the model object and the pure training function agree with the batched call (two float32 paths)
    assert_within(np.asarray(to_model(c, p)(jnp.asarray(toks))), logits, 2 * ref.bound["logits"], "model")
    assert_within(np.asarray(jax.jit(logits_fn(c))(p, jnp.asarray(toks))), logits, 2 * ref.bound["logits"], "logits_fn")


def test_lstm_forget_gate_starts_open():
    c = tiny("lstm")
    bias = np.asarray(init_params(c, 0)["layers"][0]["input"]["bias"])
    H = c.d_hidden
    assert np.all(bias[H : 2 * H] == 1.0) and np.all(bias[:H] == 0.0) and np.all(bias[2 * H :] == 0.0)


@pytest.mark.parametrize("kind", KINDS)
def test_causal_and_batching_does_not_change_results(kind):
    c = tiny(kind)
    p = init_params(c, 1)
    toks = tokens(n=7)
    changed = toks.copy()
    changed[:, 4] = (changed[:, 4] + 1) % c.vocab_size
    a, b = compute_logits(c, p, toks), compute_logits(c, p, changed)
    np.testing.assert_array_equal(a[:, :4], b[:, :4])  # positions before 4 never see token 4
    assert np.abs(a[:, 4:] - b[:, 4:]).max() > 1e-4
    one = activations(c, p, toks, activation_names(c))
    small = activations(c, p, toks, activation_names(c), batch_size=3)  # 3 + 3 + a padded 1
    bound = numpy_recurrence(c, p, toks).bound  # conftest, rule 1: two float32 paths within 2 x bound
    for name in one:
        assert_within(small[name], one[name], 2 * bound[name], name)
    # shorter sequences are prefixes of the longer run
    assert_within(compute_logits(c, p, toks[:, :3]), a[:, :3], 2 * bound["logits"][:, :3], "shorter sequences")


@pytest.mark.parametrize("kind", KINDS)
def test_prefix_sharing_equals_the_full_forward(kind):
    """Every string of a length (rows share prefixes): each prefix computed once = the whole run."""
    c = tiny(kind, vocab_size=3, context_length=5)
    p = init_params(c, 2)
    words = np.array(list(itertools.product(range(3), repeat=5)), np.int32)[::-1].copy()  # order does not matter
    steps = []
    bound = numpy_recurrence(c, p, words).bound  # conftest, rule 1: two float32 paths within 2 x bound
    for names, what in ((activation_names(c), "log_probs"), (["layers.0.hidden"], None)):
        full = run_batched(c, p, words, names, what, method="full")
        prefix = run_batched(c, p, words, names, what, method="prefix", batch_size=100, on_step=steps.append)
        assert list(prefix[1]) == list(names)
        for name in names:
            assert_within(prefix[1][name], full[1][name], 2 * bound[name], name)
        if what:
            assert_within(prefix[0], full[0], 2 * bound["log_probs"], "log_probs")
        else:
            assert prefix[0] is None
    assert steps == [1] * 5 * 2  # the prefix method reports each position
    auto_steps = []
    activations(c, p, words, ["layers.0.hidden"], batch_size=100, on_step=auto_steps.append)
    assert auto_steps == [1] * 5  # "auto" took the prefix method: 363 distinct prefixes < half of 243 x 5


# ---------------------------------------------------------------------------- subsets


def all_primitives(jaxpr) -> list:
    """Every equation of a jaxpr and of the jaxprs nested in it (jit, scan bodies)."""
    eqns = []
    for eqn in jaxpr.eqns:
        eqns.append(eqn)
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    eqns += all_primitives(inner)
    return eqns


def traced(config, names, what):
    p = init_params(config, 0)
    return all_primitives(jax.make_jaxpr(_jitted_forward(config, tuple(names), what))(p, jnp.asarray(tokens())).jaxpr)


@pytest.mark.parametrize("kind", KINDS)
def test_a_subset_computes_and_returns_only_what_was_asked(kind):
    c = tiny(kind, n_layers=3)
    p = init_params(c, 0)
    got = activations(c, p, tokens(), ["layers.0.hidden"])
    assert list(got) == ["layers.0.hidden"]
    np.testing.assert_array_equal(
        got["layers.0.hidden"], activations(c, p, tokens(), activation_names(c))["layers.0.hidden"]
    )

    def readouts(eqns):  # matmuls onto the vocabulary: [.., d_hidden] @ [d_hidden, V]
        return [
            e
            for e in eqns
            if e.primitive.name == "dot_general" and tuple(e.invars[1].aval.shape) == (c.d_hidden, c.vocab_size)
        ]

    def scans(eqns):
        return [e for e in eqns if e.primitive.name == "scan"]

    only_first = traced(c, ["layers.0.hidden"], None)
    assert not readouts(only_first)  # no logits asked: the readout is not in the computation
    assert len(scans(only_first)) == 1  # layers 1 and 2 are never run
    assert len(scans(traced(c, ["layers.1.hidden"], None))) == 2
    everything = traced(c, [], "logits")
    assert len(readouts(everything)) == 1 and len(scans(everything)) == 3
    # and what is not asked for is not returned from the jitted call (so not kept in memory)
    out = _jitted_forward(c, ("embed",), None)(p, jnp.asarray(tokens()))
    assert out[0] is None and list(out[1]) == ["embed"]


# ---------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_params(kind):
    c = tiny(kind)
    a, b, other = init_params(c, 7), init_params(c, 7), init_params(c, 8)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert any(
        not np.array_equal(np.asarray(x), np.asarray(z)) for x, z in zip(jax.tree.leaves(a), jax.tree.leaves(other))
    )
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(a))
    assert n_params(c) == sum(leaf.size for leaf in jax.tree.leaves(a))
    state = to_state(c, a)  # the nnx.State form is accepted too and gives the same numbers
    np.testing.assert_array_equal(compute_logits(c, state, tokens()), compute_logits(c, a, tokens()))


def test_parameter_counts():
    """H (d_in + H + 1) per gate block for the RNN and LSTM; the GRU has a recurrent bias too."""
    V, E, H = 5, 4, 6
    readout = H * V + V + V * E
    assert n_params(tiny("rnn", n_layers=1)) == readout + (E + H + 1) * H
    assert n_params(tiny("lstm", n_layers=1)) == readout + (E + H + 1) * 4 * H
    assert n_params(tiny("gru", n_layers=1)) == readout + (E + H + 2) * 3 * H


# ---------------------------------------------------------------------------- training


@pytest.mark.parametrize("kind", ["gru", "lstm"])
@pytest.mark.slow
def test_training_on_mess3_approaches_the_optimal_loss(kind):
    """A tiny model, Adam in a jitted lax.scan over steps: the exact loss over every context falls
    far below log 3 (uniform guessing) and to within 1% of the Bayes-optimal loss."""
    T, B, steps = 6, 64, 300
    hmm = get_process("mess3", x=0.05, alpha=0.85)
    c = RecurrentConfig(kind, vocab_size=3, context_length=T, n_layers=1, d_hidden=16)
    forward = logits_fn(c)
    tx = optax.adam(1e-2)

    chunk = train_chunk(forward, tx)  # the training loop's k steps in one jitted lax.scan

    def train(params, batches):
        params, _, losses = chunk(params, tx.init(params), batches)
        return params, losses

    batches = sample(
        hmm, jax.random.key(0), steps * B, T + 1, with_beliefs=False, with_next_token_probs=False
    ).tokens.reshape(steps, B, T + 1)
    params, losses = train(jax.tree.map(jnp.asarray, init_params(c, 0)), batches)
    losses = np.asarray(losses)
    assert np.all(np.isfinite(losses))

    ms = mixed_states(hmm, T)
    level = ms.level(T)
    log_q = compute_log_probs(c, params, level.words)  # [3^T, T, 3]
    p_next = ms.prefix_next_token_probs(T)  # [3^T, T, 3]
    loss = -np.einsum("n,ntx,ntx->t", level.probs, p_next, log_q.astype(np.float64))
    optimal = optimal_loss_by_position(hmm, T)
    initial = -np.einsum(
        "n,ntx,ntx->t", level.probs, p_next, compute_log_probs(c, init_params(c, 0), level.words).astype(np.float64)
    )
    assert initial.mean() > 0.95 * math.log(3)  # it starts near uniform guessing ...
    assert loss.mean() < optimal.mean() + 0.05 * (math.log(3) - optimal.mean())  # ... and ends near the optimum
    assert loss.mean() / optimal.mean() < 1.01  # measured: 1.003 (GRU), 1.002 (LSTM)
