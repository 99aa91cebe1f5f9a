"""Suite-wide setup: the tests never write the user's XLA compilation cache.

`compmech run`/`reproduce`/`sweep` (called in-process by many tests) turn on JAX's persistent compilation
cache (`compmech.runs.compiles`); for the test session it lives in a fresh temporary directory, shared with
the subprocesses the tests start (``COMPMECH_XLA_CACHE``), and removed at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile

_CACHE: str | None = None


def pytest_configure(config) -> None:
    global _CACHE
    _CACHE = tempfile.mkdtemp(prefix="compmech-test-xla-")
    os.environ["COMPMECH_XLA_CACHE"] = _CACHE


def pytest_unconfigure(config) -> None:
    if _CACHE is not None:
        shutil.rmtree(_CACHE, ignore_errors=True)
