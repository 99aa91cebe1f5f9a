"""Run one experiment end to end: process -> exact theory -> training -> probes -> figures -> summary.

This is the only module (with the CLI over it) that ties the packages together; each step
below hands plain arrays to the next.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import shutil
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import predictive_models  # a lazy package (PEP 562): JAX is imported when training starts
from compmech import studies
from compmech.interop.tracking import track_run
from compmech.runs import sampled
from compmech.runs.analysis import geometry_analysis, training_evolution
from compmech.runs.compiles import CompileCount, CompileStats
from compmech.runs.config import ConfigError, ExperimentConfig, read_toml
from compmech.runs.contexts import ContextSet
from compmech.runs.distributed import is_lead_process
from compmech.runs.environment import run_environment
from compmech.runs.errors import RunDirError
from compmech.runs.files import (
    LOCK_NAME,
    directory_lock,
    is_complete,
    mark_complete,
    mark_unfinished,
    remove_stale_temp_files,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)
from compmech.runs.paper import paper_results
from compmech.runs.preflight import MemoryEstimate, check_learnable, check_memory, check_output_dir, estimate_memory
from compmech.runs.probing import probe_model, probed_layers
from compmech.runs.processes import PROCESS_JSON, SPEC_COPY, SpecCopy, build_process, localize_process, plugin_sources
from compmech.runs.progress import PhaseTimes, phase
from compmech.runs.records import EvolutionPoint, probe_fields
from compmech.runs.regime import RegimeChoice, choose_regime
from compmech.runs.report import build_report
from compmech.runs.run_figures import analysis_figures, make_figures
from compmech.runs.sources import Source, SourceData, source_of
from compmech.runs.summary import SUMMARY_JSON, ModelSize, ProcessName, RunSummary, read_summary
from hmm_processes import ProcessError


@dataclass(frozen=True)
class RunPlan:
    """A validated run, before anything is written: the config as it will be saved, the built process,
    the model and training configs, the analysis layer and the memory estimate."""

    cfg: ExperimentConfig  # as written to the run directory (spec -> its copy, module_path resolved)
    source: Source  # the built process, as the runner asks it (`compmech.runs.sources`)
    model_cfg: predictive_models.ModelConfig  # a TransformerConfig, a RecurrentConfig, ...
    train_cfg: predictive_models.TrainConfig
    layer: str  # the analysis (figure) layer
    memory: MemoryEstimate
    run_dir: Path
    spec_copies: tuple[SpecCopy, ...] = ()  # the spec files copied into the run directory (components' too)
    regime: RegimeChoice | None = None  # exact or sampled (`compmech.runs.regime.choose_regime`)
    # The word length up to which the process's word probabilities were checked >= 0 (`Source.check_words`): inf
    # for an HMM, fewer than `words_used` where a generalized HMM's check could not be completed.
    checked_depth: float = math.inf

    @property
    def words_used(self) -> int:
        """The longest word the run draws or predicts: the context's tokens and the next one."""
        return self.model_cfg.context_length + (0 if self.cfg.data.bos else 1)


