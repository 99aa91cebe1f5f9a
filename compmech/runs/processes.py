"""Build the data-generating process an experiment config names (registry name, Python module, spec file,
or a mixture / product of such processes, nested).

Also the run directory's copy of the process: ``process_spec.toml`` (the spec file, copied so the
run is self-contained; a composition's spec files become ``process_spec.components.<i>[.<j>...].toml``)
and ``process.json`` (its matrices, for the report and for notebooks).
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from compmech.runs.machine import MEMORY_HEADROOM, available_memory
from compmech.runs.settings import FAMILY_KINDS, ExperimentConfig
from hmm_processes import (
    HMM,
    GeneralizedHMM,
    ProcessError,
    RandomMarkovChains,
    factored_process,
    get_process,
    load_spec,
    mixture,
    product,
    shift_coupled,
)
from hmm_processes.registry import factory_name

#: The spec file's name inside a run directory; the resolved config.toml points at it.
SPEC_COPY = "process_spec.toml"
#: The process's matrices inside a run directory (the contract with the report).
PROCESS_JSON = "process.json"


@dataclass(frozen=True)
class ProcessRecord:
    """What ``process.json`` holds: the process's name, parameters, names and labelled matrices."""

    name: str
    params: dict[str, Any]
    token_names: list[str] | None
    state_names: list[str] | None
    T: list  # [V][S][S] nested lists of floats, T[x][i][j] = P(emit x, go to j | in i) (quasi-probabilities for a GHMM)
    kind: str  # "HMM" | "GeneralizedHMM"
    spec_file: str | None  # SPEC_COPY when the process came from a spec file, else None
    # A composed process: "mixture" | "product" (its params hold "components", and a mixture's
    # "weights" and "component_states"); None for one process.
    composition: str | None = None
    # Every spec file's copy in the run directory (the composition's components' too), in config order.
    spec_files: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "params": self.params,
            "token_names": self.token_names,
            "state_names": self.state_names,
            "T": self.T,
            "kind": self.kind,
            "spec_file": self.spec_file,
            "composition": self.composition,
            "spec_files": list(self.spec_files),
        }


def process_record(
    process: HMM | GeneralizedHMM,
    spec_file: str | None,
    *,
    composition: str | None = None,
    spec_files: tuple[str, ...] = (),
) -> ProcessRecord:
    """The `ProcessRecord` of a built process (``spec_file``: the name of its copy in the run directory;
    ``composition``: the config's ``kind``; ``spec_files``: every spec copy, see `localize_process`)."""
    T = np.asarray(process.T, np.float64)  # [V, S, S]
    return ProcessRecord(
        name=process.name,
        params={k: _plain(v) for k, v in process.params.items()},
        token_names=list(process.token_names) if process.token_names is not None else None,
        state_names=list(process.state_names) if process.state_names is not None else None,
        T=T.tolist(),
        kind="GeneralizedHMM" if isinstance(process, GeneralizedHMM) else "HMM",
        spec_file=spec_file,
        composition=composition,
        spec_files=tuple(spec_files) if spec_files else ((spec_file,) if spec_file else ()),
    )


