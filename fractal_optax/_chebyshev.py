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

  Concrete curvatures (Python numbers, numpy or JAX scalars of any integer or
  floating dtype, bfloat16 included) are computed in float64 on the host in
  the form scaled by ``M``, :math:`\eta_i = (1/M) / (r + (1 - r)
  \sin^2(\theta_i/2))` with :math:`r = m/M`, and rounded once to the output
  dtype, so every finite result is correct to the dtype's precision whatever
  the scale of ``m`` and ``M``. If a step does not fit the dtype as a normal
  number (``M = 1e300`` in float32, ``m = 1e-50`` anywhere but float64) a
  ``ValueError`` names the curvatures and the dtype. Traced curvatures (under
  ``jit``) use the same scaled form in at least float32; their values cannot
  be checked: no intermediate overflows or divides by zero for finite
  ``M > 0`` and ``m >= 0`` (even ``m > M``; ``m = 0`` gives the limit
  ``m → 0``), so the result is finite wherever the steps fit the dtype; a
  non-positive or non-finite traced ``M`` gives inf or NaN.

  Args:
    num_steps: ``T``, a positive Python int, at most ``2**24``.
    min_curvature: ``m > 0``, a lower bound on the Hessian's eigenvalues.
    max_curvature: ``M >= m``, an upper bound on the Hessian's eigenvalues.
      Both may be traced JAX scalars, in which case their values are not
      checked.

  Returns:
    A ``(T,)`` array, sorted from the largest step to the smallest, in the
    floating dtype of the curvatures (the default float dtype for Python
    numbers and integers).

  Raises:
    TypeError: ``num_steps`` is not an int, or a curvature is not a real
      number (or has a dtype JAX lacks, such as float128).
    ValueError: ``num_steps`` is outside ``[1, 2**24]``, a curvature is not a
      finite positive scalar, ``min_curvature > max_curvature``, or a step
      size overflows or underflows the output dtype.

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
  low, high = _checks.check_curvatures(min_curvature, max_curvature)
  dtype = _checks.float_dtype(min_curvature, max_curvature)
  if low is None or high is None:  # A traced curvature.
    return traced_step_sizes(
      chebyshev_node_fractions(num_steps), min_curvature, max_curvature, dtype
    )
  steps = host_step_sizes(chebyshev_node_fractions(num_steps), low, high)
  return jnp.asarray(
    _checks.check_representable(
      steps, dtype, curvature_names(min_curvature, max_curvature)
    )
  )


def curvature_names(min_curvature, max_curvature) -> str:
  """The curvature arguments as a message prefix."""
  return f"{min_curvature=!r}, {max_curvature=!r}"


def host_step_sizes(
  fractions: np.ndarray, min_curvature: float, max_curvature: float
) -> np.ndarray:
  """``1/(m + (M − m)·fractions)`` in float64, in the form scaled by ``M``.

  ``η = (1/M) / (r + (1 − r)·f)`` with ``r = m/M ∈ (0, 1]``: the denominator
  lies in ``[f_0, 1]`` with ``f_0 ≈ (π/4T)² > 1e-15`` for ``T <= 2**24``, so
  nothing in it overflows or goes subnormal whatever the scale of ``m`` and
  ``M``; only the final division by ``M`` can leave float64's range (then the
  result holds ``inf``, which :func:`_checks.check_representable` reports).
  """
  ratio = min_curvature / max_curvature
  with np.errstate(over="ignore"):
    return (1.0 / (ratio + (1.0 - ratio) * fractions)) / max_curvature


