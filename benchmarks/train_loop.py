"""Training units: ``run_loop`` with orbax checkpoints and resume.

A restarted ``run_loop`` restores the latest checkpoint and rewrites
``metrics.jsonl`` to its step, so it ends with the same files as an
uninterrupted run. Claim the workdir first (``resume.claim``); several
training units each get a sub-folder.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import os
from typing import Any

import numpy as np

from benchmarks import files
from benchmarks import metrics as metrics_lib
from benchmarks.resume import CHECKPOINT_DIR

State = Any
Metrics = Mapping[str, Any]
ChunkFn = Callable[[State, int, int], tuple[State, Metrics]]
StepFn = Callable[[State, int], tuple[State, Metrics]]


class Checkpointer:
  """Synchronous orbax checkpoints of a pytree of arrays (keeps the last two).

  ``restore`` takes the initial state as target (shapes, dtypes, shardings);
  store PRNG keys as ``jax.random.key_data``.
  """

  def __init__(self, directory: str | os.PathLike):
    import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top

    self._ocp = ocp
    self.directory = os.path.abspath(os.fspath(directory))
    self._manager = ocp.CheckpointManager(
      self.directory,
      options=ocp.CheckpointManagerOptions(
        max_to_keep=2, create=True, enable_async_checkpointing=False
      ),
    )

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state: State) -> None:
    self._manager.save(
      int(step), args=self._ocp.args.StandardSave(state), force=True
    )
    self._manager.wait_until_finished()

  def restore(self, step: int, target: State) -> State:
    import jax  # pylint: disable=g-import-not-at-top

    abstract = jax.tree.map(self._ocp.utils.to_shape_dtype_struct, target)
    return self._manager.restore(
      int(step), args=self._ocp.args.StandardRestore(abstract)
    )

  def close(self) -> None:
    self._manager.close()


def per_step(step_fn: StepFn) -> ChunkFn:
  """A chunk function from ``step_fn``, fetching the scalars once a chunk."""

  def chunk_fn(state: State, start: int, n: int) -> tuple[State, Metrics]:
    import jax  # pylint: disable=g-import-not-at-top

    rows = []
    for step in range(start, start + n):
      state, metrics = step_fn(state, step)
      rows.append(metrics)
    rows = jax.device_get(rows)
    return state, {
      k: np.stack([np.asarray(r[k]) for r in rows]) for k in rows[0]
    }

  return chunk_fn


def run_loop(
  state: State,
  chunk_fn: ChunkFn,
  *,
  num_steps: int,
  workdir: str | os.PathLike,
  checkpoint_every: int = 0,
  chunk_size: int | None = None,
  eval_fn: Callable[[State], Metrics] | None = None,
  eval_every: int = 0,
  progress: bool = True,
  desc: str = "",
) -> State:
  """Runs ``num_steps`` steps with metrics, checkpoints and resume.

  Writes ``workdir/metrics.jsonl`` (a record per step, then the final
  evaluation alone at ``step == num_steps``) and ``workdir/checkpoints/``,
  and first removes a stale ``summary.json``. Returns the final state.

  Args:
    state: the initial state (a pytree of arrays), also the restore target.
    chunk_fn: ``(state, start, n) -> (state, metrics)`` running ``n`` steps;
      metrics are arrays of leading length ``n`` (see :func:`per_step`).
    checkpoint_every: save every this many steps (0: only at the end).
    chunk_size: most steps per ``chunk_fn`` call (None: up to the next
      checkpoint or evaluation); ``lax.scan`` compiles once per length.
    eval_fn: ``state -> scalars``, merged into the record of that step (the
      step's own metrics win a name clash).
    eval_every: evaluation period (0: only at the end).
    progress: show a tqdm bar labelled ``desc``, with the last loss.
  """
  for name, value in (
    ("num_steps", num_steps),
    ("checkpoint_every", checkpoint_every),
    ("eval_every", eval_every),
  ):
    if value < 0:
      raise ValueError(f"{name} must be >= 0, got {name}={value}.")
  if chunk_size is not None and chunk_size <= 0:
    raise ValueError(f"chunk_size must be positive or None, got {chunk_size=}.")
  from tqdm.auto import tqdm  # pylint: disable=g-import-not-at-top

  workdir = os.fspath(workdir)
  os.makedirs(workdir, exist_ok=True)
  files.remove_summary(workdir)
  checkpointer = Checkpointer(os.path.join(workdir, CHECKPOINT_DIR))
  start = checkpointer.latest_step()
  if start is not None:
    if start > num_steps:
      raise ValueError(
        f"{checkpointer.directory!r} holds step {start} > {num_steps=}."
      )
    state = checkpointer.restore(start, state)
  step = start or 0

  def boundary(period: int) -> int:
    return (
      num_steps
      if period == 0
      else min(num_steps, (step // period + 1) * period)
    )

  writer = metrics_lib.MetricsWriter(
    os.path.join(workdir, metrics_lib.METRICS_FILE), resume_step=start
  )
  bar = tqdm(
    total=num_steps,
    initial=step,
    desc=desc,
    disable=not progress,
    dynamic_ncols=True,
    leave=False,
  )
  try:
    while step < num_steps:
      end = min(
        boundary(checkpoint_every),
        boundary(eval_every),
        num_steps if chunk_size is None else step + chunk_size,
      )
      extra = {}
      if eval_fn is not None and eval_every and step % eval_every == 0:
        extra[step] = dict(eval_fn(state))
      state, metrics = chunk_fn(state, step, end - step)
      writer.write_chunk(step, metrics, extra)
      if "loss" in metrics:
        last = float(np.asarray(metrics["loss"])[-1])
        bar.set_postfix({"loss": f"{last:.4g}"}, refresh=False)
      bar.update(end - step)
      step = end
      if step == num_steps or (
        checkpoint_every and step % checkpoint_every == 0
      ):
        writer.flush()
        if checkpointer.latest_step() != step:
          checkpointer.save(step, state)
    writer.write(num_steps, dict(eval_fn(state)) if eval_fn else {})
  finally:
    bar.close()
    writer.close()
    checkpointer.close()
  return state
