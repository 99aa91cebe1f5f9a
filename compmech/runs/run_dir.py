"""A finished run directory in a notebook: `load_run(path)` -> `Run` (config, process, trained model,
history), with activations by layer name for any tokens and a belief probe in one call each.

    run = compmech.load_run("runs/mess3")
    acts = run.activations(run.contexts.tokens)           # {layer: float32 [N, T, d_model]}
    fit = run.fit_probe("block_4")                        # OLS onto the exact beliefs, as in probe.json
    fit.result.mse, fit.predictions                       # [R, S]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import predictive_models  # a lazy package (PEP 562): JAX is imported when the model is first loaded
from compmech.runs.config import ExperimentConfig, load_config
from compmech.runs.contexts import ContextSet
from compmech.runs.errors import RunDirError
from compmech.runs.files import COMPLETE_MARK, is_complete
from compmech.runs.processes import build_process
from compmech.runs.regime import choose_regime
from compmech.runs.report import read_run_json, read_run_jsonl  # one reader of run files, with the report
from compmech.runs.sources import source_of
from probes import CONTEXT_TEST_FRACTION, LinearProbe, evaluate_probe, probe_rows


@dataclass(frozen=True, eq=False)
class ProbeFit:
    """A probe fitted by `Run.fit_probe`: the fitted map, its rows, predictions and errors."""

    layer: str
    probe: Any  # probes.LinearProbe, fitted
    data: Any  # probes.ProbeData: X [R, d], Y [R, S] (exact beliefs), weights, groups, positions
    predictions: np.ndarray  # [R, S] float64, in-sample
    result: Any  # probes.ProbeResult: mse, r2, mse_heldout, mse_shuffled, ...


@dataclass(eq=False)
class Run:
    """A finished run, loaded: what `compmech run` wrote, ready for analysis."""

    path: Path
    config: ExperimentConfig  # the resolved config.toml
    model_config: predictive_models.ModelConfig
    params: Any  # flax nnx.State of the final model
    history: list[dict[str, Any]]  # metrics.jsonl: one record per evaluation
    summary: dict[str, Any]  # summary.json
    probe_results: dict[str, Any]  # probe.json
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def process(self) -> Any:
        """The process, rebuilt from the config (its spec copy, or name + params) on first use: an HMM, a GHMM,
        random Markov chains. A config whose [process] names a Python module runs that module's code here (and
        only when the process is asked for: loading a run directory imports nothing of it)."""
        if "process" not in self._cache:
            self._cache["process"] = build_process(self.config.process, base_dir=self.path)
        return self._cache["process"]

    @property
    def layer_names(self) -> list[str]:
        """Residual-stream layers by name, input to output (embedding, block_1 .. block_L, final_ln)."""
        return predictive_models.layer_names(self.model_config)

    def model(self):
        """The trained model (an nnx module of its family: ``model(tokens)`` -> logits)."""
        return predictive_models.to_model(self.model_config, self.params)

    def activations(self, tokens: np.ndarray, layers: list[str] | str | None = None) -> dict[str, np.ndarray]:
        """Residual stream for ``tokens`` [N, T] (T <= context length): {layer: float32 [N, T, d_model]}."""
        tokens = np.asarray(tokens)
        if tokens.ndim == 1:
            tokens = tokens[None]
        if tokens.ndim != 2 or not np.issubdtype(tokens.dtype, np.integer):
            raise RunDirError(f"tokens must be an integer array [N, T]; got {tokens.dtype} {tokens.shape}")
        V, L = self.model_config.vocab_size, self.model_config.context_length
        if tokens.shape[1] > L or tokens.size and (tokens.min() < 0 or tokens.max() >= V):
            raise RunDirError(f"tokens must have at most {L} positions with values in [0, {V}); "
                              f"got shape {tokens.shape}, values in [{tokens.min()}, {tokens.max()}]")
        wanted = [layers] if isinstance(layers, str) else list(layers or self.layer_names)
        unknown = [n for n in wanted if n not in self.layer_names]
        if unknown:
            raise RunDirError(f"no layer {unknown[0]!r}; the layers are {', '.join(self.layer_names)}")
        acts = predictive_models.compute_activations(self.model_config, self.params, tokens.astype(np.int32))
        return {name: acts[name] for name in wanted}

    @property
    def contexts(self) -> ContextSet:
        """Every allowed string of the context length with its exact theory (`compmech.runs.contexts.ContextSet`)."""
        if "contexts" not in self._cache:
            source = source_of(self.process)
            regime = choose_regime(self.config, source, self.model_config.context_length)
            if regime.sampled:
                raise RunDirError(f"{self.path} ran in the sampled regime (at most {regime.strings_bound:.3g} "
                                  "context strings, above [data] max_exact_strings): its contexts are too many "
                                  "to enumerate; sample sequences with hmm_processes.sample instead")

            self._cache["contexts"] = source.context_set(self.model_config.context_length, self.config.data.bos)
        return self._cache["contexts"]

    def fit_probe(self, layer: str | None = None, *, rows: str | None = None, weighting: str | None = None
                  ) -> ProbeFit:
        """Fit the belief probe of ``layer`` (default: the paper's layer) on every context, as the run did.

        ``rows`` and ``weighting`` default to the run's [probe] settings; the held-out split and the
        shuffled control use the run's seed, so the numbers equal probe.json's for that layer.
        """
        layer = layer or predictive_models.probe_layer_name(self.model_config)
        settings = self.config.probe
        ctx = self.contexts
        acts = self.activations(ctx.tokens, layer)[layer]
        data = probe_rows(acts, ctx.beliefs, ctx.tokens, ctx.probs, rows=rows or settings.rows,
                          weighting=weighting or settings.weighting)
        evaluation = evaluate_probe(data.X, data.Y, data.groups, contexts=data.context_ids, positions=data.positions,
                                    sample_weight=data.weights, train_fraction=settings.train_fraction,
                                    n_repeats=settings.n_repeats, context_test_fraction=CONTEXT_TEST_FRACTION,
                                    seed=self.config.seed)
        result, predictions = evaluation.result, evaluation.predictions
        probe = LinearProbe().fit(data.X, data.Y, sample_weight=data.weights)
        return ProbeFit(layer=layer, probe=probe, data=data, predictions=predictions, result=result)


def load_run(path: str | Path) -> Run:
    """Load a finished run directory (as written by `compmech run`): config, process, model, history.

    Raises `RunDirError` naming the file when the directory is not a finished run or a file is damaged.
    """
    path = Path(path)
    if not path.is_dir():
        raise RunDirError(f"run directory {path} does not exist; pass the folder `compmech run` wrote "
                          "(runs/<name>, or its --out DIR)")
    if not is_complete(path):
        what = "an unfinished run" if (path / "config.toml").is_file() else "not a compmech run directory"
        raise RunDirError(f"{path} has no {COMPLETE_MARK} ({what}); finish it with "
                          f"compmech run {path / 'config.toml'} --out {path} (the same command resumes it)")
    config = load_config(path / "config.toml")
    try:
        model_config, params = predictive_models.load_model(path / "checkpoints" / "final.msgpack")
    except FileNotFoundError:
        raise RunDirError(f"{path / 'checkpoints' / 'final.msgpack'} is missing; rerun the run to write it") \
            from None
    except predictive_models.CheckpointError as exc:
        raise RunDirError(str(exc)) from None
    return Run(path=path, config=config, model_config=model_config, params=params,
               history=read_run_jsonl(path / "metrics.jsonl"), summary=read_run_json(path / "summary.json"),
               probe_results=read_run_json(path / "probe.json"))
