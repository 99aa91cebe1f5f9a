"""Runs in a subprocess for test_parallel.py (never collected by pytest): tiny trainings on forced host devices.

    python parallel_worker.py OUT devices                 # XLA_FLAGS=--xla_force_host_platform_device_count=2
    python parallel_worker.py OUT distributed PORT PID    # one of two processes, one forced device each

Writes NumPy arrays (parameters, losses, tokens) to ``OUT/<what>.npz`` for the test to compare.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the tolerance helpers test_training imports
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import jax  # noqa: E402
import numpy as np  # noqa: E402

STOP = 100  # the 2-device run cut here resumes on one device in the test's own process


def save(out: Path, name: str, result) -> None:
    """A result's parameters (flattened leaves, in order) and its evaluated losses."""
    leaves = {f"p{i}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(result.params_state))}
    np.savez(out / f"{name}.npz", losses=np.array([r["loss"] for r in result.history]), **leaves)


def devices_mode(out: Path) -> None:
    """Seed 3 (the tests' shared run) on 2 devices, whole and cut at STOP; seeds 3 and 0 one per device."""
    from test_training import EVAL, MODEL, config, markov_data

    from predictive_models.parallel import put, training_mesh
    from predictive_models.training import _keys, group_draw, train, train_seeds

    assert len(jax.devices()) == 2, jax.devices()
    info = {}
    # the global batch on 2 devices is the lone draw, token for token
    mesh = training_mesh(2, 32, 1)
    tc = config(devices=2)
    key = _keys(tc)[1]
    tokens = group_draw(markov_data, tc.steps_per_call, 32, 7, mesh, tc.steps_per_call)(
        put(np.asarray(jax.random.key_data(key))[None], mesh.replicated), np.int32(1)
    )
    info["batch_shards"] = sorted({tuple(s.data.shape) for s in tokens.addressable_shards})
    lone = np.asarray(markov_data(jax.random.fold_in(key, 1), tc.steps_per_call * 32, 7))
    np.savez(out / "tokens.npz", sharded=np.asarray(tokens)[0].reshape(-1, 7), lone=lone)

    save(out, "two", train(MODEL, tc, markov_data, EVAL, out / "two", progress=False))
    cut = train(MODEL, tc, markov_data, EVAL, out / "moved", progress=False, stop_after_steps=STOP)
    info["cut_step"] = cut.final["step"]
    group = train_seeds(
        MODEL, [config(seed=3, devices=2), config(seed=0, devices=2)], markov_data, EVAL, progress=False
    )
    info["seeds_mesh"] = training_mesh(2, 32, 2).describe()
    save(out, "seeds_3", group[0])
    save(out, "seeds_0", group[1])
    (out / "info.json").write_text(json.dumps(info))


def distributed_mode(out: Path, port: int, pid: int) -> None:
    """One of two processes training seed 3 on the two devices they hold together."""
    jax.distributed.initialize(f"localhost:{port}", num_processes=2, process_id=pid)
    from test_training import EVAL, MODEL, config, markov_data

    from predictive_models.training import train

    assert jax.process_count() == 2 and len(jax.devices()) == 2 and len(jax.local_devices()) == 1
    result = train(MODEL, config(), markov_data, EVAL, out / "dist", progress=False)
    save(out, f"dist_{pid}", result)
    jax.distributed.shutdown()


if __name__ == "__main__":
    where = Path(sys.argv[1])
    if sys.argv[2] == "devices":
        devices_mode(where)
    else:
        distributed_mode(where, int(sys.argv[3]), int(sys.argv[4]))
