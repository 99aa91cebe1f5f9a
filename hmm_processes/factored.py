"""Products of N factors with a dependency structure between them, as one joint HMM or GHMM (exact theory runs on it).

The structures are those of the authors' code (the simplexity library, Astera-org/simplexity at commit
902411a3d7a03593e8f430a83ccc573b454838bb: ``simplexity/generative_processes/builder.py`` ``build_factored_process``
and ``simplexity/generative_processes/structures/``). Each factor ``i`` has one or more *variants* (processes with the
same tokens, states and normalizer); at each step the factors' tokens ``t = (t_0, ..., t_{N-1})`` are emitted
together (the joint token is row-major over the factors, factor 0 most significant, as simplexity's ``TokenEncoder``)
and each factor moves on with the variant its structure selects:

- ``"independent"``: one variant per factor; ``T[t] = kron_i T_i[t_i]`` (`hmm_processes.product`).
- ``"chain"`` (simplexity's ``SequentialConditional``): factor 0 uses variant 0, factor ``i > 0`` the variant
  ``control_maps[i][t_{i-1}]`` chosen by its parent's token *of the same step*, for both its emission and its
  transition: ``T[t] = kron_i T_i^(k_i(t))[t_i]``. HMM and GHMM factors alike; the dependence goes through tokens,
  so from a product of the factors' beliefs the joint belief stays a product (simplexity's per-factor recursion is
  then exact: tested).
- ``"symmetric"`` (``FullyConditional``): factor ``i`` uses ``control_maps[i][t_{-i}]`` chosen by all the *other*
  factors' tokens (row-major over ``j != i``); the joint emission is the normalized product of experts
  ``P(t | s) = prod_i P_i^(k_i(t_{-i}))(t_i | s_i) / Z(s)``. simplexity normalizes that product over the factors'
  *beliefs* (``Z(b)``), which is not a finite HMM; here it is normalized per joint hidden state (``Z(s)``), which is
  an HMM: ``T[t][s, s'] = kron_i T_i^(k_i)[t_i][s_i, s_i'] / Z(s)``. The two agree on one step from a point-mass
  state (tested) and differ after; given the tokens the factors' states are no longer independent here. HMM factors
  only (a GHMM's quasi-states have no per-state normalization).
- ``"transition_coupled"`` (``ConditionalTransitions`` with independent emissions): factor ``i`` emits with its fixed
  variant ``emission_variants[i]`` and moves with the variant ``control_maps[i][t_{-i}]`` chosen by the other
  factors' tokens: ``T[t][s, s'] = kron_i diag(e_i[t_i]) P_i^(k_i)(. | ., t_i)`` with ``e_i[x][s] =
  (T_i^(emission)[x] 1)[s]`` and ``P_i^(k)(s' | s, x) = T_i^(k)[x][s, s'] / (T_i^(k)[x] 1)[s]``, the hidden-state
  reading of simplexity's belief update ``b T^(k)[x] / (b T^(k)[x] 1)``; the two agree exactly when every variant
  emits each token from each state with the same probability (tested), and differ otherwise. HMM factors only.
  simplexity's optional sequential emissions (``emission_control_maps``) are not implemented.

simplexity has no noise parameter on these structures (no ``noise_epsilon`` anywhere in its history): the hidden
dependence of `hmm_processes.shift_coupled` (strength epsilon) is compmech's own.

The joint process starts from its own stationary distribution (a stationary process: what compmech's theory and
sampler assume); simplexity starts each factor from its own stationary vector, a product, which for a coupled
structure is not stationary. ``params`` records ``components`` (each factor's variant 0), ``variants`` (each
factor's variants), ``structure``,
``control_maps`` and ``emission_variants``.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from functools import reduce

import numpy as np

from hmm_processes.compose import _describe, _product_names, _state_names, _token_names
from hmm_processes.errors import ProcessError
from hmm_processes.generalized import GeneralizedHMM, process_vectors
from hmm_processes.hmm import HMM

Process = HMM | GeneralizedHMM

#: The dependency structures (simplexity's ``structure_type`` names).
STRUCTURES = ("independent", "chain", "symmetric", "transition_coupled")


def other_index(tokens: Sequence[int], i: int, vocab_sizes: Sequence[int]) -> int:
    """The row-major index of the other factors' tokens ``t_{-i}`` (factor ``i`` left out, the first most
    significant): the index into ``control_maps[i]`` of the symmetric and transition-coupled structures."""
    idx = 0
    for j, (t, v) in enumerate(zip(tokens, vocab_sizes)):
        if j != i:
            idx = idx * v + int(t)
    return idx


def factored_process(
    factors: Sequence[Sequence[Process]],
    structure: str = "independent",
    *,
    control_maps: Sequence[Sequence[int] | None] | None = None,
    emission_variants: Sequence[int] | None = None,
    name: str | None = None,
) -> Process:
    """The joint HMM (a GHMM if any factor is one) of ``factors`` (each a list of its variants) under ``structure``.

    See the module docstring for each structure and its parameters: ``control_maps[i]`` (a list of variant
    indices of factor ``i``: length ``V_{i-1}`` for "chain", ``control_maps[0]`` empty; length ``prod_{j != i}
    V_j`` for "symmetric" and "transition_coupled"), ``emission_variants[i]`` (transition_coupled). Bad structure
    parameters raise `ProcessError` in one line naming the entry and the fix.
    """
    facs = _check_factors(factors)
    if structure not in STRUCTURES:
        raise ProcessError(f"factored_process: structure must be one of {', '.join(STRUCTURES)}; got {structure!r}")
    N = len(facs)
    V = [f[0].vocab_size for f in facs]
    K = [len(f) for f in facs]
    Ts = [np.stack([process_vectors(p)[0] for p in f]) for f in facs]  # N x [K_i, V_i, S_i, S_i]
    taus = [process_vectors(f[0])[2] for f in facs]
    generalized = any(isinstance(p, GeneralizedHMM) for f in facs for p in f)
    maps = _check_structure(structure, control_maps, emission_variants, V, K, generalized)
    emit = tuple(int(e) for e in emission_variants) if structure == "transition_coupled" and emission_variants else ()

    def variant(i: int, t: tuple[int, ...]) -> int:
        if structure == "independent" or (structure == "chain" and i == 0):
            return 0
        if structure == "chain":
            return maps[i][t[i - 1]]
        return maps[i][other_index(t, i, V)]

    def block(i: int, t: tuple[int, ...]) -> np.ndarray:  # [S_i, S_i] factor i's matrix at joint token t
        Tk = Ts[i][variant(i, t), t[i]]
        if structure != "transition_coupled":
            return Tk
        e = Ts[i][emit[i], t[i]].sum(axis=1)  # [S_i] P(t_i | s_i) under the emission variant
        rows = Tk.sum(axis=1)  # [S_i]
        bad = np.flatnonzero((rows <= 0) & (e > 0))
        if bad.size:
            raise ProcessError(
                f"factored_process: factor {i}'s transition variant {variant(i, t)} never emits token {t[i]} from "
                f"state {bad[0]}, which its emission variant {emit[i]} emits; choose variants with the same support"
            )
        P = np.divide(Tk, rows[:, None], out=np.zeros_like(Tk), where=rows[:, None] > 0)
        return e[:, None] * P

    tokens = list(itertools.product(*(range(v) for v in V)))  # row-major, factor 0 most significant
    T = np.stack([reduce(np.kron, [block(i, t) for i in range(N)]) for t in tokens])  # [prod V, prod S, prod S]
    if structure == "symmetric":
        Z = T.sum(axis=(0, 2))  # [prod S] the product of experts' mass from each joint hidden state
        if np.any(Z <= 0):
            raise ProcessError(
                "factored_process: under these control_maps some joint state emits no token (the product of experts "
                "is 0 everywhere); choose control maps whose variants share support"
            )
        T = T / Z[None, :, None]
    tau = reduce(np.kron, taus)
    label = name or f"factored_{structure}(" + ", ".join(f[0].name for f in facs) + ")"
    params = {
        "components": [_describe(f[0]) for f in facs],  # each factor's variant 0
        "variants": [[_describe(p) for p in f] for f in facs],
        "structure": structure,
        "control_maps": [list(m) for m in maps],
        "emission_variants": list(emit),
    }
    tok = _product_names([_token_names(f[0]) for f in facs])
    st = _product_names([_state_names(f[0]) for f in facs])
    pi = _stationary(T, tau, label, clip=not generalized)
    if generalized:
        return GeneralizedHMM(T, name=label, params=params, state_names=st, token_names=tok, normalizer=tau, prior=pi)
    return HMM(T, name=label, params=params, state_names=st, token_names=tok, prior=pi)


def _stationary(T: np.ndarray, tau: np.ndarray, what: str, *, clip: bool) -> np.ndarray:
    """The joint chain's stationary vector ``pi M = pi, pi tau = 1`` (M = sum of T over tokens); one clear line if
    eigenvalue 1 is repeated (several recurrent classes: the structure leaves the process non-ergodic)."""
    values, vectors = np.linalg.eig(T.sum(0).T)
    close = np.flatnonzero(np.abs(values - 1.0) < 1e-9)
    if close.size != 1:
        raise ProcessError(
            f"{what}: the joint chain has {close.size} stationary distributions (eigenvalue 1 of T.sum(0) "
            "repeated or missing); choose factors or control maps that keep it ergodic"
        )
    pi = np.real(vectors[:, close[0]])
    pi = pi / (pi @ tau)
    if clip:  # an HMM: a probability vector up to round-off
        pi = np.clip(pi, 0.0, None)
        pi = pi / pi.sum()
    return pi


def _check_factors(factors: Sequence[Sequence[Process]]) -> list[list[Process]]:
    facs = [list(f) for f in factors]
    if not facs:
        raise ProcessError("factored_process: needs at least one factor (a list of variants)")
    for i, f in enumerate(facs):
        if not f:
            raise ProcessError(f"factored_process: factor {i} has no variants; give at least one process")
        for k, p in enumerate(f):
            if not isinstance(p, (HMM, GeneralizedHMM)):
                raise ProcessError(f"factored_process: factor {i} variant {k} is a {type(p).__name__}, not an HMM")
            T0, _, tau0 = process_vectors(f[0])
            T, _, tau = process_vectors(p)
            if T.shape != T0.shape or type(p) is not type(f[0]) or not np.allclose(tau, tau0):
                raise ProcessError(
                    f"factored_process: factor {i} variant {k} ({p.name}) differs from variant 0 ({f[0].name}) in "
                    "tokens, states, type or normalizer; a factor's variants share all four"
                )
    return facs


def _check_structure(
    structure: str,
    control_maps: Sequence[Sequence[int] | None] | None,
    emission_variants: Sequence[int] | None,
    V: list[int],
    K: list[int],
    generalized: bool,
) -> list[list[int]]:
    """The control maps as lists of ints (empty for a factor without one), each checked; one line per problem."""
    N = len(V)
    if structure in ("symmetric", "transition_coupled") and generalized:
        raise ProcessError(
            f'factored_process: structure "{structure}" needs HMM factors (its per-state normalization has no meaning '
            'for a GHMM\'s quasi-states); use structure "chain" for a generalized factor'
        )
    if structure == "independent":
        if control_maps or emission_variants:
            raise ProcessError('factored_process: structure "independent" takes no control_maps or emission_variants')
        many = [i for i, k in enumerate(K) if k != 1]
        if many:
            raise ProcessError(
                f'factored_process: structure "independent" uses one variant per factor; factor {many[0]} has '
                f"{K[many[0]]}"
            )
        return [[] for _ in V]
    if N < 2:
        raise ProcessError(f'factored_process: structure "{structure}" couples factors; give at least two')
    if control_maps is None or len(control_maps) != N:
        got = "none" if control_maps is None else len(control_maps)
        raise ProcessError(
            f'factored_process: structure "{structure}" needs control_maps, one list per factor ({N}); got {got}'
        )
    if emission_variants is not None and structure != "transition_coupled":
        raise ProcessError(
            f'factored_process: emission_variants are for structure "transition_coupled", not "{structure}"'
        )
    maps = []
    for i, m in enumerate(control_maps):
        m = [] if m is None else list(m)
        if structure == "chain":
            need = 0 if i == 0 else V[i - 1]
            why = "factor 0 is the root (give [])" if i == 0 else f"one variant per token of factor {i - 1}"
        else:
            need = int(np.prod([v for j, v in enumerate(V) if j != i]))
            why = "one variant per joint token of the other factors, row-major"
        if len(m) != need:
            raise ProcessError(
                f"factored_process: control_maps[{i}] has {len(m)} entries; structure {structure!r} needs "
                f"{need} ({why})"
            )
        bad = [x for x in m if isinstance(x, bool) or not isinstance(x, (int, np.integer)) or not 0 <= x < K[i]]
        if bad:
            raise ProcessError(
                f"factored_process: control_maps[{i}] holds {bad[0]!r}; entries are variant indices of factor {i}, "
                f"integers in [0, {K[i]})"
            )
        maps.append([int(x) for x in m])
    if structure == "transition_coupled":
        if emission_variants is None or len(emission_variants) != N:
            raise ProcessError(
                f'factored_process: structure "transition_coupled" needs emission_variants, one variant index per '
                f"factor ({N})"
            )
        for i, e in enumerate(emission_variants):
            if isinstance(e, bool) or not isinstance(e, (int, np.integer)) or not 0 <= e < K[i]:
                raise ProcessError(
                    f"factored_process: emission_variants[{i}] = {e!r}; it must be a variant index of factor {i} in "
                    f"[0, {K[i]})"
                )
    return maps
