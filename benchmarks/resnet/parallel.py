"""Data parallelism with ``jax.sharding``: one mesh axis, ``'data'``.

Every visible device (of every process) goes on a 1-D ``Mesh`` with axis
``'data'``. Batches are split along their first dimension over that axis
(``NamedSharding(mesh, P('data'))``); parameters, BatchNorm statistics and the
optimiser state are replicated (``P()``). ``jax.jit`` then compiles one SPMD
program: gradients and BatchNorm batch statistics are averaged over the whole
global batch (XLA inserts the all-reduces), so a sharded step computes the same
numbers as a single-device step on the same global batch.

Multi-host: launched with several processes (Slurm, Open MPI, or explicit
``JAX_COORDINATOR_ADDRESS``/``JAX_NUM_PROCESSES``/``JAX_PROCESS_ID``),
``maybe_initialize_distributed`` calls ``jax.distributed.initialize()`` before
anything touches the devices; each process then builds only the rows of each
global batch that live on its own devices (``process_rows``) and
``global_batch`` stitches them into one global ``jax.Array``.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA_AXIS = "data"

# Environment variables that mean "this process is one of several".
_MULTI_PROCESS_ENV = ("JAX_COORDINATOR_ADDRESS", "OMPI_COMM_WORLD_SIZE",
                      "SLURM_NTASKS", "PMI_SIZE")


def maybe_initialize_distributed(mode: str = "auto") -> bool:
  """Calls ``jax.distributed.initialize()`` when launched multi-process.

  Must run before the first use of ``jax.devices()`` or any computation.

  Args:
    mode: ``"on"`` always initialises; ``"off"`` never does; ``"auto"``
      initialises when the environment names several processes (Slurm, Open
      MPI, PMI, or ``JAX_COORDINATOR_ADDRESS``).

  Returns:
    Whether ``jax.distributed.initialize()`` was called.
  """
  if mode not in ("auto", "on", "off"):
    raise ValueError(f"distributed must be 'auto', 'on' or 'off', got {mode=}")
  if mode == "off":
    return False
  if mode == "auto":
    launched = False
    for name in _MULTI_PROCESS_ENV:
      value = os.environ.get(name)
      if value is None:
        continue
      if name == "JAX_COORDINATOR_ADDRESS" or (value.isdigit() and
                                               int(value) > 1):
        launched = True
    if not launched:
      return False
  jax.distributed.initialize()
  return True


def make_mesh(devices: Any = None) -> Mesh:
  """A 1-D mesh over ``devices`` (default: all devices of all processes)."""
  devices = jax.devices() if devices is None else list(devices)
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  """Sharding that keeps a full copy on every device."""
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  """Sharding that splits the leading (batch) axis over ``'data'``."""
  return NamedSharding(mesh, P(DATA_AXIS))


def check_batch_size(batch_size: int, mesh: Mesh, name: str = "batch_size"
                     ) -> None:
  """Raises ``ValueError`` unless ``batch_size`` splits evenly over devices."""
  n = mesh.devices.size
  if batch_size <= 0 or batch_size % n:
    raise ValueError(
        f"{name} must be a positive multiple of the {n} devices, got "
        f"{name}={batch_size}")


def process_rows(mesh: Mesh, global_batch_size: int) -> slice:
  """Rows of a global batch that live on this process's devices.

  With the devices of each process contiguous on the mesh (as ``jax.devices()``
  orders them) this is one slice; on a single process it is everything.
  """
  sharding = batch_sharding(mesh)
  index_map = sharding.addressable_devices_indices_map((global_batch_size,))
  starts = [idx[0].start or 0 for idx in index_map.values()]
  stops = [global_batch_size if idx[0].stop is None else idx[0].stop
           for idx in index_map.values()]
  start, stop = min(starts), max(stops)
  if sum(b - a for a, b in zip(starts, stops)) != stop - start:
    raise ValueError(
        "This process's devices do not hold a contiguous block of the batch; "
        f"got starts={sorted(starts)} for {global_batch_size=}")
  return slice(start, stop)


def global_batch(mesh: Mesh, *local_arrays: np.ndarray) -> tuple[jax.Array,
                                                                   ...]:
  """Assembles process-local rows into global batch-sharded arrays.

  Args:
    mesh: the data-parallel mesh.
    *local_arrays: this process's rows (``process_rows``) of each array.

  Returns:
    One global ``jax.Array`` per input, sharded over ``'data'``.
  """
  sharding = batch_sharding(mesh)
  n_proc = jax.process_count()
  return tuple(
      jax.make_array_from_process_local_data(
          sharding, a, (a.shape[0] * n_proc,) + a.shape[1:])
      for a in local_arrays)
