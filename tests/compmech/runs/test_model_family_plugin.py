"""A model family the runner has never heard of (the tests' window MLP) trains, probes and reports through the
unchanged runner once registered; the memory preflight asks each family for its sizes."""

import json
import math
import sys
from pathlib import Path

import pytest

from compmech.runs.config import ConfigError, config_from_dict, load_config
from compmech.runs.experiment import run_experiment
from compmech.runs.preflight import estimate_memory, model_sizes
from compmech.runs.run_dir import load_run

sys.path.insert(0, str(Path(__file__).parents[2] / "predictive_models"))  # the tests' window_mlp family
from window_mlp import KIND, WindowMLP, registered  # noqa: E402

TINY = Path(__file__).parents[2] / "data" / "tiny_mess3.toml"
WINDOW = {"kind": KIND, "context_length": 6, "window": 3, "d_embed": 8, "d_hidden": 32}


@pytest.fixture(scope="module")
def window_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "window"
    with registered():  # only while it runs: the other tests see the built-in kinds alone
        cfg = config_from_dict({**load_config(TINY).to_dict(), "name": "tiny_window", "model": WINDOW})
        summary = run_experiment(cfg, out, progress=False)
        run = load_run(out)
        return out, summary, run.model(), run.contexts.tokens


def test_an_unregistered_kind_is_refused_by_config_validation():
    with pytest.raises(ConfigError, match=f"kind must be one of 'transformer', 'rnn', 'gru', 'lstm'; got '{KIND}'"):
        config_from_dict({**load_config(TINY).to_dict(), "model": WINDOW})


def test_a_registered_family_trains_probes_and_reports(window_run):
    out, summary, model, tokens = window_run
    for name in (
        "probe.json",
        "summary.json",
        "report.html",
        "complete.json",
        "config.toml",
        "checkpoints/final.msgpack",
    ):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    probe = json.loads((out / "probe.json").read_text())
    assert probe["probe_layer"] == "hidden" and set(probe["layers"]) == {"embed", "hidden", "concat"}
    best = probe["layers"]["hidden"]
    for key in ("mse", "r2", "mse_heldout", "mse_heldout_contexts", "mse_shuffled"):
        assert math.isfinite(best[key]), key
    assert best["mse"] < best["mse_shuffled"]  # a window of 3 tokens holds some of the belief, the shuffle none
    assert probe["untrained"]["layer"] == "hidden"
    assert summary.model.kind == KIND and json.loads((out / "summary.json").read_text())["model"]["kind"] == KIND
    assert summary.relative_loss < 1.1  # it learnt: Mess3's next token needs little more than the last few
    assert f'kind = "{KIND}"' in (out / "config.toml").read_text()
    # Run.model() is the family's own module, not a transformer
    assert isinstance(model, WindowMLP) and model(tokens[:2]).shape == (2, 6, 3)


# [model] sections and the model's vocabulary -> ModelSizes before the families answered
# (compmech.runs.preflight.model_sizes's arithmetic at e774e3c, evaluated there)
SIZES_AT_BASE = [
    (
        {
            "kind": "transformer",
            "context_length": 10,
            "n_layers": 4,
            "d_model": 64,
            "n_heads": 1,
            "d_head": 8,
            "d_mlp": 256,
        },
        3,
        (143075, 6, 384, 3257),
    ),
    (
        {
            "kind": "transformer",
            "context_length": 6,
            "n_layers": 2,
            "d_model": 16,
            "n_heads": 2,
            "d_head": 4,
            "d_mlp": 32,
            "attn_only": True,
        },
        4,
        (1428, 4, 64, 236),
    ),
    (
        {
            "kind": "transformer",
            "context_length": 8,
            "n_layers": 3,
            "d_model": 24,
            "n_heads": 3,
            "d_head": 5,
            "d_mlp": 40,
            "layer_norm": False,
            "positional": "none",
        },
        5,
        (10724, 4, 96, 822),
    ),
    ({"kind": "rnn", "context_length": 10, "n_layers": 1, "d_hidden": 64}, 3, (8643, 1, 64, 393)),
    ({"kind": "gru", "context_length": 7, "n_layers": 3, "d_hidden": 24, "d_embed": 5}, 7, (9642, 3, 72, 818)),
    ({"kind": "lstm", "context_length": 12, "n_layers": 2, "d_hidden": 32}, 4, (16900, 2, 64, 940)),
]
# estimate_memory(model, {"batch_size": 64, "steps_per_call": 10}, num_states=3, vocab_size=V, bos=...) at e774e3c:
# (model, training_batch, context_set, probe, probe_fit, peak) bytes
ESTIMATES_AT_BASE = {
    (0, False): (2289200, 8478720, 33067440, 202181472, 9437184, 771263296),
    (0, True): (2291264, 8486400, 12597120, 67393824, 9437184, 616007392),
    (1, False): (22848, 452096, 1638400, 4150272, 262144, 530361664),
    (3, False): (138288, 1146880, 33067440, 88809312, 262144, 646565184),
    (4, True): (154752, 1573632, 80471916, 131766832, 331776, 737013276),
    (5, False): (270400, 3054080, 12750684160, 28275201024, 262144, 41550705728),
    (5, True): (271440, 3063296, 3590324224, 7068800256, 262144, 11183946064),
}


@pytest.mark.parametrize("model, V, sizes", SIZES_AT_BASE)
def test_the_families_sizes_are_the_preflight_s_before(model, V, sizes):
    assert tuple(model_sizes(model, V)) == sizes


@pytest.mark.parametrize("case, bos", sorted(ESTIMATES_AT_BASE))
def test_the_memory_estimate_is_unchanged(case, bos):
    model, V, _ = SIZES_AT_BASE[case]
    e = estimate_memory(model, {"batch_size": 64, "steps_per_call": 10}, num_states=3, vocab_size=V, bos=bos)
    assert (e.model, e.training_batch, e.context_set, e.probe, e.probe_fit, e.peak) == ESTIMATES_AT_BASE[case, bos]


def test_a_registered_family_is_sized_by_its_defaults():
    with registered() as fam:
        sizes = model_sizes(WINDOW, 4)
        n = (4 + 1) * 8 + 24 * 32 + 32 + 32 * 4 + 4  # embedding (with the pad row), hidden layer, readout
        assert tuple(sizes) == (n, 2, 24 + 32, 24 + 32 + 3 * 4)
        assert fam.n_params(fam.config_class(vocab_size=4, **{k: v for k, v in WINDOW.items() if k != "kind"})) == n
