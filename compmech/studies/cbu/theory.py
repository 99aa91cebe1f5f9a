"""Constrained belief updates (Piotrowski, Riechers, Filan & Shai, ICML 2025): what a process alone predicts about
how one attention layer builds the belief — the decay rates of attention, the number of heads, the intermediate
geometry.

The derivation (ours, from the paper's idea; float64 NumPy throughout). Write each labelled matrix as
``T^(x) = p_x M + D_x`` with ``M = T.sum(0)``, ``p_x = pi T^(x) tau`` the stationary probability of token x and
``sum_x D_x = 0``. Expanding the unnormalised belief ``pi T^(x_0) ... T^(x_t)`` to first order in the ``D``'s and
using ``pi M = pi``::

    pi T^(x_0) ... T^(x_t)  ≈  (prod_s p_{x_s}) [ pi + sum_{s<=t} u_{x_s} M^(t-s) ],   u_x = pi T^(x) / p_x - pi

``u_x`` is the one-token update direction: the belief after seeing x alone, minus the stationary belief (it sums to
zero under tau, so the bracket stays normalised). The bracket is the **constrained belief** (`constrained_beliefs`):
a sum over positions of a per-token vector carried forward by ``M^(t-s)`` — a computation that is parallel over
positions, which is what one attention layer can do (each key contributes its token's OV vector, weighted by
attention). Decomposing ``u_x`` into left eigenvectors of M, ``u_x M^k = sum_j c_xj lambda_j^k l_j``: every
eigenvalue ``lambda_j`` the updates excite predicts one pattern of attention weights decaying as
``lambda_j^(d - s)`` from query d to key s, with OV vectors along the ``c_xj l_j`` parts.

- **Mess3** (``M`` = 1 - 2x on the diagonal, x off it): the eigenvalues are 1 and ``1 - 3x`` twice, and every u_x
  lies in the doubly degenerate eigenspace, so one head with ``lambda = 1 - 3x`` and OV vectors along u_x suffices.
- **Several distinct eigenvalues** need one head each (a head has one decay profile).
- **A negative eigenvalue** makes ``lambda^k`` alternate in sign. Softmax weights are positive, so a head can carry
  ``|lambda|^k`` only; the sign needs two heads (keys at even and at odd distances, the odd head's OV vector
  negated) — or one head whose value vector carries the key's position parity, with the query's parity applied
  after the attention. We predict two heads (the count that needs no parity trick) of rate ``|lambda|``.
- **Complex pairs** (rotating chains) oscillate like negative eigenvalues; we predict two heads of rate ``|lambda|``.
- **Products** of independent processes: the joint belief is the outer product of the factors' beliefs, so the
  network needs each factor's belief only; each factor's constrained update uses that factor's eigenvalues. We
  predict from the factors' spectra, merging equal eigenvalues across factors (one head serves several factors, its
  OV vectors carrying each factor's part). The joint ``M`` (a Kronecker product) has the products of the factors'
  eigenvalues (`spectrum` of a `hmm_processes.product`), the cross terms ``lambda_1 lambda_2`` belonging to the
  joint belief's correlations, which the MLP reads off the factors' beliefs.

Only eigenvalues whose share of the update vectors' weight (`EigenComponent.share`) is at least ``min_share`` call
for a head: an eigenvalue the tokens never excite predicts nothing. The first-order expansion is the paper's
approximation; it is good when the updates are small (tokens weakly informative) and when ``|lambda|`` is small
(old tokens are forgotten before the higher orders matter).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from compmech.mixed_states import mixed_states
from hmm_processes import process_vectors

#: Eigenvalues closer than this are one (degenerate) eigenvalue.
EIGEN_TOL = 1e-8
#: Default smallest share of the updates' weight for an eigenvalue to call for a head.
MIN_SHARE = 0.01


@dataclass(frozen=True)
class EigenComponent:
    """One distinct eigenvalue of M with how strongly the one-token updates excite it."""

    eigenvalue: complex
    multiplicity: int
    share: float  # sum_x p_x |u_x's part in this eigenspace|^2 / sum_x p_x |u_x|^2 (0 for lambda = 1)

    @property
    def is_real(self) -> bool:
        return abs(self.eigenvalue.imag) <= EIGEN_TOL

    def to_dict(self) -> dict:
        lam = self.eigenvalue
        return {
            "eigenvalue": float(lam.real) if self.is_real else [float(lam.real), float(lam.imag)],
            "modulus": float(abs(lam)),
            "multiplicity": self.multiplicity,
            "share": float(self.share),
        }


@dataclass(frozen=True)
class Spectrum:
    """The spectrum of ``M = T.sum(0)`` of one process and its one-token update vectors."""

    process: str
    components: tuple[EigenComponent, ...]  # distinct eigenvalues, by modulus (largest first)
    stationary: np.ndarray  # [S] pi
    updates: np.ndarray  # [V, S] u_x = pi T^(x) / p_x - pi
    token_probs: np.ndarray  # [V] p_x

    @property
    def eigenvalues(self) -> np.ndarray:
        """Every eigenvalue with multiplicity, by modulus [S] (complex)."""
        return np.concatenate([[c.eigenvalue] * c.multiplicity for c in self.components])

    def to_dict(self) -> dict:
        return {"process": self.process, "components": [c.to_dict() for c in self.components]}


@dataclass(frozen=True)
class HeadPrediction:
    """One attention head the constrained update calls for."""

    rate: float  # the predicted decay per position of the attention weights, |lambda|
    eigenvalue: float  # the eigenvalue (its real part for a complex pair)
    parity: str  # "all" (lambda > 0), "even" / "odd" (keys at even / odd distance: lambda < 0 or complex)
    share: float  # the eigenvalue's share of the update weight, averaged over the factors (each factor counts 1)
    factors: tuple[int, ...]  # the factors whose updates excite it (0 for a single process)

    def to_dict(self) -> dict:
        return {
            "rate": self.rate,
            "eigenvalue": self.eigenvalue,
            "parity": self.parity,
            "share": self.share,
            "factors": list(self.factors),
        }


def update_vectors(process) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(u [V, S], p [V], pi [S]): each token's one-token update ``pi T^(x) / p_x - pi`` and its probability p_x.

    Tokens of stationary probability 0 get u = 0 (they never occur)."""
    T, pi, tau = process_vectors(process)  # [V, S, S], [S], [S]
    after = np.einsum("s,xst->xt", pi, T)  # [V, S] pi T^(x)
    p = after @ tau  # [V]
    u = np.where(p[:, None] > 0, after / np.where(p > 0, p, 1.0)[:, None] - pi, 0.0)
    return u, p, pi


