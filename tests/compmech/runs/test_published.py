"""Numbers that reproduce on any machine (issue 31): spreads over seeds trained together, the published-numbers file
(written by `compmech reproduce --seeds N --publish FILE` only), and the check of a user's runs against it."""

import argparse
import json
import math
import random
import re
from pathlib import Path

import pytest

from compmech.runs import experiment, seed_runs
from compmech.runs.cli import main
from compmech.runs.config import ConfigError, load_config
from compmech.runs.published import (
    LEVEL,
    RELATIVE_FLOOR,
    Published,
    PublishedError,
    Spread,
    acceptance_k,
    load_published,
    published_path,
    published_tables,
    run_record,
    splice_tables,
)

TINY = Path(__file__).parents[2] / "data" / "tiny_mess3.toml"
ROOT = Path(__file__).parents[3]


def _args(**kw) -> argparse.Namespace:
    base = dict(
        quick=False, only=None, out=None, no_progress=True, seeds=None, publish=None, check=False, published=None
    )
    return argparse.Namespace(**{**base, **kw})


# ------------------------------------------------------------------------------------------- the tolerance


def test_k_is_the_t_prediction_factor_for_one_more_seed():
    # t_{2, 0.995} = 9.9248, t_{4, 0.995} = 4.6041 (tables); times sqrt(1 + 1/n)
    assert acceptance_k(3) == pytest.approx(9.9248 * math.sqrt(4 / 3), rel=1e-4)
    assert acceptance_k(5) == pytest.approx(4.6041 * math.sqrt(6 / 5), rel=1e-4)
    assert acceptance_k(3) > acceptance_k(5) > acceptance_k(10) > acceptance_k(1000) > 2.575
    with pytest.raises(ValueError, match="at least 2 seeds"):
        acceptance_k(1)


def test_an_honest_new_draw_falls_outside_about_one_time_in_a_hundred():
    """The interval's promise, checked by simulation: n normal draws published, one more drawn; it lies outside
    the accepted interval with probability 1 - LEVEL = 1% (binomial sd of the count over 40,000 trials: 20)."""
    rng = random.Random(0)
    for n in (3, 5):
        trials, outside = 40_000, 0
        for _ in range(trials):
            s = Spread(tuple(rng.gauss(0.5, 0.1) for _ in range(n)))
            lo, hi = s.accepted()
            outside += not lo <= rng.gauss(0.5, 0.1) <= hi
        assert abs(outside - trials * (1 - LEVEL)) < 5 * math.sqrt(trials * 0.01 * 0.99), (n, outside)


def test_the_accepted_interval_contains_the_published_range_and_has_a_floor():
    rng = random.Random(1)
    for _ in range(500):
        s = Spread(tuple(rng.lognormvariate(0, 1) for _ in range(rng.randint(2, 8))))
        lo, hi = s.accepted()
        assert lo <= s.min and s.max <= hi
    same = Spread((0.25, 0.25, 0.25))
    assert same.sd == 0 and same.accepted() == (0.25 - RELATIVE_FLOOR * 0.25, 0.25 + RELATIVE_FLOOR * 0.25)
    s = Spread((1.0, 2.0, 4.0))
    assert (s.n, s.mean, s.min, s.max) == (3, 7 / 3, 1.0, 4.0)
    assert s.sd == pytest.approx(math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2))
    assert s.meeting(2.5) == 2


# ------------------------------------------------------------------------- seeds trained together, published


@pytest.fixture(scope="module")
def published_seeds(tmp_path_factory):
    """The tiny config at seeds 0, 1, 2 trained together, published into a file of its own."""
    out = tmp_path_factory.mktemp("seeds")
    entries = seed_runs.reproduce_seeds(
        ["tiny"],
        out,
        n_seeds=3,
        quick=False,
        fraction=0.1,
        progress=False,
        command="compmech reproduce --seeds 3 --only tiny --publish pub.json",
        experiments={"tiny": TINY},
    )
    seed_runs.publish(out / "pub.json", entries)
    return out


