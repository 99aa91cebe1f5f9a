"""Training on a 2-token Markov chain: exact evaluation, learning, determinism, resume, checkpoints."""

import functools
import itertools
import json
import shutil

import jax
import jax.numpy as jnp
import msgpack
import numpy as np
import pytest
from f32_reference import transformer as reference_forward
from tolerances import SPREAD_FACTOR, assert_within, f32_sum_bound

from predictive_models import (
    ExactEvalSet,
    TrainConfig,
    TransformerConfig,
    exact_eval,
    load_checkpoint,
    load_model,
    save_checkpoint,
    train,
)
from predictive_models.transformer import init_params

# A 2-token Markov chain: P[i, j] = P(next = j | last = i), stationary pi.
P = np.array([[0.9, 0.1], [0.4, 0.6]])
PI = np.array([0.8, 0.2])  # pi P = pi
T = 6
MODEL = TransformerConfig(vocab_size=2, context_length=T, n_layers=1, d_model=16, n_heads=2, d_head=4, d_mlp=32)


@functools.partial(jax.jit, static_argnums=(1, 2))
def markov_data(key: jax.Array, n: int, length: int) -> jax.Array:
    """n stationary sequences of the chain: x_0 ~ pi, x_{t+1} ~ P[x_t]. int32 [n, length]."""
    u = jax.random.uniform(key, (length, n))
    x0 = (u[0] < PI[1]).astype(jnp.int32)

    def step(x, ut):
        nxt = (ut < jnp.asarray(P[:, 1], jnp.float32)[x]).astype(jnp.int32)
        return nxt, nxt

    _, rest = jax.lax.scan(step, x0, u[1:])
    return jnp.concatenate([x0[None], rest]).T


def markov_eval_set(length: int = T) -> ExactEvalSet:
    """Every binary string of ``length`` with its probability; next-token law = P's row of the last token."""
    tokens = np.array(list(itertools.product(range(2), repeat=length)), np.int32)
    weights = PI[tokens[:, 0]] * np.prod(P[tokens[:, :-1], tokens[:, 1:]], axis=1)
    entropy = -(P * np.log(P)).sum(1)
    return ExactEvalSet(
        tokens=tokens, weights=weights, next_token_probs=P[tokens], optimal_loss=np.full(length, PI @ entropy)
    )


EVAL = markov_eval_set()


def reversed_batches(batch_size: int):
    """markov_data with each batch's rows in reverse order: the same batches, their sums taken in another order
    (a reordering known to be legitimate, for tests/conftest.py's rule 2)."""

    def data(key: jax.Array, n: int, length: int) -> jax.Array:
        return markov_data(key, n, length).reshape(-1, batch_size, length)[:, ::-1].reshape(n, length)

    return data


def config(**overrides) -> TrainConfig:
    base = dict(
        steps=200,
        batch_size=32,
        learning_rate=1e-2,
        warmup_steps=20,
        steps_per_call=20,
        eval_every=100,
        checkpoint_every=100,
        seed=3,
    )
    return TrainConfig(**{**base, **overrides})


def same_params(a, b) -> bool:
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    return len(la) == len(lb) and all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(la, lb))


def max_param_diff(a, b) -> float:
    """The largest absolute difference between two parameter trees, leaf by leaf."""
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(la) == len(lb)
    return max(float(np.max(np.abs(np.asarray(x) - np.asarray(y)))) for x, y in zip(la, lb))


def loss_array(result) -> np.ndarray:
    """[evaluations] the exact losses of a training result's history."""
    return np.array([r["loss"] for r in result.history])


@pytest.fixture(scope="module")
def trained(markov_run):
    """(result, train config, run directory) of seed 3's run (conftest.py's session fixture; read-only)."""
    return markov_run


# ---------------------------------------------------------------------------- data and exact eval


def test_markov_data_has_the_chain_statistics():
    x = np.asarray(markov_data(jax.random.key(0), 20000, 4))
    assert x.shape == (20000, 4) and x.dtype == np.int32
    assert abs(x[:, 0].mean() - PI[1]) < 0.01
    after0 = x[:, 1:][x[:, :-1] == 0]
    assert abs(after0.mean() - P[0, 1]) < 0.01


