"""Run-directory files: atomic writes (readers see the old file or the whole new one), the completion
mark, and the clean-up of temp files a killed run left behind."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from figures.io import write_atomic

#: Written last, after summary.json and report.html: a run directory is finished iff it holds this file.
COMPLETE_MARK = "complete.json"


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temp file beside it and a rename (folders created;
    `figures.io.write_atomic`, the project's one atomic writer)."""
    return write_atomic(path, lambda handle: handle.write(data))


def copy_atomic(src: str | Path, dst: str | Path) -> Path:
    """Copy the file ``src`` to ``dst`` atomically (e.g. a run's figure into a reproduce folder)."""
    return write_bytes_atomic(dst, Path(src).read_bytes())


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temp file and a rename."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    return write_bytes_atomic(path, (json.dumps(obj, indent=2) + "\n").encode("utf-8"))


def is_complete(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a finished run (its completion mark exists)."""
    return (Path(run_dir) / COMPLETE_MARK).is_file()


def mark_complete(run_dir: str | Path, **fields: Any) -> Path:
    """Write the completion mark (with ``fields``, e.g. phase_seconds): the last file of a run."""
    return write_json_atomic(Path(run_dir) / COMPLETE_MARK,
                             {"complete": True, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                              **fields})


def mark_unfinished(run_dir: str | Path) -> None:
    """Remove the completion mark and the summary, before a run (re)starts writing into ``run_dir``."""
    for name in (COMPLETE_MARK, "summary.json"):
        (Path(run_dir) / name).unlink(missing_ok=True)


def remove_stale_temp_files(run_dir: str | Path) -> list[Path]:
    """Delete the temp files (``.<name>.<random>.tmp``) that a killed write left in ``run_dir``; return them."""
    stale = [p for p in Path(run_dir).rglob(".*.tmp") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale
