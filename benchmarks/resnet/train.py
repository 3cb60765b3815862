"""Data-parallel training of ResNet-18 with a (fractal) learning-rate schedule.

``train_and_evaluate(config, workdir)`` runs one training run: plain SGD (or
heavy ball/Nesterov, weight decay as options) whose learning rate at update
``t`` is

.. math::

  \\eta_t = \\eta_{\\text{base}} \\cdot \\mu_{t \\bmod T},

with multipliers ``mu`` all 1 (``schedule=constant``) or one cycle of the
fractal Chebyshev schedule (``schedule=fractal``, from
``fractal_optax.fractal_chebyshev_schedule``) repeated through training. Base
rate and multipliers live in the optimiser state
(``optax.inject_hyperparams``), so every run of an experiment reuses one
compiled train step.

The step runs on every visible device (``benchmarks.resnet.parallel``): the
batch is sharded over a ``'data'`` mesh axis, parameters and optimiser state
are replicated, and BatchNorm statistics are those of the global batch.
Images cross to the devices as ``uint8`` and are augmented there
(``benchmarks.resnet.augment``); the data order and the augmentation keys
depend only on ``(seed, step)``, and checkpoints (orbax, through
``benchmarks.harness.run_loop``) hold the whole state, so a run killed and
restarted with the same command ends exactly where an uninterrupted one does.

Per step it records (see the harness's step convention) the loss and accuracy
of the batch before the update, the learning rate of the update and, with
``measure_loss_increase``, the loss of the same batch after the update and
whether the update increased it. The test set is evaluated at the end.

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

from benchmarks import harness
from benchmarks import io_utils
from benchmarks import input_pipeline
from benchmarks.resnet import augment
from benchmarks.resnet import models
from benchmarks.resnet import parallel
from benchmarks.resnet.configs import Config

TrainState = dict[str, Any]

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


# ---------------------------------------------------------------------------
# Configuration checks and derived settings.
# ---------------------------------------------------------------------------


def check_config(config: Config) -> None:
  """Raises ``ValueError`` naming the first invalid field of ``config``."""
  choices = {
      "dtype": tuple(_DTYPES),
      "schedule": ("constant", "fractal"),
      "fractal_normalization": ("mean", "min"),
      "flip": ("auto", "on", "off"),
      "distributed": ("auto", "on", "off"),
      "mode": ("experiment", "train", "throughput"),
  }
  for name, allowed in choices.items():
    value = getattr(config, name)
    if value not in allowed:
      raise ValueError(f"{name} must be one of {allowed}, got {name}={value!r}")
  positive = ("batch_size", "eval_batch_size", "fractal_num_steps",
              "log_every")
  for name in positive:
    value = getattr(config, name)
    if value < 1:
      raise ValueError(f"{name} must be >= 1, got {name}={value}")
  for name in ("num_steps", "num_train", "num_test", "image_size",
               "eval_every", "checkpoint_every", "sweep_steps", "momentum",
               "weight_decay", "fractal_base_lr", "fractal_peak_limit"):
    value = getattr(config, name)
    if value < 0:
      raise ValueError(f"{name} must be >= 0, got {name}={value}")
  if not config.learning_rate > 0:
    raise ValueError(
        f"learning_rate must be positive, got {config.learning_rate=}")
  if not config.fractal_kappa > 1:
    raise ValueError(
        f"fractal_kappa must be > 1, got {config.fractal_kappa=}")
  if config.nesterov and config.momentum == 0:
    raise ValueError(
        f"nesterov needs momentum > 0, got {config.momentum=}")
  if not config.width_multiplier > 0:
    raise ValueError(
        f"width_multiplier must be positive, got {config.width_multiplier=}")


def crop_padding(config: Config, image_size: int) -> int:
  """Random-crop padding: the config's, or 4/2/1 px at 32/28/smaller sizes."""
  if not config.augment:
    return 0
  if config.crop_padding >= 0:
    return config.crop_padding
  return 4 if image_size >= 32 else 2 if image_size >= 28 else 1


def use_flip(config: Config) -> bool:
  """Horizontal flips: on for CIFAR-10 under ``flip=auto``."""
  if not config.augment or config.flip == "off":
    return False
  return config.flip == "on" or config.dataset == "cifar10"