def plan_run(cfg: ExperimentConfig, out_dir: str | Path | None = None, *, available: int | None = None) -> RunPlan:
    """Check everything a run needs before it starts: the process builds, the model and training configs
    hold, the figure layer exists, the memory fits (``available`` bytes, default: this machine's) and
    the output directory can be written. Raises `ConfigError`/`ProcessError`; creates nothing."""
    run_dir = Path(out_dir) if out_dir is not None else Path("runs") / cfg.name
    base_dir = cfg.base_dir
    source = source_of(build_process(cfg.process, base_dir=base_dir))
    try:
        model_cfg = cfg.model_config(model_vocab_size(cfg, source))
        train_cfg = cfg.train_config()
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{cfg.source}: {exc}") from None
    layer = analysis_layer(cfg, model_cfg)
    words = model_cfg.context_length + (0 if cfg.data.bos else 1)
    check = getattr(source, "check_words", None)  # optional in the Source protocol
    try:
        checked_depth = check(words) if check is not None else math.inf
    except ProcessError as exc:
        raise ProcessError(f"{cfg.source}: {exc} (this run uses words of up to {words} tokens)") from None
    check_learnable(cfg, source, model_cfg.context_length)
    try:
        studies.check_studies(cfg, source, model_cfg)
    except ValueError as exc:
        raise ConfigError(f"{cfg.source}: {exc}") from None
    regime = choose_regime(cfg, source, model_cfg.context_length)
    memory = estimate_memory(
        cfg.model,
        cfg.training,
        source.traits.belief_size,
        source.vocab_size,
        include_concat=cfg.probe.include_concat,
        bos=cfg.data.bos,
        regime=regime,
    )
    check_memory(memory, cfg.source, available)
    check_output_dir(run_dir)
    settings, spec_copies = localize_process(cfg.process, base_dir)
    return RunPlan(
        cfg=dataclasses.replace(cfg, process=settings),
        source=source,
        model_cfg=model_cfg,
        train_cfg=train_cfg,
        layer=layer,
        memory=memory,
        run_dir=run_dir,
        spec_copies=spec_copies,
        regime=regime,
        checked_depth=checked_depth,
    )


#: A run directory's identity (`run_identity`): what its run was made from, by hash, checked when it is run again.
IDENTITY_JSON = "identity.json"


def run_identity(plan: RunPlan) -> dict[str, Any]:
    """What a run directory's run is made from, as SHA-256 hashes: the config (every key that changes the run's
    numbers, `_run_identity`), the process's matrices (process.json's record), each spec file copied in, and the
    source of each Python module the [process] table imports. Written to identity.json; a rerun into the same
    directory must match it, or is refused with what differs (`check_run_identity`)."""
    cfg = plan.cfg
    record = _process_record(plan)
    return {
        "config": _sha256(json.dumps(_run_identity(tomllib.loads(cfg.to_toml())), sort_keys=True).encode()),
        "process": None if record is None else _sha256(json.dumps(record, sort_keys=True).encode()),
        "specs": {spec.copy: _sha256(spec.source.read_bytes()) for spec in plan.spec_copies},
        "plugins": {module: _sha256(path.read_bytes()) for module, path in plugin_sources(cfg.process).items()},
    }


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _process_record(plan: RunPlan) -> dict[str, Any] | None:
    """process.json's content for this run (None for a source without matrices)."""
    cfg = plan.cfg
    return plan.source.matrices_record(
        SPEC_COPY if cfg.process.spec is not None else None, cfg.process.kind, tuple(c.copy for c in plan.spec_copies)
    )


def check_run_identity(plan: RunPlan) -> None:
    """Refuse (`ConfigError`, one line saying what differs) when ``plan.run_dir`` holds a run of something else:
    another config, a process.json that is not this process's (edited, or the process changed), a spec file or a
    plugin module whose source changed since the run was made (identity.json). A directory without config.toml
    passes (a new run)."""
    run_dir, cfg = plan.run_dir, plan.cfg
    config_path = run_dir / "config.toml"
    if not config_path.exists():
        return
    fix = "pass --out DIR for a new run directory, or delete the old one"
    try:
        old = read_toml(config_path, "the run's config")
    except ConfigError as exc:
        raise ConfigError(
            f"run directory {run_dir} is damaged: {exc}; delete {run_dir} to start again, "
            "or pass --out DIR for a new run directory"
        ) from None
    new = tomllib.loads(cfg.to_toml())
    if _run_identity(old) != _run_identity(new):
        raise ConfigError(
            f"run directory {run_dir} holds a run with a different config ({_first_difference(old, new)}); {fix}"
        )
    record = _process_record(plan)
    old_record = _read_json_or_none(run_dir / PROCESS_JSON)
    if (run_dir / PROCESS_JSON).exists() and record is not None and old_record != record:
        what = _first_difference(old_record, record) if isinstance(old_record, dict) else "not a JSON object"
        raise ConfigError(
            f"run directory {run_dir}: its {PROCESS_JSON} is not the process this config builds "
            f"({what}): the file was edited, or the process (a spec file, a plugin module) changed "
            f"since the run was made; {fix}"
        )
    identity = _read_json_or_none(run_dir / IDENTITY_JSON)
    if not isinstance(identity, dict):
        return  # written before identity.json existed: the config and the matrices are what can be compared
    now = run_identity(plan)
    for copy, digest in (identity.get("specs") or {}).items():
        if now["specs"].get(copy, digest) != digest:
            source = next(s.source for s in plan.spec_copies if s.copy == copy)
            raise ConfigError(
                f"run directory {run_dir} was made from another version of the spec file {source} "
                f"(its SHA-256 differs from the one in {IDENTITY_JSON}); {fix}"
            )
    for module, digest in (identity.get("plugins") or {}).items():
        if now["plugins"].get(module, digest) != digest:
            raise ConfigError(
                f"run directory {run_dir} was made with another version of the module {module!r} "
                f"({plugin_sources(cfg.process)[module]}: its SHA-256 differs from the one in "
                f"{IDENTITY_JSON}); {fix}"
            )


