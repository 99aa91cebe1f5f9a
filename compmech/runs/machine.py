"""What this machine has for a run: the memory a process can still allocate (`available_memory`), read before
anything big is built (`compmech.runs.preflight`, `compmech.runs.processes`)."""

from __future__ import annotations

import os
from pathlib import Path

#: Run only if the estimate is at most this fraction of the available memory (the estimate is rough).
MEMORY_HEADROOM = 0.9


def available_memory() -> int:
    """Bytes this process can still allocate: MemAvailable, capped by a cgroup limit if there is one."""
    available = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
                break
    except OSError:
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            available = 2**63
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            limit = Path(limit_file).read_text().strip()
            if limit.isdigit():
                available = min(available, int(limit) - int(Path(usage_file).read_text().strip()))
            break
        except (OSError, ValueError):
            continue
    return available