def lr_multipliers(config: Config) -> np.ndarray:
  """One cycle (length T) of the learning-rate multipliers, float32.

  ``constant``: all ones. ``fractal``: the fractal Chebyshev step sizes for
  curvatures ``[1 / kappa, 1]`` (largest about ``kappa``, smallest about 1),
  divided by their mean (``fractal_normalization=mean``) or left so that the
  smallest is about 1 (``min``).
  """
  t = config.fractal_num_steps
  if config.schedule == "constant":
    return np.ones(t, np.float32)
  import fractal_optax  # pylint: disable=g-import-not-at-top

  schedule = fractal_optax.fractal_chebyshev_schedule(
      t, 1.0 / config.fractal_kappa, 1.0)
  steps = np.asarray(schedule(jnp.arange(t)), np.float64)
  if config.fractal_normalization == "mean":
    steps = steps / steps.mean()
  return steps.astype(np.float32)


def _sgd_with_multipliers(learning_rate: jax.Array, multipliers: jax.Array,
                          weight_decay: Any, momentum: Any,
                          nesterov: bool) -> optax.GradientTransformation:
  """SGD with rate ``learning_rate * multipliers[count % T]``."""
  num = multipliers.shape[0]

  def schedule(count):
    return learning_rate * multipliers[count % num]

  parts = []
  if weight_decay is not None:
    parts.append(optax.add_decayed_weights(weight_decay))
  parts.append(optax.sgd(schedule, momentum=momentum, nesterov=nesterov))
  return optax.chain(*parts)


def make_optimizer(config: Config, learning_rate: float | None = None
                   ) -> optax.GradientTransformation:
  """The run's optimiser, base rate and multipliers held in its state.

  Args:
    config: the run's config.
    learning_rate: base learning rate (default ``config.learning_rate``).

  Returns:
    ``optax.inject_hyperparams(...)`` of SGD with the multiplied rate; its
    state's ``hyperparams`` hold ``learning_rate`` and ``multipliers``.
  """
  lr = config.learning_rate if learning_rate is None else learning_rate
  return optax.inject_hyperparams(
      _sgd_with_multipliers, static_args=("nesterov",),
      hyperparam_dtype=jnp.float32)(
          learning_rate=lr,
          multipliers=lr_multipliers(config),
          weight_decay=config.weight_decay if config.weight_decay else None,
          momentum=config.momentum if config.momentum else None,
          nesterov=config.nesterov)


def injected_learning_rate(opt_state: Any, step: jax.Array) -> jax.Array:
  """The learning rate that ``make_optimizer``'s update ``step`` uses."""
  hp = opt_state.hyperparams
  mult = hp["multipliers"]
  return hp["learning_rate"] * mult[step % mult.shape[0]]


def build_model(config: Config, in_channels: int, num_classes: int
                ) -> models.ResNet:
  """The ResNet-18 of ``config`` (seeded by ``config.seed``).

  Initialised with the ``rbg`` PRNG: run eagerly, its initialisers compile
  several times faster than threefry's on CPU.
  """
  key = jax.random.key(config.seed, impl="rbg")
  return models.ResNet(num_classes=num_classes, in_channels=in_channels,
                       width_multiplier=config.width_multiplier,
                       dtype=_DTYPES[config.dtype], rngs=nnx.Rngs(key))


# ---------------------------------------------------------------------------
# Pure step functions.
# ---------------------------------------------------------------------------


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """Mean softmax cross-entropy with integer labels (float32)."""
  return optax.softmax_cross_entropy_with_integer_labels(
      logits.astype(jnp.float32), labels).mean()


