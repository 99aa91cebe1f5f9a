"""Atomic text and JSON writes for run directories (readers see the old file or the whole new one)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from figures.io import write_atomic


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` through a temp file and a rename."""
    data = text.encode("utf-8")
    return write_atomic(path, lambda handle: handle.write(data))


def write_json_atomic(path: str | Path, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    return write_atomic(path, lambda handle: handle.write((json.dumps(obj, indent=2) + "\n").encode("utf-8")))
