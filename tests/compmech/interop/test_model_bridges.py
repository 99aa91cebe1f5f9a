"""analyze_model on models that are not compmech's: any callable (NumPy, no extra) and a Hugging Face causal LM
(a tiny GPT-2 initialised at random from a config, nothing downloaded; the [interop] extra)."""

import json

import numpy as np
import pytest

from compmech.interop.models import analyze_model
from compmech.runs.analyze import AnalysisInputError
from hmm_processes import mess3


def leaky(tokens: np.ndarray) -> dict[str, np.ndarray]:
    """A causal model in NumPy: a leaky integrator of the one-hot tokens, and its tanh'd random projection."""
    h, out = np.zeros((len(tokens), 3)), []
    for t in range(tokens.shape[1]):
        h = 0.6 * h + np.eye(3)[tokens[:, t]]
        out.append(h.copy())
    hist = np.stack(out, axis=1)  # [B, T, 3]
    W = np.random.default_rng(0).normal(size=(3, 8))
    return {"history": hist, "projected": np.tanh(hist @ W)}


def test_any_callable_is_analysed(tmp_path):
    result = analyze_model(leaky, mess3(), context_length=5, out=tmp_path / "c", batch_size=100)
    probe = result.probe_json
    assert set(probe["layers"]) == {"history", "projected", "concat"} and probe["probe_layer"] == "projected"
    assert probe["analysis"]["model_kind"] == "callable" and probe["n_strings"] == 3**5
    assert (result.path / "report.html").is_file()
    with pytest.raises(AnalysisInputError, match="names: 'nope' is not among the callable's outputs"):
        analyze_model(leaky, mess3(), names=["nope"], context_length=5, out=tmp_path / "d")


def test_a_non_causal_callable_is_refused(tmp_path):
    def peeks(tokens):  # position t sees the whole sequence
        return {"mean": np.repeat(tokens.mean(axis=1, keepdims=True)[:, :, None], tokens.shape[1], axis=1)}

    with pytest.raises(AnalysisInputError, match="differ between strings that share a prefix"):
        analyze_model(peeks, mess3(), context_length=4, out=tmp_path / "x")


def test_a_process_too_large_to_enumerate_is_sampled(tmp_path):
    pytest.importorskip("jax")
    result = analyze_model(leaky, mess3(), context_length=12, max_strings=1000, n_sequences=300, out=tmp_path / "s")
    assert result.probe_json["regime"] == "sequences" and result.probe_json["n_strings"] == 300
    assert "sampled" in result.probe_json["analysis"]["evaluation_set"]


def test_a_tiny_random_gpt2_end_to_end(tmp_path):
    """A GPT-2 built from a config (2 layers, d 32, a 20-token vocabulary, nothing downloaded) reading a start token
    (id 0) and the process's tokens as ids 5, 6, 7: probed through its hidden states, with its loss."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=20, n_positions=8, n_embd=32, n_layer=2, n_head=2)
    model = transformers.GPT2LMHeadModel(config).eval()
    result = analyze_model(model, "mess3", context_length=6, start_token=0, vocab_map=[5, 6, 7], out=tmp_path / "gpt2")
    probe = result.probe_json
    assert set(probe["layers"]) == {"hidden_states.0", "hidden_states.1", "hidden_states.2", "concat"}
    assert probe["bos"] is True and probe["n_strings"] == 3**5 and probe["analysis"]["model_kind"] == "huggingface"
    res = probe["layers"]["hidden_states.2"]
    assert res["mse"] <= res["mse_shuffled"] and res["mse_heldout_contexts"] is not None
    lines = [json.loads(x) for x in (result.path / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 1 and lines[0]["relative_loss"] > 1  # a random model is worse than the optimum
    assert (result.path / "figures" / "loss_by_position.png").is_file() and (result.path / "report.html").is_file()
    with pytest.raises(AnalysisInputError, match="context_length: say how many positions"):
        analyze_model(model, "mess3", out=tmp_path / "y")
    with pytest.raises(AnalysisInputError, match="'hidden_states.9' is not a hidden state"):
        analyze_model(model, "mess3", names=["hidden_states.9"], context_length=6, out=tmp_path / "z")