def make_train_step(
    graphdef: nnx.GraphDef, tx: optax.GradientTransformation, *,
    preprocess: Callable[[jax.Array, jax.Array | None], jax.Array],
    seed: int, measure_loss_increase: bool,
    learning_rate_fn: Callable[[Any, jax.Array], jax.Array] | None = None,
) -> Callable[[TrainState, jax.Array, jax.Array], tuple[TrainState, dict]]:
  """A pure train step ``(state, images, labels) -> (state, metrics)``.

  Args:
    graphdef: the model's graph definition (``nnx.split``).
    tx: the optimiser.
    preprocess: ``(uint8 images, key or None) -> float images``.
    seed: augmentation seed; step ``t`` uses ``fold_in(key(seed), t)``.
    measure_loss_increase: also return ``loss_after`` (same batch, after the
      update) and ``loss_increased``.
    learning_rate_fn: ``(opt_state, step) -> rate`` to record (None: no
      ``learning_rate`` metric).

  Returns:
    The step function (not jitted).
  """

  def loss_fn(params, batch_stats, x, labels):
    model = nnx.merge(graphdef, params, batch_stats, copy=True)
    logits = model(x, train=True)
    loss = cross_entropy(logits, labels)
    new_stats = nnx.state(model, nnx.BatchStat)
    return loss, (new_stats, logits)

  def train_step(state, images, labels):
    step = state["step"]
    key = jax.random.fold_in(jax.random.key(seed), step)
    x = preprocess(images, key)
    (loss, (batch_stats, logits)), grads = jax.value_and_grad(
        loss_fn, has_aux=True)(state["params"], state["batch_stats"], x,
                               labels)
    updates, opt_state = tx.update(grads, state["opt_state"], state["params"])
    params = optax.apply_updates(state["params"], updates)
    metrics = {
        "loss": loss,
        "accuracy": jnp.mean(jnp.argmax(logits, -1) == labels),
    }
    if learning_rate_fn is not None:
      metrics["learning_rate"] = learning_rate_fn(state["opt_state"], step)
    if measure_loss_increase:
      loss_after, _ = loss_fn(params, state["batch_stats"], x, labels)
      metrics["loss_after"] = loss_after
      metrics["loss_increased"] = loss_after > loss
    new_state = {"step": step + 1, "params": params,
                 "batch_stats": batch_stats, "opt_state": opt_state}
    return new_state, metrics

  return train_step


def make_eval_step(graphdef: nnx.GraphDef,
                   preprocess: Callable[[jax.Array, Any], jax.Array]
                   ) -> Callable[..., dict[str, jax.Array]]:
  """``(state, images, labels, mask) -> sums`` of loss, correct and count."""

  def eval_step(state, images, labels, mask):
    model = nnx.merge(graphdef, state["params"], state["batch_stats"],
                      copy=True)
    logits = model(preprocess(images, None), train=False).astype(jnp.float32)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    correct = jnp.argmax(logits, -1) == labels
    return {"loss_sum": jnp.sum(losses * mask),
            "correct": jnp.sum(correct * mask),
            "count": jnp.sum(mask)}

  return eval_step


# ---------------------------------------------------------------------------
# Compiled functions, cached by everything that changes the program.
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _ProgramKey:
  """The config fields a compiled train step depends on."""

  in_channels: int
  num_classes: int
  image_size: int
  dataset: str
  width_multiplier: float
  dtype: str
  seed: int
  padding: int
  flip: bool
  measure_loss_increase: bool
  num_multipliers: int
  has_momentum: bool
  nesterov: bool
  has_weight_decay: bool
  devices: tuple[int, ...]

  @classmethod
  def from_config(cls, config: Config, dataset: input_pipeline.Dataset,
                  mesh: jax.sharding.Mesh) -> _ProgramKey:
    size = dataset.train_images.shape[1]
    return cls(
        in_channels=dataset.train_images.shape[-1],
        num_classes=dataset.num_classes, image_size=size,
        dataset=config.dataset, width_multiplier=config.width_multiplier,
        dtype=config.dtype, seed=config.seed,
        padding=crop_padding(config, size), flip=use_flip(config),
        measure_loss_increase=config.measure_loss_increase,
        num_multipliers=config.fractal_num_steps,
        has_momentum=bool(config.momentum), nesterov=config.nesterov,
        has_weight_decay=bool(config.weight_decay),
        devices=tuple(d.id for d in mesh.devices.flat))


def make_preprocess(dataset: str, padding: int, flip: bool
                    ) -> Callable[[jax.Array, jax.Array | None], jax.Array]:
  """``(uint8 images, key or None) -> normalised (augmented) float images``."""
  mean, std = augment.CHANNEL_STATS.get(dataset, ((0.5,), (0.25,)))
  return functools.partial(augment.preprocess, mean=mean, std=std,
                           padding=padding, flip=flip)


