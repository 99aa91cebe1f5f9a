"""A stand-in for SLURM's sbatch, srun, sacct and scancel on one machine, for the launcher's tests
(tests/compmech/runs/test_launcher.py): enough of each for submitit's SLURM executor.

``python fake_slurm.py sbatch SCRIPT`` runs the batch script (each task of a ``--array=A-B%P`` one after another) in a
background process of its own session, with the SLURM_* variables a job sees, and prints "Submitted batch job N";
``srun --output O --error E CMD...`` runs CMD with its output in O and E (%j %A %a %t filled in); ``sacct ... -j N``
prints each task's state (PENDING, RUNNING, COMPLETED, FAILED). State lives in $FAKE_SLURM_DIR.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

STATE = Path(os.environ.get("FAKE_SLURM_DIR", "/tmp/fake_slurm"))


def _next_id() -> int:
    STATE.mkdir(parents=True, exist_ok=True)
    counter = STATE / "counter"
    n = int(counter.read_text()) + 1 if counter.exists() else 1000
    counter.write_text(str(n))
    return n


def _set(task: str, state: str) -> None:
    (STATE / f"{task}.state").write_text(state)


def sbatch(args: list[str]) -> int:
    script = Path(args[-1])
    text = script.read_text()
    options = dict(re.findall(r"^#SBATCH --([\w-]+)(?:=(.*))?$", text, re.M))
    (STATE / "last_script.sh").parent.mkdir(parents=True, exist_ok=True)
    (STATE / "last_script.sh").write_text(text)
    jid = _next_id()
    array = options.get("array")
    if array:
        first, last = (int(x) for x in array.split("%")[0].split("-"))
        tasks = [(f"{jid}_{i}", i) for i in range(first, last + 1)]
    else:
        tasks = [(str(jid), None)]
    for task, _ in tasks:
        _set(task, "PENDING")
    subprocess.Popen(
        [sys.executable, __file__, "_run", str(jid), str(script), json.dumps([i for _, i in tasks])],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    print(f"Submitted batch job {jid}")
    return 0


def _run(jid: str, script: str, indices: str) -> int:
    for i in json.loads(indices):
        task = jid if i is None else f"{jid}_{i}"
        env = {
            **os.environ,
            "SLURM_JOB_ID": str(int(jid) * 100 + (i or 0)),
            "SLURM_NTASKS": "1",
            "SLURM_PROCID": "0",
            "SLURM_LOCALID": "0",
            "SLURM_NODEID": "0",
            "SLURM_JOB_NUM_NODES": "1",
            "SLURM_JOB_NODELIST": "localhost",
        }
        if i is not None:
            env.update(SLURM_ARRAY_JOB_ID=jid, SLURM_ARRAY_TASK_ID=str(i))
        _set(task, "RUNNING")
        code = subprocess.run(["bash", script], env=env).returncode
        _set(task, "COMPLETED" if code == 0 else "FAILED")
    return 0


def srun(args: list[str]) -> int:
    out = err = None
    while args and args[0].startswith("--"):
        flag = args.pop(0)
        if flag in ("--output", "--error"):
            path = args.pop(0)
            for key, var in (("%A", "SLURM_ARRAY_JOB_ID"), ("%a", "SLURM_ARRAY_TASK_ID"), ("%j", "SLURM_JOB_ID")):
                path = path.replace(key, os.environ.get(var, ""))
            path = path.replace("%t", "0")
            if flag == "--output":
                out = path
            else:
                err = path
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with open(out, "a") as o, open(err or out, "a") as e:
        return subprocess.run(args, stdout=o, stderr=e).returncode


def sacct(args: list[str]) -> int:
    ids = [args[i + 1] for i, a in enumerate(args) if a == "-j"]
    print("JobID|State|NodeList")
    for path in sorted(STATE.glob("*.state")):
        task = path.name[: -len(".state")]
        if task.split("_")[0] in ids:
            print(f"{task}|{path.read_text()}|localhost")
    return 0


if __name__ == "__main__":
    command, rest = sys.argv[1], sys.argv[2:]
    if command == "_run":
        sys.exit(_run(*rest))
    sys.exit({"sbatch": sbatch, "srun": srun, "sacct": sacct, "scancel": lambda a: 0}[command](rest))
