"""Analyse activations of a model trained elsewhere (`compmech.analyze`, `compmech probe`, `compmech contexts`):
the same numbers as a run's probe, the alignments, the checks on bad input, the CLI end to end."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import compmech
from compmech.runs.analyze import AnalysisInputError, analyze, resolve_process
from compmech.runs.array_files import read_arrays, read_safetensors, safetensors_bytes
from compmech.runs.cli import main
from compmech.runs.config import load_config
from compmech.runs.probing import probe_model
from compmech.runs.processes import build_process
from compmech.runs.sources import context_set, source_of
from compmech.runs.summary import read_summary

ROOT = Path(__file__).resolve().parents[3]
TINY = ROOT / "tests" / "data" / "tiny_mess3.toml"
NAMES = ["embedding", "block_1", "block_2", "final_ln"]


def _random_params(mc, seed: int):
    """A model's parameters drawn at random with NumPy (instant; the jitted init compiles for seconds)."""
    import jax

    from predictive_models.models import abstract_params

    rng = np.random.default_rng(seed)
    return jax.tree.map(
        lambda s: (rng.standard_normal(s.shape) / np.sqrt(s.shape[0])).astype(np.float32), abstract_params(mc)
    )


@pytest.fixture(scope="module")
def native():
    """A random tiny transformer of tiny_mess3.toml, its context set, the run's probe and the [N, T, d] activations."""
    import predictive_models

    cfg = load_config(TINY)
    hmm = build_process(cfg.process)
    mc = cfg.model_config(hmm.vocab_size)
    params = _random_params(mc, 1)
    ctx = context_set(hmm, mc.context_length)
    probe = probe_model(cfg, mc, params, ctx, "block_2")
    acts = predictive_models.compute_activations(mc, params, ctx.tokens, names=NAMES)
    return cfg, mc, params, ctx, probe, acts


def test_analyze_gives_the_runs_probe_numbers(native, tmp_path):
    """The same model's activations analysed from arrays give probe.json's numbers as the run's probe phase (the
    same rows, splits and seed: equal to float64 rounding, the fits' sums being taken in another order)."""
    cfg, mc, params, ctx, probe, acts = native
    result = analyze(
        ctx.tokens,
        acts,
        "mess3",
        params={"x": 0.05, "alpha": 0.85},
        out=tmp_path / "a",
        probe_layer="block_2",
        probe={"n_repeats": cfg.probe.n_repeats},
        seed=cfg.seed,
    )
    ours, theirs = result.probe_json, probe.to_json()
    assert set(ours["layers"]) == set(theirs["layers"]) == {*NAMES, "concat"}
    for layer, res in theirs["layers"].items():
        for key in ("mse", "r2", "mse_heldout_contexts", "mse_heldout", "mse_shuffled"):
            assert ours["layers"][layer][key] == pytest.approx(res[key], rel=1e-9, abs=1e-15), (layer, key)
    assert ours["n_rows"] == theirs["n_rows"] and ours["analysis"]["prefix_spread"]["block_2"] == 0.0
    assert ours["regime"] == "exact" and result.sequences.every_string
    for name in (
        "probe.json",
        "analysis.json",
        "summary.json",
        "report.html",
        "config.toml",
        "process.json",
        "figures/belief_fractal.png",
        "figures/probe_layers.png",
        "figures/distance_geometry.png",
        "complete.json",
    ):
        assert (result.path / name).is_file(), name
    summary = read_summary(result.path)
    assert summary.probe_layer == "block_2" and summary.model.kind == "external"
    assert summary.probe["mse"] == ours["layers"]["block_2"]["mse"]
    html = (result.path / "report.html").read_text()
    assert "a model trained elsewhere" in html and "0 steps" not in html


