"""Fractal Chebyshev step sizes as a jitted generator and as an Optax schedule."""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fractal_optax import _checks
from fractal_optax._chebyshev import chebyshev_node_fractions
from fractal_optax._chebyshev import chebyshev_step_sizes
from fractal_optax._order import fractal_order


@functools.partial(jax.jit, static_argnums=0)
def _fractal_steps(num_steps: int, min_curvature, max_curvature) -> jax.Array:
  steps = chebyshev_step_sizes(num_steps, min_curvature, max_curvature)
  # int32 indices: a static permutation, valid with and without x64.
  return jnp.take(steps, fractal_order(num_steps).astype(np.int32),
                  unique_indices=True)


def fractal_chebyshev_step_sizes(
    num_steps: int,
    min_curvature: jax.typing.ArrayLike,
    max_curvature: jax.typing.ArrayLike,
) -> jax.Array:
  r"""The Chebyshev step sizes in the fractal order in which they are taken.

  .. math::

    \eta^{\text{fractal}}_t = \eta_{\sigma(t)}, \qquad
    \eta_i = 1 / \big(m + (M - m)\sin^2(\tfrac{(i + 1/2)\pi}{2T})\big),

  with :math:`\sigma` = :func:`fractal_order` ``(T)``. The first step is the
  largest, about ``1/m``; about half of the steps exceed the classical
  stability limit ``2/M``, yet every suffix of the sequence contracts (for
  ``T`` a power of two), so ``T`` steps of gradient descent reduce a
  quadratic's error by :func:`chebyshev_error_bound` even in low precision.

  This is the jit-compiled generator: ``num_steps`` is static, and the
  curvatures may be traced, so a schedule can be built inside ``jit`` from
  curvature measured on device (traced values are not checked).

  Args:
    num_steps: ``T``, a positive Python int.
    min_curvature: ``m > 0``.
    max_curvature: ``M >= m``.

  Returns:
    A ``(T,)`` array of step sizes in the curvatures' floating dtype.

  Example:
    >>> import fractal_optax
    >>> steps = fractal_optax.fractal_chebyshev_step_sizes(8, 0.1, 1.0)
    >>> [round(float(s), 4) for s in steps]
    [9.2042, 1.0087, 2.1635, 1.5679, 5.687, 1.0821, 3.3334, 1.25]

  References:
    Agarwal, Goel & Zhang, `Acceleration via Fractal Learning Rate Schedules
    <https://arxiv.org/abs/2103.01338>`_, ICML 2021.
  """
  num_steps = _checks.check_num_steps(num_steps)
  _checks.check_curvatures(min_curvature, max_curvature)
  return _fractal_steps(num_steps, min_curvature, max_curvature)


def _step_index(count: jax.Array, num_steps: int, cycle: bool) -> jax.Array:
  """Maps optax counts to indices in ``[0, T)`` without overflow."""
  count = jnp.asarray(count)
  if not jnp.issubdtype(count.dtype, jnp.integer):
    # Float counts (exact up to 2**24 in float32): floor them first.
    count = jnp.floor(count)
    count = jnp.maximum(count, 0)
    index = jnp.mod(count, num_steps) if cycle else jnp.minimum(
        count, num_steps - 1)
    return index.astype(jnp.int32)
  zero = jnp.zeros((), count.dtype)
  count = jnp.maximum(count, zero)  # Counts below 0 behave as 0.
  # In the count's own integer dtype: T < 2**31 and count >= 0, so neither the
  # remainder nor the minimum can overflow.
  t = jnp.asarray(num_steps, count.dtype)
  return jnp.remainder(count, t) if cycle else jnp.minimum(count, t - 1)


