"""A sweep's seed groups as cluster jobs, through submitit (the optional extra ``compmech[cluster]``).

`compmech sweep FILE --launcher slurm` submits one job per seed group that has an unfinished point (points that
differ only in seed train together in one job); ``--launcher local`` runs the same jobs as local processes
(submitit's local executor), which the tests use. Every job runs one command line,

    python -m compmech.runs.cli sweep FILE [--quick] --out OUT --shard I/N --no-progress

(group I of the sweep's N seed groups, `compmech.runs.sweep.run_sweep` with ``shard``), so a job is nothing but
`compmech sweep` on a share of the points: it resumes what an earlier job left, and writes ordinary run directories.
The job payload is that command line (`submitit.helpers.CommandFunction`); submitit keeps its own bookkeeping in
``OUT/launcher/`` (including the pickle of that command, which is submitit's format, not compmech's: compmech's own
files are TOML, JSON and msgpack, never pickle), and each job's log is ``OUT/launcher/<job id>/<job id>_0_log.err``
(and ``.out``). ``OUT/launcher.json`` records which job runs which group.

The launcher waits for its jobs (``--no-wait``: it submits and returns), lists the ones that did not finish their
points with their log files, and writes the table. Run again, it submits only the groups that still have unfinished
points, skipping those whose jobs are still queued or running (SLURM) or whose run directories another process
holds.

SLURM options come from the sweep file's ``[launcher]`` table (`LauncherSettings`), checked like any config table.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from compmech.runs.errors import ConfigError
from compmech.runs.files import write_json_atomic

#: The launchers ``--launcher`` accepts.
LAUNCHERS = ("slurm", "local")
#: Which job runs which seed group, beside the sweep's table.
LAUNCHER_JSON = "launcher.json"
#: SLURM states of a job that is still to run or running: a rerun does not submit its group again.
ACTIVE_STATES = (
    "PENDING",
    "RUNNING",
    "REQUEUED",
    "CONFIGURING",
    "COMPLETING",
    "RESIZING",
    "SUSPENDED",
    "REQUEUE_HOLD",
    "REQUEUE_FED",
)
#: Seconds between looks at the jobs while waiting (SLURM's are cached by submitit, which asks sacct sparingly).
POLL_S = {"local": 0.5, "slurm": 15.0}


class LauncherError(ValueError):
    """The jobs cannot be submitted here: no SLURM on this machine, or the scheduler refused them."""


@dataclass(frozen=True)
class LauncherSettings:
    """A sweep file's ``[launcher]`` table: how its jobs are submitted (``--launcher slurm`` or ``local``).

    ``timeout_min``: each job's wall-time limit in minutes (SLURM's ``--time``; the local executor kills a job
    after it too). ``cpus_per_task``, ``gpus_per_node``, ``mem_gb``: each job's resources (one task per job).
    ``partition``, ``account``, ``qos``, ``constraint``: the SLURM options of those names. ``setup``: shell lines
    run before each job's command (e.g. ``["module load cuda", "source ~/venv/bin/activate"]``). ``max_parallel``:
    jobs running at once (SLURM: the job array's parallelism, default unlimited; local: default 1, since each job
    uses every core). ``slurm``: any other submitit SLURM parameter, by its name without the ``slurm_`` prefix
    (e.g. ``{ exclude = "node12", additional_parameters = { reservation = "r1" } }``), checked when submitting.
    """

    timeout_min: int = 1440
    cpus_per_task: int | None = None
    gpus_per_node: int | None = None
    mem_gb: float | None = None
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    setup: tuple[str, ...] = ()
    max_parallel: int | None = None
    slurm: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("timeout_min", "cpus_per_task", "gpus_per_node", "max_parallel"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        if self.gpus_per_node is not None and self.gpus_per_node < 0:
            raise ValueError(f"gpus_per_node must be >= 0; got {self.gpus_per_node!r}")
        if self.mem_gb is not None and not self.mem_gb > 0:
            raise ValueError(f"mem_gb must be a number > 0; got {self.mem_gb!r}")
        if not all(isinstance(line, str) for line in self.setup):
            raise ValueError('setup must be a list of shell lines (strings), e.g. setup = ["module load cuda"]')
        if not isinstance(self.slurm, dict):
            raise ValueError('slurm must be a table of submitit SLURM parameters, e.g. slurm = { exclude = "n1" }')

    def executor_parameters(self, cluster: str, name: str) -> dict[str, Any]:
        """The submitit `AutoExecutor.update_parameters` keywords for ``cluster``."""
        params: dict[str, Any] = {"name": name, "timeout_min": self.timeout_min, "tasks_per_node": 1, "nodes": 1}
        for key in ("cpus_per_task", "gpus_per_node", "mem_gb"):
            if getattr(self, key) is not None:
                params[key] = getattr(self, key)
        if cluster == "slurm":
            for key in ("partition", "account", "qos", "constraint"):
                if getattr(self, key) is not None:
                    params[f"slurm_{key}"] = getattr(self, key)
            if self.setup:
                params["slurm_setup"] = list(self.setup)
            if self.max_parallel is not None:
                params["slurm_array_parallelism"] = self.max_parallel
            params.update({f"slurm_{k}": v for k, v in self.slurm.items()})
        elif self.setup:
            params["local_setup"] = list(self.setup)
        return params


@dataclass(frozen=True)
class JobSpec:
    """One job: the seed group it runs (its index among the sweep's groups, its points) and its command line."""

    group: int
    points: tuple[str, ...]
    command: tuple[str, ...]


@dataclass
class JobRecord:
    """A submitted job: its spec, its submitit job (None when only read back from launcher.json) and log files."""

    spec: JobSpec
    job_id: str
    stdout: str
    stderr: str
    job: Any = None

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "points": list(self.spec.points),
            "command": list(self.spec.command),
            "stdout": self.stdout,
            "stderr": self.stderr,
        }


