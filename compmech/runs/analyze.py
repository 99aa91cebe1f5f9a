"""Analyse a model trained elsewhere: its tokens and activations, with a process -> what a compmech run makes
from its probe on (probe.json, analysis.json, figures/, summary.json, report.html) in an analysis directory.

    compmech.analyze(tokens, {"layer_3": acts}, "mess3", out="analyses/mine")   # tokens [N, T], acts [N, T, d]

The exact beliefs of the very sequences given follow from their tokens (`Source.sequence_theory`: the belief
update of `hmm_processes` along each sequence); the probes are the run's (`compmech.runs.probing.fit_probes`:
context-disjoint held-out error, the paper's string split, the shuffled control), the distance geometry the run's
(`compmech.runs.analysis.geometry_analysis`), the figures and the report the run's.

**Alignment** (`Alignment`). compmech's convention: ``activations[:, t]`` has read ``tokens[:, : t + 1]``, its
target the belief after them. Two other layouts are said explicitly:

- ``start_token = ID``: every sequence begins with a start token (id ``ID`` in the model's vocabulary) that the
  process never emits; position 0's target is the prior (the belief before any token), position t's the belief
  after ``tokens[:, 1 : t + 1]``.
- ``reads = "before"``: ``activations[:, t]`` has read ``tokens[:, : t]`` only (the model predicts token t at
  position t: its inputs were the tokens shifted right, behind a start token that ``tokens`` does not hold);
  position 0's target is the prior and the last token is read by no position.

``vocab_map[x]`` is the model's id of the process's token x (default: the same ids); the tokens given are in the
model's ids. Internally a sequence is written in compmech's form (the process's ids; with a start token or
``reads = "before"`` the start token, id V, first) and analysed exactly as a run with ``[data] bos`` would be.

Bad input raises `AnalysisInputError` (a ValueError; the CLI prints it on one line and exits 2) naming the array
and what was expected.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from compmech.runs.analysis import geometry_analysis
from compmech.runs.array_files import read_arrays
from compmech.runs.contexts import ContextSet
from compmech.runs.environment import run_environment
from compmech.runs.errors import ConfigError
from compmech.runs.files import copy_atomic, mark_complete, mark_unfinished, write_json_atomic, write_text_atomic
from compmech.runs.probing import fit_probes, probe_outcome
from compmech.runs.processes import PROCESS_JSON, SPEC_COPY, build_process, localize_process
from compmech.runs.progress import PhaseTimes, phase
from compmech.runs.records import GeometryResult, ProbeOutcome
from compmech.runs.report import build_report
from compmech.runs.run_figures import analysis_figures, make_figures
from compmech.runs.settings import ExperimentConfig, FigureSettings, ProbeSettings, ProcessSettings, process_settings
from compmech.runs.sources import Source, source_of
from compmech.runs.summary import SUMMARY_JSON, ModelSize, ProcessName, RunSummary
from compmech.runs.toml_io import dumps, read_toml
from probes import distinct_prefix_ids, probe_targets

#: How the activations of a position relate to the tokens (see the module docstring).
READS = ("after", "before")
#: The largest spread between the activations of two strings at one shared prefix, relative to the activations'
#: largest magnitude, taken for float rounding. A causal model gives a prefix one activation whatever follows it;
#: float32 arithmetic in another batch order differs by ~1e-7 relative per operation, so 1e-3 leaves a deep
#: model's accumulated rounding far inside while a misalignment (off by one position) or a non-causal model is
#: far outside.
PREFIX_SPREAD_TOLERANCE = 1e-3
#: Distinct sequences whose probabilities sum to 1 within this are taken for every allowed string of their length.
EVERY_STRING_ATOL = 1e-9
#: Names an activation array cannot have (the probe's concatenation of every layer; reserved arrays of a file).
RESERVED_NAMES = ("concat", "tokens", "logits")
#: The marker of an analysis directory's config.toml (a run's has none).
ANALYSIS_TABLE = "analysis"


class AnalysisInputError(ConfigError):
    """Tokens, activations or options that cannot be analysed: one line naming the array and what was expected."""


@dataclass(frozen=True)
class Alignment:
    """How a model's positions and token ids relate to the process's (see the module docstring)."""

    start_token: int | None = None  # the model's id of a start token at position 0 of every sequence, or None
    reads: str = "after"  # "after": activations[:, t] read tokens[:, :t+1]; "before": tokens[:, :t]
    vocab_map: tuple[int, ...] | None = None  # vocab_map[x] = the model's id of process token x (None: x itself)

    def __post_init__(self) -> None:
        if self.reads not in READS:
            raise AnalysisInputError(
                f'reads must be "after" (activations[:, t] have read tokens[:, :t+1]) or '
                f'"before" (they have read tokens[:, :t]); got {self.reads!r}'
            )
        if self.start_token is not None and self.reads == "before":
            raise AnalysisInputError(
                'start_token and reads = "before" describe the same layout two ways: with a '
                "start token in tokens[:, 0] pass start_token only; without it, reads only"
            )
        if self.start_token is not None and (
            isinstance(self.start_token, bool)
            or not isinstance(self.start_token, (int, np.integer))
            or self.start_token < 0
        ):
            raise AnalysisInputError(f"start_token must be a token id (an integer >= 0); got {self.start_token!r}")
        if self.vocab_map is not None:
            ids = np.asarray(self.vocab_map)
            if (
                ids.ndim != 1
                or ids.size == 0
                or ids.dtype.kind not in "iu"
                or ids.min() < 0
                or np.unique(ids).size != ids.size
            ):
                raise AnalysisInputError(
                    f"vocab_map must list distinct model token ids (integers >= 0), one per "
                    f"process token; got {list(self.vocab_map)!r}"
                )
            if self.start_token is not None and self.start_token in set(ids.tolist()):
                raise AnalysisInputError(
                    f"start_token {self.start_token} is also vocab_map's id of process token "
                    f"{ids.tolist().index(self.start_token)}; a start token is never emitted"
                )
            object.__setattr__(self, "vocab_map", tuple(int(i) for i in ids))
        if self.start_token is not None:
            object.__setattr__(self, "start_token", int(self.start_token))

    @property
    def bos(self) -> bool:
        """Whether compmech's form of the sequences begins with the start token (position 0 = the prior)."""
        return self.start_token is not None or self.reads == "before"

    def model_ids(self, vocab_size: int) -> np.ndarray:
        """[V] the model's id of each process token."""
        if self.vocab_map is None:
            return np.arange(vocab_size)
        if len(self.vocab_map) != vocab_size:
            raise AnalysisInputError(
                f"vocab_map has {len(self.vocab_map)} ids; the process has {vocab_size} "
                "tokens: give one model id per process token, in order"
            )
        return np.asarray(self.vocab_map)

    def to_json(self) -> dict[str, Any]:
        return {
            "start_token": self.start_token,
            "reads": self.reads,
            "vocab_map": None if self.vocab_map is None else list(self.vocab_map),
        }