def test_exact_eval_of_a_perfect_predictor_is_optimal():
    """Feeding the true log-probabilities through the same formula gives relative loss 1."""
    log_q = np.log(EVAL.next_token_probs)
    loss = -np.einsum("n,ntx,ntx->t", EVAL.weights, EVAL.next_token_probs, log_q)
    np.testing.assert_allclose(loss, EVAL.optimal_loss, rtol=1e-12)
    assert EVAL.optimal_loss.shape == (T,)
    # optimal_loss may be left out: it is the weighted entropy of next_token_probs
    implied = ExactEvalSet(EVAL.tokens, EVAL.weights, EVAL.next_token_probs)
    np.testing.assert_allclose(implied.optimal_loss, EVAL.optimal_loss, rtol=1e-12)


def test_exact_eval_record_and_untrained_model():
    record = exact_eval(MODEL, init_params(MODEL, 0), EVAL)
    assert set(record) == {
        "loss",
        "loss_by_position",
        "optimal_loss",
        "optimal_loss_by_position",
        "relative_loss",
        "relative_loss_by_position",
    }
    assert isinstance(record["loss"], float) and len(record["loss_by_position"]) == T
    assert record["relative_loss"] > 1.0
    assert abs(record["loss"] - np.log(2)) < 0.05  # an untrained model predicts about uniformly


def test_eval_set_validation():
    with pytest.raises(ValueError, match="weights"):
        ExactEvalSet(EVAL.tokens, EVAL.weights * 2, EVAL.next_token_probs)
    with pytest.raises(ValueError, match="next_token_probs"):
        ExactEvalSet(EVAL.tokens, EVAL.weights, EVAL.next_token_probs[:, :-1])
    with pytest.raises(ValueError, match="shift by one"):  # an off-by-one optimum is caught
        ExactEvalSet(EVAL.tokens, EVAL.weights, EVAL.next_token_probs, optimal_loss=EVAL.optimal_loss * 1.1)


# ---------------------------------------------------------------------------- configs


@pytest.mark.parametrize(
    "field, value",
    [
        ("steps", 0),
        ("batch_size", -1),
        ("optimizer", "adagrad"),
        ("learning_rate", 0.0),
        ("warmup_steps", -5),
        ("schedule", "linear"),
        ("final_lr_fraction", 1.5),
        ("weight_decay", -1.0),
        ("grad_clip", 0.0),
        ("steps_per_call", 0),
        ("eval_every", 30),
        ("checkpoint_every", 10),
        ("save_at_tokens", (5, -1)),
        ("seed", -1),
        ("steps", 10.0),
        ("micro_batch", 5),
        ("micro_batch", 0),
        ("micro_batch", 8.0),
        ("micro_batch", "big"),
        ("micro_batch", None),
    ],
)
def test_bad_train_config_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        config(**{field: value})


def test_train_config_round_trip_and_weight_decay_rule():
    tc = config(save_at_tokens=[300, 100], grad_clip=None)
    assert tc.save_at_tokens == (100, 300)
    assert TrainConfig.from_dict(json.loads(json.dumps(tc.to_dict()))) == tc
    with pytest.raises(ValueError, match="weight_decay"):
        TrainConfig(optimizer="adam", weight_decay=0.1)
    TrainConfig(optimizer="adamw", weight_decay=0.1)


# ---------------------------------------------------------------------------- micro-batches


@pytest.fixture(scope="module")
def batch_gradient():
    """(loss_fn, params, batch [32, T + 1], (loss, grads) of the whole batch, the same of three row permutations of
    it, the loss's rule-1 bound) for the micro-batch gradient test."""
    import optax

    from predictive_models.models import logits_fn

    forward = logits_fn(MODEL)

    def loss(params, batch):
        return optax.softmax_cross_entropy_with_integer_labels(forward(params, batch[:, :-1]), batch[:, 1:]).mean()

    params = init_params(MODEL, jax.random.key(0))
    batch = markov_data(jax.random.key(1), 32, T + 1)
    value_and_grad = jax.jit(jax.value_and_grad(loss))
    whole = value_and_grad(params, batch)
    permuted = [value_and_grad(params, batch[np.random.default_rng(s).permutation(32)]) for s in range(3)]
    # the loss is the mean of 32 x T token losses -log q: each within its log-probability's bound, and their float32
    # mean within f32_sum_bound of the exact one (tests/conftest.py, rule 1)
    ref = reference_forward(MODEL, params, np.asarray(batch[:, :-1]))
    target = np.asarray(batch[:, 1:])[..., None]
    token_loss = -np.take_along_axis(ref.log_probs, target, -1)
    token_bound = np.take_along_axis(ref.bound["log_probs"], target, -1)
    loss_bound = token_bound.mean() + f32_sum_bound(token_loss.size + 1, token_loss.mean()) / 2
    return loss, params, batch, whole, permuted, loss_bound


