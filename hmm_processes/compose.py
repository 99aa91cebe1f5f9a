"""Compositions of processes: non-ergodic mixtures (one component per sequence), independent products, and
products whose second factor depends on the first's hidden state (coupled products).

All work on `HMM` and `GeneralizedHMM`; the result is a GHMM if any component is one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hmm_processes.errors import ProcessError
from hmm_processes.generalized import GeneralizedHMM, process_vectors
from hmm_processes.hmm import HMM, check_probability_vector

Process = HMM | GeneralizedHMM


def mixture(
    processes: Sequence[Process],
    weights: Sequence[float] | None = None,
    *,
    name: str | None = None,
    vocab_maps: Sequence[Sequence[int]] | None = None,
) -> Process:
    """Non-ergodic mixture: each sequence comes from component k, chosen once with probability ``weights[k]``.

    As an HMM: block-diagonal ``T[x] = diag(T_1[x], ..., T_K[x])`` (states of component 1 first)
    and prior ``concat(weights[k] * pi_k)``. That prior is a stationary distribution of the block
    chain but not the only one, so it is stored explicitly (`HMM.prior`): sampling and the exact
    theory (mixed states, optimal loss by position) start from it, so a belief carries the
    posterior over components (`component_posterior`). Without ``vocab_maps`` all components must have the
    same number of tokens; ``weights`` default to uniform.

    ``vocab_maps`` (one per component): component ``k`` emits its token ``a`` as the shared token
    ``vocab_maps[k][a]``, so ``T[vocab_maps[k][a]]`` holds ``T_k[a]`` in block ``k``; the shared vocabulary
    has ``max over the maps + 1`` tokens (a token no component emits is allowed, with probability 0). This is
    simplexity's ``build_nonergodic_transition_matrices`` (simplexity/generative_processes/builder.py at commit
    657aff777cd7d7a6edfadd1f846bbf62028caeec), except that a map with a repeated token is refused here (there
    the later token's matrix silently overwrites the earlier one's). A token that only some components emit
    identifies them: seeing it sets the posterior of the others to 0.

    ``params`` records ``components`` (each component's name and parameters), ``weights``,
    ``component_states`` (the number of states of each component, i.e. the sizes of the diagonal
    blocks, in order), which `component_posterior` reads, and ``vocab_maps`` when given.
    """
    procs = _check_processes(processes, "mixture")
    maps = None if vocab_maps is None else _check_vocab_maps(vocab_maps, procs)
    V = procs[0].vocab_size if maps is None else 1 + max(max(m) for m in maps)
    for k, p in enumerate(procs):
        if maps is None and p.vocab_size != V:
            raise ProcessError(
                f"mixture: component {k} ({p.name}) has {p.vocab_size} tokens but component 0 has {V}; "
                "mixed processes must share one token alphabet (or give vocab_maps, one per component)"
            )
    K = len(procs)
    w = np.full(K, 1.0 / K) if weights is None else _check_weights(weights, K)
    sizes = [p.num_states for p in procs]
    S = sum(sizes)
    T = np.zeros((V, S, S))
    pi = np.zeros(S)
    tau = np.zeros(S)
    off = 0
    for k, (p, wk, n) in enumerate(zip(procs, w, sizes)):
        Tk, pik, tauk = process_vectors(p)
        to = np.arange(V) if maps is None else np.asarray(maps[k])  # [V_k] component token -> shared token
        T[to, off : off + n, off : off + n] = Tk
        pi[off : off + n] = wk * pik
        tau[off : off + n] = tauk
        off += n
    label = name or "mixture(" + ", ".join(p.name for p in procs) + ")"
    params = {"components": [_describe(p) for p in procs], "weights": w.tolist(), "component_states": sizes}
    if maps is not None:
        params["vocab_maps"] = [list(m) for m in maps]
    state_names = tuple(f"{k}:{s}" for k, p in enumerate(procs) for s in _state_names(p))
    tokens = procs[0].token_names if maps is None else _mapped_token_names(procs, maps, V)
    if any(isinstance(p, GeneralizedHMM) for p in procs):
        return GeneralizedHMM(
            T,
            name=label,
            params=params,
            state_names=state_names,
            token_names=tokens,
            normalizer=tau,
            prior=pi,
        )
    return HMM(T, name=label, params=params, state_names=state_names, token_names=tokens, prior=pi)


def component_posterior(process: Process, beliefs: np.ndarray) -> np.ndarray:
    """The posterior over a `mixture`'s components given beliefs over its states: ``[..., S] -> [..., K]``.

    The mixture's state space is the union of its components' (block ``k`` holds component ``k``'s
    states), so ``P(component k | w) = sum over i in block k of eta_w[i] tau[i]``, with ``tau`` the
    mixture's normalizer (all ones for an HMM; for a GHMM ``eta_w @ tau = 1``). At the empty
    context it is ``weights``; it sharpens as the context identifies the component (in-context
    learning). Raises `ProcessError` if ``process`` is not a mixture or ``beliefs`` have the wrong size.
    """
    sizes = process.params.get("component_states") if isinstance(process.params, dict) else None
    if sizes is None:
        raise ProcessError(
            f"component_posterior: {process.name!r} is not a mixture (its params have no "
            "component_states); build it with hmm_processes.mixture"
        )
    b = np.asarray(beliefs, dtype=np.float64)  # [..., S]
    S = process.num_states
    if b.ndim < 1 or b.shape[-1] != S or sum(sizes) != S:
        raise ProcessError(
            f"component_posterior: beliefs must have shape [..., {S}] (one entry per state of "
            f"{process.name!r}); got shape {b.shape}"
        )
    _, _, tau = process_vectors(process)  # [S]
    edges = np.cumsum([0, *sizes])
    return np.stack([(b[..., a:z] * tau[a:z]).sum(axis=-1) for a, z in zip(edges[:-1], edges[1:])], axis=-1)


def product(processes: Sequence[Process], *, name: str | None = None) -> Process:
    """Independent product: at each step every component emits one token; the emitted token is the tuple.

    Token and state indices are row-major over the components: for two components with V2 tokens
    and S2 states, token ``(x1, x2)`` is ``x1 * V2 + x2`` and state ``(i1, i2)`` is ``i1 * S2 + i2``.
    ``T[(x1, x2)] = kron(T_1[x1], T_2[x2])``; the prior is the Kronecker product of the components'.
    """
    procs = _check_processes(processes, "product")
    T, pi, tau = process_vectors(procs[0])
    for p in procs[1:]:
        T2, pi2, tau2 = process_vectors(p)
        V1, S1, _ = T.shape
        V2, S2, _ = T2.shape
        T = np.einsum("aij,bkl->abikjl", T, T2).reshape(V1 * V2, S1 * S2, S1 * S2)
        pi = np.kron(pi, pi2)
        tau = np.kron(tau, tau2)
    label = name or "product(" + ", ".join(p.name for p in procs) + ")"
    params = {"components": [_describe(p) for p in procs]}
    tok = _product_names([_token_names(p) for p in procs])
    st = _product_names([_state_names(p) for p in procs])
    if any(isinstance(p, GeneralizedHMM) for p in procs):
        return GeneralizedHMM(T, name=label, params=params, state_names=st, token_names=tok, normalizer=tau, prior=pi)
    # The product of periodic chains can have several recurrent classes, so the product of the
    # components' stationary distributions is stored explicitly.
    return HMM(T, name=label, params=params, state_names=st, token_names=tok, prior=pi)


def factor_beliefs(beliefs: np.ndarray, factors: Sequence[Process]) -> list[np.ndarray]:
    """Each factor's belief from beliefs over a product's states: ``[..., prod S_k] -> [[..., S_k] per factor]``.

    The product's states are row-major over the factors (see `product`), so factor ``k``'s marginal is the
    joint belief reshaped to ``[..., S_1, ..., S_K]`` with every other axis ``j`` contracted with that factor's
    normalizer ``tau_j`` (a sum for an HMM factor): ``eta_k = sum_{i_j, j != k} eta[i_1..i_K] prod_j tau_j[i_j]``.
    For an independent product the joint belief is the Kronecker product of the factors' beliefs and this
    returns each factor's own belief given its own tokens; for a coupled product it is still the factor's
    marginal (its rows then depend on the other factors' tokens too).
    """
    procs = _check_processes(factors, "factor_beliefs")
    sizes = [p.num_states for p in procs]
    b = np.asarray(beliefs, dtype=np.float64)
    if b.ndim < 1 or b.shape[-1] != int(np.prod(sizes)):
        raise ProcessError(
            f"factor_beliefs: beliefs must have shape [..., {int(np.prod(sizes))}] (the product of "
            f"the factors' state counts {sizes}); got shape {b.shape}"
        )
    taus = [process_vectors(p)[2] for p in procs]
    joint = b.reshape(*b.shape[:-1], *sizes)  # [..., S_1, ..., S_K]
    lead = b.ndim - 1
    out = []
    for k in range(len(procs)):
        m = joint
        for j in reversed(range(len(procs))):  # contract from the last axis so the axis numbers stay valid
            if j != k:
                m = np.tensordot(m, taus[j], axes=([lead + j], [0]))
        out.append(m)
    return out


def coupled_product(
    first: HMM, second_by_state: Sequence[Process], *, name: str | None = None, params: dict | None = None
) -> Process:
    """A product whose second factor's dynamics depend on the first factor's hidden state: a hidden dependence.

    ``second_by_state[i]`` is the second factor's process (the same tokens, states and normalizer for every
    ``i``) used at a step where the first factor is in state ``i``:
    ``T[(a, b)][(i1, i2), (j1, j2)] = T_1[a][i1, j1] * T_2^(i1)[b][i2, j2]``. When every entry is the same
    process this is exactly `product([first, second])`. The dependence goes through a hidden state, so given
    the tokens the two factors' states are no longer independent (a dependence through the first factor's
    tokens alone would keep them so: both are then functions of what was observed). The first factor must be
    an HMM (a GHMM's quasi-states have no such meaning); the prior is the joint chain's stationary vector.
    """
    if not isinstance(first, HMM):
        raise ProcessError(
            f"coupled_product: the first factor must be an HMM (got {type(first).__name__}); its "
            "hidden state drives the second factor"
        )
    seconds = _check_processes(second_by_state, "coupled_product")
    if len(seconds) != first.num_states:
        raise ProcessError(
            f"coupled_product: second_by_state needs one process per state of the first factor "
            f"({first.num_states}); got {len(seconds)}"
        )
    T2s, _, tau2 = zip(*(process_vectors(p) for p in seconds))
    if len({t.shape for t in T2s}) != 1 or any(not np.allclose(t, tau2[0]) for t in tau2):
        raise ProcessError(
            "coupled_product: every process of second_by_state must have the same tokens, states "
            "and normalizer (one factor whose parameters depend on the first factor's state)"
        )
    T1 = first.T
    V1, S1, _ = T1.shape
    V2, S2, _ = T2s[0].shape
    T2 = np.stack(T2s)  # [S1, V2, S2, S2]
    T = np.einsum("aij,ibkl->abikjl", T1, T2).reshape(V1 * V2, S1 * S2, S1 * S2)
    label = name or f"coupled_product({first.name}, {seconds[0].name})"
    info = {"components": [_describe(first), _describe(seconds[0])], **(params or {})}
    tok = _product_names([_token_names(first), _token_names(seconds[0])])
    st = _product_names([_state_names(first), _state_names(seconds[0])])
    if isinstance(seconds[0], GeneralizedHMM):
        tau = np.kron(np.ones(S1), tau2[0])
        values, vectors = np.linalg.eig(T.sum(0).T)  # the stationary vector: pi M = pi, pi tau = 1
        pi = np.real(vectors[:, np.argmin(np.abs(values - 1.0))])
        return GeneralizedHMM(
            T, name=label, params=info, state_names=st, token_names=tok, normalizer=tau, prior=pi / (pi @ tau)
        )
    return HMM(T, name=label, params=info, state_names=st, token_names=tok)


def shift_coupled(first: HMM, second: HMM, epsilon: float, *, name: str | None = None) -> HMM:
    """`coupled_product` with a hidden dependence of strength ``epsilon`` in [0, 1]: after each step, with
    probability ``epsilon`` the second factor's hidden state is moved on cyclically by the first factor's state
    ``i``, ``T_2^(i)[b] = T_2[b] @ ((1 - epsilon) I + epsilon P^i)`` with ``P`` the cyclic shift of the second
    factor's states (state s -> s + 1 mod S_2). Every ``T_2^(i)`` is a valid HMM; ``epsilon = 0`` is the
    independent product (identical word probabilities); as ``epsilon`` grows the second factor's state depends
    on the first's hidden state, so the joint belief stops being the product of the factors' beliefs. Both
    factors must be HMMs (a cyclic shift of a GHMM's quasi-states would not keep its normalizer).
    """
    for which, proc in (("first", first), ("second", second)):
        if not isinstance(proc, HMM):
            raise ProcessError(f"shift_coupled: the {which} factor must be an HMM (got {type(proc).__name__})")
    e = float(epsilon)
    if not 0.0 <= e <= 1.0:
        raise ProcessError(f"shift_coupled: epsilon must be in [0, 1]; got {epsilon!r}")
    S2 = second.num_states
    shift = np.roll(np.eye(S2), 1, axis=1)  # P[s, s + 1] = 1
    seconds = [
        HMM(
            np.einsum("bij,jk->bik", second.T, (1.0 - e) * np.eye(S2) + e * np.linalg.matrix_power(shift, i)),
            name=second.name,
            params=second.params,
            state_names=second.state_names,
            token_names=second.token_names,
        )
        for i in range(first.num_states)
    ]
    coupled = coupled_product(
        first, seconds, name=name or f"shift_coupled({first.name}, {second.name}, {e:g})", params={"epsilon": e}
    )
    assert isinstance(coupled, HMM)  # every factor is an HMM, so the product is one
    return coupled


def _check_processes(processes: Sequence[Process], what: str) -> list[Process]:
    procs = list(processes)
    if not procs:
        raise ProcessError(f"{what}: needs at least one process")
    for k, p in enumerate(procs):
        if not isinstance(p, (HMM, GeneralizedHMM)):
            raise ProcessError(f"{what}: component {k} is a {type(p).__name__}, not an HMM or GeneralizedHMM")
    return procs


def _check_vocab_maps(vocab_maps: Sequence[Sequence[int]], procs: list[Process]) -> list[tuple[int, ...]]:
    """Each map as a tuple of distinct integers >= 0, one per token of its component; `ProcessError` otherwise."""
    maps = list(vocab_maps)
    if len(maps) != len(procs):
        raise ProcessError(
            f"mixture: vocab_maps has {len(maps)} maps but there are {len(procs)} components; give one per component"
        )
    out = []
    for k, (m, p) in enumerate(zip(maps, procs)):
        if isinstance(m, (str, bytes)) or not hasattr(m, "__len__"):
            raise ProcessError(f"mixture: vocab_maps[{k}] must be a list of token ids; got {m!r}")
        ids = list(m)
        if len(ids) != p.vocab_size:
            raise ProcessError(
                f"mixture: vocab_maps[{k}] has {len(ids)} entries but component {k} ({p.name}) has {p.vocab_size} "
                "tokens; give one shared token id per token of the component, in order"
            )
        bad = [x for x in ids if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)) or x < 0]
        if bad:
            raise ProcessError(f"mixture: vocab_maps[{k}] holds {bad[0]!r}; token ids must be integers >= 0")
        dup = sorted({int(x) for x in ids if ids.count(x) > 1})
        if dup:
            raise ProcessError(
                f"mixture: vocab_maps[{k}] sends two of component {k}'s tokens to shared token {dup[0]}; a map must "
                "send distinct tokens to distinct ids"
            )
        out.append(tuple(int(x) for x in ids))
    return out


def _mapped_token_names(procs: list[Process], maps: list[tuple[int, ...]], V: int) -> tuple[str, ...]:
    """The shared tokens' names: the components' names for it, joined with "|" where they differ (e.g. "name|name"
    becomes "name" but "A|B" stays), each suffixed with the components that emit it when not all do ("name[0]"),
    and "unused<i>" for an id no component emits."""
    names: list[str] = []
    for x in range(V):
        who = [(k, _token_names(p)[m.index(x)]) for k, (p, m) in enumerate(zip(procs, maps)) if x in m]
        if not who:
            names.append(f"unused{x}")
            continue
        label = "|".join(dict.fromkeys(n for _, n in who))
        if len(who) < len(procs):
            label += "[" + ",".join(str(k) for k, _ in who) + "]"
        names.append(label)
    return tuple(names)


def _check_weights(weights: Sequence[float], K: int) -> np.ndarray:
    return check_probability_vector(weights, K, "mixture: weights", unit="component")


def _describe(p: Process) -> dict:
    return {"name": p.name, **{k: v for k, v in p.params.items()}}


def _state_names(p: Process) -> tuple[str, ...]:
    return p.state_names if p.state_names is not None else tuple(str(i) for i in range(p.num_states))


def _token_names(p: Process) -> tuple[str, ...]:
    return p.token_names if p.token_names is not None else tuple(str(i) for i in range(p.vocab_size))


def _product_names(parts: list[tuple[str, ...]]) -> tuple[str, ...]:
    names: list[str] = [""]
    for k, part in enumerate(parts):
        names = [f"{a},{b}" if k else b for a in names for b in part]
    return tuple(f"({n})" for n in names)
