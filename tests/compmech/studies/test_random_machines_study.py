"""The random-machines study: a tiny study file end to end through the CLI (`--only random-machines`), reuse of the
finished runs, the drawn processes, the measures against brute force, and the rank statistics against scipy and an
exact enumeration."""

import importlib
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import spearmanr

from compmech.measures import excess_entropy, statistical_complexity
from compmech.runs import shipped
from compmech.runs.config import ConfigError, config_from_dict
from compmech.runs.reproduce import EXPERIMENTS  # noqa: F401  (its shipped paths are read before config_dir is patched)
from compmech.studies.random_machines import study_file
from compmech.studies.random_machines.stats import holm, rank_correlation
from compmech.studies.random_machines.theory import distinct_beliefs, last_token_error, machine_measures
from hmm_processes import get_process

TINY_STUDY = """
name = "random_machines"
seed = 3
n_processes = 3
n_states = [2, 3]
n_tokens = [2, 2]
context_length = 4

[model]
n_layers = 1
d_model = 16
n_heads = 2
d_head = 4
d_mlp = 32

[training]
steps = 100
batch_size = 32
learning_rate = 1e-2
warmup_steps = 10
eval_every = 100
checkpoint_every = 100

[probe]
n_repeats = 1
train_fraction = 0.5

[measures]
n_steps = 5000
lyapunov_steps = 5000
max_depth = 40

[quick]
n_processes = 3
training = { steps = 50, eval_every = 50, checkpoint_every = 50 }
"""


def write(tmp_path: Path, text: str = TINY_STUDY) -> Path:
    configs = tmp_path / "configs"
    configs.mkdir(exist_ok=True)
    path = configs / "random_machines.toml"
    path.write_text(text)
    return path


def test_the_study_file_draws_reproducible_processes_and_quick_takes_the_first_ones(tmp_path):
    path = write(tmp_path, TINY_STUDY.replace("n_processes = 3\nn_states", "n_processes = 6\nn_states"))
    full = study_file.load_study(path, config_from_dict)
    quick = study_file.load_study(path, config_from_dict, quick=True)
    again = study_file.load_study(path, config_from_dict)
    assert [r.label for r in full.runs] == [r.label for r in again.runs]
    assert [r.params for r in quick.runs] == [r.params for r in full.runs[:3]]
    assert [r.unifilar for r in full.runs] == [True, False] * 3
    assert quick.runs[0].config.training["steps"] == 50 and full.runs[0].config.training["steps"] == 100
    for run in full.runs:
        assert 2 <= run.params["n_states"] <= 3 and run.params["n_tokens"] == 2
        assert run.config.process.name == "random_epsilon_machine"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (("n_processes = 3\nn_states", "n_processes = 2\nn_states"), "n_processes must be a whole number >= 3"),
        (("n_states = [2, 3]", "n_states = [3, 2]"), "n_states must be"),
        (("[model]\n", "[model]\ncontext_length = 5\n"), "set by the study"),
        (("[measures]\n", "[measures]\nfoo = 1\n"), "unknown key 'foo'"),
    ],
)
def test_a_bad_study_file_is_one_clear_error(tmp_path, edit, message):
    with pytest.raises(ConfigError, match=message):
        study_file.load_study(write(tmp_path, TINY_STUDY.replace(*edit)), config_from_dict)


def test_measures_of_a_random_epsilon_machine_are_its_exact_ones():
    """For a unifilar sample C_mu and E agree with the exact finite-presentation functions, the Lyapunov dimension is
    exactly 0 (theory), and the distinct beliefs are counted by brute force over the words."""
    hmm = get_process("random_epsilon_machine", n_states=3, n_tokens=2, seed=0)
    m = machine_measures(hmm, 4, unifilar=True, n_steps=5000, lyapunov_steps=5000, max_depth=40)
    assert m.C_mu.method == "exact" and m.C_mu.value == pytest.approx(statistical_complexity(hmm), abs=1e-12)
    assert m.E.value == pytest.approx(excess_entropy(hmm), abs=1e-9)
    assert m.lyapunov_dimension.value == 0.0 and m.lyapunov_dimension.method == "theory"
    # brute force: the belief after each word, by repeated updates from the stationary distribution
    beliefs = set()
    for L in range(5):
        for w in itertools.product(range(2), repeat=L):
            b = hmm.stationary_distribution
            for x in w:
                b = b @ hmm.T[x]
                if b.sum() == 0:
                    break
                b = b / b.sum()
            else:
                beliefs.add(tuple(np.round(b, 9)))
    assert distinct_beliefs(hmm, 4) == m.n_beliefs_context == len(beliefs)


