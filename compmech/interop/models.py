"""Analyse a model object where it lives: a TransformerLens ``HookedTransformer``, a Hugging Face causal LM, or any
callable tokens -> {name: activations}; it is run on the process's evaluation set and analysed like a run.

    compmech.analyze_model(hooked, "mess3", names=["blocks.3.hook_resid_post"], out="analyses/tl")

The evaluation set: every allowed string of the context length with its exact theory (`Source.context_set`) when
there are at most ``max_strings`` of them, else ``n_sequences`` sequences sampled from the process with their exact
beliefs (`Source.sample_block`, then `Source.sequence_theory` in float64). The model reads them in its own ids
(``vocab_map``), behind its start token when it has one (``start_token``); each distinct prefix's activation is
kept once (the [N, T, d] arrays are never all held), with the check that strings sharing a prefix agree.

Adapters (`model_runner`): an object with ``run_with_cache`` (TransformerLens: ``names`` are its hook names,
default every ``blocks.{l}.hook_resid_post`` after ``blocks.0.hook_resid_pre``); an object whose ``config`` has
``num_hidden_layers`` or ``n_layer`` (Hugging Face: ``names`` are ``hidden_states.{i}``, i = 0 the embeddings, i = L
the last block's output — for GPT-2 after its final LayerNorm ``ln_f``; default all); any other callable, given
tokens [B, T] (NumPy int64) and returning {name: [B, T, d]} (and optionally ``"logits"`` [B, T, V_model]).
torch is imported only for the first two.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from compmech.runs.analyze import (
    PREFIX_SPREAD_TOLERANCE,
    Alignment,
    Analysis,
    AnalysisInputError,
    SequenceSet,
    analyze_context_rows,
    logits_log_probs,
    resolve_process,
    sequence_set,
)
from compmech.runs.progress import phase
from compmech.runs.sources import Source
from probes import distinct_prefix_ids

#: Most strings enumerated for the evaluation set before sampling instead (the runner's [data] max_exact_strings).
MAX_STRINGS = 200_000
#: Sequences sampled when the strings are too many to enumerate.
N_SEQUENCES = 4000


@dataclass(frozen=True)
class ModelRunner:
    """A model as the analysis runs it: tokens [B, T] (model ids) -> ({name: float32 [B, T, d]}, logits or None)."""

    kind: str  # "transformer_lens" | "huggingface" | "callable"
    run: Callable[[np.ndarray], tuple[dict[str, np.ndarray], np.ndarray | None]]
    names: tuple[str, ...]
    context_length: int | None  # the model's longest input, where it says (None: unknown)
    description: str


def model_runner(model: Any, names: Sequence[str] | None = None) -> ModelRunner:
    """The `ModelRunner` of ``model`` (see the module docstring); `AnalysisInputError` for a name it lacks."""
    if hasattr(model, "run_with_cache") and hasattr(model, "cfg"):
        return _transformer_lens_runner(model, names)
    config = getattr(model, "config", None)
    if config is not None and (hasattr(config, "num_hidden_layers") or hasattr(config, "n_layer")):
        return _huggingface_runner(model, names)
    if callable(model):
        return _callable_runner(model, names)
    raise AnalysisInputError(
        f"model: a {type(model).__name__} is not a HookedTransformer, a Hugging Face causal LM "
        "or a callable tokens -> {name: activations}"
    )


def _torch_tokens(model: Any, tokens: np.ndarray) -> Any:
    import torch  # the model is a torch module: torch is installed

    try:
        device = next(model.parameters()).device
    except (StopIteration, AttributeError):
        device = "cpu"
    return torch.as_tensor(tokens, dtype=torch.long, device=device)


def _numpy(x: Any) -> np.ndarray:
    return x.detach().float().cpu().numpy() if hasattr(x, "detach") else np.asarray(x, np.float32)


def _transformer_lens_runner(model: Any, names: Sequence[str] | None) -> ModelRunner:
    import torch  # a HookedTransformer is a torch module

    L = model.cfg.n_layers
    wanted = list(names) if names else ["blocks.0.hook_resid_pre"] + [f"blocks.{l}.hook_resid_post" for l in range(L)]
    known = set(model.hook_dict)
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise AnalysisInputError(
            f"names: {unknown[0]!r} is not a hook of this HookedTransformer; its hooks include "
            f"{', '.join(n for n in model.hook_dict if 'resid' in n)}"
        )

    def run(tokens: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        with torch.no_grad():
            logits, cache = model.run_with_cache(_torch_tokens(model, tokens), names_filter=lambda n: n in wanted)
        return {n: _numpy(cache[n]) for n in wanted}, _numpy(logits)

    return ModelRunner(
        "transformer_lens",
        run,
        tuple(wanted),
        int(model.cfg.n_ctx),
        f"a TransformerLens HookedTransformer ({L} layers, d_model {model.cfg.d_model})",
    )


def _huggingface_runner(model: Any, names: Sequence[str] | None) -> ModelRunner:
    import torch  # a Hugging Face model here is a torch module

    config = model.config
    L = int(getattr(config, "num_hidden_layers", None) or config.n_layer)
    allowed = [f"hidden_states.{i}" for i in range(L + 1)]
    wanted = list(names) if names else allowed
    unknown = [n for n in wanted if n not in allowed]
    if unknown:
        raise AnalysisInputError(
            f"names: {unknown[0]!r} is not a hidden state of this model; its names are "
            f"hidden_states.0 (the embeddings) .. hidden_states.{L} (the last block's output)"
        )
    index = [int(n.split(".")[1]) for n in wanted]

    def run(tokens: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        with torch.no_grad():
            output = model(input_ids=_torch_tokens(model, tokens), output_hidden_states=True)
        hidden = output.hidden_states
        return {n: _numpy(hidden[i]) for n, i in zip(wanted, index)}, _numpy(output.logits)

    n_ctx = getattr(config, "n_positions", None) or getattr(config, "max_position_embeddings", None)
    kind = getattr(config, "model_type", type(model).__name__)
    return ModelRunner(
        "huggingface",
        run,
        tuple(wanted),
        int(n_ctx) if n_ctx else None,
        f"a Hugging Face {kind} model ({L} layers, through its hidden states)",
    )


def _callable_runner(model: Callable, names: Sequence[str] | None) -> ModelRunner:
    def run(tokens: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        out = model(tokens)
        if not isinstance(out, Mapping):
            raise AnalysisInputError(
                f"model: the callable returned a {type(out).__name__}; it must return {{name: activations [B, T, d]}}"
            )
        logits = out.get("logits")
        acts = {n: a for n, a in out.items() if n != "logits"}
        if names:
            unknown = [n for n in names if n not in acts]
            if unknown:
                raise AnalysisInputError(
                    f"names: {unknown[0]!r} is not among the callable's outputs ({', '.join(acts)})"
                )
            acts = {n: acts[n] for n in names}
        return {n: _numpy(a) for n, a in acts.items()}, None if logits is None else _numpy(logits)

    return ModelRunner("callable", run, tuple(names or ()), None, f"a callable ({getattr(model, '__name__', '?')})")


def evaluation_set(
    source: Source,
    context_length: int,
    bos: bool,
    *,
    max_strings: int = MAX_STRINGS,
    n_sequences: int = N_SEQUENCES,
    seed: int = 0,
) -> SequenceSet:
    """Every allowed string of ``context_length`` model positions with its exact theory when they are at most
    ``max_strings`` (and the source has an exact theory), else ``n_sequences`` sampled ones (with ``seed``)."""
    L = context_length - 1 if bos else context_length
    if source.traits.exact_regime and source.strings_bound(L) <= max_strings:
        ctx = source.context_set(context_length, bos)
        logp = np.log(ctx.probs)
        return SequenceSet(ctx=ctx, every_string=True, log_probs=logp)
    import jax  # the sources sample from a JAX key (the runner's sampled regime does the same)

    block = source.sample_block(jax.random.key(seed), int(n_sequences), context_length, bos)
    return sequence_set(source, block.tokens, bos)


def analyze_model(
    model: Any,
    process: Any,
    names: Sequence[str] | Mapping[str, str] | None = None,
    *,
    context_length: int | None = None,
    start_token: int | None = None,
    vocab_map: Sequence[int] | None = None,
    batch_size: int = 512,
    max_strings: int = MAX_STRINGS,
    n_sequences: int = N_SEQUENCES,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
    module: str | None = None,
    prefix_tolerance: float = PREFIX_SPREAD_TOLERANCE,
    progress: bool = False,
    **analyze_options: Any,
) -> Analysis:
    """Run ``model`` on the evaluation set of ``process`` and analyse its activations (`compmech.analyze`'s outputs).

    ``names``: the activations (a list of the model's names, or {label: model name} to label them in probe.json
    and the figures); default: the model's residual stream (see the module docstring). ``context_length``: model
    positions, the start token included (default: a TransformerLens model's n_ctx; required otherwise).
    ``start_token``: the model's id of the start token it reads first (position 0's target is then the prior);
    ``vocab_map[x]``: the model's id of process token x. The other keywords go to `compmech.analyze` (``out``,
    ``name``, ``probe_layer``, ``probe``, ``figures``). The model's logits, where it gives them, are scored
    against the exact next-token laws (loss by position, relative loss).
    """
    labels = dict(names) if isinstance(names, Mapping) else None
    runner = model_runner(model, list(labels.values()) if labels else names)
    rename = {v: k for k, v in labels.items()} if labels else {}
    source, settings, base_dir = resolve_process(process, params=params, module=module)
    alignment = Alignment(start_token=start_token, vocab_map=None if vocab_map is None else tuple(vocab_map))
    T = context_length or runner.context_length
    if T is None or (runner.kind == "huggingface" and context_length is None):
        raise AnalysisInputError(
            "context_length: say how many positions the model reads (the start token "
            "included); this model's maximum is no analysis length"
        )
    if runner.context_length is not None and T > runner.context_length:
        raise AnalysisInputError(f"context_length {T} exceeds the model's {runner.context_length} positions")
    with phase("evaluation set", enabled=progress):
        seqs = evaluation_set(source, T, alignment.bos, max_strings=max_strings, n_sequences=n_sequences, seed=seed)
    ctx = seqs.ctx
    ids = alignment.model_ids(source.vocab_size)  # [V]
    table = np.concatenate([ids, [alignment.start_token if alignment.bos else -1]])  # compmech id -> model id
    model_tokens = table[ctx.tokens]  # [N, T] the model's ids
    prefix_ids = distinct_prefix_ids(ctx.tokens)  # [N, T]
    rows = PrefixRows(prefix_ids, prefix_tolerance)
    log_q = []  # per batch [B, T, V] log-probabilities of the process's tokens
    N = len(model_tokens)
    with phase("activations", total=N, enabled=progress, unit="sequence") as tick:
        for start in range(0, N, int(batch_size)):
            stop = min(start + int(batch_size), N)
            acts, logits = runner.run(model_tokens[start:stop])
            rows.add({rename.get(n, n): a for n, a in acts.items()}, start, stop)
            if logits is not None:
                log_q.append(logits_log_probs(logits, (stop - start, T), ids))
            tick(stop - start)
    extra = {
        "model_kind": runner.kind,
        "evaluation_set": "every allowed string"
        if seqs.every_string
        else f"{N} sequences sampled from the process (seed {seed})",
    }
    return analyze_context_rows(
        seqs,
        rows.result(),
        source,
        settings,
        base_dir,
        alignment,
        log_q=np.concatenate(log_q) if log_q and sum(len(q) for q in log_q) == N else None,
        model=runner.description,
        prefix_tolerance=prefix_tolerance,
        seed=seed,
        progress=progress,
        extra=extra,
        **analyze_options,
    )


class PrefixRows:
    """Activations of a batch of strings at a time -> one row per distinct prefix (`probes.distinct_prefix_ids`
    order), with the largest spread between two strings at a shared prefix relative to the rows' magnitude."""

    def __init__(self, prefix_ids: np.ndarray, tolerance: float):
        self.ids = prefix_ids  # [N, T]
        self.n_prefixes = int(prefix_ids.max()) + 1
        self.tolerance = tolerance
        self.rows: dict[str, np.ndarray] = {}
        self.seen = np.zeros(self.n_prefixes, bool)
        self.worst: dict[str, float] = {}  # name -> largest absolute spread so far

    def add(self, acts: Mapping[str, np.ndarray], start: int, stop: int) -> None:
        ids = self.ids[start:stop]
        B, T = ids.shape
        if not acts:
            raise AnalysisInputError("model: no activations came back; pass names")
        flat_ids = ids.reshape(-1)
        _, first = np.unique(flat_ids, return_index=True)
        new = ~self.seen[flat_ids[first]]
        for name, a in acts.items():
            a = np.asarray(a, np.float32)
            if a.ndim != 3 or a.shape[:2] != (B, T):
                raise AnalysisInputError(
                    f"activations[{name!r}]: the model returned shape {a.shape}; expected [B, T, d] = [{B}, {T}, d]"
                )
            if not np.isfinite(a).all():
                raise AnalysisInputError(f"activations[{name!r}] hold NaN or infinite values; expected finite numbers")
            flat = a.reshape(B * T, -1)
            store = self.rows.get(name)
            if store is None:
                store = self.rows[name] = np.zeros((self.n_prefixes, flat.shape[1]), np.float32)
            store[flat_ids[first[new]]] = flat[first[new]]
            self.worst[name] = max(self.worst.get(name, 0.0), float(np.abs(flat - store[flat_ids]).max()))
        self.seen[flat_ids] = True

    def result(self) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        """({name: [U, d]}, {name: relative spread}); `AnalysisInputError` when a spread is above the tolerance."""
        spreads = {}
        for name, store in self.rows.items():
            spreads[name] = self.worst[name] / (float(np.abs(store).max()) or 1.0)
            if spreads[name] > self.tolerance:
                raise AnalysisInputError(
                    f"activations[{name!r}] differ between strings that share a prefix by {spreads[name]:.3g} of "
                    f"their scale (above {self.tolerance:g}): the model is not causal at this layer, or it reads a "
                    "start token it was not given (start_token)"
                )
        return self.rows, spreads
