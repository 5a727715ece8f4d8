"""Device mesh and shardings for training: data parallel × FSDP on a 2-D ``jax.sharding.Mesh``.

The rule, chosen for being simple and shape-only:

- The mesh has axes ``("data", "fsdp")``. The batch is split over both axes together, so every device
  gets its own slice of the batch (FSDP style; ``data`` alone would replicate parameters, ``fsdp`` shards them).
- A parameter with ≥2 dimensions is split over ``"fsdp"`` along its largest dimension that the fsdp size
  divides (ties go to the earlier dimension); if none divides, it is replicated. 1-D parameters (norm
  scales) are replicated: they are tiny, and splitting them would only add collectives.
- Parameters are replicated over ``"data"``. XLA inserts the all-gathers before use and the
  reduce-scatters of gradients; ``jax.jit`` on sharded inputs does the rest, so the training step itself
  is the same code on one device or many.

Because the rule looks only at shapes, ``param_shardings`` applies unchanged to any tree shaped like the
parameters, e.g. the optimizer state: Adam's moments get the sharding of their parameter and step counters
(scalars) are replicated.
"""

from __future__ import annotations

import math

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

MESH_AXES = ("data", "fsdp")


def make_mesh(data: int = 1, fsdp: int | None = None, devices=None) -> Mesh:
    """A ``data × fsdp`` mesh over the first ``data * fsdp`` devices (fsdp defaults to all the rest)."""
    devices = list(jax.devices() if devices is None else devices)
    if fsdp is None:
        fsdp = len(devices) // data
    if data < 1 or fsdp < 1 or data * fsdp > len(devices):
        raise ValueError(f"a {data}×{fsdp} mesh needs {data * fsdp} devices; {len(devices)} available")
    return Mesh(np.array(devices[: data * fsdp]).reshape(data, fsdp), MESH_AXES)


def param_partition_spec(shape: tuple[int, ...], fsdp: int) -> PartitionSpec:
    """The rule for one array shape: largest fsdp-divisible dimension over "fsdp", else replicated."""
    if len(shape) < 2 or fsdp <= 1:
        return PartitionSpec()
    by_size = sorted(range(len(shape)), key=lambda i: -shape[i])  # stable: ties keep the earlier dimension
    for dim in by_size:
        if shape[dim] % fsdp == 0:
            return PartitionSpec(*(["fsdp" if i == dim else None for i in range(len(shape))]))
    return PartitionSpec()


def param_shardings(params, mesh: Mesh):
    """A tree of ``NamedSharding`` matching ``params`` (or any tree of like-shaped arrays)."""
    fsdp = mesh.shape["fsdp"]
    return jax.tree_util.tree_map(lambda x: NamedSharding(mesh, param_partition_spec(np.shape(x), fsdp)), params)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over data and fsdp together; other axes whole."""
    return NamedSharding(mesh, PartitionSpec(MESH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, PartitionSpec())


def shard_params(params, mesh: Mesh):
    """Place ``params`` (or the optimizer state) on the mesh by the rule above."""
    return jax.device_put(params, param_shardings(params, mesh))


def shard_batch(batch, mesh: Mesh):
    """Place every array of ``batch`` with its leading axis split over all devices of the mesh."""
    devices = math.prod(mesh.shape.values())

    def put(x):
        if np.ndim(x) == 0:
            return jax.device_put(x, replicated(mesh))
        if np.shape(x)[0] % devices:
            raise ValueError(f"batch size {np.shape(x)[0]} is not a multiple of the {devices} devices in the mesh")
        return jax.device_put(x, batch_sharding(mesh))

    return jax.tree_util.tree_map(put, batch)
