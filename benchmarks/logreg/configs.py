"""Named configurations of the logistic-regression experiment.

Every preset is a frozen ``Config`` that checks itself; any field can be
overridden on the command line with ``--set key=value``::

  python -m benchmarks.logreg --preset quick --set l2=3e-3
"""

from __future__ import annotations

import dataclasses

from benchmarks import config as config_lib
from benchmarks import input_pipeline

MODES = ("compare", "sweep")
MAX_CURVATURE_CHOICES = ("estimate", "global")


@dataclasses.dataclass(frozen=True)
class Config:
  """One comparison (``mode="compare"``) or a sweep (``mode="sweep"``).

  Attributes:
    mode: ``compare`` (every method at ``l2``, per-step metrics, Figure 5)
      or ``sweep`` (steps to epsilon over ``sweep_l2`` x ``sweep_cycles``).
    dataset, data_dir: ``input_pipeline`` name (``mnist5k`` is embedded) and
      directory (None: the default); ``num_train``, ``num_test``: examples
      kept (0: all).
    l2: lambda in f = mean cross-entropy + l2/2 |theta|^2; m = l2.
    num_steps: full-batch steps per method; ``epsilon``: the target
      (f - f*) / (f_0 - f*).
    constant_grid: constant steps, as multiples of 1/M (M the estimate).
    max_curvature: the M of the schedules and momentum methods: ``estimate``
      (``estimate_curvature`` at the start and the optimum, the larger) or
      ``global`` (lambda + lambda_max(X~^T X~/n)/2, valid everywhere).
    bound_cycle: T of ``fractal`` (0: the smallest T with Chebyshev bound
      squared <= epsilon); ``short_cycle``: T of ``fractal_short`` (0: the
      power of two nearest sqrt(kappa) / 2).
    adaptive_num_steps: T of ``adaptive`` (``adaptive_fractal_sgd``, which
      measures M itself; 0: the library's default).
    adaptive_seeds: ``seed``s of ``adaptive`` (its Lanczos start vector);
      the first is the ``adaptive`` run, and a sweep also runs the others to
      show how far the count moves (runs on the edge of stability are
      chaotic: float rounding, or this seed, decides which cycles fail).
    curvature_iterations, lbfgs_steps: Lanczos iterations for M, L-BFGS
      iterations for f*.
    checkpoint_every, eval_every: periods in steps (0: only at the end); keep
      them multiples of one another (one compile per chunk length).
    seed: PRNG seed (curvature estimation); ``progress``: progress bars.
    sweep_l2, sweep_cycles, sweep_steps: the sweep's lambdas, cycle lengths
      and steps per run.
  """

  mode: str = "compare"
  dataset: str = "mnist5k"
  data_dir: str | None = None
  num_train: int = 0
  num_test: int = 0
  l2: float = 1e-2
  num_steps: int = 2000
  epsilon: float = 1e-4
  constant_grid: tuple[float, ...] = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0)
  max_curvature: str = "estimate"
  bound_cycle: int = 0
  short_cycle: int = 0
  adaptive_num_steps: int = 0
  adaptive_seeds: tuple[int, ...] = (0, 1, 2)
  curvature_iterations: int = 100
  lbfgs_steps: int = 1000
  checkpoint_every: int = 500
  eval_every: int = 100
  seed: int = 0
  progress: bool = True
  sweep_l2: tuple[float, ...] = (1e-1, 1e-2, 3e-3, 1e-3)
  sweep_cycles: tuple[int, ...] = (4, 8, 16, 32, 64, 128)
  sweep_steps: int = 1500

  def __post_init__(self):
    config_lib.one_of("mode", self.mode, MODES)
    config_lib.one_of("dataset", self.dataset, input_pipeline.DATASETS)
    config_lib.one_of(
      "max_curvature", self.max_curvature, MAX_CURVATURE_CHOICES
    )
    for name in (
      "l2",
      "num_steps",
      "epsilon",
      "constant_grid",
      "curvature_iterations",
      "lbfgs_steps",
      "sweep_l2",
      "sweep_cycles",
      "sweep_steps",
    ):
      config_lib.positive(name, getattr(self, name))
    for name in (
      "num_train",
      "num_test",
      "bound_cycle",
      "short_cycle",
      "adaptive_num_steps",
      "adaptive_seeds",
      "checkpoint_every",
      "eval_every",
    ):
      config_lib.non_negative(name, getattr(self, name))
    for name in ("constant_grid", "sweep_l2", "sweep_cycles", "adaptive_seeds"):
      config_lib.non_empty(name, getattr(self, name))
    config_lib.require(
      self.epsilon < 1, f"epsilon must be < 1, got epsilon={self.epsilon!r}."
    )


def get_config(name: str = "default") -> Config:
  """Returns the preset ``name`` (see ``PRESETS``)."""
  if name not in PRESETS:
    raise ValueError(
      f"Unknown preset: got {name=}; expected one of {sorted(PRESETS)}."
    )
  return PRESETS[name]


PRESETS: dict[str, Config] = {
  # The paper's Figure 5 setting on the embedded 5k MNIST subset.
  "default": Config(),
  # CI: a small subset, few steps; exercises every code path in seconds.
  "quick": Config(
    num_train=500,
    num_test=200,
    num_steps=120,
    constant_grid=(1.0, 2.0),
    curvature_iterations=20,
    lbfgs_steps=200,
    checkpoint_every=40,
    eval_every=40,
    progress=False,
    sweep_l2=(1e-1, 1e-2),
    sweep_cycles=(4, 16),
    sweep_steps=100,
    adaptive_seeds=(0, 1),
  ),
  # Fashion-MNIST (Debian's files): the first 5,000 training images (the
  # size of the default problem), all 10,000 test images.
  "fashion": Config(dataset="fashion_mnist", num_train=5000, num_test=0),
  # The lambda x T map on the embedded subset, and on Fashion-MNIST's.
  "sweep": Config(mode="sweep"),
  "sweep_fashion": Config(
    mode="sweep", dataset="fashion_mnist", num_train=5000, num_test=0
  ),
  # The same two with M the global curvature bound (valid everywhere).
  "global": Config(max_curvature="global"),
  "sweep_global": Config(mode="sweep", max_curvature="global"),
}
