"""The HTML run report: one self-contained page (inline CSS, images as data URIs, no scripts).

`render_report` works on plain records — the run's summary, metrics and probe results as dicts,
figures as bytes — and imports nothing from the other compmech packages. `write_report` writes
the page atomically.

Numbers: one format throughout (`fmt_number`): significant digits, plain decimals between 1e-4
and 1e6, short scientific notation (8e-5) outside; integers with thousands separators; a missing
value (null) is "–", with the reason in a note under its table when the record gives one.
"""

from __future__ import annotations

import base64
import html
import math
import os
import re
import struct
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeGuard

from figures._common import FigureInputError, layer_label, process_title
from figures.io import write_atomic

MIME_TYPES = {"png": "image/png", "svg": "image/svg+xml"}
MISSING = "\u2013"  # en dash: a value the run does not have
#: Transition matrices with more states than this are not printed (a table of 400 cells is the limit of use).
MAX_STATES_SHOWN = 20
#: The width every figure is shown at (CSS px, or the page's width if narrower): one width for all.
FIGURE_WIDTH_PX = 860

# Paper keys shown in the results table (the rest are listed as "not measured by this run").
_PAPER_KEYS_USED = {
    "relative_loss",
    "probe_mse",
    "probe_r2",
    "probe_mse_heldout",
    "probe_mse_shuffled",
    "layer_mse",
    "probe_mse_over_training",
    "distance_r2_beliefs",
    "distance_r2_next_token",
}
SAME_R2 = 1e-9  # two distance R² closer than this are one number (see `same_distance_geometry`)
SAME_GEOMETRY_NOTE = (
    "The two distance R² are equal, not a copy: for this process the next-token distribution "
    "is an affine image of the belief that scales every distance by one factor (e.g. Mess3, "
    "whose emission matrix is circulant), so next-token and belief geometry coincide."
)


@dataclass(frozen=True)
class Provenance:
    """What produced the page: the package version, the git commit (None outside a checkout), the date."""

    version: str | None = None
    commit: str | None = None
    date: str | None = None  # e.g. "2026-12-01 11:05 UTC"


Table = tuple  # (title, headers, rows) or (title, headers, rows, note)


def same_distance_geometry(geometry: Mapping[str, Any]) -> bool:
    """True when the run says (or the two R² show to 1e-9) that next-token distances are scaled belief distances."""
    flag = geometry.get("next_token_distances_proportional_to_beliefs")
    if flag is not None:
        return bool(flag)
    a, b = geometry.get("distance_r2_beliefs"), geometry.get("distance_r2_next_token")
    return _is_number(a) and _is_number(b) and abs(a - b) <= SAME_R2


def render_report(
    *,
    title: str,
    config_toml: str,
    summary: Mapping[str, Any],
    metrics: Sequence[Mapping],
    probe: Mapping[str, Any],
    figures: Sequence[tuple[str, bytes, str]],
    extra_tables: Iterable[Table] = (),
    process: Mapping[str, Any] | None = None,
    provenance: Provenance | None = None,
    interactive: Sequence[tuple[str, str]] = (),
) -> str:
    """One self-contained HTML page describing a run.

    ``summary``, ``metrics`` (one record per evaluation) and ``probe`` are the run directory's
    summary.json, metrics.jsonl and probe.json; ``config_toml`` the resolved config's text;
    ``figures`` a list of ``(caption, file bytes, suffix)`` with suffix ``png`` or ``svg``;
    ``extra_tables`` a list of ``(title, column headers, rows[, note])`` shown after the results;
    ``process`` the run's process.json (its transition matrices are shown), ``provenance`` the
    version, commit and date for the header; ``interactive`` a list of ``(caption, relative link)`` to interactive
    pages beside the report (Plotly figures, `figures.interactive`), linked above the figures and not embedded, so
    the page stays self-contained without them. Every piece of text is HTML-escaped.
    """
    images = [_figure_html(i, caption, data, suffix) for i, (caption, data, suffix) in enumerate(figures)]
    links = "".join(f'<li><a href="{_e(href)}">{_e(caption)}</a></li>' for caption, href in interactive)
    if links:
        images.insert(
            0,
            f"<p class=note>Interactive (rotate, zoom, hover a point for its context; opens offline):"
            f"</p><ul class=interactive>{links}</ul>",
        )
    try:
        config = tomllib.loads(config_toml)
    except tomllib.TOMLDecodeError:
        config = {}
    sections = [
        _results_table(summary, probe),
        _layer_table(summary, probe),
        _position_table(metrics),
        *(_table_section(*t) for t in extra_tables),
        _process_section(process),
        _history_section(metrics),
        ("Figures", "\n".join(images) if images else "<p class=note>No figures in this run.</p>"),
        ("Resolved config", f"<pre class=config>{_e(config_toml)}</pre>"),
    ]
    sections = [s for s in sections if s]
    ids = [_slug(t, i) for i, (t, _) in enumerate(sections)]
    toc = "".join(f'<li><a href="#{i}">{_e(t)}</a></li>' for i, (t, _) in zip(ids, sections))
    body = "\n".join(
        [
            _header(title, summary, config, probe, provenance),
            f"<nav class=toc aria-label=Contents><p class=label>Contents</p><ol>{toc}</ol></nav>",
            *(_section(i, t, content) for i, (t, content) in zip(ids, sections)),
        ]
    )
    return (
        f"<!DOCTYPE html>\n<html lang=en>\n<head>\n<meta charset=utf-8>\n"
        f'<meta name=viewport content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n{body}\n"
        f"</main>\n</body>\n</html>\n"
    )


