"""compmech from Python, as from the command line: `run`, `sweep` and `reproduce` (exported as `compmech.run`,
`compmech.sweep`, `compmech.reproduce`).

    import compmech
    run = compmech.run("mess3", overrides={"training.steps": 300})    # a shipped config by name, a path, or a config
    run                                                                # a one-screen summary
    run.activations(run.contexts.tokens[:8], ["blocks.3.hook_resid_post"])
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from compmech.runs import shipped
from compmech.runs.compiles import enable_persistent_cache
from compmech.runs.config import ExperimentConfig, load_config
from compmech.runs.experiment import run_experiment
from compmech.runs.reproduce import format_markdown, reproducible_studies, run_study
from compmech.runs.reproduce import reproduce as reproduce_paper
from compmech.runs.run_command import default_run_dir
from compmech.runs.run_dir import Run, load_run
from compmech.runs.sweep import load_sweep, run_sweep


def run(
    config: str | Path | ExperimentConfig = shipped.DEFAULT_NAME,
    overrides: Mapping[str, Any] | None = None,
    out: str | Path | None = None,
    *,
    progress: bool = True,
) -> Run:
    """Run one experiment (or reuse its finished run) and load it, as ``compmech run`` does.

    Parameters
    ----------
    config : a shipped config's name ("mess3"; `compmech configs` lists them), the path of a TOML config, or an
        `ExperimentConfig`.
    overrides : dotted config keys -> values, e.g. ``{"model.d_model": 128, "training.steps": 5000}`` (``--set``).
    out : the run directory (default: ``runs/<name>``, suffixed by the overrides as ``compmech run`` does).
    progress : progress bars and stage messages on stderr.

    Returns
    -------
    The finished run, loaded (`compmech.runs.run_dir.Run`).

    Examples
    --------
    >>> import compmech
    >>> run = compmech.run("mess3", overrides={"training.steps": 300}, progress=False)  # doctest: +SKIP
    >>> run.summary.relative_loss  # doctest: +SKIP
    """
    enable_persistent_cache()  # as the CLI does: a repeated run loads its XLA programs from disk
    overrides = dict(overrides or {})
    if isinstance(config, ExperimentConfig):
        if overrides:
            raise ValueError(
                "overrides apply to a config file or a shipped config's name; change the "
                "ExperimentConfig with dataclasses.replace instead"
            )
        cfg = config
    else:
        cfg = load_config(shipped.resolve(str(config)), overrides)
    if out is None:
        steps, seed = overrides.pop("training.steps", None), overrides.pop("seed", None)
        out = default_run_dir(cfg.name, steps, seed, overrides)
    summary = run_experiment(cfg, out, progress=progress, command=None)
    if summary is None:
        raise RuntimeError("this process is a helper of a jax.distributed run: process 0 loads the run")
    return load_run(out)


def sweep(
    path: str | Path, *, quick: bool = False, out: str | Path | None = None, progress: bool = True
) -> list[dict[str, Any]]:
    """Run a sweep file (``compmech sweep``): one run per grid point, then its table; returns the table's rows
    (point, grid values, metrics, run directory)."""
    enable_persistent_cache()
    loaded = load_sweep(shipped.resolve(str(path)), quick=quick)
    out = out if out is not None else Path("runs") / (loaded.name + ("-quick" if quick else ""))
    return run_sweep(loaded, Path(out), progress=progress, quick=quick)


def reproduce(
    only: str | list[str] | None = None, *, quick: bool = False, out: str | Path | None = None, progress: bool = True
) -> str:
    """``compmech reproduce``: the paper's experiments (or ``only`` some of them, or a study by name, e.g. "icl");
    returns the Markdown table it wrote."""
    enable_persistent_cache()
    names = [only] if isinstance(only, str) else list(only or [])
    root = Path(out) if out is not None else Path("runs") / ("reproduce-quick" if quick else "reproduce")
    studies = [n for n in names if n in reproducible_studies()]
    paper = [n for n in names if n not in studies]
    parts = []
    if paper or not studies:
        rows = reproduce_paper(root, quick=quick, only=paper or None, progress=progress)
        parts.append(format_markdown(rows, f"# written to {root / 'reproduce.md'}"))
    for name in studies:
        parts.append(run_study(name, root / name, quick=quick, progress=progress))
    return "\n".join(parts)
