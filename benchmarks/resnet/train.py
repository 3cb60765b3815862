r"""One data-parallel, resumable training run of ResNet-18.

The optimiser is ``optax.inject_hyperparams(fractal_optax.fractal_sgd)``,
rate :math:`s\,\eta_{t \bmod T}(m, M)` at update ``t``: ``(m, M) = (1/\kappa,
1)`` for ``schedule=fractal``, ``(1, 1)`` for ``constant``; ``s`` is
``learning_rate`` (over the cycle's mean step under
``fractal_normalization=mean``). ``m``, ``M``, ``s`` and the seed are state,
so every constant and fractal run of an experiment reuses one compiled step.
``schedule=adaptive`` is ``adaptive_fractal_sgd`` (``T``, ``κ_max =
fractal_kappa``, ``recheck_anchor``) with ``value_fn`` the loss on the
current batch; it has no rate to set. Data and augmentation depend only on
``(seed, step)`` and ``train_loop.run_loop`` checkpoints the whole state: a
restarted run ends as an uninterrupted one.

Example::

  from benchmarks.resnet import configs, train
  summary = train.train_and_evaluate(configs.SMOKE, "/tmp/resnet_smoke")
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
from typing import Any

from flax import nnx
import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import baselines
from benchmarks import files
from benchmarks import input_pipeline
from benchmarks import metrics as metrics_lib
from benchmarks import resume
from benchmarks import train_loop
from benchmarks.resnet import augment
from benchmarks.resnet import data
from benchmarks.resnet import models
from benchmarks.resnet import parallel
from benchmarks.resnet.configs import Config
import fractal_optax

TrainState = dict[str, Any]
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}

fractal_sgd = optax.inject_hyperparams(
  fractal_optax.fractal_sgd,
  static_args=("num_steps", "cycle", "momentum", "nesterov"),
  hyperparam_dtype=jnp.float32,
)

# The fields a compiled train step depends on (rates and seed are state).
_PROGRAM_FIELDS = (
  "dataset",
  "width_multiplier",
  "dtype",
  "augment",
  "crop_padding",
  "flip",
  "measure_loss_increase",
  "fractal_num_steps",
  "fractal_kappa",
  "momentum",
  "nesterov",
  "weight_decay",
)


def rate_hyperparams(config: Config) -> dict[str, float]:
  """``fractal_sgd``'s ``min_curvature``, ``max_curvature`` and ``scale``."""
  if config.schedule == "constant":
    return dict(
      min_curvature=1.0, max_curvature=1.0, scale=config.learning_rate
    )
  m, scale = 1.0 / config.fractal_kappa, config.learning_rate
  if config.fractal_normalization == "mean":
    steps = fractal_optax.fractal_chebyshev_step_sizes(
      config.fractal_num_steps, m, 1.0
    )
    scale /= float(np.mean(np.asarray(steps, np.float64)))
  return dict(min_curvature=m, max_curvature=1.0, scale=scale)


def multipliers(config: Config) -> np.ndarray:
  """One cycle of the run's rates over ``learning_rate`` (the library's)."""
  hp = rate_hyperparams(dataclasses.replace(config, learning_rate=1.0))
  t = config.fractal_num_steps
  return np.asarray(
    fractal_optax.fractal_chebyshev_schedule(t, **hp)(np.arange(t))
  )


def make_optimizer(config: Config) -> optax.GradientTransformation:
  """``fractal_sgd``, behind ``add_decayed_weights`` if ``weight_decay``, or
  ``adaptive_fractal_sgd``."""
  if config.schedule == "adaptive":
    return fractal_optax.adaptive_fractal_sgd(
      config.fractal_num_steps,
      max_condition_number=config.fractal_kappa,
      recheck_anchor=True,
    )
  tx = fractal_sgd(
    num_steps=config.fractal_num_steps,
    momentum=config.momentum or None,
    nesterov=config.nesterov,
    **rate_hyperparams(config),
  )
  if config.weight_decay:
    tx = optax.chain(optax.add_decayed_weights(config.weight_decay), tx)
  return tx


def build_model(
  config: Config, in_channels: int, num_classes: int
) -> models.ResNet:
  """The config's ResNet; ``rbg`` keys (eagerly far faster than threefry)."""
  key = jax.random.key(config.seed, impl="rbg")
  return models.ResNet(
    num_classes=num_classes,
    in_channels=in_channels,
    width_multiplier=config.width_multiplier,
    dtype=DTYPES[config.dtype],
    rngs=nnx.Rngs(key),
  )