def spectrum(process, *, name: str | None = None) -> Spectrum:
    """The distinct eigenvalues of M (by modulus), each with the share of the one-token updates it carries."""
    T, _, _ = process_vectors(process)
    M = T.sum(axis=0)  # [S, S]
    u, p, pi = update_vectors(process)
    vals, vecs = np.linalg.eig(M.T)  # columns: left eigenvectors l_j (l_j M = lambda_j l_j)
    coef = np.linalg.lstsq(vecs, u.T.astype(complex), rcond=None)[0]  # [S, V]: u_x = sum_j coef[j, x] l_j
    total = float(np.sum(p * np.sum(u * u, axis=1)))
    order = np.argsort(-np.abs(vals), kind="stable")
    groups: list[list[int]] = []
    for j in order:
        for g in groups:
            if abs(vals[g[0]] - vals[j]) <= EIGEN_TOL * max(1.0, abs(vals[j])) + 1e-9:
                g.append(int(j))
                break
        else:
            groups.append([int(j)])
    comps = []
    for g in groups:
        part = (vecs[:, g] @ coef[g, :]).T  # [V, S]: u_x's part in this eigenspace
        w = float(np.sum(p * np.sum(np.abs(part) ** 2, axis=1)))
        lam = complex(np.mean(vals[g]))
        comps.append(EigenComponent(eigenvalue=lam, multiplicity=len(g), share=w / total if total > 0 else 0.0))
    return Spectrum(
        process=name or getattr(process, "name", "process"),
        components=tuple(comps),
        stationary=pi,
        updates=u,
        token_probs=p,
    )


