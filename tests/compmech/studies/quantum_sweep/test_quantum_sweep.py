"""The quantum_sweep study (compmech/studies/quantum_sweep/): the shipped grid's configs, the table built from fake run
records, the figure, and a tiny sweep end to end through the Runner."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from compmech.runs.heldout_scores import LayerScores
from compmech.runs.markov_order_record import (
    NORM_SHUFFLED,
    TRUE_BELIEFS,
    UNNORMALIZED,
    LayerRecord,
    LossRow,
    MarkovOrderRecord,
    TargetProbe,
    read_markov_order,
)
from compmech.runs.reproduce import ReproduceRunner
from compmech.runs.summary import ModelSize, ProcessName, RunSummary
from compmech.runs.toml_io import read_toml
from compmech.studies.quantum_sweep import grid
from compmech.studies.quantum_sweep.plots import plot_quantum_sweep
from compmech.studies.quantum_sweep.reproduce import figure_arrays, run_sweep, shipped_points
from compmech.studies.quantum_sweep.table import format_markdown, sweep_row

DATA = Path(__file__).parents[3] / "data"


def test_the_shipped_grid_is_the_authors_processes_at_context_8_with_the_architectures_models():
    """Seven processes x four kinds; tom_quantum's betas as the authors' sweep configs list them (sqrt(51) is their
    7.14142842854285, scripts/experiment_config_tom_quantum.yaml of adamimos/epsilon-transformers at 93959ea)."""
    points = shipped_points(ReproduceRunner("quantum_sweep", progress=False))
    assert len(points) == 7 * 4
    betas = [p.process.beta for p in points if p.kind == "transformer" and p.process.beta is not None]
    assert betas == [2.25, 2.55, 3.5, 4.3, pytest.approx(7.14142842854285, abs=1e-12)]
    arch = read_toml(grid_path := Path(grid.__file__).parents[2] / "experiments" / "architectures.toml")
    for p in points:
        assert p.cfg.model["context_length"] == 8 and not p.cfg.data.bos
        assert p.cfg.model["kind"] == p.kind
        for key, value in arch["models"][p.kind].items():
            assert p.cfg.model[key] == value, (grid_path, p.name, key)
        assert p.cfg.studies["markov_order"].orders == (1, 2, 3) and p.cfg.studies["markov_order"].norms
        assert len(p.cfg.probe.layers) == 1 and not p.cfg.probe.include_concat
    by_name = {p.name: p.cfg for p in points}
    assert by_name["tom_quantum-beta2.55-gru"].process.params == {"alpha": 1.0, "beta": 2.55}
    assert by_name["fanizza-lstm"].probe.train_fraction == 0.8  # fanizza.toml's probe (only 2^8 strings)
    assert by_name["post_quantum-rnn"].process.params["log_alpha"] == 1.0
    quick = shipped_points(ReproduceRunner("quantum_sweep", quick=True, progress=False))
    assert len(quick) == 5 * 4 and {q.process.beta for q in quick} == {None, 2.25, 3.5, math.sqrt(51.0)}
    assert all(q.cfg.training["steps"] < by_name[q.name].training["steps"] for q in quick)


def fake_record(ceilings, model_loss, true_r2, unnorm=(0.9, 0.5), layer="block_4"):
    """A markov_order.json record as the study writes it, with planted numbers."""
    losses = [LossRow("optimal", None, 1.0, 0.0), LossRow("model", None, model_loss, model_loss - 1.0)]
    losses += [LossRow(f"order-{k}", k, 1.0 + 0.1 / (k + 1), 0.1 / (k + 1)) for k in range(4)]
    probes = [
        TargetProbe(TRUE_BELIEFS, None, 3, true_r2, true_r2, 0.01, -0.01, true_r2 / 2),
        TargetProbe(UNNORMALIZED, None, 3, unnorm[0], unnorm[0], 0.01, -0.01, 0.3),
        TargetProbe(NORM_SHUFFLED, None, 3, unnorm[1], unnorm[1], 0.02, -0.02, 0.2),
    ]
    margins = {str(k): true_r2 - c for k, c in ceilings.items()}
    return MarkovOrderRecord(
        process="p",
        orders=[1, 2, 3],
        weighting="uniform",
        n_contexts=10,
        positions="...",
        losses=losses,
        ceilings=dict(ceilings),
        layers=[LayerRecord(layer, probes, margins, {k: true_r2 / 2 - c for k, c in ceilings.items()})],
        verdicts={k: m > 0 for k, m in margins.items()},
    )


def fake_summary(kind, relative_loss, layer="block_4"):
    return RunSummary(
        name="x",
        process=ProcessName("tom_quantum"),
        steps=100,
        tokens=6400,
        model=ModelSize(kind, 1234),
        relative_loss=relative_loss,
        probe_untrained={"layer": layer, "mse_heldout_contexts": 0.2, "r2_heldout_contexts": 0.3},
        wall_seconds=12.0,
    )


def fake_scores(layer="block_4", r2=0.8):
    return {
        layer: LayerScores(
            mse=0.01,
            mse_shuffled=0.3,
            mse_heldout_contexts=0.02,
            r2_heldout_contexts=r2,
            mse_shuffled_heldout_contexts=0.4,
            mse_validation_contexts=0.02,
            mse_test_contexts=0.02,
            r2_test_contexts=r2,
            mse_shuffled_test_contexts=0.4,
            note=None,
        )
    }


def test_the_table_is_built_from_the_runs_records_and_says_which_ceilings_are_beaten(tmp_path):
    ceilings = {"1": 0.3, "2": 0.6, "3": 0.85}
    record = fake_record(ceilings, model_loss=1.02, true_r2=0.8)
    # the record survives its JSON round trip (the reader the sweep uses)
    (tmp_path / "markov_order.json").write_text(json.dumps(record.to_json()))
    assert read_markov_order(tmp_path) == record
    rows = [
        sweep_row(
            "tom_quantum-beta2.25",
            2.25,
            "transformer",
            fake_summary("transformer", 1.02),
            fake_scores(),
            record,
            "run/a",
        ),
        sweep_row(
            "tom_quantum-beta2.25",
            2.25,
            "gru",
            fake_summary("gru", 1.001, "layers.1.hidden"),
            fake_scores("layers.1.hidden", 0.95),
            fake_record(ceilings, 1.001, 0.95, layer="layers.1.hidden"),
            "run/b",
        ),
        sweep_row("fanizza", None, "transformer", fake_summary("transformer", 1.5), fake_scores(), record, "run/c"),
    ]
    a = rows[0]
    assert a.excess == pytest.approx(0.02, abs=1e-12)
    assert a.optimal_loss == 1.0 and a.order_losses["3"] == pytest.approx(1.025)
    assert a.margins["3"] == pytest.approx(0.8 - 0.85) and a.margins["1"] == pytest.approx(0.5)
    assert (a.r2_unnormalized, a.r2_norm_shuffled) == (0.9, 0.5)
    assert (a.mse_heldout, a.mse_shuffled_heldout, a.mse_untrained) == (0.02, 0.4, 0.2)
    md = format_markdown(rows, quick=True, orders=(1, 2, 3))
    assert "--quick --only quantum-sweep" in md
    assert "| tom_quantum-beta2.25 | transformer | 2.00% |" in md
    assert "| 0.800 (0.400): +0.500, +0.200, -0.050 | yes, yes, no |" in md  # 0.8 beats 0.3 and 0.6, not 0.85
    assert "| yes, yes, yes |" in md  # the GRU's 0.95 beats all three
    assert md.count("| tom_quantum-beta2.25 | 1.00000 |") == 1  # the floors: one line per process
    arrays = figure_arrays(rows, ["transformer", "gru"], (1, 2, 3))
    assert arrays["processes"] == ["β = 2.25", "fanizza"]
    assert np.isnan(arrays["r2"][1, 1]) and arrays["r2"][0, 1] == 0.95  # fanizza has no GRU run
    assert arrays["r2_untrained"][0, 0] == 0.4  # the markov_order probe's (the margins' R²), not probe.json's 0.3
    np.testing.assert_allclose(arrays["ceilings"][0], [0.3, 0.6, 0.85])
    # a run whose held-out scores miss the study's layer is refused by name
    with pytest.raises(ValueError, match="no layer 'block_4'"):
        sweep_row("p", None, "gru", fake_summary("gru", 1.0), fake_scores("layers.1.hidden"), record, "run/d")


def test_the_figure_draws_every_process_and_refuses_a_wrong_shape(tmp_path):
    P, K, O = 3, 2, 3
    rng = np.random.default_rng(0)
    args = (
        ["β = 2.25", "β = 7.141", "fanizza"],
        ["transformer", "gru"],
        rng.uniform(1e-3, 1e-1, (P, K)),
        rng.uniform(1e-3, 1e-1, (P, O)),
        [1, 2, 3],
        rng.uniform(0, 1, (P, K)),
        rng.uniform(0, 1, (P, K)),
        rng.uniform(0, 1, (P, O)),
        rng.uniform(0, 1, (P, K)),
        rng.uniform(0, 1, (P, K)),
    )
    fig = plot_quantum_sweep(*args, title="t")
    assert len(fig.axes) == 3 and [t.get_text() for t in fig.axes[2].get_xticklabels()] == args[0]
    bad = list(args)
    bad[5] = np.zeros((P, K + 1))
    from figures._common import FigureInputError

    with pytest.raises(FigureInputError, match="r2 has shape"):
        plot_quantum_sweep(*bad)


TINY_MODELS = grid.Models(
    models={
        "transformer": {"n_layers": 1, "d_model": 16, "n_heads": 2, "d_head": 4, "d_mlp": 32},
        "gru": {"n_layers": 1, "d_hidden": 16},
    },
    training={"batch_size": 32, "learning_rate": 1e-2, "warmup_steps": 10, "eval_every": 50, "checkpoint_every": 50},
)


@pytest.mark.slow
def test_a_tiny_sweep_runs_end_to_end_and_reuses_its_runs(tmp_path):
    """Two betas x two kinds on a context of 5: every row complete, the losses ordered as theory requires."""
    base = read_toml(DATA / "tiny_tom_quantum.toml")
    processes = [
        grid.SweepProcess(f"tom_quantum-beta{b}", "tom_quantum", {"alpha": 1.0, "beta": b}, {"steps": 100}, {})
        for b in (2.25, math.sqrt(51.0))
    ]
    runner = ReproduceRunner("quantum_sweep", progress=False)
    points = grid.sweep_points(
        processes, ["transformer", "gru"], lambda name: (base, "tiny"), TINY_MODELS, runner.from_dict, quick=False
    )
    md = run_sweep(points, tmp_path, runner, kinds=["transformer", "gru"])
    saved = json.loads((tmp_path / "quantum_sweep.json").read_text())
    assert len(saved["rows"]) == 4 and (tmp_path / "quantum_sweep.png").is_file()
    for r in saved["rows"]:
        losses = [r["order_losses"][k] for k in ("0", "1", "2", "3")] + [r["optimal_loss"]]
        assert all(a >= b - 1e-12 for a, b in zip(losses, losses[1:]))  # seeing more never costs more
        assert r["model_loss"] >= r["optimal_loss"] - 1e-12
        assert all(
            r[k] is not None
            for k in ("r2_heldout", "mse_shuffled_heldout", "mse_untrained", "r2_unnormalized", "r2_norm_shuffled")
            + ("r2_distinct",)
        )
        assert r["mse_heldout"] < r["mse_shuffled_heldout"]  # even 100 steps read more than a shuffled target
    assert md.count("| tom_quantum-beta") == 2 + 4
    # a second call reuses every run and its cached scores: the same table
    assert run_sweep(points, tmp_path, runner, kinds=["transformer", "gru"]).split("\n", 4)[4] == md.split("\n", 4)[4]
