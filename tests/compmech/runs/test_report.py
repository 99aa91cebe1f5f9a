"""`compmech report RUN`: a run directory's files on one page; clear errors for unfinished runs."""

import argparse
import base64
import html
import io
import json

import pytest
from matplotlib.figure import Figure

from compmech.runs.config import ConfigError
from compmech.runs.report import CAPTIONS, RunDirectoryError, add_report_command, build_report, provenance

LAYER = {
    "mse": 0.0062,
    "r2": 0.94,
    "mse_heldout": 0.0064,
    "mse_heldout_std": 8e-5,
    "mse_shuffled": 0.112,
    "n_rows": 18,
    "n_features": 16,
}
SUMMARY = {
    "name": "tiny",
    "process": {"name": "mess3", "params": {"x": 0.05, "alpha": 0.85}},
    "command": "compmech run tests/data/tiny_mess3.toml",
    "steps": 300,
    "tokens": 57600,
    "final_loss": 0.8166,
    "optimal_loss": 0.8085,
    "relative_loss": 1.00997,
    "probe_layer": "block_2",
    "probe": LAYER,
    "paper": {
        "relative_loss": 1.0002,
        "probe_mse": 0.00039,
        "probe_mse_over_training": {"64000": 0.0118, "3200000": 0.0025},
        "distance_r2_beliefs": 0.95,
        "distance_r2_next_token": 0.31,
    },
    "analysis_layer": "block_2",
    "geometry": {
        "layer": "block_2",
        "n_contexts": 12,
        "n_belief_states": 12,
        "n_pairs": 66,
        "distance_r2_beliefs": 0.875,
        "distance_r2_next_token": 0.125,
    },
    "evolution": [
        {
            "tokens": 64000,
            "tokens_requested": 64000,
            "step": 100,
            "relative_loss": 1.02,
            "mse": 0.0111,
            "r2": 0.9,
            "mse_heldout": 0.0112,
            "mse_shuffled": 0.112,
        },
        {
            "tokens": 3200000,
            "step": 300,
            "relative_loss": 1.00997,
            "mse": 0.0062,
            "r2": 0.94,
            "mse_heldout": 0.0064,
            "mse_shuffled": 0.112,
        },
    ],
    "figures": ["figures/training_curve.png", "figures/belief_fractal.png", "figures/belief_fractal.svg"],
    "wall_seconds": 18.0,
    "train_wall_seconds": 13.9,
}
PROBE = {
    "layers": {"embedding": LAYER, "block_2": LAYER, "concat": LAYER},
    "probe_layer": "block_2",
    "rows": "all_strings",
    "weighting": "uniform",
    "n_strings": 9,
    "n_rows": 18,
    "train_fraction": 0.2,
    "n_repeats": 2,
}
METRIC = {
    "step": 300,
    "tokens": 57600,
    "loss": 0.8166,
    "optimal_loss": 0.8085,
    "relative_loss": 1.00997,
    "loss_by_position": [0.86, 0.82],
    "optimal_loss_by_position": [0.85, 0.81],
    "relative_loss_by_position": [1.01, 1.01],
}


def _png() -> bytes:
    fig = Figure(figsize=(2, 1))
    fig.add_subplot().plot([0, 1])
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=50)
    return buf.getvalue()


SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"></svg>'


@pytest.fixture
def run_dir(tmp_path):
    """A finished run directory with the files `compmech run` writes (figures tiny)."""
    run = tmp_path / "run"
    (run / "figures").mkdir(parents=True)
    (run / "config.toml").write_text('name = "tiny"\nseed = 3\n\n[model]\nn_layers = 2\n')
    (run / "metrics.jsonl").write_text(json.dumps({**METRIC, "step": 0}) + "\n" + json.dumps(METRIC) + "\n")
    (run / "probe.json").write_text(json.dumps(PROBE))
    (run / "summary.json").write_text(json.dumps(SUMMARY))
    for name in ["training_curve.png", "belief_fractal.png", "extra_panel.png"]:
        (run / "figures" / name).write_bytes(_png())
    (run / "figures" / "belief_fractal.svg").write_bytes(SVG)
    (run / "figures" / "only_svg.svg").write_bytes(SVG)
    (run / "figures" / "paper.pdf").write_bytes(b"%PDF-1.4")
    return run


def _images(page: str) -> list[str]:
    return [part.split('"', 1)[0] for part in page.split('<img src="')[1:]]


