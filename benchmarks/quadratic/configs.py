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

_NON_NEGATIVE = ("seed", "profile_max_steps", "noise_scales")


@dataclasses.dataclass(frozen=True)
class Config:
  """All settings of one run of the quadratic benchmark.

  Problems have Hessian spectrum ``[m, M] = [1/κ, 1]`` (log-spaced, both ends
  included), solution ``x*`` a random unit vector and start ``x_0 = 0``.
  Every κ is > 1, every other number > 0 except the non-negative
  ``seed``, ``profile_max_steps`` and ``noise_scales``.
  """

  seed: int = 0  # Rotations, solutions, the random order, gradient noise.
  chunk_size: int = 512  # Steps per jitted lax.scan call.
  # Dense (rotated) problems of the orders/precision and noise experiments.
  orders_dim: int = 128
  orders_kappas: tuple[float, ...] = (1e2, 1e3, 1e4, 1e5)
  orders_num_steps: tuple[int, ...] = (16, 32, 64, 100, 127, 128, 256, 512)
  orders_num_steps += (1000, 1024, 2048, 4096, 8192, 16384)
  orders_dtypes: tuple[str, ...] = ("float64", "float32", "bfloat16")
  profile_max_steps: int = 1024  # stability_profile for T ≤ this (cost T²).
  profile_oversample: int = 8  # Points per step (relative error ~1/this²).
  # κ and T of the error-against-iteration figure (κ: the float32 targets').
  figure_kappa: float = 1e4
  figure_num_steps: int = 256
  accel_dim: int = 256  # Diagonal problems of the acceleration experiment.
  accel_kappas: tuple[float, ...] = (1e1, 3e1, 1e2, 3e2, 1e3, 3e3, 1e4)
  accel_kappas += (3e4, 1e5)
  target_kappa: float = 1e4  # κ of the GD and heavy-ball targets.
  tolerance: float = 1e-6  # ε of iterations to ‖x − x*‖/‖x_0 − x*‖ ≤ ε.
  cycle_lengths: tuple[int, ...] = (8, 16, 32, 64)  # Short cycles repeated.
  max_iterations: int = 2_000_000  # Give up counting after this many.
  # Diagonal float32 problems timed (the first is the target's), steps per
  # timed scan for each, timed repeats (the median is reported; each call
  # takes ~5 ms at d = 2^18, and the median of 11 moved by ±8% between runs
  # on a shared 2-core machine, of 101 by ±1.5%).
  timing_dims: tuple[int, ...] = (1 << 18, 128)
  timing_steps: tuple[int, ...] = (200, 5000)
  timing_repeats: int = 101
  noise_kappa: float = 1e3
  noise_num_steps: tuple[int, ...] = (100, 128)
  # Noise norm about σ·‖∇f(x_0)‖ (0: the noiseless reference, run once).
  noise_scales: tuple[float, ...] = (0.0, 1e-8, 1e-6, 1e-4, 1e-2)
  noise_repeats: int = 5  # Noise draws per setting (the median is reported).
  negative_kappas: tuple[float, ...] = (1e2, 1e3, 1e4)
  negative_num_steps: tuple[int, ...] = (64, 100, 256)
  # adaptive_fractal_sgd with M unknown, diagonal float32 problems.
  adaptive_dim: int = 256
  adaptive_kappas: tuple[float, ...] = (1e2, 1e3, 1e4, 1e5)
  adaptive_guesses: tuple[float, ...] = (0.01, 1.0, 100.0)  # Multiples of M.
  adaptive_tolerance: float = 1e-5
  adaptive_budget: int = 10  # Give up after this × the oracle's iterations.
  adaptive_timing_repeats: int = 7  # Warm repeats (median wall time).
  progress: bool = True  # A progress bar on stderr.

  def __post_init__(self):
    for field in dataclasses.fields(self):
      name, value = field.name, getattr(self, field.name)
      if isinstance(value, tuple):
        checks.non_empty(name, value)
      if name == "orders_dtypes":
        checks.one_of(name, value, ("float64", "float32", "bfloat16"))
      elif "kappa" in name:
        checks.require(
          min(value if isinstance(value, tuple) else (value,)) > 1,
          f"every κ must be > 1, got {name}={value!r}.",
        )
      elif name in _NON_NEGATIVE:
        checks.non_negative(name, value)
      elif name != "progress":
        checks.positive(name, value)
    checks.require(
      len(self.timing_dims) == len(self.timing_steps),
      "timing_dims and timing_steps need one entry each, got "
      f"timing_dims={self.timing_dims}, timing_steps={self.timing_steps}.",
    )
    for name, grid in (
      ("target_kappa", "accel_kappas"),
      ("figure_kappa", "orders_kappas"),
      ("figure_num_steps", "orders_num_steps"),
    ):
      value, values = getattr(self, name), getattr(self, grid)
      checks.require(
        value in values,
        f"{name} must be one of {grid}={values}, got {name}={value!r}.",
      )


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