def _program_config(key: _ProgramKey) -> Config:
  """A config with exactly the fields of ``key`` (others at their defaults)."""
  return Config(
      dataset=key.dataset, width_multiplier=key.width_multiplier,
      dtype=key.dtype, seed=key.seed,
      measure_loss_increase=key.measure_loss_increase,
      fractal_num_steps=key.num_multipliers,
      momentum=0.9 if key.has_momentum else 0.0, nesterov=key.nesterov,
      weight_decay=1e-4 if key.has_weight_decay else 0.0)


@functools.lru_cache(maxsize=8)
def _programs(key: _ProgramKey, mesh: jax.sharding.Mesh
              ) -> tuple[nnx.GraphDef, Callable, Callable]:
  """``(graphdef, jitted train step, jitted eval step)`` for ``key``.

  Rates, multipliers, momentum and weight-decay values are read from the
  optimiser state, so runs that differ only in them share these programs.
  """
  config = _program_config(key)
  abstract = nnx.eval_shape(
      lambda: build_model(config, key.in_channels, key.num_classes))
  graphdef, _, _ = nnx.split(abstract, nnx.Param, nnx.BatchStat)
  preprocess = make_preprocess(key.dataset, key.padding, key.flip)
  step = make_train_step(
      graphdef, make_optimizer(config), preprocess=preprocess,
      seed=key.seed, measure_loss_increase=key.measure_loss_increase,
      learning_rate_fn=injected_learning_rate)
  rep, data = parallel.replicated(mesh), parallel.batch_sharding(mesh)
  train_step = jax.jit(step, in_shardings=(rep, data, data),
                       out_shardings=(rep, rep), donate_argnums=0)
  eval_step = jax.jit(make_eval_step(graphdef, preprocess),
                      in_shardings=(rep, data, data, data), out_shardings=rep)
  return graphdef, train_step, eval_step


def init_state(config: Config, tx: optax.GradientTransformation,
               in_channels: int, num_classes: int, mesh: jax.sharding.Mesh
               ) -> TrainState:
  """The initial train state, replicated on the mesh.

  Built eagerly on the host (XLA takes far longer to compile the random
  initialisers than to run them), identically on every process (same seed),
  then placed with ``make_array_from_callback``, which also works multi-host.
  """
  try:
    host = jax.local_devices(backend="cpu")[0]
  except RuntimeError:  # JAX_PLATFORMS without cpu: use the default device.
    host = jax.local_devices()[0]
  with jax.default_device(host):
    model = build_model(config, in_channels, num_classes)
    _, params, batch_stats = nnx.split(model, nnx.Param, nnx.BatchStat)
    state = {"step": jnp.zeros((), jnp.int32), "params": params,
             "batch_stats": batch_stats, "opt_state": tx.init(params)}
  sharding = parallel.replicated(mesh)

  def place(x):
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda i: x[i])

  return jax.tree.map(place, state)


# ---------------------------------------------------------------------------
# Data.
# ---------------------------------------------------------------------------


def downsample(images: np.ndarray, size: int) -> np.ndarray:
  """Averages (N, H, W, C) ``uint8`` images in blocks down to ``size``."""
  n, h, w, c = images.shape
  if size <= 0 or h % size or w % size or h != w:
    raise ValueError(
        f"image_size must divide the {h}x{w} images, got image_size={size}")
  k = h // size
  blocks = images.reshape(n, size, k, size, k, c).astype(np.float32)
  return np.round(blocks.mean(axis=(2, 4))).astype(np.uint8)


def load_data(config: Config) -> input_pipeline.Dataset:
  """The config's dataset, cut to ``num_train``/``num_test`` and resized."""
  ds = input_pipeline.load_dataset(config.dataset, config.data_dir)
  ds = input_pipeline.take(ds, config.num_train or None,
                           config.num_test or None)
  if config.image_size and config.image_size != ds.train_images.shape[1]:
    ds = ds._replace(
        train_images=downsample(ds.train_images, config.image_size),
        test_images=downsample(ds.test_images, config.image_size))
  return ds