def traced_step_sizes(
  fractions: np.ndarray,
  min_curvature,
  max_curvature,
  dtype,
) -> jax.Array:
  """The scaled form of :func:`host_step_sizes` in jnp, for traced curvatures.

  Computed in at least float32 (the scaled denominator's reciprocal reaches
  ``1/f_0 ≈ 1.6 T²``, beyond float16's range) and cast to ``dtype``. For
  finite ``M > 0`` and ``m >= 0`` (even ``m > M``) the denominator lies in
  ``[min(f_0, r), max(1, r)]``, so nothing overflows before the final division
  by ``M``; the values are not checked (a traced ``M <= 0`` or non-finite
  input gives inf/NaN).
  """
  work = jnp.promote_types(dtype, jnp.float32)
  m = jnp.asarray(min_curvature, work)
  big_m = jnp.asarray(max_curvature, work)
  ratio = m / big_m
  steps = (1.0 / (ratio + (1.0 - ratio) * jnp.asarray(fractions, work))) / big_m
  return steps.astype(dtype)


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
    num_steps: ``T``, a positive Python int, at most ``2**24``.
    min_curvature: ``m > 0`` (a concrete number, not a traced value).
    max_curvature: ``M >= m`` (a concrete number).

  Returns:
    The bound as a Python float in ``[0, 1]``; a bound below float64's
    smallest subnormal (about ``5e-324``) rounds to 0.0.

  Raises:
    TypeError: ``num_steps`` is not an int, or a curvature is traced or not a
      real number.
    ValueError: ``num_steps`` is outside ``[1, 2**24]``, or the curvatures
      are not finite with ``0 < min_curvature <= max_curvature``.

  Example:
    >>> import fractal_optax
    >>> round(fractal_optax.chebyshev_error_bound(64, 1.0, 100.0), 10)
    5.2896e-06

  References:
    Agarwal, Goel & Zhang, `Acceleration via Fractal Learning Rate Schedules
    <https://arxiv.org/abs/2103.01338>`_, ICML 2021.
  """
  num_steps = _checks.check_num_steps(num_steps)
  _checks.check_concrete(
    min_curvature, "min_curvature", "chebyshev_error_bound"
  )
  _checks.check_concrete(
    max_curvature, "max_curvature", "chebyshev_error_bound"
  )
  _checks.check_curvatures(min_curvature, max_curvature)
  m, big_m = float(min_curvature), float(max_curvature)
  if m >= big_m:
    return 0.0
  return _error_bound(num_steps, _log_rate(m, big_m))


def _log_rate(m: float, big_m: float) -> float:
  """``arccosh z_0 = log1p(2√m(√M + √m)/(M − m))`` for ``0 < m < M``.

  Accurate both for ``κ`` close to 1 (``M − m`` is exact there) and for large
  ``κ``; positive for every ``0 < m < M`` within float64 (at least about
  ``2/√κ >= 1e-316``).
  """
  root_m = math.sqrt(m)
  return math.log1p(2.0 * root_m * (math.sqrt(big_m) + root_m) / (big_m - m))


def _error_bound(num_steps: int, rate: float) -> float:
  """``1/cosh(T·rate) = 2e^{-T·rate}/(1 + e^{-2T·rate})``, free of overflow."""
  e = math.exp(-num_steps * rate)
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

  with :math:`z_0 = (M + m)/(M - m)`. It is found by bisection on
  :func:`chebyshev_error_bound` itself (at most 25 evaluations, whatever
  ``κ``), so ``chebyshev_error_bound(T, m, M) <= tolerance <
  chebyshev_error_bound(T - 1, m, M)`` holds exactly as computed. ``T`` is
  at most ``2**24``, the largest cycle length the library builds; a
  tolerance that needs more (``κ ≳ 5e12`` at ``ε = 1e-6``) raises.

  Args:
    min_curvature: ``m > 0`` (a concrete number).
    max_curvature: ``M >= m`` (a concrete number).
    tolerance: ``ε`` in ``(0, 1)``, the error ratio one cycle must reach.

  Returns:
    ``T`` as a Python int (1 when ``m == M``).

  Raises:
    TypeError: a curvature or ``tolerance`` is not a number.
    ValueError: the curvatures are invalid, ``tolerance`` is not in
      ``(0, 1)``, or the required ``T`` exceeds ``2**24``.

  Example:
    >>> import fractal_optax
    >>> fractal_optax.chebyshev_num_steps(1.0, 1e4, 1e-6)
    726

  References:
    Agarwal, Goel & Zhang, `Acceleration via Fractal Learning Rate Schedules
    <https://arxiv.org/abs/2103.01338>`_, ICML 2021.
  """
  for name, value in (
    ("min_curvature", min_curvature),
    ("max_curvature", max_curvature),
    ("tolerance", tolerance),
  ):
    _checks.check_concrete(value, name, "chebyshev_num_steps")
  _checks.check_curvatures(min_curvature, max_curvature)
  try:
    eps = _checks.check_positive_scalar(tolerance, "tolerance")
  except ValueError:
    eps = None
  if eps is None or eps >= 1.0:
    raise ValueError(
      f"tolerance must be a number in (0, 1), got {tolerance=!r}."
    )
  m, big_m = float(min_curvature), float(max_curvature)
  if m >= big_m:
    return 1
  rate = _log_rate(m, big_m)

  def sufficient(t: int) -> bool:
    return _error_bound(t, rate) <= eps

  limit = _checks.MAX_NUM_STEPS
  if not sufficient(limit):
    # arccosh(1/ε) ≈ log(2/ε) for small ε, without overflowing 1/ε.
    target = (
      math.acosh(1.0 / eps) if eps > 1e-8 else math.log(2.0) - math.log(eps)
    )
    raise ValueError(
      f"reaching {tolerance=!r} at κ = {big_m / m:.4g} ({min_curvature=!r},"
      f" {max_curvature=!r}) needs about {target / rate:.4g} steps, more"
      f" than the largest supported cycle length {limit} (2**24); repeat a"
      " shorter cycle (each cycle multiplies the bound) or loosen the"
      " tolerance."
    )
  # Bisection on the computed bound: at most 25 evaluations, and it returns
  # a T with sufficient(T) and not sufficient(T - 1) exactly as computed.
  low, high = 0, limit  # not sufficient(0): the bound at T = 0 is 1 > ε.
  while high - low > 1:
    mid = (low + high) // 2
    if sufficient(mid):
      high = mid
    else:
      low = mid
  return high
