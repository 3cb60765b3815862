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

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fractal_optax

SILVER_RATIO = 1.0 + math.sqrt(2.0)
MAX_SILVER_DOUBLINGS = 30
Scalar = jax.typing.ArrayLike


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


def constant(m: Scalar, M: Scalar, multiple: float | None = None
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


def fractal(num_steps: int, m: Scalar, M: Scalar, *, cycle: bool = True
            ) -> optax.GradientTransformation:
  """``fractal_optax.fractal_sgd(T, m, M)``: the library, nothing else."""
  return fractal_optax.fractal_sgd(num_steps, m, M, cycle=cycle)


def steps(step_sizes: jax.typing.ArrayLike) -> optax.GradientTransformation:
  """``optax.sgd`` taking ``step_sizes[t]`` (may be traced) at update ``t``."""

  def schedule(count: jax.Array) -> jax.Array:
    table = jnp.asarray(step_sizes)
    return jnp.where(count < table.shape[0],
                     table[jnp.minimum(count, table.shape[0] - 1)], 0.0)

  return optax.sgd(schedule)


def silver_num_doublings(m: Scalar, M: Scalar) -> Scalar:
  """The silver horizon exponent ``k = max(0, ⌊log_ρ(κ/3)⌋)``, ρ = 1 + √2."""
  if _concrete(m, M):
    kappa = M / m
    return 0 if kappa <= 3.0 else math.floor(math.log(kappa / 3.0,
                                                      SILVER_RATIO))
  kappa = jnp.asarray(M) / jnp.asarray(m)
  k = jnp.floor(jnp.log(jnp.maximum(kappa / 3.0, 1.0)) / math.log(
      SILVER_RATIO))
  return jnp.clip(k, 0, MAX_SILVER_DOUBLINGS).astype(jnp.int32)


def silver_step_sizes(m: float, M: float, num_doublings: int) -> np.ndarray:
  r"""The ``2**k`` steps of the strongly convex silver schedule, in float64.

  In units of ``1/M``, with :math:`\psi(t) = (1 + \kappa t)/(1 + t)` and
  :math:`y_1 = z_1 = 1/\kappa`,

  .. math::

    \eta_j = 1 - z_j, \quad
    y_{j+1} = \frac{z_j}{\eta_j + \sqrt{1 + \eta_j^2}}, \quad
    z_{j+1} = z_j \big(\eta_j + \sqrt{1 + \eta_j^2}\big), \quad
    a_j = \psi(y_j), \quad b_j = \psi(z_j),

  and :math:`h^{(1)} = [b_1]`, :math:`h^{(2n)} = [\tilde h^{(n)}, a_{j+1},
  \tilde h^{(n)}, b_{j+1}]` (:math:`n = 2^{j-1}`, :math:`\tilde h` without
  its last step). So step ``i = 1 … 2^k − 1`` is :math:`a_{\nu(i) + 2}`
  (:math:`\nu` the 2-adic valuation) and the last is :math:`b_{k+1}`;
  ``k = 0`` is ``[2/(M + m)]``. Returns :math:`h_i / M`.

  Example:
    >>> silver_step_sizes(1.0, 10.0, 0).round(4).tolist()  # 2/(M + m)
    [0.1818]

  References:
    Altschuler & Parrilo, https://arxiv.org/abs/2309.07879 (as in PEPit).
  """
  if not isinstance(num_doublings, int) or num_doublings < 0:
    raise ValueError(
        f"num_doublings must be an int >= 0, got {num_doublings=}.")
  if not 0 < m < M:
    raise ValueError(f"need 0 < m < M, got {m=}, {M=}.")
  kappa = M / m
  psi = lambda t: (1.0 + kappa * t) / (1.0 + t)
  z = 1.0 / kappa
  out = [psi(z)]
  for _ in range(num_doublings):
    eta = 1.0 - z
    root = eta + math.sqrt(1.0 + eta * eta)
    y, z = z / root, z * root
    out = out[:-1] + [psi(y)] + out[:-1] + [psi(z)]
  return np.asarray(out, np.float64) / M


def silver_schedule(m: Scalar, M: Scalar, *,
                    num_doublings: Scalar | None = None) -> optax.Schedule:
  r"""The block of :func:`silver_step_sizes` repeated, computed in ``jnp``.

  ``m``, ``M`` and ``k`` (default :func:`silver_num_doublings`) may be
  traced; Python numbers give a precomputed table. Past the horizon the
  paper repeats the saturated block (rate :math:`\kappa^{-0.7864}` a step).

  Example:
    >>> import jax.numpy as jnp
    >>> schedule = silver_schedule(1.0, 10.0, num_doublings=2)
    >>> [round(float(schedule(c)), 6) for c in range(4)] == [
    ...     round(float(h), 6) for h in silver_step_sizes(1.0, 10.0, 2)]
    True
  """
  if num_doublings is None:
    num_doublings = silver_num_doublings(m, M)
  if _concrete(m, M, num_doublings):
    table = silver_step_sizes(m, M, num_doublings)  # numpy: no tracer leak.
    return lambda count: jnp.asarray(table, jnp.result_type(float))[
        jnp.remainder(jnp.asarray(count), table.size)]

  def schedule(count: jax.Array) -> jax.Array:
    dtype = jnp.result_type(m, M, float)
    kappa = jnp.asarray(M, dtype) / jnp.asarray(m, dtype)
    psi = lambda t: (1.0 + kappa * t) / (1.0 + t)
    ys, zs = [1.0 / kappa], [1.0 / kappa]
    for _ in range(MAX_SILVER_DOUBLINGS + 1):
      eta = 1.0 - zs[-1]
      root = eta + jnp.sqrt(1.0 + eta * eta)
      ys.append(zs[-1] / root)
      zs.append(zs[-1] * root)
    k = jnp.asarray(num_doublings, jnp.int32)
    period = jnp.left_shift(jnp.int32(1), k)
    i = jnp.remainder(jnp.asarray(count, jnp.int32), period) + 1
    nu = jax.lax.population_count((i & -i) - 1)
    a = psi(jnp.stack(ys)[nu + 1])
    b = psi(jnp.stack(zs)[k])
    return jnp.where(i == period, b, a) / jnp.asarray(M, dtype)

  return schedule


def silver(m: Scalar, M: Scalar, *, num_doublings: Scalar | None = None
           ) -> optax.GradientTransformation:
  """``optax.sgd`` with :func:`silver_schedule`."""
  return optax.sgd(silver_schedule(m, M, num_doublings=num_doublings))


BASELINES: dict[str, Callable[[Scalar, Scalar],
                              optax.GradientTransformation]] = {
    "gd": constant, "gd_1/M": gd, "heavy_ball": heavy_ball,
    "nesterov": nesterov, "silver": silver,
}


def filtered_power_of_two_order(num_steps: int) -> np.ndarray:
  """The PyTorch implementation's order: the next power of two's, ≥ T dropped.

  Example:
    >>> filtered_power_of_two_order(6).tolist()
    [0, 3, 4, 1, 2, 5]
  """
  full = np.asarray(fractal_optax.fractal_order(
      1 << max(0, (num_steps - 1).bit_length())))
  return full[full < num_steps]