def fractal_chebyshev_schedule(
    num_steps: int,
    min_curvature: jax.typing.ArrayLike,
    max_curvature: jax.typing.ArrayLike,
    *,
    scale: optax.ScalarOrSchedule = 1.0,
    cycle: bool = True,
) -> optax.Schedule:
  r"""Optax schedule of fractal Chebyshev step sizes, optionally repeated.

  .. math::

    \text{schedule}(c) = s(c) \cdot \eta^{\text{fractal}}_{c \bmod T}
    \quad (\texttt{cycle=True}), \qquad
    s(c) \cdot \eta^{\text{fractal}}_{\min(c,\, T - 1)}
    \quad (\texttt{cycle=False}),

  where :math:`\eta^{\text{fractal}}` is
  :func:`fractal_chebyshev_step_sizes` ``(T, m, M)``, ``c`` the optax step
  count (counts below 0 behave as 0) and ``s = scale`` a constant or an optax
  schedule. Each cycle of ``T`` steps contracts a quadratic's error by
  :func:`chebyshev_error_bound`; repeating a short cycle is the paper's
  recipe for deep learning. With ``max_curvature=1.0`` the values are
  multipliers between about 1 and ``κ = M/m`` of a base learning rate given
  as ``scale``.

  Works under ``jit`` and ``vmap`` and on arrays of counts of any integer
  dtype (optax's int32, flax nnx's uint32, int64 under x64) up to
  ``2**31 − 1`` without overflow. When the curvatures are concrete the table
  of steps is computed once in float64 numpy and held as a constant;
  traced curvatures (a schedule built inside ``jit``) are used as they are,
  and their values are not checked.

  Args:
    num_steps: ``T``, the cycle length, a positive Python int.
    min_curvature: ``m > 0``, a lower bound on the curvature (smaller is
      safe, only slower).
    max_curvature: ``M >= m``, an upper bound on the curvature. Eigenvalues
      above it are amplified catastrophically: over-estimate it.
    scale: a positive float, or an optax schedule of the count, multiplying
      every value (a base learning rate).
    cycle: repeat the ``T`` steps (``True``) or hold the last one after ``T``
      counts (``False``).

  Returns:
    An ``optax.Schedule``: a function of the count returning the step size.

  Raises:
    TypeError: ``num_steps`` is not an int, a curvature is not a number,
      ``scale`` is neither a number nor callable, or ``cycle`` is not a bool.
    ValueError: ``num_steps < 1``, a curvature is not finite and positive,
      ``min_curvature > max_curvature``, or ``scale`` is not finite and
      positive.

  Example:
    >>> import jax.numpy as jnp
    >>> import fractal_optax
    >>> schedule = fractal_optax.fractal_chebyshev_schedule(4, 0.1, 1.0)
    >>> [round(float(v), 4) for v in schedule(jnp.arange(6))]
    [7.4486, 1.0355, 2.647, 1.3846, 7.4486, 1.0355]

  References:
    Agarwal, Goel & Zhang, `Acceleration via Fractal Learning Rate Schedules
    <https://arxiv.org/abs/2103.01338>`_, ICML 2021.
  """
  num_steps = _checks.check_num_steps(num_steps)
  _checks.check_curvatures(min_curvature, max_curvature)
  if not isinstance(cycle, (bool, np.bool_)):
    raise TypeError(f"cycle must be a bool, got {cycle=!r}.")
  if not callable(scale):
    try:
      _checks.check_positive_scalar(scale, "scale")
    except TypeError as e:
      raise TypeError(
          "scale must be a positive number or an optax schedule (a callable),"
          f" got {scale=!r}."
      ) from e

  traced = _checks.is_traced(min_curvature) or _checks.is_traced(max_curvature)
  dtype = jnp.result_type(float, min_curvature, max_curvature)
  if traced:
    table = None
  else:
    # A numpy constant: no jnp array is created here (optax issue #503).
    m, big_m = float(min_curvature), float(max_curvature)
    fractions = chebyshev_node_fractions(num_steps)[fractal_order(num_steps)]
    table = 1.0 / (m + (big_m - m) * fractions)

  def schedule(count: jax.typing.ArrayLike) -> jax.Array:
    steps = (
        _fractal_steps(num_steps, min_curvature, max_curvature)
        if table is None else jnp.asarray(table, dtype)
    )
    index = _step_index(count, num_steps, cycle)
    value = steps[index]
    if callable(scale):
      count = jnp.asarray(count)
      count = jnp.maximum(count, jnp.zeros((), count.dtype))
      value = value * scale(count)
    else:
      value = value * scale
    return value

  return schedule
