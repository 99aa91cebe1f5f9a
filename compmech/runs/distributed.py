"""Several processes, one per host, training one run together: `jax.distributed` set up from the environment.

`compmech run`, `sweep` and `reproduce` call `initialize_from_environment` before anything else touches JAX:

- ``JAX_COORDINATOR_ADDRESS`` (host:port of process 0), ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` set: join
  that run (any launcher; JAX itself reads the first, this module the other two);
- else, under SLURM with more than one task (``SLURM_NTASKS`` > 1): JAX's own SLURM detection (the coordinator is
  the first node of the job, every task one process);
- else: one process, nothing to do.

Every process then runs the same command on the same config; the device mesh spans every process's devices
(`predictive_models.parallel`). Process 0 alone writes the run directory (which must be on a file system every
host sees, for a resume) and shows progress; the others train with it and exit when training ends.
"""

from __future__ import annotations

import os

from compmech.runs.errors import ConfigError

ENV_ADDRESS, ENV_PROCESSES, ENV_ID = "JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"


def _int_env(name: str, low: int) -> int:
    text = os.environ[name]
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low:
        raise ConfigError(f"environment variable {name}={text!r} must be an integer >= {low}; fix it or unset "
                          f"{ENV_ADDRESS}, {ENV_PROCESSES} and {ENV_ID} to run as one process")
    return value


def initialize_from_environment() -> bool:
    """Join a multi-process JAX run if the environment describes one (see the module docstring); True if joined."""
    given = [name for name in (ENV_ADDRESS, ENV_PROCESSES, ENV_ID) if os.environ.get(name)]
    slurm_tasks = os.environ.get("SLURM_NTASKS", "1")
    if not given and not (os.environ.get("SLURM_JOB_ID") and slurm_tasks.isdigit() and int(slurm_tasks) > 1):
        return False
    import jax

    if given:
        if len(given) != 3:
            missing = sorted({ENV_ADDRESS, ENV_PROCESSES, ENV_ID} - set(given))
            raise ConfigError(f"a multi-process run needs {ENV_ADDRESS}, {ENV_PROCESSES} and {ENV_ID}; "
                              f"{', '.join(missing)} not set")
        n = _int_env(ENV_PROCESSES, 1)
        pid = _int_env(ENV_ID, 0)
        if pid >= n:
            raise ConfigError(f"{ENV_ID}={pid} must be below {ENV_PROCESSES}={n} (processes count from 0)")
        jax.distributed.initialize(os.environ[ENV_ADDRESS], num_processes=n, process_id=pid)
    else:
        jax.distributed.initialize()  # JAX's SLURM detection: coordinator, process count and id from SLURM_*
    return True


def is_lead_process() -> bool:
    """True in process 0 (or when running as one process): the one that writes files and shows progress."""
    import jax

    return jax.process_index() == 0
