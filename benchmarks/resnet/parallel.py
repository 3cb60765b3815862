"""Data parallelism with ``jax.sharding``: one mesh axis, ``'data'``.

Every device of every process goes on a 1-D ``Mesh`` with axis ``'data'``.
Batches are split along their first dimension (``P('data')``); parameters,
BatchNorm statistics and optimiser state are replicated (``P()``). ``jit``
compiles one SPMD program whose gradients and BatchNorm statistics are those
of the whole global batch (XLA inserts the all-reduces).

Multi-host: with one process per host (Slurm, Open MPI, or
``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID``),
``maybe_initialize_distributed`` calls ``jax.distributed.initialize()``
before anything touches the devices; each process then builds only its rows
of each global batch (``process_rows``) and ``global_batch`` stitches them
into one global ``jax.Array``.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"
# Environment variables that mean "this process is one of several".
_MULTI_PROCESS_ENV = ("OMPI_COMM_WORLD_SIZE", "SLURM_NTASKS", "PMI_SIZE")


def maybe_initialize_distributed(mode: str = "auto") -> bool:
  """Calls ``jax.distributed.initialize()`` for a multi-process launch.

  Slurm and Open MPI launches are detected by JAX; elsewhere set
  ``JAX_COORDINATOR_ADDRESS`` (``host:port`` of process 0),
  ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` on every process.

  Args:
    mode: ``"on"`` always initialises, ``"off"`` never, ``"auto"`` when the
      environment names a coordinator or several processes (Slurm, Open MPI,
      PMI).

  Returns:
    Whether it initialised.
  """
  if mode not in ("auto", "on", "off"):
    raise ValueError(f"distributed must be 'auto', 'on' or 'off', got {mode=}")
  env = os.environ
  launched = "JAX_COORDINATOR_ADDRESS" in env or any(
      env.get(name, "").isdigit() and int(env[name]) > 1
      for name in _MULTI_PROCESS_ENV)
  if mode == "off" or (mode == "auto" and not launched):
    return False
  jax.distributed.initialize(**{
      arg: int(env[name]) for arg, name in (("num_processes",
                                             "JAX_NUM_PROCESSES"),
                                            ("process_id", "JAX_PROCESS_ID"))
      if name in env})
  return True


def make_mesh(devices: Any = None) -> Mesh:
  """A 1-D mesh over ``devices`` (default: all devices of all processes)."""
  return Mesh(np.asarray(jax.devices() if devices is None else list(devices)),
              (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA_AXIS))


def check_batch_size(batch_size: int, mesh: Mesh, name: str = "batch_size"
                     ) -> None:
  """Raises ``ValueError`` unless ``batch_size`` splits evenly over devices."""
  n = mesh.devices.size
  if batch_size <= 0 or batch_size % n:
    raise ValueError(f"{name} must be a positive multiple of the {n} devices, "
                     f"got {name}={batch_size}")


def process_rows(mesh: Mesh, global_batch_size: int) -> slice:
  """Rows of a global batch on this process's devices (one contiguous slice)."""
  index_map = batch_sharding(mesh).addressable_devices_indices_map(
      (global_batch_size,))
  bounds = [(i[0].start or 0, global_batch_size if i[0].stop is None
             else i[0].stop) for i in index_map.values()]
  start, stop = min(a for a, _ in bounds), max(b for _, b in bounds)
  if sum(b - a for a, b in bounds) != stop - start:
    raise ValueError(
        "This process's devices do not hold a contiguous block of the batch; "
        f"got {sorted(bounds)} for {global_batch_size=}")
  return slice(start, stop)


def global_batch(mesh: Mesh, *local_arrays: np.ndarray
                 ) -> tuple[jax.Array, ...]:
  """This process's rows (``process_rows``) of each array, as global arrays."""
  n_proc = jax.process_count()
  return tuple(jax.make_array_from_process_local_data(
      batch_sharding(mesh), a, (a.shape[0] * n_proc,) + a.shape[1:])
               for a in local_arrays)
