"""The measures of each random process, from the process alone: C_mu, E, h_mu, the Lyapunov dimension and the
number of mixed states (`compmech.measures.process_info`: exact where a finite presentation allows, else
estimated with an error, or a bound, each marked), and the number of distinct beliefs among the contexts the model
sees (exact enumeration). Imports `hmm_processes` and the theory modules only."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from compmech.measures import Measure, process_info
from compmech.mixed_states import mixed_states
from hmm_processes import HMM

#: Beliefs equal to this many decimals are one belief when counting the distinct ones.
BELIEF_DECIMALS = 9


@dataclass(frozen=True)
class MeasureValue:
    """One measure of one process: ``value`` (``math.inf`` for an infinite one, None when not computed), its
    ``error`` (a bound or a standard error, per ``error_kind``) and ``method`` (`compmech.measures.METHODS`, or
    "theory" where the study fills it in from the kind of process, ``note`` says how)."""

    value: float | None
    error: float | None
    error_kind: str | None
    method: str
    note: str | None = None

    @classmethod
    def of(cls, m: Measure, note: str | None = None) -> MeasureValue:
        if m.method == "infinite":
            return cls(math.inf, None, None, "infinite", note)
        value = None if m.value is None else float(m.value)
        return cls(value, m.error, m.error_kind, m.method, note)

    @property
    def exact(self) -> bool:
        return self.method in ("exact", "theory")

    def text(self, digits: int = 3) -> str:
        """``1.585``, ``0.654 ± 0.0004`` (stderr), ``≥ 0.013`` (a lower bound), ``∞`` or ``–``."""
        if self.value is None:
            return "–"
        if math.isinf(self.value):
            return "∞"
        v = f"{self.value:.{digits}f}"
        if self.method in ("lower bound", "partial sum"):
            return f"≥ {v}"
        if self.method == "upper bound":
            return f"≤ {v}"
        if self.error_kind == "stderr" and self.error:
            return f"{v} ± {self.error:.1g}"
        return v

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        if self.value is not None and math.isinf(self.value):
            out["value"] = None  # strict JSON: the method "infinite" says it
        return out


@dataclass(frozen=True)
class MachineMeasures:
    """The measures of one process the study correlates with (bits; dimensions dimensionless)."""

    C_mu: MeasureValue
    E: MeasureValue
    h_mu: MeasureValue
    lyapunov_dimension: MeasureValue
    n_mixed_states: MeasureValue  # of the whole mixed-state presentation (math.inf when infinite)
    n_beliefs_context: int  # distinct beliefs after the 0..context_length-token words the model is probed on
    last_token_error: float  # 1 - R² of the beliefs predicted from the last token alone (`last_token_error`)
    n_states: int
    n_tokens: int
    unifilar: bool

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in self.__dict__.items():
            out[key] = value.to_json() if isinstance(value, MeasureValue) else value
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MachineMeasures:
        values: dict[str, Any] = {}
        for key, value in data.items():
            if isinstance(value, dict):
                v = MeasureValue(**value)
                if v.method == "infinite":
                    v = MeasureValue(math.inf, v.error, v.error_kind, v.method, v.note)
                values[key] = v
            else:
                values[key] = value
        return cls(**values)


def distinct_beliefs(hmm: HMM, depth: int) -> int:
    """The number of distinct beliefs (to `BELIEF_DECIMALS`) after every word of length 0..``depth`` read from the
    stationary distribution: the points of the geometry the probe is asked to separate."""
    ms = mixed_states(hmm, depth)
    beliefs = np.concatenate([lvl.beliefs for lvl in ms.levels], axis=0)  # [N, S]
    return int(np.unique(np.round(beliefs, BELIEF_DECIMALS), axis=0).shape[0])


def last_token_error(hmm: HMM, context_length: int) -> float:
    """How much of the beliefs the last token leaves unexplained: ``1 - R²`` of the best predictor of the belief that
    sees only the last token (its mean over the rows with that last token), over the rows the probe fits (every
    allowed string of ``context_length`` tokens once, every position pooled, uniform weights; probes' "all_strings",
    "uniform"). Exact (enumeration). 0: the last token fixes the belief (a Markov-order-1 geometry, linear in the
    embedding); near 1: the belief needs the longer past. A linear probe of the token embedding alone reaches it."""
    ms = mixed_states(hmm, context_length)
    beliefs = ms.prefix_beliefs(context_length).reshape(-1, hmm.num_states)  # [N L, S]
    last = ms.level(context_length).words.reshape(-1).astype(np.int64)  # [N L] the token each belief came after
    total = ((beliefs - beliefs.mean(axis=0)) ** 2).sum()
    if total <= 0:
        return 0.0
    resid = 0.0
    for x in np.unique(last):
        b = beliefs[last == x]
        resid += ((b - b.mean(axis=0)) ** 2).sum()
    return float(resid / total)


def machine_measures(
    hmm: HMM, context_length: int, *, unifilar: bool, seed: int = 0, **budgets: Any
) -> MachineMeasures:
    """Every measure of ``hmm`` (a sample of ``random_epsilon_machine``) that the study reports. ``budgets``:
    `process_info`'s ``n_steps``, ``lyapunov_steps``, ``max_depth``, ``sync_depth``.

    The Lyapunov dimension is estimated by `process_info` where the mixed-state set is infinite and not countable;
    where the mixed-state presentation is finite, or the process is given by a unifilar presentation (whose
    stationary belief measure sits on its finitely many causal states: beliefs synchronise), the dimension of the
    belief measure is 0 exactly, marked "theory"."""
    info = process_info(hmm, seed=seed, **budgets)
    D = MeasureValue.of(info.lyapunov_dimension)
    n_ms = MeasureValue.of(info.n_mixed_states)
    if D.value is None and (unifilar or (n_ms.value is not None and math.isfinite(n_ms.value))):
        why = "unifilar: the belief measure sits on the causal states" if unifilar else "finite mixed-state set"
        D = MeasureValue(0.0, 0.0, "bound", "theory", why)
    return MachineMeasures(
        C_mu=MeasureValue.of(info.C_mu),
        E=MeasureValue.of(info.E),
        h_mu=MeasureValue.of(info.h_mu),
        lyapunov_dimension=D,
        n_mixed_states=n_ms,
        n_beliefs_context=distinct_beliefs(hmm, context_length),
        last_token_error=last_token_error(hmm, context_length),
        n_states=hmm.num_states,
        n_tokens=hmm.vocab_size,
        unifilar=unifilar,
    )
