"""Progress for the phases of a run: one bar (or counter) with an ETA per phase that takes seconds.

Every long phase of `compmech run` (enumeration, training, probing, geometry, training evolution,
figures, report) reports through `phase`, so a user never watches a silent terminal. The packages
that work on arrays (`probes`, `figures`, `predictive_models`) never import this: they take a plain
callback (``on_step: Callable[[], None] | None``) that the runner passes ``tick`` to.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class PhaseTimes:
    """Wall-clock seconds of each finished phase, in order (for the summary and the note)."""

    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds


@contextmanager
def phase(
    name: str, total: int | None = None, *, enabled: bool = True, unit: str = "it", times: PhaseTimes | None = None
) -> Iterator[Callable[[int], None]]:
    """Progress for one phase; yields ``tick(n=1)`` to advance it by ``n`` of ``total``.

    With a ``total``, a bar with an ETA. With ``total=None`` (a phase with no natural count), one
    line ``name ...`` when it starts and ``name: done in 1.2 s`` when it ends. With
    ``enabled=False`` nothing is printed (``tick`` still works). The phase's wall time is added to
    ``times`` when given.
    """
    start = time.perf_counter()
    if total is None:
        if enabled:
            print(f"{name} ...", file=sys.stderr, flush=True)
        try:
            yield lambda n=1: None
        finally:
            seconds = time.perf_counter() - start
            if times is not None:
                times.add(name, seconds)
        if enabled:  # only after success: a failed phase says nothing more than its error
            print(f"{name}: done in {seconds:.1f} s", file=sys.stderr, flush=True)
        return

    from tqdm import tqdm

    bar = tqdm(
        total=total,
        desc=name,
        unit=unit,
        file=sys.stderr,
        disable=not enabled,
        dynamic_ncols=True,
        leave=True,
        mininterval=0.5,
    )

    def tick(n: int = 1) -> None:
        bar.update(n)

    try:
        yield tick
    finally:
        bar.close()
        if times is not None:
            times.add(name, time.perf_counter() - start)
