"""``compmech reproduce --only STUDY --seeds N``: a study's tables over seeds (compmech/runs/study_seeds.py)."""

import json
from pathlib import Path

import pytest

from compmech import studies
from compmech.runs.cli import main
from compmech.runs.config import config_from_dict
from compmech.runs.files import write_json_atomic, write_text_atomic
from compmech.runs.published import PublishedError
from compmech.runs.reproduce import ReproduceRunner
from compmech.runs.study_seeds import (
    PublishedStudy,
    copies_environment,
    load_published_study,
    markdown_over_seeds,
    marked_rows,
    published_studies_dir,
    published_study_path,
    rows_not_published,
    spreads_over_seeds,
)
from compmech.studies import Runner, Study, register_study

DATA = Path(__file__).parents[2] / "data"


def test_a_cell_that_varies_becomes_mean_sd_and_one_that_agrees_stays():
    table = "# t\n\n| run | layers | loss | note |\n|---|---:|---:|---|\n| block_4 (x = 0.05) | 4 | {} | {} |\n"
    page = markdown_over_seeds([table.format("1.0010", "a 1"), table.format("1.0030", "a 2 3")], "<!-- 2 -->")
    lines = page.splitlines()
    assert lines[0] == "<!-- 2 -->" and "# t" in lines
    row = lines[-1]
    # the label's digits (block_4, x = 0.05) and the count all seeds agree on stay; the loss is mean ± sd at 4 places
    assert row.startswith("| block_4 (x = 0.05) | 4 | 1.0020 ± 0.0014 |")
    assert "a 1 (seed 0; seeds: a 1, a 2 3)" in row  # a cell whose numbers do not line up keeps seed 0's, marked
    assert "| run | layers | loss | note |" in lines  # the header is seed 0's


def test_a_verdict_that_differs_between_seeds_is_shown_for_each():
    table = "| target | met |\n|---|---|\n| within 2% | {} |\n"
    page = markdown_over_seeds([table.format(v) for v in ("no", "yes", "no")], "n")
    assert page.splitlines()[-1] == "| within 2% | no (seed 0; seeds: no, yes, no) |"


def test_a_cell_with_its_own_errors_shows_the_seeds_spread_apart_from_them():
    table = "| a | b |\n|---|---|\n| x | {} |\n"
    page = markdown_over_seeds([table.format("0.60 ± 0.02"), table.format("0.80 ± 0.03")], "n")
    assert page.splitlines()[-1] == "| x | 0.70 (sd 0.14) ± 0.02 |"  # the fit's error is seed 0's


def test_an_sd_below_seed_0s_last_digit_is_printed_to_its_first_digit_not_as_zero():
    table = "| a | b | c |\n|---|---|---|\n| x | {} | {} |\n"
    # seed 0 printed 1 decimal, the others more (a study rounds each value to its own error): 0.90, 0.893, 0.897
    # have sd 0.0035, which seed 0's one decimal would print as "0.9 (sd 0.0)"
    page = markdown_over_seeds([table.format(v, "1") for v in ("0.9 ± 0.14", "0.893 ± 0.1", "0.897 ± 0.2")], "n")
    assert page.splitlines()[-1] == "| x | 0.897 (sd 0.004) ± 0.14 | 1 |"
    page = markdown_over_seeds([table.format(v, "1") for v in ("0.005", "0.0051")], "n")
    assert page.splitlines()[-1] == "| x | 0.00505 ± 0.00007 | 1 |"  # was "0.005 ± 0.000"
    page = markdown_over_seeds([table.format(v, "1") for v in ("0.60", "0.61")], "n")
    assert page.splitlines()[-1] == "| x | 0.60 ± 0.01 | 1 |"  # an sd seed 0's digits can print keeps them
    page = markdown_over_seeds([table.format(v, "1") for v in ("0.5", "0.5000000000001")], "n")
    assert page.splitlines()[-1] == "| x | 0.500000000000 ± 0.000000000000 | 1 |"  # at most 12 decimals


