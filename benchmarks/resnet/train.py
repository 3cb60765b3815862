r"""One data-parallel training run of ResNet-18 with ``fractal_optax``.

``train_and_evaluate(config, workdir)`` trains with the library's optimiser,

.. code-block:: python

  optax.inject_hyperparams(fractal_optax.fractal_sgd, static_args=...)(
      num_steps=T, min_curvature=m, max_curvature=M, scale=s)

whose rate at update ``t`` is :math:`s\,\eta_{t \bmod T}(m, M)`, the
repeated fractal Chebyshev cycle: ``(m, M) = (1/\kappa, 1)`` for
``schedule=fractal`` (multipliers from about 1 to about ``kappa``) and
``(1, 1)`` for ``schedule=constant`` (every step 1); ``s`` is
``learning_rate``, divided by the cycle's mean step under
``fractal_normalization=mean``. ``m``, ``M`` and ``s`` live in the optimiser
state, so every run of an experiment (sweep, constant, fractal) reuses one
compiled train step. Momentum and weight decay (``optax.add_decayed_weights``
chained in front) appear only when the config asks for them.

The step is data-parallel over every device (``benchmarks.resnet.parallel``;
BatchNorm statistics of the global batch), images are augmented on device
(``benchmarks.resnet.augment``), data and augmentation depend only on
``(seed, step)``, and ``benchmarks.train_loop.run_loop`` checkpoints the
whole state: a run killed and restarted ends where an uninterrupted one does.
Per step it records the batch's loss and accuracy before the update, the
update's learning rate and, with ``measure_loss_increase``, the batch's loss
after the update and whether it increased. The test set is evaluated at the
end.

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
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.experimental import multihost_utils

import fractal_optax
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

TrainState = dict[str, Any]
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}

# fractal_sgd with (m, M, scale) in the optimiser state.
fractal_sgd = optax.inject_hyperparams(
    fractal_optax.fractal_sgd,
    static_args=("num_steps", "cycle", "momentum", "nesterov"),
    hyperparam_dtype=jnp.float32)

# The fields a compiled train step depends on (rates are state, not program).
_PROGRAM_FIELDS = ("dataset", "width_multiplier", "dtype", "seed", "augment",
                   "crop_padding", "flip", "measure_loss_increase",
                   "fractal_num_steps", "momentum", "nesterov",
                   "weight_decay")


def rate_hyperparams(config: Config) -> dict[str, float]:
  """``fractal_sgd``'s ``min_curvature``, ``max_curvature`` and ``scale``."""
  if config.schedule == "constant":
    return dict(min_curvature=1.0, max_curvature=1.0,
                scale=config.learning_rate)
  m, scale = 1.0 / config.fractal_kappa, config.learning_rate
  if config.fractal_normalization == "mean":
    steps = fractal_optax.fractal_chebyshev_step_sizes(
        config.fractal_num_steps, m, 1.0)
    scale /= float(np.mean(np.asarray(steps, np.float64)))
  return dict(min_curvature=m, max_curvature=1.0, scale=scale)


def multipliers(config: Config) -> np.ndarray:
  """One cycle of the run's rates over ``learning_rate`` (the library's)."""
  hp = rate_hyperparams(dataclasses.replace(config, learning_rate=1.0))
  t = config.fractal_num_steps
  return np.asarray(fractal_optax.fractal_chebyshev_schedule(t, **hp)(
      np.arange(t)))


def make_optimizer(config: Config) -> optax.GradientTransformation:
  """The run's optimiser (see the module docstring)."""
  tx = fractal_sgd(num_steps=config.fractal_num_steps,
                   momentum=config.momentum or None, nesterov=config.nesterov,
                   **rate_hyperparams(config))
  if config.weight_decay:
    tx = optax.chain(optax.add_decayed_weights(config.weight_decay), tx)
  return tx


def learning_rate(opt_state: Any, step: Any, num_steps: int) -> jax.Array:
  """The rate that ``make_optimizer``'s update number ``step`` uses."""
  if not hasattr(opt_state, "hyperparams"):  # Behind add_decayed_weights.
    opt_state = opt_state[-1]
  hp = opt_state.hyperparams
  return fractal_optax.fractal_chebyshev_schedule(
      num_steps, hp["min_curvature"], hp["max_curvature"],
      scale=hp["scale"])(step)


