"""Run one experiment end to end: process -> exact theory -> training -> probes -> figures -> summary.

This is the only module (with the CLI over it) that ties the packages together; each step
below hands plain arrays to the next.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from compmech.runs.analysis import geometry_analysis, training_evolution
from compmech.runs.config import ConfigError, ExperimentConfig, read_toml
from compmech.runs.distributed import is_lead_process
from compmech.runs.files import (is_complete, mark_complete, mark_unfinished, remove_stale_temp_files, write_bytes_atomic,
                            write_json_atomic, write_text_atomic)
from compmech.information import next_token_distribution, optimal_loss_by_position
from compmech.mixed_states import mixed_states
from compmech.runs.paper import paper_results
from compmech.runs.preflight import MemoryEstimate, RunDirError, check_memory, check_output_dir, estimate_memory
from compmech.runs.probing import probe_model, probed_layers
from compmech.runs.processes import PROCESS_JSON, SPEC_COPY, SpecCopy, build_process, localize_process, process_record
from compmech.runs.progress import PhaseTimes, phase
from compmech.runs.records import EvolutionPoint, probe_fields
from compmech.runs.run_figures import analysis_figures, make_figures
from compmech.runs.sampled import RegimeChoice, choose_regime
from compmech.runs.studies import StudyInputs, check_studies, run_studies
from compmech.runs.sources import Source, source_traits
from compmech.runs.sources import data_fn as source_data_fn
from hmm_processes import HMM, GeneralizedHMM


@dataclass(frozen=True)
class ContextSet:
    """Every allowed string of the model's context length, with its exact theory.

    With a start token (``bos``) every string begins with it (token id V) and is followed by every
    allowed word of length T - 1; ``beliefs[:, 0]`` is then the prior and ``next_token_probs[:, 0]``
    the law of the first token. ``next_token_probs`` covers the model's vocabulary (the start token,
    never emitted, gets probability 0).
    """

    tokens: np.ndarray  # [N, T] int32
    probs: np.ndarray  # [N] float64
    beliefs: np.ndarray  # [N, T, S] float64, belief after tokens[:, :t+1] (the start token: the prior)
    next_token_probs: np.ndarray  # [N, T, V (+1 with bos)] float64
    optimal_loss: np.ndarray  # [T] nats, Bayes-optimal cross-entropy by position
    bos: bool = False


def context_set(hmm: HMM | GeneralizedHMM, context_length: int, *, bos: bool = False) -> ContextSet:
    """All allowed length-``context_length`` strings with probabilities, beliefs and optimal loss."""
    depth = context_length - 1 if bos else context_length
    ms = mixed_states(hmm, depth)
    beliefs = ms.prefix_beliefs(depth)  # [N, depth, S]
    words = ms.level(depth).words.astype(np.int32)  # [N, depth]
    if bos:
        N = words.shape[0]
        words = np.concatenate([np.full((N, 1), hmm.vocab_size, np.int32), words], axis=1)
        beliefs = np.concatenate([np.broadcast_to(ms.prior, (N, 1, ms.prior.shape[0])), beliefs], axis=1)
    next_token = next_token_distribution(beliefs, hmm.emission_matrix)  # [N, T, V] (a GHMM's rounding clipped)
    if bos:
        next_token = np.concatenate([next_token, np.zeros(next_token.shape[:2] + (1,))], axis=2)
    return ContextSet(tokens=words, probs=ms.level(depth).probs, beliefs=beliefs, next_token_probs=next_token,
                      optimal_loss=optimal_loss_by_position(hmm, context_length, start_token=bos, ms=ms), bos=bos)


def make_data_fn(hmm: Source, *, bos: bool = False):
    """A pure, JAX-traceable function (key, n, length) -> tokens [n, length] int32 sampling the source (with
    ``bos``: the start token, id V, then length - 1 sampled tokens); `compmech.runs.sources.data_fn`."""
    return source_data_fn(hmm, bos=bos)


@dataclass(frozen=True)
class RunPlan:
    """A validated run, before anything is written: the config as it will be saved, the built process,
    the model and training configs, the analysis layer and the memory estimate."""

    cfg: ExperimentConfig  # as written to the run directory (spec -> its copy, module_path resolved)
    process: Source  # an HMM, a GeneralizedHMM or a continuous family (`compmech.runs.sources`)
    model_cfg: Any  # predictive_models.ModelConfig (a TransformerConfig or a RecurrentConfig)
    train_cfg: Any  # predictive_models.TrainConfig
    layer: str  # the analysis (figure) layer
    memory: MemoryEstimate
    run_dir: Path
    spec_copies: tuple[SpecCopy, ...] = ()  # the spec files copied into the run directory (components' too)
    regime: RegimeChoice | None = None  # exact or sampled (`compmech.runs.sampled.choose_regime`)


def plan_run(cfg: ExperimentConfig, out_dir: str | Path | None = None, *, available: int | None = None) -> RunPlan:
    """Check everything a run needs before it starts: the process builds, the model and training configs
    hold, the figure layer exists, the memory fits (``available`` bytes, default: this machine's) and
    the output directory can be written. Raises `ConfigError`/`ProcessError`; creates nothing."""
    run_dir = Path(out_dir) if out_dir is not None else Path("runs") / cfg.name
    base_dir = cfg.base_dir
    process = build_process(cfg.process, base_dir=base_dir)
    try:
        model_cfg = cfg.model_config(model_vocab_size(cfg, process))
        train_cfg = cfg.train_config()
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{cfg.source}: {exc}") from None
    layer = analysis_layer(cfg, model_cfg)
    try:
        check_studies(cfg, process, model_cfg)
    except ValueError as exc:
        raise ConfigError(f"{cfg.source}: {exc}") from None
    regime = choose_regime(cfg, process, model_cfg.context_length)
    memory = estimate_memory(cfg.model, cfg.training, source_traits(process).belief_size, process.vocab_size,
                             include_concat=cfg.probe.include_concat, bos=cfg.data.bos, regime=regime)
    check_memory(memory, cfg.source, available)
    check_output_dir(run_dir)
    settings, spec_copies = localize_process(cfg.process, base_dir)
    return RunPlan(cfg=dataclasses.replace(cfg, process=settings), process=process, model_cfg=model_cfg,
                   train_cfg=train_cfg, layer=layer, memory=memory, run_dir=run_dir, spec_copies=spec_copies,
                   regime=regime)


def prepare_run_dir(plan: RunPlan) -> None:
    """Create the run directory, or check that an existing one belongs to this very run (then it resumes).

    The completion mark and the summary are removed first, so an interrupted re-run is never
    mistaken for a complete one, and temp files a killed run left behind are deleted. A new
    directory whose first files cannot be written is removed again.
    """
    run_dir, cfg = plan.run_dir, plan.cfg
    config_path = run_dir / "config.toml"
    # process.json holds an HMM's matrices; a continuous family has none (its parameters are in config.toml)
    record = None if not source_traits(plan.process).exact_regime else process_record(
        plan.process, SPEC_COPY if cfg.process.spec is not None else None, composition=cfg.process.kind,
        spec_files=tuple(c.copy for c in plan.spec_copies)).to_json()
    if config_path.exists():
        try:
            old = read_toml(config_path, "the run's config")
        except ConfigError as exc:
            raise ConfigError(f"run directory {run_dir} is damaged: {exc}; delete {run_dir} to start again, "
                              "or pass --out DIR for a new run directory") from None
        new = tomllib.loads(cfg.to_toml())
        if _run_identity(old) != _run_identity(new):
            diff = _first_difference(old, new)
            raise ConfigError(
                f"run directory {run_dir} holds a run with a different config ({diff}); "
                "pass --out DIR for a new run directory, or delete the old one"
            )
        old_record = _read_json_or_none(run_dir / PROCESS_JSON)
        if old_record is not None and (record is None or old_record.get("T") != record["T"]):
            raise ConfigError(f"run directory {run_dir} holds a run of a different process (its {PROCESS_JSON} "
                              "has other matrices); pass --out DIR for a new run directory, or delete the old one")
    elif run_dir.exists() and any(run_dir.iterdir()):
        raise RunDirError(f"{run_dir} exists and is not a compmech run directory; pass --out DIR")
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
        write_text_atomic(config_path, cfg.to_toml())
    except BaseException:
        if created:
            shutil.rmtree(run_dir, ignore_errors=True)
        raise


def finished_summary(cfg: ExperimentConfig, out_dir: str | Path | None = None) -> dict[str, Any] | None:
    """The summary of a finished run (its completion mark written) of this very config in ``out_dir``, else None."""
    plan = plan_run(cfg, out_dir)
    if not is_complete(plan.run_dir):
        return None
    try:
        old = read_toml(plan.run_dir / "config.toml", "the run's config")
    except ConfigError:
        return None
    if _run_identity(old) != _run_identity(tomllib.loads(plan.cfg.to_toml())):
        return None
    return _read_json_or_none(plan.run_dir / "summary.json")


def run_or_reuse(cfg: ExperimentConfig, out_dir: str | Path, *, progress: bool = True,
                 command: str | None = None) -> dict[str, Any]:
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
    return config


def _read_json_or_none(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _first_difference(old: dict, new: dict, prefix: str = "") -> str:
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            d = _first_difference(a, b, f"{prefix}{key}.")
            if d:
                return d
        elif a != b:
            return f"{prefix}{key}: {a!r} there, {b!r} here"
    return ""


def run_experiment(cfg: ExperimentConfig, out_dir: str | Path | None = None, *, progress: bool = True,
                   command: str | None = None) -> dict[str, Any]:
    """Train, probe and plot as ``cfg`` says; write the run directory; return the summary. Under `jax.distributed`
    every process trains; process 0 alone writes the run directory (the others return {} after training).

    Everything is checked (`plan_run`) before the directory is created. The run is finished when
    ``complete.json`` exists: it is written last, after summary.json and report.html.
    """
    from compmech.runs.compiles import CompileCount

    with CompileCount() as compiles:
        return _run_experiment(cfg, out_dir, progress=progress, command=command, compiles=compiles)


def _run_experiment(cfg: ExperimentConfig, out_dir: str | Path | None, *, progress: bool, command: str | None,
                    compiles) -> dict[str, Any]:
    from predictive_models import train

    start = time.time()
    plan = plan_run(cfg, out_dir)
    hmm, model_cfg, layer, run_dir = plan.process, plan.model_cfg, plan.layer, plan.run_dir
    lead = is_lead_process()  # under jax.distributed, process 0 writes; the others only train with it
    progress = progress and lead
    if lead:
        prepare_run_dir(plan)
    regime = plan.regime
    if progress:
        print(f"compmech run {cfg.name}: {hmm.name} -> {run_dir} ({plan.memory.n_strings:,} context strings at most: "
              f"{regime.name} regime; estimated peak memory {plan.memory.peak / 2**30:.2g} GiB)", file=sys.stderr,
              flush=True)
    times = PhaseTimes()

    eval_set, ctx, floor = evaluation_set(plan, progress=progress, times=times)
    with phase("train", enabled=False, times=times):  # train draws its own bar
        result = train(model_cfg, plan.train_cfg, make_data_fn(hmm, bos=cfg.data.bos), eval_set, run_dir,
                       progress=progress)
    if not lead:
        return {}  # the lead process probes, plots and writes the summary

    # the probe and evolution steps draw their own bars (activations, fits); these phases only time them
    from predictive_models import initial_params, kind_of, n_params

    traits = source_traits(hmm)
    regime_json = {**regime.to_json(), **(floor.to_json() if floor is not None else
                                          {"optimal_loss_exact_depth": None, "optimal_loss_method": "exact"})}
    untrained = initial_params(model_cfg, plan.train_cfg)  # the untrained-model control's parameters
    with phase("probe", enabled=False, times=times):
        if regime.sampled:  # ctx: the kept probe sequences, for the figures and the training evolution
            from compmech.runs import sampled

            probe, ctx = sampled.probe_model_sampled(cfg, model_cfg, result.params_state, hmm, regime, layer,
                                                     eval_set.optimal_loss, progress=progress,
                                                     untrained_params=untrained)
        else:
            probe = probe_model(cfg, model_cfg, result.params_state, ctx, layer, progress=progress,
                                untrained_params=untrained)
        probe = dataclasses.replace(probe, info={**probe.info, "regime": regime.name, "regime_sizes": regime_json})
        write_json_atomic(run_dir / "probe.json", probe.to_json())

    with phase("geometry", enabled=progress, times=times):
        geometry = geometry_analysis(hmm, probe, layer, cfg.seed, tokens=ctx.tokens)
    with phase("evolution", enabled=False, times=times):
        evolution = training_evolution(run_dir, model_cfg, ctx, eval_set, layer, cfg.probe, cfg.seed,
                                       progress=progress)
    last = result.history[-1]
    evolution.append(EvolutionPoint(tokens=last["tokens"], step=last["step"], relative_loss=last["relative_loss"],
                                    probe=probe_fields(probe.results[layer].to_dict()), beliefs=geometry.beliefs,
                                    probed=geometry.probed))
    write_json_atomic(run_dir / "analysis.json", {"layer": layer, "geometry": geometry.to_json(),
                                                   "evolution": [e.to_json() for e in evolution]})

    with phase("figures", enabled=progress, times=times):
        figure_paths = make_figures(cfg, run_dir, hmm, ctx, result.history, probe, layer)
        figure_paths += analysis_figures(cfg, run_dir, hmm, geometry, evolution, probe.probe_layer)
    studies = run_studies(StudyInputs(cfg=cfg, process=hmm, model_cfg=model_cfg, params_state=result.params_state,
                                      untrained_params=untrained, ctx=ctx, probe=probe, run_dir=run_dir,
                                      regime=regime.name, progress=progress))
    for study in studies:
        figure_paths += list(study.figures)

    final = result.history[-1]
    summary = {
        "name": cfg.name,
        "process": {"name": hmm.name, "params": hmm.params},
        "source": traits.to_json(),
        "command": command or f"compmech run {cfg.source}",
        "cwd": str(Path.cwd()),  # the command's paths are relative to this directory
        "model": {"kind": kind_of(model_cfg), "n_params": n_params(model_cfg)},
        "steps": final["step"],
        "tokens": final["tokens"],
        "final_loss": final["loss"],
        "optimal_loss": final["optimal_loss"],
        "relative_loss": final["relative_loss"],
        "relative_loss_stderr": final.get("relative_loss_stderr"),  # sampled regime; None when exact
        # a Monte-Carlo floor: the final loss over the validation sample's own Bayes loss (paired; >= 1)
        "relative_loss_paired": None if floor is None or floor.sample_optimal is None else
        float(np.mean(final["loss_by_position"]) / np.mean(floor.sample_optimal)),
        "regime": regime.name,
        "regime_sizes": regime_json,
        "probe_layer": probe.probe_layer,
        "probe": probe.final,
        "probe_untrained": probe.untrained_json,
        "probe_mse_by_layer": {name: res.mse for name, res in probe.results.items()},
        "analysis_layer": layer,
        "geometry": geometry.to_json(),
        "evolution": [e.to_json() for e in evolution],
        "paper": paper_results(hmm.name, kind_of(model_cfg)),
        "figures": [str(p.relative_to(run_dir)) for p in figure_paths],
        "studies": {study.name: study.to_json(run_dir) for study in studies},
        "memory_estimate_bytes": plan.memory.peak,
        "phase_seconds": dict(times.seconds),
        "wall_seconds": time.time() - start,
        "train_wall_seconds": result.wall_seconds,  # this call's training (0 when it was all done before)
        # the training's own clock over every call that trained this run (resumes included; for seeds that a
        # sweep trained together, their shared step's time)
        "train_elapsed_seconds": float(result.final.get("elapsed_s", result.wall_seconds)),
        # XLA programs compiled (or loaded from the persistent cache: compmech.runs.compiles) up to here
        "compiles": compiles.stats.to_json(),
    }
    write_json_atomic(run_dir / "summary.json", summary)
    from compmech.runs.report import build_report  # the page reads the finished run directory

    with phase("report", enabled=progress, times=times):
        build_report(run_dir)
    mark_complete(run_dir, phase_seconds=dict(times.seconds), wall_seconds=time.time() - start)
    return summary


def evaluation_set(plan: RunPlan, *, progress: bool = True, times: PhaseTimes | None = None):
    """(eval set, context set or None, the sampled regime's `sampled.OptimalLossRecord` or None) of a planned run:
    every context string with its exact theory (exact regime), or the fixed held-out sample drawn from the seed
    (sampled)."""
    from predictive_models import ExactEvalSet

    cfg, hmm, model_cfg = plan.cfg, plan.process, plan.model_cfg
    if plan.regime.sampled:  # a fixed held-out sample instead of every string (compmech.runs.sampled)
        from compmech.runs import sampled

        with phase("validation sample", enabled=progress, times=times):
            eval_set, floor = sampled.validation_set(cfg, hmm, model_cfg, plan.regime)
        return eval_set, None, floor
    with phase("context set", enabled=progress, times=times):
        ctx = context_set(hmm, model_cfg.context_length, bos=cfg.data.bos)
        eval_set = ExactEvalSet(tokens=ctx.tokens, weights=ctx.probs, next_token_probs=ctx.next_token_probs,
                                optimal_loss=ctx.optimal_loss)
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
    from predictive_models import train_seeds

    progress = progress and is_lead_process()
    if len({seedless(cfg) for cfg in cfgs}) > 1:
        raise ValueError("train_together: the configs must differ only in seed (and name)")
    plans = [plan_run(cfg, d) for cfg, d in zip(cfgs, out_dirs)]
    for plan in plans:
        if is_lead_process():
            prepare_run_dir(plan)
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
            print(f"train together: {len(group)} runs (seeds {', '.join(str(p.cfg.seed) for p in group)}) "
                  f"{'from step ' + str(step) if step else 'from the start'}", file=sys.stderr, flush=True)
        first = group[0]
        train_seeds(first.model_cfg, [p.train_cfg for p in group], make_data_fn(first.process, bos=first.cfg.data.bos),
                    eval_sets, [p.run_dir for p in group], progress=progress)


def _checkpoint_step(run_dir: Path) -> int:
    """The step of a run directory's latest checkpoint (0 when it has none)."""
    from predictive_models import load_checkpoint

    path = run_dir / "checkpoints" / "latest.msgpack"
    return int(load_checkpoint(path)["step"]) if path.exists() else 0


def model_vocab_size(cfg: ExperimentConfig, process: HMM | GeneralizedHMM) -> int:
    """The model's vocabulary: the process's tokens, plus the start token when [data] bos is set."""
    return process.vocab_size + (1 if cfg.data.bos else 0)


def analysis_layer(cfg: ExperimentConfig, model_cfg) -> str:
    """The layer the figures, the distance geometry and the training evolution use (one of the probed layers,
    or "concat"). Raises `ConfigError` when [probe] layers or figure_layer name no probed activation."""
    from predictive_models import probe_layer_name

    try:
        probed = probed_layers(cfg.probe, model_cfg)
    except ValueError as exc:
        raise ConfigError(f"{cfg.source}: {exc}") from None
    layer = cfg.probe.figure_layer or probe_layer_name(model_cfg)
    allowed = probed + (["concat"] if cfg.probe.include_concat else [])
    if layer not in allowed:
        raise ConfigError(f"{cfg.source}: [probe] figure_layer = {layer!r} is not a probed layer; "
                          f"use one of {', '.join(allowed)} (or \"\" for the paper's)")
    return layer
