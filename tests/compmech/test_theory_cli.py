"""The theory subcommands (processes, info, msp) on a parser built here."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

import hmm_processes as hp
from compmech.theory_commands import add_theory_commands, parse_params, resolve_process, simplex_coordinates

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "processes" / "golden_mean.toml"


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="compmech")
    sub = parser.add_subparsers(dest="command", required=True)
    add_theory_commands(sub)
    args = parser.parse_args(argv)
    return args.func(args)


def test_processes_lists_every_process_with_defaults(capsys):
    assert run(["processes"]) == 0
    out = capsys.readouterr().out
    for name in hp.list_processes():
        assert name in out
    assert "mess3(x=0.05, alpha=0.85)" in out
    assert "matching_parens(p=0.5, q=0.5, max_depth=4)" in out
    assert "GHMM" in out


def test_info_json_has_every_key(capsys):
    assert run(["info", "rrxor", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    for key in ("h_mu", "C_mu", "E", "T", "S", "chi", "markov_order", "cryptic_order", "n_mixed_states",
                "lyapunov_dimension"):
        assert key in d
    assert d["n_mixed_states"] == 36 and d["lyapunov_dimension"] is None
    assert d["h_mu"] == pytest.approx(2 / 3, abs=1e-9)
    assert d["C_mu"] == pytest.approx(2.251629, abs=1e-6)
    assert d["markov_order"] is None and d["cryptic_order"] == 0


def test_info_json_for_an_infinite_msp_with_params(capsys):
    assert run(["info", "mess3", "--param", "x=0.15", "--param", "alpha=0.6", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["params"] == {"x": 0.15, "alpha": 0.6}
    assert d["n_mixed_states"] is None and d["C_mu"] is None
    assert d["lyapunov_dimension"] > 1.0 and d["h_mu_stderr"] > 0


def test_info_table_and_spec_file(capsys):
    assert run(["info", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert "golden_mean_spec" in out and "0.251629" in out and "Markov order R" in out


@pytest.mark.parametrize("argv, match", [
    (["info", "no_such_process"], "unknown process"),
    (["info", "mess3", "--param", "x"], "KEY=VALUE"),
    (["info", "mess3", "--param", "y=1"], "no parameter 'y'"),
    (["info", "mess3", "--param", "x=0.9"], "x must be"),
    (["info", str(EXAMPLE), "--param", "p=0.3"], "spec file"),
    (["info", "missing_file.toml"], "cannot read"),
    (["msp", "even", "--depth", "-1"], "--depth"),
])
def test_errors_are_one_line_value_errors(argv, match):
    with pytest.raises(ValueError, match=match) as err:
        run(argv)
    assert "\n" not in str(err.value)


def test_msp_graph_for_a_finite_msp(tmp_path, capsys):
    out_file = tmp_path / "gm.png"
    assert run(["msp", "golden_mean", "--plot", str(out_file)]) == 0
    out = capsys.readouterr().out
    assert "finite MSP with 3 states" in out and "-0|0.6667-> 1R" in out
    assert out_file.stat().st_size > 1000
    assert not list(tmp_path.glob("*.tmp"))


def test_msp_beliefs_to_a_depth(tmp_path, capsys):
    svg = tmp_path / "mess3.svg"
    assert run(["msp", "mess3", "--depth", "6", "--plot", str(svg)]) == 0
    out = capsys.readouterr().out
    assert "looks infinite" in out and "[1, 3, 9, 27, 81, 243, 729]" in out
    assert svg.read_text().lstrip().startswith("<?xml")
    png = tmp_path / "rrxor.png"
    assert run(["msp", "rrxor", "--depth", "5", "--plot", str(png)]) == 0  # PCA for 5 states
    assert run(["msp", "post_quantum", "--depth", "5", "--plot", str(tmp_path / "pq.png")]) == 0
    assert run(["msp", "even", "--depth", "4", "--plot", str(tmp_path / "even.png")]) == 0
    with pytest.raises(ValueError, match="unsupported"):
        run(["msp", "even", "--plot", str(tmp_path / "x.jpg2")])
    with pytest.raises(ValueError, match="does not exist"):
        run(["msp", "even", "--plot", str(tmp_path / "no" / "x.png")])


def test_helpers():
    assert parse_params(["a=1", "b=0.5", "c=true", "d=text"]) == {"a": 1, "b": 0.5, "c": True, "d": "text"}
    assert resolve_process("matching_parens", {"max_depth": 2}).num_states == 3
    xy = simplex_coordinates([[1, 0, 0], [0, 1, 0], [0, 0, 1]])
    assert xy.ravel().tolist() == pytest.approx([0, 0, 1, 0, 0.5, 3**0.5 / 2])