def write_report(path: str | os.PathLike, html_text: str) -> Path:
    """Write ``html_text`` to ``path`` (UTF-8): a temp file in the same folder, then ``os.replace``."""
    data = html_text.encode("utf-8")
    return write_atomic(path, lambda handle: handle.write(data))


# --- sections: each returns (title, html) or None -------------------------------------------------


def process_label(process: Mapping) -> str:
    """'mess3 (x = 0.05, alpha = 0.85)', or the bare name for a process without parameters (a composed
    process as `figures.process_title` writes it)."""
    params = process.get("params") or {}
    name = str(process.get("name", "?"))
    return process_title(name, dict(params)) if isinstance(params, Mapping) else name


def model_kind_label(kind: str) -> str:
    """'transformer', 'LSTM', 'GRU' or 'tanh RNN' for a [model] kind."""
    return {"rnn": "tanh RNN", "gru": "GRU", "lstm": "LSTM"}.get(str(kind), str(kind))


def model_description(model: Mapping, n_params: int | None = None) -> str:
    """One line for a [model] section of any kind: '4-layer transformer, d_model 64, 1 head of 8, MLP 256, ...'
    or '1-layer GRU, hidden 64, ...', with the parameter count when known."""
    kind = str(model.get("kind", "transformer"))
    ctx = f"context {model.get('context_length', '?')} tokens"
    count = f", {n_params:,} parameters" if n_params else ""
    if kind != "transformer":
        embed = f", embedding {model['d_embed']}" if model.get("d_embed") not in (None, model.get("d_hidden")) else ""
        return (
            f"{model.get('n_layers', '?')}-layer {model_kind_label(kind)}, hidden "
            f"{model.get('d_hidden', '?')}{embed}, {ctx}{count}"
        )
    heads = model.get("n_heads", "?")
    variant = [
        text
        for key, text, on in (("attn_only", "attention-only", True), ("layer_norm", "no LayerNorm", False))
        if model.get(key, not on) == on
    ]
    if model.get("positional", "learned") == "none":
        variant.append("no position embedding")
    mlp = "" if model.get("attn_only") else f", MLP {model.get('d_mlp', '?')}"
    return (
        f"{model.get('n_layers', '?')}-layer {' '.join(['transformer'] if not variant else [*variant, 'transformer'])}"
        f", d_model {model.get('d_model', '?')}, {heads} head{'' if heads == 1 else 's'} of {model.get('d_head', '?')}"
        f"{mlp}, {ctx}{count}"
    )