def predicted_heads(spectra: Sequence[Spectrum], *, min_share: float = MIN_SHARE) -> list[HeadPrediction]:
    """The heads a constrained update needs (see the module docstring), largest rate first.

    ``spectra``: one per factor (a single process: one). Eigenvalues of share < ``min_share`` and the unit
    eigenvalue are skipped; equal eigenvalues of different factors share one head (two for an alternating one)."""
    merged: list[tuple[complex, float, list[int]]] = []
    for k, spec in enumerate(spectra):
        for c in spec.components:
            if c.share < min_share or abs(c.eigenvalue - 1) <= 1e-9:
                continue
            # a complex pair is one oscillation: keep the member with positive imaginary part
            if not c.is_real and c.eigenvalue.imag < 0:
                continue
            for i, (lam, s, fs) in enumerate(merged):
                if abs(lam - c.eigenvalue) <= 1e-6:
                    merged[i] = (lam, s + c.share / len(spectra), fs + [k])
                    break
            else:
                merged.append((c.eigenvalue, c.share / len(spectra), [k]))
    heads = []
    for lam, share, fs in sorted(merged, key=lambda m: -abs(m[0])):
        real = abs(lam.imag) <= EIGEN_TOL
        parities = ("all",) if real and lam.real > 0 else ("even", "odd")
        for parity in parities:
            heads.append(
                HeadPrediction(
                    rate=float(abs(lam)),
                    eigenvalue=float(lam.real),
                    parity=parity,
                    share=float(share),
                    factors=tuple(fs),
                )
            )
    return heads


def constrained_beliefs(process, tokens: np.ndarray) -> np.ndarray:
    """The first-order (constrained, "attention-only") belief ``pi + sum_{s<=t} u_{x_s} M^(t-s)`` at every position.

    tokens [N, T] ints -> [N, T, S] float64. A linear function of the token history (not a probability vector in
    general: it can leave the simplex). Computed by the recursion ``c_t = c_{t-1} M + u_{x_t}``, ``c_{-1} = 0``."""
    T, _, _ = process_vectors(process)
    M = T.sum(axis=0)
    u, _, pi = update_vectors(process)
    tok = np.asarray(tokens)
    if tok.ndim != 2:
        raise ValueError(f"tokens must be [N, T] ints; got shape {tok.shape}")
    if tok.size and (tok.min() < 0 or tok.max() >= u.shape[0]):
        raise ValueError(
            f"tokens must be in 0..{u.shape[0] - 1} (the process's vocabulary); got values "
            f"{int(tok.min())}..{int(tok.max())}"
        )
    N, L = tok.shape
    out = np.empty((N, L, M.shape[0]))  # [N, T, S]
    c = np.zeros((N, M.shape[0]))
    for t in range(L):
        c = c @ M + u[tok[:, t]]
        out[:, t] = pi + c
    return out


def factor_tokens(tokens: np.ndarray, vocab_sizes: Sequence[int]) -> list[np.ndarray]:
    """A product's tokens [N, T] -> each factor's tokens (row-major, as `hmm_processes.product` numbers them)."""
    out, rest = [], np.asarray(tokens)
    for v in reversed(vocab_sizes):
        out.append(rest % v)
        rest = rest // v
    return out[::-1]


def constrained_factor_beliefs(factors: Sequence, tokens: np.ndarray) -> np.ndarray:
    """Each factor's constrained belief from a product's tokens, concatenated: [N, T, sum S_k]."""
    parts = factor_tokens(tokens, [process_vectors(f)[0].shape[0] for f in factors])
    return np.concatenate([constrained_beliefs(f, t) for f, t in zip(factors, parts)], axis=-1)


