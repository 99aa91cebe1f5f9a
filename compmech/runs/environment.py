"""Where a run ran: compmech's version, the Python and library versions, the CPU, the XLA flags and the devices,
recorded in every run's summary.json (``environment``) so that a difference between two machines' numbers can be
traced (float32 reductions round differently on another CPU or another XLA)."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import sys
from pathlib import Path
from typing import Any

import compmech

#: The libraries whose versions change numbers (or how they are computed).
LIBRARIES = ("jax", "jaxlib", "flax", "optax", "numpy", "scipy", "matplotlib")


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo; elsewhere what `platform` says)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


#: The CPU features that decide which kernels XLA's CPU backend emits (vector width, fused multiply-add): two CPUs
#: with the same model name but other features round float32 reductions differently.
VECTOR_FEATURES = ("avx512f", "avx512_bf16", "avx2", "fma", "avx", "sse4_2", "asimd", "sve", "neon")


def cpu_features() -> str:
    """The CPU's family and model numbers and its vector features (Linux: /proc/cpuinfo; elsewhere "")."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip().lower()
            if key in ("cpu family", "model", "flags", "features") and key not in fields:
                fields[key] = value.strip()
            if not line.strip() and fields:
                break  # the first processor's block is enough
    except OSError:
        return ""
    flags = set((fields.get("flags") or fields.get("features") or "").split())
    head = " ".join(f"{k} {fields[k]}" for k in ("cpu family", "model") if k in fields)
    return "; ".join(x for x in (head, " ".join(f for f in VECTOR_FEATURES if f in flags)) if x)


def run_environment() -> dict[str, Any]:
    """compmech, Python and library versions, the platform, the CPU, XLA_FLAGS and JAX's devices (JAX is imported)."""
    import jax  # lazy: a run has imported it already; the CLI's other commands never need it

    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "compmech": compmech.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_features": cpu_features(),
        "cpu_count": os.cpu_count(),
        "libraries": versions,
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "jax_backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
    }