def jit_steps(
  config: Config,
  tx: optax.GradientTransformation,
  image_shape: tuple[int, ...],
  num_classes: int,
  mesh: jax.sharding.Mesh,
) -> tuple[Any, Any]:
  """Jitted ``train_step(state, images, labels) -> (state, metrics)``.

  And ``eval_step(state, images, labels, mask) -> sums``; step ``t`` augments
  with ``fold_in(key(seed), t)``; the train step donates its state.
  """
  graphdef = nnx.split(
    nnx.eval_shape(lambda: build_model(config, image_shape[-1], num_classes)),
    nnx.Param,
    nnx.BatchStat,
  )[0]
  padding = flip = 0
  if config.augment:
    padding = (
      config.crop_padding
      if config.crop_padding >= 0
      else (4 if image_shape[0] >= 32 else 2 if image_shape[0] >= 28 else 1)
    )
    flip = config.flip == "on" or (
      config.flip == "auto" and config.dataset == "cifar10"
    )
  mean, std = augment.CHANNEL_STATS.get(config.dataset, ((0.5,), (0.25,)))
  preprocess = functools.partial(
    augment.preprocess, mean=mean, std=std, padding=padding, flip=bool(flip)
  )

  def forward(params, batch_stats, x, train):
    model = nnx.merge(graphdef, params, batch_stats, copy=True)
    return model(x, train=train), nnx.state(model, nnx.BatchStat)

  def loss_fn(params, batch_stats, x, labels):
    logits, batch_stats = forward(params, batch_stats, x, True)
    return optax.softmax_cross_entropy_with_integer_labels(
      logits, labels
    ).mean(), (batch_stats, logits)

  adaptive = config.schedule == "adaptive"

  def train_step(state, images, labels):
    step = state["step"]
    x = preprocess(
      images, jax.random.fold_in(jax.random.key(state["seed"]), step)
    )
    (loss, (batch_stats, logits)), grads = jax.value_and_grad(
      loss_fn, has_aux=True
    )(state["params"], state["batch_stats"], x, labels)
    extra = {}
    if adaptive:  # The cycle-end test and HVPs see the current batch.
      extra = dict(
        value=loss,
        grad=grads,
        value_fn=lambda p: loss_fn(p, state["batch_stats"], x, labels)[0],
      )
    updates, opt_state = tx.update(
      grads, state["opt_state"], state["params"], **extra
    )
    params = optax.apply_updates(state["params"], updates)
    metrics = {
      "loss": loss,
      "accuracy": jnp.mean(jnp.argmax(logits, -1) == labels),
    }
    if adaptive:
      metrics.update(_adaptive_metrics(opt_state))
    if config.measure_loss_increase:
      metrics["loss_after"] = loss_fn(params, state["batch_stats"], x, labels)[
        0
      ]
      metrics["loss_increased"] = metrics["loss_after"] > loss
    return {
      "step": step + 1,
      "seed": state["seed"],
      "params": params,
      "batch_stats": batch_stats,
      "opt_state": opt_state,
    }, metrics

  def eval_step(state, images, labels, mask):
    logits, _ = forward(
      state["params"], state["batch_stats"], preprocess(images, None), False
    )
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return {
      "loss_sum": jnp.sum(losses * mask),
      "correct": jnp.sum((jnp.argmax(logits, -1) == labels) * mask),
      "count": jnp.sum(mask),
    }

  rep, batch = parallel.replicated(mesh), parallel.batch_sharding(mesh)
  return (
    jax.jit(
      train_step,
      in_shardings=(rep, batch, batch),
      out_shardings=(rep, rep),
      donate_argnums=0,
    ),
    jax.jit(
      eval_step, in_shardings=(rep, batch, batch, batch), out_shardings=rep
    ),
  )


def _adaptive_metrics(state: Any) -> dict[str, jax.Array]:
  """The rate of the update just made (``state.step_size``; after a rejection
  the repaired cycle's first), its M, whether it exceeds ``2/M``, and the
  cost so far in gradient evaluations (an HVP counts 2)."""
  rate = state.step_size.astype(jnp.float32)
  return {
    "learning_rate": rate,
    "max_curvature": state.max_curvature,
    "above_2_over_M": rate * state.max_curvature > 2 * (1 + 1e-6),
    "rejections": state.num_rejected,
    "evaluations": baselines.adaptive_evaluations(state),
  }