def test_start_token_and_reads_before_are_one_layout(tmp_path):
    """A model that reads a start token: its activations with the start token in the tokens (start_token) and the
    same activations with the process tokens only, one position ahead (reads = "before"), give the same analysis;
    position 0's target is the prior."""
    import predictive_models

    cfg = load_config(TINY)
    hmm = build_process(cfg.process)
    mc = cfg.model_config(hmm.vocab_size + 1)  # the start token is id V
    params = _random_params(mc, 2)
    ctx = context_set(hmm, mc.context_length, bos=True)  # [N, T]: V, then T - 1 process tokens
    acts = predictive_models.compute_activations(mc, params, ctx.tokens, names=["block_2"])
    with_start = analyze(ctx.tokens, acts, hmm, out=tmp_path / "start", start_token=hmm.vocab_size, seed=1)
    # the same strings without the start token, one more token each (the one no position reads)
    body = np.concatenate([ctx.tokens[:, 1:], np.zeros((len(ctx.tokens), 1), ctx.tokens.dtype)], axis=1)
    before = analyze(body, acts, hmm, out=tmp_path / "before", reads="before", seed=1)
    a, b = with_start.probe_json["layers"]["block_2"], before.probe_json["layers"]["block_2"]
    assert a == b
    assert np.allclose(with_start.sequences.ctx.beliefs[:, 0], hmm.stationary_distribution)
    assert with_start.probe_json["bos"] is True


def test_vocab_map_reads_the_models_ids(native, tmp_path):
    cfg, mc, params, ctx, probe, acts = native
    mapped = analyze(
        ctx.tokens + 10,
        {"block_2": acts["block_2"]},
        "mess3",
        vocab_map=[10, 11, 12],
        out=tmp_path / "m",
        probe={"n_repeats": 2},
        seed=cfg.seed,
    )
    plain = analyze(
        ctx.tokens, {"block_2": acts["block_2"]}, "mess3", out=tmp_path / "p", probe={"n_repeats": 2}, seed=cfg.seed
    )
    assert mapped.probe_json["layers"] == plain.probe_json["layers"]


def test_sampled_sequences_and_logits(native, tmp_path):
    """Sequences that are not the whole evaluation set (a sample, with repeats) are analysed as given; logits give
    the loss against the exact next-token laws, and the optimum's own logits give relative loss 1."""
    import jax

    import hmm_processes

    cfg = native[0]
    hmm = build_process(cfg.process)
    words = np.asarray(hmm_processes.sample(hmm, jax.random.key(0), 400, 6).tokens)  # [400, 6]
    source = source_of(hmm)
    block, _ = source.sequence_theory(words, False)
    features = block.beliefs.astype(np.float32)  # the beliefs themselves: a perfect linear probe
    optimal_logits = np.log(block.next_token_probs)  # the Bayes-optimal predictor's logits
    result = analyze(words, {"beliefs": features}, hmm, out=tmp_path / "s", logits=optimal_logits, seed=0)
    res = result.probe_json["layers"]["beliefs"]
    assert result.probe_json["regime"] == "sequences" and not result.sequences.every_string
    assert res["mse"] < 1e-12 and res["mse_shuffled"] > 0.05
    assert result.summary.relative_loss == pytest.approx(1.0, abs=1e-9)
    assert (result.path / "figures" / "loss_by_position.png").is_file()


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t, a: (t[:, :-1], a), "activations['block_2']: expected a float array [N, T, d]"),
        (lambda t, a: (np.where(t == 2, 5, t), a), "is not a token of the process mess3"),
        (lambda t, a: (t, {"block_2": np.where(np.arange(16) == 3, np.nan, a["block_2"])}), "NaN or infinite"),
        (lambda t, a: (t.astype(np.float32), a), "tokens: expected an integer array [N, T]"),
        # misaligned by one (position t shows what the model had after token t + 1): strings that share tokens[:, :t+1]
        # then disagree at t, as a non-causal model's would
        (lambda t, a: (t, {"block_2": np.roll(a["block_2"], -1, axis=1)}), "share a prefix"),
        (lambda t, a: (t, {"concat": a["block_2"]}), "cannot name a layer"),
    ],
)
def test_bad_input_is_one_line_naming_the_array(native, tmp_path, change, message):
    tokens, acts = change(native[3].tokens, {"block_2": native[5]["block_2"]})
    with pytest.raises(AnalysisInputError) as err:
        analyze(tokens, acts, "mess3", out=tmp_path / "bad")
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "bad").exists()  # nothing written before the inputs are checked


