"""What a model family is: the `ModelFamily` protocol, with the plumbing every family shares written once.

A model family is a set of next-token models with one config class (the transformer and its variants; the
recurrent RNN / GRU / LSTM). Training, checkpoints, evaluation, the probes and the runner reach a model only
through the functions of `predictive_models.models`, which look up the config's family in the registry
(`predictive_models.models.register_family`) and ask it. So a new family is one module that defines:

1. **A config class**: a frozen dataclass (hashable: it keys the jit caches) with int fields ``vocab_size``
   (tokens 0..vocab_size-1) and ``context_length`` (the longest input), whose ``__post_init__`` checks its
   fields with one-line ValueErrors. Its other fields are what a run's ``[model]`` table may set (a field
   named ``kind`` receives the kind, for a family that serves several).
2. **A module class**: an ``nnx.Module`` built as ``module_class(config, rngs=nnx.Rngs(params=key))`` with
   float32 parameters (explicit dtypes), keeping ``self.config``, with
   ``__call__(tokens [B, T] int) -> logits [B, T, vocab_size]`` (causal: position t reads tokens 0..t and
   predicts token t + 1) and ``forward(tokens, names, logits: bool) -> (logits or None, {name: [B, T, width]})``
   computing the activations ``names`` (and the logits only when asked).
3. **A `ModelFamily` subclass** naming them (``config_class``, ``module_class``, ``kinds``: the ``[model]
   kind`` names it serves) and `activation_names`; then ``register_family(MyFamily())``.

Everything else has a default here, which a family overrides when it knows better: `layer_names` (the
default probed set; default every activation), `probe_layer_name` (the paper's single probed layer; default
the last of `layer_names`), `activation_shape` (default: traced from ``forward``, nothing computed),
`memory_sizes` (the numbers the run's memory preflight needs; default from the abstract parameters and
the activation shapes), `kind_of` / `config_to_dict` / `config_from_dict` (checkpoint conversion), and the
batched inference: `run_batched` (whole sequences, jitted, ``batch_size`` rows per call) and
`prefix_activations` (each distinct prefix's row once; from `prefix_steps` when the family has one, else
from full forwards of the distinct strings). A family whose model can run one position from its
predecessor's state (a KV cache, a recurrent state) implements `prefix_steps`, and `run_batched` /
`prefix_activations` then compute each distinct prefix once when that at least halves the work.

The parameter plumbing (`graphdef`, `abstract_params`, `n_params`, `init_params`, `to_state`, `to_model`,
`logits_fn`) is written once here, on `predictive_models.nnx_params`, keyed by the family's module class.

``params`` arguments accept the model itself, its ``nnx.State`` (``nnx.split(model)[1]``) or the pure nested
dict of arrays (``nnx.to_pure_dict``; what `init_params` returns).
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from predictive_models import nnx_params
from predictive_models.nnx_params import pure_params
from predictive_models.prefixes import PrefixActivations, prefix_index, prefix_tree


class ModelSizes(NamedTuple):
    """What a run's memory estimate needs of a model (`ModelFamily.memory_sizes`); arithmetic, nothing allocated."""

    n_params: int
    n_probed: int  # default probed layers (`layer_names`)
    width: int  # their summed width
    per_token: int  # float32 values kept per token for the backward pass