def test_seeds_train_together_and_the_file_holds_their_spreads(published_seeds):
    out = published_seeds
    dirs = [out / "seeds" / f"tiny_mess3-seed={s}" for s in range(3)]
    records = [run_record(d) for d in dirs]
    assert [r["seed"] for r in records] == [0, 1, 2]
    # one training for the three: each run's training clock is the group's (one after another, each would have
    # its own, and the three would differ by a training's length)
    clocks = [r["train_elapsed_seconds"] for r in records]
    assert max(clocks) - min(clocks) < 0.1 * min(clocks)
    data = json.loads((out / "pub.json").read_text())
    (entry,) = data["entries"]
    assert entry["experiment"] == "tiny" and entry["budget"] == "full" and entry["seeds"] == [0, 1, 2]
    assert entry["steps"] == 300 and entry["command"].endswith("--publish pub.json")
    assert entry["rerun"] == "compmech reproduce --seeds 3 --only tiny"
    assert entry["environment"]["cpu"] and entry["environment"]["libraries"]["jax"]
    assert "name" not in entry["config"] and "seed" not in entry["config"]
    numbers = {n["key"]: n for n in entry["numbers"]}
    rel = numbers["relative_loss"]
    assert rel["values"] == [r["relative_loss"] for r in records]
    assert rel["mean"] == pytest.approx(sum(rel["values"]) / 3)
    assert rel["min"] == min(rel["values"]) and rel["max"] == max(rel["values"]) and rel["n"] == 3
    ratio = numbers["probe.mse_heldout_contexts/probe.mse_shuffled"]
    assert ratio["below"] == 0.10 and ratio["seeds_below"] == sum(v < 0.10 for v in ratio["values"])
    assert ratio["values"][1] == pytest.approx(
        records[1]["probe"]["mse_heldout_contexts"] / records[1]["probe"]["mse_shuffled"]
    )
    assert len(set(rel["values"])) == 3  # the seeds differ
    table = (out / "seeds.md").read_text()
    assert "seeds 0, 1, 2 trained together" in table and "| relative loss (CE / optimum) |" in table
    assert "met by" in table  # the criterion, per seed


def test_publish_merges_by_experiment_and_budget_and_needs_three_seeds(published_seeds, tmp_path):
    pub = load_published(published_seeds / "pub.json")
    (entry,) = pub.entries
    quick = type(entry)(**{**entry.__dict__, "budget": "quick", "steps": 30})
    path = tmp_path / "p.json"
    seed_runs.publish(path, [entry])
    seed_runs.publish(path, [quick])
    seed_runs.publish(path, [entry])  # replaces the full one, keeps the quick one
    assert [(e.experiment, e.budget) for e in load_published(path).entries] == [("tiny", "quick"), ("tiny", "full")]
    two = type(entry)(**{**entry.__dict__, "seeds": (0, 1)})
    with pytest.raises(ConfigError, match="--publish needs --seeds 3 or more"):
        seed_runs.publish(path, [two])
    with pytest.raises(ConfigError, match="--publish needs --seeds"):
        seed_runs.reproduce_command(_args(publish=path), default_names=["tiny"], fraction=0.1)
    with pytest.raises(ConfigError, match="choose one"):
        seed_runs.reproduce_command(_args(publish=path, check=True, seeds=3), default_names=["tiny"], fraction=0.1)


def test_check_of_each_published_seed_passes(published_seeds, capsys):
    dirs = [str(published_seeds / "seeds" / f"tiny_mess3-seed={s}") for s in range(3)]
    assert main(["check", *dirs, "--published", str(published_seeds / "pub.json")]) == 0
    out = capsys.readouterr().out
    assert "tiny at the full budget (seed 1)" in out and "**OUTSIDE**" not in out
    assert re.search(r"(\d+) of \1 numbers lie within the published spread", out)


# ----------------------------------------------------------------------------------------- planted files


def _planted(source: Path, dest: Path, change) -> Path:
    data = json.loads(source.read_text())
    change(data["entries"][0])
    dest.write_text(json.dumps(data))
    return dest


def test_a_number_outside_its_planted_spread_fails_with_what_to_try(published_seeds, tmp_path, capsys):
    def shift(entry):  # relative loss published far above anything a seed gives, on another machine
        rel = next(n for n in entry["numbers"] if n["key"] == "relative_loss")
        rel["values"] = [v + 0.5 for v in rel["values"]]
        entry["environment"]["cpu"] = "Planted CPU 9000"
        entry["environment"]["libraries"]["jax"] = "0.0.1"

    planted = _planted(published_seeds / "pub.json", tmp_path / "planted.json", shift)
    run = published_seeds / "seeds" / "tiny_mess3-seed=0"
    assert main(["check", str(run), "--published", str(planted)]) == 1
    out = capsys.readouterr().out
    assert out.count("**OUTSIDE**") == 1 and "OUTSIDE: 1 number(s): tiny seed 0 relative loss" in out
    assert "Planted CPU 9000" in out and "pip install jax==0.0.1" in out
    assert "compmech reproduce --check --seeds 5 --only tiny" in out


