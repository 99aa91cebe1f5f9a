"""The architecture-independence study: the same processes learned by a transformer, an LSTM, a GRU and a
vanilla RNN of similar parameter counts, each probed for the belief geometry.

Riechers, Elliott & Shai (2025) report that transformers, RNNs, LSTMs and GRUs all represent the belief
states of classical, quantum and post-quantum processes linearly. A study file
(``compmech/experiments/architectures.toml``, read by `compmech.studies.architectures.study_file`) names the processes,
the models and the training budgets; each (process, kind) pair becomes an ordinary `ExperimentConfig` and an ordinary
run directory ``<out>/<process>-<kind>/``, run by the `compmech.studies.Runner` it is handed (a finished run of the
same config is reused, an interrupted one resumed). `run_study` runs them in phases (check every run, run each
pair and score its probes, the table, the figure) and writes into ``<out>``:

- ``architectures.json``: a list of rows, two per run (`compmech.studies.architectures.table.ArchitectureRow`): the
  single layer picked on the validation half of the held-out contexts and "concat" (every probed layer side by
  side), each reported on the test half;
- ``architectures.md``: the same as a Markdown table, and per process which architectures found the
  geometry (test-half MSE at most `table.FOUND_FRACTION` of the shuffled control held out on the same contexts);
- ``scores/<process>-<kind>.json``: each run's probes refitted with those held-out scores
  (`compmech.runs.heldout_scores`), so a second call reads them back;
- ``architectures.png``: the grid figure (`compmech.studies.architectures.figure`), rows = processes, columns = the
  exact beliefs and each architecture's probed beliefs of the run's figure layer;
- ``geometry/<process>-<kind>.npz``: the figure's arrays of each run (true and probed beliefs of the
  distinct contexts), so a second call redraws without refitting.
- ``architectures_similarity.json`` / ``.png`` and a section of ``architectures.md``: linear CKA and the Procrustes
  distance between the architectures' picked layers per process, beside the untrained pairs, the true beliefs,
  each model's initialisation and the permutation null (`compmech.studies.architectures.similarity`; each process's
  rows kept in ``similarity/<process>.json``).
"""

from __future__ import annotations

import time
from pathlib import Path

from compmech.runs.files import write_json_atomic, write_text_atomic
from compmech.runs.heldout_scores import cached_scores
from compmech.runs.progress import phase
from compmech.runs.report import read_run_json
from compmech.studies.architectures.figure import write_figure
from compmech.studies.architectures.similarity import write_similarity
from compmech.studies.architectures.study_file import ArchitectureStudy, FinishedRun, StudyRun
from compmech.studies.architectures.table import ArchitectureRow, architecture_rows, format_markdown, percent
from compmech.studies.base import Runner


def check_runs(study: ArchitectureStudy, out: Path, runner: Runner) -> None:
    """Every run checked before the first trains (`Runner.check`: the process builds, the model fits, the directory
    can be written), so a bad last pair fails first."""
    for run in study.runs:
        runner.check(run.config, out / run.name)


def finish_run(run: StudyRun, out: Path, runner: Runner, head: str) -> FinishedRun:
    """The run of one pair: the finished one in ``<out>/<name>`` reused, else run now; with its probe.json, the
    config its directory records and its probes scored for the table (`cached_scores`: refitted once, then
    read from ``<out>/scores/<name>.json``). ``head`` starts its progress lines."""
    run_dir = out / run.name
    summary = runner.finished(run.config, run_dir)
    if summary is not None:
        runner.say(f"{head}: {run_dir} is finished already: its results are reused")
    else:
        runner.say(
            f"{head}: start ({run.config.training['steps']} steps, batch "
            f"{run.config.training.get('batch_size')}) -> {run_dir}"
        )
        t = time.time()
        summary = runner.run(run.config, run_dir)
        runner.say(f"{head}: done in {time.time() - t:.0f} s")
    config = runner.load(run_dir / "config.toml")
    scores = cached_scores(run_dir, out / "scores" / f"{run.name}.json", config)
    return FinishedRun(
        run=run,
        run_dir=run_dir,
        summary=summary,
        probe=read_run_json(run_dir / "probe.json"),
        config=config,
        scores=scores,
    )


def run_study(study: ArchitectureStudy, out: str | Path, runner: Runner) -> list[ArchitectureRow]:
    """Run every pair (reusing finished runs, resuming interrupted ones), then write the json, md and png."""
    out = Path(out)
    start = time.time()
    check_runs(study, out, runner)
    rows: list[ArchitectureRow] = []
    finished: dict[str, FinishedRun] = {}
    for i, run in enumerate(study.runs, 1):
        head = f"[{i}/{len(study.runs)}] {run.process} x {run.kind}"
        done = finish_run(run, out, runner, head)
        finished[run.name] = done
        new = architecture_rows(run, done.summary, done.probe, done.scores, done.run_dir)
        rows += new
        best = new[0]
        runner.say(
            f"{head}: {done.summary.model.n_params:,} params, relative loss {done.summary.relative_loss:.4f}, "
            f"layer {best.layer} (picked on validation): test {percent(best.test_over_shuffled)} of shuffled"
        )
    write_json_atomic(out / "architectures.json", [r.to_json() for r in rows])
    # the figure's arrays: each run's figure-layer probe refitted once (then cached in <out>/geometry)
    with phase("grid figure", total=len(finished), enabled=runner.progress, unit="run") as tick:
        write_figure(study, finished, out, on_run=tick)
    # do the architectures share one geometry? CKA and Procrustes between their picked layers, beside controls
    with phase("similarity", total=len(finished), enabled=runner.progress, unit="run") as tick:
        _, similarity_md = write_similarity(study, finished, out, on_run=tick)
    write_text_atomic(
        out / "architectures.md",
        format_markdown(rows, study, time.time() - start)
        + "\n![belief geometry by architecture](architectures.png)\n\n"
        + similarity_md,
    )
    return rows
