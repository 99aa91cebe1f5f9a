"""Hostile input (issue 29): each case here used to lose data, give a wrong result without a word, train fully and
then die with an internal message, hang, or end in a traceback. Now each is refused in one line before any work,
or works. The sweep cases are in test_sweep.py, the property-based ones in test_hostile_property.py; rerun the set:

    PYTHONPATH=$PWD python -m pytest tests/compmech/runs/test_hostile_inputs.py tests/compmech/runs/test_sweep.py \
        tests/compmech/runs/test_hostile_property.py
"""

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from compmech.runs.cli import main
from compmech.runs.config import load_config
from compmech.runs.experiment import finished_summary, plan_run, prepare_run_dir

ROOT = Path(__file__).parents[3]
TINY = ROOT / "tests" / "data" / "tiny_mess3.toml"
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}

SMALL = """
seed = 1
[process]
{process}
[model]
context_length = {L}
n_layers = 1
d_model = 8
n_heads = 1
d_head = 4
d_mlp = 16
[training]
steps = 40
batch_size = 16
warmup_steps = 5
steps_per_call = 20
eval_every = 20
checkpoint_every = 20
{training}
[probe]
n_repeats = 1
train_fraction = 0.5
{extra}
"""


def small(process: str, *, L: int = 4, training: str = "", extra: str = "") -> str:
    return SMALL.format(process=process, L=L, training=training, extra=extra)


def refused(argv: list[str], capsys, *, code: int = 2, within: float = 30) -> str:
    """Run the CLI; it must fail fast with one line on stderr and no traceback; return the line."""
    start = time.perf_counter()
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert time.perf_counter() - start < within, "refused within seconds, not after work"
    assert err.startswith("compmech: error:") and "\n" not in err and "Traceback" not in err, err
    return err


def spec_text(name: str, tokens: list[str], states: list[str], T: np.ndarray, kind: str = "hmm") -> str:
    """A spec file for T [V, S, S]."""
    lines = [
        f'name = "{name}"',
        f'kind = "{kind}"',
        "tokens = [" + ", ".join(f'"{t}"' for t in tokens) + "]",
        "states = [" + ", ".join(f'"{s}"' for s in states) + "]",
        "[transitions]",
    ]
    for x, t in enumerate(tokens):
        lines.append(f'"{t}" = [' + ", ".join("[" + ", ".join(repr(float(v)) for v in row) + "]" for row in T[x]) + "]")
    return "\n".join(lines) + "\n"


def assert_strict_json(path: Path) -> None:
    """The file is JSON (or JSON lines) without NaN or Infinity (which json.loads would otherwise accept)."""

    def refuse(constant: str):
        raise AssertionError(f"{path} holds {constant}")

    text = path.read_text()
    for line in text.splitlines() if path.suffix == ".jsonl" else [text]:
        if line.strip():
            json.loads(line, parse_constant=refuse)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished tiny run (100 steps)."""
    root = tmp_path_factory.mktemp("finished")
    cfg = root / "exp.toml"
    cfg.write_text(TINY.read_text().replace("steps = 300", "steps = 100").replace("save_at_tokens = [9600, 28800]", ""))
    out = root / "run"
    assert main(["run", str(cfg), "--out", str(out), "--no-progress"]) == 0
    return cfg, out


# ---- one writer per directory --------------------------------------------------------------------------------

HOLD = (
    "import fcntl, json, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); "
    "fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, json.dumps({'pid': os.getpid(), 'command': 'holder'}).encode());"
    " print('held', flush=True); time.sleep(600)"
)


class Holder:
    """Another process holding a directory's lock (as a running compmech would), until it is killed."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(directory / ".compmech.lock")], stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout.readline().strip() == "held"

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


def test_a_run_directory_another_process_writes_is_refused_at_once_and_freed_when_it_dies(tmp_path, capsys):
    out = tmp_path / "run"
    holder = Holder(out)
    try:
        err = refused(["run", str(TINY), "--out", str(out)], capsys)
        assert f"run directory {out} is in use by another compmech process (pid {holder.proc.pid}: holder)" in err
        assert sorted(p.name for p in out.iterdir()) == [".compmech.lock"], "nothing written beside the lock"
    finally:
        holder.kill()
    from compmech.runs.files import directory_lock

    with directory_lock(out):  # the kernel released the dead holder's lock: nothing stale to clear by hand
        pass


