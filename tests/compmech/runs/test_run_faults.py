"""Faults and absurd input to `compmech run`: one line on stderr, a non-zero exit, no traceback, nothing
written, within seconds (everything is checked before a directory is created or work starts)."""

import errno
import time
from pathlib import Path

import pytest

from compmech.runs.cli import main
from compmech.runs.config import load_config
from compmech.runs.experiment import plan_run
from compmech.runs.preflight import check_memory, estimate_memory

TINY = Path(__file__).parents[2] / "data" / "tiny_mess3.toml"


def tiny_with(tmp_path: Path, extra: str, replace: tuple[str, str] | None = None) -> Path:
    """The tiny config with ``replace`` applied and ``extra`` TOML lines appended, written to tmp_path."""
    text = TINY.read_text()
    if replace:
        assert replace[0] in text
        text = text.replace(*replace)
    path = tmp_path / "exp.toml"
    path.write_text(text + "\n" + extra)
    return path


def refused(argv: list[str], capsys, *, code: int = 2) -> str:
    """Run the CLI, check it fails fast with one line and no traceback; return the line."""
    start = time.perf_counter()
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert time.perf_counter() - start < 30, "refused within seconds, not after work"
    assert err.startswith("compmech: error:") and "\n" not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    "replace, needle, extra",
    [
        (("batch_size = 32", "batch_size = 1_000_000_000"), "would need", ""),
        (("d_model = 16", "d_model = 30_000_000"), "would need", ""),  # far above any machine, not near its limit
        # 3^40 strings: refused when the exact regime is asked for (under "auto" the run is sampled instead)
        (("context_length = 6", "context_length = 40"), "context strings", '[data]\nregime = "exact"\n'),
    ],
)
def test_absurd_sizes_are_refused_with_the_estimate(tmp_path, capsys, replace, needle, extra):
    out = tmp_path / "run"
    err = refused(["run", str(tiny_with(tmp_path, extra, replace)), "--out", str(out)], capsys)
    assert needle in err and "GiB available" in err and "make it smaller" in err
    assert not out.exists()


def test_memory_estimate_of_the_paper_run_and_the_refusal_message():
    cfg = load_config(Path(__file__).parents[3] / "compmech" / "experiments" / "mess3.toml")
    est = estimate_memory(cfg.model, cfg.training, num_states=3, vocab_size=3)
    assert est.n_strings == 3**10
    # the 88,572 distinct prefixes x 64 dims x 6 layers x float32 (136 MB; the concatenation is read a chunk at a
    # time), and 590,490 rows of float64 targets (and their shuffle), ids and weights (57 MB)
    assert est.probe == 4 * sum(3**t for t in range(1, 11)) * 64 * 6 + 3**10 * 10 * (16 * 3 + 64)
    assert 0.5 * 2**30 < est.peak < 1.5 * 2**30  # measured 0.95 GB resident for this run (0.9 GiB)
    check_memory(est, "mess3.toml", available=16 * 2**30)
    with pytest.raises(ValueError, match=r"would need ~0.7.* GiB.*has 0.5 GiB available"):
        check_memory(est, "mess3.toml", available=2**29)
    bos = estimate_memory(cfg.model, cfg.training, num_states=3, vocab_size=3, bos=True)  # 3^9 strings after it
    assert bos.probe == 4 * (1 + sum(3**t for t in range(1, 10))) * 64 * 6 + 3**9 * 10 * (16 * 3 + 64)