@functools.lru_cache(maxsize=8)
def _programs(
  program: Config,
  image_shape: tuple[int, ...],
  num_classes: int,
  mesh: jax.sharding.Mesh,
) -> tuple[Any, Any]:
  """:func:`jit_steps` of ``make_optimizer``, shared by equal programs."""
  return jit_steps(
    program, make_optimizer(program), image_shape, num_classes, mesh
  )


def init_state(
  config: Config,
  tx: optax.GradientTransformation,
  in_channels: int,
  num_classes: int,
  mesh: jax.sharding.Mesh,
) -> TrainState:
  """The initial state, built eagerly on the host, replicated on ``mesh``."""
  try:
    host = jax.local_devices(backend="cpu")[0]
  except RuntimeError:  # JAX_PLATFORMS without cpu: use the default device.
    host = jax.local_devices()[0]
  with jax.default_device(host):
    _, params, batch_stats = nnx.split(
      build_model(config, in_channels, num_classes), nnx.Param, nnx.BatchStat
    )
    state = {
      "step": jnp.zeros((), jnp.int32),
      "seed": jnp.asarray(config.seed, jnp.int32),
      "params": params,
      "batch_stats": batch_stats,
      "opt_state": tx.init(params),
    }
  sharding = parallel.replicated(mesh)

  def place(x):
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda i: x[i])

  return jax.tree.map(place, state)


def evaluate(
  eval_step: Any,
  state: TrainState,
  dataset: input_pipeline.Dataset,
  batch_size: int,
  mesh: jax.sharding.Mesh,
) -> dict[str, float]:
  """Test loss and accuracy over the whole test set."""
  totals = jax.device_get(
    [
      eval_step(state, *batch)
      for batch in data.eval_batches(
        dataset.test_images, dataset.test_labels, batch_size, mesh
      )
    ]
  )
  total = {k: sum(float(t[k]) for t in totals) for k in totals[0]}
  return {
    "test_loss": total["loss_sum"] / total["count"],
    "test_accuracy": total["correct"] / total["count"],
  }


