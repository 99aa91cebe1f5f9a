"""Checkpoints: flax msgpack serialization of a plain dict, written atomically. Never pickle.

A checkpoint holds ``{format, params, opt_state, step, model_config, train_config, ...extra}``:
parameters as a nested dict of float32 arrays (the ``nnx.to_pure_dict`` form, keys as strings),
the optimizer state as ``flax.serialization.to_state_dict`` of the optax state, and both configs
as plain dicts, so a checkpoint can be read back without any of our code except the config
classes.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx, serialization

from predictive_models.models import (
    ModelConfig,
    abstract_params,
    config_from_dict,
    config_to_dict,
    is_model_config,
    to_state,
)
from predictive_models.nnx_params import pure_params

FORMAT = "compmech.predictive_models.checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint file is damaged, truncated, or not a checkpoint of this package."""


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temp file in the same directory and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        mask = os.umask(0o022)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def _to_numpy(tree: Any) -> Any:
    return jax.tree.map(lambda x: np.asarray(x), tree)


def save_checkpoint(
    path: str | Path,
    *,
    params: Any,
    opt_state: Any,
    step: int,
    model_config: ModelConfig | dict,
    train_config: Any,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Save a resumable checkpoint to ``path`` (atomically). Returns the path.

    ``params``: an ``nnx.State``, a model or a pure dict; ``opt_state``: any optax state (or None);
    ``train_config``: a dataclass with ``to_dict`` or a plain dict; ``extra``: more plain values.
    """
    mc = config_to_dict(model_config) if is_model_config(model_config) else dict(model_config)
    tc = train_config.to_dict() if hasattr(train_config, "to_dict") else dict(train_config or {})
    payload = {
        "format": FORMAT,
        "params": serialization.to_state_dict(_to_numpy(pure_params(params))),
        "opt_state": None if opt_state is None else serialization.to_state_dict(_to_numpy(opt_state)),
        "step": int(step),
        "model_config": mc,
        "train_config": tc,
    }
    for key, value in (extra or {}).items():
        if key in payload:
            raise ValueError(f"save_checkpoint: extra key {key!r} clashes with a built-in entry; rename it.")
        payload[key] = value
    return atomic_write_bytes(path, serialization.msgpack_serialize(payload))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint back as the plain dict it was saved from.

    ``params`` comes back as a pure nested dict of numpy arrays with the model's structure (list
    indices as ints), ready for ``nnx.merge``; ``opt_state`` stays a state dict (restore it with
    ``flax.serialization.from_state_dict(tx.init(params), ckpt["opt_state"])``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    fix = (
        f"delete {path} (a run directory's latest.msgpack: the run then restarts from the beginning; "
        "a tokens_<N>.msgpack: that snapshot is skipped)"
    )
    try:
        payload = serialization.msgpack_restore(path.read_bytes())
    except Exception as exc:  # msgpack raises several types for truncated or garbled bytes
        raise CheckpointError(
            f"checkpoint {path} is damaged (cannot be decoded: {type(exc).__name__}); {fix}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a predictive_models checkpoint (format {FORMAT!r}); {fix}")
    try:
        config = config_from_dict(payload["model_config"])
        payload["params"] = restore_params(config, payload["params"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} is damaged ({type(exc).__name__}: {exc}); {fix}") from None
    return payload


def restore_params(config: ModelConfig, state_dict: dict) -> dict:
    """A saved parameter state dict -> the model's pure dict, with every shape checked."""
    template = abstract_params(config)
    params = serialization.from_state_dict(template, state_dict)
    for (where, want), got in zip(jax.tree_util.tree_flatten_with_path(template)[0], jax.tree.leaves(params)):
        if tuple(np.shape(got)) != tuple(want.shape):
            raise ValueError(
                f"checkpoint parameter {jax.tree_util.keystr(where)} has shape {np.shape(got)}, "
                f"the model config needs {want.shape}."
            )
    return jax.tree.map(lambda x: np.asarray(x, np.float32), params)


def load_model(path: str | Path) -> tuple[ModelConfig, nnx.State]:
    """The model config (a `TransformerConfig` or a `RecurrentConfig`) and parameters (an ``nnx.State``) of a
    checkpoint, for analysis."""
    ckpt = load_checkpoint(path)
    config = config_from_dict(ckpt["model_config"])
    return config, to_state(config, ckpt["params"])
