"""The HTML run report: one self-contained page (inline CSS, images as data URIs, no scripts).

`render_report` works on plain records — the run's summary, metrics and probe results as dicts,
figures as bytes — and imports nothing from the other compmech packages. `write_report` writes
the page atomically.
"""

from __future__ import annotations

import base64
import html
import math
import os
import struct
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from figures.io import write_atomic
from figures._common import FigureInputError

MIME_TYPES = {"png": "image/png", "svg": "image/svg+xml"}

# Paper keys shown in the results table (the rest are listed as "not measured by this run").
_PAPER_KEYS_USED = {"relative_loss", "probe_mse", "probe_r2", "probe_mse_heldout", "probe_mse_shuffled",
                    "layer_mse", "probe_mse_over_training", "distance_r2_beliefs", "distance_r2_next_token"}


def render_report(*, title: str, config_toml: str, summary: Mapping[str, Any], metrics: Sequence[Mapping],
                  probe: Mapping[str, Any], figures: Sequence[tuple[str, bytes, str]],
                  extra_tables: Iterable[tuple[str, Sequence[str], Sequence[Sequence]]] = ()) -> str:
    """One self-contained HTML page describing a run.

    ``summary``, ``metrics`` (one record per evaluation) and ``probe`` are the run directory's
    summary.json, metrics.jsonl and probe.json; ``config_toml`` the resolved config's text;
    ``figures`` a list of ``(caption, file bytes, suffix)`` with suffix ``png`` or ``svg``;
    ``extra_tables`` a list of ``(title, column headers, rows)`` appended after the results.
    Every piece of text is HTML-escaped.
    """
    images = [_figure_html(i, caption, data, suffix) for i, (caption, data, suffix) in enumerate(figures)]
    try:
        config = tomllib.loads(config_toml)
    except tomllib.TOMLDecodeError:
        config = {}
    sections = [
        _header(title, summary, config, probe),
        _results_table(summary, probe),
        _layer_table(summary, probe),
        _position_table(metrics),
        *(_table_section(t, headers, rows) for t, headers, rows in extra_tables),
        _history_section(metrics),
        _section("Figures", "\n".join(images) if images else "<p class=note>No figures in this run.</p>"),
        _section("Resolved config", f"<pre class=config>{_e(config_toml)}</pre>"),
    ]
    body = "\n".join(s for s in sections if s)
    return (f"<!DOCTYPE html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n"
            f"<meta name=viewport content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n{body}\n"
            f"</main>\n</body>\n</html>\n")


def write_report(path: str | os.PathLike, html_text: str) -> Path:
    """Write ``html_text`` to ``path`` (UTF-8): a temp file in the same folder, then ``os.replace``."""
    data = html_text.encode("utf-8")
    return write_atomic(path, lambda handle: handle.write(data))


# --- sections ----------------------------------------------------------------------------------------


