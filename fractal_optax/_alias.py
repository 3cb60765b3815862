"""Optimisers driven by the fractal Chebyshev schedule."""

from __future__ import annotations

import numbers

import jax
import numpy as np
import optax

from fractal_optax import _checks
from fractal_optax._schedule import fractal_chebyshev_schedule


def fractal_sgd(
  num_steps: int,
  min_curvature: jax.typing.ArrayLike,
  max_curvature: jax.typing.ArrayLike,
  *,
  scale: optax.ScalarOrSchedule = 1.0,
  cycle: bool = True,
  momentum: float | None = None,
  nesterov: bool = False,
) -> optax.GradientTransformation:
  r"""``optax.sgd`` whose learning rate is the fractal Chebyshev schedule.

  .. math::

    x_{c+1} = x_c - \text{schedule}(c)\, \nabla f(x_c),

  with ``schedule =`` :func:`fractal_chebyshev_schedule` ``(T, m, M,
  scale=scale, cycle=cycle)``. Without momentum the optimiser keeps no
  per-parameter state (only the step count), and on a quadratic with
  Hessian spectrum in ``[m, M]`` each cycle of ``T`` updates contracts the
  error by :func:`chebyshev_error_bound`: the accelerated :math:`\sqrt\kappa`
  rate of momentum methods with the memory of plain gradient descent.
  ``momentum`` and ``nesterov`` are passed to ``optax.sgd`` for users who want
  to combine both (the guarantee above is for ``momentum=None``).

  Args:
    num_steps: ``T``, the cycle length.
    min_curvature: ``m > 0``, a lower bound on the loss's curvature.
    max_curvature: ``M >= m``, an upper bound on the loss's curvature.
    scale: a constant or optax schedule multiplying the step sizes.
    cycle: repeat the cycle, or hold its last value after ``T`` steps.
    momentum: ``None`` (the paper's method) or the momentum decay in
      ``[0, 1)``, a concrete Python, numpy or 0-d JAX real number.
    nesterov: use Nesterov momentum (requires ``momentum``).

  Returns:
    An ``optax.GradientTransformation``.

  Raises:
    TypeError: as :func:`fractal_chebyshev_schedule`, or ``momentum`` is not a
      number, or ``nesterov`` is not a bool.
    ValueError: as :func:`fractal_chebyshev_schedule`, or ``momentum`` is
      outside ``[0, 1)``, or ``nesterov=True`` without ``momentum``.

  Example:
    >>> import jax.numpy as jnp
    >>> import optax
    >>> import fractal_optax
    >>> a = jnp.array([1.0, 10.0])  # f(x) = ½ Σ a_i x_i², spectrum [1, 10].
    >>> opt = fractal_optax.fractal_sgd(8, 1.0, 10.0)
    >>> x = jnp.array([1.0, 1.0])
    >>> state = opt.init(x)
    >>> for _ in range(8):
    ...   updates, state = opt.update(a * x, state)
    ...   x = optax.apply_updates(x, updates)
    >>> [round(float(v), 4) for v in x]  # Both shrink by 1/T_8(z0):
    [0.0106, 0.0106]
    >>> round(fractal_optax.chebyshev_error_bound(8, 1.0, 10.0), 4)
    0.0106

  References:
    Agarwal, Goel & Zhang, `Acceleration via Fractal Learning Rate Schedules
    <https://arxiv.org/abs/2103.01338>`_, ICML 2021.
  """
  if momentum is not None:
    if (
      isinstance(momentum, (bool, np.bool_))
      or _checks.is_traced(momentum)
      or not isinstance(momentum, (numbers.Real, np.ndarray, jax.Array))
      or np.ndim(momentum) != 0
      or not _checks.is_real_dtype(np.asarray(momentum).dtype)
    ):
      raise TypeError(
        f"momentum must be None or a concrete real number, got {momentum=!r}."
      )
    if not 0.0 <= float(momentum) < 1.0:
      raise ValueError(f"momentum must lie in [0, 1), got {momentum=!r}.")
    momentum = float(momentum)
  if not isinstance(nesterov, (bool, np.bool_)):
    raise TypeError(f"nesterov must be a bool, got {nesterov=!r}.")
  nesterov = bool(nesterov)
  if nesterov and momentum is None:
    raise ValueError(
      f"nesterov=True needs a momentum, got {momentum=!r}, {nesterov=!r}."
    )
  schedule = fractal_chebyshev_schedule(
    num_steps, min_curvature, max_curvature, scale=scale, cycle=cycle
  )
  return optax.sgd(schedule, momentum=momentum, nesterov=nesterov)
