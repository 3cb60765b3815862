r"""The baseline optimisers, each an optax transformation built from (m, M).

The Hessian spectrum lies in ``[m, M]``, ``κ = M/m``; ``m`` and ``M`` may be
traced, so one compiled program serves every κ.

Example:
  >>> import jax.numpy as jnp
  >>> tx = heavy_ball(0.01, 1.0)
  >>> updates, _ = tx.update(jnp.ones(2), tx.init(jnp.zeros(2)))
  >>> [round(float(u), 4) for u in updates]  # −α g, α = 4/(0.1 + 1)²
  [-3.3058, -3.3058]
"""

from __future__ import annotations

from collections.abc import Callable
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fractal_optax

Scalar = jax.typing.ArrayLike
# The silver steps live in the library; this name stays for the benchmarks.
silver_num_doublings = fractal_optax.silver_num_doublings


def _concrete(*values: object) -> bool:
  return all(isinstance(v, (int, float)) for v in values)


def _sqrt(x: Scalar) -> Scalar:
  return math.sqrt(x) if _concrete(x) else jnp.sqrt(x)


def heavy_ball_constants(m: Scalar, M: Scalar) -> tuple[Scalar, Scalar]:
  """Polyak's ``(lr, momentum) = (4/(√M + √m)², ((√κ − 1)/(√κ + 1))²)``."""
  sm, sbig = _sqrt(m), _sqrt(M)
  return 4.0 / (sm + sbig) ** 2, ((sbig - sm) / (sbig + sm)) ** 2


def nesterov_constants(m: Scalar, M: Scalar) -> tuple[Scalar, Scalar]:
  """Nesterov's ``(lr, momentum) = (1/M, (√κ − 1)/(√κ + 1))``."""
  root = _sqrt(M / m)
  return 1.0 / M, (root - 1.0) / (root + 1.0)


def constant(
  m: Scalar, M: Scalar, multiple: float | None = None
) -> optax.GradientTransformation:
  """``optax.sgd(multiple/M)``; the best constant ``2/(M + m)`` if None."""
  return optax.sgd(2.0 / (M + m) if multiple is None else multiple / M)


def gd(m: Scalar, M: Scalar) -> optax.GradientTransformation:
  """``optax.sgd(1/M)``, the textbook safe step (``m`` unused)."""
  del m
  return optax.sgd(1.0 / M)


def heavy_ball(m: Scalar, M: Scalar) -> optax.GradientTransformation:
  """Polyak's heavy ball with the optimal quadratic constants."""
  lr, momentum = heavy_ball_constants(m, M)
  return optax.sgd(lr, momentum=momentum)


def nesterov(m: Scalar, M: Scalar) -> optax.GradientTransformation:
  """Nesterov's method (optax's Sutskever form), strongly convex constants."""
  lr, momentum = nesterov_constants(m, M)
  return optax.sgd(lr, momentum=momentum, nesterov=True)


def fractal(
  num_steps: int, m: Scalar, M: Scalar, *, cycle: bool = True
) -> optax.GradientTransformation:
  """``fractal_optax.fractal_sgd(T, m, M)``: the library, nothing else."""
  return fractal_optax.fractal_sgd(num_steps, m, M, cycle=cycle)


def steps(step_sizes: jax.typing.ArrayLike) -> optax.GradientTransformation:
  """``optax.sgd`` taking ``step_sizes[t]`` (may be traced) at update ``t``."""

  def schedule(count: jax.Array) -> jax.Array:
    table = jnp.asarray(step_sizes)
    return jnp.where(
      count < table.shape[0], table[jnp.minimum(count, table.shape[0] - 1)], 0.0
    )

  return optax.sgd(schedule)


def silver(
  m: Scalar, M: Scalar, *, num_steps: int | None = None
) -> optax.GradientTransformation:
  """``optax.sgd`` with ``fractal_optax.silver_schedule`` (cycle ``num_steps``).

  The default cycle is the silver horizon ``2**silver_num_doublings(m, M)``,
  computed on device when ``m`` and ``M`` are traced.
  """
  return optax.sgd(fractal_optax.silver_schedule(num_steps, m, M))


BASELINES: dict[
  str, Callable[[Scalar, Scalar], optax.GradientTransformation]
] = {
  "gd": constant,
  "gd_1/M": gd,
  "heavy_ball": heavy_ball,
  "nesterov": nesterov,
  "silver": silver,
}


def adaptive_evaluations(state: Any) -> jax.Array:
  """Gradient-equivalent evaluations an ``adaptive_fractal_sgd`` state has
  spent: ``count + num_value_evals + 2·num_hvps`` (an HVP costs about two
  gradients; the Lanczos steps at the first update included)."""
  return state.count + state.num_value_evals + 2 * state.num_hvps


def filtered_power_of_two_order(num_steps: int) -> np.ndarray:
  """The PyTorch implementation's order: the next power of two's, ≥ T dropped.

  Example:
    >>> filtered_power_of_two_order(6).tolist()
    [0, 3, 4, 1, 2, 5]
  """
  full = np.asarray(
    fractal_optax.fractal_order(1 << max(0, (num_steps - 1).bit_length()))
  )
  return full[full < num_steps]