@dataclass(frozen=True, eq=False)
class SequenceSet:
    """Sequences in compmech's form with their exact theory: what the probe rows are made of."""

    ctx: ContextSet  # tokens [N, T] (process ids; start token V first when bos), beliefs, laws, probs
    every_string: bool  # the set is every allowed string of its length once (the exact evaluation set)
    log_probs: np.ndarray  # [N] natural log-probability of each sequence's process tokens


@dataclass(frozen=True, eq=False)
class Analysis:
    """What `analyze` made: the analysis directory and its records."""

    path: Path
    summary: RunSummary
    probe: ProbeOutcome
    geometry: GeometryResult
    sequences: SequenceSet

    @property
    def probe_json(self) -> dict[str, Any]:
        """probe.json's content."""
        return json.loads((self.path / "probe.json").read_text(encoding="utf-8"))


# ---------------------------------------------------------------------------- the process


def resolve_process(
    process: Any,
    *,
    params: Mapping[str, Any] | None = None,
    module: str | None = None,
    base_dir: str | Path | None = None,
) -> tuple[Source, ProcessSettings | None, Path | None]:
    """(its `Source`, the [process] settings or None, the directory relative paths start from) of ``process``:

    - a registered name (``"mess3"``, with ``params``; after importing ``module`` when given);
    - a path to a spec file (``.toml`` without a [process] table), or to a TOML file with a [process] table (an
      experiment config, or a file holding only that table: mixtures, products, modules as in configs);
    - a [process] table as a mapping, or `compmech.runs.settings.ProcessSettings`;
    - a built process (an `hmm_processes.HMM`, a GHMM, random Markov chains) or a `Source`.
    """
    settings = None
    if isinstance(process, ProcessSettings):
        settings = process
    elif isinstance(process, Mapping):
        settings = process_settings(process)
    elif isinstance(process, (str, Path)):
        path = Path(process)
        if path.suffix.lower() == ".toml":
            raw = read_toml(path, "process file")
            base_dir = path.parent
            settings = process_settings(raw["process"]) if "process" in raw else ProcessSettings(spec=str(path.name))
        else:
            try:
                settings = ProcessSettings(name=str(process), params=dict(params or {}), module=module)
            except ValueError as exc:
                raise AnalysisInputError(f"process: {exc}") from None
    if settings is None:
        if params or module:
            raise AnalysisInputError("params and module are for a process given by name; this one is built")
        return source_of(process), None, None
    return source_of(build_process(settings, base_dir=base_dir)), settings, Path(base_dir) if base_dir else None