def summarize(
  records: list[dict[str, Any]], num_steps: int, cycle: int = 1
) -> dict[str, Any]:
  """Summary numbers of a run from its metric records.

  ``final_window_loss``: the mean batch loss of the last quarter of the
  steps; ``final_cycle_end_loss``: of those at multiples of ``cycle`` only.
  """
  train = [r for r in records if r["step"] < num_steps and "loss" in r]
  col = lambda key: np.array([r[key] for r in train], np.float64)
  out: dict[str, Any] = {"num_steps": num_steps}
  if train:
    losses, lrs = col("loss"), col("learning_rate")
    first = len(train) - max(1, len(train) // 4)
    window = losses[first:]
    ends = window[col("step")[first:] % cycle == 0]
    finite = np.isfinite(losses)
    out.update(
      initial_loss=float(losses[0]),
      final_loss=float(losses[-1]),
      final_window_loss=float(np.mean(window)),
      final_cycle_end_loss=float(np.mean(ends if ends.size else window)),
      min_loss=float(np.nanmin(losses)) if finite.any() else math.nan,
      all_finite=bool(finite.all()),
      max_learning_rate=float(lrs.max()),
      mean_learning_rate=float(lrs.mean()),
    )
    if "loss_increased" in train[0]:
      with np.errstate(divide="ignore", invalid="ignore"):
        ratio = col("loss_after") / losses
      ok = np.isfinite(ratio)
      out.update(
        fraction_loss_increased=float(col("loss_increased").mean()),
        max_loss_ratio=float(ratio[ok].max()) if ok.any() else math.nan,
      )
    if "above_2_over_M" in train[0]:  # schedule=adaptive.
      out.update(
        fraction_steps_above_2_over_M=float(col("above_2_over_M").mean()),
        final_max_curvature=train[-1]["max_curvature"],
        rejections=int(train[-1]["rejections"]),
        evaluations=int(train[-1]["evaluations"]),
      )
  out.update(
    {
      k: v
      for r in records
      if r["step"] == num_steps
      for k, v in r.items()
      if k.startswith("test_")
    }
  )
  return out


def train(
  config: Config,
  workdir: str,
  *,
  dataset: input_pipeline.Dataset | None = None,
  mesh: jax.sharding.Mesh | None = None,
  desc: str = "",
  command: str = "",
) -> tuple[TrainState, dict[str, Any]]:
  """Trains one run of ``config`` in ``workdir``: ``(final state, summary)``.

  Writes ``config.json``, ``metrics.jsonl`` (a record per step, the test
  metrics at ``step == num_steps``), ``checkpoints/`` and, last,
  ``summary.json`` (process 0 only; several hosts need a shared ``workdir``).
  Restarted with the same config it resumes from the latest checkpoint.
  ``command`` (the command line) is recorded in the summary.
  """
  if mesh is None:
    parallel.maybe_initialize_distributed(config.distributed)
    mesh = parallel.make_mesh()
  if dataset is None:
    dataset = data.load(config)
  resume.claim(workdir, config)
  shape = dataset.train_images.shape[1:]
  program = Config(
    **{f: getattr(config, f) for f in _PROGRAM_FIELDS},
    schedule="adaptive" if config.schedule == "adaptive" else "constant",
  )
  train_step, eval_step = _programs(program, shape, dataset.num_classes, mesh)
  state = init_state(
    config, make_optimizer(config), shape[-1], dataset.num_classes, mesh
  )
  sampler = data.BatchSampler(
    dataset.train_images,
    dataset.train_labels,
    config.batch_size,
    config.seed,
    mesh,
  )
  per_step = train_loop.per_step(
    lambda state, step: train_step(state, *sampler.batch(step))
  )
  rates = (
    config.learning_rate * multipliers(config)
    if config.schedule != "adaptive"
    else None
  )
  diverged, last = False, {}

  def chunk_fn(state, start, n):
    # A non-finite loss never recovers: record NaN losses for the rest (the
    # other metrics keep their last values) and skip the compute (the sweep
    # stops paying for dead runs).
    nonlocal diverged, last
    if diverged:
      nan = np.full(n, np.nan, np.float32)
      metrics = {k: np.repeat(np.asarray(v)[-1:], n) for k, v in last.items()}
      metrics.update(loss=nan, accuracy=nan)
      if config.measure_loss_increase:
        metrics.update(loss_after=nan, loss_increased=np.zeros(n, bool))
    else:
      state, metrics = per_step(state, start, n)
      metrics = last = dict(metrics)
      diverged = not np.isfinite(metrics["loss"]).all()
    if "learning_rate" not in metrics:  # Fixed schedules: from the table.
      steps = np.arange(start, start + n) % config.fractal_num_steps
      metrics = {**metrics, "learning_rate": rates[steps]}
    return state, metrics

  start_time = time.perf_counter()
  state = train_loop.run_loop(
    state,
    chunk_fn,
    num_steps=config.num_steps,
    workdir=workdir,
    checkpoint_every=config.checkpoint_every,
    chunk_size=config.log_every,
    eval_fn=lambda s: evaluate(
      eval_step, s, dataset, config.eval_batch_size, mesh
    ),
    eval_every=config.eval_every,
    progress=config.progress,
    desc=desc,
  )
  if jax.process_count() > 1:  # Process 0's files are complete: read them.
    multihost_utils.sync_global_devices(f"resnet {workdir}")
  records = metrics_lib.read_metrics(
    os.path.join(workdir, metrics_lib.METRICS_FILE)
  )
  summary = summarize(records, config.num_steps, config.fractal_num_steps)
  if config.schedule == "adaptive":
    optimizer = {
      "adaptive_fractal_sgd": dict(
        num_steps=config.fractal_num_steps,
        max_condition_number=config.fractal_kappa,
        recheck_anchor=True,
      )
    }
  else:
    optimizer = {
      "fractal_sgd": dict(
        rate_hyperparams(config), num_steps=config.fractal_num_steps
      )
    }
    summary["multipliers"] = multipliers(config).tolist()
  summary.update(
    learning_rate=(
      None if config.schedule == "adaptive" else config.learning_rate
    ),
    schedule=config.schedule,
    seed=config.seed,
    optimizer=optimizer,
    command=command,
    wall_time_s_this_invocation=time.perf_counter() - start_time,
    environment=dict(
      files.environment(),
      process_count=jax.process_count(),
      mesh={"axis": parallel.DATA_AXIS, "size": int(mesh.devices.size)},
    ),
  )
  files.write_summary(workdir, summary)
  return state, summary


def train_and_evaluate(
  config: Config, workdir: str, **kwargs: Any
) -> dict[str, Any]:
  """:func:`train`'s summary (``mode=train``); a finished run is read back."""
  summary = resume.finished(workdir, config)
  return summary if summary is not None else train(config, workdir, **kwargs)[1]
