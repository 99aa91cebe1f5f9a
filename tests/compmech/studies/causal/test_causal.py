"""The causal study: the closed-form answers on a planted linear model, the settings and the check, and a tiny run
end to end (causal.json, figures, report tables, the reproduce table)."""

import json

import numpy as np
import pytest

from compmech.mixed_states import mixed_states
from compmech.runs.config import ConfigError, config_from_dict, load_config
from compmech.runs.experiment import plan_run
from compmech.studies.causal.analysis import closed_fraction, fit_probe, subspace_angles
from compmech.studies.causal.theory import baseline_losses, cross_entropy_nats, kl_nats, law_at
from hmm_processes import get_process
from probes.interventions import ablation_delta, complement_deltas, random_deltas, random_subspace

PROCESS = get_process("mess3", x=0.05, alpha=0.85)


class PlantedModel:
    """Activations x = eta A + b (d = 8), and a readout that applies the exact law map to the probe's reading:
    q(x) = law(x @ coef + intercept). Its answers are known in closed form."""

    def __init__(self, seed: int = 0, depth: int = 4):
        rng = np.random.default_rng(seed)
        level = mixed_states(PROCESS, depth).levels[depth]
        self.beliefs, self.probs = level.beliefs, level.probs  # [n, 3] every word of the length, [n]
        self.A, self.b = rng.normal(size=(3, 8)), rng.normal(size=8)
        self.X = self.beliefs @ self.A + self.b  # [n, 8]
        self.fitted = fit_probe(self.X, self.beliefs)

    def laws(self, X: np.ndarray) -> np.ndarray:
        return law_at(PROCESS, self.fitted.read(X))


@pytest.fixture(scope="module")
def planted():
    return PlantedModel()


@pytest.mark.parametrize("method", ["probe", "encoding"])
def test_steering_a_planted_model_closes_all_of_the_kl_and_the_complement_none(planted, method):
    m = planted
    rng = np.random.default_rng(1)
    i, j = rng.choice(len(m.X), 60), rng.choice(len(m.X), 60)
    x, target = m.X[i], m.beliefs[j]
    before = kl_nats(law_at(PROCESS, target), m.laws(x))
    delta = m.fitted.delta(method, m.fitted.read(x), target)
    after = kl_nats(law_at(PROCESS, target), m.laws(x + delta))
    closed = closed_fraction(after, before)
    assert abs(closed.mean - 1.0) < 1e-9 and closed.stderr < 1e-9
    norms = np.linalg.norm(delta, axis=1)
    comp = kl_nats(law_at(PROCESS, target), m.laws(x + complement_deltas(norms, m.fitted.bases[method], rng)))
    assert abs(closed_fraction(comp, before).mean) < 1e-9  # the readout cannot see the complement
    # a random direction moves the reading by its projection on the subspace only: less than the whole way
    rand = kl_nats(law_at(PROCESS, target), m.laws(x + random_deltas(norms, 8, rng)))
    assert closed_fraction(rand, before).mean < 0.9


def test_the_probe_and_encoding_subspaces_coincide_on_a_planted_model(planted):
    angles = subspace_angles(planted.fitted.bases["probe"], planted.fitted.bases["encoding"])
    assert len(angles) == 2 and max(angles) < 1e-4


def test_mean_ablating_the_belief_subspace_gives_the_order0_loss_exactly(planted):
    """Replacing the belief component by its probability-weighted mean makes every reading the stationary belief, so
    the readout predicts the stationary token law: its expected loss is h(1) = H[X] (stationarity)."""
    m = planted
    mean = m.probs @ m.X
    X = m.X + ablation_delta(m.X, m.fitted.bases["probe"], mean)
    loss = m.probs @ cross_entropy_nats(law_at(PROCESS, m.beliefs), m.laws(X))
    assert abs(loss - baseline_losses(PROCESS).order0) < 1e-9
    clean = m.probs @ cross_entropy_nats(law_at(PROCESS, m.beliefs), m.laws(m.X))
    assert clean < baseline_losses(PROCESS).order1 < loss  # the belief predicts better than the last token
    # a random 2-dimensional subspace of 8 dimensions leaves part of the belief: its loss lies in between
    R = random_subspace(8, 2, np.random.default_rng(3))
    part = m.probs @ cross_entropy_nats(law_at(PROCESS, m.beliefs), m.laws(m.X + ablation_delta(m.X, R, mean)))
    assert clean < part < loss


def test_baselines_and_laws_against_known_values():
    b = baseline_losses(PROCESS)
    assert abs(b.order0 - np.log(3)) < 1e-12  # Mess3's tokens are uniform
    assert np.allclose(law_at(PROCESS, np.eye(3)).sum(axis=1), 1.0, atol=1e-12)
    p = np.array([0.5, 0.5, 0.0])
    assert kl_nats(p, p) == 0 and abs(kl_nats(p, np.full(3, 1 / 3)) - np.log(3 / 2)) < 1e-12
    assert abs(cross_entropy_nats(p, np.full(3, 1 / 3)) - np.log(3)) < 1e-12