class BatchSampler:
  """Deterministic shuffled batches: step ``t`` depends on ``(seed, t)`` only.

  Epoch ``e`` visits the training set in the order
  ``default_rng([seed, e]).permutation(n)``, in ``n // batch_size`` full
  batches (the remainder is dropped), so any step's batch can be rebuilt
  after a restart. Each process builds only its own rows of the global batch.
  """

  def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int,
               seed: int, mesh: jax.sharding.Mesh):
    if images.shape[0] < batch_size:
      raise ValueError(
          f"batch_size must not exceed the {images.shape[0]} training images, "
          f"got {batch_size=}")
    parallel.check_batch_size(batch_size, mesh)
    self.images, self.labels = images, labels
    self.batch_size, self.seed, self.mesh = batch_size, seed, mesh
    self.steps_per_epoch = images.shape[0] // batch_size
    self.rows = parallel.process_rows(mesh, batch_size)
    self._epoch, self._perm = -1, None

  def indices(self, step: int) -> np.ndarray:
    """Indices of the global batch of ``step``."""
    epoch, i = divmod(int(step), self.steps_per_epoch)
    if epoch != self._epoch:
      rng = np.random.default_rng([self.seed, epoch])
      self._epoch, self._perm = epoch, rng.permutation(self.images.shape[0])
    return self._perm[i * self.batch_size:(i + 1) * self.batch_size]

  def batch(self, step: int) -> tuple[jax.Array, jax.Array]:
    """The sharded ``(uint8 images, int32 labels)`` of ``step``."""
    idx = self.indices(step)[self.rows]
    return parallel.global_batch(self.mesh, self.images[idx], self.labels[idx])


def evaluate(eval_step: Callable, state: TrainState, images: np.ndarray,
             labels: np.ndarray, batch_size: int, mesh: jax.sharding.Mesh
             ) -> dict[str, float]:
  """Test loss and accuracy over all of ``images`` (last batch padded)."""
  parallel.check_batch_size(batch_size, mesh, "eval_batch_size")
  rows = parallel.process_rows(mesh, batch_size)
  totals = []
  for start in range(0, images.shape[0], batch_size):
    x = images[start:start + batch_size]
    y = labels[start:start + batch_size]
    mask = np.ones(x.shape[0], np.float32)
    pad = batch_size - x.shape[0]
    if pad:
      x = np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)])
      y = np.concatenate([y, np.zeros(pad, y.dtype)])
      mask = np.concatenate([mask, np.zeros(pad, np.float32)])
    totals.append(eval_step(state, *parallel.global_batch(
        mesh, x[rows], y[rows], mask[rows])))
  totals = jax.device_get(totals)
  count = sum(float(t["count"]) for t in totals)
  return {"test_loss": sum(float(t["loss_sum"]) for t in totals) / count,
          "test_accuracy": sum(float(t["correct"]) for t in totals) / count}


def setup(config: Config, dataset: input_pipeline.Dataset,
          mesh: jax.sharding.Mesh
          ) -> tuple[TrainState, Callable, Callable, BatchSampler]:
  """Everything a run needs, placed on ``mesh``.

  Args:
    config: the run's config.
    dataset: its data.
    mesh: the device mesh.

  Returns:
    ``(initial state, train_step, eval_step, sampler)``: the jitted
    ``train_step(state, images, labels) -> (state, metrics)`` (it donates
    ``state``) and ``eval_step(state, images, labels, mask) -> sums`` are
    shared by every run with the same program (see ``_ProgramKey``);
    ``sampler.batch(step)`` gives the sharded batch of a step.
  """
  check_config(config)
  key = _ProgramKey.from_config(config, dataset, mesh)
  _, train_step, eval_step = _programs(key, mesh)
  state = init_state(config, make_optimizer(config), key.in_channels,
                     key.num_classes, mesh)
  sampler = BatchSampler(dataset.train_images, dataset.train_labels,
                         config.batch_size, config.seed, mesh)
  return state, train_step, eval_step, sampler