def test_forbidden_words_and_unknown_layers_are_refused(tmp_path):
    tokens = np.array([[0, 1, 0], [0, 1, 1]])  # golden mean: no two 1s in a row
    acts = {"x": np.ones((2, 3, 4), np.float32)}
    with pytest.raises(AnalysisInputError, match=r"tokens\[1\] cannot come from the process golden_mean"):
        analyze(tokens, acts, "golden_mean", out=tmp_path / "g")
    with pytest.raises(AnalysisInputError, match="probe_layer 'y' is not among the activations"):
        analyze(tokens, acts, "golden_mean", out=tmp_path / "g", probe_layer="y")
    with pytest.raises(AnalysisInputError, match=r"tokens\[0, 0\] = 0, not the start token 2"):
        analyze(tokens, acts, "golden_mean", out=tmp_path / "g", start_token=2)


def test_safetensors_round_trip_and_bfloat16():
    arrays = {
        "tokens": np.arange(6, dtype=np.int64).reshape(2, 3),
        "acts": np.linspace(-1, 1, 24, dtype=np.float32).reshape(2, 3, 4),
    }
    back = read_safetensors_bytes(safetensors_bytes(arrays))
    assert set(back) == set(arrays) and all(np.array_equal(back[k], arrays[k]) for k in arrays)
    # bfloat16: the upper half of a float32's bits; 1.5 and -2.0 are exact in it
    bits = (np.array([1.5, -2.0], np.float32).view(np.uint32) >> 16).astype("<u2")
    header = json.dumps({"b": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}).encode()
    header += b" " * (-len(header) % 8)
    raw = len(header).to_bytes(8, "little") + header + bits.tobytes()
    assert read_safetensors_bytes(raw)["b"].tolist() == [1.5, -2.0]


def read_safetensors_bytes(raw: bytes) -> dict:
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".safetensors", delete=False) as f:
        f.write(raw)
    try:
        return read_safetensors(f.name)
    finally:
        Path(f.name).unlink()


MODEL_ELSEWHERE = textwrap.dedent("""
    # A model trained elsewhere: NumPy only, never imports compmech. Two leaky integrators of the tokens, tanh'd.
    import sys
    import numpy as np
    data = np.load(sys.argv[1])
    tokens = data["tokens"]
    rng = np.random.default_rng(0)
    W = rng.normal(size=(3, 12))
    h, acts = np.zeros((len(tokens), 3)), []
    for t in range(tokens.shape[1]):
        h = 0.6 * h + np.eye(3)[tokens[:, t]]
        acts.append(np.tanh(h @ W))
    np.savez(sys.argv[2], tokens=tokens, leaky=np.stack(acts, axis=1).astype(np.float32))
    assert "compmech" not in sys.modules
""")