def _plain(value: Any) -> Any:
    """A parameter as a JSON value (NumPy scalars and arrays become numbers and lists, also inside
    the lists and tables of a composed process's parameters)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class SpecCopy:
    """A spec file a [process] table names, and the name of its copy inside the run directory."""

    source: Path  # the file as found (next to the config, or from the working directory)
    copy: str  # file name in the run directory: SPEC_COPY, or process_spec.components.<i>...toml


def localize_process(settings, base_dir: str | Path | None, *, _where: tuple[int, ...] = ()):
    """``settings`` as a run directory's config.toml records them, and the spec files to copy there.

    Every ``spec`` (also inside components) is renamed to its copy in the run directory (`SpecCopy`),
    and every ``module``'s ``module_path`` is resolved to the absolute directory it was found in, so
    the run's config reruns from any directory. Returns ``(settings, spec_copies)``.
    """
    if settings.kind in FAMILY_KINDS:
        return settings, ()
    if settings.kind is not None:
        parts, copies = [], []
        for i, c in enumerate(settings.components):
            new, more = localize_process(c, base_dir, _where=(*_where, i))
            parts.append(new)
            copies.extend(more)
        return dataclasses.replace(settings, components=tuple(parts)), tuple(copies)
    if settings.spec is not None:
        copy = SPEC_COPY if not _where else "process_spec.components." + ".".join(map(str, _where)) + ".toml"
        return dataclasses.replace(settings, spec=copy), (SpecCopy(spec_path(settings, base_dir), copy),)
    if settings.module is not None:
        found = import_process_module(settings.module, settings.module_path, base_dir)
        if found is not None:
            return dataclasses.replace(settings, module_path=str(found)), ()
    return settings, ()


def spec_path(settings, base_dir: str | Path | None) -> Path:
    """The spec file a [process] table names: next to the config file first, else from the working directory."""
    spec = Path(settings.spec)
    if not spec.is_absolute() and base_dir is not None and (Path(base_dir) / spec).exists():
        spec = Path(base_dir) / spec
    return spec


def import_process_module(module: str, module_path: str | None, base_dir: str | Path | None) -> Path | None:
    """Import ``module`` (which registers processes); return the directory it was found in, if not on sys.path.

    Searched in ``module_path`` (relative to ``base_dir``), ``base_dir`` and the working directory,
    then the usual import path. Raises `ProcessError` naming the module when it cannot be imported.
    """
    search = []
    if module_path is not None:
        p = Path(module_path)
        search.append(p if p.is_absolute() or base_dir is None else Path(base_dir) / p)
    if base_dir is not None:
        search.append(Path(base_dir))
    search.append(Path.cwd())
    top = module.split(".")[0]
    found_in = None
    for directory in search:
        if (
            (directory / f"{top}.py").is_file()
            or (directory / top / "__init__.py").is_file()
            or (directory / top).is_dir()
        ):
            found_in = directory.resolve()
            break
    if found_in is not None and str(found_in) not in sys.path:
        sys.path.insert(0, str(found_in))
    try:
        importlib.import_module(module)
    except ImportError as exc:
        where = ", ".join(str(d) for d in search)
        raise ProcessError(
            f"[process] module {module!r} cannot be imported ({exc}); put it in {where} or on "
            "PYTHONPATH, or set [process] module_path to its directory"
        ) from None
    except SystemExit as exc:  # sys.exit() in the module: never a silent exit (with status 0) of the command
        raise ProcessError(
            f"[process] module {module!r} called sys.exit({exc.code!r}) while importing; a process "
            "module must only define and register processes"
        ) from None
    except Exception as exc:  # the user's module itself failed while importing: say so in one line
        raise ProcessError(f"[process] module {module!r} failed while importing: {type(exc).__name__}: {exc}") from None
    return found_in


def plugin_sources(settings) -> dict[str, Path]:
    """The source file of every Python module a [process] table (its components too) imports, by module name:
    part of a run directory's identity (`compmech.runs.experiment.run_identity`). Modules not imported (yet), or
    without a file, are left out."""
    found: dict[str, Path] = {}
    if settings.module is not None:
        file = getattr(sys.modules.get(settings.module), "__file__", None)
        if file:
            found[settings.module] = Path(file)
    for c in settings.components:
        found.update(plugin_sources(c))
    return found


def check_process_size(n_bytes: float, what: str, fix: str, available: int | None = None) -> None:
    """Refuse (`ProcessError`) to build a process whose arrays would take ``n_bytes`` when that is more than the
    machine has: checked before anything big is allocated, unlike the run's memory estimate (which needs the
    built process)."""
    available = available_memory() if available is None else available
    if n_bytes > MEMORY_HEADROOM * available:
        raise ProcessError(
            f"{what} would take {n_bytes / 2**30:.3g} GiB to build, but this machine has "
            f"{available / 2**30:.3g} GiB available; {fix}"
        )


#: Bytes a dense composed process holds per entry of its T [V, S, S]: float64, 2.1 copies at the peak of the
#: product's construction (its outer product and the reshaped copy; measured with tracemalloc on five Mess3), and the
#: copies a run then makes (the sampler's float32 one, the emission matrices): 4 copies in all.
COMPOSED_BYTES_PER_ENTRY = 4 * 8
#: Bytes per entry of a random-Markov-chain source's k x k probe target, built before the run's memory estimate
#: (its entries' names and the float64 posterior mean).
MARKOV_BYTES_PER_ENTRY = 64


def build_process(
    settings, base_dir: str | Path | None = None, *, _where: str = "[process]"
) -> HMM | GeneralizedHMM | RandomMarkovChains:
    """The process for a config's [process] table: ``name`` + ``params`` from the registry (after
    importing ``module`` if given), a ``spec`` file, or a ``kind = "mixture"`` / ``"product"`` of
    its ``components`` (built the same way, recursively) via `hmm_processes.mixture` / `product`, or the
    ``kind = "coupled"`` product of two (`hmm_processes.shift_coupled` with ``coupling``), or the ``kind = "factored"``
    product of N factors with a dependency ``structure`` (`hmm_processes.factored_process`; each factor's variant 0
    is built as above, its further ``variants`` by `factor_variants`).

    A relative spec path is looked up next to the config file first (``base_dir``), then in the
    working directory. Parameters of the wrong type or out of range, and components that cannot be
    composed (a mixture's components with different vocabularies), raise `ProcessError` naming the
    component (``[process] components[1]``, counting from 0).

    ``kind = "random_markov"`` builds the continuous family `hmm_processes.RandomMarkovChains` (no HMM).
    """
    if settings.variants and _where == "[process]":
        raise ProcessError(
            '[process] variants are for the factors of kind = "factored": move them into a [[process.components]] table'
        )
    if settings.kind in FAMILY_KINDS:
        k = settings.n_states
        check_process_size(
            MARKOV_BYTES_PER_ENTRY * float(k) ** 2,
            f'{_where} kind = "{settings.kind}" with n_states = {k} (its probe target, the '
            f"posterior mean of the k x k matrix, has {float(k) ** 2:.3g} entries)",
            "use fewer states",
        )
        return RandomMarkovChains(settings.n_states, settings.concentration)
    if settings.kind is not None:
        parts = []
        for i, c in enumerate(settings.components):
            where = f"{_where} components[{i}]"
            try:
                parts.append(build_process(c, base_dir, _where=where))
            except ProcessError as exc:
                if where in str(exc):
                    raise
                raise ProcessError(f"{where}: {exc}") from None
        vocab = [p.vocab_size for p in parts]
        maps = getattr(settings, "vocab_maps", None)
        if settings.kind == "mixture" and maps is None and len(set(vocab)) > 1:
            k = next(i for i, v in enumerate(vocab) if v != vocab[0])
            raise ProcessError(
                f"{_where} components[{k}] ({parts[k].name}) has {vocab[k]} tokens but components[0] "
                f"({parts[0].name}) has {vocab[0]}; a mixture's components must share one vocabulary "
                '(use kind = "product" to combine different alphabets, or give vocab_maps)'
            )
        if maps is not None:
            V = 1 + max((max(m) for m in maps if m), default=0)
        else:
            V = vocab[0] if settings.kind == "mixture" else math.prod(vocab)
        S = (sum if settings.kind == "mixture" else math.prod)(p.num_states for p in parts)
        check_process_size(
            COMPOSED_BYTES_PER_ENTRY * float(V) * float(S) ** 2,
            f'{_where} kind = "{settings.kind}" of {len(parts)} components ({V} tokens, {S} '
            f"states: T [V, S, S] holds {float(V) * S * S:.3g} numbers)",
            "use fewer or smaller components",
        )
        try:
            if settings.kind == "mixture":
                return mixture(parts, settings.weights, vocab_maps=maps)
            if settings.kind == "coupled":
                return shift_coupled(parts[0], parts[1], settings.coupling)
            if settings.kind == "factored":
                factors = [
                    [part, *factor_variants(c, base_dir, f"{_where} components[{i}]")]
                    for i, (part, c) in enumerate(zip(parts, settings.components))
                ]
                return factored_process(
                    factors,
                    settings.structure,
                    control_maps=settings.control_maps,
                    emission_variants=settings.emission_variants,
                )
            return product(parts)
        except ProcessError as exc:
            raise ProcessError(f"{_where}: {exc}") from None
    if settings.name is not None:
        if settings.module is not None:
            import_process_module(settings.module, settings.module_path, base_dir)
        try:
            process = get_process(settings.name, **settings.params)
        except ProcessError:
            raise
        except (TypeError, OverflowError, ZeroDivisionError, FloatingPointError) as exc:
            raise ProcessError(
                f"process {settings.name!r} cannot be built from params {settings.params!r}: "
                f"{exc}; check the {_where} params"
            ) from None
        except (Exception, SystemExit) as exc:  # the factory itself failed: one line naming it, never a traceback
            what = (
                f"called sys.exit({exc.code!r})"
                if isinstance(exc, SystemExit)
                else f"raised {type(exc).__name__}: {exc}"
            )
            raise ProcessError(
                f"process {settings.name!r}: its factory {factory_name(settings.name)} {what} when "
                f"built from params {settings.params!r}"
            ) from None
    else:
        if settings.params:
            raise ProcessError(f"{_where} params cannot be combined with spec; put parameters in the spec file")
        path = spec_path(settings, base_dir)
        try:
            process = load_spec(path)
        except UnicodeDecodeError as exc:
            raise ProcessError(f"spec file {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    T = np.asarray(process.T)
    if not np.all(np.isfinite(T)) or (T.size and not math.isfinite(float(np.abs(T).max()))):
        raise ProcessError(f"process {process.name!r} has non-finite transition probabilities; check its parameters")
    return process


def factor_variants(settings, base_dir: str | Path | None, where: str) -> list[HMM | GeneralizedHMM]:
    """A factor's variants 1, 2, ... of a ``kind = "factored"`` process: its named process with each table of
    ``variants`` overriding its ``params`` (variant 0, ``params`` itself, is built by `build_process`)."""
    out = []
    for j, override in enumerate(settings.variants):
        params = {**settings.params, **override}
        try:
            out.append(get_process(settings.name, **params))
        except (ProcessError, TypeError, ValueError) as exc:
            raise ProcessError(
                f"{where} variants[{j}]: {settings.name!r} cannot be built from {params!r}: {exc}"
            ) from None
    return out


def component_processes(cfg: ExperimentConfig) -> list[HMM | GeneralizedHMM]:
    """The component processes of the run's composition (a product's factors, a mixture's components), built from its
    [process] components (`build_process`, errors naming the component)."""
    return [
        build_process(c, cfg.base_dir, _where=f"[process] components[{i}]")
        for i, c in enumerate(cfg.process.components)
    ]
