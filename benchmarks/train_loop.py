"""Training units: ``run_loop`` with orbax checkpoints and resume.

``run_loop`` saves the training state with orbax every ``checkpoint_every``
steps and at the end, restores the latest checkpoint when restarted, and
rewrites ``metrics.jsonl`` to the restored step, so a resumed run ends with
the same files as an uninterrupted one. Claim the workdir first
(``resume.claim(workdir, config)``), so checkpoints of another config are
refused; a run made of several training units keeps each in its own
sub-folder of the workdir.

Evaluations (``eval_fn``) of the iterate after ``t`` updates are merged into
record ``t`` (the step's own metrics win on a name clash); the last record,
``step == num_steps``, holds only the final evaluation.

Example (a run_loop unit)::

  def chunk_fn(state, start, n):   # n jitted steps, e.g. with lax.scan
    ...
    return state, {"loss": losses, "learning_rate": lrs}   # arrays [n]

  resume.claim(workdir, config)
  state = train_loop.run_loop(state, chunk_fn, num_steps=1000,
                              workdir=workdir, checkpoint_every=200,
                              eval_fn=evaluate, eval_every=100)
  files.write_summary(workdir, {"final": evaluate(state)})
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Mapping
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
  """Saves and restores a pytree of arrays with orbax's CheckpointManager.

  Saves are synchronous (the loop flushes metrics first, then saves, so the
  checkpoint never runs ahead of the metrics file). Restores take the
  initial state as the target, which fixes shapes, dtypes and shardings.
  Use raw ``uint32`` key data (``jax.random.key_data``) for PRNG keys.
  """

  def __init__(self, directory: str | os.PathLike, max_to_keep: int = 2):
    import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top

    self._ocp = ocp
    self.directory = os.path.abspath(os.fspath(directory))
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True,
            enable_async_checkpointing=False))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state: State) -> None:
    self._manager.save(int(step), args=self._ocp.args.StandardSave(state),
                       force=True)
    self._manager.wait_until_finished()

  def restore(self, step: int, target: State) -> State:
    import jax  # pylint: disable=g-import-not-at-top

    abstract = jax.tree.map(self._ocp.utils.to_shape_dtype_struct, target)
    return self._manager.restore(
        int(step), args=self._ocp.args.StandardRestore(abstract))

  def close(self) -> None:
    self._manager.close()


def per_step(step_fn: StepFn) -> ChunkFn:
  """Turns ``step_fn(state, step) -> (state, scalars)`` into a chunk function.

  The scalars of each step are stacked once per chunk (one device-to-host
  transfer per chunk, so dispatch stays asynchronous).
  """

  def chunk_fn(state: State, start: int, n: int) -> tuple[State, Metrics]:
    import jax  # pylint: disable=g-import-not-at-top

    rows = []
    for step in range(start, start + n):
      state, metrics = step_fn(state, step)
      rows.append(metrics)
    rows = jax.device_get(rows)
    return state, {k: np.stack([np.asarray(r[k]) for r in rows])
                   for k in rows[0]}

  return chunk_fn


def run_loop(state: State, chunk_fn: ChunkFn, *, num_steps: int,
             workdir: str | os.PathLike, checkpoint_every: int = 0,
             chunk_size: int | None = None,
             eval_fn: Callable[[State], Metrics] | None = None,
             eval_every: int = 0, progress: bool = True, desc: str = "",
             resume: bool = True, postfix_key: str | None = "loss") -> State:
  """Runs ``num_steps`` training steps with metrics, checkpoints and resume.

  Files written under ``workdir``: ``metrics.jsonl`` (one record per step,
  plus the final evaluation at ``step == num_steps``) and ``checkpoints/``.
  A stale ``summary.json`` is removed first; the caller writes the new one
  (``write_summary``) after the loop returns.

  Args:
    state: the initial training state (a pytree of arrays); also the restore
      target.
    chunk_fn: ``(state, start_step, n) -> (state, metrics)`` running ``n``
      steps from ``start_step``; metrics are arrays with a leading axis ``n``
      (see ``per_step`` for a per-step function).
    num_steps: total number of steps.
    workdir: output directory of this run.
    checkpoint_every: save every this many steps (0: only at the end).
    chunk_size: most steps per ``chunk_fn`` call (None: up to the next
      checkpoint or evaluation). A ``lax.scan`` chunk compiles once per
      distinct length, so make ``checkpoint_every``, ``eval_every`` and
      ``chunk_size`` multiples of one another.
    eval_fn: ``state -> scalars``, evaluated every ``eval_every`` steps and at
      the end, merged into that step's record.
    eval_every: evaluation period in steps (0: only at the end).
    progress: show a tqdm progress bar.
    desc: progress-bar label.
    resume: restore the latest checkpoint if there is one.
    postfix_key: metric shown on the progress bar.

  Returns:
    The final state.
  """
  if num_steps < 0:
    raise ValueError(f"num_steps must be >= 0, got {num_steps=}.")
  for name, value in (("checkpoint_every", checkpoint_every),
                      ("eval_every", eval_every)):
    if value < 0:
      raise ValueError(f"{name} must be >= 0, got {name}={value}.")
  if chunk_size is not None and chunk_size <= 0:
    raise ValueError(f"chunk_size must be positive or None, got {chunk_size=}.")
  from tqdm.auto import tqdm  # pylint: disable=g-import-not-at-top

  workdir = os.fspath(workdir)
  os.makedirs(workdir, exist_ok=True)
  files.remove_summary(workdir)
  ckpt_dir = os.path.join(workdir, CHECKPOINT_DIR)
  if not resume:
    shutil.rmtree(ckpt_dir, ignore_errors=True)
  checkpointer = Checkpointer(ckpt_dir)
  start = checkpointer.latest_step() if resume else None
  if start is not None:
    if start > num_steps:
      raise ValueError(f"{ckpt_dir!r} holds step {start} > {num_steps=}.")
    state = checkpointer.restore(start, state)
  step = start or 0

  def boundary(period: int) -> int:
    return num_steps if period == 0 else min(num_steps,
                                             (step // period + 1) * period)

  writer = metrics_lib.MetricsWriter(
      os.path.join(workdir, metrics_lib.METRICS_FILE),
                         resume_step=start)
  bar = tqdm(total=num_steps, initial=step, desc=desc, disable=not progress,
             dynamic_ncols=True, leave=False)
  try:
    while step < num_steps:
      end = min(boundary(checkpoint_every), boundary(eval_every))
      if chunk_size is not None:
        end = min(end, step + chunk_size)
      extra = {}
      if eval_fn is not None and eval_every and step % eval_every == 0:
        extra[step] = dict(eval_fn(state))
      state, metrics = chunk_fn(state, step, end - step)
      writer.write_chunk(step, metrics, extra)
      if postfix_key and postfix_key in metrics:
        last = float(np.asarray(metrics[postfix_key])[-1])
        bar.set_postfix({postfix_key: f"{last:.4g}"}, refresh=False)
      bar.update(end - step)
      step = end
      due = checkpoint_every and step % checkpoint_every == 0
      if due or step == num_steps:
        writer.flush()
        if checkpointer.latest_step() != step:
          checkpointer.save(step, state)
    final = dict(eval_fn(state)) if eval_fn is not None else {}
    writer.write(num_steps, final)
  finally:
    bar.close()
    writer.close()
    checkpointer.close()
  return state
