"""A finished run directory in a notebook: `load_run(path)` -> `Run` (config, process, trained model,
history, summary), with activations by any documented name for any tokens, any saved checkpoint, and a belief
probe in one call each.

    run = compmech.load_run("runs/mess3")
    run                                                    # a one-screen summary (an HTML table in a notebook)
    acts = run.activations(run.contexts.tokens, ["blocks.3.hook_resid_post"])   # {name: float32 [N, T, d]}
    early = run.at(tokens=64_000)                          # the same run at a saved checkpoint
    fit = run.fit_probe("block_4")                         # OLS onto the exact beliefs, as in probe.json
    fit.result.mse, fit.predictions                        # [R, S]
"""

from __future__ import annotations

import dataclasses
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import predictive_models  # a lazy package (PEP 562): JAX is imported when the model is first loaded
from compmech.interop.tracking import run_dir_of  # mlflow loads only to open a run by its MLflow id
from compmech.interop.transformer_lens import to_hooked_transformer  # torch and TransformerLens load on first call
from compmech.runs.config import ExperimentConfig, load_config
from compmech.runs.contexts import ContextSet
from compmech.runs.errors import RunDirError
from compmech.runs.files import COMPLETE_MARK, is_complete
from compmech.runs.processes import build_process
from compmech.runs.regime import choose_regime
from compmech.runs.report import read_run_json, read_run_jsonl  # one reader of run files, with the report
from compmech.runs.sources import source_of
from compmech.runs.summary import RunSummary, read_summary
from probes import CONTEXT_TEST_FRACTION, LinearProbe, evaluate_probe, probe_rows


@dataclass(frozen=True, eq=False)
class ProbeFit:
    """A probe fitted by `Run.fit_probe`: the fitted map, its rows, predictions and errors."""

    layer: str
    probe: Any  # probes.LinearProbe, fitted
    data: Any  # probes.ProbeData: X [R, d], Y [R, S] (exact beliefs), weights, groups, positions
    predictions: np.ndarray  # [R, S] float64, in-sample
    result: Any  # probes.ProbeResult: mse, r2, mse_heldout, mse_shuffled, ...


