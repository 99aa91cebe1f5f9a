"""Where training runs: a device mesh with a ``seeds`` axis and a ``data`` axis, and moving trees onto and off it.

Training S models that differ only in seed on D devices uses a mesh of shape (seed shards, data shards) with
seed shards x data shards = D: the stacked parameters and optimizer states (leading axis S) are split over
``seeds`` and replicated over ``data``; every batch [S, k, B, T+1] is split over ``seeds`` on its first axis
and over ``data`` on its batch axis B. One device is the mesh (1, 1): the same code path. With several
processes (`jax.distributed`, one per host) the mesh spans every process's devices; `put` and `to_host`
move trees between host memory (the same values in every process) and the mesh.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

SEEDS_AXIS = "seeds"
DATA_AXIS = "data"


def check_devices(devices: Any) -> None:
    """``devices`` must be "all" or a positive integer (a `TrainConfig.devices` value)."""
    if devices == "all" and isinstance(devices, str):
        return
    if isinstance(devices, (int, np.integer)) and not isinstance(devices, bool) and devices >= 1:
        return
    raise ValueError(
        f'TrainConfig.devices = {devices!r} is invalid: pass "all" (every visible device) or a '
        "positive integer (that many devices)."
    )


@dataclass(frozen=True)
class TrainingMesh:
    """The mesh a group of S seeds trains on, with the shardings of its arrays."""

    mesh: Mesh  # axes (SEEDS_AXIS, DATA_AXIS)
    n_seeds: int  # S, the models trained together

    @property
    def seed_shards(self) -> int:
        return int(self.mesh.shape[SEEDS_AXIS])

    @property
    def data_shards(self) -> int:
        return int(self.mesh.shape[DATA_AXIS])

    @property
    def n_devices(self) -> int:
        return int(self.mesh.size)

    @property
    def stacked(self) -> NamedSharding:
        """Every leaf [S, ...]: split over seeds, replicated over data (parameters, optimizer state, keys)."""
        return NamedSharding(self.mesh, PartitionSpec(SEEDS_AXIS))

    @property
    def batches(self) -> NamedSharding:
        """Token batches [S, k, B, T+1]: seeds over the seed axis, the batch B over the data axis."""
        return NamedSharding(self.mesh, PartitionSpec(SEEDS_AXIS, None, DATA_AXIS, None))

    @property
    def replicated(self) -> NamedSharding:
        """A full copy on every device (the losses, and anything fetched to the host)."""
        return NamedSharding(self.mesh, PartitionSpec())

    def describe(self) -> str:
        """E.g. "2 devices (data-parallel)" or "4 devices (2 seed shards x 2 data shards)"."""
        if self.n_devices == 1:
            return "1 device"
        if self.seed_shards == 1:
            return f"{self.n_devices} devices (data-parallel)"
        if self.data_shards == 1:
            return f"{self.n_devices} devices (seeds split over them)"
        return f"{self.n_devices} devices ({self.seed_shards} seed shards x {self.data_shards} data shards)"


def _split(n_devices: int, n_seeds: int, batch_size: int) -> tuple[int, int] | None:
    """(seed shards, data shards) with product n_devices, seed shards dividing S and data shards dividing B;
    the most seed shards (a seed's model then needs no gradient all-reduce), or None if there is no such split."""
    for seed_shards in sorted((d for d in range(1, n_devices + 1) if n_devices % d == 0), reverse=True):
        data_shards = n_devices // seed_shards
        if n_seeds % seed_shards == 0 and batch_size % data_shards == 0:
            return seed_shards, data_shards
    return None


def training_mesh(devices: int | str, batch_size: int, n_seeds: int = 1) -> TrainingMesh:
    """The mesh for ``devices`` ("all" or N) training ``n_seeds`` models of batch ``batch_size`` together.

    "all" takes every visible device (every process's, under `jax.distributed`), or in one process the
    most of them that split into seed shards dividing S and data shards dividing the batch (all of them
    when the batch is divisible by the device count). N takes the first N devices and must split so.
    """
    check_devices(devices)
    available = jax.devices()
    multi = jax.process_count() > 1
    if devices == "all":
        counts = [len(available)] if multi else range(len(available), 0, -1)
        n = next((c for c in counts if _split(c, n_seeds, batch_size) is not None), None)
        if n is None:
            raise ValueError(
                f"training on all {len(available)} devices of {jax.process_count()} processes needs "
                f"batch_size ({batch_size}) x seeds ({n_seeds}) to split over them; pass a batch_size "
                f"divisible by {len(available)}."
            )
    else:
        n = int(devices)
        if n > len(available):
            raise ValueError(
                f"TrainConfig.devices = {n} but only {len(available)} device(s) are visible "
                f'({available[0].platform}); pass devices = "all" or at most {len(available)}.'
            )
        if multi and n != len(available):
            raise ValueError(
                f"TrainConfig.devices = {n} under jax.distributed with {len(available)} devices in "
                f'{jax.process_count()} processes: every process must take part; pass devices = "all".'
            )
        if _split(n, n_seeds, batch_size) is None:
            raise ValueError(
                f"TrainConfig.devices = {n} does not divide the work: the batch ({batch_size}) is "
                f"split over the devices a seed uses; pass a batch_size divisible by "
                f"{n // math.gcd(n, n_seeds)} or another device count."
            )
    seed_shards, data_shards = _split(n, n_seeds, batch_size)  # type: ignore[misc]
    grid = np.array(available[:n], dtype=object).reshape(seed_shards, data_shards)
    return TrainingMesh(mesh=Mesh(grid, (SEEDS_AXIS, DATA_AXIS)), n_seeds=n_seeds)


def put(tree: Any, sharding: NamedSharding) -> Any:
    """Host arrays (the same values in every process) -> global arrays laid out by ``sharding``."""

    def one(x: Any) -> jax.Array:
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])

    return jax.tree.map(one, tree)


@functools.lru_cache(maxsize=32)
def _gather(sharding: NamedSharding):
    return jax.jit(lambda tree: tree, out_shardings=sharding)


def to_host(tree: Any, replicated: NamedSharding) -> Any:
    """Global arrays -> NumPy arrays of their full values, in every process (gathered over the mesh if some of
    their shards live in other processes)."""
    if not all(getattr(x, "is_fully_addressable", True) for x in jax.tree.leaves(tree)):
        tree = _gather(replicated)(tree)
        return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), tree)
    return jax.tree.map(np.asarray, tree)
