"""A finished run's probes scored with held-out controls (the architectures and random_machines studies use it).

Every probed layer (and "concat") is refitted from the run's final checkpoint with its own rows, splits and seed (the
same fits as its probe.json), with the opt-in held-out scores of `probes.evaluation` (`HeldoutScores`): the shuffled
control fitted on the fit contexts and scored on the held-out ones, and the held-out contexts halved into a
validation half (a table picks the layer on it) and a test half (a table reports it). `cached_scores` keeps them in a
JSON file with the run's config (the studies: ``<out>/scores/<run>.json``), so a second call reads them back instead
of refitting."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import predictive_models  # a lazy package (PEP 562): JAX is imported when a model is first run
from compmech.runs.contexts import ContextSet
from compmech.runs.errors import ConfigError
from compmech.runs.files import write_json_atomic
from compmech.runs.probing import context_activations, probed_layers
from compmech.runs.processes import build_process
from compmech.runs.regime import choose_regime
from compmech.runs.settings import ExperimentConfig
from compmech.runs.sources import source_of
from probes import CONTEXT_TEST_FRACTION, probe_layers, probe_targets
from probes.evaluation import ProbeEvaluation


@dataclass(frozen=True)
class LayerScores:
    """One probed layer of one run (or "concat"), as the table compares it. Every held-out number is the mean over
    the run's ``[probe] n_repeats`` context-disjoint splits (None where probe.json withholds it, ``note`` says why).
    """

    mse: float  # in-sample
    mse_shuffled: float  # the in-sample shuffled control (probe.json's)
    mse_heldout_contexts: float | None  # every held-out context (probe.json's)
    r2_heldout_contexts: float | None
    mse_shuffled_heldout_contexts: float | None  # the shuffled control fitted on the fit contexts, scored held out
    mse_validation_contexts: float | None  # the validation half of the held-out contexts: what picks the layer
    mse_test_contexts: float | None  # the test half: what the table reports
    r2_test_contexts: float | None
    mse_shuffled_test_contexts: float | None  # the held-out shuffled control on the same test half
    note: str | None

    @classmethod
    def of(cls, ev: ProbeEvaluation) -> LayerScores:
        res, held = ev.result, ev.heldout
        return cls(
            mse=res.mse,
            mse_shuffled=res.mse_shuffled,
            mse_heldout_contexts=res.mse_heldout_contexts,
            r2_heldout_contexts=res.r2_heldout_contexts,
            mse_shuffled_heldout_contexts=held.mse_shuffled_heldout_contexts,
            mse_validation_contexts=held.mse_validation_contexts,
            mse_test_contexts=held.mse_test_contexts,
            r2_test_contexts=held.r2_test_contexts,
            mse_shuffled_test_contexts=held.mse_shuffled_test_contexts,
            note=held.note,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def finished_exact_run(
    run_dir: Path, cfg: ExperimentConfig, purpose: str
) -> tuple[predictive_models.ModelConfig, Any, ContextSet]:
    """A finished run's final model (its config and parameters) and every context of its context length with the
    exact theory (``cfg``: the run's config.toml). A run in the sampled regime raises `ConfigError` (``purpose``: what
    the caller does with every context, for the message)."""
    source = source_of(build_process(cfg.process, base_dir=run_dir))
    model_config, params = predictive_models.load_model(run_dir / "checkpoints" / "final.msgpack")
    if choose_regime(cfg, source, model_config.context_length).sampled:
        raise ConfigError(
            f"{run_dir} ran in the sampled regime: its contexts are too many to {purpose}; this study needs "
            "exact-regime runs (a shorter context_length)"
        )
    return model_config, params, source.context_set(model_config.context_length, cfg.data.bos)


def score_run(run_dir: Path, cfg: ExperimentConfig) -> dict[str, LayerScores]:
    """Every probed layer of the finished exact-regime run in ``run_dir`` (``cfg``: its config.toml), refitted as the
    runner's probing phase fits it (`compmech.runs.probing.probe_model`: the same rows, layers, splits and seed) with
    the held-out scores added; by layer name, "concat" last."""
    model_config, params, ctx = finished_exact_run(run_dir, cfg, "probe every one")
    settings = cfg.probe
    names = probed_layers(settings, model_config)
    data = probe_targets(ctx.beliefs, ctx.tokens, ctx.probs, rows=settings.rows, weighting=settings.weighting)
    acts = predictive_models.prefix_activations(model_config, params, ctx.tokens, names=names)  # [U, width] each
    by_context = context_activations(acts, ctx.tokens, data.context_ids)  # name -> [U, width]
    del acts
    found = probe_layers(
        by_context,
        data.Y,
        data.groups,
        include_concat=settings.include_concat,
        per_context=True,
        contexts=data.context_ids,
        positions=data.positions,
        sample_weight=data.weights,
        train_fraction=settings.train_fraction,
        n_repeats=settings.n_repeats,
        context_test_fraction=CONTEXT_TEST_FRACTION,
        seed=cfg.seed,
        heldout_scores=True,
    )
    return {name: LayerScores.of(ev) for name, ev in found.items()}


def cached_scores(run_dir: Path, cache: Path, cfg: ExperimentConfig) -> dict[str, LayerScores]:
    """`score_run`, kept in ``cache`` (JSON) with the run's config: reused while it matches."""
    config_text = (run_dir / "config.toml").read_text()
    if cache.is_file():
        try:
            saved = json.loads(cache.read_text())
            if saved.get("config") == config_text:
                keys = {f.name for f in fields(LayerScores)}
                if all(set(v) == keys for v in saved["layers"].values()):
                    return {name: LayerScores(**v) for name, v in saved["layers"].items()}
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # a damaged cache is recomputed
    scores = score_run(run_dir, cfg)
    write_json_atomic(cache, {"config": config_text, "layers": {n: s.to_json() for n, s in scores.items()}})
    return scores
