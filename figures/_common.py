"""Shared pieces of the figure modules: input checks, a display-free Figure factory, and the conventions every
figure shares: layer names a reader knows (`layer_label`), token counts on axes and in titles (`format_count`,
`token_axis`), and colour-blind-safe colours for categories (`category_palette`)."""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator


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
    """A parameter as a title shows it: integers whole, floats to 4 significant digits (1/3 -> 0.3333)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    return str(v) if isinstance(v, int) else f"{v:.4g}"


# --- layer names -------------------------------------------------------------------------------------------

#: (pattern, label) for the activation names compmech uses: the residual-stream aliases of probe.json
#: (embedding, block_L, final_ln, concat), the TransformerLens hook names, recurrent states. Blocks and
#: recurrent layers are counted from 1 in labels, as in "block_4" (hook names count from 0).
_LAYER_LABELS: tuple[tuple[str, Callable[[re.Match], str]], ...] = (
    (r"embedding|embed|blocks\.0\.hook_resid_pre", lambda m: "embedding"),
    (r"hook_embed", lambda m: "token embedding"),
    (r"hook_pos_embed", lambda m: "position embedding"),
    (r"block_(\d+)", lambda m: f"after block {m[1]}"),
    (r"blocks\.(\d+)\.hook_resid_post", lambda m: f"after block {int(m[1]) + 1}"),
    (r"blocks\.(\d+)\.hook_resid_pre", lambda m: f"after block {m[1]}"),
    (r"blocks\.(\d+)\.hook_resid_mid", lambda m: f"block {int(m[1]) + 1}, after attention"),
    (r"blocks\.(\d+)\.hook_attn_out", lambda m: f"attention output of block {int(m[1]) + 1}"),
    (r"blocks\.(\d+)\.hook_mlp_out", lambda m: f"MLP output of block {int(m[1]) + 1}"),
    (r"blocks\.(\d+)\.attn\.hook_pattern", lambda m: f"attention pattern of block {int(m[1]) + 1}"),
    (r"final_ln|ln_final\.hook_normalized", lambda m: "after the final LayerNorm"),
    (r"concat", lambda m: "all layers"),
    (r"layers\.(\d+)\.hidden", lambda m: f"hidden state of layer {int(m[1]) + 1}"),
    (r"layers\.(\d+)\.cell", lambda m: f"cell state of layer {int(m[1]) + 1}"),
)


def layer_label(name: str) -> str:
    """A layer (activation) name as a reader knows it: "block_4" and "blocks.3.hook_resid_post" -> "after block 4",
    "final_ln" -> "after the final LayerNorm", "embedding" -> "embedding", "concat" -> "all layers",
    "layers.0.hidden" -> "hidden state of layer 1"; any other name as it is. Every figure showing a layer uses it."""
    for pattern, label in _LAYER_LABELS:
        match = re.fullmatch(pattern, str(name))
        if match:
            return label(match)
    return str(name)


# --- token counts --------------------------------------------------------------------------------------------

_SUPERSCRIPT = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")


def format_count(value: float) -> str:
    """A count (tokens seen) as every figure writes it, on axes and in titles: '0', '500', '10⁴', '6.4×10⁴'.

    Below 1000 the number itself; from 1000 on, two significant digits times a power of ten (Unicode
    superscripts, so the same text works in matplotlib, HTML and Plotly)."""
    value = float(value)
    if value == 0 or not np.isfinite(value):
        return f"{value:g}"
    if abs(value) < 1000:
        return f"{value:.3g}"
    mantissa, exponent = f"{value:.1e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    power = "10" + str(int(exponent)).translate(_SUPERSCRIPT)
    if mantissa in ("1", "-1"):
        return power if mantissa == "1" else "\u2212" + power
    return f"{mantissa}\u00d7{power}"


#: Multiples of each power of ten tried for ticks, densest first; `count_ticks` takes the densest that gives at
#: most `MAX_COUNT_TICKS` ticks in the range.
_TICK_MULTIPLES = ((1, 2, 3, 4, 5, 6, 8), (1, 2, 3, 5), (1, 2, 5), (1, 3), (1,))
MAX_COUNT_TICKS = 6


def count_ticks(lo: float, hi: float) -> list[float]:
    """Tick positions for counts between ``lo`` > 0 and ``hi`` on a log axis: the densest of 1-2-3-4-5-6-8, 1-2-3-5,
    1-2-5, 1-3 or 1 times the powers of ten that puts at most `MAX_COUNT_TICKS` ticks in the range (every other
    power of ten, or fewer, over many decades), so a short run has several labelled ticks and a long one is not
    crowded. Fewer than two in the range: the two ends, to two digits."""
    if not (lo > 0 and hi >= lo):
        raise FigureInputError(f"count_ticks needs 0 < lo <= hi, got lo={lo!r}, hi={hi!r}")
    first, last = int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi)))

    def inside(multiples, step=1) -> list[float]:
        ticks = [float(m) * 10.0**k for k in range(first, last + 1, step) for m in multiples]
        return [t for t in ticks if lo * (1 - 1e-9) <= t <= hi * (1 + 1e-9)]

    for multiples in _TICK_MULTIPLES:
        found = inside(multiples)
        if len(found) <= MAX_COUNT_TICKS:
            break
    step = 1
    while len(found) > MAX_COUNT_TICKS:
        step += 1
        found = inside((1,), step)
    if len(found) < 2:
        found = sorted({float(f"{lo:.2g}"), float(f"{hi:.2g}")})
    return found


def token_axis(ax, values, *, axis: str = "x", zero: bool = False) -> None:
    """A log axis of token counts drawn the same way in every figure: ticks from `count_ticks` over the
    positive ``values``, labelled by `format_count` ("6.4×10⁴"), no unlabelled minor ticks crowding them.
    ``zero``: the axis is symlog (linear up to the first positive count, as `plot_training_curve` draws the
    evaluation before training at its left end) and 0 is a tick too."""
    v = np.asarray(values, dtype=np.float64)
    positive = v[np.isfinite(v) & (v > 0)]
    if positive.size == 0:
        raise FigureInputError("token_axis needs at least one positive token count")
    lo, hi = float(positive.min()), float(positive.max())
    target = ax.xaxis if axis == "x" else ax.yaxis
    if zero:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("symlog", linthresh=lo, linscale=0.4)
    else:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    ticks = ([0.0] if zero else []) + count_ticks(lo, hi)
    target.set_major_locator(FixedLocator(ticks))
    target.set_major_formatter(FuncFormatter(lambda x, _: format_count(x)))
    target.set_minor_locator(NullLocator())
    target.set_minor_formatter(NullFormatter())
    pad = (hi / lo) ** 0.04 if hi > lo else 1.25  # a little room beyond the last point
    if zero:
        (ax.set_xlim if axis == "x" else ax.set_ylim)(0.0, hi * pad)
    else:
        (ax.set_xlim if axis == "x" else ax.set_ylim)(lo / pad, hi * pad)


# --- colours for categories ------------------------------------------------------------------------------------

#: Okabe & Ito (2008): eight colours told apart with every common colour-vision deficiency; black last.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
#: Paul Tol's "muted" scheme, colour-blind safe, for 9 or 10 categories (pale grey last).
TOL_MUTED = (
    "#332288",
    "#88CCEE",
    "#44AA99",
    "#117733",
    "#999933",
    "#DDCC77",
    "#CC6677",
    "#882255",
    "#AA4499",
    "#DDDDDD",
)


def _rgb(hex_colour: str) -> tuple[float, float, float]:
    h = hex_colour.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) / 255.0 for i in (0, 2, 4))
    return r, g, b


def category_palette(n: int) -> np.ndarray:
    """[n, 3] RGB colours for n categories (layers, heads, tokens, mixed states): colour-blind safe up to 10
    (Okabe–Ito up to 8, Tol's muted scheme for 9–10). No palette of more hues stays colour-blind safe; above 10
    matplotlib's tab20, then tab20 + tab20b + tab20c cycled (60 colours), where labels or markers must carry it."""
    from matplotlib import colormaps

    if n < 0:
        raise FigureInputError(f"category_palette needs n >= 0, got {n}")
    if n <= len(OKABE_ITO):
        return np.array([_rgb(c) for c in OKABE_ITO[:n]]).reshape(n, 3)
    if n <= len(TOL_MUTED):
        return np.array([_rgb(c) for c in TOL_MUTED[:n]])
    if n <= 20:
        return colormaps["tab20"](np.arange(n))[:, :3]
    base = np.concatenate([colormaps[name](np.arange(20))[:, :3] for name in ("tab20", "tab20b", "tab20c")])
    return base[np.arange(n) % len(base)]
