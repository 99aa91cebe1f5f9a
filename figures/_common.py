"""Shared pieces of the figure modules: input checks and a display-free Figure factory."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure


class FigureInputError(ValueError):
    """An argument to a plotting function has the wrong shape or values; the message names it."""


def new_figure(width: float, height: float) -> Figure:
    """A Figure not managed by pyplot (no display, no global state; Agg renders it on save)."""
    return Figure(figsize=(width, height), layout="constrained")


def wrap_title(fig: Figure, text: str, fontsize: float = 11) -> str:
    """``text`` broken into lines that fit the figure's width at ``fontsize`` (~0.58 em per character)."""
    import textwrap

    chars = max(20, int(fig.get_figwidth() * 72 / (0.58 * fontsize)))
    return "\n".join(textwrap.fill(line, chars) for line in text.split("\n"))


def set_suptitle(fig: Figure, text: str, fontsize: float = 11) -> None:
    """The figure's title, broken into lines that fit its width (a long process name would be clipped);
    each extra line makes the figure taller by its height, so the panels keep their size."""
    wrapped = wrap_title(fig, text, fontsize)
    extra = wrapped.count("\n") - text.count("\n")
    if extra > 0:
        fig.set_figheight(fig.get_figheight() + extra * 1.25 * fontsize / 72)
    fig.suptitle(wrapped, fontsize=fontsize)


def as_array(name: str, value, ndim: int, *, finite: bool = True) -> np.ndarray:
    """`value` as a float64 array of rank `ndim`, checked for NaN/inf unless finite=False."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise FigureInputError(f"{name} must be a numeric array: {err}") from None
    if arr.ndim != ndim:
        raise FigureInputError(f"{name} must be a {ndim}-D array, got shape {arr.shape}")
    if arr.size == 0:
        raise FigureInputError(f"{name} is empty")
    if finite and not np.all(np.isfinite(arr)):
        raise FigureInputError(f"{name} contains NaN or infinite values")
    return arr


def same_shape(name: str, arr: np.ndarray, ref_name: str, ref: np.ndarray) -> None:
    if arr.shape != ref.shape:
        raise FigureInputError(f"{name} has shape {arr.shape} but {ref_name} has {ref.shape}; they must match")


def sci(value: float) -> str:
    """A count in short scientific notation for labels: 64000 -> '6.4e4', 1000 -> '1e3', 12 -> '12'."""
    value = float(value)
    if value == 0 or (abs(value) < 1000 and value.is_integer()):
        return f"{value:g}"
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def process_title(name: str, params: dict | None = None) -> str:
    """'mess3 (x = 0.05, alpha = 0.85)', or just 'golden_mean' for a process without parameters.

    A composed process (params with a list of ``components``, each a table with its ``name``, as
    `hmm_processes.mixture` / `product` record them) reads 'mixture: 0.5 mess3 (x = 0.05) + 0.5 mess3
    (x = 0.15)' or 'product: mess3 (...) x coin (p = 0.2)', nested compositions in brackets.
    """
    params = params or {}
    components = params.get("components")
    if isinstance(components, list) and components and all(isinstance(c, dict) for c in components):
        parts = [_component_title(c) for c in components]
        weights = params.get("weights")
        if isinstance(weights, list) and len(weights) == len(parts):
            return "mixture: " + " + ".join(f"{_number(w)} {p}" for w, p in zip(weights, parts))
        return "product: " + " x ".join(parts)
    pretty = ", ".join(f"{k} = {_number(v)}" for k, v in params.items())
    return f"{name} ({pretty})" if pretty else str(name)


def _component_title(component: dict) -> str:
    rest = {k: v for k, v in component.items() if k != "name"}
    title = process_title(str(component.get("name", "?")), rest)
    return f"[{title}]" if isinstance(rest.get("components"), list) else title


def _number(v) -> str:
    return f"{v:g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else str(v)