@pytest.mark.parametrize("micro, shards", [(4, 1), (8, 1), (8, 2), (16, 4)])
def test_micro_batch_gradient_is_the_whole_batch_gradient(batch_gradient, micro, shards):
    """The mean of equal micro-batch gradients is the batch gradient, for every way of cutting the batch.

    Tolerance: the loss within twice its rule-1 bound (two float32 evaluations); each gradient leaf within
    SPREAD_FACTOR times its spread over three permutations of the batch's rows (rule 2: the same mean, summed in
    other orders; micro-batches were 1-4 times that spread)."""
    from predictive_models.training import micro_batch_grads

    loss, params, batch, whole, permuted, loss_bound = batch_gradient
    parts = jax.jit(micro_batch_grads(jax.value_and_grad(loss), micro, shards))(params, batch)
    assert_within(parts[0], whole[0], 2 * loss_bound, "loss")
    for i, (a, b) in enumerate(zip(jax.tree.leaves(whole[1]), jax.tree.leaves(parts[1]))):
        spread = max(float(np.max(np.abs(np.asarray(jax.tree.leaves(p[1])[i]) - np.asarray(a)))) for p in permuted)
        assert_within(b, a, SPREAD_FACTOR * spread, f"gradient leaf {i}")
    assert micro_batch_grads(jax.value_and_grad(loss), None) is not None


def test_auto_micro_batch_adapts_to_the_device_and_the_group():
    """ "auto": on a CPU at most CPU_MICRO_ROWS sequences of a model per pass, on a GPU the whole batch; an
    integer as given."""
    from types import SimpleNamespace

    from predictive_models.parallel import training_mesh
    from predictive_models.training import CPU_MICRO_ROWS, resolve_micro_batch

    assert CPU_MICRO_ROWS == 128
    cpu = training_mesh(1, 64, 1)
    assert resolve_micro_batch("auto", 512, cpu) == 128
    assert resolve_micro_batch("auto", 200, cpu) == 100  # the largest divisor that fits
    assert resolve_micro_batch("auto", 128, cpu) is None  # small batches are never cut
    assert resolve_micro_batch("auto", 64, training_mesh(1, 64, 8)) is None  # a seed group is not cut
    assert resolve_micro_batch("auto", 256, training_mesh(1, 256, 4)) == 128  # each of its models is
    assert resolve_micro_batch("auto", 131, cpu) is None  # a prime: no divisor fits, the whole batch
    assert resolve_micro_batch(64, 512, cpu) == 64 and resolve_micro_batch(512, 512, cpu) is None
    two = SimpleNamespace(
        mesh=SimpleNamespace(devices=np.array([SimpleNamespace(platform="cpu")] * 2)), n_seeds=1, data_shards=2
    )
    assert resolve_micro_batch("auto", 510, two) == 102  # a multiple of the 2 data shards
    gpu = SimpleNamespace(
        mesh=SimpleNamespace(devices=np.array([SimpleNamespace(platform="gpu")])), n_seeds=1, data_shards=1
    )
    assert resolve_micro_batch("auto", 4096, gpu) is None


