"""The CLI starts fast (no JAX for --help and the theory commands) and names override runs after them."""

import subprocess
import sys
from pathlib import Path

import pytest

from compmech.runs import cli

ROOT = Path(__file__).parents[3]


def modules_loaded_by(code: str) -> set[str]:
    """The top-level modules a fresh interpreter has imported after running ``code``."""
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sorted(sys.modules)))"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"MPLBACKEND": "Agg", "PATH": "/usr/bin:/bin"},
    )
    return {name.split(".")[0] for name in out.stdout.split()}


def test_importing_the_cli_imports_no_jax():
    loaded = modules_loaded_by("import compmech.runs.cli")
    assert "jax" not in loaded and "flax" not in loaded and "matplotlib" not in loaded


def test_help_and_theory_commands_import_no_jax():
    loaded = modules_loaded_by(
        "import contextlib, io\nfrom compmech.runs.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['processes']); main(['info', 'golden_mean'])\n"
        "    try:\n        main(['--help'])\n    except SystemExit:\n        pass"
    )
    assert "jax" not in loaded and "flax" not in loaded, "the theory commands need NumPy and SciPy only"
    assert "compmech" in loaded and "hmm_processes" in loaded


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out


def test_override_runs_get_their_own_directory(tmp_path, monkeypatch):
    import compmech.runs.run_command as run_command

    seen = {}

    def fake_run(cfg, out, **kwargs):
        seen["out"], seen["steps"], seen["seed"] = out, cfg.training["steps"], cfg.seed
        raise ValueError("stop here")

    monkeypatch.setattr(run_command, "run_experiment", fake_run)
    assert cli.main(["run", str(ROOT / "compmech" / "experiments" / "mess3.toml"), "--steps", "5000"]) == 2
    assert seen == {"out": Path("runs/mess3-steps5000"), "steps": 5000, "seed": 0}
    assert cli.main(["run", "--steps", "5000", "--seed", "4"]) == 2
    assert seen["out"] == Path("runs/mess3-steps5000-seed4")
    assert cli.main(["run"]) == 2 and seen["out"] == Path("runs/mess3")
    assert cli.main(["run", "--seed", "4", "--out", str(tmp_path)]) == 2 and seen["out"] == tmp_path
    # a shipped config by name, and --set overrides (the directory's name records them)
    assert cli.main(["run", "mess3", "--set", "model.d_model=32", "--set", "training.schedule=constant"]) == 2
    assert seen["out"] == Path("runs/mess3-d_model32-scheduleconstant")
    assert cli.main(["run", "mess9"]) == 2  # no such shipped config, and no such file


def test_bad_overrides_are_one_line_errors(capsys):
    assert cli.main(["run", "mess3", "--set", "model.d_model"]) == 2
    assert "--set 'model.d_model': write KEY=VALUE" in capsys.readouterr().err
    assert cli.main(["run", "mess3", "--set", "model.d_modle=3"]) == 2
    assert "unknown key [model] 'd_modle'" in capsys.readouterr().err
    assert cli.main(["run", "mess9"]) == 2
    assert "no shipped config named 'mess9'" in capsys.readouterr().err


def test_version_and_the_shipped_configs(capsys):
    import compmech

    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"compmech {compmech.__version__}"
    assert cli.main(["configs"]) == 0
    out = capsys.readouterr().out
    for name in ("mess3", "rrxor", "icl_mess3", "sweep_mess3_seeds", "architectures", "golden_mean"):
        assert f"  {name} " in out


def test_the_full_parser_has_every_command_s_arguments():
    args = cli.build_parser().parse_args(["report", "some/run"])
    assert callable(args.func)
    args = cli.build_parser().parse_args(["run", "x.toml", "--steps", "5"])
    assert args.steps == 5 and callable(args.func)