# ---------------------------------------------------------------------------
# One run.
# ---------------------------------------------------------------------------


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
    steps = np.array([r["step"] for r in train])[first:]
    ends = window[steps % cycle == 0]
    out.update(
        initial_loss=float(losses[0]),
        final_loss=float(losses[-1]),
        final_window_loss=float(np.mean(window)),
        final_cycle_end_loss=float(np.mean(ends if ends.size else window)),
        min_loss=float(np.nanmin(losses)) if np.isfinite(losses).any()
        else math.nan,
        all_finite=bool(np.isfinite(losses).all()),
    )
  if train and "loss_increased" in train[0]:
    inc = np.array([bool(r["loss_increased"]) for r in train])
    after = np.array([r["loss_after"] for r in train], np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
      ratio = after / losses
    out["fraction_loss_increased"] = float(inc.mean())
    finite = np.isfinite(ratio)
    out["max_loss_ratio"] = float(ratio[finite].max()) if finite.any() else (
        math.nan)
  if train and "learning_rate" in train[0]:
    lrs = np.array([r["learning_rate"] for r in train], np.float64)
    out.update(max_learning_rate=float(lrs.max()),
               mean_learning_rate=float(lrs.mean()))
  final = [r for r in records if r["step"] == num_steps]
  if final:
    out.update({k: v for k, v in final[-1].items()
                if k.startswith("test_")})
  return out


def train_and_evaluate(config: Config, workdir: str,
                       dataset: input_pipeline.Dataset | None = None,
                       mesh: jax.sharding.Mesh | None = None,
                       desc: str = "") -> dict[str, Any]:
  """Trains one run of ``config`` in ``workdir`` and evaluates it.

  Writes ``config.json``, ``metrics.jsonl`` (one record per step and the
  final test metrics at ``step == num_steps``), ``checkpoints/`` and, last,
  ``summary.json``. Restarted with the same config it resumes from the latest
  checkpoint.

  Args:
    config: the run's config (``learning_rate``, ``schedule``, ...).
    workdir: the run's output directory.
    dataset: the data (default: ``load_data(config)``).
    mesh: the device mesh (default: all devices).
    desc: progress-bar label.

  Returns:
    The summary dict (also written to ``summary.json``).
  """
  check_config(config)
  if mesh is None:
    parallel.maybe_initialize_distributed(config.distributed)
    mesh = parallel.make_mesh()
  if dataset is None:
    dataset = load_data(config)
  harness.check_workdir_config(workdir, config, ignore=("progress",))
  state, train_step, eval_step, sampler = setup(config, dataset, mesh)

  def step_fn(state, step):
    return train_step(state, *sampler.batch(step))

  per_step = harness.per_step(step_fn)
  diverged = False

  def chunk_fn(state, start, n):
    # Once the loss is not finite the run cannot recover: skip the compute
    # and record NaN for the rest (the sweep stops paying for dead runs).
    nonlocal diverged
    if diverged:
      nan = np.full(n, np.nan, np.float32)
      mult = lr_multipliers(config)
      lrs = np.float32(config.learning_rate) * mult[
          np.arange(start, start + n) % mult.size]
      metrics = {"loss": nan, "accuracy": nan, "learning_rate": lrs}
      if config.measure_loss_increase:
        metrics.update(loss_after=nan, loss_increased=np.zeros(n, bool))
      return state, metrics
    state, metrics = per_step(state, start, n)
    diverged = not np.isfinite(metrics["loss"]).all()
    return state, metrics

  def eval_fn(state):
    return evaluate(eval_step, state, dataset.test_images,
                    dataset.test_labels, config.eval_batch_size, mesh)

  start_time = time.perf_counter()
  state = harness.run_loop(
      state, chunk_fn, num_steps=config.num_steps, workdir=workdir,
      checkpoint_every=config.checkpoint_every, chunk_size=config.log_every,
      eval_fn=eval_fn, eval_every=config.eval_every,
      progress=config.progress, desc=desc)
  records = harness.read_metrics(os.path.join(workdir, harness.METRICS_FILE))
  summary = summarize(records, config.num_steps, config.fractal_num_steps)
  summary.update(
      learning_rate=config.learning_rate, schedule=config.schedule,
      multipliers=lr_multipliers(config).tolist(),
      wall_time_s_this_invocation=time.perf_counter() - start_time,
      environment=_environment(mesh))
  harness.write_summary(workdir, summary)
  return summary


def _environment(mesh: jax.sharding.Mesh) -> dict[str, Any]:
  env = io_utils.environment()
  env["mesh"] = {"axis": parallel.DATA_AXIS, "size": int(mesh.devices.size)}
  env["process_count"] = jax.process_count()
  return env