def _header(title: str, summary: Mapping, config: Mapping, probe: Mapping) -> str:
    process = summary.get("process") or {}
    proc = f"{process.get('name', '?')}({_params(process.get('params') or {})})"
    model = config.get("model") or {}
    if model:
        model_text = (f"{model.get('n_layers', '?')}-layer transformer, d_model {model.get('d_model', '?')}, "
                      f"{model.get('n_heads', '?')} head{'' if model.get('n_heads') == 1 else 's'} of {model.get('d_head', '?')}, "
                      f"MLP {model.get('d_mlp', '?')}, context {model.get('context_length', '?')} tokens")
    else:
        model_text = "see the resolved config below"
    training = config.get("training") or {}
    train_text = f"{_int(summary.get('steps'))} steps, {_int(summary.get('tokens'))} tokens"
    if training.get("batch_size") is not None:
        train_text += f" (batch {training['batch_size']}, {training.get('optimizer', '')} " \
                      f"lr {training.get('learning_rate', '?')})"
    wall = _duration(summary.get("wall_seconds"))
    if summary.get("train_wall_seconds") is not None:
        wall += f" in all, {_duration(summary['train_wall_seconds'])} training"
    probe_text = (f"linear probe (least squares with intercept) on {_int(probe.get('n_rows'))} rows "
                  f"from {_int(probe.get('n_strings'))} strings; rows: {probe.get('rows', '?')}, "
                  f"weighting: {probe.get('weighting', '?')}; held out: "
                  f"{_pct(probe.get('train_fraction'))} train / rest test, {probe.get('n_repeats', '?')} repeats")
    facts = [("process", proc), ("model", model_text), ("training", train_text), ("wall time", wall),
             ("probe", probe_text), ("seed", config.get("seed"))]
    rows = "".join(f"<tr><th scope=row>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts if v is not None)
    command = summary.get("command") or ""
    return (f"<header>\n<h1>{_e(title)}</h1>\n<table class=facts>{rows}</table>\n"
            f"<p class=label>Reproduce with</p>\n<pre class=command><code>{_e(command)}</code></pre>\n"
            f"</header>")


def _results_table(summary: Mapping, probe: Mapping) -> str:
    paper = summary.get("paper") or {}
    layer = summary.get("probe_layer") or probe.get("probe_layer")
    res = summary.get("probe") or (probe.get("layers") or {}).get(layer) or {}
    heldout = _fmt(res.get("mse_heldout"), ".3g")
    if res.get("mse_heldout_std") is not None:
        heldout += f" ± {_fmt(res['mse_heldout_std'], '.2g')}"
    rows = [
        ("relative loss (CE / optimal CE)", summary.get("relative_loss"), _fmt(summary.get("relative_loss"), ".5f"),
         paper.get("relative_loss"), ".5f"),
        ("final loss / optimal loss (nats)", None,
         f"{_fmt(summary.get('final_loss'), '.5f')} / {_fmt(summary.get('optimal_loss'), '.5f')}", None, ""),
        (f"probe MSE ({layer})", res.get("mse"), _fmt(res.get("mse"), ".3g"), paper.get("probe_mse"), ".3g"),
        ("probe R²", res.get("r2"), _fmt(res.get("r2"), ".4f"), paper.get("probe_r2"), ".4f"),
        ("held-out probe MSE", res.get("mse_heldout"), heldout, paper.get("probe_mse_heldout"), ".3g"),
        ("shuffled-target control MSE", res.get("mse_shuffled"), _fmt(res.get("mse_shuffled"), ".3g"),
         paper.get("probe_mse_shuffled"), ".3g"),
    ]
    geo = summary.get("geometry") or {}
    for key, label in (("distance_r2_beliefs", "vs true beliefs"), ("distance_r2_next_token", "vs next-token")):
        if key in geo or key in paper:
            where = f" ({geo['layer']})" if "layer" in geo else ""
            rows.append((f"distance R² {label}{where}", geo.get(key),
                         _fmt(geo.get(key), ".3f"), paper.get(key), ".3f"))
    body = []
    for label, ours, ours_text, theirs, spec in rows:
        ratio = _ratio(ours, theirs)
        body.append(f"<tr><th scope=row>{_e(label)}</th><td class=num>{_e(ours_text)}</td>"
                    f"<td class=num>{_e(_fmt(theirs, spec) if theirs is not None else '—')}</td>"
                    f"<td class=num>{_e(ratio)}</td></tr>")
    for key, value in paper.items():  # the paper's other numbers, so none is silently dropped
        if key in _PAPER_KEYS_USED or isinstance(value, (dict, list)):
            continue
        body.append(f"<tr class=other><th scope=row>{_e(key.replace('_', ' '))} (not measured here)</th>"
                    f"<td class=num>—</td><td class=num>{_e(_fmt(value, '.4g'))}</td><td class=num>—</td></tr>")
    note = ("Paper: Shai et al. 2024, same process. Ratio = ours / paper. The shuffled control fits the same "
            "probe to beliefs permuted across rows: its MSE is what a probe that found no belief geometry scores."
            if paper else "The paper reports no numbers for this process.")
    return _section("Results vs the paper",
                    "<table><thead><tr><th>quantity</th><th class=num>ours</th><th class=num>paper</th>"
                    "<th class=num>ours / paper</th></tr>"
                    f"</thead><tbody>{''.join(body)}</tbody></table>\n<p class=note>{_e(note)}</p>")


def _layer_table(summary: Mapping, probe: Mapping) -> str:
    layers = probe.get("layers") or {}
    if not layers:
        return ""
    chosen = probe.get("probe_layer") or summary.get("probe_layer")
    paper_layers = (summary.get("paper") or {}).get("layer_mse") or {}
    headers = ["layer", "features", "MSE", "R²", "held-out MSE", "shuffled MSE", "shuffled / MSE"]
    if paper_layers:
        headers.append("paper MSE")
    body = []
    for name, res in layers.items():
        heldout = _fmt(res.get("mse_heldout"), ".3g")
        if res.get("mse_heldout_std") is not None:
            heldout += f" ± {_fmt(res['mse_heldout_std'], '.2g')}"
        mse, shuffled = res.get("mse"), res.get("mse_shuffled")
        cells = [_fmt(res.get("n_features"), "d"), _fmt(mse, ".3g"), _fmt(res.get("r2"), ".4f"), heldout,
                 _fmt(shuffled, ".3g"), _ratio(shuffled, mse)]
        if paper_layers:
            cells.append(_fmt(paper_layers.get(name), ".3g") if name in paper_layers else "—")
        is_chosen = name == chosen
        label = _e(name) + (" <span class=tag>probe layer</span>" if is_chosen else "")
        body.append(f"<tr{' class=chosen' if is_chosen else ''}><th scope=row>{label}</th>"
                    + "".join(f"<td class=num>{_e(c)}</td>" for c in cells) + "</tr>")
    head = "".join(f"<th{'' if i == 0 else ' class=num'}>{_e(h)}</th>" for i, h in enumerate(headers))
    note = ("block_k is the residual stream after block k; embedding: before the first block; final_ln: after "
            "the final LayerNorm; concat: all layers side by side. Held-out: probe fit on a random part of the "
            "strings, scored on the rest (mean ± std over repeats). The shuffled control fits beliefs permuted "
            "across rows. The highlighted row is the layer compared with the paper.")
    return _section("Probe by layer", f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody>"
                                      f"</table>\n<p class=note>{_e(note)}</p>")


def _position_table(metrics: Sequence[Mapping]) -> str:
    if not metrics or not metrics[-1].get("loss_by_position"):
        return ""
    last = metrics[-1]
    loss = list(last["loss_by_position"])
    optimum = last.get("optimal_loss_by_position")
    relative = last.get("relative_loss_by_position")
    if optimum is None and relative is not None:
        optimum = [lo / r if r else None for lo, r in zip(loss, relative)]
    if relative is None and optimum is not None:
        relative = [lo / o if o else None for lo, o in zip(loss, optimum)]
    optimum = optimum or [None] * len(loss)
    relative = relative or [None] * len(loss)
    body = "".join(
        f"<tr><td class=num>{t + 1}</td><td class=num>{_e(_fmt(lo, '.4f'))}</td>"
        f"<td class=num>{_e(_fmt(o, '.4f'))}</td><td class=num>{_e(_fmt(r, '.4f'))}</td></tr>"
        for t, (lo, o, r) in enumerate(zip(loss, optimum, relative)))
    note = (f"After {_int(last.get('tokens'))} tokens (step {_int(last.get('step'))}). Position t predicts "
            "token t+1 from the first t tokens; the optimum is the entropy of the next token given them.")
    return _section("Loss by context position (nats)",
                    "<table class=compact><thead><tr><th class=num>position</th><th class=num>loss</th>"
                    f"<th class=num>optimum</th><th class=num>loss / optimum</th></tr></thead><tbody>{body}</tbody></table>\n"
                    f"<p class=note>{_e(note)}</p>")


def _history_section(metrics: Sequence[Mapping]) -> str:
    if not metrics:
        return ""
    cols = [("step", "step", "d"), ("tokens", "tokens", "d"), ("loss", "loss (nats)", ".5f"),
            ("relative_loss", "relative loss", ".5f"), ("train_loss", "train loss", ".5f"),
            ("learning_rate", "learning rate", ".3g"), ("elapsed_s", "elapsed (s)", ".1f")]
    cols = [c for c in cols if any(m.get(c[0]) is not None for m in metrics)]
    head = "".join(f"<th class=num>{_e(label)}</th>" for _, label, _ in cols)
    body = "".join("<tr>" + "".join(f"<td class=num>{_e(_fmt(m.get(key), spec))}</td>" for key, _, spec in cols)
                   + "</tr>" for m in metrics)
    return _section("Training history",
                    f"<details><summary>{len(metrics)} evaluations (exact loss over all contexts)</summary>"
                    f"<table class=compact><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
                    "</details>")


def _table_section(title: str, headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    head = "".join(f"<th class=num>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td class=num>{_e(_fmt(v, '.4g'))}</td>" for v in row) + "</tr>"
                   for row in rows)
    return _section(title, f"<table class=compact><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def _figure_html(index: int, caption: str, data: bytes, suffix: str) -> str:
    kind = suffix.lower().lstrip(".")
    mime = MIME_TYPES.get(kind)
    if mime is None:
        raise FigureInputError(f"figure {caption!r}: suffix must be one of {sorted(MIME_TYPES)}, got {suffix!r}")
    if not isinstance(data, (bytes, bytearray)) or not data:
        raise FigureInputError(f"figure {caption!r}: expected the file's bytes, got {type(data).__name__}"
                               f"{' (empty)' if not data else ''}")
    if kind == "png" and not bytes(data).startswith(b"\x89PNG\r\n\x1a\n"):
        raise FigureInputError(f"figure {caption!r}: the bytes are not a PNG file")
    if kind == "svg" and b"<svg" not in bytes(data[:4096]):
        raise FigureInputError(f"figure {caption!r}: the bytes are not an SVG file (no <svg> element)")
    uri = f"data:{mime};base64,{base64.b64encode(bytes(data)).decode('ascii')}"
    size = _png_css_size(bytes(data)) if kind == "png" else None
    dims = f" width={size[0]} height={size[1]}" if size else ""
    return (f"<figure id=fig-{index + 1}><img src=\"{uri}\"{dims} alt=\"{_e(caption)}\">"
            f"<figcaption><b>Figure {index + 1}.</b> {_e(caption)}</figcaption></figure>")


def _png_css_size(data: bytes) -> tuple[int, int] | None:
    """A PNG's size in CSS pixels (96 per inch) from its pixel size and pHYs resolution.

    Shown at this size, every figure's text has the point size matplotlib drew it with,
    whatever the dpi it was saved at. None if the header can't be read.
    """
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    dpi, pos = 96.0, 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"pHYs" and length == 9 and pos + 17 <= len(data):
            ppu_x, _, unit = struct.unpack(">IIB", data[pos + 8:pos + 17])
            if unit == 1 and ppu_x > 0:  # pixels per metre
                dpi = ppu_x * 0.0254
            break
        if kind in (b"IDAT", b"IEND"):
            break
        pos += 12 + length
    scale = 96.0 / dpi
    return max(1, round(width * scale)), max(1, round(height * scale))


def _section(title: str, content: str) -> str:
    return f"<section>\n<h2>{_e(title)}</h2>\n{content}\n</section>"


# --- formatting ----------------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _fmt(value: Any, spec: str) -> str:
    """A number for a table cell; '—' for missing, text passed through."""
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if spec == "d":
        return f"{int(value):,}" if float(value).is_integer() else f"{value:g}"
    if isinstance(value, int) and spec.endswith("g") and abs(value) >= 1e4:
        return f"{value:,}"
    return format(value, spec)


def _ratio(ours: Any, theirs: Any) -> str:
    if not isinstance(ours, (int, float)) or not isinstance(theirs, (int, float)) or not theirs:
        return "—"
    r = ours / theirs
    return f"{r:.4f}×" if 0.9 < r < 1.1 else f"{r:.3g}×"


def _int(value: Any) -> str:
    return _fmt(value, "d")


def _pct(value: Any) -> str:
    return f"{value:.0%}" if isinstance(value, (int, float)) else "?"


def _params(params: Mapping) -> str:
    return ", ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in params.items())


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, (int, float)):
        return "—"
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {sec:02d} s"


_CSS = """
:root { color-scheme: light; --fg: #1d2430; --muted: #5b6575; --line: #d6dbe3; --band: #f4f6f9;
        --hi: #fff4cc; --hi-line: #e0b400; --accent: #2b5d9e; }
* { box-sizing: border-box; }
body { margin: 0; background: #fff; color: var(--fg);
       font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", "Liberation Sans", sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 1.55rem; margin: 0 0 12px; }
h2 { font-size: 1.2rem; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
table { border-collapse: collapse; margin: 6px 0; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 12px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
thead th.num { text-align: right; }
thead th { background: var(--band); border-bottom: 2px solid var(--line); font-weight: 600; white-space: nowrap; }
tbody th { font-weight: 500; white-space: nowrap; }
td.num { text-align: right; white-space: nowrap; font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace;
         font-size: 0.92em; }
table.facts th { color: var(--muted); font-weight: 500; padding-left: 0; width: 7em; }
table.facts td { border-bottom: none; }
table.facts th { border-bottom: none; }
table.compact th, table.compact td { padding: 3px 10px; }
tr.chosen th, tr.chosen td { background: var(--hi); font-weight: 700; }
tr.chosen th:first-child { box-shadow: inset 4px 0 0 var(--hi-line); }
tr.other th, tr.other td { color: var(--muted); }
.tag { display: inline-block; margin-left: 6px; padding: 0 6px; border-radius: 8px; background: var(--hi-line);
       color: #fff; font-size: 0.75em; font-weight: 600; vertical-align: 1px; }
.label { margin: 14px 0 4px; color: var(--muted); }
pre { background: var(--band); border: 1px solid var(--line); border-radius: 4px; padding: 10px 14px;
      overflow-x: auto; font: 13px/1.45 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
pre.command { border-left: 4px solid var(--accent); white-space: pre-wrap; word-break: break-all; }
.note { color: var(--muted); font-size: 0.88rem; max-width: 80ch; margin: 6px 0 0; }
details summary { cursor: pointer; color: var(--accent); margin: 4px 0; }
figure { margin: 18px 0 26px; }
figure img { display: block; max-width: 100%; height: auto; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 0.9rem; margin-top: 6px; max-width: 90ch; }
"""