def _header(title: str, summary: Mapping, config: Mapping, probe: Mapping, provenance: Provenance | None) -> str:
    proc = process_label(summary.get("process") or {})
    model = config.get("model") or {}
    model_text = (
        model_description(model, (summary.get("model") or {}).get("n_params"))
        if model
        else "see the resolved config below"
    )
    training = config.get("training") or {}
    train_text = f"{_int(summary.get('steps'))} steps, {_int(summary.get('tokens'))} tokens"
    if training.get("batch_size") is not None:
        train_text += (
            f" (batch {training['batch_size']}, {training.get('optimizer', '')} "
            f"lr {training.get('learning_rate', '?')})"
        )
    wall = _duration(summary.get("wall_seconds"))
    if summary.get("train_wall_seconds") is not None:
        wall += f" in all, {_duration(summary['train_wall_seconds'])} training"
        before = summary.get("train_elapsed_seconds")
        if isinstance(before, (int, float)) and before > summary["train_wall_seconds"] + 1:
            wall += (
                f" (the training itself took {_duration(before)}, over earlier calls or beside other seeds "
                "trained in the same step)"
            )
    if probe.get("regime") == "sampled":
        folds = (probe.get("regime_sizes") or {}).get("n_folds", "?")
        probe_text = (
            f"linear probe (least squares with intercept) on {_int(probe.get('n_rows'))} rows from "
            f"{_int(probe.get('n_strings'))} sampled sequences (sampled regime: normal equations "
            f"accumulated in chunks); held out: {folds}-fold by sequence and by context"
        )
    else:
        probe_text = (
            f"linear probe (least squares with intercept) on {_int(probe.get('n_rows'))} rows "
            f"from {_int(probe.get('n_strings'))} strings; rows: {probe.get('rows', '?')}, "
            f"weighting: {probe.get('weighting', '?')}; held out: "
            f"{_pct(probe.get('train_fraction'))} train / rest test, {probe.get('n_repeats', '?')} repeats"
        )
    source = _mapping_at(summary, "source")
    if source.get("kind") not in (None, "HMM", "GeneralizedHMM") and source.get("belief_label"):
        probe_text += f"; probe target: {source['belief_label']}"  # a source whose 'belief' is no state belief
    if source.get("optimal_loss_method") == "monte_carlo":
        proc += " (optimal loss: Monte Carlo over the source's prior)"
    analysis = config.get("analysis")
    if isinstance(analysis, Mapping):  # activations of a model trained elsewhere, analysed (no training here)
        model_text = str(analysis.get("model", "a model trained elsewhere"))
        train_text = f"not trained here: its activations ({analysis.get('activations', '?')}) were analysed"
    facts = [
        ("process", proc),
        ("model", model_text),
        ("training", train_text),
        ("wall time", wall),
        ("probe", probe_text),
        ("seed", config.get("seed")),
    ]
    rows = "".join(f"<tr><th scope=row>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts if v is not None)
    command = summary.get("command") or ""
    made = ""
    if provenance is not None:
        parts = [
            f"compmech {provenance.version}" if provenance.version else None,
            f"commit {provenance.commit}" if provenance.commit else "not a git checkout",
            f"report written {provenance.date}" if provenance.date else None,
        ]
        made = f"<p class=provenance>{_e(' · '.join(p for p in parts if p))}</p>\n"
    return (
        f"<header>\n<h1>{_e(title)}</h1>\n{made}{_headline(summary, probe)}"
        f"<div class=scroll><table class=facts>{rows}</table></div>\n"
        f"<p class=label>Reproduce with</p>\n<pre class=command><code>{_e(command)}</code></pre>\n"
        f"</header>"
    )


def _probe_result(summary: Mapping, probe: Mapping) -> tuple[str | None, Mapping]:
    layer = summary.get("probe_layer") or probe.get("probe_layer")
    layers = _mapping_at(probe, "layers")
    res = summary.get("probe") or layers.get(layer) or {}
    return layer, res if isinstance(res, Mapping) else {}


def _headline(summary: Mapping, probe: Mapping) -> str:
    """One sentence that leads the page: the probe's error on contexts it never saw, then the rest."""
    layer, res = _probe_result(summary, probe)
    if not res:
        return ""
    parts = []
    if "mse_heldout_contexts" in res:
        if res.get("mse_heldout_contexts") is not None:
            text = f"held-out MSE {_pm(res, 'mse_heldout_contexts')} on contexts never seen in the fit"
            if res.get("r2_heldout_contexts") is not None:
                text += f" (R² {fmt_number(res['r2_heldout_contexts'], 4)})"
            parts.append(text)
        else:
            parts.append(
                f"held-out MSE on unseen contexts {MISSING} ({res.get('heldout_contexts_note') or 'withheld'})"
            )
    parts.append(f"in-sample MSE {fmt_number(res.get('mse'))}")
    if res.get("mse_shuffled") is not None:
        parts.append(f"shuffled-target control {fmt_number(res['mse_shuffled'])}")
    untrained = summary.get("probe_untrained")
    if isinstance(untrained, Mapping) and untrained.get("mse_heldout_contexts") is not None:
        parts.append(f"untrained model {fmt_number(untrained['mse_heldout_contexts'])} held out")
    rel = summary.get("relative_loss")
    tail = f"; relative loss {fmt_number(rel, 6)}" if _is_number(rel) else ""
    return f"<p class=headline>Belief probe ({_e(layer or '?')}): {_e('; '.join(parts))}{_e(tail)}.</p>\n"


class ResultRow(NamedTuple):
    """One quantity of a run beside the paper's value (`result_rows`)."""

    label: str
    ours: float | None  # the number (None: not measured, withheld, or a pair shown as text)
    ours_text: str  # as shown: with its ± standard deviation where it has one
    paper: float | None  # the paper's value, None where it gives none
    digits: int


def result_rows(summary: Mapping, probe: Mapping | None = None) -> tuple[list[ResultRow], list[str]]:
    """The run's headline quantities beside the paper's (the report's first table and `compmech run`'s printout:
    the rows are built once, here), and the notes that explain them. ``probe``: probe.json's content, read when
    the summary lacks the probe of its probe layer."""
    probe = probe or {}
    paper = _mapping_at(summary, "paper")
    layer, res = _probe_result(summary, probe)
    notes = []
    rel_text = fmt_number(summary.get("relative_loss"), 6)
    if _is_number(summary.get("relative_loss_stderr")):  # sampled regime: a validation sample's estimate
        rel_text += f" ± {fmt_number(summary['relative_loss_stderr'], 2)}"
    rows = [
        ResultRow(
            "relative loss (CE / optimal CE)", summary.get("relative_loss"), rel_text, paper.get("relative_loss"), 6
        ),
        ResultRow(
            "final loss / optimal loss (nats)",
            None,
            f"{fmt_number(summary.get('final_loss'), 5)} / {fmt_number(summary.get('optimal_loss'), 5)}",
            None,
            3,
        ),
    ]
    if "mse_heldout_contexts" in res:
        cell = _pm(res, "mse_heldout_contexts")
        if res.get("mse_heldout_contexts") is None and res.get("heldout_contexts_note"):
            notes.append(f"Held-out contexts withheld: {res['heldout_contexts_note']}.")
        rows.append(
            ResultRow(f"held-out probe MSE, unseen contexts ({layer})", res.get("mse_heldout_contexts"), cell, None, 3)
        )
        if "r2_heldout_contexts" in res:
            rows.append(
                ResultRow(
                    "held-out R², unseen contexts",
                    res.get("r2_heldout_contexts"),
                    fmt_number(res.get("r2_heldout_contexts"), 4),
                    None,
                    4,
                )
            )
    rows += [
        ResultRow(
            f"probe MSE, in-sample ({layer})", res.get("mse"), fmt_number(res.get("mse")), paper.get("probe_mse"), 3
        ),
        ResultRow("probe R², in-sample", res.get("r2"), fmt_number(res.get("r2"), 4), paper.get("probe_r2"), 4),
        ResultRow(
            "held-out probe MSE (sampled sequences, K-fold)"
            if probe.get("regime") == "sampled" or summary.get("regime") == "sampled"
            else "held-out probe MSE (paper's protocol: string split)",
            res.get("mse_heldout"),
            _pm(res, "mse_heldout"),
            paper.get("probe_mse_heldout"),
            3,
        ),
        ResultRow(
            "shuffled-target control MSE",
            res.get("mse_shuffled"),
            fmt_number(res.get("mse_shuffled")),
            paper.get("probe_mse_shuffled"),
            3,
        ),
    ]
    if res.get("mse_heldout") is None and res.get("heldout_note"):
        notes.append(f"Held-out strings withheld: {res['heldout_note']}.")
    untrained = summary.get("probe_untrained") if isinstance(summary.get("probe_untrained"), Mapping) else None
    if untrained:
        rows.append(
            ResultRow(
                f"untrained model: held-out MSE, unseen contexts ({untrained.get('layer', layer)})",
                untrained.get("mse_heldout_contexts"),
                _pm(untrained, "mse_heldout_contexts"),
                None,
                3,
            )
        )
        notes.append(
            "The untrained-model control fits the same probe, with the same rows and splits, to the same "
            "model at initialisation: what random features of the context carry before any training."
        )
    geo = _mapping_at(summary, "geometry")
    same = bool(geo) and same_distance_geometry(geo)
    for key, label in (
        ("distance_r2_beliefs", "distance R² vs true beliefs"),
        ("distance_r2_next_token", "distance R² vs next-token"),
    ):
        if key in geo or key in paper:
            where = f" ({geo['layer']})" if "layer" in geo else ""
            mark = " †" if same and key == "distance_r2_next_token" else ""
            rows.append(
                ResultRow(f"{label}{where}{mark}", geo.get(key), fmt_number(geo.get(key), 3), paper.get(key), 3)
            )
    if same:
        notes.append("† " + SAME_GEOMETRY_NOTE)
    return rows, notes


def _results_table(summary: Mapping, probe: Mapping) -> tuple[str, str]:
    paper = _mapping_at(summary, "paper")
    rows, notes = result_rows(summary, probe)
    has_paper = any(k not in ("probe_mse_over_training",) for k in paper)
    body = []
    for label, ours, ours_text, theirs, _digits in rows:
        cells = [ours_text]
        if has_paper:
            cells += [paper_number(theirs), _ratio(ours, theirs)]
        body.append(
            f"<tr><th scope=row>{_e(label)}</th>" + "".join(f"<td class=num>{_e(c)}</td>" for c in cells) + "</tr>"
        )
    if has_paper:
        for key, value in paper.items():  # the paper's other numbers, so none is silently dropped
            if key in _PAPER_KEYS_USED or isinstance(value, (dict, list)):
                continue
            body.append(
                f"<tr class=other><th scope=row>{_e(key.replace('_', ' '))} (not measured here)</th>"
                f"<td class=num>{MISSING}</td><td class=num>{_e(paper_number(value))}</td>"
                f"<td class=num>{MISSING}</td></tr>"
            )
        head = (
            "<tr><th>quantity</th><th class=num>ours</th><th class=num>paper</th><th class=num>ours / paper</th></tr>"
        )
        notes.insert(
            0,
            "Paper: Shai et al. 2024, same process. Ratio = ours / paper. The shuffled control fits the "
            "same probe to beliefs permuted across rows: its MSE is what a probe that found no belief "
            "geometry scores.",
        )
        title = "Results vs the paper"
    else:
        head = "<tr><th>quantity</th><th class=num>this run</th></tr>"
        kind = (summary.get("model") or {}).get("kind", "transformer")
        whose = (
            "this process"
            if kind == "transformer"
            else "this model (trained elsewhere, analysed from its activations)"
            if kind == "external"
            else f"this model (the paper trained transformers; this run trained "
            f"{'an' if model_kind_label(kind)[0] in 'AEFHILMNORSX' else 'a'} {model_kind_label(kind)})"
        )
        notes.insert(
            0,
            f"The paper reports no numbers for {whose}. The shuffled control fits the same probe to "
            "beliefs permuted across rows: its MSE is what a probe that found no belief geometry scores.",
        )
        title = "Results"
    return title, (
        f"<div class=scroll><table><thead>{head}</thead><tbody>{''.join(body)}</tbody></table></div>\n"
        + "".join(f"<p class=note>{_e(n)}</p>" for n in notes)
    )


def _layer_table(summary: Mapping, probe: Mapping) -> tuple[str, str] | None:
    layers = _mapping_at(probe, "layers")
    if not layers:
        return None
    chosen = probe.get("probe_layer") or summary.get("probe_layer")
    paper = _mapping_at(summary, "paper")
    paper_layers = paper.get("layer_mse") or {}
    contexts = any("mse_heldout_contexts" in (r or {}) for r in layers.values())
    headers = ["layer", "features"]
    if contexts:
        headers += ["held-out MSE, unseen contexts", "held-out R²"]
    sampled = probe.get("regime") == "sampled"
    headers += [
        "MSE in-sample",
        "R² in-sample",
        "held-out MSE (by sequence)" if sampled else "held-out MSE (string split)",
        "shuffled MSE",
        "shuffled / MSE",
    ]
    if paper_layers:
        headers.append("paper MSE")
    body, notes = [], []
    for name, res in layers.items():
        res = res if isinstance(res, Mapping) else {}
        mse, shuffled = res.get("mse"), res.get("mse_shuffled")
        cells = [_int(res.get("n_features"))]
        if contexts:
            cells += [_pm(res, "mse_heldout_contexts"), fmt_number(res.get("r2_heldout_contexts"), 4)]
            if res.get("mse_heldout_contexts") is None and res.get("heldout_contexts_note"):
                notes.append(f"{name}, unseen contexts: {res['heldout_contexts_note']}")
        cells += [
            fmt_number(mse),
            fmt_number(res.get("r2"), 4),
            _pm(res, "mse_heldout"),
            fmt_number(shuffled),
            _ratio(shuffled, mse),
        ]
        if res.get("mse_heldout") is None and res.get("heldout_note"):
            notes.append(f"{name}, string split: {res['heldout_note']}")
        if paper_layers:
            cells.append(paper_number(paper_layers.get(name)))
        is_chosen = name == chosen
        words = layer_label(name)  # "after block 4", beside the name probe.json and run.fit_probe use
        label = (
            _e(name)
            + (f'<br><span class=note style="white-space:nowrap">{_e(words)}</span>' if words != name else "")
            + (" <span class=tag>probe layer</span>" if is_chosen else "")
        )
        body.append(
            f"<tr{' class=chosen' if is_chosen else ''}><th scope=row>{label}</th>"
            + "".join(f"<td class=num>{_e(c)}</td>" for c in cells)
            + "</tr>"
        )
    head = "".join(f"<th{'' if i == 0 else ' class=num'}>{_e(h)}</th>" for i, h in enumerate(headers))
    note = (
        "block_k is the residual stream after block k; embedding: before the first block; final_ln: after "
        "the final LayerNorm; concat: all layers side by side (the figures name them so). "
        + (
            "Held-out, unseen contexts: the probe is fit on some distinct contexts and scored on the others, "
            "so no test row's context was in the fit. "
            if contexts
            else ""
        )
        + (
            "Sampled regime: rows are sampled sequences, each fold's rows scored by the probe fitted on the "
            "other folds (by a hash of the sequence, or of the context); mean ± std over folds. "
            if sampled
            else "Held-out, string split (the paper's protocol): fit on a random part of the strings, scored on the "
            "rest, all positions pooled, so most test contexts (every short prefix) were also fit rows; mean ± "
            "std over repeats. "
        )
        + "The shuffled control fits beliefs permuted across rows. The highlighted row is "
        "the layer compared with the paper. " + MISSING + ": not available."
    )
    notes_html = "".join(f"<p class=note>{_e(n)}</p>" for n in [note, *(f"Withheld — {n}." for n in notes)])
    return "Probe by layer", (
        f"<div class=scroll><table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}"
        f"</tbody></table></div>\n{notes_html}"
    )


def _position_table(metrics: Sequence[Mapping]) -> tuple[str, str] | None:
    if not metrics or not metrics[-1].get("loss_by_position"):
        return None
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
    excess = [1e3 * (lo - o) if _is_number(lo) and _is_number(o) else None for lo, o in zip(loss, optimum)]
    body = "".join(
        f"<tr><td class=num>{t + 1}</td><td class=num>{_e(fmt_number(lo, 5))}</td>"
        f"<td class=num>{_e(fmt_number(o, 5))}</td><td class=num>{_e(fmt_number(x, 3))}</td>"
        f"<td class=num>{_e(fmt_number(r, 6))}</td></tr>"
        for t, (lo, o, x, r) in enumerate(zip(loss, optimum, excess, relative))
    )
    note = (
        f"After {_int(last.get('tokens'))} tokens (step {_int(last.get('step'))}). Position t predicts "
        "token t+1 from the first t tokens; the optimum is the entropy of the next token given them. "
        "Excess = loss − optimum in millinats (1e-3 nats)."
    )
    return "Loss by context position", (
        "<div class=scroll><table class=compact><thead><tr><th class=num>position</th><th class=num>loss (nats)</th>"
        "<th class=num>optimum (nats)</th><th class=num>excess (millinats)</th><th class=num>loss / optimum</th>"
        f"</tr></thead><tbody>{body}</tbody></table></div>\n<p class=note>{_e(note)}</p>"
    )


def _history_section(metrics: Sequence[Mapping]) -> tuple[str, str] | None:
    if not metrics:
        return None
    cols = [
        ("step", "step", 0),
        ("tokens", "tokens", 0),
        ("loss", "loss (nats)", 5),
        ("relative_loss", "relative loss", 6),
        ("train_loss", "train loss", 5),
        ("learning_rate", "learning rate", 3),
        ("elapsed_s", "elapsed (s)", 3),
    ]
    cols = [c for c in cols if any(m.get(c[0]) is not None for m in metrics)]
    head = "".join(f"<th class=num>{_e(label)}</th>" for _, label, _ in cols)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td class=num>{_e(fmt_number(m.get(key), d) if d else _int(m.get(key)))}</td>" for key, _, d in cols
        )
        + "</tr>"
        for m in metrics
    )
    return "Training history", (
        f"<details><summary>{len(metrics)} evaluations (exact loss over all contexts)</summary>"
        f"<div class=scroll><table class=compact><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
        "</details>"
    )


