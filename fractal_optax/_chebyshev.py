"""Chebyshev step sizes and the error bound they guarantee.

Gradient descent on a quadratic with Hessian eigenvalues in ``[m, M]`` and
steps :math:`\\eta_0, \\dots, \\eta_{T-1}` leaves the error
:math:`x_T - x^* = p(A)(x_0 - x^*)` with :math:`p(\\lambda) = \\prod_t (1 -
\\eta_t \\lambda)`. Choosing the :math:`1/\\eta_t` as the roots of the
Chebyshev polynomial :math:`T_T` mapped onto ``[m, M]`` makes :math:`p` the
scaled Chebyshev polynomial, the smallest degree-``T`` polynomial with
:math:`p(0) = 1` on ``[m, M]``.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from fractal_optax import _checks


def chebyshev_node_fractions(num_steps: int) -> np.ndarray:
  """``sin²(θ_i / 2)`` for ``θ_i = (i + ½)π/T``, in float64 numpy.

  The Chebyshev roots on ``[m, M]`` are ``m + (M - m) * fractions``; the sin²
  form keeps full relative precision for the smallest roots, where
  ``1 - cos θ`` would cancel.
  """
  theta = (np.arange(num_steps, dtype=np.float64) + 0.5) * (np.pi / num_steps)
  return np.sin(0.5 * theta) ** 2


def chebyshev_step_sizes(
    num_steps: int,
    min_curvature: jax.typing.ArrayLike,
    max_curvature: jax.typing.ArrayLike,
) -> jax.Array:
  r"""The ``T`` reciprocal Chebyshev nodes on ``[m, M]``, largest step first.

  .. math::

    \eta_i = \frac{1}{\lambda_i}, \qquad
    \lambda_i = m + (M - m) \sin^2\!\Big(\frac{\theta_i}{2}\Big), \qquad
    \theta_i = \frac{(i + \frac12)\pi}{T}, \quad i = 0, \dots, T - 1,

  where ``T = num_steps``, ``m = min_curvature`` and ``M = max_curvature``.
  The :math:`\lambda_i` are the roots of the Chebyshev polynomial
  :math:`T_T(z(\lambda))`, :math:`z(\lambda) = (M + m - 2\lambda)/(M - m)`, so
  ``T`` steps of gradient descent with these step sizes, in any order, leave a
  quadratic's error multiplied by :math:`p(\lambda) = T_T(z(\lambda)) /
  T_T(z_0)` with :math:`z_0 = (M + m)/(M - m)`
  (see :func:`chebyshev_error_bound`). ``η_0 ≈ 1/m`` is the largest step; the
  smallest is a little above ``1/M``. Use :func:`fractal_chebyshev_step_sizes`
  for the order in which to take them.

  Args:
    num_steps: ``T``, a positive Python int.
    min_curvature: ``m > 0``, a lower bound on the Hessian's eigenvalues.
    max_curvature: ``M >= m``, an upper bound on the Hessian's eigenvalues.
      Both may be traced JAX scalars, in which case their values are not
      checked.

  Returns:
    A ``(T,)`` array, sorted from the largest step to the smallest, in the
    floating dtype of the curvatures (the default float dtype for Python
    numbers).

  Raises:
    TypeError: ``num_steps`` is not an int, or a curvature is not a number.
    ValueError: ``num_steps < 1``, a curvature is not finite and positive, or
      ``min_curvature > max_curvature``.

  Example:
    >>> import fractal_optax
    >>> steps = fractal_optax.chebyshev_step_sizes(4, 0.1, 1.0)
    >>> [round(float(s), 4) for s in steps]
    [7.4486, 2.647, 1.3846, 1.0355]

  References:
    Agarwal, Goel & Zhang, `Acceleration via Fractal Learning Rate Schedules
    <https://arxiv.org/abs/2103.01338>`_, ICML 2021.
  """
  num_steps = _checks.check_num_steps(num_steps)
  _checks.check_curvatures(min_curvature, max_curvature)
  dtype = jnp.result_type(float, min_curvature, max_curvature)
  m = jnp.asarray(min_curvature, dtype)
  big_m = jnp.asarray(max_curvature, dtype)
  fractions = jnp.asarray(chebyshev_node_fractions(num_steps), dtype)
  return 1.0 / (m + (big_m - m) * fractions)


def chebyshev_error_bound(
    num_steps: int, min_curvature: float, max_curvature: float
) -> float:
  r"""Worst-case error ratio after one cycle of ``T`` Chebyshev steps.

  .. math::

    \max_{\lambda \in [m, M]} |p(\lambda)| = \frac{1}{T_T(z_0)}
    = \frac{1}{\cosh(T \operatorname{arccosh} z_0)}
    \le 2 \rho^T, \qquad
    z_0 = \frac{\kappa + 1}{\kappa - 1}, \quad
    \rho = \frac{\sqrt\kappa - 1}{\sqrt\kappa + 1}, \quad
    \kappa = \frac{M}{m}.

  It is the smallest sup-norm on ``[m, M]`` of any degree-``T`` polynomial
  with ``p(0) = 1``: after ``T`` gradient steps on a quadratic with Hessian
  spectrum in ``[m, M]``, ``‖x_T − x*‖ ≤ bound · ‖x_0 − x*‖``, whatever the
  order of the steps (in exact arithmetic). It is computed in float64 as
  :math:`1/\cosh(T \log(1 + 2\sqrt m(\sqrt M + \sqrt m)/(M - m)))`,
  accurate for ``κ`` close to 1 and for large ``κ``, and free of overflow for
  large ``T``. ``m == M`` gives 0.

  Args:
    num_steps: ``T``, a positive Python int.
    min_curvature: ``m > 0`` (a concrete number, not a traced value).
    max_curvature: ``M >= m`` (a concrete number).

  Returns:
    The bound as a Python float in ``[0, 1]``.

  Example:
    >>> import fractal_optax
    >>> round(fractal_optax.chebyshev_error_bound(64, 1.0, 100.0), 10)
    5.2896e-06

  References:
    Agarwal, Goel & Zhang, `Acceleration via Fractal Learning Rate Schedules
    <https://arxiv.org/abs/2103.01338>`_, ICML 2021.
  """
  num_steps = _checks.check_num_steps(num_steps)
  _checks.check_curvatures(min_curvature, max_curvature)
  for name, value in (("min_curvature", min_curvature),
                      ("max_curvature", max_curvature)):
    if _checks.is_traced(value):
      raise TypeError(
          f"chebyshev_error_bound needs concrete curvatures, got a traced"
          f" {name}; compute it outside jit."
      )
  m, big_m = float(min_curvature), float(max_curvature)
  if m >= big_m:
    return 0.0
  # arccosh(z0) = log((√M + √m)/(√M − √m)) = log1p(2√m (√M + √m)/(M − m)),
  # accurate both for κ close to 1 (M − m is exact there) and for large κ.
  root_m = math.sqrt(m)
  a = num_steps * math.log1p(2.0 * root_m * (math.sqrt(big_m) + root_m) /
                             (big_m - m))
  # 1/cosh(a) = 2 e^{-a} / (1 + e^{-2a}), free of overflow.
  e = math.exp(-a)
  return 2.0 * e / (1.0 + e * e)


def chebyshev_num_steps(
    min_curvature: float, max_curvature: float, tolerance: float
) -> int:
  r"""The smallest cycle length whose error bound reaches ``tolerance``.

  .. math::

    T(\varepsilon) = \min\{T \ge 1 : 1/T_T(z_0) \le \varepsilon\}
    = \Big\lceil \frac{\operatorname{arccosh}(1/\varepsilon)}
                       {\operatorname{arccosh} z_0} \Big\rceil
    \approx \tfrac12 \sqrt\kappa \ln(2/\varepsilon),

  with :math:`z_0 = (M + m)/(M - m)`. The closed form gives the start; the
  result is then checked against :func:`chebyshev_error_bound` itself, so
  ``chebyshev_error_bound(T, m, M) <= tolerance < chebyshev_error_bound(T -
  1, m, M)`` holds exactly as computed.

  Args:
    min_curvature: ``m > 0`` (a concrete number).
    max_curvature: ``M >= m`` (a concrete number).
    tolerance: ``ε`` in ``(0, 1)``, the error ratio one cycle must reach.

  Returns:
    ``T`` as a Python int (1 when ``m == M``).

  Raises:
    TypeError: a curvature or ``tolerance`` is not a number.
    ValueError: the curvatures are invalid, or ``tolerance`` is not in
      ``(0, 1)``.

  Example:
    >>> import fractal_optax
    >>> fractal_optax.chebyshev_num_steps(1.0, 1e4, 1e-6)
    726

  References:
    Agarwal, Goel & Zhang, `Acceleration via Fractal Learning Rate Schedules
    <https://arxiv.org/abs/2103.01338>`_, ICML 2021.
  """
  _checks.check_curvatures(min_curvature, max_curvature)
  eps = _checks.check_positive_scalar(tolerance, "tolerance")
  if eps is None or eps >= 1.0:
    raise ValueError(f"tolerance must be a number in (0, 1), got {tolerance=!r}.")
  m, big_m = float(min_curvature), float(max_curvature)
  if m >= big_m:
    return 1
  root_m = math.sqrt(m)
  rate = math.log1p(2.0 * root_m * (math.sqrt(big_m) + root_m) / (big_m - m))
  num_steps = max(1, math.ceil(math.acosh(1.0 / eps) / rate))
  while (num_steps > 1 and
         chebyshev_error_bound(num_steps - 1, m, big_m) <= eps):
    num_steps -= 1
  while chebyshev_error_bound(num_steps, m, big_m) > eps:
    num_steps += 1
  return num_steps
