"""Named configurations of the quadratic benchmark (the project's main job).

Every preset is a frozen ``Config``; any field can be overridden from the
command line (``--set key=value``, see ``benchmarks.cli``); ``__post_init__``
checks every preset and override.

Presets:

* ``default``: the full benchmark (all five experiments, the targets of the
  issues); about 4 minutes on 2 shared CPU cores, of which the adaptive part
  takes about one (mostly compiling one adaptive scan per cycle length).
* ``quick``: the same code on small grids, under a minute (CI smoke test).
"""

from __future__ import annotations

import dataclasses

from benchmarks import config as checks


@dataclasses.dataclass(frozen=True)
class Config:
  """All settings of one run of the quadratic benchmark.

  Problems have Hessian spectrum ``[m, M] = [1/κ, 1]`` (log-spaced, both ends
  included), solution ``x*`` a random unit vector and start ``x_0 = 0``.

  Attributes:
    seed: seed of every random draw (rotations, solutions, random order,
      gradient noise).
    chunk_size: steps per jitted ``lax.scan`` call (one compile per optimiser
      kind, dtype and shape; runs are strings of chunks).
    orders_dim: dimension of the dense (randomly rotated) problems of the
      orders/precision and noise experiments.
    orders_kappas: condition numbers of the orders/precision grid.
    orders_num_steps: cycle lengths T of the orders/precision grid (powers of
      two and others).
    orders_dtypes: dtypes of the orders/precision grid.
    profile_max_steps: compute ``stability_profile`` for T up to this
      (its cost grows like T²).
    profile_oversample: evaluation points per step of ``stability_profile``
      (block maxima are sampled to a relative error of about
      ``1/oversample²``).
    figure_kappa: κ of the error-against-iteration figure (and of the float32
      horizon target).
    figure_num_steps: T of the error-against-iteration figure.
    accel_dim: dimension of the diagonal problems of the acceleration
      experiment.
    accel_kappas: condition numbers of the acceleration experiment.
    target_kappa: κ at which the GD and heavy-ball ratios are evaluated.
    tolerance: ε of the iterations-to-ε count (‖x − x*‖/‖x_0 − x*‖ ≤ ε).
    cycle_lengths: short fractal cycles repeated until ε is reached.
    max_iterations: give up counting after this many iterations.
    timing_dims: sizes of the diagonal float32 problems on which wall time
      per iteration is measured (the first is the target's).
    timing_steps: steps per timed scan, one entry per ``timing_dims``.
    timing_repeats: timed repeats per optimiser (the median is reported).
    noise_kappa: κ of the gradient-noise experiment.
    noise_num_steps: cycle lengths T of the noise experiment.
    noise_scales: noise sizes σ: the noise vector has norm about
      ``σ·‖∇f(x_0)‖`` (0: the noiseless reference, run once).
    noise_repeats: independent noise draws per setting (the median is
      reported).
    negative_kappas: κ of the negative-progress experiment.
    negative_num_steps: T of the negative-progress experiment.
    adaptive_dim: dimension of the diagonal float32 problems of the
      adaptive experiment (``adaptive_fractal_sgd`` with ``M`` unknown).
    adaptive_kappas: condition numbers of the adaptive experiment.
    adaptive_guesses: the ``max_curvature`` guesses, as multiples of the
      true ``M`` (``m`` is given exactly).
    adaptive_tolerance: ε of the adaptive experiment (float32).
    adaptive_budget: an adaptive run gives up after this many times the
      oracle fractal's iterations to ε.
    adaptive_timing_repeats: warm repeats of each run whose median wall time
      is reported.
    progress: draw a progress bar on stderr (does not change results).
  """

  seed: int = 0
  chunk_size: int = 512
  orders_dim: int = 128
  orders_kappas: tuple[float, ...] = (1e2, 1e3, 1e4, 1e5)
  orders_num_steps: tuple[int, ...] = (
      16, 32, 64, 100, 127, 128, 256, 512, 1000, 1024, 2048, 4096, 8192,
      16384)
  orders_dtypes: tuple[str, ...] = ("float64", "float32", "bfloat16")
  profile_max_steps: int = 1024
  profile_oversample: int = 8
  figure_kappa: float = 1e4
  figure_num_steps: int = 256
  accel_dim: int = 256
  accel_kappas: tuple[float, ...] = (
      1e1, 3e1, 1e2, 3e2, 1e3, 3e3, 1e4, 3e4, 1e5)
  target_kappa: float = 1e4
  tolerance: float = 1e-6
  cycle_lengths: tuple[int, ...] = (8, 16, 32, 64)
  max_iterations: int = 2_000_000
  timing_dims: tuple[int, ...] = (1 << 18, 128)
  timing_steps: tuple[int, ...] = (200, 5000)
  timing_repeats: int = 11
  noise_kappa: float = 1e3
  noise_num_steps: tuple[int, ...] = (100, 128)
  noise_scales: tuple[float, ...] = (0.0, 1e-8, 1e-6, 1e-4, 1e-2)
  noise_repeats: int = 5
  negative_kappas: tuple[float, ...] = (1e2, 1e3, 1e4)
  negative_num_steps: tuple[int, ...] = (64, 100, 256)
  adaptive_dim: int = 256
  adaptive_kappas: tuple[float, ...] = (1e2, 1e3, 1e4, 1e5)
  adaptive_guesses: tuple[float, ...] = (0.01, 1.0, 100.0)
  adaptive_tolerance: float = 1e-5
  adaptive_budget: int = 10
  adaptive_timing_repeats: int = 7
  progress: bool = True

  def __post_init__(self):
    for name in ("orders_kappas", "orders_num_steps", "orders_dtypes",
                 "accel_kappas", "cycle_lengths", "timing_dims",
                 "noise_num_steps", "noise_scales", "negative_kappas",
                 "negative_num_steps", "adaptive_kappas", "adaptive_guesses"):
      checks.non_empty(name, getattr(self, name))
    for name in ("chunk_size", "orders_dim", "orders_num_steps", "accel_dim",
                 "tolerance", "cycle_lengths", "max_iterations", "timing_dims",
                 "timing_steps", "timing_repeats", "noise_num_steps",
                 "noise_repeats", "negative_num_steps", "profile_oversample",
                 "adaptive_dim", "adaptive_guesses", "adaptive_tolerance",
                 "adaptive_budget", "adaptive_timing_repeats"):
      checks.positive(name, getattr(self, name))
    checks.non_negative("noise_scales", self.noise_scales)
    checks.one_of("orders_dtypes", self.orders_dtypes,
                  ("float64", "float32", "bfloat16"))
    for name in ("orders_kappas", "accel_kappas", "negative_kappas",
                 "noise_kappa", "adaptive_kappas"):
      value = getattr(self, name)
      checks.require(min(value if isinstance(value, tuple) else (value,)) > 1,
                     f"every κ must be > 1, got {name}={value!r}.")
    checks.require(
        len(self.timing_dims) == len(self.timing_steps),
        "timing_dims and timing_steps need one entry each, got "
        f"timing_dims={self.timing_dims}, timing_steps={self.timing_steps}.")
    for name, value, grid in (
        ("target_kappa", self.target_kappa, "accel_kappas"),
        ("figure_kappa", self.figure_kappa, "orders_kappas"),
        ("figure_num_steps", self.figure_num_steps, "orders_num_steps")):
      checks.require(value in getattr(self, grid), f"{name} must be one of "
                     f"{grid}={getattr(self, grid)}, got {name}={value!r}.")


PRESETS = {
    "default": Config(),
    "quick": Config(
        chunk_size=256,
        orders_dim=32,
        orders_kappas=(1e2, 1e4),
        orders_num_steps=(16, 100, 256),
        profile_max_steps=256,
        figure_num_steps=256,
        accel_dim=32,
        accel_kappas=(1e1, 1e2, 1e3),
        target_kappa=1e3,
        cycle_lengths=(8, 16),
        max_iterations=100_000,
        timing_dims=(4096,),
        timing_steps=(200,),
        timing_repeats=3,
        noise_num_steps=(64,),
        noise_scales=(0.0, 1e-6, 1e-2),
        noise_repeats=2,
        negative_kappas=(1e3,),
        negative_num_steps=(64,),
        adaptive_dim=32,
        adaptive_kappas=(3e2, 1e3),  # One cycle length (T = 32): one compile.
        adaptive_guesses=(0.01, 100.0),
        adaptive_timing_repeats=1,
    ),
}

