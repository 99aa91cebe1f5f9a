"""Run-directory files: atomic writes (readers see the old file or the whole new one), the completion
mark, the clean-up of temp files a killed run left behind, and the one-writer lock of a directory."""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import figures.io  # the project's one atomic writer, looked up when called (a test can stand in a failing one)
from compmech.runs.errors import RunDirError

#: Written last, after summary.json and report.html: a run directory is finished iff it holds this file.
COMPLETE_MARK = "complete.json"


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temp file beside it and a rename (folders created;
    `figures.io.write_atomic`, the project's one atomic writer)."""
    return figures.io.write_atomic(path, lambda handle: handle.write(data))


def copy_atomic(src: str | Path, dst: str | Path) -> Path:
    """Copy the file ``src`` to ``dst`` atomically (e.g. a run's figure into a reproduce folder)."""
    return write_bytes_atomic(dst, Path(src).read_bytes())


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temp file and a rename."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def finite_json(obj: Any) -> Any:
    """``obj`` with every NaN or infinite float replaced by None (JSON null: no number), so that a results file
    is strict JSON: NaN and Infinity are not JSON, and most readers other than Python's refuse them."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_json(v) for v in obj]
    return obj


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented strict JSON (a NaN or infinite float becomes null: `finite_json`), atomically."""
    text = json.dumps(finite_json(obj), indent=2, allow_nan=False)
    return write_bytes_atomic(path, (text + "\n").encode("utf-8"))


def is_complete(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a finished run (its completion mark exists)."""
    return (Path(run_dir) / COMPLETE_MARK).is_file()


def mark_complete(run_dir: str | Path, **fields: Any) -> Path:
    """Write the completion mark (with ``fields``, e.g. phase_seconds): the last file of a run."""
    return write_json_atomic(
        Path(run_dir) / COMPLETE_MARK,
        {"complete": True, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **fields},
    )


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


#: The lock file inside a run (or sweep) directory: whoever holds an exclusive `fcntl.flock` on it writes there.
LOCK_NAME = ".compmech.lock"

# The directories this process holds, by resolved path: (the lock file's descriptor, how many holders nest).
_HELD: dict[str, list[int]] = {}


@contextlib.contextmanager
def directory_lock(directory: str | Path, what: str = "run directory") -> Iterator[bool]:
    """Hold the exclusive lock of ``directory`` (created if missing) while the block runs; yields whether the
    directory was created here.

    One writer per directory: the lock is an OS lock (`fcntl.flock` on `LOCK_NAME` inside it), so the kernel
    releases it when the holder exits or is killed, and no stale lock is ever left to clear by hand. A second
    process is refused at once with `DirectoryInUse` naming the holder (its pid and command line). Within one
    process the lock nests (a sweep holds its points' directories while their runs take them again). On a network
    file system flock works where the file system supports it (NFSv4 does: Linux emulates it with fcntl locks).
    """
    directory = Path(directory)
    key = str(directory.resolve())
    if key in _HELD:
        _HELD[key][1] += 1
        try:
            yield False
        finally:
            _HELD[key][1] -= 1
        return
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_holder(fd)
        os.close(fd)
        raise DirectoryInUse(
            f"{what} {directory} is in use by another compmech process{holder}; wait for it to "
            "finish (or stop it), or pass --out DIR for another directory"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "command": " ".join(sys.argv)}).encode("utf-8"), 0)
    except OSError:
        pass  # the holder's note is a courtesy; the lock itself is held
    _HELD[key] = [fd, 1]
    try:
        yield created
    finally:
        del _HELD[key]
        os.close(fd)  # closing the descriptor releases the lock


def _read_holder(fd: int) -> str:
    """`` (pid N: command)`` from a lock file's note, or "" when it cannot be read."""
    try:
        note = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
        return f" (pid {int(note['pid'])}: {str(note.get('command', ''))[:200]})"
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def is_locked(directory: str | Path) -> bool:
    """Whether another process holds ``directory``'s lock now (False when it has no lock file)."""
    path = Path(directory) / LOCK_NAME
    if str(Path(directory).resolve()) in _HELD:
        return False
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


class DirectoryInUse(RunDirError):
    """Another process holds the directory's lock (`directory_lock`)."""
