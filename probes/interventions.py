"""Array math of causal interventions along a linear probe: the belief subspace, steering deltas, ablations and
their controls (NumPy only; running the model with the edited residual is `predictive_models.interventions`).

A fitted probe reads ``y = x @ coef + intercept`` (``coef`` [d, S], ``intercept`` [S]) from an activation ``x``
[d]. When its targets are beliefs on a simplex (each row sums to 1) and the probe has an intercept, ``coef @ 1 = 0``
(the intercept absorbs the sum), so the probe reads a subspace of dimension at most S - 1: the column space of
``coef`` after the all-ones direction is projected out, the *belief subspace* (`probe_subspace`).

- Steering (`steering_delta`): the minimal-norm delta ``Δ`` with ``(x + Δ) @ coef + intercept = η′``, i.e.
  ``Δ = (η′ − ŷ(x)) @ pinv(coef)``; it lies in the belief subspace.
- The encoding alternative (`encoding_map`, `encoding_delta`): regress the activations on the beliefs,
  ``x ≈ c + η W`` (``W`` [S, d]), and move by ``Δ = (η′ − ŷ) W``: along the directions in which the activations
  actually vary with the belief. The probe's minimal-norm delta lies in the *decoding* directions
  (``coef = Σ_x⁻¹ Cov(x, η)``), which a least-squares fit tilts toward low-variance directions that correlate with
  the belief; the two subspaces coincide only when the activations hold nothing but the belief (plus a constant).
  `encoding_subspace` is the orthonormal basis of ``W``'s row space.
- Its controls, of the same norm: a random direction in the whole space (`random_deltas`) and a random direction
  in the orthogonal complement of the belief subspace (`complement_deltas`), which the probe cannot see.
- Ablation of a subspace with orthonormal basis B [d, r] (`ablation_delta`): the component ``x B Bᵀ`` is replaced
  by a mean's (mean-ablation) or by another context's (resample-ablation); the control is a random subspace of the
  same dimension (`random_subspace`).

Every function returns a delta to add to the activations, so one runner (add a delta, run the rest) serves all.
"""

from __future__ import annotations

import numpy as np

from probes._checks import ProbeInputError

#: Singular values of the probe's coefficients below this fraction of the largest count as zero.
RANK_RTOL = 1e-8


def _coef(coef: np.ndarray) -> np.ndarray:
    c = np.asarray(coef, np.float64)
    if c.ndim != 2 or c.shape[0] == 0 or c.shape[1] == 0:
        raise ProbeInputError(f"coef must be a [d, S] array of probe coefficients; got shape {c.shape}")
    if not np.all(np.isfinite(c)):
        raise ProbeInputError("coef contains NaN or infinite values; fit the probe on finite activations")
    return c


def _simplex_coef(coef: np.ndarray, simplex: bool, normalizer: np.ndarray | None = None) -> np.ndarray:
    """``coef`` with the normalizer's target direction (all ones unless given) projected out (``simplex``), else as
    is: [d, S]."""
    c = _coef(coef)
    if not simplex:
        return c
    tau = np.ones(c.shape[1]) if normalizer is None else np.asarray(normalizer, np.float64)
    if tau.shape != (c.shape[1],) or not np.all(np.isfinite(tau)) or not np.any(tau):
        raise ProbeInputError(f"normalizer must be a finite non-zero vector of {c.shape[1]} entries; got {tau!r}")
    return c - np.outer(c @ tau, tau) / (tau @ tau)  # coef @ (I - τ τᵀ / τᵀτ)


def probe_subspace(
    coef: np.ndarray, *, simplex: bool = True, normalizer: np.ndarray | None = None, rtol: float = RANK_RTOL
) -> np.ndarray:
    """Orthonormal basis of the subspace a linear probe reads: [d, r], r its rank.

    Parameters
    ----------
    coef : [d, S] the probe's coefficients (``y = x @ coef + intercept``).
    simplex : the targets lie on a simplex (rows summing to 1) and the probe has an intercept: the all-ones target
        direction is projected out first (exactly, instead of relying on a float32 fit's tiny singular value), so
        r <= S - 1.
    normalizer : [S] the vector τ with ``η τ = 1`` for every target (None: all ones, beliefs of an HMM; a
        generalized HMM's quasi-beliefs are normalised by its own τ): the direction projected out with ``simplex``.
    rtol : singular values below ``rtol`` times the largest count as zero.

    Returns
    -------
    [d, r] float64 with orthonormal columns spanning the column space of the (projected) coefficients.

    Examples
    --------
    >>> import numpy as np
    >>> coef = np.array([[1.0, -1.0, 0.0], [0.0, 1.0, -1.0], [0.0, 0.0, 0.0]])  # [d=3, S=3], rows sum to 0
    >>> B = probe_subspace(coef)
    >>> B.shape, bool(np.allclose(B.T @ B, np.eye(2))), bool(np.allclose(B[2], 0))
    ((3, 2), True, True)
    """
    c = _simplex_coef(coef, simplex, normalizer)
    U, s, _ = np.linalg.svd(c, full_matrices=False)
    r = int(np.sum(s > rtol * s[0])) if s.size and s[0] > 0 else 0
    return U[:, :r]


