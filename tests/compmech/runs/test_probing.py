"""compmech.runs.probing.probe_model: probe.json's fields, and the same probe.json whatever the thread counts."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
TINY = ROOT / "tests" / "data" / "tiny_mess3.toml"
# probe_model on an untrained 4-layer d_model 64 model (concat: 384 features) over all 3^6 strings
SCRIPT = f"""
import dataclasses
import json
from compmech.runs.config import load_config
from compmech.runs.sources import context_set
from compmech.runs.probing import probe_model
from compmech.runs.processes import build_process
from predictive_models.transformer import init_params
cfg = load_config({str(TINY)!r}, {{"model.n_layers": 4, "model.d_model": 64, "model.d_mlp": 128}})
hmm = build_process(cfg.process)
mc = cfg.model_config(hmm.vocab_size)
probe = probe_model(cfg, mc, init_params(mc, 0), context_set(hmm, mc.context_length), "concat")
print(json.dumps(probe.to_json(), sort_keys=True))
"""


def probe_json(**env) -> str:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def runs():
    single = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    return [
        probe_json(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", XLA_FLAGS=single),
        probe_json(OMP_NUM_THREADS="2", OPENBLAS_NUM_THREADS="2", XLA_FLAGS=""),
    ]


@pytest.mark.slow
def test_same_probe_json_under_any_blas_and_xla_thread_count(runs):
    assert runs[0] == runs[1]


@pytest.mark.slow
def test_probe_json_fields(runs):
    probe = json.loads(runs[0])
    assert probe["heldout_contexts"]["stratified_by"] == "position"
    assert probe["heldout_contexts"]["test_fraction"] == 0.2 and probe["heldout_contexts"]["n_repeats"] == 2
    assert probe["n_contexts"] == sum(3**k for k in range(1, 7)) and probe["n_rows"] == 3**6 * 6
    layers = probe["layers"]
    assert set(layers) == {"embedding", "block_1", "block_2", "block_3", "block_4", "final_ln", "concat"}
    for res in layers.values():
        assert {
            "mse",
            "r2",
            "mse_heldout",
            "mse_heldout_std",
            "heldout_note",
            "mse_heldout_contexts",
            "mse_heldout_contexts_std",
            "r2_heldout_contexts",
            "heldout_contexts_note",
            "mse_shuffled",
            "n_rows",
            "n_features",
        } <= set(res)
    # 384 concatenated features: the paper's 20% string split keeps too few distinct contexts to fit them
    concat = layers["concat"]
    assert concat["n_features"] == 384
    assert concat["mse_heldout"] is None and concat["heldout_note"].startswith("underdetermined: ")
    assert concat["mse_heldout_contexts"] is not None  # 80% of the 1092 contexts is enough
    # an untrained model's random features do not generalise to unseen contexts as they fit seen ones
    for res in layers.values():
        if res["mse_heldout_contexts"] is not None:
            assert res["mse_heldout_contexts"] > res["mse"]


# ------------------------------------------------------- the memory-lean path against the per-string arrays


def _random_params(mc, seed: int):
    """Parameters drawn as a LeCun-normal-ish init: instant (the jitted init_params compiles for seconds)."""
    import jax
    import numpy as np

    from predictive_models.models import abstract_params

    rng = np.random.default_rng(seed)
    return jax.tree.map(
        lambda s: (rng.standard_normal(s.shape) / np.sqrt(s.shape[0])).astype(np.float32), abstract_params(mc)
    )


def test_probe_model_equals_the_probe_of_the_per_string_activations(monkeypatch):
    """probe_model (one activation row per distinct prefix, the concatenation read a chunk at a time) against the
    straightforward path: every layer's [N, T, d] activations (compute_activations, the same KV-cache forward),
    their [R, d] rows (probe_rows) and the [R, sum d] concatenation: the same numbers, bit for bit, for the
    trained and the untrained model."""
    import numpy as np

    import predictive_models
    from compmech.runs.config import load_config
    from compmech.runs.probing import probe_model
    from compmech.runs.processes import build_process
    from compmech.runs.sources import context_set
    from predictive_models import compute_activations
    from probes import concat_features, evaluate_probe, probe_rows

    cfg = load_config(TINY, {"probe.weighting": "probability"})
    hmm = build_process(cfg.process)
    mc = cfg.model_config(hmm.vocab_size)
    ctx = context_set(hmm, mc.context_length)
    trained, untrained = _random_params(mc, 0), _random_params(mc, 1)
    with monkeypatch.context() as m:  # the probe phase never builds [N, T, d] activations
        m.setattr(predictive_models, "compute_activations", None)
        lean = probe_model(cfg, mc, trained, ctx, "block_2", untrained_params=untrained)

    def straightforward(params, concat: bool):
        acts = compute_activations(mc, params, ctx.tokens, method="prefix", names=list(lean.results)[:-1])
        rows = {
            name: probe_rows(a, ctx.beliefs, ctx.tokens, ctx.probs, weighting="probability") for name, a in acts.items()
        }
        if concat:
            rows["concat"] = dataclasses.replace(rows["block_2"], X=concat_features({n: r.X for n, r in rows.items()}))
        evaluations = {
            name: evaluate_probe(
                r.X,
                r.Y,
                r.groups,
                contexts=r.context_ids,
                positions=r.positions,
                sample_weight=r.weights,
                train_fraction=cfg.probe.train_fraction,
                n_repeats=cfg.probe.n_repeats,
                seed=cfg.seed,
            )
            for name, r in rows.items()
        }
        return evaluations, rows["block_2"]

    want, rows = straightforward(trained, True)
    want_untrained, _ = straightforward(untrained, False)
    for field in ("Y", "weights", "groups", "positions", "context_ids"):
        np.testing.assert_array_equal(getattr(lean.data, field), getattr(rows, field))
    for got, ref in ((lean.results, want), (lean.untrained, want_untrained)):
        assert list(got) == list(ref)
        for name in ref:
            assert got[name] == ref[name].result, name
    for name, ev in want.items():
        np.testing.assert_array_equal(lean.predictions[name], ev.predictions)
    np.testing.assert_array_equal(lean.shuffled, want["block_2"].shuffled)


def test_context_activations_maps_the_models_prefix_rows_to_the_probes_context_ids():
    import numpy as np

    from compmech.runs.probing import context_activations
    from predictive_models import PrefixActivations
    from probes import distinct_prefix_ids

    tokens = np.array([[0, 1], [1, 0], [0, 0], [1, 1]])
    ids = distinct_prefix_ids(tokens)  # prefixes 0, 1, 00, 01, 10, 11 -> 0..5
    feats = np.arange(6, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)  # [6, 2]: row u holds u
    same = PrefixActivations(rows={"x": feats}, ids=ids, offsets=np.array([0, 2, 6]))
    assert context_activations(same, tokens, ids.reshape(-1))["x"] is feats  # the same order: no copy
    relabel = np.array([1, 0, 5, 4, 3, 2])  # a model that numbers its prefix rows otherwise
    other = PrefixActivations(rows={"x": feats[np.argsort(relabel)]}, ids=relabel[ids], offsets=np.array([0, 2, 6]))
    np.testing.assert_array_equal(context_activations(other, tokens, ids.reshape(-1))["x"], feats)
    broken = PrefixActivations(
        rows={"x": feats}, ids=np.array([[0, 2], [1, 4], [0, 2], [1, 5]]), offsets=np.array([0, 2, 6])
    )  # strings 0 and 2 differ but share a row
    with pytest.raises(RuntimeError, match="disagree"):
        context_activations(broken, tokens, ids.reshape(-1))