def _table_section(
    title: str, headers: Sequence[str], rows: Sequence[Sequence], note: str | None = None
) -> tuple[str, str]:
    head = "".join(f"<th{' class=num' if i else ''}>{_e(h)}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>"
        + "".join(f"<td{' class=num' if i else ''}>{_e(fmt_number(v, 4))}</td>" for i, v in enumerate(row))
        + "</tr>"
        for row in rows
    )
    notes = f"\n<p class=note>{_e(note)}</p>" if note else ""
    return title, (
        f"<div class=scroll><table class=compact><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
        f"</table></div>{notes}"
    )


def _process_section(process: Mapping[str, Any] | None) -> tuple[str, str] | None:
    """The process's labelled transition matrices T[x][i, j] = P(emit x, go to j | in i), one table per token."""
    if not process:
        return None
    T = process.get("T") or []
    V = len(T)
    S = len(T[0]) if V else 0
    states = list(process.get("state_names") or [str(i) for i in range(S)])
    tokens = list(process.get("token_names") or [str(x) for x in range(V)])
    kind = process.get("kind") or "HMM"
    facts = f"{process_label(process)}: {kind}, {S} hidden states, {V} tokens"
    if process.get("spec_file"):
        facts += f"; defined in {process['spec_file']} (copied into the run directory)"
    parts = [f"<p>{_e(facts)}.</p>"]
    if S > MAX_STATES_SHOWN:
        parts.append(
            f"<p class=note>{S} states: too large to show here (the limit is {MAX_STATES_SHOWN}); the "
            "full tensor is in process.json.</p>"
        )
    else:
        for x, matrix in enumerate(T):
            head = "<th>from \\ to</th>" + "".join(f"<th class=num>{_e(s)}</th>" for s in states)
            body = "".join(
                f"<tr><th scope=row>{_e(states[i])}</th>"
                + "".join(f"<td class=num>{_e(_matrix_entry(v))}</td>" for v in row)
                + "</tr>"
                for i, row in enumerate(matrix)
            )
            parts.append(
                f"<div class=matrix><p class=label>token {_e(tokens[x])}: T[{_e(tokens[x])}]</p>"
                f"<div class=scroll><table class=compact><thead><tr>{head}</tr></thead><tbody>{body}"
                "</tbody></table></div></div>"
            )
        what = (
            "probability of emitting the token and moving to the column's state, from the row's state; "
            "the matrices summed over tokens are row-stochastic"
            if kind == "HMM"
            else "a generalized HMM: entries may be negative (quasi-probabilities); the word probabilities they "
            "give are non-negative"
        )
        parts.append(f"<p class=note>{_e('Entry (i, j) of T[x]: ' + what + '. Blank: 0.')}</p>")
    return "Process: transition matrices", "<div class=matrices>" + "".join(parts) + "</div>"


