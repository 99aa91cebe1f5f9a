"""Build the data-generating process an experiment config names (registry name or spec file)."""

from __future__ import annotations

from pathlib import Path

from hmm_processes import HMM, ProcessError, get_process, load_spec


def build_process(settings, base_dir: str | Path | None = None) -> HMM:
    """The `HMM` for a config's [process] table: ``name`` + ``params`` from the registry, or a ``spec`` file.

    A relative spec path is looked up next to the config file first (``base_dir``), then in the
    working directory.
    """
    if settings.name is not None:
        return get_process(settings.name, **settings.params)
    spec = Path(settings.spec)
    if not spec.is_absolute() and base_dir is not None and (Path(base_dir) / spec).exists():
        spec = Path(base_dir) / spec
    if settings.params:
        raise ProcessError("[process] params cannot be combined with spec; put parameters in the spec file")
    return load_spec(spec)
