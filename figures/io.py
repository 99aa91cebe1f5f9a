"""Saving figures: atomic (temp file in the same folder, then rename), format from the suffix."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from matplotlib.figure import Figure

from figures._common import FigureInputError

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


def save_figure(fig: Figure, path, dpi: int = 150) -> Path:
    """Write `fig` to `path` (.png, .svg or .pdf), creating parent folders, then close it.

    The file appears complete or not at all: it is rendered to a temporary file beside the
    target and moved into place with `os.replace`. Returns the path written.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise FigureInputError(f"path must end in one of {sorted(FORMATS)}, got {str(path)!r}")
    try:
        return write_atomic(path, lambda handle: fig.savefig(handle, format=fmt, dpi=dpi))
    finally:
        _close(fig)


def write_atomic(path, write: Callable[[BinaryIO], None]) -> Path:
    """Create ``path`` (and its folders) by calling ``write`` on a temp file beside it, then ``os.replace``.

    Readers see the old file or the complete new one, never a part; on error nothing is left behind.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _close(fig: Figure) -> None:
    """Release the figure: through pyplot if pyplot manages it, else drop its artists."""
    if getattr(fig.canvas, "manager", None) is not None:
        import matplotlib.pyplot as plt

        plt.close(fig)
    else:
        fig.clear()


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
