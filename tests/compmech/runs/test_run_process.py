"""Processes from a spec file or a Python module in a run: the run directory is self-contained."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from compmech.runs.cli import main
from compmech.runs.config import load_config
from compmech.runs.experiment import plan_run, prepare_run_dir

ROOT = Path(__file__).parents[3]
SMALL = """
seed = 1
[process]
{process}
[model]
context_length = 4
n_layers = 1
d_model = 8
n_heads = 1
d_head = 4
d_mlp = 16
[training]
steps = 40
batch_size = 16
warmup_steps = 5
steps_per_call = 20
eval_every = 20
checkpoint_every = 20
[probe]
n_repeats = 1
train_fraction = 0.5
"""


@pytest.mark.slow
def test_a_spec_run_is_self_contained_and_its_config_reruns_from_anywhere(tmp_path, monkeypatch):
    from hmm_processes import golden_mean

    (tmp_path / "procs").mkdir()
    spec = tmp_path / "procs" / "gm.toml"
    spec.write_text((ROOT / "compmech" / "experiments" / "processes" / "golden_mean.toml").read_text())
    cfg_path = tmp_path / "exp.toml"
    cfg_path.write_text('name = "gm"\n' + SMALL.format(process='spec = "procs/gm.toml"'))
    first = tmp_path / "first"
    assert main(["run", str(cfg_path), "--out", str(first), "--no-progress"]) == 0
    assert (first / "process_spec.toml").read_text() == spec.read_text()
    assert load_config(first / "config.toml").process.spec == "process_spec.toml"
    record = json.loads((first / "process.json").read_text())
    assert record["spec_file"] == "process_spec.toml" and record["kind"] == "HMM"
    assert record["token_names"] == ["0", "1"] and record["state_names"] == ["A", "B"]
    np.testing.assert_allclose(np.array(record["T"]), golden_mean(0.5).T)
    # The original spec goes away; the run's own config.toml, run from another directory, gives the same run.
    spec.unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["run", str(first / "config.toml"), "--out", "../second", "--no-progress"]) == 0
    strip = lambda p: [line.split('"elapsed_s"')[0] for line in p.read_text().splitlines()]  # noqa: E731
    assert strip(tmp_path / "second" / "metrics.jsonl") == strip(first / "metrics.jsonl")
    assert json.loads((tmp_path / "second" / "probe.json").read_text()) == json.loads(
        (first / "probe.json").read_text()
    )
    # Resuming into its own directory, from its own config, is the same run (not "a different config").
    assert main(["run", str(first / "config.toml"), "--out", str(first), "--no-progress"]) == 0


MODULE = '''
import numpy as np
from hmm_processes import HMM, register_process


def biased_coin(p: float = 0.3) -> HMM:
    """Two hidden states, each emitting 1 with probability p (a run needs two states: one has nothing to probe)."""
    return HMM(T=np.array([np.full((2, 2), (1 - p) / 2), np.full((2, 2), p / 2)]), name="biased_coin",
               params={"p": p})


register_process("biased_coin", biased_coin, overwrite=True)
'''


def test_a_process_registered_in_a_python_module_can_be_named(tmp_path, monkeypatch):
    package = tmp_path / "mylab"
    (package / "processes").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "processes" / "__init__.py").write_text("")
    name = f"coins_{os.getpid()}"
    (package / "processes" / f"{name}.py").write_text(MODULE)
    cfg_path = tmp_path / "exp.toml"
    cfg_path.write_text(
        'name = "coin"\n'
        + SMALL.format(process=f'name = "biased_coin"\nmodule = "mylab.processes.{name}"\nparams = {{ p = 0.25 }}')
    )
    monkeypatch.chdir(ROOT)  # not the module's directory: it is found next to the config
    plan = plan_run(load_config(cfg_path), tmp_path / "run")
    assert plan.source.name == "biased_coin" and plan.source.params == {"p": 0.25}
    assert plan.cfg.process.module_path == str(tmp_path.resolve())
    prepare_run_dir(plan)
    # From any directory, in a fresh interpreter, the run's own config finds and builds the process.
    code = (
        "from compmech.runs.config import load_config; from compmech.runs.experiment import plan_run; "
        f"print(plan_run(load_config({str(tmp_path / 'run' / 'config.toml')!r}), 'x').source.params)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd="/",
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "{'p': 0.25}"
    missing = tmp_path / "missing.toml"
    missing.write_text('[process]\nname = "biased_coin"\nmodule = "no_such_lab.procs"\n')
    with pytest.raises(ValueError, match="module 'no_such_lab.procs' cannot be imported"):
        plan_run(load_config(missing), tmp_path / "run2")