def test_report_from_a_run_directory(run_dir):
    path = build_report(run_dir)
    assert path == run_dir / "report.html"
    page = path.read_text(encoding="utf-8")
    # the title says what was run
    assert "<h1>mess3 (x = 0.05, alpha = 0.85): 2-layer transformer, 300 steps, 5.8e4 tokens (run tiny)</h1>" in page
    assert "compmech run tests/data/tiny_mess3.toml" in page
    # The summary's figures in its order, each once (PNG over SVG), then the others; no PDF.
    srcs = _images(page)
    assert len(srcs) == 4
    assert [s.split(";")[0] for s in srcs] == ["data:image/png"] * 3 + ["data:image/svg+xml"]
    assert base64.b64decode(srcs[3].split(",", 1)[1]) == SVG
    order = [
        page.index(html.escape(CAPTIONS["training_curve"])),
        page.index(CAPTIONS["belief_fractal"][:40]),
        page.index("extra panel"),
        page.index("only svg"),
    ]
    assert order == sorted(order)
    # The probe over training beside the paper's values, and the distance geometry.
    assert "over training" in page and "64,000" in page and "3,200,000" in page
    assert "0.0118" in page and "0.0025" in page and "0.01110" in page
    assert "Distance geometry" in page and "0.875" in page and "0.31" in page
    assert "compmech 0.1.0 · commit " in page and " UTC" in page
    assert not list(run_dir.glob(".*.tmp"))


def test_report_to_another_path(run_dir, tmp_path):
    out = build_report(run_dir, tmp_path / "elsewhere" / "r.html")
    assert out.is_file() and not (run_dir / "report.html").exists()


def test_unfinished_or_missing_runs_are_named(run_dir, tmp_path):
    with pytest.raises(ConfigError, match=r"does not exist.*compmech run"):
        build_report(tmp_path / "nowhere")
    (run_dir / "summary.json").unlink()
    with pytest.raises(ConfigError, match=rf"{run_dir}.*no summary.json.*unfinished run.*--out {run_dir}"):
        build_report(run_dir)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="not a compmech run directory"):
        build_report(empty)
    assert not (run_dir / "report.html").exists()


def test_broken_files_are_named(run_dir):
    (run_dir / "metrics.jsonl").write_text(json.dumps(METRIC) + "\n{not json\n")
    with pytest.raises(ConfigError, match=r"metrics.jsonl line 2 is not valid JSON"):
        build_report(run_dir)
    (run_dir / "probe.json").unlink()
    with pytest.raises(ConfigError, match=r"probe.json is missing"):
        build_report(run_dir)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("summary.json", b'{"name": "tiny", "process": \xff}', r"summary.json is not UTF-8 text \(byte 28"),
        ("probe.json", b"\xfe\xff{}", r"probe.json is not UTF-8 text"),
        ("config.toml", b'name = "\xe9"', r"config.toml is not UTF-8 text"),
        ("summary.json", b'{"name": "tiny",', r"summary.json is not valid JSON"),
        ("summary.json", b"[1, 2]", r"summary.json must hold a JSON object, got a list"),
        ("probe.json", b'"layers"', r"probe.json must hold a JSON object, got a string"),
        (
            "metrics.jsonl",
            b'{"step": 0, "tokens": 0}\n[0]\n',
            r"metrics.jsonl line 2 must hold a JSON object, got a list",
        ),
        (
            "summary.json",
            json.dumps({k: v for k, v in SUMMARY.items() if k != "process"}).encode(),
            r"summary.json has no \"process\" key",
        ),
        ("probe.json", json.dumps({"probe_layer": "block_2"}).encode(), r"probe.json has no \"layers\" key"),
        ("metrics.jsonl", b'{"step": 3}\n', r"metrics.jsonl line 1 has no \"tokens\" key"),
        (
            "summary.json",
            json.dumps({**SUMMARY, "process": "mess3"}).encode(),
            r"summary.json: \"process\" must be an object, got a string",
        ),
        ("summary.json", json.dumps({**SUMMARY, "steps": "300"}).encode(), r"\"steps\" must be a number, got a string"),
        ("probe.json", json.dumps({**PROBE, "layers": []}).encode(), r"\"layers\" must be an object, got a list"),
        (
            "probe.json",
            json.dumps({**PROBE, "layers": {"block_2": {**LAYER, "mse": "low"}}}).encode(),
            r"layers\[\"block_2\"\]\[\"mse\"\] must be a number or null, got a string",
        ),
        ("summary.json", json.dumps({**SUMMARY, "figures": "figures/a.png"}).encode(), r"\"figures\" must be a list"),
        ("process.json", b'{"name": "x", "T": [[[1.0]], [[0.5, 0.5]]]}', r"process.json: \"T\" must be a V x S x S"),
        (
            "process.json",
            b'{"name": "x", "T": [[[1.0]]], "state_names": ["a", "b"]}',
            r"\"state_names\" must be null or a list of 1 names",
        ),
        ("process.json", b'{"T": [[[1.0]]]}', r"process.json has no \"name\" key"),
    ],
)
def test_damaged_files_get_one_clear_error(run_dir, name, content, message):
    (run_dir / name).write_bytes(content)
    with pytest.raises(RunDirectoryError, match=message) as info:
        build_report(run_dir)
    assert str(run_dir / name) in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, ValueError)
    assert not (run_dir / "report.html").exists()