def build_model(config: Config, in_channels: int, num_classes: int
                ) -> models.ResNet:
  """The ResNet-18 of ``config``, seeded by ``config.seed``.

  Uses the ``rbg`` PRNG: run eagerly, its initialisers compile several times
  faster than threefry's on CPU.
  """
  key = jax.random.key(config.seed, impl="rbg")
  return models.ResNet(num_classes=num_classes, in_channels=in_channels,
                       width_multiplier=config.width_multiplier,
                       dtype=DTYPES[config.dtype], rngs=nnx.Rngs(key))


def make_preprocess(config: Config, image_size: int
                    ) -> Callable[[jax.Array, jax.Array | None], jax.Array]:
  """``(uint8 images, key or None) -> normalised (augmented) float images``.

  Crop padding: the config's, or 4/2/1 px at sizes 32/28/smaller; flips on
  CIFAR-10 under ``flip=auto``.
  """
  padding = flip = 0
  if config.augment:
    padding = config.crop_padding if config.crop_padding >= 0 else (
        4 if image_size >= 32 else 2 if image_size >= 28 else 1)
    flip = config.flip == "on" or (config.flip == "auto"
                                   and config.dataset == "cifar10")
  mean, std = augment.CHANNEL_STATS.get(config.dataset, ((0.5,), (0.25,)))
  return functools.partial(augment.preprocess, mean=mean, std=std,
                           padding=padding, flip=bool(flip))


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Mean softmax cross-entropy with integer labels (float32)."""
  return optax.softmax_cross_entropy_with_integer_labels(
      logits.astype(jnp.float32), labels).mean()


def make_train_step(graphdef: nnx.GraphDef, tx: optax.GradientTransformation,
                    preprocess: Callable, *, seed: int,
                    measure_loss_increase: bool,
                    learning_rate_fn: Callable | None = None) -> Callable:
  """A pure step ``(state, images, labels) -> (state, metrics)``.

  Step ``t`` augments with ``fold_in(key(seed), t)``; ``measure_loss_increase``
  adds ``loss_after`` (same batch, after the update) and ``loss_increased``;
  ``learning_rate_fn(opt_state, step)`` is recorded as ``learning_rate``.
  """

  def loss_fn(params, batch_stats, x, labels):
    model = nnx.merge(graphdef, params, batch_stats, copy=True)
    logits = model(x, train=True)
    return cross_entropy(logits, labels), (nnx.state(model, nnx.BatchStat),
                                           logits)

  def train_step(state, images, labels):
    step = state["step"]
    x = preprocess(images, jax.random.fold_in(jax.random.key(seed), step))
    (loss, (batch_stats, logits)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(state["params"], state["batch_stats"], x,
                               labels)
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    metrics = {"loss": loss,
               "accuracy": jnp.mean(jnp.argmax(logits, -1) == labels)}
    if learning_rate_fn is not None:
      metrics["learning_rate"] = learning_rate_fn(state["opt_state"], step)
    if measure_loss_increase:
      metrics["loss_after"] = loss_fn(params, state["batch_stats"], x,
                                      labels)[0]
      metrics["loss_increased"] = metrics["loss_after"] > loss
    return {"step": step + 1, "params": params, "batch_stats": batch_stats,
            "opt_state": opt_state}, metrics

  return train_step


def make_eval_step(graphdef: nnx.GraphDef, preprocess: Callable) -> Callable:
  """``(state, images, labels, mask) -> sums`` of loss, correct and count."""

  def eval_step(state, images, labels, mask):
    model = nnx.merge(graphdef, state["params"], state["batch_stats"],
                      copy=True)
    logits = model(preprocess(images, None), train=False)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    return {"loss_sum": jnp.sum(losses * mask),
            "correct": jnp.sum((jnp.argmax(logits, -1) == labels) * mask),
            "count": jnp.sum(mask)}

  return eval_step


def jit_steps(config: Config, tx: optax.GradientTransformation,
              image_shape: tuple[int, ...], num_classes: int,
              mesh: jax.sharding.Mesh, *, measure_loss_increase: bool,
              learning_rate_fn: Callable | None = None
              ) -> tuple[Callable, Callable]:
  """The jitted data-parallel ``(train step, eval step)`` of ``tx``.

  The train step donates its state.
  """
  graphdef = nnx.split(nnx.eval_shape(lambda: build_model(
      config, image_shape[-1], num_classes)), nnx.Param, nnx.BatchStat)[0]
  preprocess = make_preprocess(config, image_shape[0])
  rep, batch = parallel.replicated(mesh), parallel.batch_sharding(mesh)
  return (jax.jit(make_train_step(
      graphdef, tx, preprocess, seed=config.seed,
      measure_loss_increase=measure_loss_increase,
      learning_rate_fn=learning_rate_fn), in_shardings=(rep, batch, batch),
                  out_shardings=(rep, rep), donate_argnums=0),
          jax.jit(make_eval_step(graphdef, preprocess),
                  in_shardings=(rep, batch, batch, batch), out_shardings=rep))


@functools.lru_cache(maxsize=8)
def _programs(program: Config, image_shape: tuple[int, ...], num_classes: int,
              mesh: jax.sharding.Mesh) -> tuple[Callable, Callable]:
  """:func:`jit_steps` of ``make_optimizer``, shared by equal programs."""
  return jit_steps(program, make_optimizer(program), image_shape, num_classes,
                   mesh, measure_loss_increase=program.measure_loss_increase,
                   learning_rate_fn=functools.partial(
                       learning_rate, num_steps=program.fractal_num_steps))


def init_state(config: Config, tx: optax.GradientTransformation,
               in_channels: int, num_classes: int, mesh: jax.sharding.Mesh
               ) -> TrainState:
  """The initial train state, replicated on the mesh.

  Built eagerly on the host (XLA compiles the random initialisers far slower
  than it runs them), identically on every process (same seed), then placed
  with ``make_array_from_callback``, which also works multi-host.
  """
  try:
    host = jax.local_devices(backend="cpu")[0]
  except RuntimeError:  # JAX_PLATFORMS without cpu: use the default device.
    host = jax.local_devices()[0]
  with jax.default_device(host):
    _, params, batch_stats = nnx.split(
        build_model(config, in_channels, num_classes), nnx.Param,
        nnx.BatchStat)
    state = {"step": jnp.zeros((), jnp.int32), "params": params,
             "batch_stats": batch_stats, "opt_state": tx.init(params)}
  sharding = parallel.replicated(mesh)

  def place(x):
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda i: x[i])

  return jax.tree.map(place, state)


def setup(config: Config, dataset: input_pipeline.Dataset,
          mesh: jax.sharding.Mesh
          ) -> tuple[TrainState, Callable, Callable, data.BatchSampler]:
  """``(initial state, train_step, eval_step, sampler)`` on ``mesh``.

  The steps are shared by every run that differs only in rates.
  """
  shape = dataset.train_images.shape[1:]
  program = Config(**{f: getattr(config, f) for f in _PROGRAM_FIELDS})
  train_step, eval_step = _programs(program, shape, dataset.num_classes, mesh)
  state = init_state(config, make_optimizer(config), shape[-1],
                     dataset.num_classes, mesh)
  sampler = data.BatchSampler(dataset.train_images, dataset.train_labels,
                              config.batch_size, config.seed, mesh)
  return state, train_step, eval_step, sampler


def evaluate(eval_step: Callable, state: TrainState,
             dataset: input_pipeline.Dataset, batch_size: int,
             mesh: jax.sharding.Mesh) -> dict[str, float]:
  """Test loss and accuracy over the whole test set."""
  totals = jax.device_get([eval_step(state, *batch) for batch in
                           data.eval_batches(dataset.test_images,
                                             dataset.test_labels, batch_size,
                                             mesh)])
  total = {k: sum(float(t[k]) for t in totals) for k in totals[0]}
  return {"test_loss": total["loss_sum"] / total["count"],
          "test_accuracy": total["correct"] / total["count"]}


def summarize(records: list[dict[str, Any]], num_steps: int,
              cycle: int = 1) -> dict[str, Any]:
  """Summary numbers of a run from its metric records.

  ``final_window_loss`` averages the batch losses of the last quarter of the
  steps; ``final_cycle_end_loss`` only those at multiples of ``cycle`` (the
  iterates that completed a whole fractal cycle, where the Chebyshev
  analysis measures progress).
  """
  train = [r for r in records if r["step"] < num_steps and "loss" in r]
  losses = np.array([r["loss"] for r in train], np.float64)
  out: dict[str, Any] = {"num_steps": num_steps}
  if losses.size:
    first = losses.size - max(1, losses.size // 4)
    window = losses[first:]
    ends = window[np.array([r["step"] for r in train])[first:] % cycle == 0]
    finite = np.isfinite(losses)
    out.update(
        initial_loss=float(losses[0]), final_loss=float(losses[-1]),
        final_window_loss=float(np.mean(window)),
        final_cycle_end_loss=float(np.mean(ends if ends.size else window)),
        min_loss=float(np.nanmin(losses)) if finite.any() else math.nan,
        all_finite=bool(finite.all()))
  if train and "loss_increased" in train[0]:
    after = np.array([r["loss_after"] for r in train], np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
      ratio = after / losses
    out["fraction_loss_increased"] = float(np.mean(
        [bool(r["loss_increased"]) for r in train]))
    ok = np.isfinite(ratio)
    out["max_loss_ratio"] = float(ratio[ok].max()) if ok.any() else math.nan
  if train and "learning_rate" in train[0]:
    lrs = np.array([r["learning_rate"] for r in train], np.float64)
    out.update(max_learning_rate=float(lrs.max()),
               mean_learning_rate=float(lrs.mean()))
  final = [r for r in records if r["step"] == num_steps]
  if final:
    out.update({k: v for k, v in final[-1].items() if k.startswith("test_")})
  return out


def train(config: Config, workdir: str, *,
          dataset: input_pipeline.Dataset | None = None,
          mesh: jax.sharding.Mesh | None = None, desc: str = ""
          ) -> tuple[TrainState, dict[str, Any]]:
  """Trains one run of ``config`` in ``workdir``: ``(final state, summary)``.

  Writes ``config.json``, ``metrics.jsonl`` (one record per step, and the
  test metrics at ``step == num_steps``), ``checkpoints/`` and, last,
  ``summary.json`` (process 0 only). Restarted with the same config it
  resumes from the latest checkpoint. On several hosts ``workdir`` must be
  on a file system they share.
  """
  if mesh is None:
    parallel.maybe_initialize_distributed(config.distributed)
    mesh = parallel.make_mesh()
  if dataset is None:
    dataset = data.load(config)
  resume.claim(workdir, config)
  state, train_step, eval_step, sampler = setup(config, dataset, mesh)
  per_step = train_loop.per_step(
      lambda state, step: train_step(state, *sampler.batch(step)))
  schedule = fractal_optax.fractal_chebyshev_schedule(
      config.fractal_num_steps, **rate_hyperparams(config))
  diverged = False

  def chunk_fn(state, start, n):
    # A non-finite loss never recovers: record NaN for the rest, skip the
    # compute (the sweep stops paying for dead runs).
    nonlocal diverged
    if diverged:
      nan = np.full(n, np.nan, np.float32)
      metrics = {"loss": nan, "accuracy": nan, "learning_rate": np.asarray(
          schedule(np.arange(start, start + n)))}
      if config.measure_loss_increase:
        metrics.update(loss_after=nan, loss_increased=np.zeros(n, bool))
      return state, metrics
    state, metrics = per_step(state, start, n)
    diverged = not np.isfinite(metrics["loss"]).all()
    return state, metrics

  start_time = time.perf_counter()
  state = train_loop.run_loop(
      state, chunk_fn, num_steps=config.num_steps, workdir=workdir,
      checkpoint_every=config.checkpoint_every, chunk_size=config.log_every,
      eval_fn=lambda s: evaluate(eval_step, s, dataset,
                                 config.eval_batch_size, mesh),
      eval_every=config.eval_every, progress=config.progress, desc=desc)
  if jax.process_count() > 1:  # Process 0's files are complete: read them.
    multihost_utils.sync_global_devices(f"resnet {workdir}")
  records = metrics_lib.read_metrics(
      os.path.join(workdir, metrics_lib.METRICS_FILE))
  summary = summarize(records, config.num_steps, config.fractal_num_steps)
  summary.update(
      learning_rate=config.learning_rate, schedule=config.schedule,
      optimizer={"fractal_sgd": dict(rate_hyperparams(config),
                                     num_steps=config.fractal_num_steps)},
      multipliers=multipliers(config).tolist(),
      wall_time_s_this_invocation=time.perf_counter() - start_time,
      environment=dict(files.environment(), process_count=jax.process_count(),
                       mesh={"axis": parallel.DATA_AXIS,
                             "size": int(mesh.devices.size)}))
  files.write_summary(workdir, summary)
  return state, summary


def train_and_evaluate(config: Config, workdir: str,
                       **kwargs: Any) -> dict[str, Any]:
  """:func:`train`'s summary (``mode=train``)."""
  return train(config, workdir, **kwargs)[1]