def _matrix_entry(value: Any) -> str:
    if _is_number(value) and value == 0:
        return ""
    return fmt_number(value, 4)


def _figure_html(index: int, caption: str, data: bytes, suffix: str) -> str:
    kind = suffix.lower().lstrip(".")
    mime = MIME_TYPES.get(kind)
    if mime is None:
        raise FigureInputError(f"figure {caption!r}: suffix must be one of {sorted(MIME_TYPES)}, got {suffix!r}")
    if not isinstance(data, (bytes, bytearray)) or not data:
        raise FigureInputError(
            f"figure {caption!r}: expected the file's bytes, got {type(data).__name__}{' (empty)' if not data else ''}"
        )
    if kind == "png" and not bytes(data).startswith(b"\x89PNG\r\n\x1a\n"):
        raise FigureInputError(f"figure {caption!r}: the bytes are not a PNG file")
    if kind == "svg" and b"<svg" not in bytes(data[:4096]):
        raise FigureInputError(f"figure {caption!r}: the bytes are not an SVG file (no <svg> element)")
    uri = f"data:{mime};base64,{base64.b64encode(bytes(data)).decode('ascii')}"
    size = _png_css_size(bytes(data)) if kind == "png" else None
    dims = f" width={size[0]} height={size[1]}" if size else ""
    return (
        f'<figure id=fig-{index + 1}><img src="{uri}"{dims} alt="{_e(caption)}">'
        f"<figcaption><b>Figure {index + 1}.</b> {_e(caption)}</figcaption></figure>"
    )


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
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if kind == b"pHYs" and length == 9 and pos + 17 <= len(data):
            ppu_x, _, unit = struct.unpack(">IIB", data[pos + 8 : pos + 17])
            if unit == 1 and ppu_x > 0:  # pixels per metre
                dpi = ppu_x * 0.0254
            break
        if kind in (b"IDAT", b"IEND"):
            break
        pos += 12 + length
    scale = 96.0 / dpi
    return max(1, round(width * scale)), max(1, round(height * scale))


