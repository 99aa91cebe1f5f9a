"""The discovery study's figures: the activations' PCA with the fitted and the true simplex, the spectra, and the
cluster x factor table."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from figures._common import FigureInputError, as_array, new_figure, set_suptitle


def belief_rgb(beliefs: np.ndarray) -> np.ndarray:
    """[n, S] beliefs -> [n, 3] colours: the beliefs themselves for 3 states, else their first three principal
    coordinates scaled to [0, 1] (two beliefs close in colour are close as beliefs)."""
    B = np.asarray(beliefs, np.float64)
    if B.shape[1] == 3:
        return np.clip(B, 0.0, 1.0)
    C = B - B.mean(axis=0)
    _, _, vt = np.linalg.svd(C, full_matrices=False)
    P = C @ vt[:3].T
    if P.shape[1] < 3:
        P = np.hstack([P, np.zeros((len(P), 3 - P.shape[1]))])
    lo, hi = P.min(axis=0), P.max(axis=0)
    return np.clip((P - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0, 1.0) * 0.85 + 0.05


#: Simplices with more vertices are drawn as their vertices only (their edges' projection is a tangle).
MAX_DRAWN_EDGES_VERTICES = 6


def _edges(n: int) -> list[tuple[int, int]]:
    """Every pair of n vertices when n <= MAX_DRAWN_EDGES_VERTICES, else none."""
    return list(itertools.combinations(range(n), 2)) if n <= MAX_DRAWN_EDGES_VERTICES else []


def plot_discovery(
    coords: np.ndarray,  # [n, >=2] the activations' PCA coordinates (at least the first two)
    beliefs: np.ndarray,  # [n, S] the true beliefs (colours and the true simplex's image only)
    vertices: np.ndarray,  # [k + 1, k] the fitted simplex in PCA coordinates
    *,
    cumulative: np.ndarray,  # [D] trained activations' cumulative explained variance
    untrained_cumulative: np.ndarray | None = None,  # [D]
    threshold: float,
    k: int,
    belief_dimension: int,
    told_vertices: np.ndarray | None = None,  # [k' + 1, k'] the fit told the beliefs' dimension, same PCA
    title: str | None = None,
    max_points: int = 6000,
) -> Figure:
    """Two panels: the first two principal components of the activations, coloured by the true belief, with the
    fitted simplex (all edges among its vertices, projected) and the image of the true probability simplex (the
    least-squares affine map from the beliefs to the coordinates, applied to the corners); and the cumulative
    explained variance with the threshold, the chosen k and the beliefs' dimension. ``told_vertices``: the simplex
    fitted with k set to the beliefs' dimension (which uses the answer key), drawn dash-dotted."""
    P = as_array("coords", coords, 2)
    B = as_array("beliefs", beliefs, 2)
    V = as_array("vertices", vertices, 2)
    if P.shape[1] < 2 or P.shape[0] != B.shape[0]:
        raise FigureInputError(f"coords must be [n, >=2] with one row per belief; got {P.shape} and {B.shape}")
    fig = new_figure(11.0, 5.0 if title else 4.6)
    ax, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.25, 1]})
    rng = np.random.default_rng(0)
    show = np.sort(rng.choice(len(P), max_points, replace=False)) if len(P) > max_points else np.arange(len(P))
    ax.scatter(P[show, 0], P[show, 1], c=belief_rgb(B)[show], s=4, alpha=0.6, lw=0, rasterized=True)
    V2 = np.zeros((len(V), 2))
    V2[:, : min(2, V.shape[1])] = V[:, :2]
    for i, j in _edges(len(V2)):
        ax.plot(*V2[[i, j]].T, color="black", lw=1.2)
    ax.scatter(*V2.T, color="black", s=22, zorder=4, label="fitted simplex's vertices")
    if told_vertices is not None:
        T = as_array("told_vertices", told_vertices, 2)
        T2 = np.zeros((len(T), 2))
        T2[:, : min(2, T.shape[1])] = T[:, :2]
        for i, j in _edges(len(T2)):
            ax.plot(*T2[[i, j]].T, color="tab:blue", lw=1.0, ls="-.")
        ax.scatter(
            *T2.T, color="tab:blue", marker="s", s=14, zorder=4, label=f"fitted, told the dimension ({len(T)} vertices)"
        )
    image, *_ = np.linalg.lstsq(B, P[:, :2], rcond=None)  # [S, 2] the corners' images
    for i, j in _edges(len(image)):
        ax.plot(*image[[i, j]].T, color="tab:red", lw=1.0, ls="--")
    ax.scatter(*image.T, color="tab:red", marker="x", s=22, zorder=4, label="true simplex's image (corners)")
    ax.set_xlabel("principal component 1")
    ax.set_ylabel("principal component 2")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(fontsize=8, loc="best", framealpha=0.9)
    ax.set_title(f"{len(V)} vertices found (k = {k}); the beliefs' dimension {belief_dimension}", fontsize=9)
    c = as_array("cumulative", cumulative, 1)
    top = int(min(len(c), max(12, 2 * k + 2, belief_dimension + 4)))
    x = np.arange(1, top + 1)
    ax2.plot(x, c[:top], color="black", marker="o", ms=3, lw=1.8, label="trained")
    if untrained_cumulative is not None:
        u = as_array("untrained_cumulative", untrained_cumulative, 1)
        ax2.plot(x[: len(u)], u[:top], color="0.6", lw=1.4, label="untrained")
    ax2.axhline(threshold, color="0.4", ls=":", lw=0.9)
    ax2.axvline(k, color="black", ls="--", lw=0.9)
    ax2.text(k, 0.03, f" k = {k}", rotation=90, fontsize=8, va="bottom", ha="right")
    ax2.axvline(belief_dimension, color="tab:red", ls="--", lw=0.9)
    ax2.text(
        belief_dimension,
        0.45,
        f" beliefs: {belief_dimension}",
        rotation=90,
        fontsize=8,
        va="bottom",
        ha="left",
        color="tab:red",
    )
    ax2.set_ylim(0, 1.02)
    ax2.set_xlim(0.5, top + 0.5)
    ax2.set_xlabel("principal components")
    ax2.set_ylabel("cumulative explained variance")
    ax2.grid(alpha=0.25)
    ax2.legend(fontsize=8, loc="lower right")
    if title:
        set_suptitle(fig, title, 11)
    return fig