def steering_delta(
    coef: np.ndarray,
    current: np.ndarray,
    target: np.ndarray,
    *,
    simplex: bool = True,
    normalizer: np.ndarray | None = None,
    rtol: float = RANK_RTOL,
) -> np.ndarray:
    """The minimal-norm deltas that move the probe's reading from ``current`` to ``target``: [n, d].

    Solves ``Δ @ coef = target − current`` in the least-squares sense with the smallest ``‖Δ‖``:
    ``Δ = (target − current) @ pinv(coef)``. With ``simplex`` (both readings sum to 1 and the probe has an
    intercept), ``coef``'s all-ones target direction is projected out first; the solution is then exact whenever
    the probe's rank is S - 1. Each Δ lies in the belief subspace (`probe_subspace`).

    Parameters
    ----------
    coef : [d, S] the probe's coefficients.
    current : [n, S] the probe's readings of the activations to move (``x @ coef + intercept``).
    target : [n, S] the readings wanted (e.g. other contexts' beliefs, or vertices of the simplex).
    simplex, normalizer, rtol : as in `probe_subspace`.

    Returns
    -------
    [n, d] float64 deltas to add to the activations.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> coef = rng.normal(size=(6, 3)); coef -= coef.mean(axis=1, keepdims=True)  # [d=6, S=3]
    >>> intercept = np.full(3, 1 / 3)
    >>> x = rng.normal(size=(4, 6))  # [n, d]
    >>> target = rng.dirichlet(np.ones(3), size=4)  # [n, S]
    >>> delta = steering_delta(coef, x @ coef + intercept, target)
    >>> bool(np.allclose((x + delta) @ coef + intercept, target))
    True
    """
    c = _simplex_coef(coef, simplex, normalizer)
    current, target = np.asarray(current, np.float64), np.asarray(target, np.float64)
    if current.shape != target.shape or current.ndim != 2 or current.shape[1] != c.shape[1]:
        raise ProbeInputError(
            f"current and target must both be [n, S] with S = {c.shape[1]} (coef's columns); "
            f"got {current.shape} and {target.shape}"
        )
    return (target - current) @ np.linalg.pinv(c, rcond=rtol)  # [n, S] @ [S, d]