def prepare_run_dir(plan: RunPlan, *, created: bool | None = None) -> None:
    """Create the run directory, or check that an existing one belongs to this very run (then it resumes):
    `check_run_identity`.

    The completion mark and the summary are removed first, so an interrupted re-run is never
    mistaken for a complete one, and temp files a killed run left behind are deleted. A new
    directory whose first files cannot be written is removed again (``created``: whether the caller created
    it, e.g. when taking its lock; default: whether it exists now).
    """
    run_dir, cfg = plan.run_dir, plan.cfg
    config_path = run_dir / "config.toml"
    record = _process_record(plan)
    check_run_identity(plan)
    if not config_path.exists() and run_dir.exists() and any(p.name != LOCK_NAME for p in run_dir.iterdir()):
        raise RunDirError(f"{run_dir} exists and is not a compmech run directory; pass --out DIR")
    if created is None:
        created = not run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        mark_unfinished(run_dir)
        remove_stale_temp_files(run_dir)
        for spec in plan.spec_copies:
            if spec.source.resolve() != (run_dir / spec.copy).resolve():
                write_bytes_atomic(run_dir / spec.copy, spec.source.read_bytes())
        if record is not None:
            write_json_atomic(run_dir / PROCESS_JSON, record)
        write_json_atomic(run_dir / IDENTITY_JSON, run_identity(plan))
        write_text_atomic(config_path, cfg.to_toml())
    except BaseException:
        if created:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def finished_summary(cfg: ExperimentConfig, out_dir: str | Path | None = None) -> RunSummary | None:
    """The summary of a finished run (its completion mark written) of this very config in ``out_dir``, else None
    (also when its summary.json cannot be read: the run is then done again). A directory that holds a run of
    something else is refused (`check_run_identity`)."""
    plan = plan_run(cfg, out_dir)
    check_run_identity(plan)
    if not is_complete(plan.run_dir):
        return None
    try:
        return read_summary(plan.run_dir)
    except RunDirError:
        return None


def run_or_reuse(
    cfg: ExperimentConfig, out_dir: str | Path, *, progress: bool = True, command: str | None = None
) -> RunSummary:
    """The summary of ``cfg``'s run in ``out_dir``: the finished one when it is there (`finished_summary`), else
    the run's, made now (`run_experiment`, resuming whatever an interrupted run left)."""
    summary = finished_summary(cfg, out_dir)
    if summary is None:
        summary = run_experiment(cfg, out_dir, progress=progress, command=command)
    return summary


def _run_identity(config: dict[str, Any]) -> dict[str, Any]:
    """A parsed config.toml without the keys that do not change a run's numbers beyond float32 reduction order
    ([training] devices): a run trained on N devices resumes, and counts as finished, on M."""
    config = {**config, "training": dict(config.get("training", {}))}
    config["training"].pop("devices", None)
    config.pop("tracking", None)  # where the run is logged changes none of its numbers
    return config


