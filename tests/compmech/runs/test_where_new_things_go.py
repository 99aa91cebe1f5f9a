"""ARCHITECTURE.md, "Where does my new … go", done once each: a figure of every run, and a CLI command.
(A process, a model family and a study have tests of their own: test_run_process.py, test_model_family_plugin.py,
tests/compmech/studies/test_example_study.py.)"""

import shutil

import numpy as np
from matplotlib.figure import Figure

from compmech.runs import cli, report
from compmech.runs.config import load_config
from compmech.runs.report import build_report
from compmech.runs.run_figures import save_figures


def plot_position_histogram(positions: np.ndarray) -> Figure:
    """A new array-in figure function, as one would add it to figures/<topic>.py."""
    fig = Figure(figsize=(3, 2))
    ax = fig.add_subplot()
    ax.hist(positions, bins=np.arange(positions.max() + 2) - 0.5)
    ax.set_xlabel("position")
    return fig


def test_a_new_run_figure_is_saved_and_reaches_the_report(mixture_run, tmp_path, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(mixture_run, run)
    cfg = load_config(run / "config.toml")
    # run_figures: one more entry in the table of stem -> drawing; report: its caption
    paths = save_figures(cfg, run, {"position_histogram": lambda: plot_position_histogram(np.arange(5))})
    monkeypatch.setitem(report.CAPTIONS, "position_histogram", "How many probe rows each position has.")
    assert [p.name for p in paths] == ["position_histogram.png"]
    page = build_report(run).read_text()
    assert "How many probe rows each position has." in page


ADDER = """
def add_hello_command(subparsers):
    p = subparsers.add_parser("hello", help="say hello")
    p.add_argument("--name", default="world")
    p.set_defaults(func=lambda args: print(f"hello, {args.name}") or 0)
"""


def test_a_new_command_is_one_entry_in_commands(tmp_path, monkeypatch, capsys):
    (tmp_path / "hello_command.py").write_text(ADDER)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(cli.COMMANDS, "hello", ("hello_command", "add_hello_command", "say hello"))
    assert cli.main(["hello", "--name", "compmech"]) == 0
    assert capsys.readouterr().out == "hello, compmech\n"
    assert "hello" in cli.build_parser().format_help()
