"""compmech from Python: compmech.run with overrides, the Run's one-screen summary, activations by every documented
name, checkpoints by token count, and clear errors."""

from pathlib import Path

import numpy as np
import pytest

import compmech
from compmech.runs.errors import RunDirError

TINY = Path(__file__).parents[2] / "data" / "tiny_mess3.toml"


@pytest.fixture(scope="module")
def api_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("api") / "run"
    return compmech.run(TINY, overrides={"training.steps": 150, "model.d_model": 12}, out=out, progress=False)


def test_run_applies_the_overrides_and_loads_the_run(api_run):
    assert api_run.model_config.d_model == 12 and api_run.summary.steps == 150
    assert api_run.config.model["d_model"] == 12
    assert "d_model = 12" in (api_run.path / "config.toml").read_text()


def test_the_run_shows_a_one_screen_summary(api_run):
    text = repr(api_run)
    assert len(text) < 2000 and len(text.splitlines()) <= 12
    assert "tiny_mess3" in text and "rel. loss" in text and "held out" in text
    page = api_run._repr_html_()
    assert page.startswith("<div>") and "<table>" in page and len(page) < 5000


def test_activations_by_every_documented_name(api_run):
    tokens = api_run.contexts.tokens[:5]  # [5, T]
    acts = api_run.activations(tokens, ["blocks.1.hook_resid_post", "blocks.0.attn.hook_pattern", "block_2"])
    T = tokens.shape[1]
    assert acts["blocks.1.hook_resid_post"].shape == (5, T, 12)
    assert acts["blocks.0.attn.hook_pattern"].shape == (5, 2, T, T)  # [N, heads, T, T]
    # the last block's output is the residual stream after block 2 (its short alias)
    np.testing.assert_array_equal(acts["blocks.1.hook_resid_post"], acts["block_2"])
    with pytest.raises(RunDirError, match="no activation 'blocks.9.hook_resid_post'; the names are"):
        api_run.activations(tokens, ["blocks.9.hook_resid_post"])


def test_a_saved_checkpoint_loads_by_its_token_count(api_run):
    keys = list(api_run.checkpoints)
    assert keys == [9600, 28800, "final"]  # tiny_mess3 asks for 9600 and 28800 tokens (step 150 of 32 x 6)
    early = api_run.at(tokens=9600)
    assert early.checkpoint == "tokens_9600.msgpack" and "[tokens_9600.msgpack]" in repr(early)
    tokens = api_run.contexts.tokens[:3]
    a = early.activations(tokens, "block_2")["block_2"]
    b = api_run.activations(tokens, "block_2")["block_2"]
    assert not np.allclose(a, b)  # another model
    with pytest.raises(RunDirError, match="no checkpoint at 1 tokens .* the saved ones are 9600, 28800, final"):
        api_run.at(tokens=1)


def test_load_run_on_a_parent_folder_names_the_runs_inside(api_run):
    with pytest.raises(RunDirError, match=r"is not a compmech run directory .* e.g. .*run \(runs here: run\)"):
        compmech.load_run(api_run.path.parent)
