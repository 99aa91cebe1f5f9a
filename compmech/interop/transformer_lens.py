"""compmech's transformer as a TransformerLens ``HookedTransformer``: the config and the state dict, mapped weight by
weight, so that the logits and every hook compmech names (its activation names are TransformerLens's) agree.

Needs the optional extra ``[interop]`` (``torch``, ``transformer-lens>=2,<4``: TransformerLens 4 removed
``HookedTransformer`` in favour of its ``TransformerBridge`` over Hugging Face models). torch and TransformerLens are
imported inside the functions that need them, so ``import compmech.interop`` costs nothing without them.

The map (compmech -> TransformerLens), for a model of ``n_heads`` heads of ``d_head``:

- ``embed.embedding`` [V, d] -> ``embed.W_E``; ``pos_embed`` [n_ctx, d] -> ``pos_embed.W_pos``;
- ``blocks.l.attn.qkv`` (kernel [d, 3 H Dh] read as [d, 3, H, Dh]; bias [3, H, Dh]) -> ``W_Q``, ``W_K``, ``W_V``
  [H, d, Dh] and ``b_Q``, ``b_K``, ``b_V`` [H, Dh]; ``attn.out`` (kernel [H Dh, d]) -> ``W_O`` [H, Dh, d], ``b_O``;
- ``ln1``, ``ln2``, ``ln_final`` (scale, bias) -> ``w``, ``b`` (epsilon 1e-5 both sides);
- ``mlp.up`` -> ``W_in``, ``b_in``; ``mlp.down`` -> ``W_out``, ``b_out`` (ReLU);
- ``unembed`` (kernel [d, V], untied) -> ``W_U``, ``b_U``.

Variants: ``attn_only`` -> ``attn_only=True``; ``layer_norm = False`` -> ``normalization_type=None``;
``positional = "none"`` -> the standard position embedding with ``W_pos`` all zeros (adding zeros is exact, so the
function is the same; the exported model then has a ``hook_pos_embed`` of zeros, and fine-tuning it in
TransformerLens would train those zeros). Not expressible, refused with `ExportError`: every model that is not a
transformer (compmech's RNN, GRU, LSTM). The weights are loaded as they are: no LayerNorm folding, no centring of
the writing weights or the unembedding (TransformerLens's ``from_pretrained`` processing would change the hooks).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

import predictive_models  # a lazy package (PEP 562): JAX is imported when a model config is first used
from compmech.runs.array_files import read_safetensors, safetensors_bytes
from compmech.runs.errors import ConfigError
from compmech.runs.files import write_bytes_atomic, write_text_atomic

#: compmech's LayerNorm epsilon (`predictive_models.transformer`), set in TransformerLens's config.
LAYER_NORM_EPS = 1e-5


class ExportError(ConfigError):
    """A model TransformerLens cannot express, or the interop extra is missing (one line saying what to do)."""


def require(module: str, extra: str = "interop") -> Any:
    """Import an optional library, or `ExportError` saying how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ExportError(
            f"{module} is not installed; install the optional extra: pip install 'compmech[{extra}]'"
        ) from None


def hooked_transformer_class() -> Any:
    """TransformerLens's ``HookedTransformer`` (TransformerLens 2 or 3), or `ExportError` naming the fix."""
    tl = require("transformer_lens")
    try:
        return tl.HookedTransformer
    except (AttributeError, ImportError):
        raise ExportError(
            f"transformer_lens {getattr(tl, '__version__', '?')} has no HookedTransformer (removed in "
            "TransformerLens 4); install transformer-lens>=2,<4 (pip install 'compmech[interop]')"
        ) from None


def check_exportable(model_cfg: Any) -> None:
    """`ExportError` naming the reason when ``model_cfg`` has no TransformerLens form."""
    kind = predictive_models.kind_of(model_cfg)
    if kind != "transformer":
        raise ExportError(
            f"a {kind} model has no TransformerLens form (HookedTransformer is a transformer); only "
            '[model] kind = "transformer" runs can be exported'
        )


def tl_config_dict(model_cfg: Any) -> dict[str, Any]:
    """The keyword arguments of ``HookedTransformerConfig`` for compmech's transformer config ``model_cfg``."""
    check_exportable(model_cfg)
    c = model_cfg
    return dict(
        n_layers=c.n_layers,
        d_model=c.d_model,
        n_ctx=c.context_length,
        d_head=c.d_head,
        n_heads=c.n_heads,
        d_mlp=None if c.attn_only else c.d_mlp,
        d_vocab=c.vocab_size,
        d_vocab_out=c.vocab_size,
        act_fn=None if c.attn_only else "relu",
        attn_only=c.attn_only,
        normalization_type="LN" if c.layer_norm else None,
        positional_embedding_type="standard",
        eps=LAYER_NORM_EPS,
        default_prepend_bos=False,
        original_architecture="compmech",
        model_name="compmech-transformer",
        tokenizer_name=None,
    )


