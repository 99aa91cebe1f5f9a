"""Sweeps as jobs (issue 24, item 6): `compmech sweep --launcher local` (submitit's local executor, the stand-in for
SLURM) gives the in-process sweep's numbers, resumes after it is killed, lists failed jobs with their logs; ``--shard``
and ``--collect`` for job arrays of one's own."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("submitit")

from compmech.runs.cli import main  # noqa: E402
from compmech.runs.files import is_complete, is_locked  # noqa: E402

ROOT = Path(__file__).parents[3]
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
SWEEP = """
name = "tl"
seed = 0
[process]
name = "mess3"
[model]
context_length = 4
n_layers = 1
d_model = 8
n_heads = 1
d_head = 4
d_mlp = 16
[training]
steps = 60
batch_size = 16
learning_rate = 1e-2
warmup_steps = 5
steps_per_call = 20
eval_every = 20
checkpoint_every = 20
[probe]
n_repeats = 1
include_concat = false
[launcher]
timeout_min = 30
[sweep]
grid = {grid}
metrics = ["relative_loss", "probe.mse_heldout_contexts", "probe.mse_shuffled"]
"""
GRID = '{ "process.params.x" = [0.05, 0.15], "seed" = [0, 1] }'
POINTS = ["tl-x=0.05,seed=0", "tl-x=0.05,seed=1", "tl-x=0.15,seed=0", "tl-x=0.15,seed=1"]


def sweep_file(tmp_path: Path, grid: str = GRID) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(SWEEP.replace("{grid}", grid))
    return path


def numbers(out: Path) -> dict[str, dict[str, str]]:
    """sweep.csv's metric cells by point (the times left out: they differ from run to run)."""
    with open(out / "sweep.csv") as f:
        return {
            r["point"]: {k: v for k, v in r.items() if k not in ("wall_seconds", "train_elapsed_seconds")}
            for r in csv.DictReader(f)
        }