@pytest.mark.slow
def test_training_in_micro_batches_follows_the_whole_batch_run():
    """micro_batch changes the summation order only, so a micro-batched run differs from the whole-batch run no
    more than the same run on batches whose rows are reversed (tests/conftest.py, rule 2: within SPREAD_FACTOR
    times that spread). With SGD (updates linear in the gradient) the parameters after 40 steps are compared (a
    wrong gradient would move them by ~1e-2); with Adam, which divides by the gradient's root mean square and so
    magnifies rounding in near-zero components, the exact losses by position."""
    from predictive_models.training import initial_params

    kw = dict(steps=40, eval_every=20, checkpoint_every=20)
    sgd = dict(optimizer="sgd", learning_rate=0.3, **kw)
    whole = train(MODEL, config(**sgd), markov_data, EVAL, progress=False)
    parts = train(MODEL, config(micro_batch=8, **sgd), markov_data, EVAL, progress=False)
    reordered = train(MODEL, config(**sgd), reversed_batches(32), EVAL, progress=False)
    moved = max_param_diff(whole.params_state, initial_params(MODEL, config(**sgd)))
    spread = max_param_diff(reordered.params_state, whole.params_state)
    assert moved > 1e-2 > 100 * SPREAD_FACTOR * spread  # the runs did train, far beyond the rounding spread
    assert max_param_diff(parts.params_state, whole.params_state) <= SPREAD_FACTOR * spread

    def by_position(result):  # [evaluations, T]
        return np.array([r["loss_by_position"] for r in result.history])

    adam_whole = train(MODEL, config(**kw), markov_data, EVAL, progress=False)
    adam_parts = train(MODEL, config(micro_batch=8, **kw), markov_data, EVAL, progress=False)
    adam_reordered = train(MODEL, config(**kw), reversed_batches(32), EVAL, progress=False)
    loss_spread = np.max(np.abs(by_position(adam_reordered) - by_position(adam_whole)))
    assert_within(by_position(adam_parts), by_position(adam_whole), SPREAD_FACTOR * loss_spread, "Adam losses")


# ---------------------------------------------------------------------------- training


def test_training_approaches_the_optimum(trained):
    result, tc, _ = trained
    first, last = result.history[0], result.final
    assert first["step"] == 0 and last["step"] == tc.steps
    assert last["loss"] < first["loss"]
    assert last["relative_loss"] < 1.01, last["relative_loss"]
    assert [r["step"] for r in result.history] == [0, 100, 200]
    assert result.resumed_from_step is None and result.wall_seconds > 0


def test_metrics_jsonl(trained):
    result, tc, run_dir = trained
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [0, 100, 200]
    for key in (
        "step",
        "tokens",
        "loss",
        "optimal_loss",
        "relative_loss",
        "loss_by_position",
        "relative_loss_by_position",
        "train_loss",
        "learning_rate",
        "elapsed_s",
    ):
        assert all(key in r for r in lines), key
    assert lines[1]["tokens"] == 100 * tc.batch_size * T
    assert lines[0]["train_loss"] is None and lines[1]["train_loss"] > 0
    assert lines == result.history


def test_checkpoint_files(trained):
    result, tc, run_dir = trained
    names = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert names == ["final.msgpack", "latest.msgpack", "tokens_0.msgpack", "tokens_10000.msgpack"]
    assert not list(run_dir.rglob("*.tmp"))
    # plain msgpack (no pickle anywhere): readable by the msgpack library alone
    raw = msgpack.unpackb((run_dir / "checkpoints" / "final.msgpack").read_bytes(), strict_map_key=False)
    assert raw["step"] == tc.steps and raw["model_config"] == {"kind": "transformer", **MODEL.to_dict()}
    named = load_checkpoint(run_dir / "checkpoints" / "tokens_10000.msgpack")
    assert named["step"] * tc.batch_size * T >= 10_000 > (named["step"] - tc.steps_per_call) * tc.batch_size * T
    assert load_checkpoint(run_dir / "checkpoints" / "tokens_0.msgpack")["step"] == 0
    config_, state = load_model(run_dir / "checkpoints" / "final.msgpack")
    assert config_ == MODEL and same_params(state, result.params_state)
    assert exact_eval(config_, state, EVAL)["loss"] == pytest.approx(result.final["loss"], rel=1e-6)


def test_checkpoint_round_trip(tmp_path):
    params = init_params(MODEL, 1)
    path = save_checkpoint(
        tmp_path / "a" / "c.msgpack",
        params=params,
        opt_state=None,
        step=7,
        model_config=MODEL,
        train_config=config(),
        extra={"note": "x"},
    )
    ckpt = load_checkpoint(path)
    assert ckpt["step"] == 7 and ckpt["note"] == "x" and TrainConfig.from_dict(ckpt["train_config"]) == config()
    assert same_params(ckpt["params"], params)
    with pytest.raises(ValueError, match="shape"):
        from predictive_models.checkpoint import restore_params

        restore_params(
            TransformerConfig(vocab_size=3, context_length=T, n_layers=1, d_model=16, n_heads=2, d_head=4, d_mlp=32),
            ckpt_raw(path)["params"],
        )