def plot_cluster_table(
    r2: np.ndarray,  # [C, K] held-out R² (NaN: withheld)
    *,
    factor_labels: Sequence[str],
    cluster_labels: Sequence[str],
    title: str | None = None,
) -> Figure:
    """A heat map of each cluster's held-out R² for each factor, numbers written in the cells."""
    M = as_array("r2", r2, 2, finite=False)
    if M.shape != (len(cluster_labels), len(factor_labels)):
        raise FigureInputError(f"r2 is {M.shape}; expected ({len(cluster_labels)}, {len(factor_labels)})")
    fig = new_figure(2.2 + 1.6 * M.shape[1], 1.6 + 0.45 * M.shape[0])
    ax = fig.subplots()
    im = ax.imshow(np.clip(np.nan_to_num(M, nan=0.0), 0, 1), cmap="viridis", vmin=0, vmax=1, aspect="auto")
    for (i, j), v in np.ndenumerate(M):
        ax.text(
            j,
            i,
            "–" if not np.isfinite(v) else f"{v:.2f}",
            ha="center",
            va="center",
            fontsize=9,
            color="white" if not np.isfinite(v) or v < 0.6 else "black",
        )
    ax.set_xticks(range(M.shape[1]), list(factor_labels), fontsize=8)
    ax.set_yticks(range(M.shape[0]), list(cluster_labels), fontsize=8)
    ax.set_xlabel("factor")
    ax.set_ylabel("cluster of SAE directions")
    fig.colorbar(im, ax=ax, label="held-out R²", fraction=0.05)
    if title:
        set_suptitle(fig, title, 10)
    return fig