def tl_weights(model_cfg: Any, params: Any) -> dict[str, np.ndarray]:
    """TransformerLens's parameter names -> float32 arrays, from compmech's parameters (any accepted form)."""
    from flax import nnx  # flax comes with predictive_models; needed only to read the parameter tree here

    check_exportable(model_cfg)
    c = model_cfg
    state = predictive_models.to_model(c, params)
    p = nnx.to_pure_dict(nnx.state(state, nnx.Param))
    H, Dh, d = c.n_heads, c.d_head, c.d_model

    def a(x: Any) -> np.ndarray:
        return np.asarray(x, np.float32)

    out = {
        "embed.W_E": a(p["embed"]["embedding"]),
        "pos_embed.W_pos": a(p["pos_embed"])
        if c.positional == "learned"
        else np.zeros((c.context_length, d), np.float32),
        "unembed.W_U": a(p["unembed"]["kernel"]),
        "unembed.b_U": a(p["unembed"]["bias"]),
    }
    for l in range(c.n_layers):
        b, q = f"blocks.{l}.", p["blocks"][l]
        kernel = a(q["attn"]["qkv"]["kernel"]).reshape(d, 3, H, Dh)  # [d, (q|k|v), H, Dh]
        bias = a(q["attn"]["qkv"]["bias"]).reshape(3, H, Dh)
        for i, part in enumerate("QKV"):
            out[b + f"attn.W_{part}"] = np.ascontiguousarray(kernel[:, i].transpose(1, 0, 2))  # [H, d, Dh]
            out[b + f"attn.b_{part}"] = bias[i]
        out[b + "attn.W_O"] = a(q["attn"]["out"]["kernel"]).reshape(H, Dh, d)
        out[b + "attn.b_O"] = a(q["attn"]["out"]["bias"])
        if c.layer_norm:
            out[b + "ln1.w"], out[b + "ln1.b"] = a(q["ln1"]["scale"]), a(q["ln1"]["bias"])
        if not c.attn_only:
            if c.layer_norm:
                out[b + "ln2.w"], out[b + "ln2.b"] = a(q["ln2"]["scale"]), a(q["ln2"]["bias"])
            out[b + "mlp.W_in"], out[b + "mlp.b_in"] = a(q["mlp"]["up"]["kernel"]), a(q["mlp"]["up"]["bias"])
            out[b + "mlp.W_out"], out[b + "mlp.b_out"] = a(q["mlp"]["down"]["kernel"]), a(q["mlp"]["down"]["bias"])
    if c.layer_norm:
        out["ln_final.w"], out["ln_final.b"] = a(p["ln_final"]["scale"]), a(p["ln_final"]["bias"])
    return out


def to_hooked_transformer(model_cfg: Any, params: Any, *, device: str = "cpu") -> Any:
    """A ``HookedTransformer`` computing what compmech's transformer (``model_cfg``, ``params``) computes.

    Every parameter of the TransformerLens model is set from compmech's (its buffers kept); a parameter left
    unset, or one compmech has and TransformerLens does not, is a bug and raises RuntimeError."""
    torch = require("torch")
    HookedTransformer = hooked_transformer_class()
    from transformer_lens import HookedTransformerConfig  # the extra is installed: hooked_transformer_class checked

    cfg = HookedTransformerConfig(**tl_config_dict(model_cfg), device=device, dtype=torch.float32)
    model = HookedTransformer(cfg)
    weights = tl_weights(model_cfg, params)
    state = model.state_dict()
    params_names = {name for name, _ in model.named_parameters()}
    missing, extra = params_names - set(weights), set(weights) - set(state)
    if missing or extra:
        raise RuntimeError(
            f"TransformerLens parameter map incomplete: missing {sorted(missing)}, unknown "
            f"{sorted(extra)}; a bug, please report it with your transformer_lens version"
        )
    for name, value in weights.items():
        if tuple(state[name].shape) != value.shape:
            raise RuntimeError(
                f"TransformerLens {name} has shape {tuple(state[name].shape)}, compmech's "
                f"{value.shape}; a bug, please report it"
            )
        state[name] = torch.from_numpy(value.copy())
    model.load_state_dict(state, strict=True)
    model.eval()
    return model