def add_launcher_arguments(p: Any) -> None:
    """``--launcher slurm|local`` and ``--no-wait`` on the sweep command."""
    p.add_argument(
        "--launcher",
        choices=LAUNCHERS,
        default=None,
        help="run each seed group as a job: slurm (through submitit; options from the file's [launcher] "
        "table), or local processes; rerun to resubmit only unfinished points",
    )
    p.add_argument(
        "--no-wait",
        action="store_true",
        help="with --launcher: submit the jobs and return (collect later with --collect)",
    )


def import_submitit() -> Any:
    """submitit, or `ConfigError` saying how to install it (it is the optional extra ``compmech[cluster]``)."""
    try:
        import submitit  # an optional dependency: loaded only when a launcher is asked for
    except ImportError:
        raise ConfigError(
            "--launcher needs submitit: pip install 'compmech[cluster]' (or pip install 'submitit>=1.5')"
        ) from None
    return submitit


def read_records(out: Path) -> dict[str, Any]:
    """launcher.json's jobs by group index (as text), or {} when there is none (or it cannot be read)."""
    try:
        data = json.loads((out / LAUNCHER_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    jobs = data.get("jobs") if isinstance(data, dict) else None
    return jobs if isinstance(jobs, dict) else {}


def active_slurm_job(submitit: Any, out: Path, record: Any) -> Any:
    """The submitit job of an earlier SLURM submission (a launcher.json record) if it is still queued or running."""
    if not isinstance(record, dict) or record.get("cluster") != "slurm" or not record.get("job_id"):
        return None
    try:
        job = submitit.SlurmJob(folder=out / "launcher" / "%j", job_id=str(record["job_id"]))
        return job if job.state in ACTIVE_STATES else None
    except Exception:  # noqa: BLE001 -- no sacct, an unknown job: treat it as gone
        return None


def submit_jobs(
    specs: list[JobSpec],
    out: Path,
    cluster: str,
    settings: LauncherSettings,
    *,
    name: str,
    attached: list[JobRecord],
    wait: bool,
    say: Callable[[str], None],
    finished: Callable[[JobSpec], bool],
) -> list[JobRecord]:
    """Submit ``specs`` (at most ``max_parallel`` running at once), record them in launcher.json, and (``wait``) wait
    for them and the ``attached`` jobs of an earlier launcher; return every record. ``finished(spec)``: whether a
    job's points are all finished (a job's outcome is read from its run directories, not from submitit's files)."""
    submitit = import_submitit()
    params = settings.executor_parameters(cluster, name)
    if cluster == "slurm":  # checked before submitit looks for SLURM, so that a typo is said anywhere
        valid = set(submitit.SlurmExecutor._valid_parameters()) | set(submitit.AutoExecutor._valid_parameters())
        unknown = sorted(
            k[len("slurm_") :] for k in params if k.startswith("slurm_") and k[len("slurm_") :] not in valid
        )
        if unknown:
            raise ConfigError(
                f"[launcher] slurm = {{ {unknown[0]} = ... }}: submitit has no SLURM parameter "
                f"{unknown[0]!r}; its parameters are {', '.join(sorted(valid))}"
            )
    try:
        executor = submitit.AutoExecutor(folder=out / "launcher" / "%j", cluster=cluster)
        executor.update_parameters(**params)
    except (NameError, ValueError, TypeError, AssertionError) as exc:
        raise ConfigError(
            f"[launcher]: submitit refuses these {cluster} parameters: {' '.join(str(exc).split())}"
        ) from None
    except (RuntimeError, OSError) as exc:  # no SLURM here (no srun, sbatch), or its folder cannot be made
        raise LauncherError(
            f"--launcher {cluster}: {' '.join(str(exc).split())}"
            + ("; run it on a SLURM login node, or use --launcher local" if cluster == "slurm" else "")
        ) from None
    records = {str(r.spec.group): r for r in attached}
    stored = read_records(out)

    def submit(fn: Any) -> Any:
        try:
            return executor.submit(fn)
        except Exception as exc:  # noqa: BLE001 -- sbatch refused (a partition, an account): its own words, one line
            raise LauncherError(
                f"--launcher {cluster}: the submission failed: {' '.join(str(exc).split())[:500]}; "
                f"the jobs submitted so far are in {out / LAUNCHER_JSON}"
            ) from None

    def record(spec: JobSpec, job: Any) -> JobRecord:
        rec = JobRecord(spec, str(job.job_id), str(job.paths.stdout), str(job.paths.stderr), job)
        records[str(spec.group)] = rec
        stored[str(spec.group)] = {**rec.to_json(), "cluster": cluster}
        write_json_atomic(out / LAUNCHER_JSON, {"cluster": cluster, "jobs": stored})
        say(f"submitted job {rec.job_id}: seed group {spec.group} ({', '.join(spec.points)}); log {rec.stderr}")
        return rec

    cwd = os.getcwd()
    functions = [submitit.helpers.CommandFunction(list(spec.command), verbose=True, cwd=cwd) for spec in specs]
    limit = settings.max_parallel or (1 if cluster == "local" else len(specs)) or 1
    if cluster == "slurm" and functions:  # one job array; SLURM itself runs at most max_parallel at once
        try:
            with executor.batch():
                jobs = [executor.submit(fn) for fn in functions]
        except Exception as exc:  # noqa: BLE001 -- sbatch refused the array: its own words, one line
            raise LauncherError(
                f"--launcher slurm: the submission failed: {' '.join(str(exc).split())[:500]}"
            ) from None
        for spec, job in zip(specs, jobs):
            record(spec, job)
        queue: list[tuple[JobSpec, Any]] = []
    elif cluster == "slurm":
        queue = []
    else:
        queue = list(zip(specs, functions))
        while queue and len(queue) > len(specs) - limit:
            spec, fn = queue.pop(0)
            record(spec, submit(fn))
    if not wait:
        if queue:  # a local launcher that does not wait cannot start the rest later: start them all now
            for spec, fn in queue:
                record(spec, submit(fn))
        return list(records.values())
    poll = POLL_S[cluster]
    last = ""
    while True:
        running = [r for r in records.values() if r.job is not None and not r.job.done()]
        while queue and len(running) < limit:
            spec, fn = queue.pop(0)
            running.append(record(spec, submit(fn)))
        status = f"jobs: {len(records) - len(running)} done, {len(running)} running, {len(queue)} waiting"
        if status != last:
            say(status)
            last = status
        if not running and not queue:
            break
        time.sleep(poll)
    failed = [r for r in records.values() if not finished(r.spec)]
    for r in failed:
        say(
            f"job {r.job_id} (seed group {r.spec.group}: {', '.join(r.spec.points)}) did not finish its points; "
            f"its log: {r.stderr} (and {r.stdout})"
        )
    return list(records.values())


def job_command(sweep_file: Path, out: Path, group: int, n_groups: int, quick: bool) -> tuple[str, ...]:
    """The command line a job runs: `compmech sweep` on one seed group (a shard of the sweep)."""
    return (
        sys.executable,
        "-m",
        "compmech.runs.cli",
        "sweep",
        str(sweep_file.resolve()),
        *(("--quick",) if quick else ()),
        "--out",
        str(out.resolve()),
        "--shard",
        f"{group}/{n_groups}",
        "--no-progress",
    )


def settings_fields() -> tuple[str, ...]:
    """The keys a ``[launcher]`` table may hold."""
    return tuple(f.name for f in dataclasses.fields(LauncherSettings))