def test_closed_fraction_standard_error_shrinks_with_pairs():
    rng = np.random.default_rng(0)
    b = rng.uniform(0.5, 1.5, 4000)
    a = 0.3 * b + rng.normal(0, 0.05, 4000)
    small, big = closed_fraction(a[:100], b[:100]), closed_fraction(a, b)
    assert abs(big.mean - 0.7) < 5 * big.stderr and big.stderr < small.stderr


CONFIG = """
name = "tiny_causal"
seed = 3
[process]
name = "mess3"
params = { x = 0.05, alpha = 0.85 }
[model]
context_length = 6
n_layers = 2
d_model = 16
n_heads = 2
d_head = 4
d_mlp = 32
[training]
steps = 300
batch_size = 32
learning_rate = 1e-2
warmup_steps = 20
steps_per_call = 50
eval_every = 100
checkpoint_every = 100
[probe]
n_repeats = 1
[figures]
dpi = 40
[studies.causal]
n_pairs = 100
n_contexts = 300
n_fit = 300
n_random = 2
"""


@pytest.fixture(scope="module")
def causal_run(study_run):
    return study_run(CONFIG)


@pytest.mark.slow
def test_a_tiny_run_writes_causal_json_figures_and_report_entries(causal_run):
    d = json.loads((causal_run / "causal.json").read_text())
    assert [lr["layer"] for lr in d["layers"]] == ["embedding", "block_1", "block_2"] and d["probe_layer"] == "block_2"
    for lr in d["layers"]:
        assert lr["probe_rank"] == 2 and 0 < lr["probe_r2"] <= 1
        assert {(s["method"], s["target"]) for s in lr["steering"]} == {
            (m, t) for m in ("probe", "encoding") for t in ("contexts", "vertices")
        }
        for s in lr["steering"]:
            assert s["position"] == 5 and s["kl_unsteered"]["n"] == 100
            for key in ("closed", "closed_random", "closed_complement"):
                assert np.isfinite(s[key]["mean"]) and s[key]["mean"] <= 1 and s[key]["stderr"] >= 0
        for a in lr["ablation"]:
            for key in ("clean", "mean_belief", "resample_belief", "mean_random", "resample_random"):
                assert 0 < a[key]["mean"] < 5 and a[key]["n"] == 300
    b = d["baselines"]
    assert d["optimal_loss"] < b["order1"] < b["order0"]
    # the trained model reads its belief: steering along the encoding at the last layer beats a same-norm random push
    last = {(s["method"], s["target"]): s for s in d["layers"][-1]["steering"]}
    s = last[("encoding", "contexts")]
    gap = s["closed"]["mean"] - s["closed_random"]["mean"]
    assert gap > 10 * (s["closed"]["stderr"] + s["closed_random"]["stderr"])
    for stem in ("causal_layers", "causal_simplex"):
        assert (causal_run / "figures" / f"{stem}.png").stat().st_size > 0
    summary = json.loads((causal_run / "summary.json").read_text())
    entry = summary["studies"]["causal"]
    assert entry["json"] == "causal.json" and len(entry["tables"]) == 2 and entry["layer"] == "block_2"
    assert np.isfinite(entry["closed_encoding"]) and np.isfinite(entry["ablation_probe_increase_mean"])
    assert "Causal: steering" in (causal_run / "report.html").read_text()


@pytest.mark.slow
def test_the_reproduce_table_reads_causal_json(causal_run):
    from compmech.studies.causal.reproduce import format_markdown

    d = json.loads((causal_run / "causal.json").read_text())
    text = format_markdown(d, 1.01, True, "compmech reproduce --only causal --quick")
    assert text.count("| block_2 | encoding |") == 3 and "order-0 predictor" in text


def test_bad_settings_and_unsuitable_runs_are_config_errors(tmp_path):
    (tmp_path / "c.toml").write_text(CONFIG)
    raw = load_config(tmp_path / "c.toml").to_dict()
    for bad, match in (
        ({"n_pairs": 0}, "n_pairs must be a positive integer"),
        ({"targets": ["corners"]}, "targets must be distinct entries"),
        ({"methods": ["probe", "probe"]}, "methods must be distinct entries"),
    ):
        with pytest.raises(ConfigError, match=match):
            config_from_dict({**raw, "studies": {"causal": bad}})
    layer = config_from_dict({**raw, "studies": {"causal": {"layers": ["final_ln"]}}})
    with pytest.raises(ConfigError, match="layers must be residual read-outs"):
        plan_run(layer, tmp_path / "a")
    position = config_from_dict({**raw, "studies": {"causal": {"positions": [6]}}})
    with pytest.raises(ConfigError, match="positions must lie in"):
        plan_run(position, tmp_path / "b")
    gru = config_from_dict({**raw, "model": {"kind": "gru", "context_length": 6, "d_hidden": 8, "d_embed": 4}})
    with pytest.raises(ConfigError, match='needs \\[model\\] kind = "transformer"'):
        plan_run(gru, tmp_path / "c")
    markov = config_from_dict({**raw, "process": {"kind": "random_markov", "n_states": 3}})
    with pytest.raises(ConfigError, match="needs an HMM or a generalized HMM"):
        plan_run(markov, tmp_path / "d")