# ---------------------------------------------------------------------------- tokens -> the exact theory


def _first_bad(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def check_tokens(tokens: Any, what: str = "tokens") -> np.ndarray:
    """``tokens`` as an int64 [N, T] array, or `AnalysisInputError` naming ``what``."""
    t = np.asarray(tokens)
    if t.ndim != 2 or t.dtype.kind not in "iu":
        raise AnalysisInputError(
            f"{what}: expected an integer array [N, T] (N sequences of T token ids); got {t.dtype} of shape {t.shape}"
        )
    if t.shape[0] < 2 or t.shape[1] < 1:
        raise AnalysisInputError(f"{what}: expected at least 2 sequences of at least 1 token; got shape {t.shape}")
    return t.astype(np.int64)


def process_tokens(tokens: np.ndarray, source: Source, alignment: Alignment) -> np.ndarray:
    """The model's tokens [N, T] in compmech's form [N, T] (process ids; the start token V first when
    ``alignment.bos``), checked: every id is a process token's (or the start token where it belongs)."""
    V = source.vocab_size
    ids = alignment.model_ids(V)  # [V]
    body = tokens[:, 1:] if alignment.start_token is not None else tokens
    if alignment.start_token is not None:
        wrong = tokens[:, 0] != alignment.start_token
        if wrong.any():
            n = int(np.flatnonzero(wrong)[0])
            raise AnalysisInputError(
                f"tokens[{n}, 0] = {tokens[n, 0]}, not the start token {alignment.start_token}: "
                "with start_token every sequence must begin with it"
            )
    flat = body.reshape(-1)
    known = np.isin(flat, ids)
    if not known.all():
        n, t = np.unravel_index(int(np.flatnonzero(~known)[0]), body.shape)
        t += alignment.start_token is not None
        where = (
            "the model's ids of the process tokens " + str(ids.tolist())
            if alignment.vocab_map is not None
            else f"0..{V - 1}"
        )
        raise AnalysisInputError(
            f"tokens[{n}, {t}] = {tokens[n, t]} is not a token of the process {source.name} "
            f"({V} tokens: {where}); map your model's ids with vocab_map (--vocab-map)"
        )
    lookup = np.zeros(int(ids.max()) + 1, np.int64)  # model id -> process token (every id present is checked)
    lookup[ids] = np.arange(V)
    mapped = lookup[body]
    if not alignment.bos:
        return mapped.astype(np.int32)
    start = np.full((len(tokens), 1), V, np.int64)
    if alignment.reads == "before":  # position t has read t tokens: the start token, then all but the last
        mapped = mapped[:, :-1]
    return np.concatenate([start, mapped], axis=1).astype(np.int32)


def sequence_set(source: Source, tokens: np.ndarray, bos: bool) -> SequenceSet:
    """The exact theory of sequences in compmech's form (`Source.sequence_theory`); `AnalysisInputError` when one
    of them is a word the process cannot emit."""
    theory = getattr(source, "sequence_theory", None)
    if theory is None:
        raise AnalysisInputError(
            f"the source of {source.name} ({type(source).__name__}) cannot give the beliefs of "
            "given sequences: implement sequence_theory(tokens, bos) on it"
        )
    block, logp = theory(tokens, bos)
    dead = ~np.isfinite(logp) | ~np.isfinite(block.beliefs).all(axis=(1, 2))
    if dead.any():
        n = int(np.flatnonzero(dead)[0])
        t = (
            int(np.flatnonzero(~np.isfinite(block.beliefs[n]).all(axis=1))[0])
            if not np.isfinite(block.beliefs[n]).all()
            else tokens.shape[1] - 1
        )
        raise AnalysisInputError(
            f"tokens[{n}] cannot come from the process {source.name}: its probability is 0 by "
            f"position {t} (compmech's positions{', after the start token' if bos else ''}); "
            "pass sequences the process can emit"
        )
    L = tokens.shape[1] - (1 if bos else 0)
    probs = np.exp(logp)  # [N]
    # every allowed string once: distinct strings whose probabilities sum to 1 (a missing one would leave its
    # probability out of the sum; up to EVERY_STRING_ATOL in all)
    every = False
    if source.traits.exact_regime and L > 0 and abs(probs.sum() - 1) <= EVERY_STRING_ATOL:
        every = np.unique(tokens, axis=0).shape[0] == len(tokens)
    if not every:  # relative weights only (a long sequence's probability underflows)
        probs = np.exp(logp - logp.max())
        probs = probs / probs.sum()
    optimal = _mean_entropy(block.next_token_probs, probs if every else None)
    ctx = ContextSet(
        tokens=tokens.astype(np.int32),
        probs=probs,
        beliefs=block.beliefs,
        next_token_probs=block.next_token_probs,
        optimal_loss=optimal,
        bos=bos,
    )
    return SequenceSet(ctx=ctx, every_string=bool(every), log_probs=logp)


def _mean_entropy(laws: np.ndarray, weights: np.ndarray | None) -> np.ndarray:
    """[T] the entropy (nats) of the exact next-token laws [N, T, V] averaged over sequences (``weights`` [N]:
    the strings' probabilities; None: uniform, the sequences' own Bayes loss)."""
    h = -(laws * np.log(np.where(laws > 0, laws, 1.0))).sum(axis=2)  # [N, T]
    return h.mean(axis=0) if weights is None else weights @ h


# ---------------------------------------------------------------------------- activations -> context rows


def check_activations(activations: Mapping[str, Any], shape: tuple[int, int]) -> dict[str, np.ndarray]:
    """{name: float32 [N, T, d]} checked against the tokens' [N, T]; `AnalysisInputError` naming the array."""
    if not isinstance(activations, Mapping) or not activations:
        raise AnalysisInputError("activations: expected a mapping {name: array [N, T, d]} with at least one entry")
    out = {}
    for name, a in activations.items():
        if not isinstance(name, str) or not name or name in RESERVED_NAMES:
            raise AnalysisInputError(
                f"activations: {name!r} cannot name a layer (names are non-empty strings other "
                f"than {', '.join(RESERVED_NAMES)})"
            )
        a = np.asarray(a)
        if a.ndim != 3 or a.shape[:2] != shape or a.dtype.kind not in "fiu":
            raise AnalysisInputError(
                f"activations[{name!r}]: expected a float array [N, T, d] = [{shape[0]}, "
                f"{shape[1]}, d] like tokens; got {a.dtype} of shape {a.shape}"
            )
        if a.shape[2] < 1:
            raise AnalysisInputError(f"activations[{name!r}] has width 0; expected [N, T, d] with d >= 1")
        a = a.astype(np.float32, copy=False)
        bad = ~np.isfinite(a)
        if bad.any():
            n, t, _ = _first_bad(bad)
            raise AnalysisInputError(
                f"activations[{name!r}] holds NaN or infinite values (first at sequence {n}, "
                f"position {t}); expected finite numbers"
            )
        out[name] = a
    return out


def context_rows(
    name: str, acts: np.ndarray, ids: np.ndarray, tolerance: float = PREFIX_SPREAD_TOLERANCE
) -> tuple[np.ndarray, float]:
    """One activation row per distinct prefix [U, d] (row u = prefix id u, `probes.distinct_prefix_ids` ``ids``
    [N, T]), and the largest spread between two strings' activations at a shared prefix relative to the largest
    magnitude. A spread above ``tolerance`` raises `AnalysisInputError`: the model is not causal, or the alignment
    is off (a causal model gives a prefix one activation whatever follows it)."""
    N, T, d = acts.shape
    flat, flat_ids = acts.reshape(N * T, d), ids.reshape(-1)
    _, first = np.unique(flat_ids, return_index=True)
    rows = flat[first]  # [U, d]
    scale = float(np.abs(rows).max()) or 1.0
    spread = 0.0
    step = max(1, 2**22 // d)
    for a in range(0, N * T, step):
        diff = np.abs(flat[a : a + step] - rows[flat_ids[a : a + step]]).max(axis=1)  # [chunk]
        worst = int(np.argmax(diff))
        spread = max(spread, float(diff[worst]) / scale)
        if spread > tolerance:
            r = a + worst
            n, t = divmod(r, T)
            m, s = divmod(int(first[flat_ids[r]]), T)
            raise AnalysisInputError(
                f"activations[{name!r}] differ between sequences {m} and {n} at position {t}, where they share a "
                f"prefix (by {spread:.3g} of the activations' scale, above {tolerance:g}): a causal model gives a "
                'prefix one activation; check the alignment (start_token / reads "before") and that the model is '
                "causal"
            )
    return rows, spread


# ---------------------------------------------------------------------------- losses from logits


def logits_log_probs(logits: Any, shape: tuple[int, int], ids: np.ndarray) -> np.ndarray:
    """[N, T, V] the model's log-probabilities of the process's tokens (model ids ``ids`` [V]) from its logits
    [N, T, V_model] (log-softmax over its whole vocabulary); `AnalysisInputError` naming what is wrong."""
    lg = np.asarray(logits, np.float64)
    if lg.ndim != 3 or lg.shape[:2] != shape:
        raise AnalysisInputError(
            f"logits: expected [N, T, vocabulary] = [{shape[0]}, {shape[1]}, V] like the "
            f"activations; got shape {lg.shape}"
        )
    if not np.isfinite(lg).all():
        n, t, _ = _first_bad(~np.isfinite(lg))
        raise AnalysisInputError(f"logits hold NaN or infinite values (first at sequence {n}, position {t})")
    if ids.max() >= lg.shape[2]:
        raise AnalysisInputError(
            f"logits have {lg.shape[2]} entries per position; the process's tokens are the "
            f"model's ids {ids.tolist()}: pass vocab_map (--vocab-map) or the full logits"
        )
    z = lg - lg.max(axis=2, keepdims=True)
    return (z - np.log(np.exp(z).sum(axis=2, keepdims=True)))[:, :, ids]


def loss_record(log_q: np.ndarray, seqs: SequenceSet, vocab_size: int) -> dict[str, Any]:
    """metrics.jsonl's one record from the model's log-probabilities of the process's tokens ``log_q`` [N, T, V]:
    the cross-entropy (nats) of its next-token law against the exact one at each position, averaged over the
    strings (weighted by probability for the whole evaluation set, uniformly over given sequences), beside the
    same average of the exact laws' entropy (the optimum, `SequenceSet.ctx.optimal_loss`)."""
    ctx = seqs.ctx
    p = ctx.next_token_probs[:, :, :vocab_size]  # [N, T, V] (the start token is never next)
    ce = -(p * log_q).sum(axis=2)  # [N, T]
    weights = ctx.probs if seqs.every_string else np.full(len(ce), 1.0 / len(ce))
    by_position = weights @ ce  # [T]
    loss, optimal = float(by_position.mean()), float(ctx.optimal_loss.mean())
    return {
        "step": 0,
        "tokens": 0,
        "loss": loss,
        "optimal_loss": optimal,
        "relative_loss": loss / optimal,
        "loss_by_position": [float(x) for x in by_position],
        "optimal_loss_by_position": [float(x) for x in ctx.optimal_loss],
        "relative_loss_by_position": [float(a / b) if b > 0 else None for a, b in zip(by_position, ctx.optimal_loss)],
    }


# ---------------------------------------------------------------------------- the analysis


def analyze(
    tokens: Any,
    activations: Mapping[str, Any] | str | Path,
    process: Any,
    *,
    out: str | Path | None = None,
    name: str | None = None,
    start_token: int | None = None,
    reads: str = "after",
    vocab_map: Sequence[int] | None = None,
    probe_layer: str | None = None,
    logits: Any = None,
    probe: ProbeSettings | Mapping[str, Any] | None = None,
    figures: FigureSettings | None = None,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
    module: str | None = None,
    model: str = "",
    progress: bool = False,
    command: str | None = None,
    prefix_tolerance: float = PREFIX_SPREAD_TOLERANCE,
) -> Analysis:
    """Analyse a model's activations of given sequences for the beliefs of ``process``; write an analysis directory.

    Parameters
    ----------
    tokens : [N, T] integer array of the model's token ids, or a path to an .npz/.safetensors file holding an array
        ``tokens`` (None: read ``tokens`` from the ``activations`` file).
    activations : {name: [N, T, d]} (position t of a sequence: see the alignment), or a path to a file whose arrays
        (``tokens`` and ``logits`` aside) are the activations, in file order.
    process : a zoo name (``params``, ``module`` as in a config's [process]), a spec file, a TOML file with a
        [process] table (mixtures, products), a [process] mapping, or a built process (`resolve_process`).
    out : the analysis directory (default ``analyses/<name>``); an existing one is overwritten only if it holds an
        analysis.
    start_token, reads, vocab_map : the alignment (`Alignment`, the module docstring).
    probe_layer : the layer of the headline, the figures and the distance geometry (default: the last one given).
    logits : optional [N, T, V_model]: the model's loss against the exact next-token laws is reported too.
    probe : [probe] settings (`ProbeSettings`, or its keys) — rows, weighting, splits, repeats, concat.
    seed : the probe's splits and shuffle.

    Returns the `Analysis`; raises `AnalysisInputError` (a ValueError) naming the array at fault.
    """
    start = time.time()
    times = PhaseTimes()
    source_path = None
    if isinstance(activations, (str, Path)):
        source_path = Path(activations)
        arrays = read_arrays(source_path)
        if tokens is None:
            if "tokens" not in arrays:
                raise AnalysisInputError(
                    f"{source_path} holds no array named 'tokens'; save the token ids [N, T] "
                    "as 'tokens' beside the activations, or pass tokens"
                )
            tokens = arrays["tokens"]
        if logits is None and "logits" in arrays:
            logits = arrays["logits"]
        activations = {k: v for k, v in arrays.items() if k not in ("tokens", "logits")}
    elif tokens is None:
        raise AnalysisInputError("tokens: expected an integer array [N, T]; got None")
    if isinstance(tokens, (str, Path)):
        found = read_arrays(tokens)
        if "tokens" not in found:
            raise AnalysisInputError(f"{tokens} holds no array named 'tokens'")
        tokens = found["tokens"]
    source, settings, base_dir = resolve_process(process, params=params, module=module)
    alignment = Alignment(
        start_token=start_token, reads=reads, vocab_map=None if vocab_map is None else tuple(vocab_map)
    )
    model_tokens = check_tokens(tokens)
    acts = check_activations(activations, model_tokens.shape)
    names = list(acts)
    if probe_layer is not None and probe_layer not in names:  # checked before any work
        raise AnalysisInputError(f"probe_layer {probe_layer!r} is not among the activations ({', '.join(names)})")
    with phase("exact theory", enabled=progress, times=times):
        seqs = sequence_set(source, process_tokens(model_tokens, source, alignment), alignment.bos)
    ids = distinct_prefix_ids(seqs.ctx.tokens)  # [N, T]
    by_context, spreads = {}, {}
    for n in names:
        by_context[n], spreads[n] = context_rows(n, acts[n], ids, prefix_tolerance)
    log_q = (
        None if logits is None else logits_log_probs(logits, model_tokens.shape, alignment.model_ids(source.vocab_size))
    )
    return analyze_context_rows(
        seqs,
        (by_context, spreads),
        source,
        settings,
        base_dir,
        alignment,
        log_q=log_q,
        out=out,
        name=name,
        probe_layer=probe_layer,
        probe=probe,
        figures=figures,
        seed=seed,
        model=model,
        progress=progress,
        command=command,
        prefix_tolerance=prefix_tolerance,
        activations_file=source_path,
        times=times,
        start=start,
    )


def analyze_context_rows(
    seqs: SequenceSet,
    context: tuple[dict[str, np.ndarray], dict[str, float]],
    source: Source,
    settings: ProcessSettings | None,
    base_dir: Path | None,
    alignment: Alignment,
    *,
    log_q: np.ndarray | None = None,
    out: str | Path | None = None,
    name: str | None = None,
    probe_layer: str | None = None,
    probe: ProbeSettings | Mapping[str, Any] | None = None,
    figures: FigureSettings | None = None,
    seed: int = 0,
    model: str = "",
    progress: bool = False,
    command: str | None = None,
    prefix_tolerance: float = PREFIX_SPREAD_TOLERANCE,
    activations_file: Path | None = None,
    extra: Mapping[str, Any] | None = None,
    times: PhaseTimes | None = None,
    start: float | None = None,
) -> Analysis:
    """The analysis from one activation row per distinct prefix: ``context`` = ({name: [U, d]} in
    `probes.distinct_prefix_ids` order of ``seqs.ctx.tokens``, {name: the prefixes' relative spread}); ``log_q``
    [N, T, V] the model's log-probabilities of the process's tokens, if known. Writes the analysis directory."""
    start = time.time() if start is None else start
    times = times or PhaseTimes()
    by_context, spreads = context
    names = list(by_context)
    layer = probe_layer or names[-1]
    if layer not in names:
        raise AnalysisInputError(f"probe_layer {layer!r} is not among the activations ({', '.join(names)})")
    probe_settings = probe_settings_of(probe)
    name = name or (activations_file.stem if activations_file else f"analysis_{source.name}")
    run_dir = Path(out) if out is not None else Path("analyses") / name
    _check_out(run_dir)
    ctx = seqs.ctx
    with phase("probe", enabled=False, times=times):
        data = probe_targets(
            ctx.beliefs, ctx.tokens, ctx.probs, rows=probe_settings.rows, weighting=probe_settings.weighting
        )
        try:
            found = fit_probes(
                probe_settings,
                seed,
                data,
                by_context,
                include_concat=probe_settings.include_concat and len(names) > 1,
                progress=progress,
                times=times,
            )
        except ValueError as exc:  # probes' own input checks (too few strings to hold any out, ...)
            raise AnalysisInputError(f"probe: {exc}") from None
        outcome = probe_outcome(probe_settings, ctx, data, found, layer, layer, None)
    regime = "exact" if seqs.every_string else "sequences"
    info = {
        **outcome.info,
        "regime": regime,
        "regime_sizes": {"name": regime, "n_strings": int(len(ctx.tokens))},
        "analysis": {
            "rows_from": "every allowed string of its length, once (the exact evaluation set)"
            if seqs.every_string
            else "the sequences given, each once as given",
            "alignment": alignment.to_json(),
            "prefix_spread": spreads,
            "prefix_tolerance": prefix_tolerance,
            **dict(extra or {}),
        },
    }
    outcome = dataclasses.replace(outcome, info=info)

    with phase("geometry", enabled=progress, times=times):
        geometry = geometry_analysis(source, outcome, layer, seed, tokens=ctx.tokens)
    history = [loss_record(log_q, seqs, source.vocab_size)] if log_q is not None else []

    cfg = ExperimentConfig(
        name=name,
        seed=seed,
        process=settings or ProcessSettings(name=source.name),
        model={"kind": "external"},
        training={},
        probe=probe_settings,
        figures=figures or FigureSettings(),
        source=str(activations_file or "<arrays>"),
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    mark_unfinished(run_dir)
    _write_inputs(
        run_dir, cfg, source, settings, base_dir, alignment, layer, names, model, activations_file, ctx, extra
    )
    write_json_atomic(run_dir / "probe.json", outcome.to_json())
    write_json_atomic(run_dir / "analysis.json", {"layer": layer, "geometry": geometry.to_json(), "evolution": []})
    write_text_atomic(run_dir / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in history))
    with phase("figures", enabled=progress, times=times):
        paths = make_figures(cfg, run_dir, source, ctx, history, outcome, layer)
        paths += analysis_figures(cfg, run_dir, source, geometry, [], layer)
    last = history[-1] if history else {}
    summary = RunSummary(
        name=name,
        process=ProcessName(name=source.name, params=dict(source.params)),
        steps=0,
        tokens=0,
        source=source.traits.to_json(),
        command=command or _command_text(),
        cwd=str(Path.cwd()),
        model=ModelSize(kind="external", n_params=0),
        final_loss=last.get("loss"),
        optimal_loss=last.get("optimal_loss"),
        relative_loss=last.get("relative_loss"),
        regime=regime,
        regime_sizes=info["regime_sizes"],
        probe_layer=layer,
        probe=outcome.final,
        probe_mse_by_layer={n: r.mse for n, r in outcome.results.items()},
        analysis_layer=layer,
        geometry=geometry.to_json(),
        figures=[str(p.relative_to(run_dir)) for p in paths],
        phase_seconds=dict(times.seconds),
        wall_seconds=time.time() - start,
        environment=run_environment(),
    )
    write_json_atomic(run_dir / SUMMARY_JSON, summary.to_json())
    with phase("report", enabled=progress, times=times):
        build_report(run_dir)
    mark_complete(run_dir, phase_seconds=dict(times.seconds), wall_seconds=time.time() - start)
    return Analysis(path=run_dir, summary=summary, probe=outcome, geometry=geometry, sequences=seqs)


def probe_settings_of(probe: ProbeSettings | Mapping[str, Any] | None) -> ProbeSettings:
    """[probe] settings from `ProbeSettings` or a mapping of its keys; `AnalysisInputError` naming a bad key."""
    if isinstance(probe, ProbeSettings):
        return probe
    try:
        return ProbeSettings(**dict(probe or {}))
    except (TypeError, ValueError) as exc:
        raise AnalysisInputError(f"probe: {exc}") from None


def _check_out(run_dir: Path) -> None:
    """An analysis directory may be written to ``run_dir``: new, empty, or holding an earlier analysis."""
    if not run_dir.exists() or (run_dir.is_dir() and not any(run_dir.iterdir())):
        return
    config = run_dir / "config.toml"
    if run_dir.is_dir() and config.is_file():
        try:
            if ANALYSIS_TABLE in read_toml(config):
                return
        except ConfigError:
            pass
    raise AnalysisInputError(
        f"{run_dir} exists and is not an analysis directory (a run's, or other files); "
        "pass another out directory (--out DIR)"
    )


def _write_inputs(
    run_dir: Path,
    cfg: ExperimentConfig,
    source: Source,
    settings: ProcessSettings | None,
    base_dir: Path | None,
    alignment: Alignment,
    layer: str,
    names: list[str],
    model: str,
    source_path: Path | None,
    ctx: ContextSet,
    extra: Mapping[str, Any] | None,
) -> None:
    """config.toml (the analysis's settings, the process's table with its spec copied in) and process.json."""
    process_table: dict[str, Any] = {"name": source.name}
    copies = ()
    if settings is not None:
        local, copies = localize_process(settings, base_dir)
        for spec in copies:
            copy_atomic(spec.source, run_dir / spec.copy)
        process_table = local.to_dict()
    analysis = {
        "model": model or "a model trained elsewhere",
        "activations": str(source_path) if source_path else "arrays in memory",
        "layers": names,
        "probe_layer": layer,
        "n_strings": int(len(ctx.tokens)),
        "context_length": int(ctx.tokens.shape[1]),
        "bos": bool(ctx.bos),
        "reads": alignment.reads,
        "start_token": alignment.start_token,
        "vocab_map": None if alignment.vocab_map is None else list(alignment.vocab_map),
        **{k: v for k, v in dict(extra or {}).items() if isinstance(v, (str, int, float, bool, list))},
    }
    doc = {
        "name": cfg.name,
        "seed": cfg.seed,
        "process": process_table,
        ANALYSIS_TABLE: analysis,
        "probe": {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(cfg.probe).items()},
        "figures": {"formats": list(cfg.figures.formats), "dpi": cfg.figures.dpi},
    }
    write_text_atomic(run_dir / "config.toml", dumps(doc))
    record = source.matrices_record(
        SPEC_COPY if settings is not None and settings.spec is not None else None,
        settings.kind if settings is not None else None,
        tuple(c.copy for c in copies),
    )
    if record is not None:
        write_json_atomic(run_dir / PROCESS_JSON, record)


def _command_text() -> str:
    """The command line that made this analysis, when it came from the CLI; else a note."""
    argv = sys.argv
    if argv and Path(argv[0]).name in ("compmech", "cli.py") and len(argv) > 1 and argv[1] == "probe":
        return "compmech " + " ".join(shlex.quote(a) for a in argv[1:])
    return "compmech.analyze(...) from Python"