def test_a_run_of_another_config_is_refused_naming_the_key(published_seeds, tmp_path, capsys):
    planted = _planted(
        published_seeds / "pub.json",
        tmp_path / "planted.json",
        lambda e: e["config"]["training"].__setitem__("steps", 301),
    )
    run = published_seeds / "seeds" / "tiny_mess3-seed=0"
    assert main(["check", str(run), "--published", str(planted)]) == 2
    err = capsys.readouterr().err
    assert "matches no published one" in err and "training.steps: 300 here, 301 published" in err
    assert main(["check", str(tmp_path), "--published", str(planted)]) == 2
    assert "config.toml is missing" in capsys.readouterr().err


def test_a_damaged_or_missing_file(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(PublishedError, match="bad.json cannot be read"):
        load_published(tmp_path / "bad.json")
    (tmp_path / "old.json").write_text(json.dumps({"schema": 0, "entries": []}))
    with pytest.raises(PublishedError, match="schema"):
        load_published(tmp_path / "old.json")
    assert load_published(tmp_path / "none.json") == Published()


# ------------------------------------------------------------- reproduce --check, and the same numbers twice


@pytest.fixture(scope="module")
def tiny_seed0(published_seeds):
    """The tiny config at seed 0, one of the published seeds (the file's own seed, 3, is not)."""
    path = published_seeds / "tiny_seed0.toml"
    path.write_text(TINY.read_text().replace("\nseed = 3\n", "\nseed = 0\n", 1))
    return path


@pytest.fixture(scope="module")
def lone_run(published_seeds, tiny_seed0):
    """Seed 0 alone, where `compmech reproduce --check` runs it (<out>/<name>)."""
    cfg = load_config(tiny_seed0)
    experiment.run_or_reuse(cfg, published_seeds / "tiny", progress=False)
    return published_seeds / "tiny"


def test_reproduce_check_runs_seed_0_alone_and_passes(published_seeds, tiny_seed0, lone_run, capsys, monkeypatch):
    """`compmech reproduce --check` checks seed 0 run alone (<out>/<name>, reused here) against the published seeds and
    writes check.md; its exit status says whether a number lies outside. Seed 0 alone equals seed 0 trained together
    only up to float32 rounding, which training amplifies: under jax 0.12 one refitted checkpoint probe of this tiny
    run moved by 5% (outside its three seeds' unusually narrow spread), so only the final relative loss, where the
    seeds agree to the rounding, is required to pass on every machine."""
    monkeypatch.setattr(experiment, "run_experiment", lambda *a, **k: pytest.fail("a finished run was rerun"))
    args = _args(check=True, out=published_seeds, published=published_seeds / "pub.json")
    seed0 = {"tiny": tiny_seed0}
    status = seed_runs.reproduce_command(args, default_names=["tiny"], fraction=0.1, experiments=seed0)
    out = capsys.readouterr().out
    assert status == (1 if "**OUTSIDE**" in out else 0) and (published_seeds / "check.md").is_file()
    loss_row = next(line for line in out.splitlines() if line.startswith("| tiny | 0 | relative loss (CE / optimum) |"))
    assert loss_row.endswith("| ok |")  # seed 0, run alone
    # nothing published at the quick budget: said before anything runs
    with pytest.raises(PublishedError, match="no published numbers for tiny at the quick budget"):
        seed_runs.reproduce_command(
            _args(check=True, quick=True, only=["tiny"], out=published_seeds, published=published_seeds / "pub.json"),
            default_names=["tiny"],
            fraction=0.1,
            experiments={"tiny": TINY},
        )


def test_reproduce_check_refuses_a_config_changed_since_publishing(published_seeds, tmp_path):
    planted = _planted(
        published_seeds / "pub.json",
        tmp_path / "planted.json",
        lambda e: e["config"]["model"].__setitem__("d_model", 32),
    )
    args = _args(check=True, out=tmp_path / "out", published=planted)
    with pytest.raises(PublishedError, match=r"changed since its numbers were published \(at model.d_model: 16 here"):
        seed_runs.reproduce_command(args, default_names=["tiny"], fraction=0.1, experiments={"tiny": TINY})
    assert not (tmp_path / "out").exists()  # refused before anything ran


def test_the_same_config_and_seed_rerun_on_this_machine_give_bit_identical_numbers(tiny_seed0, lone_run, tmp_path):
    """What docs/reproducibility.md calls bit-identical: the same CPU, library versions and XLA flags; a second
    run of the same config and seed, in another process state (a fresh directory, compiled programs reused)."""
    again = tmp_path / "again"
    experiment.run_experiment(load_config(tiny_seed0), again, progress=False)
    a, b = run_record(lone_run), run_record(again)
    for key in (
        "final_loss",
        "relative_loss",
        "probe",
        "probe_untrained",
        "probe_mse_by_layer",
        "geometry",
        "evolution",
        "layers",
    ):
        assert a[key] == b[key], key  # exact equality, not approx
    losses = [
        [json.loads(line)["loss"] for line in (d / "metrics.jsonl").read_text().splitlines()] for d in (lone_run, again)
    ]
    assert losses[0] == losses[1]


# ------------------------------------------------------------------------------- the shipped file and the docs


def test_the_shipped_file_is_package_data_and_consistent():
    path = published_path()
    assert path.is_file(), "compmech/published/published_numbers.json: make it with benchmarks/make_published.sh"
    pub = load_published(path)
    assert pub.entries and pub.level == LEVEL
    for entry in pub.entries:
        assert len(entry.seeds) >= 3 and entry.command.startswith("compmech reproduce")
        assert "--seeds" in entry.command and "--publish" in entry.command, "written by the command, not by hand"
        assert entry.environment.get("cpu") and entry.environment.get("libraries")
        shipped_cfg = load_config(seed_runs.shipped.config_path(entry.experiment))
        cfg = seed_runs.budget_config(
            seed_runs.shipped.config_path(entry.experiment), quick=entry.budget == "quick", fraction=0.1
        )
        assert entry.steps == cfg.training["steps"] and shipped_cfg.name == entry.experiment
    raw = json.loads(path.read_text())
    for entry in raw["entries"]:
        for n in entry["numbers"]:
            s = Spread(tuple(n["values"]))
            assert (n["mean"], n["min"], n["max"], n["n"]) == (s.mean, s.min, s.max, s.n)
            assert n["sd"] == pytest.approx(s.sd, rel=1e-12, abs=1e-300)
    assert "published/*.json" in (ROOT / "pyproject.toml").read_text()


def test_the_docs_tables_are_the_published_file():
    """docs/reproducibility.md shows the file's tables between its markers, as `published_tables` writes them."""
    text = (ROOT / "docs" / "reproducibility.md").read_text()
    assert splice_tables(text, published_tables(load_published())) == text, (
        "regenerate: compmech check --tables --update docs/reproducibility.md"
    )


# The spreads the README and the docs cite in their prose and tables, each as the page writes it: (page, experiment,
# budget, number key, text). The test rebuilds each text from the file at the digits the page shows, so a page that
# quotes a number the file no longer holds fails. A text with "%" is the number x 100.
RATIO = "probe.mse_heldout_contexts/probe.mse_shuffled"  # held out / shuffled control
CITED = [
    ("README.md", "mess3", "full", "relative_loss", "1.000191 ± 0.000004"),
    ("README.md", "mess3", "full", "probe.mse", "0.000477 ± 0.000011"),
    ("README.md", "mess3", "full", "probe.mse_heldout_contexts", "0.000645 ± 0.000026"),
    ("README.md", "rrxor", "full", "probe.mse", "0.0085 ± 0.0013"),
    ("README.md", "rrxor", "full", "probe.mse_heldout_contexts", "0.020 ± 0.004"),
    ("README.md", "rrxor", "full", RATIO, "25% ± 5%"),
    ("README.md", "rrxor", "full", "geometry.distance_r2_beliefs", "0.958 ± 0.005"),
    ("README.md", "rrxor", "full", "geometry.distance_r2_next_token", "0.335 ± 0.002"),
    ("docs/tutorial/first-run.md", "mess3", "full", "relative_loss", "1.000191 ± 0.000004"),
    ("docs/tutorial/first-run.md", "mess3", "full", "probe.mse", "0.000477 ± 0.000011"),
    ("docs/tutorial/first-run.md", "mess3", "full", "probe.mse_heldout_contexts", "0.000645 ± 0.000026"),
    ("docs/how-to/paper.md", "mess3", "full", "relative_loss", "1.000191 ± 0.000004"),
    ("docs/how-to/paper.md", "mess3", "full", "probe.mse", "0.000477 ± 0.000011"),
    ("docs/how-to/paper.md", "mess3", "full", "probe.mse_heldout_contexts", "0.000645 ± 0.000026"),
    ("docs/how-to/paper.md", "rrxor", "full", "probe.mse", "0.0085 ± 0.0013"),
    ("docs/how-to/paper.md", "rrxor", "full", "probe.mse_heldout_contexts", "0.020 ± 0.004"),
    ("docs/how-to/paper.md", "rrxor", "full", RATIO, "25% ± 5%"),
    ("docs/how-to/paper.md", "rrxor", "full", "geometry.distance_r2_beliefs", "0.958 ± 0.005"),
    ("docs/how-to/paper.md", "rrxor", "full", "geometry.distance_r2_next_token", "0.335 ± 0.002"),
    ("docs/how-to/paper.md", "z1r", "full", "relative_loss", "1.000094 ± 0.000017"),
    ("docs/how-to/paper.md", "z1r", "full", "probe.mse_shuffled", "0.133 ± 0.001"),
    ("docs/how-to/processes.md", "tom_quantum", "full", "relative_loss", "1.00075 ± 0.00009"),
    ("docs/how-to/processes.md", "tom_quantum", "full", "probe.mse_heldout_contexts", "0.0202 ± 0.0017"),
    ("docs/how-to/processes.md", "tom_quantum", "full", RATIO, "7.8% ± 0.6%"),
    ("docs/how-to/processes.md", "post_quantum", "full", "relative_loss", "1.00052 ± 0.00011"),
    ("docs/how-to/processes.md", "post_quantum", "full", "probe.mse_heldout_contexts", "0.0589 ± 0.0077"),
    (
        "docs/how-to/processes.md",
        "post_quantum",
        "full",
        RATIO,
        "9.8% ± 1.3%",
    ),
    ("docs/how-to/processes.md", "fanizza", "full", "relative_loss", "1.000027 ± 0.000006"),
    ("docs/how-to/processes.md", "fanizza", "full", "probe.mse_heldout_contexts", "0.0011 ± 0.0008"),
    ("docs/how-to/processes.md", "fanizza", "full", RATIO, "3.7% ± 2.9%"),
    ("docs/how-to/processes.md", "mixture", "full", "relative_loss", "1.00066 ± 0.00003"),
    ("docs/how-to/processes.md", "mixture", "full", "probe.mse_heldout_contexts", "0.0015 ± 0.0003"),
    ("docs/how-to/processes.md", "mixture", "full", RATIO, "6.7% ± 1.4%"),
    ("docs/how-to/processes.md", "mess3_long", "full", "relative_loss", "1.0019 ± 0.0006"),
    ("docs/how-to/processes.md", "mess3_long", "full", "probe.mse_heldout_contexts", "0.00129 ± 0.00030"),
    ("docs/how-to/processes.md", "mess3_long", "full", RATIO, "0.78% ± 0.18%"),
    ("docs/how-to/processes.md", "icl_markov", "full", "relative_loss", "1.0002 ± 0.0023"),
    ("docs/how-to/processes.md", "icl_markov", "full", "probe.mse_heldout_contexts", "0.0225 ± 0.0004"),
    ("docs/how-to/processes.md", "icl_markov", "full", RATIO, "62% ± 1%"),
    ("docs/how-to/processes.md", "icl_markov", "full", "layers.concat.mse_heldout_contexts", "0.0151 ± 0.0003"),
    ("docs/how-to/processes.md", "product", "full", "relative_loss", "1.0088 ± 0.0021"),
    ("docs/how-to/processes.md", "product", "full", "probe.mse_heldout_contexts", "0.0071 ± 0.0002"),
    ("docs/how-to/processes.md", "product", "full", RATIO, "34.7% ± 1.2%"),
]


def _as_cited(mean: float, sd: float, cited: str) -> str:
    """mean ± sd written as ``cited`` writes its mean: the same decimals, "%" for x 100."""
    percent = cited.endswith("%")
    head = cited.split("±")[0].strip().rstrip("%")
    d = len(head.split(".")[1]) if "." in head else 0
    scale, unit = (100.0, "%") if percent else (1.0, "")
    return f"{mean * scale:.{d}f}{unit} ± {sd * scale:.{d}f}{unit}"


@pytest.mark.parametrize(("page", "experiment", "budget", "key", "text"), CITED)
def test_a_spread_the_pages_cite_is_the_published_files(page, experiment, budget, key, text):
    entry = load_published().entry(experiment, budget)
    assert entry is not None, f"{page} cites {experiment} ({budget}), which the published file does not hold"
    number = entry.number(key)
    assert number is not None, f"{page} cites {key} of {experiment}, which its published entry does not hold"
    assert _as_cited(number.spread.mean, number.spread.sd, text) == text, (
        f"{page} cites {experiment}'s {key} as {text}; the published file says "
        f"{_as_cited(number.spread.mean, number.spread.sd, text)}"
    )
    assert text in " ".join((ROOT / page).read_text(encoding="utf-8").split()), f"{page} no longer cites {text}"


def test_a_cited_spread_is_written_at_the_pages_digits():
    assert _as_cited(0.2547, 0.053, "25% ± 5%") == "25% ± 5%"
    assert _as_cited(1.000190822, 3.79e-06, "1.000191 ± 0.000004") == "1.000191 ± 0.000004"
    assert _as_cited(0.02048, 0.0043, "0.021 ± 0.004") != "0.021 ± 0.004"  # a number the file does not say


def test_splicing_the_tables_into_a_page_replaces_only_what_lies_between_the_markers():
    page = "# T\n\ntext\n<!-- published tables: begin -->\nold\n<!-- published tables: end -->\nafter\n"
    new = splice_tables(page, "| a |\n")
    assert new == "# T\n\ntext\n<!-- published tables: begin -->\n\n| a |\n\n<!-- published tables: end -->\nafter\n"
    assert splice_tables(new, "| a |") == new
    with pytest.raises(ValueError, match="markers"):
        splice_tables("# no markers\n", "| a |")


def test_the_numbers_of_a_run_name_their_layers_skip_repeats_and_carry_the_papers():
    from compmech.runs.published import quantities_for

    probe = {"mse": 0.02, "mse_heldout_contexts": 0.03, "mse_heldout": 0.021, "mse_shuffled": 0.3}
    record = {
        "relative_loss": 1.0002,
        "steps": 100,
        "probe_layer": "block_2",
        "analysis_layer": "block_2",
        "probe": probe,
        "geometry": {"distance_r2_beliefs": 0.9, "distance_r2_next_token": 0.4},
        "layers": {
            "embedding": {"mse": 0.07, "mse_heldout_contexts": 0.08},
            "block_2": probe,
            "concat": {"mse": 0.004, "mse_heldout_contexts": None},
        },
        "evolution": [{"tokens": 64_000, "step": 10, "mse": 0.05}, {"tokens": 640_000, "step": 100, "mse": 0.02}],
        "paper": {
            "relative_loss": 1.0002,
            "layer_mse": {"block_2": 0.024, "concat": 0.004},
            "probe_mse_over_training": {"64000": 0.0118},
        },
    }
    record["evolution_at"] = {str(e["tokens"]): e for e in record["evolution"]}
    qs = {q.key: q for q in quantities_for(record)}
    assert "layers.block_2.mse" not in qs  # the headline layer's are the probe.* rows
    assert "evolution_at.640000.mse" not in qs  # the final model's, also the probe.* rows
    assert "layers.concat.mse_heldout_contexts" not in qs  # withheld (None): not a number
    assert qs["probe.mse_heldout_contexts/probe.mse_shuffled"].below == 0.10
    assert qs["probe.mse"].paper == 0.024 and qs["layers.concat.mse"].paper == 0.004
    assert qs["evolution_at.64000.mse"].paper == 0.0118 and qs["relative_loss"].paper == 1.0002
    assert qs["layers.embedding.mse"].paper is None and "geometry.distance_r2_next_token" in qs
    record["geometry"]["next_token_distances_proportional_to_beliefs"] = True  # one number, not two
    assert "geometry.distance_r2_next_token" not in {q.key for q in quantities_for(record)}


def test_the_environment_names_the_cpu_family_and_its_vector_features():
    from compmech.runs.environment import VECTOR_FEATURES, cpu_features

    info = Path("/proc/cpuinfo")
    if not info.is_file() or "cpu family" not in info.read_text():
        pytest.skip("no x86 /proc/cpuinfo here")
    flags = next(line for line in info.read_text().splitlines() if line.startswith("flags")).split(":")[1].split()
    text = cpu_features()
    assert text.startswith("cpu family ") and " model " in text
    assert text.split("; ")[1].split() == [f for f in VECTOR_FEATURES if f in flags]