class ModelFamily(abc.ABC):
    """One model family: its config and module classes, activation names, inference and parameter plumbing.

    Subclasses set the three class attributes and implement `activation_names`; see the module docstring for
    the contract of the config and module classes and for what each default does. Methods take the config
    first, so a family's functions read as module functions (``FAMILY.init_params(config, seed)``).
    """

    #: The frozen dataclass of this family's configs.
    config_class: ClassVar[type]
    #: The ``nnx.Module`` class: ``module_class(config, rngs=...)``, ``__call__`` -> logits, ``forward``.
    module_class: ClassVar[type]
    #: The ``[model] kind`` names this family serves (most families: one).
    kinds: ClassVar[tuple[str, ...]]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(kinds={self.kinds!r})"

    # ------------------------------------------------------------------------ names

    @abc.abstractmethod
    def activation_names(self, config: Any) -> list[str]:
        """Every activation the model exposes by name, in forward order (documented by the family)."""

    def layer_names(self, config: Any) -> list[str]:
        """The default probed set (the runner probes these unless [probe] layers says otherwise). Default:
        every `activation_names` entry."""
        return list(self.activation_names(config))

    def probe_layer_name(self, config: Any) -> str:
        """The single layer the paper's figure probes (the transformer's last block). Default: the last of
        `layer_names`."""
        return self.layer_names(config)[-1]

    def check_names(self, config: Any, names: Sequence[str] | str | None) -> tuple[str, ...]:
        """``names`` (None: `layer_names`; a string: that one name) validated as distinct activation names."""
        allowed = self.activation_names(config)
        wanted = (names,) if isinstance(names, str) else tuple(self.layer_names(config) if names is None else names)
        unknown = [n for n in wanted if n not in allowed]
        if unknown or len(set(wanted)) != len(wanted):
            raise ValueError(
                f"names must be distinct activation names of this {self.kind_of(config)} model, from "
                f"{allowed}; got {list(wanted)}."
            )
        return wanted

    def activation_shape(self, config: Any, name: str, batch: int, length: int) -> tuple[int, ...]:
        """The shape of activation ``name`` for ``batch`` sequences of ``length`` tokens. Default: traced from
        the module's ``forward`` (``jax.eval_shape``, nothing computed), its first axis the batch."""
        self.check_names(config, (name,))
        return (int(batch), *_traced_shape(self.module_class, config, name, int(length))[1:])

    def activation_width(self, config: Any, name: str) -> int:
        """The last-axis width of the activation ``name`` (an attention pattern's is the number of keys, T)."""
        return self.activation_shape(config, name, 1, config.context_length)[-1]

    # ------------------------------------------------------------------------ config <-> checkpoint dict

    def kind_of(self, config: Any) -> str:
        """The ``[model] kind`` of ``config``: its ``kind`` field when the config has one, else the family's
        only kind."""
        return config.kind if _has_field(type(config), "kind") else self.kinds[0]

    def config_to_dict(self, config: Any) -> dict[str, Any]:
        """The config as a plain dict with its ``kind`` first (what checkpoints and config.toml store)."""
        d = config.to_dict() if hasattr(config, "to_dict") else dataclasses.asdict(config)
        return {"kind": self.kind_of(config), **{k: v for k, v in d.items() if k != "kind"}}

    def config_from_dict(self, kind: str, fields: dict[str, Any]) -> Any:
        """The config of ``kind`` with ``fields`` (the dict `config_to_dict` wrote, without its ``kind``)."""
        cls = self.config_class
        d = {**fields, "kind": kind} if _has_field(cls, "kind") else dict(fields)
        if hasattr(cls, "from_dict"):
            return cls.from_dict(d)
        known = {f.name for f in dataclasses.fields(cls)}
        if set(d) - known:
            raise ValueError(
                f"{cls.__name__}: unknown field(s) {sorted(set(d) - known)}; known fields are {sorted(known)}."
            )
        return cls(**d)

    # ------------------------------------------------------------------------ the memory preflight

    def memory_sizes(self, config: Any) -> ModelSizes:
        """The sizes a run's memory estimate needs (`ModelSizes`). Default: the parameter count from the
        abstract parameters, the widths of `layer_names`, and per token every activation once plus the
        logits and their softmax (3 V). A family should override it with arithmetic when building the
        abstract model of an absurd config could itself be slow (the preflight runs before anything else)."""
        L = config.context_length
        probed = self.layer_names(config)
        width = sum(self.activation_shape(config, n, 1, L)[-1] for n in probed)
        per_token = sum(math.prod(self.activation_shape(config, n, 1, L)) // L for n in self.activation_names(config))
        return ModelSizes(self.n_params(config), len(probed), width, per_token + 3 * config.vocab_size)

    # ------------------------------------------------------------------------ parameter plumbing (one place)

    def graphdef(self, config: Any) -> nnx.GraphDef:
        """The model's graph definition (structure without values), built without allocating parameters."""
        return nnx_params.abstract_split(self.module_class, config)[0]

    def abstract_params(self, config: Any) -> dict:
        """The parameters' pure-dict structure with ``jax.ShapeDtypeStruct`` leaves (nothing allocated)."""
        return nnx.to_pure_dict(nnx_params.abstract_split(self.module_class, config)[1])

    def n_params(self, config: Any) -> int:
        """Number of scalar parameters of a model of ``config``."""
        return nnx_params.n_params(self.module_class, config)

    def init_params(self, config: Any, seed: int | jax.Array = 0) -> dict:
        """Fresh parameters as a plain nested dict of float32 arrays (``nnx.to_pure_dict`` form).

        ``seed``: an int or a ``jax.random.key``. Jitted once per config (eager NNX initialisation is slow on CPU).
        """
        return nnx_params.init_params(self.module_class, config, seed)

    def to_state(self, config: Any, params: Any) -> nnx.State:
        """Parameters in any accepted form -> the ``nnx.State`` of a model of ``config``."""
        return nnx.split(nnx.merge(self.graphdef(config), pure_params(params)))[1]

    def to_model(self, config: Any, params: Any) -> nnx.Module:
        """Parameters in any accepted form -> the model (a ``module_class`` instance) holding them."""
        return nnx.merge(self.graphdef(config), pure_params(params))

    def logits_fn(self, config: Any) -> Callable[[dict, jax.Array], jax.Array]:
        """The pure function (params dict, tokens [B, T]) -> logits [B, T, V] a training loss differentiates
        (``jax.value_and_grad`` of a function of it; not jitted here, so it fuses into the caller's jit).
        Equals ``nnx.merge(graphdef(config), params)(tokens)``."""
        return nnx_params.logits_fn(self.module_class, config)

    # ------------------------------------------------------------------------ batched inference

    #: Optional: ``prefix_steps(config, params, names, what, levels, batch_size, out, cache, on_step,
    #: prefix_cache=None)`` computes each distinct prefix of the `predictive_models.prefixes.prefix_tree`
    #: ``levels`` once, position by position from its parent prefix's state, filling ``out`` [N, T, V]
    #: (logits / log-probs, or None), ``cache`` {name: [N, T, width]} or ``prefix_cache`` {name: [U, width]}
    #: (one row per distinct prefix, `prefixes` order) in place and telling ``on_step(1)`` after each
    #: position. None: the family has no one-position step, and every batch is run as whole sequences.
    prefix_steps: ClassVar[Callable[..., None] | None] = None

    def run_batched(
        self,
        config: Any,
        params: Any,
        tokens: np.ndarray,
        names: Sequence[str] | None = (),
        what: str | None = "logits",
        *,
        batch_size: int = 4096,
        method: str = "auto",
        on_step: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
        """The forward pass over many rows: tokens [N, T] -> (float32 [N, T, V] logits (``what="logits"``),
        log-probabilities (``"log_probs"``) or None (``None``: the readout is not run), and {name: float32
        array (`activation_shape`)} for exactly the ``names`` asked, in that order (None: `layer_names`)).

        ``method="full"`` runs whole sequences, ``batch_size`` rows per jitted call (the last padded: one
        shape); ``"prefix"`` computes each distinct prefix once with the family's `prefix_steps` (several
        times less work when rows share prefixes, e.g. every string of a length); ``"auto"`` picks prefix
        when it at least halves the work. Without `prefix_steps` every method runs whole sequences. Both give
        the same numbers (to float32 rounding). ``on_step(n)`` is told when n more of the T positions are done.
        """
        check_what_and_method(what, method)
        names = self.check_names(config, names)
        tokens = check_tokens(config, tokens, batch_size)
        N, T = tokens.shape
        out = np.empty((N, T, config.vocab_size), np.float32) if what else None
        cache = {n: np.empty(self.activation_shape(config, n, N, T), np.float32) for n in names}
        step = on_step or (lambda n: None)
        if N == 0 or T == 0:
            return out, cache
        p = jax.tree.map(jnp.asarray, pure_params(params))
        levels = prefix_tree(tokens, config.vocab_size) if method != "full" and self.prefix_steps else None
        if levels is not None and (method == "prefix" or sum(len(lv[1]) for lv in levels) <= 0.5 * N * T):
            assert self.prefix_steps is not None  # levels are only made for a family that has it
            self.prefix_steps(config, p, names, what, levels, int(batch_size), out, cache, step)
        else:
            run_full(jitted_forward(self.module_class, config, names, what), p, tokens, int(batch_size), out, cache)
            step(T)
        return out, cache

    def prefix_activations(
        self,
        config: Any,
        params_state: Any,
        tokens: np.ndarray,
        *,
        batch_size: int = 4096,
        names: Sequence[str] | None = None,
        on_step: Callable[[int], None] | None = None,
    ) -> PrefixActivations:
        """The activations named (None: `layer_names`) of each distinct prefix of ``tokens`` [N, T] once
        (`predictive_models.prefixes.PrefixActivations`: [U, width] per name, float32): the same numbers as
        `compute_activations`, never its [N, T, width] arrays.

        With `prefix_steps`, when the prefixes are at most half the positions (`run_batched`'s "auto" rule),
        each prefix is computed once from its parent's state; otherwise each distinct string is run whole,
        ``batch_size`` at a time, and each prefix's row is kept (a causal model's activation at t depends
        on tokens 0..t only, so every prefix is read off a string that has it).
        """
        names = self.check_names(config, names)
        tokens = check_tokens(config, tokens, batch_size)
        N, T = tokens.shape
        levels = prefix_tree(tokens, config.vocab_size)
        ids, offsets = prefix_index(levels, N)
        store = {n: np.empty((int(offsets[-1]), self.activation_shape(config, n, 1, 1)[-1]), np.float32) for n in names}
        if N and T and names:
            p = jax.tree.map(jnp.asarray, pure_params(params_state))
            step = on_step or (lambda n: None)
            if self.prefix_steps and offsets[-1] <= 0.5 * N * T:  # run_batched's "auto" rule
                self.prefix_steps(config, p, names, None, levels, int(batch_size), None, {}, step, prefix_cache=store)
            else:  # whole strings, each distinct one once (in the order given), one padded shape per call
                first = np.sort(np.unique(ids[:, -1], return_index=True)[1])  # [R] the first row of each string
                rows = min(int(batch_size), len(first))
                fn = jitted_forward(self.module_class, config, names, None)
                block = {n: np.empty(self.activation_shape(config, n, rows, T), np.float32) for n in names}
                for start in range(0, len(first), rows):
                    stop = min(start + rows, len(first))
                    run_full(fn, p, pad_rows(tokens[first[start:stop]], rows), rows, None, block)
                    where = ids[first[start:stop]].reshape(-1)  # a prefix shared by strings gets the same bits
                    for n in names:
                        store[n][where] = block[n][: stop - start].reshape(-1, store[n].shape[1])
                step(T)
        return PrefixActivations(rows=store, ids=ids, offsets=offsets)

    def activations(
        self,
        config: Any,
        params: Any,
        tokens: np.ndarray,
        names: Sequence[str] | None = None,
        *,
        batch_size: int = 4096,
        method: str = "auto",
        on_step: Callable[[int], None] | None = None,
    ) -> dict[str, np.ndarray]:
        """Exactly the activations named (see `activation_names`; None: `layer_names`): tokens [N, T] ->
        {name: float32 array (`activation_shape`)} in the order asked. Batched over rows (``method`` as in
        `run_batched`); nothing above the highest name asked runs, and the readout never does."""
        return self.run_batched(
            config, params, tokens, names, None, batch_size=batch_size, method=method, on_step=on_step
        )[1]

    def compute_activations(
        self,
        config: Any,
        params_state: Any,
        tokens: np.ndarray,
        *,
        batch_size: int = 4096,
        method: str = "auto",
        names: Sequence[str] | None = None,
        on_step: Callable[[int], None] | None = None,
    ) -> dict[str, np.ndarray]:
        """`activations` with ``names`` as a keyword: tokens [N, T] -> {name: float32 [N, T, width]}."""
        return self.activations(
            config, params_state, tokens, names, batch_size=batch_size, method=method, on_step=on_step
        )

    def compute_logits(
        self, config: Any, params_state: Any, tokens: np.ndarray, *, batch_size: int = 4096, method: str = "auto"
    ) -> np.ndarray:
        """Logits of every sequence: tokens [N, T] -> float32 [N, T, vocab_size]. Jitted, batched."""
        logits = self.run_batched(config, params_state, tokens, (), "logits", batch_size=batch_size, method=method)[0]
        assert logits is not None  # asked for
        return logits

    def compute_log_probs(
        self, config: Any, params_state: Any, tokens: np.ndarray, *, batch_size: int = 4096, method: str = "auto"
    ) -> np.ndarray:
        """Next-token log-probabilities (log-softmax of the logits): float32 [N, T, vocab_size]."""
        log_probs = self.run_batched(
            config, params_state, tokens, (), "log_probs", batch_size=batch_size, method=method
        )[0]
        assert log_probs is not None  # asked for
        return log_probs


# ---------------------------------------------------------------------------- helpers for families


def _has_field(cls: type, name: str) -> bool:
    return dataclasses.is_dataclass(cls) and any(f.name == name for f in dataclasses.fields(cls))


@functools.cache
def _traced_shape(module_cls: type, config: Any, name: str, length: int) -> tuple[int, ...]:
    """The shape of activation ``name`` of one sequence of ``length`` tokens, traced (nothing computed)."""
    gdef, state = nnx_params.abstract_split(module_cls, config)
    tokens = jax.ShapeDtypeStruct((1, length), jnp.int32)
    out = jax.eval_shape(lambda s, t: nnx.merge(gdef, s).forward(t, (name,), logits=False)[1][name], state, tokens)
    return tuple(out.shape)


def check_what_and_method(what: str | None, method: str) -> None:
    """`run_batched`'s ``what`` and ``method`` arguments checked."""
    if what not in ("logits", "log_probs", None):
        raise ValueError(f"what must be 'logits', 'log_probs' or None; got {what!r}.")
    if method not in ("auto", "prefix", "full"):
        raise ValueError(f"method must be 'auto', 'prefix' or 'full'; got {method!r}.")


def check_tokens(config: Any, tokens: np.ndarray, batch_size: int) -> np.ndarray:
    """Tokens [N, T] checked against ``config`` (integers in [0, vocab_size), T <= context_length) -> int32."""
    tokens = np.asarray(tokens)
    if tokens.ndim != 2:
        raise ValueError(f"tokens must be a 2-D integer array [N, T]; got shape {tokens.shape}.")
    if not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"tokens must be integers; got dtype {tokens.dtype}.")
    if tokens.shape[1] > config.context_length:
        raise ValueError(
            f"tokens have length {tokens.shape[1]} > context_length {config.context_length}; "
            f"pass at most context_length tokens per sequence."
        )
    if tokens.size and (tokens.min() < 0 or tokens.max() >= config.vocab_size):
        raise ValueError(
            f"tokens must lie in [0, {config.vocab_size}); got values in [{tokens.min()}, {tokens.max()}]."
        )
    if isinstance(batch_size, bool) or int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}.")
    return tokens.astype(np.int32)