def test_a_wide_probe_is_refused_for_its_fit_and_the_fit_estimate_bounds_a_real_fit(tmp_path, capsys):
    """The probe fit holds several [d, d] float64 arrays: a tiny run with d_model 50,000 (4 probed layers, 200,000
    concatenated features) was estimated at 1.5 GiB and killed at 24 GB in its first fit before this term."""
    import tracemalloc

    import numpy as np

    from compmech.runs.preflight import FIT_GRAM_COPIES, probe_fit_bytes
    from probes import probe_layers

    cfg = load_config(tiny_with(tmp_path, "", ("d_model = 16", "d_model = 50_000")))
    est = estimate_memory(cfg.model, cfg.training, num_states=3, vocab_size=3)
    assert est.probe_fit == FIT_GRAM_COPIES * 8 * (4 * 50_000) ** 2 and est.peak > est.probe_fit
    assert estimate_memory(cfg.model, cfg.training, 3, 3, include_concat=False).probe_fit == probe_fit_bytes(50_000)
    err = refused(
        ["run", str(tiny_with(tmp_path, "", ("d_model = 16", "d_model = 50_000"))), "--out", str(tmp_path / "run")],
        capsys,
    )
    assert "probe fit 2.38e+03 GiB" in err and "8 [d, d] float64 arrays" in err and "V^L" not in err, err
    # the bound holds for a real fit, and is not far above it (tracemalloc sees numpy's arrays, not LAPACK's)
    rng = np.random.default_rng(0)
    d, U = 600, 400
    acts = {"a": rng.standard_normal((U, d)).astype(np.float32)}
    tracemalloc.start()
    try:
        probe_layers(
            acts,
            rng.random((U, 3)),
            rng.integers(0, 100, U),
            include_concat=False,
            per_context=True,
            contexts=np.arange(U),
            positions=rng.integers(0, 6, U),
            n_repeats=2,
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert 0.3 * probe_fit_bytes(d) < peak < probe_fit_bytes(d), (peak, probe_fit_bytes(d))


def test_param_count_in_the_estimate_is_the_model_s():
    import jax

    from predictive_models import TransformerConfig
    from predictive_models.transformer import abstract_params

    model = dict(context_length=7, n_layers=3, d_model=24, n_heads=2, d_head=5, d_mlp=40)
    est = estimate_memory(model, {"batch_size": 1, "steps_per_call": 1}, num_states=3, vocab_size=4)
    n_params = sum(x.size for x in jax.tree.leaves(abstract_params(TransformerConfig(vocab_size=4, **model))))
    assert est.model == 16 * n_params


@pytest.mark.parametrize(
    "extra, replace, needle",
    [
        ("[figures]\ndpi = 100000\n", None, "dpi must be between 30 and 1200"),
        ("", ("[probe]", '[probe]\nfigure_layer = "block_9"'), "figure_layer = 'block_9' is not a probed layer"),
        ("", ("[probe]", '[probe]\ntrain_fraction = "0.2"'), "train_fraction must be a number"),
        ("", ("[probe]", "[probe]\ninclude_concat = 1"), "include_concat must be bool"),
        ("", ("n_repeats = 2", "n_repeats = 2.5"), "n_repeats must be int"),
        ("", ('name = "mess3"', "name = 3"), "name must be a string"),
        ("", ('name = "mess3"', 'name = "mess3"\nmodule = 5'), "module must be a string"),
        ("", ("x = 0.05", "x = 1e400"), "x must be in"),
        ("", ("seed = 3", "seed = 99999999999999999999"), "seed must be an integer"),
    ],
)
def test_bad_values_are_refused_before_anything_is_created(tmp_path, capsys, extra, replace, needle):
    out = tmp_path / "run"
    err = refused(["run", str(tiny_with(tmp_path, extra, replace)), "--out", str(out)], capsys)
    assert needle in err
    assert not out.exists(), "nothing created: the fixed config can use the same --out"


def test_config_path_that_is_a_directory_or_not_utf8(tmp_path, capsys):
    assert "is a directory" in refused(["run", str(tmp_path)], capsys)
    bad = tmp_path / "latin1.toml"
    bad.write_bytes('name = "caf\u00e9"\n'.encode("latin-1"))
    err = refused(["run", str(bad)], capsys)
    assert str(bad) in err and "not UTF-8" in err


def test_output_that_is_a_file_or_under_a_file(tmp_path, capsys):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert "is a file" in refused(["run", str(TINY), "--out", str(a_file)], capsys)
    err = refused(["run", str(TINY), "--out", str(a_file / "sub" / "run")], capsys)
    assert "which is a file" in err and str(a_file) in err
    assert a_file.read_text() == "x"


def test_unwritable_output(tmp_path, capsys, monkeypatch):
    import compmech.runs.preflight as preflight

    # The tests may run as root (who may write anywhere), so the permission check is simulated.
    monkeypatch.setattr(preflight.os, "access", lambda path, mode: False)
    err = refused(["run", str(TINY), "--out", str(tmp_path / "run")], capsys)
    assert "cannot be written" in err and "writable place" in err
    assert not (tmp_path / "run").exists()


def test_full_disk_at_the_start_leaves_nothing(tmp_path, capsys, monkeypatch):
    import figures.io

    def full(path, write):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    # the run directory's writer (compmech.runs.files) looks figures.io.write_atomic up when it writes
    monkeypatch.setattr(figures.io, "write_atomic", full)
    err = refused(["run", str(TINY), "--out", str(tmp_path / "run")], capsys, code=1)
    assert "disk is full" in err and "run the same command again" in err
    assert not (tmp_path / "run").exists(), "the half-made run directory is removed"


def test_damaged_run_config_is_named_not_called_different(tmp_path, capsys):
    cfg = load_config(TINY)
    from compmech.runs.experiment import prepare_run_dir

    plan = plan_run(cfg, tmp_path / "run")
    prepare_run_dir(plan)
    assert (tmp_path / "run" / "process.json").is_file()
    (tmp_path / "run" / "config.toml").write_bytes(b"name = [\xff\n")
    err = refused(["run", str(TINY), "--out", str(tmp_path / "run")], capsys)
    assert "damaged" in err and "config.toml" in err and "different config" not in err


@pytest.mark.slow
def test_killed_before_the_report_is_not_finished_and_a_rerun_completes_it(tmp_path, capsys, monkeypatch):
    """A full disk while writing report.html: summary.json exists but the run is not finished (no
    complete.json); the rerun deletes the stale temp file, finishes, and writes the mark last."""
    import figures.report
    from compmech.runs.files import is_complete

    out = tmp_path / "run"
    cfg = tiny_with(tmp_path, "", ("steps = 300", "steps = 100"))

    def full(path, write):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(figures.report, "write_atomic", full)
    assert main(["run", str(cfg), "--out", str(out), "--no-progress"]) == 1
    assert "disk is full" in capsys.readouterr().err
    assert (out / "summary.json").is_file() and not is_complete(out) and not (out / "report.html").exists()
    monkeypatch.undo()
    stale = out / "figures" / ".belief_fractal.png.abc123.tmp"
    stale.write_bytes(b"half a png")
    assert main(["run", str(cfg), "--out", str(out), "--no-progress"]) == 0
    assert is_complete(out) and (out / "report.html").is_file()
    assert not stale.exists() and not list(out.rglob("*.tmp"))
    assert (out / "complete.json").stat().st_mtime_ns >= (out / "report.html").stat().st_mtime_ns


def test_a_non_utf8_spec_file_is_named(tmp_path, capsys):
    spec = tmp_path / "p.toml"
    spec.write_bytes(b'name = "caf\xe9"\n')
    cfg = tmp_path / "exp.toml"
    cfg.write_text('[process]\nspec = "p.toml"\n')
    err = refused(["run", str(cfg), "--out", str(tmp_path / "run")], capsys)
    assert str(spec) in err and "not UTF-8" in err