def test_a_damaged_file_through_the_cli_exits_2_on_one_line(run_dir, capsys):
    from compmech.runs import cli

    (run_dir / "probe.json").write_bytes(b"[]")
    assert cli.main(["report", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("compmech: error: ") and "probe.json must hold a JSON object" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_only_files_inside_the_run_directory_are_embedded(run_dir, tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(_png() + b"SECRET-OUTSIDE")
    (run_dir / "figures" / "linked.png").symlink_to(secret)
    summary = {**SUMMARY, "figures": [str(secret), "../secret.png", "figures/linked.png", "figures/training_curve.png"]}
    (run_dir / "summary.json").write_text(json.dumps(summary))
    page = build_report(run_dir).read_text(encoding="utf-8")
    secret_b64 = base64.b64encode(secret.read_bytes()).decode()
    assert secret_b64 not in page
    assert len(_images(page)) == 4  # the four figures inside (training_curve, belief_fractal, extra_panel, only_svg)


def test_the_process_matrices_from_process_json(run_dir):
    process = {
        "name": "mess3",
        "params": {"x": 0.05, "alpha": 0.85},
        "token_names": None,
        "state_names": ["A", "B", "C"],
        "T": [[[0.765, 0.00375, 0.00375], [0.0425, 0.0675, 0.00375], [0.0425, 0.00375, 0.0675]]] * 3,
        "kind": "HMM",
        "spec_file": None,
    }
    (run_dir / "process.json").write_text(json.dumps(process))
    page = build_report(run_dir).read_text(encoding="utf-8")
    assert "Process: transition matrices" in page and "token 2: T[2]" in page and "0.7650" in page


def test_provenance_names_the_version_commit_and_date():
    made = provenance()
    assert made.version == "0.1.0"
    assert made.commit is None or len(made.commit.split()[0]) == 12
    assert made.date.endswith(" UTC") and made.date[:2] == "20"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="compmech")
    add_report_command(parser.add_subparsers(dest="command", required=True))
    return parser


def test_report_subcommand(run_dir, tmp_path, capsys):
    args = _parser().parse_args(["report", str(run_dir)])
    assert args.func(args) == 0
    assert capsys.readouterr().out.strip() == str(run_dir / "report.html")
    args = _parser().parse_args(["report", str(run_dir), "--out", str(tmp_path / "x.html")])
    assert args.func(args) == 0 and (tmp_path / "x.html").is_file()


def test_report_subcommand_through_the_main_cli(run_dir, capsys, monkeypatch):
    """Once compmech.runs.cli adds the command, `compmech report RUN` works and errors exit 2 on one line."""
    from compmech.runs import cli

    try:
        cli.build_parser().parse_args(["report", str(run_dir)])
    except SystemExit:
        pytest.skip("compmech.runs.cli does not add the report command yet")
    capsys.readouterr()
    assert cli.main(["report", str(run_dir)]) == 0
    (run_dir / "summary.json").unlink()
    assert cli.main(["report", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("compmech: error: ") and "no summary.json" in err and err.count("\n") == 1


def test_the_printout_after_a_run_shows_the_report_s_rows_with_their_errors():
    from compmech.runs.run_command import format_summary
    from compmech.runs.summary import RunSummary
    from figures.report import result_rows

    summary = {
        **SUMMARY,
        "probe": {**LAYER, "mse_heldout_contexts": 0.0071, "mse_heldout_contexts_std": 0.0004},
        "probe_mse_by_layer": {"block_2": 0.0062, "concat": 0.0031},
        "phase_seconds": {"train": 13.9, "probe": 2.0},
    }
    text = format_summary(RunSummary.from_json(summary))
    rows, _ = result_rows(summary)
    for row in rows:  # the same rows as the report's first table, in its order and formatting
        line = next(line for line in text.splitlines() if line.startswith(row.label))
        assert row.ours_text in line
    assert "0.00710 ± 0.00040" in text and "0.00640 ± 8e-5" in text  # held-out errors carry their spread
    assert text.index("relative loss") < text.index("held-out probe MSE, unseen contexts") < text.index("shuffled")
    concat = next(line for line in text.splitlines() if "concat" in line)
    assert "0.00310" in concat and text.rstrip().endswith("probe 2.0 s")
    assert "1.0002" in text.splitlines()[2]  # the paper's relative loss beside ours
