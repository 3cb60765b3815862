"""Data parallelism: batches split on mesh axis ``'data'``, state replicated.

Gradients and BatchNorm statistics are the global batch's; each process
builds only its rows (``process_rows``), stitched by ``global_batch``.
"""

from __future__ import annotations

import os

import jax
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
import numpy as np

DATA_AXIS = "data"
_MULTI_PROCESS_ENV = ("OMPI_COMM_WORLD_SIZE", "SLURM_NTASKS", "PMI_SIZE")


def maybe_initialize_distributed(mode: str = "auto") -> bool:
  """Calls ``jax.distributed.initialize()``; returns whether it did.

  ``on``: always; ``off``: never; ``auto``: when ``JAX_COORDINATOR_ADDRESS``
  is set (with ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID``) or Slurm, Open
  MPI or PMI report several processes.
  """
  env = os.environ
  launched = "JAX_COORDINATOR_ADDRESS" in env or any(
    env.get(name, "").isdigit() and int(env[name]) > 1
    for name in _MULTI_PROCESS_ENV
  )
  if mode == "off" or (mode == "auto" and not launched):
    return False
  jax.distributed.initialize(
    **{
      arg: int(env[name])
      for arg, name in (
        ("num_processes", "JAX_NUM_PROCESSES"),
        ("process_id", "JAX_PROCESS_ID"),
      )
      if name in env
    }
  )
  return True


def make_mesh() -> Mesh:
  """A 1-D mesh over all devices of all processes."""
  return Mesh(np.asarray(jax.devices()), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA_AXIS))


def process_rows(
  mesh: Mesh, batch_size: int, name: str = "batch_size"
) -> slice:
  """Rows of a global batch on this process's devices (one contiguous slice).

  Raises ``ValueError`` unless ``batch_size`` splits evenly over devices.
  """
  n = mesh.devices.size
  if batch_size <= 0 or batch_size % n:
    raise ValueError(
      f"{name} must be a positive multiple of the {n} devices, "
      f"got {name}={batch_size}"
    )
  index_map = batch_sharding(mesh).addressable_devices_indices_map(
    (batch_size,)
  )
  bounds = [
    (i[0].start or 0, batch_size if i[0].stop is None else i[0].stop)
    for i in index_map.values()
  ]
  start, stop = min(a for a, _ in bounds), max(b for _, b in bounds)
  if sum(b - a for a, b in bounds) != stop - start:
    raise ValueError(
      "This process's devices do not hold a contiguous block of the batch; "
      f"got {sorted(bounds)} for {batch_size=}"
    )
  return slice(start, stop)


def global_batch(
  mesh: Mesh, *local_arrays: np.ndarray
) -> tuple[jax.Array, ...]:
  """This process's rows (``process_rows``) of each array, as global arrays."""
  n_proc = jax.process_count()
  return tuple(
    jax.make_array_from_process_local_data(
      batch_sharding(mesh), a, (a.shape[0] * n_proc,) + a.shape[1:]
    )
    for a in local_arrays
  )
