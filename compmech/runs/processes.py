"""Build the data-generating process an experiment config names (registry name, Python module, or spec file).

Also the run directory's copy of the process: ``process_spec.toml`` (the spec file, copied so the
run is self-contained) and ``process.json`` (its matrices, for the report and for notebooks).
"""

from __future__ import annotations

import importlib
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hmm_processes import HMM, GeneralizedHMM, ProcessError, get_process, load_spec

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

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.params, "token_names": self.token_names,
                "state_names": self.state_names, "T": self.T, "kind": self.kind, "spec_file": self.spec_file}


def process_record(process: HMM | GeneralizedHMM, spec_file: str | None) -> ProcessRecord:
    """The `ProcessRecord` of a built process (``spec_file``: the name of its copy in the run directory)."""
    T = np.asarray(process.T, np.float64)  # [V, S, S]
    return ProcessRecord(
        name=process.name, params={k: _plain(v) for k, v in process.params.items()},
        token_names=list(process.token_names) if process.token_names is not None else None,
        state_names=list(process.state_names) if process.state_names is not None else None,
        T=T.tolist(), kind="GeneralizedHMM" if isinstance(process, GeneralizedHMM) else "HMM",
        spec_file=spec_file)


def _plain(value: Any) -> Any:
    """A parameter as a JSON value (NumPy scalars and arrays become numbers and lists)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


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
        if (directory / f"{top}.py").is_file() or (directory / top / "__init__.py").is_file() \
                or (directory / top).is_dir():
            found_in = directory.resolve()
            break
    if found_in is not None and str(found_in) not in sys.path:
        sys.path.insert(0, str(found_in))
    try:
        importlib.import_module(module)
    except ImportError as exc:
        where = ", ".join(str(d) for d in search)
        raise ProcessError(f"[process] module {module!r} cannot be imported ({exc}); put it in {where} or on "
                           "PYTHONPATH, or set [process] module_path to its directory") from None
    except Exception as exc:  # the user's module itself failed while importing: say so in one line
        raise ProcessError(f"[process] module {module!r} failed while importing: {type(exc).__name__}: {exc}") \
            from None
    return found_in


def build_process(settings, base_dir: str | Path | None = None) -> HMM | GeneralizedHMM:
    """The process for a config's [process] table: ``name`` + ``params`` from the registry (after
    importing ``module`` if given), or a ``spec`` file.

    A relative spec path is looked up next to the config file first (``base_dir``), then in the
    working directory. Parameters of the wrong type or out of range raise `ProcessError`.
    """
    if settings.name is not None:
        if settings.module is not None:
            import_process_module(settings.module, settings.module_path, base_dir)
        try:
            process = get_process(settings.name, **settings.params)
        except (TypeError, OverflowError, ZeroDivisionError, FloatingPointError) as exc:
            raise ProcessError(f"process {settings.name!r} cannot be built from params {settings.params!r}: "
                               f"{exc}; check the [process] params") from None
    else:
        if settings.params:
            raise ProcessError("[process] params cannot be combined with spec; put parameters in the spec file")
        path = spec_path(settings, base_dir)
        try:
            process = load_spec(path)
        except UnicodeDecodeError as exc:
            raise ProcessError(f"spec file {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    T = np.asarray(process.T)
    if not np.all(np.isfinite(T)) or (T.size and not math.isfinite(float(np.abs(T).max()))):
        raise ProcessError(f"process {process.name!r} has non-finite transition probabilities; check its parameters")
    return process
