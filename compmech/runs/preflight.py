"""Checks before a run starts: the memory it will need, and whether its output directory can be written.

`compmech run` calls these after the config is validated and before any directory is created or
any work starts, so an absurd config (a batch of a billion, a d_model of a million, a context whose
V^L strings cannot be enumerated) is refused in a second with the estimate, instead of running
until the kernel kills it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import predictive_models  # a lazy package (PEP 562): JAX is imported when a model config is first built
from compmech.runs.errors import ConfigError, RunDirError
from compmech.runs.machine import MEMORY_HEADROOM, available_memory
from compmech.runs.regime import RegimeChoice
from compmech.runs.settings import ExperimentConfig
from compmech.runs.sources import Source
from probes import CONTEXT_TEST_FRACTION

#: Bytes JAX, XLA and the Python process take before any array of ours (measured ~0.2-0.5 GB).
RUNTIME_BYTES = 500 * 2**20
#: [d, d] float64 arrays a probe fit of d features holds at once (the Gram matrix, its centred and symmetrised
#: copies, eigh's eigenvectors and LAPACK workspace): 7.3-8.3 measured in RSS for d = 1,500-3,000
#: (`probes.probe_layers` on 1,092 contexts). It dominates when d is in the tens of thousands.
FIT_GRAM_COPIES = 8


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak memory of a run by part, in bytes (the phases run in turn: the peak is the largest phase
    plus what every phase keeps: the context set and the runtime)."""

    n_strings: int  # V^L: an upper bound on the allowed strings of the context length
    model: int  # parameters + gradients + Adam's two moments, float32
    training_batch: int  # one fused call's data and one step's activations kept for the backward pass
    context_set: int  # every string with its beliefs and next-token distributions, float64
    probe: int  # activations of every layer, one row per distinct prefix (float32), and the probe rows' targets,
    # ids and weights (the concatenated-layer probe is read a chunk at a time: `probes.probe_layers`)
    probe_fit: int = 0  # the widest probe's fit: FIT_GRAM_COPIES [d, d] float64 arrays, d its features
    runtime: int = RUNTIME_BYTES

    @property
    def peak(self) -> int:
        return self.runtime + self.context_set + self.model + max(self.training_batch, self.probe + self.probe_fit)

    def describe(self) -> str:
        gib = lambda b: f"{b / 2**30:.3g} GiB"  # noqa: E731
        return (
            f"~{gib(self.peak)} (model + Adam {gib(self.model)}, training batch {gib(self.training_batch)}, "
            f"{self.n_strings:.3g} context strings {gib(self.context_set)}, probe activations "
            f"{gib(self.probe)}, probe fit {gib(self.probe_fit)}, runtime {gib(self.runtime)})"
        )