def test_a_table_another_seed_lacks_is_seed_0s_and_says_so_in_every_row():
    one = "| a | b |\n|---|---|\n| x | 0.1 |\n"
    two = "| a | b | c |\n|---|---|---|\n| x | 0.1 | 2 |\n"  # another header: not the same table
    page = markdown_over_seeds([one, two], "n")
    assert page.splitlines()[-1] == "| x (seed 0 only) | 0.1 |"


def test_a_table_is_found_by_its_header_however_many_lines_come_before_it():
    table = "| layer | r2 |\n|---|---|\n| block_1 | {} |\n"
    one = "text\n\n" + table.format("0.5")
    two = "text\nanother line only this seed prints\n\n" + table.format("0.7")
    page = markdown_over_seeds([one, two], "n")
    assert page.splitlines()[-1] == "| block_1 | 0.6 ± 0.1 |"
    assert "another line only this seed prints" not in page  # lines outside tables are seed 0's


def test_rows_that_only_some_seeds_have_merge_by_their_first_cell_and_say_whose_they_are():
    # a table that lists, say, the positions flagged below the optimum: each seed flags others
    head = "| seen | loss |\n|---|---|\n"
    seeds = [
        head + "| 3 | 0.50 |\n| 11 | 0.80 |\n",
        head + "| 3 | 0.70 |\n| 7 | 0.20 |\n| 11 | 0.90 |\n",
        head + "| 3 | 0.60 |\n| 20 | 0.40 |\n",
    ]
    # the positions in their order, though no seed lists 7, 11 and 20 together
    body = markdown_over_seeds(seeds, "n").splitlines()[4:]
    assert body == [
        "| 3 | 0.60 ± 0.10 |",
        "| 7 (seed 1 only) | 0.20 |",
        "| 11 (seeds 0, 1 only) | 0.85 ± 0.07 |",
        "| 20 (seed 2 only) | 0.40 |",
    ]
    labels = ["| k | v |\n|---|---|\n| b | 1 |\n| d | 2 |\n", "| k | v |\n|---|---|\n| a | 3 |\n| d | 4 |\n| e | 5 |\n"]
    assert [r.split("|")[1].strip() for r in markdown_over_seeds(labels, "n").splitlines()[4:]] == [
        "b (seed 0 only)",
        "a (seed 1 only)",
        "d",
        "e (seed 1 only)",
    ]


def test_a_row_whose_cells_do_not_line_up_is_seed_0s_and_says_so():
    one = "| a | b |\n|---|---|\n| x | 0.1 |\n"
    two = "| a | b |\n|---|---|\n| x | 0.1 | 2 |\n"
    assert markdown_over_seeds([one, two], "n").splitlines()[-1] == "| x (seed 0 only) | 0.1 |"


def test_a_marked_line_that_is_not_a_whole_table_row_is_still_checked():
    page = "<!-- published seeds: icl quick -->\n| a | b |\n|---|---|\n| x | 1 | (note)\n<!-- published seeds: end -->"
    assert marked_rows(page)[("icl", "quick")][-1] == "| x | 1 | (note)"


def test_spreads_keep_the_numbers_every_copy_holds():
    numbers = spreads_over_seeds([{"a": [1.0, 2.0], "b": 3, "flag": True}, {"a": [3.0, 2.0], "c": 1.0}])
    by_path = {n.path: n.spread for n in numbers}
    assert set(by_path) == {"a.0", "a.1"}
    assert by_path["a.0"].mean == 2.0 and by_path["a.0"].sd == pytest.approx(2**0.5, rel=1e-15)
    assert by_path["a.1"].sd == 0.0
    with pytest.raises(ValueError, match="at least one copy"):
        spreads_over_seeds([])


def test_the_runner_adds_the_offset_to_what_it_runs_not_to_what_it_reads():
    cfg = config_from_dict({"process": {"name": "mess3"}, "seed": 5})
    assert ReproduceRunner("x").seeded(cfg) is cfg
    runner = ReproduceRunner("x", seed_offset=2, n_seeds=3)
    assert runner.seeded(cfg).seed == 7 and cfg.seed == 5
    assert runner.command == "compmech reproduce --only x --seeds 3"