@pytest.mark.slow  # whole sweeps through submitit's local executor (a process per job); CI runs it
def test_a_local_launcher_sweep_gives_the_numbers_of_the_in_process_sweep(tmp_path, capsys):
    path = sweep_file(tmp_path)
    assert main(["sweep", str(path), "--out", str(tmp_path / "here"), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["sweep", str(path), "--out", str(tmp_path / "jobs"), "--launcher", "local"]) == 0
    err = capsys.readouterr().err
    assert err.count("submitted job") == 2, "one job per seed group: x = 0.05 and x = 0.15, two seeds each"
    records = json.loads((tmp_path / "jobs" / "launcher.json").read_text())["jobs"]
    assert sorted(records) == ["0", "1"] and records["0"]["points"] == POINTS[:2]
    assert records["1"]["command"][-5:] == [
        "--out",
        str((tmp_path / "jobs").resolve()),
        "--shard",
        "1/2",
        "--no-progress",
    ]
    here, jobs = numbers(tmp_path / "here"), numbers(tmp_path / "jobs")
    assert sorted(jobs) == POINTS and all(r["status"] == "finished" for r in jobs.values())
    assert jobs == here, "the same training, in a job: the same numbers"
    # run again: nothing to submit, the table written again from the finished points
    before = (tmp_path / "jobs" / POINTS[0] / "summary.json").stat().st_mtime_ns
    assert main(["sweep", str(path), "--out", str(tmp_path / "jobs"), "--launcher", "local"]) == 0
    assert "no job to submit" in capsys.readouterr().err
    assert (tmp_path / "jobs" / POINTS[0] / "summary.json").stat().st_mtime_ns == before


@pytest.mark.slow  # whole sweeps through submitit's local executor (a process per job); CI runs it
def test_a_killed_launcher_sweep_resumes_and_completes(tmp_path, capsys):
    path = sweep_file(tmp_path)
    out = tmp_path / "out"
    launcher = subprocess.Popen(
        [sys.executable, "-m", "compmech.runs.cli", "sweep", str(path), "--out", str(out), "--launcher", "local"],
        env=ENV,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    end = time.monotonic() + 600
    while not any((out / p / "metrics.jsonl").is_file() for p in POINTS):  # the first job is training
        assert time.monotonic() < end and launcher.poll() is None
        time.sleep(0.2)
    os.killpg(launcher.pid, signal.SIGKILL)  # the launcher, its job and the job's compmech, all at once
    launcher.wait()
    end = time.monotonic() + 60
    while any(is_locked(out / p) for p in POINTS):  # the kernel frees a killed process's locks as it goes
        assert time.monotonic() < end, "a killed job's lock was never released"
        time.sleep(0.2)
    assert not all(is_complete(out / p) for p in POINTS)
    assert main(["sweep", str(path), "--out", str(out), "--launcher", "local"]) == 0
    assert "submitted job" in capsys.readouterr().err
    assert all(is_complete(out / p) for p in POINTS)
    assert all(r["status"] == "finished" for r in numbers(out).values())


def test_a_failed_job_is_listed_with_its_log_and_marked_in_the_table(tmp_path, capsys):
    path = sweep_file(tmp_path, '{ "training.learning_rate" = [1e9] }')
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--launcher", "local"]) == 1
    err = capsys.readouterr().err
    record = json.loads((out / "launcher.json").read_text())["jobs"]["0"]
    assert f"did not finish its points; its log: {record['stderr']}" in err
    assert "training diverged at step" in Path(record["stderr"]).read_text()
    assert "1 of 1 points did not finish" in err.strip().splitlines()[-1]
    row = json.loads((out / "sweep.json").read_text())["rows"][0]
    assert row["status"].startswith("failed: job") and record["stderr"] in row["status"]


def test_shards_run_their_share_and_the_last_one_writes_the_table(tmp_path, capsys):
    path = sweep_file(tmp_path, '{ "process.params.x" = [0.05, 0.15] }')
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--shard", "1/2", "--no-progress"]) == 0
    assert is_complete(out / "tl-x=0.15") and not (out / "tl-x=0.05").exists()
    assert not (out / "sweep.csv").exists() and "the table is written when every point is" in capsys.readouterr().out
    assert main(["sweep", str(path), "--out", str(out), "--collect", "--no-progress"]) == 1  # one point unfinished
    assert "tl-x=0.05 unfinished" in capsys.readouterr().err
    assert [r["status"] for r in json.loads((out / "sweep.json").read_text())["rows"]] == ["unfinished", "finished"]
    assert main(["sweep", str(path), "--out", str(out), "--shard", "0/2", "--no-progress"]) == 0
    assert [r["status"] for r in json.loads((out / "sweep.json").read_text())["rows"]] == ["finished", "finished"]


def test_launcher_flags_are_checked(tmp_path, capsys):
    path = sweep_file(tmp_path)
    assert main(["sweep", str(path), "--shard", "0/2", "--collect"]) == 2
    assert "cannot be combined" in capsys.readouterr().err


def test_slurm_where_there_is_none_and_an_unknown_slurm_option_are_one_line(tmp_path, capsys):
    import shutil

    if shutil.which("srun"):
        pytest.skip("this machine has SLURM: the test would submit")
    path = sweep_file(tmp_path, "{ seed = [0] }")
    assert main(["sweep", str(path), "--out", str(tmp_path / "a"), "--launcher", "slurm", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("compmech: error: --launcher slurm: ") and "use --launcher local" in err and "\n" not in err
    path.write_text(path.read_text().replace("timeout_min = 30", 'timeout_min = 30\nslurm = { exlude = "n1" }'))
    assert main(["sweep", str(path), "--out", str(tmp_path / "b"), "--launcher", "slurm", "--no-progress"]) == 2
    assert "submitit has no SLURM parameter 'exlude'" in capsys.readouterr().err


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """sbatch, srun, sacct and scancel on PATH, played by tests/compmech/runs/fake_slurm.py on this machine."""
    bin_dir = tmp_path / "slurm_bin"
    bin_dir.mkdir()
    for name in ("sbatch", "srun", "sacct", "scancel"):
        (bin_dir / name).write_text(
            f'#!/bin/sh\nexec {sys.executable} {Path(__file__).parent / "fake_slurm.py"} {name} "$@"\n'
        )
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM_DIR", str(tmp_path / "slurm_state"))
    return tmp_path / "slurm_state"


def test_slurm_jobs_are_one_array_with_the_launcher_table_s_options_and_a_rerun_waits_for_them(
    tmp_path, capsys, monkeypatch, fake_slurm
):
    import submitit

    from compmech.runs import launcher

    submitit.SlurmJob.watcher.clear()
    monkeypatch.setitem(launcher.POLL_S, "slurm", 0.5)
    path = sweep_file(tmp_path, '{ "process.params.x" = [0.05, 0.15] }')
    path.write_text(
        path.read_text().replace(
            "timeout_min = 30",
            'timeout_min = 30\npartition = "debug"\nmax_parallel = 1\nsetup = ["export COMPMECH_TEST_SETUP=1"]',
        )
    )
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out), "--launcher", "slurm", "--no-wait"]) == 0
    script = (fake_slurm / "last_script.sh").read_text()
    assert "#SBATCH --partition=debug" in script and "#SBATCH --array=0-1%1" in script
    assert "#SBATCH --time=30" in script and "export COMPMECH_TEST_SETUP=1" in script
    capsys.readouterr()
    # run again while the array is queued or running: nothing is submitted twice; the launcher waits for it
    assert main(["sweep", str(path), "--out", str(out), "--launcher", "slurm"]) == 0
    err = capsys.readouterr().err
    assert "submitted job" not in err and "not submitted again" in err
    assert all(r["status"] == "finished" for r in numbers(out).values())
    assert json.loads((out / "launcher.json").read_text())["jobs"]["1"]["job_id"].endswith("_1")