def estimate_memory(
    model: dict,
    training: dict,
    num_states: int,
    vocab_size: int,
    include_concat: bool = True,
    bos: bool = False,
    regime: RegimeChoice | None = None,
) -> MemoryEstimate:
    """Estimate a run's peak memory from its [model] and [training] sections and the process's S and V
    (with a start token, ``bos``: the model has V + 1 tokens and the strings are V^(L - 1)).

    ``regime`` (`compmech.runs.regime.RegimeChoice`; None: exact): the sampled regime enumerates no
    strings; its context set is the validation sample and the kept figure sequences, its probe one
    chunk's activations plus the accumulator (`sampled_memory_parts`).

    Exact Python integers throughout, so V^L of any size is an estimate, never an overflow.
    """
    L = int(model["context_length"])
    V, S, B, k = int(vocab_size), int(num_states), int(training["batch_size"]), int(training["steps_per_call"])
    n_strings = V ** (L - 1) if bos else V**L
    V0 = V  # the process's tokens
    V += 1 if bos else 0  # the model's vocabulary
    n_params, n_probed, width, per_token = model_sizes(model, V)
    model_bytes = 4 * 4 * n_params  # params, grads, Adam m and v
    batch_bytes = 4 * B * L * per_token + 4 * k * B * (L + 1) * (S + 2)  # + the sampled block and its states
    context_bytes = n_strings * L * (8 * (S + V) + 4) + n_strings * 8 * (S + 2)  # + probabilities and levels
    # each distinct prefix once (`predictive_models.prefix_activations`): Σ_{t=1..depth} V^t of them, + 1 for the
    # start token alone
    depth = L - 1 if bos else L
    n_prefixes = (depth if V0 == 1 else (V0 ** (depth + 1) - V0) // (V0 - 1)) + (1 if bos else 0)
    # per row: float64 targets and their shuffle (16 S), four int64 ids, a weight and the split temporaries (64)
    probe_bytes = 4 * n_prefixes * width + n_strings * L * (16 * S + 64)
    if regime is not None and regime.sampled:
        context_bytes, probe_bytes = sampled_memory_parts(model, num_states, vocab_size, regime, include_concat, bos)
    widest = width if include_concat else width // max(1, n_probed)  # the concatenation, else one layer
    return MemoryEstimate(
        n_strings=n_strings,
        model=model_bytes,
        training_batch=batch_bytes,
        context_set=context_bytes,
        probe=probe_bytes,
        probe_fit=probe_fit_bytes(widest),
    )


def probe_fit_bytes(n_features: int) -> int:
    """Peak bytes of one OLS probe fit on ``n_features`` features (the rows' own arrays aside)."""
    return FIT_GRAM_COPIES * 8 * int(n_features) ** 2


def model_sizes(model: dict, vocab_size: int) -> predictive_models.ModelSizes:
    """The `predictive_models.ModelSizes` (parameters, probed layers and their width, values kept per token) of a
    [model] section of any kind with the model's vocabulary ``vocab_size``, as the model's family reckons them
    (`ModelFamily.memory_sizes`: arithmetic for the built-in families, nothing allocated)."""
    config = predictive_models.make_config(
        model.get("kind", "transformer"), int(vocab_size), **{k: v for k, v in model.items() if k != "kind"}
    )
    return predictive_models.family(config).memory_sizes(config)


def check_memory(estimate: MemoryEstimate, source: str, available: int | None = None) -> None:
    """Refuse a run whose estimated peak exceeds the machine's available memory (with both in the message)."""
    available = available_memory() if available is None else available
    if estimate.peak > MEMORY_HEADROOM * available:
        raise ConfigError(
            f"{source}: this run would need {estimate.describe()}, but this machine has "
            f"{available / 2**30:.3g} GiB available; make it smaller ([model] context_length, d_model, "
            "n_layers, [training] batch_size, steps_per_call, or [probe] include_concat = false)"
            + (
                "; the widest probe's fit (the concatenation of every probed layer, unless include_concat = false) "
                "holds about 8 [d, d] float64 arrays for its d features"
                if estimate.probe_fit > estimate.peak / 2
                else "; the exact regime enumerates every one of the V^L strings of the context length (or use "
                '[data] regime = "sampled")'
                if estimate.context_set + estimate.probe > estimate.training_batch + estimate.model
                else ""
            )
        )


def check_output_dir(run_dir: Path) -> None:
    """Refuse an output path that is a file, lies under a file, or cannot be created or written."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"output {run_dir} is a file, not a directory; pass --out DIR with a new directory name")
    existing = run_dir
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise RunDirError(f"output {run_dir} would lie under {existing}, which is a file; pass --out DIR elsewhere")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RunDirError(
            f"output {run_dir} cannot be written ({existing} is not writable); pass --out DIR in a writable place"
        )


def sampled_memory_parts(
    model: dict, num_states: int, vocab_size: int, regime: RegimeChoice, include_concat: bool, bos: bool
) -> tuple[int, int]:
    """(context_set, probe) bytes of the sampled regime for `estimate_memory`.

    context set: the validation sample (tokens, float64 next-token laws and beliefs) and the kept figure
    sequences; probe: one chunk's activations of every layer (float32, + a float64 copy of a cell, + the
    concatenation), the accumulator's K(K+1) cells of D x D sums, the kept sequences' activations, and
    the distinct context ids (8 + K + 1 bytes each, at most the rows).
    """
    L, V, S = int(model["context_length"]), int(vocab_size) + (1 if bos else 0), int(num_states)
    K = int(regime.n_folds)
    sizes = model_sizes(model, V)
    D, layers = sizes.width, sizes.n_probed  # every probed layer's summed width, their number
    per_seq = L * (4 + 8 * (V + S))
    context_bytes = (int(regime.validation_sequences) + int(regime.figure_sequences)) * per_seq
    chunk = min(int(regime.chunk_rows), int(regime.probe_sequences) * L)
    chunk_bytes = 4 * chunk * D * (3 if include_concat else 2) + 8 * chunk * (3 * S + 4)
    accumulator = 2 * 8 * K * (K + 1) * (D * D + 2 * D * S + D)  # the trained model's and the untrained control's
    kept = 4 * int(regime.figure_sequences) * L * D * 2 + 8 * int(regime.figure_sequences) * L * S * (layers + 2)
    ids = (8 + K + 1) * int(regime.probe_sequences) * L
    return context_bytes, chunk_bytes + accumulator + kept + ids


#: `check_learnable` computes the optimal loss up front (to refuse a deterministic process) when the allowed strings
#: of the context length are at most this many: a deterministic process has as few as it has tokens, and the
#: enumeration of this many is a fraction of a second.
DETERMINISTIC_CHECK_STRINGS = 10_000


def check_learnable(cfg: ExperimentConfig, source: Source, context_length: int) -> None:
    """Refuse, before anything is written or trained, a run whose numbers would be undefined: a process with one
    token or one hidden state, too few distinct contexts for the probe's held-out-context split, or an optimal
    loss of 0 at every position (relative loss = loss / optimum undefined). Raises `ConfigError` with the reason.

    Each check is cheap: the source's token and state counts, and its bound on the allowed strings
    (`Source.strings_bound`); the optimal loss only when those strings are few (`DETERMINISTIC_CHECK_STRINGS`).
    """
    name, bos = source.name, cfg.data.bos
    where = f"{cfg.source}: process {name!r}"
    if source.vocab_size < 2:
        raise ConfigError(
            f"{where} has one token: every sequence is the same, its optimal loss is 0 and the "
            "relative loss (loss / optimum) undefined, so there is nothing to learn; use a process "
            "with at least 2 tokens"
        )
    if source.traits.belief_size < 2:
        raise ConfigError(
            f"{where} has one hidden state: its belief is always (1), so there is no belief geometry "
            f"to probe; compmech run needs a process with at least 2 states (compmech info {name} "
            "and compmech msp take it)"
        )
    depth = context_length - 1 if bos else context_length  # the longest context's tokens of the process
    need = math.ceil(1 / CONTEXT_TEST_FRACTION)
    contexts = source.strings_bound(depth)
    if contexts < need:
        raise ConfigError(
            f"{where} has at most {contexts:.0f} distinct contexts of {depth} token(s) (context_length "
            f"= {context_length}{', after the start token' if bos else ''}); the probe holds out "
            f"{CONTEXT_TEST_FRACTION:.0%} of the contexts of a position and needs at least {need} at "
            "some position: use a longer [model] context_length"
        )
    if source.traits.exact_regime and source.strings_bound(depth + (0 if bos else 1)) <= DETERMINISTIC_CHECK_STRINGS:
        optimal = source.optimal_loss(context_length, bos).values  # [T] nats
        if not np.any(optimal > 1e-12):
            raise ConfigError(
                f"{where} is deterministic at this context length: the optimal loss is 0 at every "
                "position, so the relative loss (loss / optimum) is undefined and there is nothing "
                "to learn"
                + (
                    ""
                    if bos
                    else "; with [data] bos = true the model also predicts the first token, which is not determined"
                )
            )