def test_cli_contexts_then_a_foreign_script_then_probe(tmp_path, capsys):
    """compmech contexts writes the evaluation set; a script that does not import compmech writes activations;
    compmech probe analyses them with the full report."""
    assert main(["contexts", "--process", "mess3", "--context-length", "5", "--out", str(tmp_path / "ctx.npz")]) == 0
    ctx = read_arrays(tmp_path / "ctx.npz")
    assert ctx["tokens"].shape == (3**5, 5) and ctx["beliefs"].shape == (3**5, 5, 3)
    assert ctx["probs"].sum() == pytest.approx(1.0) and json.loads(str(ctx["info"]))["process"] == "mess3"
    script = tmp_path / "model_elsewhere.py"
    script.write_text(MODEL_ELSEWHERE)
    subprocess.run(
        [sys.executable, str(script), str(tmp_path / "ctx.npz"), str(tmp_path / "acts.npz")],
        check=True,
        cwd=tmp_path,
        timeout=120,
    )
    out = tmp_path / "analysis"
    assert (
        main(
            [
                "probe",
                str(tmp_path / "acts.npz"),
                "--process",
                "mess3",
                "--param",
                "x=0.05",
                "--out",
                str(out),
                "--model",
                "two leaky integrators",
                "--no-progress",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.strip().endswith("report.html")
    probe = json.loads((out / "probe.json").read_text())
    res = probe["layers"]["leaky"]
    assert res["mse_heldout_contexts"] < 0.7 * res["mse_shuffled"]  # a leaky history carries some belief
    assert "two leaky integrators" in (out / "report.html").read_text()
    figures = {p.name for p in (out / "figures").iterdir()}
    assert {"belief_fractal.png", "probe_layers.png", "distance_geometry.png"} <= figures
    assert read_summary(out).figures and (out / "summary.json").is_file() and (out / "analysis.json").is_file()
    # bad input from the command line: one line, exit 2
    assert main(["probe", str(tmp_path / "acts.npz"), "--process", "rrxor", "--out", str(tmp_path / "x")]) == 2
    assert "is not a token of the process rrxor" in capsys.readouterr().err


def test_analyze_is_in_the_lazy_namespace():
    assert compmech.analyze is analyze and callable(compmech.analyze_model)


def test_random_markov_chains_are_analysed_from_their_posterior_means(tmp_path):
    """A source with no hidden states (random Markov chains: the target is the posterior mean of the transition
    matrix, from the transition counts) analysed from given sequences; a [process] table names it."""
    from hmm_processes import RandomMarkovChains, posterior_mean

    tokens = np.random.default_rng(0).integers(0, 3, size=(300, 8))
    target = posterior_mean(RandomMarkovChains(3, 1.0), tokens).astype(np.float32)  # [N, T, 9]
    result = analyze(tokens, {"posterior": target}, {"kind": "random_markov", "n_states": 3}, out=tmp_path / "r")
    res = result.probe_json["layers"]["posterior"]
    assert result.probe_json["regime"] == "sequences" and res["mse"] < 1e-10 < res["mse_shuffled"]
    assert (result.path / "figures" / "belief_fractal.png").is_file()


def test_a_spec_file_and_a_mixture_table_name_the_process(tmp_path):
    """--process SPEC.toml (copied into the analysis directory, as a run copies it) and a TOML file with a [process]
    table (here a mixture of two Mess3 settings: the belief carries the posterior over the components)."""
    spec = ROOT / "compmech" / "experiments" / "processes" / "golden_mean.toml"
    ctx = resolve_process(spec)[0].context_set(5, False)
    acts = {"beliefs": ctx.beliefs.astype(np.float32)}
    result = analyze(ctx.tokens, acts, spec, out=tmp_path / "spec")
    assert (result.path / "process_spec.toml").read_text() == spec.read_text()
    assert result.probe_json["layers"]["beliefs"]["mse"] < 1e-12 and result.sequences.every_string
    table = tmp_path / "mixture.toml"
    table.write_text(
        '[process]\nkind = "mixture"\nweights = [0.5, 0.5]\n'
        '[[process.components]]\nname = "mess3"\nparams = { x = 0.05, alpha = 0.85 }\n'
        '[[process.components]]\nname = "mess3"\nparams = { x = 0.15, alpha = 0.6 }\n'
    )
    source = resolve_process(table)[0]
    ctx = source.context_set(4, False)
    result = analyze(ctx.tokens, {"beliefs": ctx.beliefs.astype(np.float32)}, table, out=tmp_path / "mix")
    assert result.probe_json["layers"]["beliefs"]["mse"] < 1e-12 and result.summary.source["belief_size"] == 6
    assert 'kind = "mixture"' in (result.path / "config.toml").read_text()