def pad_rows(a: np.ndarray, rows: int) -> np.ndarray:
    """``a`` [n, ...] padded with zero rows to [rows, ...] (one shape per jitted call: one compilation)."""
    if a.shape[0] == rows:
        return a
    return np.concatenate([a, np.zeros((rows - a.shape[0], *a.shape[1:]), a.dtype)])


@functools.cache
def jitted_forward(module_cls: type, config: Any, names: tuple[str, ...], what: str | None):
    """jit of (params, tokens [B, T]) -> (logits / log-probs [B, T, V] or None, {name: [B, T, width]}) through
    the module's ``forward``."""
    gdef = nnx_params.abstract_split(module_cls, config)[0]

    def run(params: dict, tokens: jax.Array):
        logits, cache = nnx.merge(gdef, params).forward(tokens, names, logits=what is not None)
        if what == "log_probs":
            logits = jax.nn.log_softmax(logits, axis=-1)
        return logits, cache

    return jax.jit(run)


def run_full(
    fn, params: dict, tokens: np.ndarray, batch_size: int, out: np.ndarray | None, cache: dict[str, np.ndarray]
) -> None:
    """Whole sequences through ``fn`` (`jitted_forward`), ``batch_size`` rows per call (the last padded: one
    shape), filling ``out`` [N, T, V] (or None) and ``cache`` {name: [N, ...]} in place."""
    N = tokens.shape[0]
    rows = min(batch_size, N)
    for start in range(0, N, rows):
        stop = min(start + rows, N)
        res, acts = jax.device_get(fn(params, pad_rows(tokens[start:stop], rows)))
        if out is not None:
            out[start:stop] = res[: stop - start]
        for n in cache:
            cache[n][start:stop] = acts[n][: stop - start]
