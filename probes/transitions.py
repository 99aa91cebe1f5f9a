"""Learning transitions from arrays: the loss on component-identifying tokens grouped by how many of them the
context held, a step change in a loss curve over training, and the half-rise point of a score over training.

- `loss_by_count`: the authors' measure of the induction-head transition (Riechers, Bigelow, Alt & Shai 2025: the
  loss when predicting the name, grouped by how many times the name was seen before), generalised: the mean loss
  of the predictions whose target is an *identifying* token (one that only some components of a mixture emit),
  grouped by how many identifying tokens came before it in the sequence, with a standard error clustered by
  sequence (the predictions of one sequence are not independent);
- `step_change`: a plateau followed by a faster fall in a loss curve (see its docstring for the rule);
- `half_rise`: where a score first gets half way from its first value to its largest one.

Plain NumPy; no model code.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from probes._checks import ProbeInputError

#: A step change needs the fall rate to rise to at least this multiple of the plateau's rate.
STEP_MIN_RATIO = 2.0
#: ... and by at least this many standard errors (the plateau's slowing-down likewise).
STEP_MIN_Z = 4.0


# ---------------------------------------------------------------------------- identifying tokens


@dataclass(frozen=True, eq=False)
class LossByCount:
    """Mean loss of the predictions of identifying tokens, by the number of identifying tokens seen before."""

    count: np.ndarray  # [C] 0, 1, ..., C - 1; the last bin pools every count >= C - 1 when ``top_open``
    loss: np.ndarray  # [C] nats (NaN where no prediction falls in the bin)
    loss_se: np.ndarray  # [C] standard error, clustered by sequence (NaN with fewer than 2 sequences in the bin)
    n: np.ndarray  # [C] predictions in the bin
    n_sequences: np.ndarray  # [C] sequences with a prediction in the bin
    top_open: bool

    def to_json(self) -> dict:
        def f(v: float) -> float | None:
            return float(v) if np.isfinite(v) else None

        return {
            "count": [int(c) for c in self.count],
            "loss": [f(v) for v in self.loss],
            "loss_se": [f(v) for v in self.loss_se],
            "n": [int(v) for v in self.n],
            "n_sequences": [int(v) for v in self.n_sequences],
            "top_open": self.top_open,
        }


def identifying_tokens(emits: np.ndarray) -> np.ndarray:
    """[V] bool: the tokens some but not all components emit, from ``emits`` [K, V] (component k can emit x)."""
    e = np.asarray(emits, dtype=bool)
    if e.ndim != 2 or e.shape[0] < 1:
        raise ProbeInputError(f"emits must be a bool array [K, V]; got shape {e.shape}")
    return np.asarray(e.any(axis=0) & ~e.all(axis=0))


def counts_before(tokens: np.ndarray, identifying: np.ndarray) -> np.ndarray:
    """[N, L] int: how many identifying tokens stand strictly before each position of ``tokens`` [N, L].

    ``identifying``: [V] bool over the token ids (ids at or beyond V, e.g. a start token, never count).
    """
    tok = _tokens(tokens)
    ident = np.asarray(identifying, dtype=bool)
    hit = np.zeros(tok.shape, dtype=bool)
    inside = tok < ident.shape[0]
    hit[inside] = ident[tok[inside]]
    return np.cumsum(hit, axis=1) - hit  # [N, L] exclusive prefix count


def loss_by_count(
    tokens: np.ndarray, losses: np.ndarray, identifying: np.ndarray, max_count: int, *, mask: np.ndarray | None = None
) -> LossByCount:
    """The mean of ``losses`` [N, L] (the loss of predicting ``tokens[n, i]`` from what precedes it) over the
    positions whose token is identifying, grouped by `counts_before` (counts >= ``max_count`` pooled in the last
    bin); ``mask`` [N, L] bool limits the positions used (e.g. leave out a start token).

    The standard error is clustered by sequence: with s_n and c_n the sum of the losses and the number of
    predictions of sequence n in the bin, mean = sum s_n / sum c_n and se^2 = N/(N-1) sum (s_n - mean c_n)^2 /
    (sum c_n)^2 over the N sequences with a prediction there (the ratio estimator's linearisation).
    """
    tok = _tokens(tokens)
    loss = np.asarray(losses, dtype=np.float64)
    if loss.shape != tok.shape:
        raise ProbeInputError(f"losses must have the shape of tokens {tok.shape}; got {loss.shape}")
    if isinstance(max_count, bool) or not isinstance(max_count, (int, np.integer)) or max_count < 0:
        raise ProbeInputError(f"max_count must be an integer >= 0; got {max_count!r}")
    ident = np.asarray(identifying, dtype=bool)
    use = np.ones(tok.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if use.shape != tok.shape:
        raise ProbeInputError(f"mask must have the shape of tokens {tok.shape}; got {use.shape}")
    inside = tok < ident.shape[0]
    target = np.zeros(tok.shape, dtype=bool)
    target[inside] = ident[tok[inside]]
    target &= use
    if not np.all(np.isfinite(loss[target])):
        raise ProbeInputError("losses must be finite at the identifying tokens")
    counts = np.minimum(counts_before(tok, ident), max_count)  # [N, L]
    C = int(max_count) + 1
    mean, se = np.full(C, np.nan), np.full(C, np.nan)
    n, n_seq = np.zeros(C, np.int64), np.zeros(C, np.int64)
    for c in range(C):
        sel = target & (counts == c)  # [N, L]
        c_n = sel.sum(axis=1).astype(np.float64)  # [N]
        s_n = np.where(sel, loss, 0.0).sum(axis=1)  # [N]
        has = c_n > 0
        n[c], n_seq[c] = int(c_n.sum()), int(has.sum())
        if n[c] == 0:
            continue
        mean[c] = s_n.sum() / c_n.sum()
        m = int(has.sum())
        if m >= 2:
            r = s_n[has] - mean[c] * c_n[has]
            se[c] = float(np.sqrt(m / (m - 1) * np.square(r).sum()) / c_n.sum())
    return LossByCount(
        count=np.arange(C),
        loss=mean,
        loss_se=se,
        n=n,
        n_sequences=n_seq,
        top_open=bool(np.any(target & (counts_before(tok, ident) > max_count))),
    )


def _tokens(tokens: np.ndarray) -> np.ndarray:
    tok = np.asarray(tokens)
    if tok.ndim != 2 or tok.dtype.kind not in "iu":
        raise ProbeInputError(f"tokens must be an integer array [N, L]; got shape {tok.shape}, dtype {tok.dtype}")
    return tok


# ---------------------------------------------------------------------------- a step change over training


@dataclass(frozen=True)
class StepChange:
    """A step change in a loss curve (`step_change`): where the loss, after slowing to a plateau, falls fastest."""

    found: bool
    reason: str  # why (not) found, in words
    step: float | None  # the boundary between the two windows where the fall rate peaks after the plateau
    step_lo: float | None  # the half-maximum interval of the fall rate around it: the step's timing uncertainty
    step_hi: float | None
    rate: float | None  # the peak fall rate, loss per step
    rate_se: float | None
    plateau_step: float | None  # where the fall rate was slowest before it (the plateau)
    plateau_rate: float | None
    drop: float | None  # the loss just before the interval minus just after it (window medians)
    noise: float  # estimated standard deviation of one loss point
    window: int  # points averaged on each side of a boundary

    @property
    def uncertainty(self) -> float | None:
        """Half the width of the half-maximum interval (steps)."""
        return None if self.step_lo is None or self.step_hi is None else (self.step_hi - self.step_lo) / 2.0

    def to_json(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["uncertainty"] = self.uncertainty
        d["rule"] = STEP_RULE
        return d


STEP_RULE = (
    "fall rate g at each boundary = (median of the w loss points before - median of the w after) / the distance of "
    "their mean steps (medians: one noisy point moves neither); a step change is a boundary whose g is at least "
    f"{STEP_MIN_RATIO:g} x the slowest earlier g (the plateau, at least w points before; a negative one counted as 0) "
    "and above it by "
    f">= {STEP_MIN_Z:g} standard errors, where that plateau itself followed a fall at least {STEP_MIN_RATIO:g} x "
    f"as fast and {STEP_MIN_Z:g} standard errors faster (the loss fell, slowed, fell again); the largest such rise; "
    "its timing uncertainty the interval where g stays above half way between the plateau's rate and the peak; "
    "standard errors from the loss points' noise, 1.4826 MAD(second differences) / sqrt(6)"
)


def step_change(steps: np.ndarray, loss: np.ndarray, window: int = 3) -> StepChange:
    """Find a step change in ``loss`` [P] over ``steps`` [P] (increasing); the rule is `STEP_RULE`.

    A curve that only slows down (a convex decay) has none: its fall rate never rises again. Nor has an initial
    slow start followed by the first fall (no earlier fall precedes that plateau). ``window`` points (their median) on
    each side of a boundary, so noise of standard deviation sigma gives the rate a standard error of
    sqrt(pi / 2) sigma sqrt(2 / window) / (distance of the windows' mean steps) (a median's error is at most
    sqrt(pi / 2) times a mean's).
    """
    s = np.asarray(steps, dtype=np.float64)
    L = np.asarray(loss, dtype=np.float64)
    if s.ndim != 1 or L.shape != s.shape:
        raise ProbeInputError(f"steps and loss must be 1-d arrays of one length; got {s.shape} and {L.shape}")
    if not (np.all(np.isfinite(s)) and np.all(np.isfinite(L))):
        raise ProbeInputError("steps and loss must be finite")
    if s.size > 1 and not np.all(np.diff(s) > 0):
        raise ProbeInputError("steps must be strictly increasing")
    w = int(window)
    if w < 1:
        raise ProbeInputError(f"window must be >= 1; got {window!r}")
    P = s.size
    noise = (
        float(1.4826 * np.median(np.abs(np.diff(L, 2) - np.median(np.diff(L, 2)))) / np.sqrt(6.0)) if P >= 3 else 0.0
    )

    def none(reason: str) -> StepChange:
        return StepChange(False, reason, None, None, None, None, None, None, None, None, noise, w)

    if P < 4 * w + 1:
        return none(f"too few points ({P}) for windows of {w}: need at least {4 * w + 1}")
    bounds = np.arange(w, P - w + 1)  # boundary i sits between points i - 1 and i
    left = np.array([np.median(L[i - w : i]) for i in bounds])
    right = np.array([np.median(L[i : i + w]) for i in bounds])
    ds = np.array([s[i : i + w].mean() - s[i - w : i].mean() for i in bounds])
    g = (left - right) / ds  # [B] fall rate, loss per step
    g_se = max(noise, 1e-300) * np.sqrt(np.pi / 2.0) * np.sqrt(2.0 / w) / ds  # [B]
    at = (s[bounds - 1] + s[bounds]) / 2.0  # [B] the boundary's step
    B = bounds.size

    def z(a: int, b: int) -> float:
        """Standard errors by which boundary a falls faster than boundary b (b's rate counted as 0 if negative: a
        loss that rose there, e.g. one noisy spike, must not make the next fall look like a step)."""
        return float((g[a] - max(g[b], 0.0)) / np.hypot(g_se[a], g_se[b]))

    # a plateau j: an earlier boundary k (windows disjoint: k <= j - w) fell >= ratio x as fast, significantly
    plateau_ok = np.zeros(B, dtype=bool)
    for j in range(B):
        for k in range(0, j - w + 1):
            if g[k] >= STEP_MIN_RATIO * max(g[j], 0.0) and g[k] > 0 and z(k, j) >= STEP_MIN_Z:
                plateau_ok[j] = True
                break
    best, best_rise, best_j = None, -np.inf, None
    for i in range(B):
        js = [j for j in range(0, i - w + 1) if plateau_ok[j]]
        if not js:
            continue
        j = min(js, key=lambda m: g[m])
        rise = g[i] - max(g[j], 0.0)
        if g[i] >= STEP_MIN_RATIO * max(g[j], 0.0) and g[i] > 0 and z(i, j) >= STEP_MIN_Z and rise > best_rise:
            best, best_rise, best_j = i, rise, j
    if best is None or best_j is None:
        return none(
            "no plateau followed by a faster fall: the loss's fall rate never rose again to "
            f"{STEP_MIN_RATIO:g} x its slowest earlier rate by {STEP_MIN_Z:g} standard errors"
        )
    half = (g[best] + max(g[best_j], 0.0)) / 2.0
    lo = best
    while lo - 1 > best_j and g[lo - 1] >= half:
        lo -= 1
    hi = best
    while hi + 1 < B and g[hi + 1] >= half:
        hi += 1
    drop = float(np.median(L[max(bounds[lo] - w, 0) : bounds[lo]]) - np.median(L[bounds[hi] : bounds[hi] + w]))
    return StepChange(
        found=True,
        reason=f"the fall rate rose from {g[best_j]:.3g} (plateau) to {g[best]:.3g} per step, "
        f"{z(best, best_j):.1f} standard errors",
        step=float(at[best]),
        step_lo=float(at[lo]),
        step_hi=float(at[hi]),
        rate=float(g[best]),
        rate_se=float(g_se[best]),
        plateau_step=float(at[best_j]),
        plateau_rate=float(g[best_j]),
        drop=drop,
        noise=noise,
        window=w,
    )


# ---------------------------------------------------------------------------- a score's rise over training


@dataclass(frozen=True)
class HalfRise:
    """Where a score over training first reaches half way from its first value to its largest."""

    found: bool
    at: float | None  # linearly interpolated between the two points that bracket the crossing
    lo: float | None  # the bracketing points: the crossing lies between them
    hi: float | None
    start: float  # the first value
    peak: float  # the largest value

    def to_json(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def half_rise(x: np.ndarray, score: np.ndarray, min_rise: float = 0.0) -> HalfRise:
    """`HalfRise` of ``score`` [P] over ``x`` [P] (increasing); not found when the score never rises by more than
    ``min_rise`` above its first value."""
    xs = np.asarray(x, dtype=np.float64)
    y = np.asarray(score, dtype=np.float64)
    if xs.ndim != 1 or y.shape != xs.shape or xs.size < 2:
        raise ProbeInputError(f"x and score must be 1-d arrays of one length >= 2; got {xs.shape} and {y.shape}")
    start, peak = float(y[0]), float(y.max())
    if not peak - start > min_rise:
        return HalfRise(False, None, None, None, start, peak)
    level = (start + peak) / 2.0
    i = int(np.flatnonzero(y >= level)[0])  # >= 1, since y[0] < level
    a, b = y[i - 1], y[i]
    at = float(xs[i - 1] + (level - a) / (b - a) * (xs[i] - xs[i - 1]))
    return HalfRise(True, at, float(xs[i - 1]), float(xs[i]), start, peak)
