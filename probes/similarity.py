"""How alike two representations of the same inputs are: linear CKA, its debiased form and the Procrustes distance.

Two models (two architectures, two seeds, one model at two checkpoints) read the same rows (contexts); their
activations ``X [N, D_x]`` and ``Y [N, D_y]`` may differ in width. Three measures, each blind to a rotation of
either space, to isotropic scaling and to translation, and each read against a permutation null:

- **Linear centred kernel alignment** (Kornblith, Norouzi, Lee & Hinton 2019, eq. 5 with linear kernels):
  ``CKA(X, Y) = ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)`` after centring each column. It equals the Gram-matrix
  form ``HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L))`` with ``K = X X^T``, ``L = Y Y^T`` and ``HSIC(K, L) = tr(K H L H)``
  (``H`` the centring matrix), but costs ``O(N D_x D_y)`` instead of ``O(N^2)``, so it scales to many rows.
  In [0, 1]; 1 iff ``Y = c X Q + b`` (Q orthogonal, c > 0). It is *not* invariant to a general invertible linear map.
- **Debiased CKA** (Nguyen, Raghu & Kornblith 2021): the same ratio with the unbiased HSIC estimator of Song et
  al. (2012, eq. 5), ``HSIC_u(K, L) = [tr(K~ L~) + 1^T K~ 1 1^T L~ 1 / ((N - 1)(N - 2)) - 2 / (N - 2) 1^T K~ L~ 1]
  / (N (N - 3))`` with ``K~`` the Gram matrix with its diagonal set to zero, here evaluated in feature space. Plain
  CKA of unrelated data is about ``sqrt(D_x D_y) / N`` (large when N is not much bigger than the widths); the
  debiased one is about 0. Needs N >= 4; it can be slightly negative, and has no sample weights.
- **Orthogonal Procrustes distance** (Ding, Denain & Steinhardt 2021; Williams et al. 2021): centre each, scale
  each to unit Frobenius norm, then ``d = min_Q ||X - Y Q||_F = sqrt(2 - 2 ||X^T Y||_*)`` over orthogonal Q
  (``||.||_*`` the nuclear norm, the sum of singular values), in [0, sqrt 2], and its angular form
  ``arccos ||X^T Y||_*`` in [0, pi/2], a metric on shapes. When the widths differ, the narrower matrix is padded
  with zero columns (which changes neither the nuclear norm nor the distance, so nothing is padded in practice).

Sample weights (`linear_cka`, `procrustes_distance`): each row's weight w_i (normalised to sum 1) centres on the
weighted mean and scales the row by sqrt(w_i), so an integer weight counts as that many copies of the row.

The **permutation null** (`permutation_null`) permutes the rows of Y with a seeded RNG, breaking the pairing of
rows while keeping each representation's own geometry: its mean and 95% quantile say what unrelated rows of the
same two point clouds give. All numbers in float64, whatever the input's dtype. NumPy and SciPy only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from probes._checks import ProbeInputError, as_float_array, as_sample_weight, require_finite

#: The names of the measures `compare_representations` and `permutation_null` compute.
MEASURES = ("cka", "cka_debiased", "procrustes", "procrustes_angle")

#: The rows each measure needs at least: two for a variance, four for the unbiased HSIC (its N (N - 3)).
MIN_ROWS = {"cka": 2, "cka_debiased": 4, "procrustes": 2, "procrustes_angle": 2}


@dataclass(frozen=True)
class NullDistribution:
    """What a measure gives on the same two point clouds with their rows paired at random.

    ``values[k]`` is the measure with the rows of Y permuted by the k-th permutation drawn from
    ``np.random.default_rng(seed)``; ``mean`` and ``q95`` (the 95% quantile, linear interpolation) summarise them,
    and ``q05`` (the 5% quantile) is the side a distance is read against (small = alike). With few permutations
    the quantiles are coarse: of 20, the 95% one lies between the largest two values.
    """

    values: np.ndarray  # [n_permutations] float64
    mean: float
    q95: float
    q05: float
    seed: int

    @property
    def n_permutations(self) -> int:
        return int(self.values.size)


@dataclass(frozen=True)
class Similarity:
    """Every measure of `compare_representations` between two representations of the same N rows.

    ``nulls`` holds one `NullDistribution` per measure name (empty without permutations). For CKA a value well
    above its null's ``q95`` says the rows are paired alike; for the Procrustes distance, well below its null's
    ``q05``.
    """

    cka: float  # linear CKA, [0, 1]
    cka_debiased: float | None  # debiased linear CKA (None with sample weights, which it does not take)
    procrustes: float  # sqrt(2 - 2 ||X^T Y||_*), [0, sqrt 2]
    procrustes_angle: float  # arccos ||X^T Y||_*, radians in [0, pi/2]
    n_rows: int
    width_x: int
    width_y: int
    padded: bool  # the widths differ: the Procrustes distance pads the narrower one with zero columns
    nulls: dict[str, NullDistribution]

    def to_json(self) -> dict:
        """Plain JSON values (the nulls as their mean, 95% quantile and number of permutations)."""
        return {
            "cka": self.cka,
            "cka_debiased": self.cka_debiased,
            "procrustes": self.procrustes,
            "procrustes_angle": self.procrustes_angle,
            "n_rows": self.n_rows,
            "width_x": self.width_x,
            "width_y": self.width_y,
            "padded": self.padded,
            "nulls": {
                k: {"mean": n.mean, "q95": n.q95, "q05": n.q05, "n_permutations": n.n_permutations, "seed": n.seed}
                for k, n in self.nulls.items()
            },
        }


@dataclass(frozen=True)
class SimilarityMatrix:
    """One measure between every pair of several representations of the same rows (seeds, checkpoints, models).

    ``values[i, j]`` is the measure between ``names[i]`` and ``names[j]`` (symmetric; the diagonal is each with
    itself: 1 for CKA, 0 for the Procrustes distances).
    """

    measure: str
    names: tuple[str, ...]
    values: np.ndarray  # [K, K] float64


# -- input checks -----------------------------------------------------------------------------------------------


def _pair(X, Y, measure: str, sample_weight=None) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(X [N, D_x], Y [N, D_y], weights [N] normalised to sum 1 or None), checked: 2-D, real, finite, the same
    rows, at least `MIN_ROWS[measure]` of them."""
    X = as_float_array("X", X, 2)
    Y = as_float_array("Y", Y, 2)
    if X.shape[0] != Y.shape[0]:
        raise ProbeInputError(
            f"X has {X.shape[0]} rows but Y has {Y.shape[0]}; pass the two representations of the same rows"
        )
    need = MIN_ROWS[measure]
    if X.shape[0] < need:
        raise ProbeInputError(f"{measure} needs at least {need} rows (inputs); got {X.shape[0]}")
    if X.shape[1] < 1 or Y.shape[1] < 1:
        raise ProbeInputError(f"X and Y need at least one column each; got shapes {X.shape} and {Y.shape}")
    require_finite("X", X)
    require_finite("Y", Y)
    w = as_sample_weight(sample_weight, X.shape[0])
    return X, Y, None if w is None else w / w.sum()