def _section(anchor: str, title: str, content: str) -> str:
    return f"<section id={anchor}>\n<h2>{_e(title)}</h2>\n{content}\n</section>"


def _slug(title: str, index: int) -> str:
    return f"s{index + 1}-" + re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


# --- formatting ----------------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _is_number(value: Any) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _mapping_at(mapping: Mapping, key: str) -> Mapping:
    """``mapping[key]`` where it is a mapping, else an empty one (a key that is missing, None or not a table)."""
    value = mapping.get(key)
    return value if isinstance(value, Mapping) else {}


def fmt_number(value: Any, digits: int = 3) -> str:
    """The page's one number format: `digits` significant digits; "–" for missing; text passed through.

    Integers get thousands separators; floats are plain decimals for 1e-4 <= |v| < 1e6, else short
    scientific notation ("8e-5", "1.2e7"). Non-finite floats are written as they are ("nan", "inf").
    """
    if value is None:
        return MISSING
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    if -4 <= magnitude < 6:
        decimals = max(0, digits - 1 - magnitude)
        text = f"{value:,.{decimals}f}"
        if decimals and float(text.replace(",", "")) and abs(float(text.replace(",", ""))) >= 10 ** (magnitude + 1):
            text = f"{value:,.{max(0, decimals - 1)}f}"  # rounding carried into the next power of ten
        return text
    mantissa, exponent = f"{value:.{max(0, digits - 1)}e}".split("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def paper_number(value: Any) -> str:
    """A number quoted from a paper, with the digits it was published with (0.00039, 1.0002), or "–"."""
    if not _is_number(value):
        return MISSING if value is None else str(value)
    text = repr(float(value))
    return text if "e" not in text else fmt_number(value, len(text.split("e")[0].replace(".", "").lstrip("0-")))


def _pm(res: Mapping, key: str) -> str:
    """``res[key]`` ± ``res[key + "_std"]`` (the std to 2 significant digits), or "–". A std of exactly 0 is
    that of a single split (n_repeats = 1), not a measured spread, and is left out."""
    text = fmt_number(res.get(key))
    std = res.get(f"{key}_std")
    if res.get(key) is not None and _is_number(std) and std != 0:
        text += f" ± {fmt_number(std, 2)}"
    return text


def _ratio(ours: Any, theirs: Any) -> str:
    if not _is_number(ours) or not _is_number(theirs) or not theirs:
        return MISSING
    r = ours / theirs
    return f"{fmt_number(r, 5 if 0.9 < r < 1.1 else 3)}×"


def _int(value: Any) -> str:
    if _is_number(value) and float(value).is_integer():
        return f"{int(value):,}"
    return fmt_number(value)


def _pct(value: Any) -> str:
    return f"{value:.0%}" if _is_number(value) else "?"


def _duration(seconds: Any) -> str:
    if not _is_number(seconds):
        return MISSING
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
main { max-width: 1000px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 1.5rem; margin: 0 0 6px; overflow-wrap: anywhere; }
h2 { font-size: 1.2rem; margin: 32px 0 10px; padding-bottom: 4px; border-bottom: 2px solid var(--line); }
.provenance { color: var(--muted); margin: 0 0 10px; font-size: 0.9rem; }
.headline { font-size: 1.02rem; margin: 8px 0 12px; padding: 8px 12px; background: var(--band);
            border-left: 4px solid var(--accent); max-width: 90ch; }
.scroll { max-width: 100%; overflow-x: auto; }
table { border-collapse: collapse; margin: 6px 0; font-variant-numeric: tabular-nums; }
th, td { padding: 5px 12px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
thead th.num { text-align: right; }
thead th { background: var(--band); border-bottom: 2px solid var(--line); font-weight: 600; }
tbody th { font-weight: 500; }
td.num { text-align: right; white-space: nowrap; font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas,
monospace;
         font-size: 0.92em; }
table.facts th { color: var(--muted); font-weight: 500; padding-left: 0; width: 7em; }
table.facts td, table.facts th { border-bottom: none; }
table.compact th, table.compact td { padding: 3px 10px; }
tr.chosen th, tr.chosen td { background: var(--hi); font-weight: 700; }
tr.chosen th:first-child { box-shadow: inset 4px 0 0 var(--hi-line); }
tr.other th, tr.other td { color: var(--muted); }
.tag { display: inline-block; margin-left: 6px; padding: 0 6px; border-radius: 8px; background: var(--hi-line);
       color: #fff; font-size: 0.75em; font-weight: 600; vertical-align: 1px; }
.label { margin: 14px 0 4px; color: var(--muted); }
nav.toc { margin: 18px 0 0; }
nav.toc ol { margin: 0; padding-left: 1.6em; columns: 2 16em; }
nav.toc a { color: var(--accent); text-decoration: none; }
nav.toc a:hover { text-decoration: underline; }
pre { background: var(--band); border: 1px solid var(--line); border-radius: 4px; padding: 10px 14px;
      overflow-x: auto; font: 13px/1.45 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; }
pre.command { border-left: 4px solid var(--accent); white-space: pre-wrap; word-break: break-all; }
.note { color: var(--muted); font-size: 0.88rem; max-width: 90ch; margin: 6px 0 0; }
.matrices { display: flex; flex-wrap: wrap; gap: 4px 28px; }
.matrices > p { flex-basis: 100%; }
.matrix { max-width: 100%; }
details summary { cursor: pointer; color: var(--accent); margin: 4px 0; }
figure { margin: 18px auto 30px; text-align: center; }
figure img { display: block; margin: 0 auto; width: FIGURE_WIDTHpx; max-width: 100%; height: auto;
             border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 0.9rem; margin: 6px auto 0; max-width: 90ch; text-align: left; }
""".replace("FIGURE_WIDTH", str(FIGURE_WIDTH_PX))