def ckpt_raw(path):
    from flax import serialization

    return serialization.msgpack_restore(path.read_bytes())


def test_same_seed_same_params_other_seed_differs(trained):
    result, tc, _ = trained
    again = train(MODEL, tc, markov_data, EVAL, progress=False)
    assert same_params(again.params_state, result.params_state)
    other = train(MODEL, config(seed=4, save_at_tokens=(0, 10_000)), markov_data, EVAL, progress=False)
    assert not same_params(other.params_state, result.params_state)


def test_interrupted_then_resumed_equals_uninterrupted(trained, tmp_path, monkeypatch):
    import predictive_models.training as training

    result, tc, run_dir = trained
    real_draw, calls = training.group_draw, []

    def interrupted_draw(*args, **kwargs):  # the jitted draw of every fused call's data, counted
        draw = real_draw(*args, **kwargs)

        def counted(*call_args):
            calls.append(1)
            if len(calls) == 7:  # Ctrl-C while drawing the data for call 6, i.e. after step 120
                raise KeyboardInterrupt
            return draw(*call_args)

        return counted

    monkeypatch.setattr(training, "group_draw", interrupted_draw)
    with pytest.raises(KeyboardInterrupt):
        train(MODEL, tc, markov_data, EVAL, tmp_path, progress=False)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "checkpoints" / "latest.msgpack")["step"] == 120
    assert not (tmp_path / "checkpoints" / "final.msgpack").exists()
    resumed = train(MODEL, tc, markov_data, EVAL, tmp_path, progress=False)
    assert resumed.resumed_from_step == 120
    assert same_params(resumed.params_state, result.params_state)
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [0, 100, 200]  # no duplicates
    for a, b in zip(lines, result.history):
        assert {k: v for k, v in a.items() if k != "elapsed_s"} == {k: v for k, v in b.items() if k != "elapsed_s"}
    # a finished run resumes to itself without training
    again = train(MODEL, tc, markov_data, EVAL, tmp_path, progress=False)
    assert again.resumed_from_step == tc.steps and same_params(again.params_state, result.params_state)


def test_stop_hook_and_stale_metrics_are_dropped(trained, tmp_path):
    result, tc, run_dir = trained
    shutil.copytree(run_dir, tmp_path / "run")
    # pretend the run was cut at step 100: its checkpoint, and metrics past it that must go
    stopped = train(MODEL, tc, markov_data, EVAL, tmp_path / "fresh", progress=False, stop_after_steps=100)
    assert stopped.stopped_early and stopped.final["step"] == 100
    shutil.copy(tmp_path / "fresh" / "checkpoints" / "latest.msgpack", tmp_path / "run" / "checkpoints")
    resumed = train(MODEL, tc, markov_data, EVAL, tmp_path / "run", progress=False)
    assert resumed.resumed_from_step == 100 and same_params(resumed.params_state, result.params_state)
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 100, 200]


def test_resume_with_other_settings_is_refused(trained, tmp_path):
    result, tc, run_dir = trained
    shutil.copytree(run_dir, tmp_path / "run")
    with pytest.raises(ValueError, match="learning_rate.*new run directory"):
        train(
            MODEL,
            config(save_at_tokens=(0, 10_000), learning_rate=1e-3),
            markov_data,
            EVAL,
            tmp_path / "run",
            progress=False,
        )
    bigger = TransformerConfig(**{**MODEL.to_dict(), "d_mlp": 64})
    with pytest.raises(ValueError, match="d_mlp"):
        train(bigger, tc, markov_data, EVAL, tmp_path / "run", progress=False)


def test_bad_data_fn_is_reported():
    with pytest.raises(ValueError, match="data_fn"):
        train(
            MODEL,
            config(steps=20, eval_every=20, checkpoint_every=20),
            lambda key, n, length: jnp.zeros((n, length - 1), jnp.int32),
            EVAL,
            progress=False,
        )
    with pytest.raises(ValueError, match="vocabulary"):
        train(
            MODEL,
            config(steps=20, eval_every=20, checkpoint_every=20),
            lambda key, n, length: jnp.full((n, length), 2, jnp.int32),
            EVAL,
            progress=False,
        )