def _centred(name: str, A: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """float64 ``A`` [N, D] less its (weighted) column means, each row scaled by sqrt(w_i) when weighted;
    raises when nothing varies (every row the same), where every measure is undefined."""
    A = np.asarray(A, dtype=np.float64)
    if w is None:
        out = A - A.mean(axis=0)
    else:
        out = (A - w @ A) * np.sqrt(w)[:, None]
    if not np.any(out):
        raise ProbeInputError(f"{name} has no variance (every row the same); a similarity needs rows that differ")
    return out


# -- the measures on centred matrices (the formulas, once) ------------------------------------------------------


@dataclass(frozen=True)
class _HsicSide:
    """One matrix's share of the unbiased HSIC in feature space: its Gram diagonal ``||a_i||^2``, ``K~ 1`` (row sums
    of the Gram matrix without its diagonal) and ``1^T K~ 1``."""

    diag: np.ndarray  # [N]
    row_sums: np.ndarray  # [N]
    total: float

    @classmethod
    def of(cls, A: np.ndarray) -> _HsicSide:
        diag = np.einsum("nd,nd->n", A, A)
        row_sums = A @ A.sum(axis=0) - diag  # K 1 - diag(K) = K~ 1
        return cls(diag=diag, row_sums=row_sums, total=float(row_sums.sum()))

    def permuted(self, perm: np.ndarray) -> _HsicSide:
        return _HsicSide(diag=self.diag[perm], row_sums=self.row_sums[perm], total=self.total)


def _hsic_u(a: _HsicSide, b: _HsicSide, cross_sq: float) -> float:
    """Song et al. (2012) eq. 5 for linear kernels: ``cross_sq = tr(K L) = ||A^T B||_F^2``, so ``tr(K~ L~) =
    cross_sq - sum_i K_ii L_ii``; ``1^T K~ L~ 1 = (K~ 1) . (L~ 1)``."""
    n = a.diag.shape[0]
    trace = cross_sq - float(a.diag @ b.diag)
    ones = a.total * b.total / ((n - 1) * (n - 2))
    return (trace + ones - 2.0 / (n - 2) * float(a.row_sums @ b.row_sums)) / (n * (n - 3))


@dataclass(frozen=True)
class _Side:
    """One representation ready for every measure: centred rows, ``||A^T A||_F``, ``||A||_F`` and (unweighted)
    its unbiased-HSIC terms, with its own unbiased HSIC."""

    A: np.ndarray  # [N, D] float64, centred (and scaled by sqrt(w) when weighted)
    gram_norm: float
    fro: float
    hsic: _HsicSide | None
    self_hsic: float | None

    @classmethod
    def of(cls, A: np.ndarray, debias: bool) -> _Side:
        g = A.T @ A if A.shape[1] <= A.shape[0] else A @ A.T  # the smaller Gram matrix: the same ||.||_F
        gram_sq = float(np.sum(g * g))
        hsic = _HsicSide.of(A) if debias else None
        return cls(
            A=A,
            gram_norm=float(np.sqrt(gram_sq)),
            fro=float(np.linalg.norm(A)),
            hsic=hsic,
            self_hsic=None if hsic is None else _hsic_u(hsic, hsic, gram_sq),
        )

    def permuted(self, perm: np.ndarray) -> _Side:
        """The rows permuted: centring commutes with it (unweighted), and every norm is unchanged."""
        hsic = None if self.hsic is None else self.hsic.permuted(perm)
        return _Side(A=self.A[perm], gram_norm=self.gram_norm, fro=self.fro, hsic=hsic, self_hsic=self.self_hsic)


def _measures(a: _Side, b: _Side) -> dict[str, float]:
    """Every measure of `MEASURES` (the debiased CKA only when both sides carry its terms) from one cross product
    ``C = A^T B`` [D_x, D_y]: CKA = ||C||_F^2 / (||A^T A||_F ||B^T B||_F); the nuclear norm of the unit-norm pair is
    ||C||_* / (||A||_F ||B||_F); d = sqrt(2 - 2 ||.||_*), angle = arccos ||.||_*."""
    cross = a.A.T @ b.A  # [D_x, D_y]
    cross_sq = float(np.sum(cross * cross))
    out = {"cka": float(np.clip(cross_sq / (a.gram_norm * b.gram_norm), 0.0, 1.0))}
    if a.hsic is not None and b.hsic is not None and a.self_hsic is not None and b.self_hsic is not None:
        if not (a.self_hsic > 0 and b.self_hsic > 0):
            raise ProbeInputError(
                "the unbiased HSIC of X or Y with itself is not positive (too few rows for their spread); "
                "pass more rows or use the plain CKA"
            )
        out["cka_debiased"] = float(_hsic_u(a.hsic, b.hsic, cross_sq) / np.sqrt(a.self_hsic * b.self_hsic))
    nuc = float(np.clip(np.linalg.svd(cross, compute_uv=False).sum() / (a.fro * b.fro), 0.0, 1.0))
    out["procrustes"] = float(np.sqrt(max(0.0, 2.0 - 2.0 * nuc)))
    out["procrustes_angle"] = float(np.arccos(nuc))
    return out


def _sides(X, Y, measure: str, sample_weight, debias: bool) -> tuple[_Side, _Side, np.ndarray, np.ndarray | None]:
    """The checked pair as two `_Side`s, with the checked Y and the normalised weights (for re-centring)."""
    X, Y, w = _pair(X, Y, measure, sample_weight)
    debias = debias and w is None
    return _Side.of(_centred("X", X, w), debias), _Side.of(_centred("Y", Y, w), debias), Y, w


# -- the public measures ----------------------------------------------------------------------------------------


def linear_cka(X, Y, sample_weight=None) -> float:
    """Linear centred kernel alignment between ``X [N, D_x]`` and ``Y [N, D_y]`` (rows paired), in [0, 1].

    ``||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F)`` after centring each column (on the ``sample_weight`` [N]
    mean when given, each row then scaled by sqrt(weight)), in float64.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 5))  # [N, D_x]
    >>> Q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    >>> round(linear_cka(X, 3.0 * X @ Q + 1.0), 12)  # a rotation, a scale and a shift: the same geometry
    1.0
    >>> linear_cka(X, rng.normal(size=(200, 8))) < 0.1  # unrelated rows: about sqrt(5 * 8) / 200
    True
    """
    a, b, _, _ = _sides(X, Y, "cka", sample_weight, debias=False)
    return _measures(a, b)["cka"]


def debiased_cka(X, Y) -> float:
    """Linear CKA with the unbiased HSIC estimator (Song et al. 2012; Nguyen et al. 2021), ``X [N, D_x]``,
    ``Y [N, D_y]``, N >= 4: about 0 for unrelated rows at any N (plain CKA is about sqrt(D_x D_y) / N there);
    1 for ``Y = c X Q + b``. No sample weights (the U-statistic counts each row once).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X, Y = rng.normal(size=(50, 20)), rng.normal(size=(50, 20))  # [N, D]: few rows for the widths
    >>> round(linear_cka(X, Y), 2), abs(debiased_cka(X, Y)) < 0.05
    (0.3, True)
    """
    a, b, _, _ = _sides(X, Y, "cka_debiased", None, debias=True)
    return _measures(a, b)["cka_debiased"]


def procrustes_distance(X, Y, sample_weight=None, *, angular: bool = False) -> float:
    """The orthogonal Procrustes distance between ``X [N, D_x]`` and ``Y [N, D_y]`` (rows paired).

    Each centred (weighted mean with ``sample_weight``, rows scaled by sqrt(weight)) and scaled to unit
    Frobenius norm; then ``min_Q ||X - Y Q||_F = sqrt(2 - 2 ||X^T Y||_*)`` over orthogonal Q, in [0, sqrt 2]
    (``angular``: ``arccos ||X^T Y||_*``, radians in [0, pi/2]). Different widths: the narrower is taken as padded
    with zero columns, which leaves ``||X^T Y||_*`` unchanged. Near 0 the square root amplifies rounding: an error
    e in the nuclear norm moves d by up to sqrt(2 e) (about 2e-8 in float64).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(100, 3))  # [N, 3]
    >>> Q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    >>> procrustes_distance(X, 2.0 * X @ Q - 5.0) < 1e-6
    True
    >>> 1.2 < procrustes_distance(X, rng.normal(size=(100, 4))) < 1.42  # unrelated: near sqrt 2
    True
    """
    a, b, _, _ = _sides(X, Y, "procrustes", sample_weight, debias=False)
    return _measures(a, b)["procrustes_angle" if angular else "procrustes"]


def compare_representations(X, Y, sample_weight=None, *, n_permutations: int = 0, seed: int = 0) -> Similarity:
    """Every measure between ``X [N, D_x]`` and ``Y [N, D_y]``, with a permutation null of ``n_permutations``
    draws each (`permutation_null`; 0: none). The debiased CKA is None with ``sample_weight`` (it takes none).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> X = rng.normal(size=(300, 4))  # [N, 4]
    >>> s = compare_representations(X, X @ rng.normal(size=(4, 6)), n_permutations=20)
    >>> s.cka > s.nulls["cka"].q95, s.padded
    (True, True)
    """
    measure = "cka" if sample_weight is not None else "cka_debiased"
    a, b, Y, w = _sides(X, Y, measure, sample_weight, debias=True)
    m = _measures(a, b)
    nulls = {}
    if n_permutations:
        nulls = _null(a, b, Y, w, n_permutations, seed)
    return Similarity(
        cka=m["cka"],
        cka_debiased=m.get("cka_debiased"),
        procrustes=m["procrustes"],
        procrustes_angle=m["procrustes_angle"],
        n_rows=int(a.A.shape[0]),
        width_x=int(a.A.shape[1]),
        width_y=int(b.A.shape[1]),
        padded=a.A.shape[1] != b.A.shape[1],
        nulls=nulls,
    )


def permutation_null(
    X, Y, sample_weight=None, *, n_permutations: int = 100, seed: int = 0
) -> dict[str, NullDistribution]:
    """The measures of `MEASURES` with the rows of ``Y [N, D_y]`` permuted against ``X [N, D_x]``, by measure name.

    Permutation k is the k-th ``rng.permutation(N)`` of ``rng = np.random.default_rng(seed)``; the same
    permutations serve every measure. A weight stays with its row index (the pair (x_i, y_pi(i)) weighs w_i), so
    with weights Y is re-centred for each permutation; without, centring commutes with the permutation and only
    the cross term ``Y_pi^T X`` is recomputed (one ``O(N D_x D_y)`` product and one small SVD per draw). The
    debiased CKA's null is left out with weights.

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> X, Y = rng.normal(size=(400, 3)), rng.normal(size=(400, 3))  # [N, 3] each, unrelated
    >>> null = permutation_null(X, Y, n_permutations=50)
    >>> null["cka"].mean < 0.03, abs(null["cka_debiased"].mean) < 0.01
    (True, True)
    """
    measure = "cka" if sample_weight is not None else "cka_debiased"
    a, b, Y, w = _sides(X, Y, measure, sample_weight, debias=True)
    return _null(a, b, Y, w, n_permutations, seed)


def _null(
    a: _Side, b: _Side, Y: np.ndarray, w: np.ndarray | None, n_permutations: int, seed: int
) -> dict[str, NullDistribution]:
    """`permutation_null` on prepared sides (``Y``: the raw rows, re-centred per draw when weighted)."""
    if int(n_permutations) != n_permutations or n_permutations < 1:
        raise ProbeInputError(f"n_permutations must be a positive integer; got {n_permutations!r}")
    rng = np.random.default_rng(seed)
    n = a.A.shape[0]
    out: dict[str, list[float]] = {m: [] for m in MEASURES}
    for _ in range(int(n_permutations)):
        perm = rng.permutation(n)
        bp = b.permuted(perm) if w is None else _Side.of(_centred("Y", Y[perm], w), False)
        for name, value in _measures(a, bp).items():
            out[name].append(value)
    return {
        m: NullDistribution(
            values=np.asarray(v),
            mean=float(np.mean(v)),
            q95=float(np.quantile(v, 0.95)),
            q05=float(np.quantile(v, 0.05)),
            seed=int(seed),
        )
        for m, v in out.items()
        if v
    }


#: measure name -> the function of (X, Y, sample_weight) `similarity_matrix` evaluates.
_PAIRWISE: dict[str, Callable[..., float]] = {
    "cka": linear_cka,
    "cka_debiased": lambda X, Y, w: debiased_cka(X, Y) if w is None else _no_weights(),
    "procrustes": procrustes_distance,
    "procrustes_angle": lambda X, Y, w: procrustes_distance(X, Y, w, angular=True),
}


def _no_weights() -> float:
    raise ProbeInputError("cka_debiased takes no sample weights; pass sample_weight=None or use measure='cka'")


def similarity_matrix(
    representations: Sequence, names: Sequence[str] | None = None, *, measure: str = "cka", sample_weight=None
) -> SimilarityMatrix:
    """One measure between every pair of K representations of the same N rows: the same architecture across
    seeds, one model across its checkpoints (training time), or several models.

    ``representations``: K arrays ``[N, D_k]`` (widths may differ); ``names``: K labels (default "0", "1", ...);
    ``measure``: one of `MEASURES`. Returns a `SimilarityMatrix` ``[K, K]``, symmetric, computed for i < j.

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> base = rng.normal(size=(500, 4))  # [N, 4]: one model at three checkpoints, drifting
    >>> reps = [base, base + 0.1 * rng.normal(size=(500, 4)), base + rng.normal(size=(500, 4))]
    >>> m = similarity_matrix(reps, ["early", "mid", "late"])
    >>> bool(m.values[0, 1] > m.values[0, 2]), float(m.values[1, 1])
    (True, 1.0)
    """
    if measure not in _PAIRWISE:
        raise ProbeInputError(f"measure must be one of {', '.join(MEASURES)}; got {measure!r}")
    reps = list(representations)
    if len(reps) < 1:
        raise ProbeInputError("representations must hold at least one [N, D] array")
    labels = tuple(str(i) for i in range(len(reps))) if names is None else tuple(names)
    if len(labels) != len(reps):
        raise ProbeInputError(f"names has {len(labels)} labels for {len(reps)} representations; give one each")
    k = len(reps)
    same = 1.0 if measure.startswith("cka") else 0.0
    values = np.full((k, k), same)
    fn = _PAIRWISE[measure]
    for i in range(k):
        for j in range(i + 1, k):
            values[i, j] = values[j, i] = fn(reps[i], reps[j], sample_weight)
    if k == 1:
        _pair(reps[0], reps[0], measure, sample_weight)  # a lone representation is still checked
    return SimilarityMatrix(measure=measure, names=labels, values=values)