@dataclass(eq=False, repr=False)
class Run:
    """A finished run, loaded: what `compmech run` wrote, ready for analysis.

    ``params`` are the final model's, or a checkpoint's after `at`; ``summary`` and ``probe_results`` always
    describe the finished run.
    """

    path: Path
    config: ExperimentConfig  # the resolved config.toml
    model_config: predictive_models.ModelConfig  # the config of any registered model family
    params: Any  # the model's parameters (final, or the checkpoint `at` loaded)
    history: list[dict[str, Any]]  # metrics.jsonl: one record per evaluation
    summary: RunSummary  # summary.json
    probe_results: dict[str, Any]  # probe.json
    checkpoint: str = "final"  # which parameters these are: "final" or a checkpoint's file name
    _cache: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        s = self.summary
        probe = s.probe or {}
        held = probe.get("mse_heldout_contexts")
        lines = [
            f"Run {s.name!r} at {self.path}" + ("" if self.checkpoint == "final" else f" [{self.checkpoint}]"),
            f"  process      {s.process.name} {s.process.params or ''}".rstrip(),
            f"  model        {s.model.kind if s.model else '?'}, {s.model.n_params if s.model else '?':,} "
            f"parameters, context {self.model_config.context_length}",
            f"  trained      {s.steps:,} steps, {s.tokens:,} tokens ({s.regime} regime)",
            f"  rel. loss    {s.relative_loss:.6g}" if s.relative_loss is not None else "  rel. loss    -",
            f"  probe        {s.probe_layer}: MSE {probe.get('mse', float('nan')):.3g}, held out (unseen "
            f"contexts) {'-' if held is None else f'{held:.3g}'}, "
            f"shuffled {probe.get('mse_shuffled', float('nan')):.3g}",
            f"  checkpoints  {', '.join(str(k) for k in self.checkpoints)}",
            "  (run.activations, run.at, run.fit_probe, run.contexts; the report: report.html)",
        ]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><th style='text-align:left'>{html.escape(k.strip())}</th>"
            f"<td style='text-align:left'>{html.escape(v.strip())}</td></tr>"
            for k, v in (
                line.strip().split(None, 1) if line.startswith("  ") and len(line.split()) > 1 else ("", line)
                for line in repr(self).splitlines()[1:-1]
            )
            if k
        )
        report = self.path / "report.html"
        return (
            f"<div><b>{html.escape(repr(self).splitlines()[0])}</b><table>{rows}</table>"
            + (f"<a href='{html.escape(str(report))}'>report.html</a>" if report.is_file() else "")
            + "</div>"
        )

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

    @property
    def activation_names(self) -> list[str]:
        """Every activation the model exposes by name (`predictive_models.activation_names`: the residual stream,
        hook names such as "blocks.3.hook_resid_post" and "blocks.0.attn.hook_pattern", recurrent states...)."""
        return list(dict.fromkeys([*self.layer_names, *predictive_models.activation_names(self.model_config)]))

    @property
    def checkpoints(self) -> dict[int | str, Path]:
        """The saved checkpoints, by the token count they were asked for (``tokens_<N>.msgpack``), then "final"."""
        folder = self.path / "checkpoints"
        found: dict[int | str, Path] = {}
        for path in sorted(
            folder.glob("tokens_*.msgpack"), key=lambda p: int(re.fullmatch(r"tokens_(\d+)\.msgpack", p.name).group(1))
        ):
            found[int(path.stem.split("_", 1)[1])] = path
        if (folder / "final.msgpack").is_file():
            found["final"] = folder / "final.msgpack"
        return found

    def at(self, tokens: int | str = "final") -> Run:
        """This run with the parameters of the checkpoint saved at ``tokens`` (a key of `checkpoints`: the token
        count `[training] save_at_tokens` asked for, or "final"). Raises `RunDirError` listing the saved ones."""
        found = self.checkpoints
        if tokens not in found:
            raise RunDirError(
                f"no checkpoint at {tokens!r} tokens in {self.path / 'checkpoints'}; the saved ones are "
                f"{', '.join(map(str, found))} ([training] save_at_tokens asks for more)"
            )
        model_config, params = _load_model(found[tokens])
        return dataclasses.replace(
            self,
            model_config=model_config,
            params=params,
            checkpoint=found[tokens].name,
            _cache={k: v for k, v in self._cache.items() if k == "contexts"},
        )

    def model(self):
        """The trained model, of its config's family (an nnx module: ``model(tokens)`` -> logits)."""
        return predictive_models.to_model(self.model_config, self.params)

    def activations(self, tokens: np.ndarray, layers: list[str] | str | None = None) -> dict[str, np.ndarray]:
        """Activations for ``tokens`` [N, T] (T <= context length), by any name of `activation_names` (default: the
        residual stream, `layer_names`): {name: float32 [N, T, d]} (an attention pattern: [N, H, T, T])."""
        tokens = np.asarray(tokens)
        if tokens.ndim == 1:
            tokens = tokens[None]
        if tokens.ndim != 2 or not np.issubdtype(tokens.dtype, np.integer):
            raise RunDirError(f"tokens must be an integer array [N, T]; got {tokens.dtype} {tokens.shape}")
        V, L = self.model_config.vocab_size, self.model_config.context_length
        if tokens.shape[1] > L or tokens.size and (tokens.min() < 0 or tokens.max() >= V):
            raise RunDirError(
                f"tokens must have at most {L} positions with values in [0, {V}); "
                f"got shape {tokens.shape}, values in [{tokens.min()}, {tokens.max()}]"
            )
        wanted = [layers] if isinstance(layers, str) else list(layers or self.layer_names)
        unknown = [n for n in wanted if n not in self.activation_names]
        if unknown:
            raise RunDirError(f"no activation {unknown[0]!r}; the names are {', '.join(self.activation_names)}")
        return predictive_models.compute_activations(
            self.model_config, self.params, tokens.astype(np.int32), names=wanted
        )

    def to_transformer_lens(self, device: str = "cpu") -> Any:
        """The trained transformer as a TransformerLens ``HookedTransformer`` with the same logits and hooks
        (`compmech.interop.transformer_lens`; needs the ``[interop]`` extra)."""
        return to_hooked_transformer(self.model_config, self.params, device=device)

    @property
    def contexts(self) -> ContextSet:
        """Every allowed string of the context length with its exact theory (`compmech.runs.contexts.ContextSet`)."""
        if "contexts" not in self._cache:
            source = source_of(self.process)
            regime = choose_regime(self.config, source, self.model_config.context_length)
            if regime.sampled:
                raise RunDirError(
                    f"{self.path} ran in the sampled regime (at most {regime.strings_bound:.3g} "
                    "context strings, above [data] max_exact_strings): its contexts are too many "
                    "to enumerate; sample sequences with hmm_processes.sample instead"
                )

            self._cache["contexts"] = source.context_set(self.model_config.context_length, self.config.data.bos)
        return self._cache["contexts"]

    def fit_probe(self, layer: str | None = None, *, rows: str | None = None, weighting: str | None = None) -> ProbeFit:
        """Fit the belief probe of ``layer`` (default: the paper's layer) on every context, as the run did.

        ``rows`` and ``weighting`` default to the run's [probe] settings; the held-out split and the
        shuffled control use the run's seed, so the numbers equal probe.json's for that layer.
        """
        layer = layer or predictive_models.probe_layer_name(self.model_config)
        settings = self.config.probe
        ctx = self.contexts
        acts = self.activations(ctx.tokens, layer)[layer]
        data = probe_rows(
            acts,
            ctx.beliefs,
            ctx.tokens,
            ctx.probs,
            rows=rows or settings.rows,
            weighting=weighting or settings.weighting,
        )
        evaluation = evaluate_probe(
            data.X,
            data.Y,
            data.groups,
            contexts=data.context_ids,
            positions=data.positions,
            sample_weight=data.weights,
            train_fraction=settings.train_fraction,
            n_repeats=settings.n_repeats,
            context_test_fraction=CONTEXT_TEST_FRACTION,
            seed=self.config.seed,
        )
        result, predictions = evaluation.result, evaluation.predictions
        probe = LinearProbe().fit(data.X, data.Y, sample_weight=data.weights)
        return ProbeFit(layer=layer, probe=probe, data=data, predictions=predictions, result=result)