def _reproduce(out: Path, runner: Runner) -> str:
    """A study's reproduce entry: one tiny run, a table and a JSON of its numbers."""
    cfg = runner.load(DATA / "tiny_mess3.toml", {"training.steps": 100})
    summary = runner.run(cfg, out / "tiny")
    text = f"# seeded\n\n| quantity | value |\n|---|---:|\n| relative loss | {summary.relative_loss:.5f} |\n"
    write_text_atomic(out / "seeded.md", text)
    write_json_atomic(out / "seeded.json", {"relative_loss": summary.relative_loss, "label": "tiny"})
    return text


@pytest.fixture
def seeded_study():
    study = register_study(Study(name="seeded", summary="a test's tiny study over seeds", reproduce=_reproduce))
    yield study
    studies.base.REGISTRY.pop("seeded", None)


def test_a_study_over_two_seeds_runs_each_seed_and_tabulates_the_spread(seeded_study, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["reproduce", "--only", "seeded", "--seeds", "2", "--out", str(out), "--no-progress"]) == 0
    summaries = [json.loads((out / "seeds" / f"seed={i}" / "tiny" / "summary.json").read_text()) for i in (0, 1)]
    configs = [(out / "seeds" / f"seed={i}" / "tiny" / "config.toml").read_text() for i in (0, 1)]
    assert "seed = 3" in configs[0] and "seed = 4" in configs[1]  # tiny_mess3's seed 3, then 3 + 1
    assert all(s["command"] == "compmech reproduce --only seeded --seeds 2" for s in summaries)
    losses = [s["relative_loss"] for s in summaries]
    assert losses[0] != losses[1]  # two seeds, two models
    record = json.loads((out / "seeded-seeds.json").read_text())
    (number,) = record["numbers"]
    assert number["path"] == "relative_loss" and number["values"] == losses
    assert record["command"] == "compmech reproduce --only seeded --seeds 2"
    page = (out / "seeded-seeds.md").read_text()
    assert "| relative loss | " in page and " ± " in page and "--seeds 2" in page.splitlines()[0]
    assert "seeded-seeds.md" in capsys.readouterr().out


def test_seeds_with_a_study_refuse_check_and_a_publish_of_too_few_seeds(seeded_study, tmp_path, capsys):
    assert main(["reproduce", "--only", "seeded", "--seeds", "3", "--out", str(tmp_path), "--check"]) == 2
    assert "runs that study alone" in capsys.readouterr().err
    assert main(["reproduce", "--only", "seeded", "--seeds", "1", "--out", str(tmp_path), "--no-progress"]) == 2
    assert "at least 2 seeds" in capsys.readouterr().err
    publish = ["--publish", str(tmp_path / "p.json")]
    assert main(["reproduce", "--only", "seeded", "--seeds", "2", "--out", str(tmp_path), *publish]) == 2
    assert "--publish needs --seeds 3 or more" in capsys.readouterr().err
    assert main(["reproduce", "--only", "seeded", "--out", str(tmp_path), *publish]) == 2
    assert "needs --seeds N" in capsys.readouterr().err
    assert not (tmp_path / "seeds").exists() and not (tmp_path / "p.json").exists()  # refused before any run