@dataclass(frozen=True)
class ReadoutDecay:
    """How the exact belief depends on past tokens, in the best linear readout of the token history.

    The least-squares fit (weighted by word probability) of the belief after a length-L word on the one-hot
    tokens at each distance d from its end: block ``B_d`` [V, S] of the coefficients, each centred over tokens.
    ``coefficient[d]`` is ``<B_d, B_0> / |B_0|`` (signed: an alternating eigenvalue alternates it), ``rate`` the
    signed geometric rate of ``coefficient`` over ``1 <= d <= L - 2`` (the last distance, the word's first token,
    read from the prior, is left out). This is the decay an attention layer followed by a linear map would use to
    approximate the belief best; it equals the first-order ``lambda`` when the updates are small and falls below it
    when tokens are informative (newer evidence overrides older: the normalisation the first order drops)."""

    rate: float
    coefficient: np.ndarray  # [L] by distance d = 0..L-1

    def to_dict(self) -> dict:
        return {"rate": self.rate, "coefficient": [float(c) for c in self.coefficient]}


def readout_decay(process, length: int = 8) -> ReadoutDecay:
    """`ReadoutDecay` of a process over every allowed word of ``length`` (>= 4) tokens (exact enumeration)."""
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 4:
        raise ValueError(f"length must be an integer >= 4 (distances 1..length-2 are fitted); got {length!r}")
    level = mixed_states(process, int(length)).level(int(length))
    words, w, Y = level.words, level.probs / level.probs.sum(), level.beliefs  # [N, L], [N], [N, S]
    N, L = words.shape
    V = process_vectors(process)[0].shape[0]
    X = np.zeros((N, L * V))
    X[np.arange(N)[:, None], np.arange(L) * V + words] = 1.0  # one-hot token at each position
    Xc, Yc = X - w @ X, Y - w @ Y
    sw = np.sqrt(w)[:, None]
    B = np.linalg.lstsq(Xc * sw, Yc * sw, rcond=None)[0].reshape(L, V, -1)[::-1]  # [distance, V, S]
    B = B - B.mean(axis=1, keepdims=True)
    ref = B[0].ravel() / np.linalg.norm(B[0])
    coef = np.array([float(b.ravel() @ ref) for b in B])  # [L]
    d = np.arange(1, L - 1)
    slope = np.polyfit(d, np.log(np.maximum(np.abs(coef[d]), 1e-300)), 1)[0]
    sign = float(np.sign(np.median(np.sign(coef[d[1:]] * coef[d[:-1]])))) or 1.0
    return ReadoutDecay(rate=sign * float(np.exp(slope)), coefficient=coef)


@dataclass(frozen=True)
class ProcessPrediction:
    """Everything the process alone predicts about the first attention layer, fixed before a model is read."""

    spectra: tuple[Spectrum, ...]  # one per factor (a single process: one)
    joint: Spectrum  # the process's own spectrum (a product's: the products of its factors' eigenvalues)
    heads: tuple[HeadPrediction, ...]  # the heads the constrained update calls for, largest rate first
    readouts: tuple[ReadoutDecay, ...]  # the exact readout decay of each factor
    # per predicted head: the readout rate of its factors (mean |rate|), None when one of them excites several
    # eigenvalues (its readout then mixes their decays)
    readout_of: tuple[float | None, ...]

    @property
    def rates(self) -> tuple[float, ...]:
        """The predicted decay rate of each predicted head (first order: |lambda|)."""
        return tuple(p.rate for p in self.heads)


def process_prediction(
    process, factors: Sequence | None = None, *, min_share: float = MIN_SHARE, readout_length: int = 8
) -> ProcessPrediction:
    """The predicted heads and their decay rates from the process alone (``factors``: a product's factors; None:
    the process itself): the first-order rate |lambda| of each (`predicted_heads`) and, beside it, the exact readout
    rate of its factors (`readout_decay`). Nothing here reads a model."""
    factors = [process] if factors is None else list(factors)
    spectra = [spectrum(f) for f in factors]
    heads = predicted_heads(spectra, min_share=min_share)
    joint = spectrum(process) if len(factors) > 1 else spectra[0]
    readouts = [readout_decay(f, readout_length) for f in factors]
    n_eig = [len({p.eigenvalue for p in heads if k in p.factors}) for k in range(len(factors))]
    readout_of = [
        None if any(n_eig[k] > 1 for k in p.factors) else float(np.mean([abs(readouts[k].rate) for k in p.factors]))
        for p in heads
    ]
    return ProcessPrediction(
        spectra=tuple(spectra), joint=joint, heads=tuple(heads), readouts=tuple(readouts), readout_of=tuple(readout_of)
    )