#: An MLflow run id: 32 hexadecimal digits.
_MLFLOW_RUN_ID = re.compile(r"[0-9a-f]{32}")


def load_run(path: str | Path, *, tracking_uri: str | None = None) -> Run:
    """Load a finished run directory (as written by `compmech run`): config, process, model, history.

    ``path`` may also be the MLflow run id of a run logged with [tracking] mlflow = true (looked up in
    ``tracking_uri``, default $MLFLOW_TRACKING_URI or the local mlruns/ stores: `compmech.interop.tracking.run_dir_of`).

    Raises `RunDirError` naming the file when the directory is not a finished run or a file is damaged.
    """
    path = Path(path)
    if not path.is_dir() and _MLFLOW_RUN_ID.fullmatch(str(path)):  # an MLflow run id ([tracking] mlflow = true)
        path = run_dir_of(str(path), tracking_uri)
    if not path.is_dir():
        raise RunDirError(
            f"run directory {path} does not exist; pass the folder `compmech run` wrote (runs/<name>, or its --out DIR)"
        )
    if not (path / "config.toml").is_file():
        inside = sorted(p.name for p in path.iterdir() if (p / "config.toml").is_file())
        raise RunDirError(
            f"{path} is not a compmech run directory (it has no config.toml); pass a run's own folder"
            + (
                f", e.g. {path / inside[0]} (runs here: {', '.join(inside[:8])}{', ...' if len(inside) > 8 else ''})"
                if inside
                else ", e.g. runs/mess3"
            )
        )
    if not is_complete(path):
        raise RunDirError(
            f"{path} has no {COMPLETE_MARK} (an unfinished run); finish it with "
            f"compmech run {path / 'config.toml'} --out {path} (the same command resumes it)"
        )
    config = load_config(path / "config.toml")
    model_config, params = _load_model(path / "checkpoints" / "final.msgpack")
    return Run(
        path=path,
        config=config,
        model_config=model_config,
        params=params,
        history=read_run_jsonl(path / "metrics.jsonl"),
        summary=read_summary(path),
        probe_results=read_run_json(path / "probe.json"),
    )


def _load_model(path: Path) -> tuple[predictive_models.ModelConfig, Any]:
    """A checkpoint's model config and parameters; `RunDirError` naming the file when missing or damaged."""
    try:
        return predictive_models.load_model(path)
    except FileNotFoundError:
        raise RunDirError(f"{path} is missing; rerun the run to write it") from None
    except predictive_models.CheckpointError as exc:
        raise RunDirError(str(exc)) from None
