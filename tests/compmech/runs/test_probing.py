"""compmech.runs.probing.probe_model: probe.json's fields, and the same probe.json whatever the thread counts."""

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
import json
from compmech.runs.config import load_config
from compmech.runs.experiment import context_set
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
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env={**os.environ, **env},
                         capture_output=True, text=True, check=True, timeout=300)
    return out.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def runs():
    single = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
    return [probe_json(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", XLA_FLAGS=single),
            probe_json(OMP_NUM_THREADS="2", OPENBLAS_NUM_THREADS="2", XLA_FLAGS="")]


def test_same_probe_json_under_any_blas_and_xla_thread_count(runs):
    assert runs[0] == runs[1]


def test_probe_json_fields(runs):
    probe = json.loads(runs[0])
    assert probe["heldout_contexts"]["stratified_by"] == "position"
    assert probe["heldout_contexts"]["test_fraction"] == 0.2 and probe["heldout_contexts"]["n_repeats"] == 2
    assert probe["n_contexts"] == sum(3**k for k in range(1, 7)) and probe["n_rows"] == 3**6 * 6
    layers = probe["layers"]
    assert set(layers) == {"embedding", "block_1", "block_2", "block_3", "block_4", "final_ln", "concat"}
    for res in layers.values():
        assert {"mse", "r2", "mse_heldout", "mse_heldout_std", "heldout_note", "mse_heldout_contexts",
                "mse_heldout_contexts_std", "r2_heldout_contexts", "heldout_contexts_note", "mse_shuffled",
                "n_rows", "n_features"} <= set(res)
    # 384 concatenated features: the paper's 20% string split keeps too few distinct contexts to fit them
    concat = layers["concat"]
    assert concat["n_features"] == 384
    assert concat["mse_heldout"] is None and concat["heldout_note"].startswith("underdetermined: ")
    assert concat["mse_heldout_contexts"] is not None  # 80% of the 1092 contexts is enough
    # an untrained model's random features do not generalise to unseen contexts as they fit seen ones
    for res in layers.values():
        if res["mse_heldout_contexts"] is not None:
            assert res["mse_heldout_contexts"] > res["mse"]