def _without_elapsed(records):
    return [{k: v for k, v in r.items() if k != "elapsed_s"} for r in records]


class _InterruptAfterClose:
    """A metrics file whose ``with`` block raises KeyboardInterrupt once the step-100 record is written."""

    def __init__(self, handle):
        self.handle, self.text = handle, ""

    def __enter__(self):
        return self

    def write(self, text):
        self.text += text
        return self.handle.write(text)

    def __exit__(self, *exc):
        self.handle.close()
        if '"step": 100,' in self.text:
            raise KeyboardInterrupt
        return False


@pytest.mark.parametrize("cut", ["before_write", "after_write"])
def test_interrupt_during_an_evaluation_resumes_to_identical_metrics(trained, tmp_path, monkeypatch, cut):
    """Ctrl-C inside the step-100 evaluation (before or after its record is written): every line of the
    resumed metrics.jsonl, training loss included, equals the uninterrupted run's."""
    import builtins

    import predictive_models.training as training

    result, tc, _ = trained
    real_eval, calls = training.exact_eval, []

    def interrupted_eval(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the step-100 evaluation
            raise KeyboardInterrupt
        return real_eval(*args, **kwargs)

    if cut == "before_write":
        monkeypatch.setattr(training, "exact_eval", interrupted_eval)
    else:
        monkeypatch.setattr(
            training, "open", lambda *a, **k: _InterruptAfterClose(builtins.open(*a, **k)), raising=False
        )
    with pytest.raises(KeyboardInterrupt):
        train(MODEL, tc, markov_data, EVAL, tmp_path, progress=False)
    monkeypatch.undo()
    assert load_checkpoint(tmp_path / "checkpoints" / "latest.msgpack")["step"] == 100
    resumed = train(MODEL, tc, markov_data, EVAL, tmp_path, progress=False)
    assert resumed.resumed_from_step == 100
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [0, 100, 200]
    assert _without_elapsed(lines) == _without_elapsed(result.history)
    assert same_params(resumed.params_state, result.params_state)


@pytest.mark.parametrize("damage", [b"", b"\x00garbage\xff", "truncate"])
def test_a_damaged_checkpoint_is_named_with_the_fix(trained, tmp_path, damage):
    from predictive_models.checkpoint import CheckpointError

    _, tc, run_dir = trained
    shutil.copytree(run_dir, tmp_path / "run")
    latest = tmp_path / "run" / "checkpoints" / "latest.msgpack"
    latest.write_bytes(latest.read_bytes()[:200] if damage == "truncate" else damage)
    with pytest.raises(CheckpointError, match="latest.msgpack is damaged.*delete") as info:
        train(MODEL, tc, markov_data, EVAL, tmp_path / "run", progress=False)
    assert str(latest) in str(info.value) and "\n" not in str(info.value)


def test_a_non_utf8_metrics_file_is_named(trained, tmp_path):
    _, tc, run_dir = trained
    shutil.copytree(run_dir, tmp_path / "run")
    (tmp_path / "run" / "metrics.jsonl").write_bytes(b'{"step": 0}\n\xff\xfe\n')
    with pytest.raises(ValueError, match="metrics.jsonl is damaged.*not UTF-8.*delete it"):
        train(MODEL, tc, markov_data, EVAL, tmp_path / "run", progress=False)


def test_a_named_checkpoint_cut_short_by_an_interrupt_is_saved_on_resume(trained, tmp_path, monkeypatch):
    import predictive_models.training as training

    result, tc, run_dir = trained
    real_save = training.save_checkpoint

    def interrupted_save(path, **kwargs):
        if path.name == "tokens_10000.msgpack":  # reached after the call ending at step 60
            raise KeyboardInterrupt
        return real_save(path, **kwargs)

    monkeypatch.setattr(training, "save_checkpoint", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        train(MODEL, tc, markov_data, EVAL, tmp_path, progress=False)
    monkeypatch.undo()
    assert not (tmp_path / "checkpoints" / "tokens_10000.msgpack").exists()
    assert train(MODEL, tc, markov_data, EVAL, tmp_path, progress=False).resumed_from_step == 60
    saved, reference = (load_checkpoint(d / "checkpoints" / "tokens_10000.msgpack") for d in (tmp_path, run_dir))
    assert saved["step"] == reference["step"] == 60
    assert same_params(saved["params"], reference["params"])
