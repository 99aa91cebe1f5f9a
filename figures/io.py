"""Saving figures: atomic (temp file in the same folder, then rename), format from the suffix."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from matplotlib.figure import Figure

from figures._common import FigureInputError

FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
#: The most pixels a saved figure may have (width x height at the given dpi): 200 megapixels, about
#: 40 times the largest figure `compmech run` draws at dpi 300. A rasteriser needs ~4 bytes per pixel,
#: so this bounds memory to ~0.8 GB; an absurd dpi is refused before anything is allocated.
MAX_PIXELS = 200_000_000


def save_figure(fig: Figure, path, dpi: int = 150) -> Path:
    """Write `fig` to `path` (.png, .svg or .pdf), creating parent folders, then close it.

    The file appears complete or not at all: it is rendered to a temporary file beside the
    target and moved into place with `os.replace`. Returns the path written. A `dpi` that
    would make the image larger than `MAX_PIXELS` is refused (FigureInputError) before anything
    is rendered or allocated, so a typo such as dpi = 100000 costs nothing.
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    try:
        if fmt is None:
            raise FigureInputError(f"path must end in one of {sorted(FORMATS)}, got {str(path)!r}")
        check_pixel_budget(fig, dpi)
        return write_atomic(path, lambda handle: fig.savefig(handle, format=fmt, dpi=dpi))
    finally:
        _close(fig)


def check_pixel_budget(fig: Figure, dpi: float) -> None:
    """Raise FigureInputError if `fig` saved at `dpi` would exceed `MAX_PIXELS` (or dpi is not positive)."""
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float)) or not dpi > 0 or dpi != dpi:
        raise FigureInputError(f"dpi must be a positive number, got {dpi!r}")
    width_in, height_in = fig.get_size_inches()
    pixels = float(width_in * dpi) * float(height_in * dpi)
    if pixels > MAX_PIXELS:
        raise FigureInputError(
            f"dpi {dpi:g} would make a {width_in * dpi:,.0f} x {height_in * dpi:,.0f}-pixel image "
            f"({pixels / 1e6:,.0f} megapixels, limit {MAX_PIXELS / 1e6:,.0f}); use a dpi of 72-300 "
            f"([figures] dpi in the config)"
        )


def write_atomic(path, write: Callable[[BinaryIO], object]) -> Path:
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
