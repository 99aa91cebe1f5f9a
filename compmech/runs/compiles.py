"""XLA compilations of a run: JAX's persistent compilation cache, and a count of what was compiled.

A run compiles a few dozen XLA programs (the training scan, the evaluations, the activation captures),
which on 2 CPU cores costs tens of seconds. With the persistent cache on, a second run of the same config
(or any run whose programs were compiled before, with the same JAX and the same shapes) loads them from
disk instead. The cache directory is ``$COMPMECH_XLA_CACHE`` when set (``off`` disables the cache), else
``$XDG_CACHE_HOME/compmech/xla`` (``~/.cache/compmech/xla``). JAX trusts what it finds there, so it lives in
the user's own cache directory, never in a shared place.

`CompileCount` counts, while it is active, every compilation request (JAX's
``/jax/core/compile/backend_compile_duration`` event, sent for every program it compiles or loads) and
the persistent-cache hits among them (``/jax/compilation_cache/cache_hits``), so
``compiled = requests - cache_hits`` programs were really compiled.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

CACHE_ENV = "COMPMECH_XLA_CACHE"
_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_HIT_EVENT = "/jax/compilation_cache/cache_hits"


def cache_dir() -> Path | None:
    """Where the persistent compilation cache lives (None: disabled by ``COMPMECH_XLA_CACHE=off``)."""
    value = os.environ.get(CACHE_ENV, "").strip()
    if value.lower() in ("off", "0", "none", "false"):
        return None
    if value:
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base) / "compmech" / "xla"


def enable_persistent_cache(directory: Path | None = None) -> Path | None:
    """Turn on JAX's persistent compilation cache in ``directory`` (default `cache_dir`); return it.

    Call before the first compilation of the process (JAX reads the setting once). Every program is
    cached, however small or quick to compile, so that a repeated run compiles nothing. A directory that
    cannot be created leaves the cache off (a run never fails for its cache)."""
    import jax

    directory = cache_dir() if directory is None else directory
    if directory is None:
        return None
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return directory


@dataclass
class _Totals:
    requests: int = 0
    cache_hits: int = 0
    seconds: float = 0.0


_TOTALS = _Totals()
_LOCK = threading.Lock()
_REGISTERED = False


def _on_duration(event: str, duration: float, **_: object) -> None:
    if event == _COMPILE_EVENT:
        with _LOCK:
            _TOTALS.requests += 1
            _TOTALS.seconds += float(duration)


def _on_event(event: str, **_: object) -> None:
    if event == _HIT_EVENT:
        with _LOCK:
            _TOTALS.cache_hits += 1


def _register() -> None:
    global _REGISTERED
    if _REGISTERED:
        return
    from jax import monitoring

    monitoring.register_event_duration_secs_listener(_on_duration)
    monitoring.register_event_listener(_on_event)
    _REGISTERED = True


@dataclass(frozen=True)
class CompileStats:
    """What was compiled while a `CompileCount` was active."""

    requests: int  # programs JAX compiled or loaded from the persistent cache
    cache_hits: int  # of those, loaded from the persistent cache
    seconds: float  # wall time spent in compilation (including cache loads)

    @property
    def compiled(self) -> int:
        """Programs really compiled (not found in the persistent cache)."""
        return self.requests - self.cache_hits

    def to_json(self) -> dict[str, float | int]:
        return {
            "compiled": self.compiled,
            "cache_hits": self.cache_hits,
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
        }


class CompileCount:
    """Context manager counting XLA compilations in this process while it is active (`stats` at any time)."""

    def __enter__(self) -> CompileCount:
        _register()
        with _LOCK:
            self._start = (_TOTALS.requests, _TOTALS.cache_hits, _TOTALS.seconds)
        self._end: tuple[int, int, float] | None = None
        return self

    def __exit__(self, *exc: object) -> None:
        with _LOCK:
            self._end = (_TOTALS.requests, _TOTALS.cache_hits, _TOTALS.seconds)

    @property
    def stats(self) -> CompileStats:
        with _LOCK:
            end = self._end or (_TOTALS.requests, _TOTALS.cache_hits, _TOTALS.seconds)
        return CompileStats(
            requests=end[0] - self._start[0], cache_hits=end[1] - self._start[1], seconds=end[2] - self._start[2]
        )