def test_a_sweep_directory_and_a_report_another_process_holds_are_refused(tmp_path, capsys, finished):
    sweep = tmp_path / "s.toml"
    sweep.write_text(TINY.read_text() + "\n[sweep]\ngrid = { seed = [0, 1] }\n")
    holder = Holder(tmp_path / "sweep_out")
    try:
        err = refused(["sweep", str(sweep), "--out", str(tmp_path / "sweep_out")], capsys)
        assert f"sweep directory {tmp_path / 'sweep_out'} is in use by another compmech process" in err
    finally:
        holder.kill()
    _, run = finished
    holder = Holder(run)
    try:
        err = refused(["report", str(run)], capsys)
        assert f"run directory {run} is in use" in err
    finally:
        holder.kill()


def _start(argv: list[str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "compmech.runs.cli", *argv, "--no-progress"],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_lock(directory: Path, pid: int, timeout: float = 300) -> None:
    """Until ``pid`` holds ``directory``'s lock (its note names it)."""
    path = directory / ".compmech.lock"
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            if json.loads(path.read_text()).get("pid") == pid:
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{pid} never took the lock of {directory}")


@pytest.mark.parametrize("command", ["run", "sweep"])
def test_two_processes_writing_one_directory_leave_one_writer_and_an_intact_run(tmp_path, command):
    """Both used to exit 0, and metrics.jsonl held interleaved, duplicated records (steps 0, 500, 1000, 500, ...)."""
    cfg = tmp_path / "exp.toml"
    cfg.write_text(
        TINY.read_text().replace("steps = 300", "steps = 600")
        + ("\n[sweep]\ngrid = { seed = [5] }\n" if command == "sweep" else "")
    )
    out = tmp_path / "out"
    first = _start([command, str(cfg), "--out", str(out)])
    _wait_for_lock(out, first.pid)
    second = subprocess.run(
        [sys.executable, "-m", "compmech.runs.cli", command, str(cfg), "--out", str(out), "--no-progress"],
        env=ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert second.returncode == 2, second.stderr
    line = second.stderr.strip().splitlines()[-1]
    assert line.startswith("compmech: error:") and f"is in use by another compmech process (pid {first.pid}" in line
    _, err = first.communicate(timeout=900)
    assert first.returncode == 0, err
    run = out if command == "run" else out / "tiny_mess3-seed=5"
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 100, 200, 300, 400, 500, 600]
    assert (run / "complete.json").is_file()


# ---- silent wrong results ------------------------------------------------------------------------------------


def late_negative_spec(N: int = 11) -> str:
    """A generalized HMM whose first word of negative probability is 0^11 (the constructor checks 8 tokens): a
    counter that, N - 1 zeros in a row later, emits 0 with weight -0.1."""
    T = np.zeros((2, N, N))
    for i in range(N):
        T[0, i, (i + 1) % N] = 0.5
        T[1, i, 0] = 0.5
    T[0, N - 1, 0], T[1, N - 1, 0] = -0.1, 1.1
    return spec_text("late_negative", ["0", "1"], [f"s{i}" for i in range(N)], T, kind="ghmm")


def test_a_generalized_hmm_invalid_beyond_the_constructor_s_check_is_refused_at_the_depth_the_command_uses(
    tmp_path, capsys
):
    """It was accepted (checked to 8 tokens); info printed its measures, and a run at context 12 failed mid-way."""
    (tmp_path / "late.toml").write_text(late_negative_spec())
    cfg = tmp_path / "exp.toml"
    cfg.write_text(small('spec = "late.toml"', L=12))
    out = tmp_path / "run"
    err = refused(["run", str(cfg), "--out", str(out)], capsys)
    assert "the word (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0) of 11 tokens gets a negative probability" in err
    assert "this run uses words of up to 13 tokens" in err and not out.exists()
    assert main(["info", str(tmp_path / "late.toml")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "negative probability" in captured.err, "no measures for an invalid process"
    cfg.write_text(small('spec = "late.toml"', L=8))  # its words of up to 9 tokens are all fine
    assert plan_run(load_config(cfg), tmp_path / "ok").checked_depth >= 9


def test_where_no_finite_check_is_complete_the_checked_depth_is_said(tmp_path, capsys):
    cfg = load_config(ROOT / "tests" / "data" / "tiny_tom_quantum.toml", {"model.context_length": 10})
    plan = plan_run(cfg, tmp_path / "run")
    assert plan.words_used == 11 and plan.checked_depth == 9  # tom_quantum's state vectors fill a disc
    assert main(["info", "tom_quantum", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["checked_depth"] == 9
    assert main(["info", "golden_mean", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["checked_depth"] is None  # an HMM: every length


def _module(tmp_path: Path, body: str) -> str:
    """A plugin module with a name of its own (Python caches modules by name), beside the config."""
    name = f"plugin_{abs(hash((str(tmp_path), body))) % 10**8}"
    (tmp_path / f"{name}.py").write_text(body)
    return name


@pytest.mark.parametrize(
    "body, needle",
    [
        ("import sys\nsys.exit(0)\n", "called sys.exit(0) while importing"),
        (
            "import numpy as np, sys\nfrom hmm_processes import HMM, register_process\n"
            "def f(p: float = 0.3):\n    sys.exit(0)\nregister_process('{name}', f, overwrite=True)\n",
            "called sys.exit(0) when built",
        ),
        (
            "from hmm_processes import register_process\ndef f(p: float = 0.3):\n    return [1, 2]\n"
            "register_process('{name}', f, overwrite=True)\n",
            "returned a list; a process factory must return",
        ),
        (
            "from hmm_processes import register_process\ndef f(p: float = 0.3):\n    return None\n"
            "register_process('{name}', f, overwrite=True)\n",
            "returned None; a process factory must return",
        ),
        (
            "from hmm_processes import register_process\ndef f(p: float = 0.3):\n    raise KeyError('boom')\n"
            "register_process('{name}', f, overwrite=True)\n",
            "raised KeyError: 'boom'",
        ),
    ],
)
def test_a_plugin_that_exits_or_returns_no_process_is_one_line_and_never_exit_0(tmp_path, capsys, body, needle):
    """sys.exit(0) on import made compmech exit 0 having done nothing; a factory returning a list or None, or
    raising, gave a traceback."""
    pname = f"p{abs(hash(body)) % 10**6}"
    module = _module(tmp_path, body.replace("{name}", pname))
    cfg = tmp_path / "exp.toml"
    cfg.write_text(small(f'module = "{module}"\nname = "{pname}"'))
    err = refused(["run", str(cfg), "--out", str(tmp_path / "run")], capsys)
    assert needle in err, err
    if "importing" not in needle:
        assert f"its factory {module}.f " in err, "the factory is named"
    assert not (tmp_path / "run").exists()


def test_sys_exit_anywhere_in_a_command_never_exits_0(monkeypatch, capsys):
    import compmech.runs.run_command as run_command

    def quits(args):
        sys.exit(0)

    monkeypatch.setattr(run_command, "_cmd_run", quits)
    assert main(["run", str(TINY)]) == 1
    assert "stopped before it finished" in capsys.readouterr().err


def test_a_finished_run_whose_process_json_was_edited_is_refused_with_what_differs(finished, capsys):
    """It was neither refused nor redone."""
    cfg, run = finished
    original = (run / "process.json").read_text()
    record = json.loads(original)
    record["T"][0][0][1] += 0.001
    (run / "process.json").write_text(json.dumps(record))
    try:
        err = refused(["run", str(cfg), "--out", str(run)], capsys)
        assert "its process.json is not the process this config builds (T[0][0][1]:" in err
        with pytest.raises(ValueError, match="process.json is not the process"):
            finished_summary(load_config(cfg), run)  # what a sweep or reproduce asks first
        assert (run / "complete.json").is_file(), "the finished run is left as it was"
    finally:
        (run / "process.json").write_text(original)
    assert finished_summary(load_config(cfg), run) is not None


def test_a_run_whose_spec_or_plugin_source_changed_is_refused(tmp_path, capsys):
    from hmm_processes import golden_mean

    (tmp_path / "gm.toml").write_text(spec_text("gm", ["0", "1"], ["A", "B"], golden_mean(0.5).T))
    cfg = tmp_path / "spec.toml"
    cfg.write_text(small('spec = "gm.toml"'))
    prepare_run_dir(plan_run(load_config(cfg), tmp_path / "a"))
    (tmp_path / "gm.toml").write_text("# the same matrices, another file\n" + (tmp_path / "gm.toml").read_text())
    err = refused(["run", str(cfg), "--out", str(tmp_path / "a")], capsys)
    assert f"was made from another version of the spec file {tmp_path / 'gm.toml'}" in err

    body = (
        "import numpy as np\nfrom hmm_processes import HMM, register_process\n"
        "def f(p: float = 0.5):\n    return HMM(np.array([[[1 - p, 0.0], [1.0, 0.0]], [[0.0, p], [0.0, 0.0]]]))\n"
        "register_process('changing_plugin', f, overwrite=True)\n"
    )
    module = _module(tmp_path, body)
    cfg = tmp_path / "plugin.toml"
    cfg.write_text(small(f'module = "{module}"\nname = "changing_plugin"'))
    prepare_run_dir(plan_run(load_config(cfg), tmp_path / "b"))
    (tmp_path / f"{module}.py").write_text(body + "# edited\n")
    err = refused(["run", str(cfg), "--out", str(tmp_path / "b")], capsys)
    assert f"was made with another version of the module '{module}'" in err


# ---- checks before the work ----------------------------------------------------------------------------------


def _periodic(n: int) -> str:
    """A deterministic cycle through n states, state i emitting token i."""
    T = np.zeros((n, n, n))
    for i in range(n):
        T[i, i, (i + 1) % n] = 1.0
    return spec_text(f"cycle{n}", [str(i) for i in range(n)], [f"s{i}" for i in range(n)], T)


@pytest.mark.parametrize(
    "spec, process, L, needle",
    [
        (None, 'name = "coin"', 4, "has one hidden state: its belief is always (1)"),
        (spec_text("iid_coin", ["h", "t"], ["s"], np.full((2, 1, 1), 0.5)), None, 4, "has one hidden state"),
        (
            spec_text("wide", [f"t{i}" for i in range(1000)], ["s"], np.full((1000, 1, 1), 1e-3)),
            None,
            4,
            "has one hidden state",
        ),
        (spec_text("one_token", ["a"], ["A", "B"], np.full((1, 2, 2), 0.5)), None, 4, "has one token"),
        (_periodic(2), None, 6, "has at most 2 distinct contexts of 6 token(s)"),
        (None, 'name = "mess3"', 1, "at most 3 distinct contexts of 1 token(s) (context_length = 1)"),
        (_periodic(5), None, 6, "is deterministic at this context length: the optimal loss is 0 at every position"),
    ],
)
def test_degenerate_processes_are_refused_before_training_with_the_reason(tmp_path, capsys, spec, process, L, needle):
    """Each trained fully, then died with an internal message ("matrix must have at least 2 rows", "cannot hold out
    contexts", "groups must contain at least 2 distinct ids") or wrote NaN / Infinity into metrics.jsonl."""
    if spec is not None:
        (tmp_path / "p.toml").write_text(spec)
        process = 'spec = "p.toml"'
    cfg = tmp_path / "exp.toml"
    cfg.write_text(small(process, L=L))
    err = refused(["run", str(cfg), "--out", str(tmp_path / "run")], capsys)
    assert needle in err, err
    assert not (tmp_path / "run").exists()


def test_the_docs_plugin_example_runs_and_a_one_state_coin_is_still_a_process_for_info(tmp_path, capsys):
    """The plugin example (once the README's, now the tutorial's) was a one-state biased coin that compmech run
    refused after training: the example as written runs, and the zoo's one-state coin still works with info."""
    page = (ROOT / "docs" / "tutorial" / "own-process.md").read_text()
    section = page[page.index("## In Python: a registered function") :]
    module = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    table = re.search(r"```toml\n(.*?)```", section, re.S).group(1)
    name = re.search(r'module = "(\w+)"', table).group(1)
    (tmp_path / f"{name}.py").write_text(module)
    body = small("").replace("[process]\n\n", table)
    (tmp_path / "exp.toml").write_text('name = "readme_plugin"\n' + body)
    out = tmp_path / "run"
    assert main(["run", str(tmp_path / "exp.toml"), "--out", str(out), "--no-progress"]) == 0
    for name in ("metrics.jsonl", "summary.json", "probe.json", "analysis.json"):
        assert_strict_json(out / name)
    assert main(["info", "coin"]) == 0 and "entropy rate" in capsys.readouterr().out


def test_a_sampled_run_with_an_exact_probe_and_a_checkpoint_at_0_tokens_finishes_without_nan(tmp_path):
    """1000 tokens x 2 states in the sampled regime ended in "probe_mse must be positive (it is plotted on a log
    axis)"; save_at_tokens = [0] was accepted and then refused after training ("tokens must be positive")."""
    V = 1000
    T = np.zeros((V, 2, 2))
    T[: V // 2, :, 0] = 1.0 / V  # the first half of the tokens sends the chain to state 0, the second to state 1
    T[V // 2 :, :, 1] = 1.0 / V
    (tmp_path / "p.toml").write_text(spec_text("one_hot", [f"t{i}" for i in range(V)], ["A", "B"], T))
    cfg = tmp_path / "exp.toml"
    cfg.write_text(
        small(
            'spec = "p.toml"',
            L=4,
            training="save_at_tokens = [0]",
            extra="[data]\nvalidation_sequences = 200\nprobe_sequences = 400\nchunk_rows = 800\n",
        )
    )
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out), "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["regime"] == "sampled"
    assert summary["evolution"][0]["tokens"] == 0 and (out / "checkpoints" / "tokens_0.msgpack").is_file()
    for name in ("metrics.jsonl", "summary.json", "probe.json", "analysis.json"):
        assert_strict_json(out / name)


def test_a_diverging_run_stops_at_once_with_one_line(tmp_path, capsys):
    """learning_rate = 1e9 wrote NaN losses without a word and failed later with "activations contain NaN"."""
    cfg = tmp_path / "exp.toml"
    cfg.write_text(TINY.read_text().replace("learning_rate = 1e-2", "learning_rate = 1e9"))
    err = refused(["run", str(cfg), "--out", str(tmp_path / "run"), "--no-progress"], capsys, within=300)
    assert re.search(r"training diverged at step \d+: .*lower the learning rate \(now 1e\+09\)", err), err
    assert_strict_json(tmp_path / "run" / "metrics.jsonl")
    assert not (tmp_path / "run" / "summary.json").exists()


def test_divergence_keeps_the_last_good_checkpoint_and_writes_nothing_after_it(tmp_path, monkeypatch):
    import jax
    import jax.numpy as jnp

    import predictive_models
    from compmech.runs.experiment import evaluation_set
    from compmech.runs.sources import SourceData
    from predictive_models import training

    real = training._optimizer_and_chunk
    calls = []

    def poisoned(mc, settings, mesh):  # the third fused call returns NaN parameters (with finite losses)
        tx, chunk = real(mc, settings, mesh)

        def step(params, opt_state, batches):
            calls.append(1)
            params, opt_state, losses = chunk(params, opt_state, batches)
            if len(calls) == 3:
                params = jax.tree.map(lambda x: x * jnp.nan, params)
            return params, opt_state, losses

        return tx, step

    monkeypatch.setattr(training, "_optimizer_and_chunk", poisoned)
    cfg = tmp_path / "exp.toml"
    cfg.write_text(
        small('name = "mess3"', training="")
        .replace("checkpoint_every = 20", "checkpoint_every = 40")
        .replace("steps = 40", "steps = 100")
    )
    plan = plan_run(load_config(cfg), tmp_path / "run")
    prepare_run_dir(plan)
    with pytest.raises(
        predictive_models.TrainingDiverged,
        match=r"training diverged at step 60: .*lower the learning "
        r"rate \(now 0.003\); the last good checkpoint is .*latest.msgpack",
    ):
        predictive_models.train(
            plan.model_cfg,
            plan.train_cfg,
            SourceData(plan.source),
            evaluation_set(plan, progress=False)[0],
            plan.run_dir,
            progress=False,
        )
    ckpt = predictive_models.load_checkpoint(plan.run_dir / "checkpoints" / "latest.msgpack")
    assert ckpt["step"] == 40 and all(np.all(np.isfinite(x)) for x in jax.tree.leaves(ckpt["params"]))
    steps = [json.loads(line)["step"] for line in (plan.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == [0, 20, 40]


# ---- tracebacks, hangs and memory ----------------------------------------------------------------------------


def test_info_on_a_random_markov_config_is_one_line(tmp_path, capsys):
    """It was AttributeError ... num_states."""
    (tmp_path / "rm.toml").write_text('[process]\nkind = "random_markov"\nn_states = 3\n')
    assert "is a family of processes" in refused(["info", str(tmp_path / "rm.toml")], capsys)


def test_a_summary_that_is_json_but_not_an_object_is_one_line(finished, capsys):
    import compmech

    cfg, run = finished
    original = (run / "summary.json").read_text()
    (run / "summary.json").write_text("[1, 2]\n")
    try:
        assert "summary.json" in refused(["report", str(run)], capsys)
        with pytest.raises(compmech.RunDirError, match="summary.json"):
            compmech.load_run(run)
        assert finished_summary(load_config(cfg), run) is None  # a sweep or reproduce redoes the point
    finally:
        (run / "summary.json").write_text(original)


@pytest.mark.parametrize(
    "process, needle",
    [
        (
            'kind = "product"\n' + '[[process.components]]\nname = "mess3"\n' * 6,
            "of 6 components (729 tokens, 729 states",
        ),
        ('kind = "random_markov"\nn_states = 1099511627776', "n_states = 1099511627776"),
    ],
)
def test_huge_processes_are_estimated_before_anything_big_is_built(tmp_path, capsys, monkeypatch, process, needle):
    """A product of six Mess3 built a dense 729^3 tensor, and n_states = 2**40 built k^2 names, past the 8 GB the
    audit's processes had (its build needs ~12 GB: 8 bytes x 729^3 and the temporaries of the outer products)."""
    import compmech.runs.processes as processes

    monkeypatch.setattr(processes, "available_memory", lambda: 8 * 2**30)
    cfg = tmp_path / "exp.toml"
    cfg.write_text(small(process))
    err = refused(["run", str(cfg), "--out", str(tmp_path / "run")], capsys, within=10)
    assert needle in err and "GiB to build, but this machine has" in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "pid, needle",
    [
        ("0", "process 0 of 2: process 1 did not join within 5 s"),
        ("1", "process 1 of 2 could not join within 5 s: nothing listens at"),
    ],
)
def test_a_process_whose_peer_never_comes_stops_and_says_which_did_not_join(tmp_path, pid, needle):
    """It waited forever."""
    env = {
        **ENV,
        "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{_free_port()}",
        "JAX_NUM_PROCESSES": "2",
        "JAX_PROCESS_ID": pid,
        "COMPMECH_DISTRIBUTED_TIMEOUT": "5",
    }
    done = subprocess.run(
        [sys.executable, "-m", "compmech.runs.cli", "run", str(TINY), "--out", str(tmp_path / "r")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert needle in done.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize("address", ["bad address", "host", "host:0", "host:99999", ":123", "::1:80"])
def test_a_malformed_coordinator_address_is_named_before_jax_gets_it(tmp_path, address):
    """One of them crashed jax.distributed with a segfault (exit status 139)."""
    env = {**ENV, "JAX_COORDINATOR_ADDRESS": address, "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "compmech.runs.cli", "run", str(TINY), "--out", str(tmp_path / "r")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "JAX_COORDINATOR_ADDRESS" in done.stderr and "host:port" in done.stderr


# ---- trust boundary ------------------------------------------------------------------------------------------


def test_loading_a_run_directory_imports_its_plugin_module_only_when_the_process_is_asked_for(tmp_path, capsys):
    body = (
        "import numpy as np\nfrom hmm_processes import HMM, register_process\n"
        "def f(p: float = 0.5):\n    return HMM(np.array([[[1 - p, 0.0], [1.0, 0.0]], [[0.0, p], [0.0, 0.0]]]))\n"
        "register_process('lazy_plugin', f, overwrite=True)\n"
    )
    module = _module(tmp_path, body)
    cfg = tmp_path / "exp.toml"
    cfg.write_text(small(f'module = "{module}"\nname = "lazy_plugin"'))
    out = tmp_path / "run"
    assert main(["run", str(cfg), "--out", str(out), "--no-progress"]) == 0
    sys.modules.pop(module, None)
    (tmp_path / f"{module}.py").write_text("raise RuntimeError('this code ran')\n")
    import compmech

    run = compmech.load_run(out)
    assert run.history and run.summary.name and module not in sys.modules
    capsys.readouterr()
    assert main(["report", str(out)]) == 0 and module not in sys.modules
    with pytest.raises(ValueError, match="this code ran"):
        _ = run.process


def test_report_on_a_sweep_directory_says_what_it_is(tmp_path, capsys):
    """It suggested finishing "the run"."""
    (tmp_path / "sw" / "s-x=0.1").mkdir(parents=True)
    (tmp_path / "sw" / "s-x=0.1" / "config.toml").write_text('name = "s-x=0.1"\n')
    (tmp_path / "sw" / "sweep.json").write_text("{}")
    err = refused(["report", str(tmp_path / "sw")], capsys)
    assert "is a sweep directory" in err and "compmech report " + str(tmp_path / "sw" / "s-x=0.1") in err