def float32_bound(model_cfg: Any, magnitude: float) -> float:
    """A first-order bound on the difference between two float32 evaluations of one activation of the model that
    differ only in summation order, for activations of largest magnitude ``magnitude``.

    Each of the at most m = 4 n_layers + 4 chained stages (a LayerNorm, a matrix product, a softmax-weighted sum,
    the unembedding) sums at most n = max(d_model, d_mlp, n_heads d_head, context_length, vocab) terms; a sum of n
    float32 terms is off by at most gamma_n = n u / (1 - n u) (u = 2^-24) times the sum of their magnitudes, and
    to first order the stages' errors add. So |a - b| <= 2 m gamma_n max(1, magnitude): both sides err."""
    c = model_cfg
    u = 2.0**-24
    n = max(c.d_model, 0 if c.attn_only else c.d_mlp, c.n_heads * c.d_head, c.context_length, c.vocab_size)
    gamma = n * u / (1 - n * u)
    m = 4 * c.n_layers + 4
    return 2 * m * gamma * max(1.0, float(magnitude))


#: The files `export_run` writes into its folder.
CONFIG_FILE, WEIGHTS_FILE = "config.json", "model.safetensors"


def export_files(model_cfg: Any, params: Any, folder: Path) -> tuple[Path, Path]:
    """Write the ``HookedTransformerConfig`` keywords (config.json) and the state dict (model.safetensors, by
    TransformerLens's parameter names) of compmech's transformer into ``folder``; NumPy only, no torch needed.
    `load_hooked_transformer` (or TransformerLens directly) reads them back."""
    cfg = tl_config_dict(model_cfg)
    weights = tl_weights(model_cfg, params)
    folder.mkdir(parents=True, exist_ok=True)
    config = write_text_atomic(folder / CONFIG_FILE, json.dumps(cfg, indent=2) + "\n")
    model = write_bytes_atomic(
        folder / WEIGHTS_FILE, safetensors_bytes(weights, {"format": "pt", "producer": "compmech export-tl"})
    )
    return config, model


def load_hooked_transformer(folder: str | Path, *, device: str = "cpu") -> Any:
    """The ``HookedTransformer`` of an `export_files` folder (config.json + model.safetensors)."""
    torch = require("torch")
    HookedTransformer = hooked_transformer_class()
    from transformer_lens import HookedTransformerConfig  # the extra is installed: hooked_transformer_class checked

    folder = Path(folder)
    cfg = HookedTransformerConfig(**json.loads((folder / CONFIG_FILE).read_text()), device=device, dtype=torch.float32)
    model = HookedTransformer(cfg)
    state = model.state_dict()
    for name, value in read_safetensors(folder / WEIGHTS_FILE).items():
        state[name] = torch.from_numpy(value)
    model.load_state_dict(state, strict=True)
    return model.eval()


# --- the CLI subcommand -----------------------------------------------------------------------------


def add_export_tl_command(subparsers: Any) -> None:
    """``export-tl RUN [--out DIR]``: a run's transformer for TransformerLens; ``func`` = `cmd_export_tl`."""
    p = subparsers.add_parser(
        "export-tl",
        help="export a run's trained transformer for TransformerLens (HookedTransformer config and state dict)",
        description="Write a finished run's trained transformer as a TransformerLens HookedTransformer: "
        f"{CONFIG_FILE} (the HookedTransformerConfig keywords) and {WEIGHTS_FILE} (the state dict, by "
        "TransformerLens's names). Load it with compmech.interop.transformer_lens."
        "load_hooked_transformer(DIR), or HookedTransformer(HookedTransformerConfig(**config)) and "
        "load_state_dict. Its logits and hooks equal the run's within float32 rounding; recurrent "
        "models have no TransformerLens form.",
    )
    p.add_argument("run", metavar="RUN", type=Path, help="a run directory written by `compmech run`")
    p.add_argument(
        "--out", type=Path, default=None, metavar="DIR", help="where to write (default: RUN/transformer_lens)"
    )
    p.add_argument("--checkpoint", default="final", help="which checkpoint (default: final)")
    p.set_defaults(func=cmd_export_tl)


def cmd_export_tl(args: argparse.Namespace) -> int:
    path = args.run / "checkpoints" / f"{args.checkpoint}.msgpack"
    if not path.is_file():
        raise ExportError(
            f"{path} does not exist; pass a finished run directory (and --checkpoint NAME of one of "
            "its checkpoints/NAME.msgpack)"
        )
    model_cfg, params = predictive_models.load_model(path)
    config, weights = export_files(model_cfg, params, args.out or args.run / "transformer_lens")
    print(f"{config}\n{weights}")
    return 0