def test_a_published_study_holds_the_page_the_spreads_and_the_machine(seeded_study, tmp_path, capsys):
    out, file = tmp_path / "out", tmp_path / "pub" / "seeded-quick.json"
    file.parent.mkdir()
    args = ["reproduce", "--only", "seeded", "--seeds", "3", "--quick", "--out", str(out), "--no-progress"]
    assert main([*args, "--publish", str(file)]) == 0
    record = load_published_study(file)
    assert (record.study, record.budget, record.n_seeds) == ("seeded", "quick", 3)
    assert record.rerun == "compmech reproduce --quick --only seeded --seeds 3"
    assert record.command == f"{record.rerun} --publish {file}"
    assert record.markdown == (out / "seeded-seeds.md").read_text()
    summary = json.loads((out / "seeds" / "seed=0" / "tiny" / "summary.json").read_text())
    assert record.environment == summary["environment"] and record.environment["cpu"]
    (number,) = record.numbers
    assert number.path == "relative_loss" and number.spread.n == 3
    # the README check: the page's rows are published, a row with another number is not
    (row,) = [r for r in record.table_rows() if r.startswith("| relative loss")]
    assert rows_not_published([row], record) == []
    assert rows_not_published([row.replace("±", "+-")], record) == [row.replace("±", "+-")]
    # the record survives its own JSON; a damaged file says what to run
    assert PublishedStudy.from_json(json.loads(file.read_text())) == record
    file.write_text('{"schema": 1, "study": "seeded"}')
    with pytest.raises(PublishedError, match="damaged.*--publish FILE"):
        load_published_study(file)
    with pytest.raises(PublishedError, match="cannot be read"):
        load_published_study(tmp_path / "absent.json")


def test_seed_copies_from_two_machines_are_not_published_as_one_spread(tmp_path):
    for i, cpu in enumerate(("AMD EPYC", "Intel Xeon")):
        run = tmp_path / f"seed={i}" / "run"
        run.mkdir(parents=True)
        (run / "summary.json").write_text(json.dumps({"environment": {"cpu": cpu, "python": "3.11.7"}}))
    assert copies_environment([tmp_path / "seed=0"]) == {"cpu": "AMD EPYC", "python": "3.11.7"}
    with pytest.raises(PublishedError, match="another machine.*cpu differ"):
        copies_environment([tmp_path / "seed=0", tmp_path / "seed=1"])


def test_marked_rows_are_read_between_the_markers_and_bad_markers_are_named():
    page = (
        "intro\n| not | marked |\n<!-- published seeds: icl quick -->\ntext\n| a | 1 |\n"
        "<!-- published seeds: end -->\n<!-- published seeds: cbu full -->\n| b | 2 |\n<!-- published seeds: end -->\n"
    )
    assert marked_rows(page) == {("icl", "quick"): ["| a | 1 |"], ("cbu", "full"): ["| b | 2 |"]}
    with pytest.raises(ValueError, match="never closed"):
        marked_rows("<!-- published seeds: icl quick -->\n| a | 1 |\n")
    with pytest.raises(ValueError, match="line 1: 'published seeds: end' without an opening"):
        marked_rows("<!-- published seeds: end -->\n")
    with pytest.raises(ValueError, match="line 2: expected"):
        marked_rows("<!-- published seeds: icl quick -->\n<!-- published seeds: cbu quick -->\n")


def test_every_study_readme_shows_its_published_spreads_as_published():
    """What a README shows between its markers is the published page's rows, and each shipped file is shown."""
    root = Path(studies.__file__).parent
    shipped = {p.stem for p in published_studies_dir().glob("*.json")}
    shown: set[str] = set()
    for readme in sorted(root.glob("*/README.md")):
        for (study, budget), rows in marked_rows(readme.read_text(encoding="utf-8")).items():
            record = load_published_study(published_study_path(study, budget))
            assert rows, f"{readme}: the markers for {study} {budget} hold no table"
            assert rows_not_published(rows, record) == [], (
                f"{readme}: rows not in {published_study_path(study, budget)}; copy them from its markdown "
                f"(rerun: {record.rerun} --publish FILE)"
            )
            shown.add(f"{study}-{budget}")
    assert shipped <= shown, f"published but shown in no study README: {sorted(shipped - shown)}"


def test_a_number_with_thousands_separators_is_one_number():
    table = "| a | tokens |\n|---|---|\n| x | {} |\n"
    page = markdown_over_seeds([table.format("16,978"), table.format("17,179"), table.format("17,061")], "n")
    assert page.splitlines()[-1] == "| x | 17,073 ± 101 |"
