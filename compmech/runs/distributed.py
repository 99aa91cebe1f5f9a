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

The variables are checked before `jax.distributed` sees them (a malformed address crashed it). Start-up waits at
most ``COMPMECH_DISTRIBUTED_TIMEOUT`` seconds (default `DEFAULT_TIMEOUT_S`) for every process to join; then the
process stops with one line saying which process did not join (process 0: the others; another process: whether
anything listens at the coordinator's address), and exit status 1.
"""

from __future__ import annotations

import os
import socket
import sys
import threading

from compmech.runs.errors import ConfigError

ENV_ADDRESS, ENV_PROCESSES, ENV_ID = "JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"
#: Seconds to wait for every process to join (a peer that never comes must not hang the job).
ENV_TIMEOUT = "COMPMECH_DISTRIBUTED_TIMEOUT"
DEFAULT_TIMEOUT_S = 300
#: jax.distributed's own deadline is this much later than ours, so that ours (with its message) comes first: JAX's
#: aborts the process with a C++ stack trace.
_JAX_GRACE_S = 60


def check_address(text: str) -> tuple[str, int]:
    """``host:port`` (an IPv6 host in brackets) -> (host, port); `ConfigError` naming the variable otherwise."""
    host, sep, port = text.strip().rpartition(":")
    ok = bool(sep) and bool(host) and port.isdigit() and 0 < int(port) < 65536 and not any(c.isspace() for c in host)
    if ok and ":" in host:  # IPv6: [::1]:1234
        ok = host.startswith("[") and host.endswith("]")
    if not ok:
        raise ConfigError(
            f"environment variable {ENV_ADDRESS}={text!r} must be host:port of process 0 (e.g. "
            "node0:12345, or [::1]:12345); fix it or unset it to run as one process"
        )
    return host.strip("[]"), int(port)


def _timeout() -> int:
    text = os.environ.get(ENV_TIMEOUT, "")
    if not text:
        return DEFAULT_TIMEOUT_S
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"environment variable {ENV_TIMEOUT}={text!r} must be a whole number of seconds >= 1")
    return int(text)


def _not_joined(address: str, n: int, pid: int, timeout: int) -> str:
    """The line said when the processes did not all join within ``timeout`` seconds."""
    if pid == 0:
        who = "process 1 did not join" if n == 2 else f"not every one of processes 1..{n - 1} joined"
        return (
            f"process 0 of {n}: {who} within {timeout} s (the coordinator listens at {address}); start each "
            f"with the same {ENV_ADDRESS} and {ENV_PROCESSES}={n} and its own {ENV_ID}, or raise {ENV_TIMEOUT}"
        )
    host, port = check_address(address)
    try:
        with socket.create_connection((host, port), timeout=2):
            listening = f"process 0 listens at {address}, but not every process joined"
    except OSError:
        listening = f"nothing listens at {address}: process 0 (the coordinator) did not start, or the address is wrong"
    return f"process {pid} of {n} could not join within {timeout} s: {listening}; or raise {ENV_TIMEOUT}"


def _int_env(name: str, low: int) -> int:
    text = os.environ[name]
    try:
        value = int(text)
    except ValueError:
        value = low - 1
    if value < low:
        raise ConfigError(
            f"environment variable {name}={text!r} must be an integer >= {low}; fix it or unset "
            f"{ENV_ADDRESS}, {ENV_PROCESSES} and {ENV_ID} to run as one process"
        )
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
            raise ConfigError(
                f"a multi-process run needs {ENV_ADDRESS}, {ENV_PROCESSES} and {ENV_ID}; {', '.join(missing)} not set"
            )
        n = _int_env(ENV_PROCESSES, 1)
        pid = _int_env(ENV_ID, 0)
        if pid >= n:
            raise ConfigError(f"{ENV_ID}={pid} must be below {ENV_PROCESSES}={n} (processes count from 0)")
        address = os.environ[ENV_ADDRESS].strip()
        check_address(address)
        timeout = _timeout()
        with _watchdog(_not_joined, address, n, pid, timeout):
            jax.distributed.initialize(
                address, num_processes=n, process_id=pid, initialization_timeout=timeout + _JAX_GRACE_S
            )
    else:
        timeout = _timeout()
        where = f"SLURM job {os.environ.get('SLURM_JOB_ID')}"
        with _watchdog(
            lambda *_: (
                f"the {slurm_tasks} tasks of {where} did not all join within {timeout} s; "
                f"check srun's tasks, or raise {ENV_TIMEOUT}"
            ),
            "",
            0,
            0,
            timeout,
        ):
            # JAX's SLURM detection: coordinator, process count and id from SLURM_*
            jax.distributed.initialize(initialization_timeout=timeout + _JAX_GRACE_S)
    return True


class _watchdog:
    """Within the block, a timer that says ``message(*args)`` and ends the process (exit status 1) when the block
    has not finished after ``args[-1]`` seconds: jax.distributed's start-up cannot be interrupted from Python."""

    def __init__(self, message, address: str, n: int, pid: int, timeout: int) -> None:
        self.args = (address, n, pid, timeout)
        self.message = message
        self.timer = threading.Timer(timeout, self._fire)
        self.timer.daemon = True

    def _fire(self) -> None:
        try:
            text = self.message(*self.args)
        except Exception as exc:  # noqa: BLE001 -- the line must come out whatever went wrong in composing it
            text = f"the processes did not all join within {self.args[-1]} s ({exc})"
        print(f"compmech: error: {text}", file=sys.stderr, flush=True)
        os._exit(1)

    def __enter__(self) -> _watchdog:
        self.timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self.timer.cancel()


def is_lead_process() -> bool:
    """True in process 0 (or when running as one process): the one that writes files and shows progress."""
    import jax

    return jax.process_index() == 0
