"""The typed records of an experiment config: what `compmech.runs.config.load_config` returns.

`ExperimentConfig` and its sections (`ProcessSettings`, `DataSettings`, `ProbeSettings`, `FigureSettings`), each
checked when built (one `ConfigError`/ValueError line naming the key and the fix). Reading a TOML file into them
is `compmech.runs.config`; the records live here, apart from the reader, so that every phase of a run (and every
study) can name their types without importing the reader (which consults the study registry).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import predictive_models  # a lazy package (PEP 562): JAX is imported only when a model config is built
from compmech.runs.errors import ConfigError
from compmech.runs.toml_io import dumps

if TYPE_CHECKING:
    from predictive_models import ModelConfig, TrainConfig


#: Largest figure resolution accepted: print quality is 300-600 dpi; a 12 x 4 inch figure at 1200 dpi
#: is already ~280 MB of pixels, and 100000 dpi would need terabytes.
MAX_DPI = 1200


#: The kinds of composed process a [process] table can describe (see `ProcessSettings`).
PROCESS_KINDS = ("mixture", "product", "coupled", "factored")
#: The dependency structures of ``kind = "factored"`` (`hmm_processes.STRUCTURES`; the authors' simplexity names).
FACTORED_STRUCTURES = ("independent", "chain", "symmetric", "transition_coupled")
#: Continuous families of sources a [process] table can name by ``kind`` (no HMM; `hmm_processes.RandomMarkovChains`).
FAMILY_KINDS = ("random_markov",)
#: The keys of a ``kind = "random_markov"`` table besides ``kind``.
RANDOM_MARKOV_KEYS = ("n_states", "concentration")
#: Tolerance on "mixture weights sum to 1" (the library's, `hmm_processes.hmm.STOCHASTIC_ATOL`).
WEIGHTS_ATOL = 1e-9


@dataclass(frozen=True)
class ProcessSettings:
    """Which process generates the data: a registered ``name`` with ``params``, a ``spec`` file, or a
    composition (``kind``) of such processes.

    One process: ``name`` (+ ``params``) or ``spec``. ``module`` (optional, with ``name``): a Python
    module imported before ``name`` is looked up, so that a process it registers with
    `hmm_processes.register_process` can be named, e.g. ``module = "my_package.my_processes"``. It
    is searched in ``module_path`` (a directory, relative to the config file), then next to the
    config file, then in the working directory, then on the usual import path. A run directory's
    resolved config.toml writes ``module_path`` out as the absolute directory the module was found
    in, so it reruns from any directory.

    A composition: ``kind = "mixture"`` (one component per sequence, drawn with probability
    ``weights[k]``; the components share one vocabulary, or each emits through its own map into a shared one,
    ``vocab_maps = [[0, 1, 2, 3], [0, 1, 2, 4]]``: component k's token a is the shared token ``vocab_maps[k][a]``,
    as the authors' simplexity library builds its non-ergodic processes; weights default to uniform) or
    ``kind = "product"`` (every component emits a token at each step; the token is the tuple), or
    ``kind = "coupled"`` (a product of two HMM components whose second one's hidden state is moved on by the
    first's hidden state with probability ``coupling`` = epsilon in [0, 1] after each step,
    `hmm_processes.shift_coupled`; 0 is the independent product), or ``kind = "factored"`` (N factors with a
    dependency ``structure``: "independent", "chain", "symmetric" or "transition_coupled", with ``control_maps``
    and, for "transition_coupled", ``emission_variants``, as the authors' simplexity library defines them;
    `hmm_processes.factored_process`; a factor's further parameter variants are its ``variants``, each a table of
    params overriding its ``params``: variant 0 is ``params`` itself), with
    ``components``: a list of `ProcessSettings`, each one process or itself a composition. In TOML
    each component is a ``[[process.components]]`` table (a nested one a
    ``[[process.components.components]]``); the resolved config writes them as inline tables.

    A continuous family: ``kind = "random_markov"`` with ``n_states`` = k >= 2 (the tokens, which are the
    chain's states) and ``concentration`` = alpha > 0 (default 1): every sequence draws its k x k transition
    matrix, row by row, from a symmetric Dirichlet(alpha) prior (`hmm_processes.RandomMarkovChains`). It is
    not an HMM: only the sampled regime runs, and the probe target is the posterior mean of the matrix.
    """

    name: str | None = None  # a registered process (`compmech processes` lists them), e.g. "mess3"
    spec: str | None = None  # or a TOML spec file (relative to the config), copied into the run directory
    params: dict[str, Any] = field(default_factory=dict)  # the named process's keyword parameters
    module: str | None = None  # with name: a Python module imported first (it registers the process)
    module_path: str | None = None  # the directory module is searched in first (relative to the config)
    kind: str | None = None  # None: one process | "mixture" | "product" | "coupled" | "random_markov"
    weights: tuple[float, ...] | None = None  # [K] mixture weights, summing to 1 (uniform if not given)
    components: tuple[ProcessSettings, ...] = ()  # [K] the composed processes, in order
    coupling: float | None = None  # kind = "coupled": epsilon in [0, 1], the strength of the hidden dependence
    structure: str | None = None  # kind = "factored": "independent" | "chain" | "symmetric" | "transition_coupled"
    control_maps: tuple[tuple[int, ...], ...] | None = None  # kind = "factored": [N] each factor's variant map
    emission_variants: tuple[int, ...] | None = None  # kind = "factored", "transition_coupled": [N] emission variants
    variants: tuple[dict[str, Any], ...] = ()  # a factor of kind = "factored": variants 1, 2, ... (params overrides)
    vocab_maps: tuple[tuple[int, ...], ...] | None = None  # kind = "mixture": [K] per component, its token -> shared id
    n_states: int | None = None  # kind = "random_markov": k >= 2, the chain's states (= tokens)
    concentration: float | None = None  # kind = "random_markov": alpha > 0 of the Dirichlet prior (default 1.0)

    def __post_init__(self) -> None:
        if self.kind in FAMILY_KINDS:
            self._check_family()
            return
        if self.n_states is not None or self.concentration is not None:
            key = "n_states" if self.n_states is not None else "concentration"
            raise ValueError(
                f'{key} is for kind = "random_markov" (random Markov chains): add that kind or remove {key}'
            )
        if self.kind is not None:
            self._check_composition()
            return
        factored_keys = [k for k in ("structure", "control_maps", "emission_variants") if getattr(self, k) is not None]
        if factored_keys:
            raise ValueError(f'{factored_keys[0]} is for kind = "factored": add that kind or remove {factored_keys[0]}')
        if self.components or self.weights is not None or self.vocab_maps is not None:
            key = "components" if self.components else "weights" if self.weights is not None else "vocab_maps"
            raise ValueError(f'{key} describe a composition: add kind = "mixture" or kind = "product"')
        if (self.name is None) == (self.spec is None):
            raise ValueError(
                'give exactly one of name = "<registered process>" or spec = "<file.toml>" '
                '(or kind = "mixture" | "product" with [[process.components]])'
            )
        if self.module is not None:
            if self.spec is not None:
                raise ValueError("module is for a process registered in Python (with name = ...), not with spec")
            if not self.module or not all(part.isidentifier() for part in self.module.split(".")):
                raise ValueError(
                    f'module must be a dotted Python module name like "my_package.my_processes"; got {self.module!r}'
                )
        if self.module_path is not None and self.module is None:
            raise ValueError('module_path is the directory of a module; give module = "..." with it')

    def _check_family(self) -> None:
        beside = [
            k
            for k in ("name", "spec", "module", "module_path", "weights", "coupling", "vocab_maps")
            if getattr(self, k) is not None
        ]
        if self.params:
            beside.insert(0, "params")
        if self.components:
            beside.insert(0, "components")
        if beside:
            raise ValueError(
                f'{beside[0]} cannot stand beside kind = "{self.kind}"; its keys are {", ".join(RANDOM_MARKOV_KEYS)}'
            )
        k = self.n_states
        if k is None:
            raise ValueError(
                f'kind = "{self.kind}" needs n_states = <number of states = tokens, >= 2>, e.g. n_states = 3'
            )
        if isinstance(k, bool) or not isinstance(k, int) or k < 2:
            raise ValueError(f"n_states must be an integer >= 2 (the chain's states, which are the tokens); got {k!r}")
        a = 1.0 if self.concentration is None else self.concentration
        if isinstance(a, bool) or not isinstance(a, (int, float)) or not math.isfinite(a) or a <= 0:
            raise ValueError(
                f"concentration must be a finite number > 0 (the Dirichlet prior's alpha; 1 = uniform rows); got {a!r}"
            )
        object.__setattr__(self, "concentration", float(a))

    def _check_composition(self) -> None:
        if self.kind not in PROCESS_KINDS:
            raise ValueError(
                f'kind must be "mixture" or "product" (or "coupled", "random_markov"; or left '
                f"out for one process); got {self.kind!r}"
            )
        family = [i for i, c in enumerate(self.components) if isinstance(c, ProcessSettings) and c.kind in FAMILY_KINDS]
        if family:
            raise ValueError(
                f'components[{family[0]}]: kind = "{self.components[family[0]].kind}" cannot be a '
                f"component of a {self.kind} (it is not an HMM); run it as the [process] itself"
            )
        beside = [k for k in ("name", "spec", "module", "module_path") if getattr(self, k) is not None]
        if self.params:
            beside.insert(0, "params")
        if beside:
            raise ValueError(
                f'{beside[0]} cannot stand beside kind = "{self.kind}": it belongs to a component; '
                "move it into a [[process.components]] table"
            )
        if self.variants:
            raise ValueError(
                f'variants cannot stand beside kind = "{self.kind}": they belong to a factor of kind = "factored"'
            )
        if self.kind == "factored":
            self._check_factored()
        else:
            factored_keys = [
                k for k in ("structure", "control_maps", "emission_variants") if getattr(self, k) is not None
            ]
            if factored_keys:
                raise ValueError(f'{factored_keys[0]} is for kind = "factored", not kind = "{self.kind}": remove it')
            with_variants = [i for i, c in enumerate(self.components) if isinstance(c, ProcessSettings) and c.variants]
            if with_variants:
                raise ValueError(
                    f"components[{with_variants[0]}] has variants: they are for the factors of "
                    f'kind = "factored", not kind = "{self.kind}"'
                )
        if (self.coupling is not None) != (self.kind == "coupled"):
            raise ValueError(
                'kind = "coupled" needs coupling = <epsilon in [0, 1]>'
                if self.coupling is None
                else f'coupling is for kind = "coupled", not kind = "{self.kind}": remove it'
            )
        if self.kind == "coupled":
            c = self.coupling
            if isinstance(c, bool) or not isinstance(c, (int, float)) or not 0.0 <= c <= 1.0:
                raise ValueError(f"coupling must be a number in [0, 1] (0: independent factors); got {c!r}")
            object.__setattr__(self, "coupling", float(c))
            if len(self.components) != 2:
                raise ValueError(
                    f'kind = "coupled" takes exactly two [[process.components]] (the driving factor '
                    f"first); got {len(self.components)}"
                )
        if not self.components:
            raise ValueError(
                f'kind = "{self.kind}" needs components: add one [[process.components]] table '
                "per component (name = ... with params, spec = ..., or a nested kind)"
            )
        if not all(isinstance(c, ProcessSettings) for c in self.components):
            raise ValueError("components must be ProcessSettings (in TOML: [[process.components]] tables)")
        K = len(self.components)
        if self.vocab_maps is not None:
            self._check_vocab_maps(K)
        if self.kind in ("product", "coupled", "factored"):
            if self.weights is not None:
                raise ValueError(f'weights are for kind = "mixture"; a {self.kind} product has none: remove weights')
            return
        if self.weights is None:
            object.__setattr__(self, "weights", tuple(1.0 / K for _ in range(K)))
            return
        w = tuple(self.weights)
        if len(w) != K:
            raise ValueError(
                f"weights has {len(w)} entries but there are {K} components; give one weight per "
                "[[process.components]] table, in order"
            )
        bad = [
            i
            for i, x in enumerate(w)
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or x < 0
        ]
        if bad:
            raise ValueError(f"weights[{bad[0]}] = {w[bad[0]]!r}; weights must be finite numbers >= 0")
        if abs(sum(w) - 1.0) > WEIGHTS_ATOL:
            raise ValueError(
                f"weights sum to {sum(w):.12g}, not 1; rescale them (or leave weights out for uniform weights)"
            )
        object.__setattr__(self, "weights", tuple(float(x) for x in w))

    def _check_factored(self) -> None:
        """kind = "factored": a known structure; control maps and emission variants as integer lists (their lengths and
        ranges are checked against the factors' vocabularies when the process is built)."""
        if self.structure not in FACTORED_STRUCTURES:
            raise ValueError(
                f"structure must be one of {', '.join(FACTORED_STRUCTURES)} (the dependency between the factors); "
                f"got {self.structure!r}"
            )

        def ints(value: Any, what: str) -> tuple[int, ...]:
            if not isinstance(value, (list, tuple)) or any(
                isinstance(x, bool) or not isinstance(x, int) for x in value
            ):
                raise ValueError(f"{what} must be a list of integers (variant indices), e.g. [0, 1, 1]; got {value!r}")
            return tuple(value)

        if self.control_maps is not None:
            if not isinstance(self.control_maps, (list, tuple)):
                raise ValueError(f"control_maps must be a list of lists, one per factor; got {self.control_maps!r}")
            maps = tuple(ints(m, f"control_maps[{i}]") for i, m in enumerate(self.control_maps))
            object.__setattr__(self, "control_maps", maps)
        if self.emission_variants is not None:
            object.__setattr__(self, "emission_variants", ints(self.emission_variants, "emission_variants"))
        for i, c in enumerate(self.components):
            if isinstance(c, ProcessSettings) and c.variants and c.name is None:
                raise ValueError(
                    f"components[{i}] has variants but no name: variants override the params of a named process"
                )

    def _check_vocab_maps(self, K: int) -> None:
        """One list of token ids (integers >= 0, distinct) per component, for a mixture only (the lengths are checked
        against the components' vocabularies when the process is built)."""
        if self.kind != "mixture":
            raise ValueError(f'vocab_maps are for kind = "mixture", not kind = "{self.kind}": remove vocab_maps')
        maps = self.vocab_maps
        assert maps is not None
        if len(maps) != K:
            raise ValueError(
                f"vocab_maps has {len(maps)} maps but there are {K} components; give one list of shared token ids "
                "per [[process.components]] table, in order"
            )
        for k, m in enumerate(maps):
            bad = [x for x in m if isinstance(x, bool) or not isinstance(x, int) or x < 0]
            if bad:
                raise ValueError(f"vocab_maps[{k}] holds {bad[0]!r}; token ids must be integers >= 0")
            if len(set(m)) != len(m):
                dup = next(x for x in m if list(m).count(x) > 1)
                raise ValueError(
                    f"vocab_maps[{k}] sends two tokens to shared id {dup}; each component's tokens need distinct ids"
                )

    def to_dict(self) -> dict[str, Any]:
        """The table as written to a resolved config.toml (components as inline tables; unset keys left out)."""
        if self.kind in FAMILY_KINDS:
            return {"kind": self.kind, "n_states": self.n_states, "concentration": self.concentration}
        if self.kind is not None:
            out: dict[str, Any] = {"kind": self.kind}
            if self.weights is not None:
                out["weights"] = list(self.weights)
            if self.coupling is not None:
                out["coupling"] = self.coupling
            if self.structure is not None:
                out["structure"] = self.structure
            if self.control_maps is not None:
                out["control_maps"] = [list(m) for m in self.control_maps]
            if self.emission_variants is not None:
                out["emission_variants"] = list(self.emission_variants)
            if self.vocab_maps is not None:
                out["vocab_maps"] = [list(m) for m in self.vocab_maps]
            out["components"] = [c.to_dict() for c in self.components]
            return out
        return {
            k: v
            for k, v in (
                ("name", self.name),
                ("spec", self.spec),
                ("params", dict(self.params)),
                ("module", self.module),
                ("module_path", self.module_path),
                ("variants", [dict(v) for v in self.variants]),
            )
            if v not in (None, {}, [])
        }


_PROCESS_KEYS = (
    "name",
    "spec",
    "params",
    "module",
    "module_path",
    "kind",
    "weights",
    "components",
    "coupling",
    "structure",
    "control_maps",
    "emission_variants",
    "variants",
    "vocab_maps",
    *RANDOM_MARKOV_KEYS,
)


def process_settings(table: Any, where: str = "[process]") -> ProcessSettings:
    """A [process] table (or one of its ``components``) as `ProcessSettings`, components parsed recursively.

    Raises `ConfigError` whose message starts with ``where`` (e.g. ``[process] components[1]``,
    counting from 0) and names the key and the fix.
    """
    if not isinstance(table, Mapping):
        raise ConfigError(f"{where} must be a table of key = value pairs")
    for key, value in table.items():
        if key not in _PROCESS_KEYS:
            raise ConfigError(f"unknown key {where} {key!r}; allowed: {', '.join(_PROCESS_KEYS)}")
        if key == "params":
            if not isinstance(value, Mapping):
                raise ConfigError(f"{where} params must be a table, e.g. params = {{ x = 0.05 }}")
        elif key == "weights":
            if not isinstance(value, list):
                raise ConfigError(f"{where} weights must be a list of numbers, e.g. weights = [0.5, 0.5]")
        elif key == "vocab_maps":
            if not isinstance(value, list) or not all(isinstance(m, list) for m in value):
                raise ConfigError(
                    f"{where} vocab_maps must be a list of lists of token ids, one per component, e.g. "
                    "vocab_maps = [[0, 1, 2, 3], [0, 1, 2, 4]]"
                )
        elif key == "coupling":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{where} coupling must be a number in [0, 1], e.g. coupling = 0.1")
        elif key in ("control_maps", "emission_variants"):
            if not isinstance(value, list):
                example = "[[], [0, 1, 1]]" if key == "control_maps" else "[0, 1]"
                raise ConfigError(f"{where} {key} must be a list, e.g. {key} = {example}")
        elif key == "variants":
            if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
                raise ConfigError(
                    f"{where} variants must be a list of params tables, e.g. variants = [{{ x = 0.15, alpha = 0.6 }}]"
                )
        elif key == "n_states":
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"{where} n_states must be an integer >= 2, e.g. n_states = 3; got {value!r}")
        elif key == "concentration":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(
                    f"{where} concentration must be a number > 0, e.g. concentration = 1.0; got {value!r}"
                )
        elif key == "components":
            if not isinstance(value, list) or not all(isinstance(c, Mapping) for c in value):
                raise ConfigError(
                    f"{where} components must be [[process.components]] tables (or a list of "
                    "inline tables), one per component"
                )
        elif not isinstance(value, str):
            raise ConfigError(f"{where} {key} must be a string; got {value!r}")
    components = tuple(
        process_settings(c, f"{where} components[{i}]") for i, c in enumerate(table.get("components", ()))
    )
    values = {k: v for k, v in table.items() if k != "components"}
    if "weights" in values:
        values["weights"] = tuple(values["weights"])
    if "vocab_maps" in values:
        values["vocab_maps"] = tuple(tuple(m) for m in values["vocab_maps"])
    if "params" in values:
        values["params"] = dict(values["params"])
    if "variants" in values:
        values["variants"] = tuple(dict(v) for v in values["variants"])
    try:
        return ProcessSettings(**values, components=components)
    except ValueError as exc:
        raise ConfigError(f"{where} {exc}") from None


#: The run regimes a config can ask for ([data] regime).
REGIMES = ("auto", "exact", "sampled")


@dataclass(frozen=True)
class DataSettings:
    """How sequences reach the model.

    ``bos``: begin every sequence with a start token (id V, one past the process's tokens). The model
    then also predicts the first token (its optimum at position 0 is H[X1], the prior's next-token
    entropy), its vocabulary is V + 1, and the start token's position has the prior as its belief
    (the probe target there). Without it (the paper's setup) the model reads x1..xT and predicts x2..xT+1.

    The other keys choose between the exact and the sampled regime and size the sampled one (each
    documented at its field); `compmech.runs.sampled.choose_regime` applies them.
    """

    bos: bool = False
    # Which regime runs. "exact" enumerates every allowed string of the context length (theory, validation
    # and probe rows over all of them); "sampled" draws sequences instead (validation on a fixed held-out
    # sample with its standard error, probe rows from sampled sequences accumulated in chunks); "auto"
    # picks "exact" when the bound on the allowed strings (`compmech.mixed_states.word_counts`, at most
    # V^L) is at most max_exact_strings, else "sampled".
    regime: str = "auto"
    # The largest number of context strings the exact regime enumerates under "auto". The default keeps
    # the exact regime's activations of every string (strings x positions x d_model x layers, float32)
    # to ~1-3 GB for the paper's model: Mess3 at context 10 is 59,049 strings; at 12, 531,441 would not be.
    max_exact_strings: int = 200_000
    validation_sequences: int = 2000  # sampled regime: held-out sequences of the validation loss (its SE ~ 1/sqrt)
    probe_sequences: int = 20_000  # sampled regime: sampled sequences whose every position is a probe row
    chunk_rows: int = 65_536  # sampled regime: probe rows (sequences x positions) per chunk; bounds the memory

    def __post_init__(self) -> None:
        if self.regime not in REGIMES:
            raise ValueError(f"regime must be one of {', '.join(repr(r) for r in REGIMES)}; got {self.regime!r}")
        for name, low in (
            ("max_exact_strings", 1),
            ("validation_sequences", 2),
            ("probe_sequences", 2),
            ("chunk_rows", 1),
        ):
            if getattr(self, name) < low:
                raise ValueError(f"{name} must be an integer >= {low}; got {getattr(self, name)!r}")


@dataclass(frozen=True)
class ProbeSettings:
    """The linear probe: rows, weighting and controls (defaults are the paper's)."""

    rows: str = "all_strings"  # "all_strings" (paper) | "distinct_contexts"
    weighting: str = "uniform"  # "uniform" (paper) | "probability"
    train_fraction: float = 0.2  # held-out check: fit on this fraction of strings, test on the rest
    n_repeats: int = 5  # random held-out splits averaged
    include_concat: bool = True  # also probe all layers concatenated
    # The activations probed, by name (`predictive_models.activation_names`: e.g. "block_2",
    # "blocks.1.hook_resid_mid", "layers.0.hidden", "layers.0.cell"); empty = the default set, every residual-stream
    # read-out of a transformer (embedding, block_1..block_L, final_ln) or every hidden state of a recurrent model.
    # The paper's probe layer (`predictive_models.probe_layer_name`) is always probed (added if not listed).
    layers: tuple[str, ...] = ()
    # The layer drawn in the figures, used for the distance geometry and refitted over training:
    # "" = the paper's probe layer (after the last block, before the final LayerNorm); "concat" = all layers.
    figure_layer: str = ""

    def __post_init__(self) -> None:
        if self.rows not in ("all_strings", "distinct_contexts"):
            raise ValueError(f'rows must be "all_strings" or "distinct_contexts"; got {self.rows!r}')
        if self.weighting not in ("uniform", "probability"):
            raise ValueError(f'weighting must be "uniform" or "probability"; got {self.weighting!r}')
        if not 0.0 < self.train_fraction < 1.0:
            raise ValueError(f"train_fraction must be in (0, 1); got {self.train_fraction!r}")
        if self.n_repeats < 1:
            raise ValueError(f"n_repeats must be >= 1; got {self.n_repeats!r}")
        if not all(isinstance(n, str) and n and n != "concat" for n in self.layers) or len(set(self.layers)) != len(
            self.layers
        ):
            raise ValueError(
                f'layers must be a list of distinct activation names ("concat" is include_concat\'s); '
                f"got {list(self.layers)!r}"
            )


@dataclass(frozen=True)
class FigureSettings:
    """Figure output: file formats and resolution."""

    formats: tuple[str, ...] = ("png",)  # files written per figure: "png", "svg", "pdf"
    dpi: int = 150  # resolution of the PNGs (30 to MAX_DPI; 300 is print quality)

    def __post_init__(self) -> None:
        bad = [f for f in self.formats if f not in ("png", "svg", "pdf")]
        if bad or not self.formats:
            raise ValueError(f'formats must be a non-empty list of "png", "svg", "pdf"; got {list(self.formats)!r}')
        if not 30 <= self.dpi <= MAX_DPI:
            raise ValueError(
                f"dpi must be between 30 and {MAX_DPI} (150 is the default, 300 print quality); got {self.dpi!r}"
            )


@dataclass(frozen=True)
class TrackingSettings:
    """[tracking]: log the run to an experiment tracker besides its run directory (the source of truth).

    ``mlflow = true`` logs the resolved config as parameters, every metrics.jsonl line as metrics by step, the probe
    and study headlines, and the figures, report.html, probe.json and summary.json as artifacts
    (`compmech.interop.tracking`; needs ``pip install 'compmech[tracking]'``). ``tracking_uri``: where ("" = a local
    MLflow file store, mlruns/ beside the run directory; or any MLflow URI, e.g. "sqlite:///mlflow.db",
    "http://host:5000"). ``experiment``: the MLflow experiment ("" = the config's name). Tracking never blocks
    or fails a run: an error is one warning line.
    """

    mlflow: bool = False
    tracking_uri: str = ""
    experiment: str = ""


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything one run needs; `to_toml` writes it back out with every default resolved."""

    name: str  # the run's name, its directory runs/<name> (default: the config file's name without .toml)
    seed: int  # every random stream (data, initialisation, probe splits) is split from it (default 0)
    process: ProcessSettings
    # [model]: ``kind`` ("transformer" | "rnn" | "gru" | "lstm") and that family's config fields (TransformerConfig or
    # RecurrentConfig) except vocab_size, which is taken from the process (+ 1 with a start token)
    model: dict[str, Any]
    training: dict[str, Any]  # TrainConfig fields except seed (taken from the top level)
    probe: ProbeSettings
    figures: FigureSettings
    source: str = ""
    data: DataSettings = field(default_factory=DataSettings)
    # [studies.<name>] tables: the analyses run after the probe (`compmech.studies`), name -> that study's Settings
    studies: dict[str, Any] = field(default_factory=dict)
    tracking: TrackingSettings = field(default_factory=TrackingSettings)  # [tracking]: MLflow, off by default

    def model_config(self, vocab_size: int) -> ModelConfig:
        """The model's config (a `TransformerConfig` or a `RecurrentConfig`, by [model] kind)."""
        fields = dict(self.model)
        return predictive_models.make_config(fields.pop("kind", "transformer"), vocab_size, **fields)

    def train_config(self) -> TrainConfig:
        """The training config (`predictive_models.TrainConfig`), the top-level seed included."""
        return predictive_models.TrainConfig(seed=self.seed, **self.training)

    @property
    def base_dir(self) -> Path | None:
        """The directory of the config file (relative paths in it start there); None if not from a file."""
        return Path(self.source).parent if self.source and self.source != "<config>" else None

    def to_dict(self) -> dict[str, Any]:
        proc = self.process.to_dict()
        return {
            "name": self.name,
            "seed": self.seed,
            "process": proc,
            "model": dict(self.model),
            "training": {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.training.items()},
            "data": dataclasses.asdict(self.data),
            "probe": {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self.probe).items()},
            "figures": {"formats": list(self.figures.formats), "dpi": self.figures.dpi},
            **(
                {
                    "studies": {
                        name: {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(st).items()}
                        for name, st in self.studies.items()
                    }
                }
                if self.studies
                else {}
            ),
            # written only when on: it changes no number, and runs written before it existed still resume
            **({"tracking": dataclasses.asdict(self.tracking)} if self.tracking != TrackingSettings() else {}),
        }

    def to_toml(self) -> str:
        return dumps(self.to_dict())


def set_dotted(raw: dict, dotted: str, value: Any) -> None:
    """Set ``raw["a"]["b"]["c"] = value`` for ``dotted = "a.b.c"``, creating the tables on the way."""
    *tables, key = dotted.split(".")
    node = raw
    for t in tables:
        nxt = node.setdefault(t, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"{dotted}: {t} is not a table")
        node = nxt
    node[key] = value


def quick_steps(training: dict[str, Any], fraction: float) -> int:
    """The steps of a quick budget: ``fraction`` of ``[training] steps``, at least one fused call."""
    return max(int(training["steps"] * fraction), int(training["steps_per_call"]))