def test_last_token_error_is_zero_for_an_order_one_geometry_and_matches_brute_force():
    """Golden mean: the last token fixes the state (after 1 the state that must emit 0), so the error is 0; Mess3 needs
    the longer past. For a random machine the pooled 1 - R² is recomputed by a plain loop over strings and positions."""
    assert last_token_error(get_process("golden_mean"), 5) == pytest.approx(0.0, abs=1e-12)
    assert 0.05 < last_token_error(get_process("mess3"), 5) < 1.0
    hmm = get_process("random_epsilon_machine", n_states=3, n_tokens=2, seed=4, unifilar=False)
    rows, toks = [], []
    for w in itertools.product(range(2), repeat=4):
        b = hmm.stationary_distribution
        for x in w:
            b = b @ hmm.T[x]
            b = b / b.sum()  # every word is allowed for this sample (checked below)
            rows.append(b)
            toks.append(x)
    rows, toks = np.array(rows), np.array(toks)
    assert (hmm.T.sum(axis=(1, 2)) > 0).all() and np.isfinite(rows).all()
    resid = sum(((rows[toks == x] - rows[toks == x].mean(0)) ** 2).sum() for x in (0, 1))
    assert last_token_error(hmm, 4) == pytest.approx(resid / ((rows - rows.mean(0)) ** 2).sum(), rel=1e-9)


def test_spearman_matches_scipy_and_the_exact_permutation_p_is_the_enumerated_one():
    rng = np.random.default_rng(0)
    x, y = rng.random(6), rng.random(6)
    c = rank_correlation("x", "y", x, y)
    assert c.rho == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    # exact p by hand: the fraction of the 720 orderings with |rho| at least as large
    rhos = [spearmanr(x, np.array(p)).statistic for p in itertools.permutations(y)]
    assert c.p == pytest.approx(np.mean(np.abs(rhos) >= abs(c.rho) - 1e-12), abs=1e-12)
    assert c.p_method == "exact" and c.ci_low <= c.rho <= c.ci_high
    # infinities rank last, NaN are dropped
    c2 = rank_correlation("x", "y", [1.0, math.inf, 2.0, math.nan, 3.0], [1.0, 4.0, 2.0, 9.0, 3.0])
    assert c2.n == 4 and c2.rho == pytest.approx(1.0)
    # Holm: the smallest p times the family's size, then monotone
    a, b = holm([c, c2])
    assert min(a.p_holm, b.p_holm) == pytest.approx(2 * min(c.p, c2.p))


@pytest.mark.slow
def test_a_tiny_study_runs_end_to_end_through_the_cli_and_reuses_its_runs(tmp_path, monkeypatch, capsys):
    import compmech.runs.experiment as experiment
    from compmech.runs.cli import main

    write(tmp_path)
    monkeypatch.setattr(shipped, "config_dir", lambda: tmp_path / "configs")
    out = tmp_path / "out"
    args = ["reproduce", "--only", "random-machines", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    data = json.loads((out / "random_machines.json").read_text())
    assert len(data["rows"]) == 3 and (out / "random_machines.png").stat().st_size > 10_000
    for row in data["rows"]:
        assert row["relative_loss"] >= 1.0 - 1e-6  # the Bayes optimum bounds every model's loss
        assert 0.0 <= row["probe_error"] and row["mse_shuffled"] > 0
        # the held-out shuffled control beside the probe, from the run's rescored probes
        scored = json.loads((out / "scores" / f"{row['label']}.json").read_text())["layers"][row["probe_layer"]]
        assert row["mse_shuffled_heldout"] == scored["mse_shuffled_heldout_contexts"] > 0
        assert row["untrained_error"] is not None
    assert {(c["y"], c["x"]) for c in data["correlations"]} >= {("probe_error", "C_mu"), ("relative_loss", "h_mu")}
    text = (out / "random_machines.md").read_text()
    assert "compmech reproduce --only random_machines" in text and "| u00-" in text
    printed = capsys.readouterr().out
    assert "random_machines.md" in printed
    # a second call reuses every run and every cached measure
    monkeypatch.setattr(experiment, "run_experiment", lambda *a, **k: pytest.fail("a finished run was rerun"))
    rep = importlib.import_module("compmech.studies.random_machines.reproduce")  # the package's name is the function
    monkeypatch.setattr(rep, "machine_measures", lambda *a, **k: pytest.fail("a cached measure was recomputed"))
    (out / "random_machines.json").unlink()
    assert main(args) == 0
    assert json.loads((out / "random_machines.json").read_text())["rows"] == data["rows"]


def test_reproduce_help_names_the_study(capsys):
    from compmech.runs.cli import main

    with pytest.raises(SystemExit):
        main(["reproduce", "--help"])
    assert "random_machines" in capsys.readouterr().out
