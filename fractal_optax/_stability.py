"""How much an order of step sizes amplifies errors along the way."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from fractal_optax import _checks

# Elements of one (T + 1) × chunk block of log-factors kept in memory at once.
_CHUNK_ELEMENTS = 1 << 22
# The most (T + 1) × (oversample·T + 1) log-factors one call evaluates
# (T = 1024 at oversample 64 is 6.7e7).
MAX_EVALUATIONS = 10**8


class StabilityProfile(NamedTuple):
  r"""Worst-case amplification of a step-size sequence over ``λ ∈ [m, M]``.

  With :math:`f_t(\lambda) = 1 - \eta_t \lambda` and every sup taken over
  :math:`\lambda \in [m, M]`:

  Attributes:
    final: :math:`\sup |\prod_{t<T} f_t|`, the error ratio after the whole
      run (``1/T_T(z_0)`` for any order of the Chebyshev steps).
    max_prefix: :math:`\max_{t \ge 1} \sup |\prod_{s<t} f_s|`, how far the
      iterates stray from the start.
    max_suffix: :math:`\max_{t < T} \sup |\prod_{s \ge t} f_s|`, how much an
      error injected before step ``t`` (rounding, gradient noise) is amplified
      by the end.
    max_block: :math:`\max_{a < b} \sup |\prod_{a \le s < b} f_s|`, over every
      contiguous non-empty block.
    max_single_step: :math:`\max_t \sup |f_t| = \max_t \max(|1 - \eta_t m|,
      |1 - \eta_t M|)`, exact; no order can have ``max_block`` below it.
  """

  final: float
  max_prefix: float
  max_suffix: float
  max_block: float
  max_single_step: float


def evaluation_points(
  num_steps: int,
  min_curvature: float,
  max_curvature: float,
  oversample: int,
) -> np.ndarray:
  """Chebyshev-distributed points of ``[m, M]``, endpoints and extrema included.

  ``λ_j = m + (M − m) sin²(φ_j/2)``, ``φ_j = jπ/(oversample·T)``: for
  ``j = 0 … oversample·T``, a superset of the extrema of ``T_T`` (and its
  roots when ``oversample`` is even), dense where the polynomials oscillate.
  """
  count = oversample * num_steps
  phi = np.arange(count + 1, dtype=np.float64) * (np.pi / count)
  return (
    min_curvature + (max_curvature - min_curvature) * np.sin(0.5 * phi) ** 2
  )


def stability_profile(
  step_sizes: Any,
  min_curvature: float,
  max_curvature: float,
  *,
  oversample: int = 16,
) -> StabilityProfile:
  r"""Worst-case amplification of every prefix, suffix and block of a schedule.

  For steps :math:`\eta_0, \dots, \eta_{T-1}` taken in this order, gradient
  descent multiplies the error's component along an eigenvector with
  eigenvalue :math:`\lambda` by :math:`\prod_t (1 - \eta_t \lambda)`; a block
  :math:`[a, b)` of steps multiplies whatever error is present at step ``a``
  by :math:`\prod_{a \le t < b} (1 - \eta_t \lambda)`. This function returns
  the sup over :math:`\lambda \in [m, M]` of those products for the whole run,
  for every prefix, every suffix and every contiguous block, and for the
  single steps (see :class:`StabilityProfile`).

  The sups are evaluated in float64 and in log space (no overflow, whatever
  ``T``) at ``oversample · T + 1`` Chebyshev-distributed points that include
  both ends of the interval and the extrema of :math:`T_T`; the largest block
  over all :math:`O(T^2)` blocks comes from one pass over the running minimum
  of the log prefix sums, so the cost is :math:`O(T^2 \cdot \text{oversample})`
  time in chunks of bounded memory. Block maxima are sampled values, so they
  can fall short of the true sup by a relative error that shrinks like
  ``1/oversample²``; ``max_single_step`` is exact.

  Args:
    step_sizes: the ``(T,)`` step sizes in the order taken; a concrete array
      (numpy or JAX), not a traced value.
    min_curvature: ``m > 0``.
    max_curvature: ``M >= m``.
    oversample: evaluation points per step (a positive int).

  Returns:
    A :class:`StabilityProfile` of Python floats. An amplification beyond
    float64's range (about 1.8e308, which sorted orders reach at moderate
    ``T``) is returned as ``inf``: the sums of logs stay finite, so no
    field is ever NaN, and every finite field is the sampled value.

  Raises:
    TypeError: ``step_sizes`` is traced or not an array of real numbers
      (bool, complex, strings, float128), a curvature is traced, or
      ``oversample`` is not an int.
    ValueError: ``step_sizes`` is not a non-empty 1-D array of finite
      numbers, the curvatures are invalid, ``oversample < 1``, or the
      evaluation would exceed ``(T + 1)(oversample·T + 1) = 10**8``
      products (``T = 1024`` at ``oversample = 64`` fits).

  Example:
    >>> import fractal_optax
    >>> steps = fractal_optax.fractal_chebyshev_step_sizes(64, 1.0, 100.0)
    >>> profile = fractal_optax.stability_profile(steps, 1.0, 100.0)
    >>> profile.max_suffix <= 1.0
    True
    >>> round(profile.max_block / profile.max_single_step, 4)
    1.0

  References:
    Agarwal, Goel & Zhang, `Acceleration via Fractal Learning Rate Schedules
    <https://arxiv.org/abs/2103.01338>`_, ICML 2021.
  """
  if _checks.is_traced(step_sizes):
    raise TypeError(
      "stability_profile needs concrete step_sizes, got a traced value;"
      " call it outside jit."
    )
  for name, value in (
    ("min_curvature", min_curvature),
    ("max_curvature", max_curvature),
  ):
    _checks.check_concrete(value, name, "stability_profile")
  _checks.check_curvatures(min_curvature, max_curvature)
  oversample = _checks.check_num_steps(
    oversample, "oversample", maximum=MAX_EVALUATIONS
  )
  try:
    steps = np.asarray(step_sizes)
  except Exception as e:
    raise TypeError(
      f"step_sizes must be a 1-D array of numbers, got {step_sizes!r}."
    ) from e
  if not _checks.is_real_dtype(steps.dtype) or steps.dtype.itemsize > 8:
    raise TypeError(
      "step_sizes must be a 1-D array of real numbers, got dtype"
      f" {steps.dtype}: {step_sizes!r}."
    )
  steps = steps.astype(np.float64)
  if steps.ndim != 1 or steps.size == 0:
    raise ValueError(
      f"step_sizes must be a non-empty 1-D array, got shape {steps.shape}."
    )
  if not np.all(np.isfinite(steps)):
    raise ValueError(f"step_sizes must be finite, got {step_sizes!r}.")
  m, big_m = float(min_curvature), float(max_curvature)
  num_steps = steps.size
  evaluations = (num_steps + 1) * (oversample * num_steps + 1)
  if evaluations > MAX_EVALUATIONS:
    raise ValueError(
      f"stability_profile evaluates (T + 1)(oversample·T + 1) ="
      f" {evaluations:.3g} products, more than the {MAX_EVALUATIONS:.0e} it"
      f" allows, got step_sizes of length T={num_steps} and {oversample=};"
      " lower oversample or profile a shorter schedule."
    )
  with np.errstate(over="ignore"):  # Beyond float64's range: inf.
    single = np.maximum(np.abs(1.0 - steps * m), np.abs(1.0 - steps * big_m))
  lam = evaluation_points(num_steps, m, big_m, oversample)
  # Where η·λ overflows, |1 − ηλ| = |η|λ to float64 precision: use logs.
  with np.errstate(divide="ignore"):
    log_abs_steps = np.log(np.abs(steps))

  final = max_prefix = max_suffix = max_block = -np.inf
  chunk = max(1, _CHUNK_ELEMENTS // (num_steps + 1))
  tiny = np.finfo(np.float64).tiny
  for start in range(0, lam.size, chunk):
    lam_c = lam[start : start + chunk]
    with np.errstate(over="ignore", invalid="ignore"):
      product = np.outer(steps, lam_c)
      log_factor = np.log(np.maximum(np.abs(1.0 - product), tiny))
    huge = ~np.isfinite(product)
    if huge.any():
      rows, cols = np.nonzero(huge)
      log_factor[rows, cols] = log_abs_steps[rows] + np.log(lam_c[cols])
    # prefix[t] = log |∏_{s<t} f_s|, t = 0 … T.
    prefix = np.zeros((num_steps + 1, lam_c.size))
    np.cumsum(log_factor, axis=0, out=prefix[1:])
    final = max(final, prefix[-1].max())
    max_prefix = max(max_prefix, prefix[1:].max())
    max_suffix = max(max_suffix, (prefix[-1] - prefix[:-1]).max())
    running_min = np.minimum.accumulate(prefix[:-1], axis=0)
    max_block = max(max_block, (prefix[1:] - running_min).max())

  with np.errstate(over="ignore"):  # Beyond float64's range: inf.
    return StabilityProfile(
      final=float(np.exp(final)),
      max_prefix=float(np.exp(max_prefix)),
      max_suffix=float(np.exp(max_suffix)),
      max_block=float(np.exp(max_block)),
      max_single_step=float(single.max()),
    )