def encoding_map(X: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """The least-squares map from beliefs to activations, ``X ≈ c + Y W``: W [S, d] (minimal-norm, so a belief
    matrix whose rows sum to 1 (rank <= S - 1 once centred) gives W with no component along the all-ones direction).

    Parameters
    ----------
    X : [n, d] activations.
    Y : [n, S] beliefs (the probe's targets).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> Y = rng.dirichlet(np.ones(3), size=50)  # [n, S]
    >>> A = rng.normal(size=(3, 5))  # [S, d]
    >>> W = encoding_map(Y @ A + 2.0, Y)
    >>> bool(np.allclose((Y[1] - Y[0]) @ W, (Y[1] - Y[0]) @ A))  # differences of beliefs map exactly
    True
    """
    X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    if X.ndim != 2 or Y.ndim != 2 or X.shape[0] != Y.shape[0] or X.shape[0] < 2:
        raise ProbeInputError(f"X must be [n, d] and Y [n, S] with the same n >= 2 rows; got {X.shape} and {Y.shape}")
    Yc, Xc = Y - Y.mean(axis=0), X - X.mean(axis=0)
    return np.linalg.lstsq(Yc, Xc, rcond=None)[0]  # [S, d]


def encoding_subspace(W: np.ndarray, *, rtol: float = RANK_RTOL) -> np.ndarray:
    """Orthonormal basis [d, r] of the row space of an encoding map W [S, d] (`encoding_map`): the directions along
    which the activations vary with the belief.

    Examples
    --------
    >>> import numpy as np
    >>> encoding_subspace(np.array([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0]])).round(6).T.tolist()
    [[1.0, 0.0, 0.0]]
    """
    return probe_subspace(np.asarray(W, np.float64).T, simplex=False, rtol=rtol)


def encoding_delta(W: np.ndarray, current: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The deltas ``(target − current) @ W`` [n, d]: move the activations as they move with the belief, from the
    belief ``current`` [n, S] (e.g. the probe's reading) to ``target`` [n, S]. See `encoding_map`.

    Examples
    --------
    >>> import numpy as np
    >>> W = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])  # [S=3, d=2]
    >>> encoding_delta(W, np.array([[1.0, 0.0, 0.0]]), np.array([[0.0, 1.0, 0.0]])).tolist()
    [[-1.0, 1.0]]
    """
    W = np.asarray(W, np.float64)
    current, target = np.asarray(current, np.float64), np.asarray(target, np.float64)
    if current.shape != target.shape or current.ndim != 2 or current.shape[1] != W.shape[0]:
        raise ProbeInputError(
            f"current and target must both be [n, S] with S = {W.shape[0]} (W's rows); got {current.shape} and "
            f"{target.shape}"
        )
    return (target - current) @ W


def _norms(norms: np.ndarray) -> np.ndarray:
    n = np.asarray(norms, np.float64)
    if n.ndim != 1 or not np.all(np.isfinite(n)) or np.any(n < 0):
        raise ProbeInputError(f"norms must be a 1-D array of finite non-negative lengths; got shape {n.shape}")
    return n


def random_deltas(norms: np.ndarray, d: int, rng: np.random.Generator) -> np.ndarray:
    """Random directions (uniform on the sphere) with the given lengths: [n, d], row i of length ``norms[i]``.

    The control of a steering delta: the same norm in a direction that knows nothing of the probe.

    Examples
    --------
    >>> import numpy as np
    >>> D = random_deltas(np.array([1.0, 2.5]), 5, np.random.default_rng(0))
    >>> D.shape, np.linalg.norm(D, axis=1).round(12).tolist()
    ((2, 5), [1.0, 2.5])
    """
    n = _norms(norms)
    g = rng.normal(size=(n.size, int(d)))
    return g / np.linalg.norm(g, axis=1, keepdims=True) * n[:, None]


def complement_deltas(norms: np.ndarray, basis: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Random directions inside the orthogonal complement of ``basis`` [d, r] (orthonormal columns), with the given
    lengths: [n, d]. The control that moves the activation as far as the steering delta does, invisibly to the probe.

    Examples
    --------
    >>> import numpy as np
    >>> B = np.eye(4)[:, :2]  # [d=4, r=2]: the first two axes
    >>> D = complement_deltas(np.array([3.0]), B, np.random.default_rng(0))
    >>> bool(np.allclose(D @ B, 0)), round(float(np.linalg.norm(D)), 12)
    (True, 3.0)
    """
    n = _norms(norms)
    B = np.asarray(basis, np.float64)
    if B.ndim != 2 or B.shape[1] >= B.shape[0]:
        raise ProbeInputError(f"basis must be [d, r] with r < d (a proper subspace); got shape {B.shape}")
    g = rng.normal(size=(n.size, B.shape[0]))
    g -= (g @ B) @ B.T
    return g / np.linalg.norm(g, axis=1, keepdims=True) * n[:, None]


def random_subspace(d: int, r: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly random r-dimensional subspace of R^d: an orthonormal basis [d, r] (QR of a Gaussian matrix).

    Examples
    --------
    >>> import numpy as np
    >>> B = random_subspace(6, 2, np.random.default_rng(0))
    >>> B.shape, bool(np.allclose(B.T @ B, np.eye(2)))
    ((6, 2), True)
    """
    if not 0 <= int(r) <= int(d):
        raise ProbeInputError(f"need 0 <= r <= d for a random subspace; got d = {d}, r = {r}")
    q, _ = np.linalg.qr(rng.normal(size=(int(d), int(r))))
    return q


def ablation_delta(x: np.ndarray, basis: np.ndarray, replacement: np.ndarray) -> np.ndarray:
    """The delta that replaces the component of ``x`` in the subspace ``basis`` by that of ``replacement``: [n, d].

    ``Δ = (replacement − x) B Bᵀ``, so ``x + Δ`` keeps x's component outside the subspace and takes the
    replacement's inside it. Mean-ablation: ``replacement`` = the activations' mean [d] (broadcast); resample-
    ablation: ``replacement`` = other contexts' activations [n, d] (e.g. a permutation of the rows).

    Parameters
    ----------
    x : [n, d] activations.
    basis : [d, r] orthonormal columns (`probe_subspace`, `random_subspace`).
    replacement : [d] or [n, d].

    Examples
    --------
    >>> import numpy as np
    >>> B = np.eye(3)[:, :1]  # the first axis
    >>> x = np.array([[5.0, 1.0, 2.0]])
    >>> (x + ablation_delta(x, B, np.array([0.5, 9.0, 9.0]))).tolist()
    [[0.5, 1.0, 2.0]]
    """
    x = np.asarray(x, np.float64)
    B = np.asarray(basis, np.float64)
    if x.ndim != 2 or B.ndim != 2 or B.shape[0] != x.shape[1]:
        raise ProbeInputError(f"x must be [n, d] and basis [d, r] with the same d; got {x.shape} and {B.shape}")
    rep = np.broadcast_to(np.asarray(replacement, np.float64), x.shape)
    return ((rep - x) @ B) @ B.T