def _read_json_or_none(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _first_difference(old: Any, new: Any, prefix: str = "") -> str:
    """``key.path: <old> there, <new> here`` for the first place two parsed files differ (tables and lists)."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            d = _first_difference(old.get(key), new.get(key), f"{prefix}{key}.")
            if d:
                return d
        return ""
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new)):
            d = _first_difference(a, b, f"{prefix.rstrip('.')}[{i}].")
            if d:
                return d
        return ""
    if old != new:
        return f"{prefix.rstrip('.')}: {_short(old)} there, {_short(new)} here"
    return ""


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def run_experiment(
    cfg: ExperimentConfig, out_dir: str | Path | None = None, *, progress: bool = True, command: str | None = None
) -> RunSummary | None:
    """Train, probe and plot as ``cfg`` says; write the run directory; return the summary. Under `jax.distributed`
    every process trains; process 0 alone writes the run directory (the others return None after training).

    Everything is checked (`plan_run`) before the directory is created. The run is finished when
    ``complete.json`` exists: it is written last, after summary.json and report.html. The run directory is locked
    for the whole run (`compmech.runs.files.directory_lock`): a second process writing into it is refused at once.
    """
    with CompileCount() as compiles:
        return _run_experiment(cfg, out_dir, progress=progress, command=command, compiles=compiles)


def _run_experiment(
    cfg: ExperimentConfig, out_dir: str | Path | None, *, progress: bool, command: str | None, compiles: CompileCount
) -> RunSummary | None:
    start = time.time()
    plan = plan_run(cfg, out_dir)
    lead = is_lead_process()  # under jax.distributed, process 0 writes; the others only train with it
    with directory_lock(plan.run_dir) if lead else contextlib.nullcontext(False) as created:
        return _locked_run(
            plan, cfg, start=start, lead=lead, created=created, progress=progress, command=command, compiles=compiles
        )


def _locked_run(
    plan: RunPlan,
    cfg: ExperimentConfig,
    *,
    start: float,
    lead: bool,
    created: bool,
    progress: bool,
    command: str | None,
    compiles: CompileCount,
) -> RunSummary | None:
    progress = progress and lead
    if lead:
        prepare_run_dir(plan, created=created)
    if progress:
        print(
            f"compmech run {cfg.name}: {plan.source.name} -> {plan.run_dir} ({plan.memory.n_strings:,} context "
            f"strings at most: {plan.regime.name} regime; estimated peak memory {plan.memory.peak / 2**30:.2g} GiB)",
            file=sys.stderr,
            flush=True,
        )
    if lead and plan.checked_depth < plan.words_used:
        print(
            f"compmech: note: {plan.source.name}'s word probabilities were checked >= 0 for every word of up to "
            f"{plan.checked_depth:.0f} tokens only, of the {plan.words_used} this run uses (its state vectors grow "
            "past the check's budget); summary.json records it",
            file=sys.stderr,
            flush=True,
        )
    times = PhaseTimes()
    eval_set, ctx, floor = evaluation_set(plan, progress=progress, times=times)
    with phase("train", enabled=False, times=times):  # train draws its own bar
        result = predictive_models.train(
            plan.model_cfg,
            plan.train_cfg,
            SourceData(plan.source, cfg.data.bos),
            eval_set,
            plan.run_dir,
            progress=progress,
        )
    if not lead:
        return None  # the lead process probes, plots and writes the summary
    untrained = predictive_models.initial_params(plan.model_cfg, plan.train_cfg)  # the untrained-model control
    probe, ctx = _probe_phase(plan, result, ctx, eval_set, floor, untrained, progress=progress, times=times)
    with phase("geometry", enabled=progress, times=times):
        geometry = geometry_analysis(plan.source, probe, plan.layer, cfg.seed, tokens=ctx.tokens)
    evolution = _evolution_phase(plan, result, ctx, eval_set, probe, geometry, progress=progress, times=times)
    write_json_atomic(
        plan.run_dir / "analysis.json",
        {"layer": plan.layer, "geometry": geometry.to_json(), "evolution": [e.to_json() for e in evolution]},
    )
    with phase("figures", enabled=progress, times=times):
        figure_paths = make_figures(cfg, plan.run_dir, plan.source, ctx, result.history, probe, plan.layer)
        figure_paths += analysis_figures(cfg, plan.run_dir, plan.source, geometry, evolution, probe.probe_layer)
    outputs = studies.run_studies(
        studies.StudyInputs(
            cfg=cfg,
            source=plan.source,
            model_cfg=plan.model_cfg,
            params_state=result.params_state,
            untrained_params=untrained,
            ctx=ctx,
            probe=probe,
            run_dir=plan.run_dir,
            regime=plan.regime,
            progress=progress,
        )
    )
    for output in outputs:
        figure_paths += list(output.figures)
    summary = _summary(
        plan,
        result,
        floor,
        probe,
        geometry,
        evolution,
        figure_paths,
        outputs,
        command=command,
        times=times,
        compiles=compiles.stats,
        wall_seconds=time.time() - start,
    )
    write_json_atomic(plan.run_dir / SUMMARY_JSON, summary.to_json())
    with phase("report", enabled=progress, times=times):
        build_report(plan.run_dir)  # the page reads the finished run directory
    if cfg.tracking.mlflow:  # never blocks or fails the run: an error is one warning line
        track_run(cfg.tracking, plan.run_dir, summary)
    mark_complete(plan.run_dir, phase_seconds=dict(times.seconds), wall_seconds=time.time() - start)
    return summary


def _regime_json(plan: RunPlan, floor: sampled.OptimalLossRecord | None) -> dict[str, Any]:
    """probe.json's and summary.json's ``regime_sizes``: the regime's sizes and how the optimal loss was obtained."""
    return {
        **plan.regime.to_json(),
        **(
            floor.to_json() if floor is not None else {"optimal_loss_exact_depth": None, "optimal_loss_method": "exact"}
        ),
    }


def _probe_phase(
    plan: RunPlan,
    result: predictive_models.TrainResult,
    ctx: ContextSet | None,
    eval_set: Any,
    floor: sampled.OptimalLossRecord | None,
    untrained: Any,
    *,
    progress: bool,
    times: PhaseTimes,
) -> tuple[Any, ContextSet]:
    """Probe every layer of the trained model (and the untrained control) for the beliefs; write probe.json.

    Returns the `compmech.runs.records.ProbeOutcome` and the contexts the figures and the evolution read: every
    string (exact regime) or the kept probe sequences (sampled)."""
    cfg, regime = plan.cfg, plan.regime
    with phase("probe", enabled=False, times=times):  # the probe draws its own bars (activations, fits)
        if regime.sampled:
            probe, ctx = sampled.probe_model_sampled(
                cfg,
                plan.model_cfg,
                result.params_state,
                plan.source,
                regime,
                plan.layer,
                eval_set.optimal_loss,
                progress=progress,
                untrained_params=untrained,
            )
        else:
            probe = probe_model(
                cfg, plan.model_cfg, result.params_state, ctx, plan.layer, progress=progress, untrained_params=untrained
            )
        probe = dataclasses.replace(
            probe, info={**probe.info, "regime": regime.name, "regime_sizes": _regime_json(plan, floor)}
        )
        write_json_atomic(plan.run_dir / "probe.json", probe.to_json())
    return probe, ctx


def _evolution_phase(
    plan: RunPlan,
    result: predictive_models.TrainResult,
    ctx: ContextSet,
    eval_set: Any,
    probe: Any,
    geometry: Any,
    *,
    progress: bool,
    times: PhaseTimes,
) -> list[EvolutionPoint]:
    """The analysis layer's probe refitted at every ``tokens_<N>`` checkpoint, then the final model's point."""
    with phase("evolution", enabled=False, times=times):  # draws its own bar
        evolution = training_evolution(
            plan.run_dir, plan.model_cfg, ctx, eval_set, plan.layer, plan.cfg.probe, plan.cfg.seed, progress=progress
        )
    last = result.history[-1]
    evolution.append(
        EvolutionPoint(
            tokens=last["tokens"],
            step=last["step"],
            relative_loss=last["relative_loss"],
            probe=probe_fields(probe.results[plan.layer].to_dict()),
            beliefs=geometry.beliefs,
            probed=geometry.probed,
        )
    )
    return evolution


def _summary(
    plan: RunPlan,
    result: predictive_models.TrainResult,
    floor: sampled.OptimalLossRecord | None,
    probe: Any,
    geometry: Any,
    evolution: list[EvolutionPoint],
    figure_paths: list[Path],
    outputs: list[studies.StudyOutput],
    *,
    command: str | None,
    times: PhaseTimes,
    compiles: CompileStats,
    wall_seconds: float,
) -> RunSummary:
    """The run's `RunSummary` from its phases' records."""
    cfg, run_dir, source, model_cfg = plan.cfg, plan.run_dir, plan.source, plan.model_cfg
    final = result.history[-1]
    kind = predictive_models.kind_of(model_cfg)
    return RunSummary(
        name=cfg.name,
        process=ProcessName(name=source.name, params=source.params),
        source=source.traits.to_json(),
        command=command or f"compmech run {cfg.source}",
        cwd=str(Path.cwd()),
        model=ModelSize(kind=kind, n_params=predictive_models.n_params(model_cfg)),
        steps=final["step"],
        tokens=final["tokens"],
        final_loss=final["loss"],
        optimal_loss=final["optimal_loss"],
        relative_loss=final["relative_loss"],
        relative_loss_stderr=final.get("relative_loss_stderr"),
        relative_loss_paired=None
        if floor is None or floor.sample_optimal is None
        else float(np.mean(final["loss_by_position"]) / np.mean(floor.sample_optimal)),
        regime=plan.regime.name,
        regime_sizes=_regime_json(plan, floor),
        process_checked_depth=None if plan.checked_depth >= plan.words_used else int(plan.checked_depth),
        probe_layer=probe.probe_layer,
        probe=probe.final,
        probe_untrained=probe.untrained_json,
        probe_mse_by_layer={name: res.mse for name, res in probe.results.items()},
        analysis_layer=plan.layer,
        geometry=geometry.to_json(),
        evolution=[e.to_json() for e in evolution],
        paper=paper_results(source.name, kind),
        figures=[str(p.relative_to(run_dir)) for p in figure_paths],
        studies={output.name: output.to_json(run_dir) for output in outputs},
        memory_estimate_bytes=plan.memory.peak,
        phase_seconds=dict(times.seconds),
        wall_seconds=wall_seconds,
        train_wall_seconds=result.wall_seconds,
        train_elapsed_seconds=float(result.final.get("elapsed_s", result.wall_seconds)),
        compiles=compiles.to_json(),
        environment=run_environment(),
    )


def evaluation_set(
    plan: RunPlan, *, progress: bool = True, times: PhaseTimes | None = None
) -> tuple[Any, ContextSet | None, sampled.OptimalLossRecord | None]:
    """(eval set, context set or None, the sampled regime's `sampled.OptimalLossRecord` or None) of a planned run:
    every context string with its exact theory (exact regime), or the fixed held-out sample drawn from the seed
    (sampled)."""
    cfg, source, model_cfg = plan.cfg, plan.source, plan.model_cfg
    if plan.regime.sampled:  # a fixed held-out sample instead of every string (compmech.runs.sampled)
        with phase("validation sample", enabled=progress, times=times):
            eval_set, floor = sampled.validation_set(cfg, source, model_cfg, plan.regime)
        return eval_set, None, floor
    with phase("context set", enabled=progress, times=times):
        ctx = source.context_set(model_cfg.context_length, cfg.data.bos)
        eval_set = predictive_models.ExactEvalSet(
            tokens=ctx.tokens, weights=ctx.probs, next_token_probs=ctx.next_token_probs, optimal_loss=ctx.optimal_loss
        )
    return eval_set, ctx, None


def seedless(cfg: ExperimentConfig) -> str:
    """The config as TOML with its name and seed blanked: runs with equal ones differ only in seed (same array
    shapes, same process), so they can train together (`train_together`)."""
    return dataclasses.replace(cfg, name="_", seed=0).to_toml()


def train_together(cfgs: list[ExperimentConfig], out_dirs: list[str | Path], *, progress: bool = True) -> None:
    """Train runs that differ only in seed as groups of `predictive_models.train_seeds` (one jitted, vmapped step
    for all, on every device of [training] devices), each into its own run directory.

    Only the training: `run_experiment` on each afterwards finds its training finished (a resume at the last
    step) and runs the probe, figures, summary and report as usual. Runs whose directories stand at different
    steps (an interrupted sweep) train in one group per step.
    """
    progress = progress and is_lead_process()
    if len({seedless(cfg) for cfg in cfgs}) > 1:
        raise ValueError("train_together: the configs must differ only in seed (and name)")
    plans = [plan_run(cfg, d) for cfg, d in zip(cfgs, out_dirs)]
    with contextlib.ExitStack() as locks:
        if is_lead_process():
            for plan in plans:
                prepare_run_dir(plan, created=locks.enter_context(directory_lock(plan.run_dir)))
        _train_group(plans, progress=progress)


def _train_group(plans: list[RunPlan], *, progress: bool) -> None:
    """`train_together`'s training, its run directories prepared (and locked)."""
    by_step: dict[int, list[RunPlan]] = {}
    for plan in plans:
        by_step.setdefault(_checkpoint_step(plan.run_dir), []).append(plan)
    for step, group in sorted(by_step.items()):
        if step >= group[0].train_cfg.steps:
            continue  # trained already
        eval_sets = []
        for plan in group:  # one per seed: a sampled regime's held-out sample is drawn from the seed
            if eval_sets and not plan.regime.sampled:
                eval_sets.append(eval_sets[0])  # every context string: the same for every seed
            else:
                eval_sets.append(evaluation_set(plan, progress=progress)[0])
        if progress:
            print(
                f"train together: {len(group)} runs (seeds {', '.join(str(p.cfg.seed) for p in group)}) "
                f"{'from step ' + str(step) if step else 'from the start'}",
                file=sys.stderr,
                flush=True,
            )
        first = group[0]
        predictive_models.train_seeds(
            first.model_cfg,
            [p.train_cfg for p in group],
            SourceData(first.source, first.cfg.data.bos),
            eval_sets,
            [p.run_dir for p in group],
            progress=progress,
        )


def _checkpoint_step(run_dir: Path) -> int:
    """The step of a run directory's latest checkpoint (0 when it has none)."""
    path = run_dir / "checkpoints" / "latest.msgpack"
    return int(predictive_models.load_checkpoint(path)["step"]) if path.exists() else 0


def model_vocab_size(cfg: ExperimentConfig, source: Source) -> int:
    """The model's vocabulary: the source's tokens, plus the start token when [data] bos is set."""
    return source.vocab_size + (1 if cfg.data.bos else 0)


def analysis_layer(cfg: ExperimentConfig, model_cfg: predictive_models.ModelConfig) -> str:
    """The layer the figures, the distance geometry and the training evolution use (one of the probed layers,
    or "concat"). Raises `ConfigError` when [probe] layers or figure_layer name no probed activation."""
    try:
        probed = probed_layers(cfg.probe, model_cfg)
    except ValueError as exc:
        raise ConfigError(f"{cfg.source}: {exc}") from None
    layer = cfg.probe.figure_layer or predictive_models.probe_layer_name(model_cfg)
    allowed = probed + (["concat"] if cfg.probe.include_concat else [])
    if layer not in allowed:
        raise ConfigError(
            f"{cfg.source}: [probe] figure_layer = {layer!r} is not a probed layer; "
            f'use one of {", ".join(allowed)} (or "" for the paper\'s)'
        )
    return layer
