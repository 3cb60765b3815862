"""Fractal Chebyshev step sizes: a jitted generator and an Optax schedule."""

from __future__ import annotations

import functools
import numbers
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fractal_optax import _checks
from fractal_optax._chebyshev import chebyshev_node_fractions
from fractal_optax._chebyshev import curvature_names
from fractal_optax._chebyshev import host_step_sizes
from fractal_optax._chebyshev import traced_step_sizes
from fractal_optax._order import fractal_order


@functools.partial(jax.jit, static_argnums=(0, 3))
def _fractal_steps(
  num_steps: int, min_curvature, max_curvature, dtype
) -> jax.Array:
  """The traced path: the scaled form in jnp, in the fractal order."""
  fractions = chebyshev_node_fractions(num_steps)[fractal_order(num_steps)]
  return traced_step_sizes(fractions, min_curvature, max_curvature, dtype)


def _host_table(
  num_steps: int, min_curvature, max_curvature, dtype
) -> np.ndarray:
  """Concrete curvatures: the fractal-order steps as a numpy ``dtype`` array.

  Computed in float64 (scaled form) and rounded once; raises ValueError when a
  step does not fit ``dtype``.
  """
  fractions = chebyshev_node_fractions(num_steps)[fractal_order(num_steps)]
  steps = host_step_sizes(fractions, float(min_curvature), float(max_curvature))
  return _checks.check_representable(
    steps, dtype, curvature_names(min_curvature, max_curvature)
  )


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

  ``num_steps`` is static, and the curvatures may be traced, so a schedule
  can be built inside ``jit`` from curvature measured on device. Concrete
  curvatures are computed as in :func:`chebyshev_step_sizes` (float64 on the
  host, rounded once, a ``ValueError`` when a step does not fit the dtype);
  traced ones by a jit-compiled generator in the form scaled by ``M``, in at
  least float32. Traced values cannot be checked: no intermediate overflows
  or divides by zero for finite ``M > 0`` and ``m >= 0`` (even ``m > M``;
  ``m = 0`` gives the limit ``m → 0``), so the result is finite wherever the
  steps fit the dtype; a non-positive or non-finite traced ``M`` gives inf
  or NaN.

  Args:
    num_steps: ``T``, a positive Python int, at most ``2**24``.
    min_curvature: ``m > 0``.
    max_curvature: ``M >= m``.

  Returns:
    A ``(T,)`` array of step sizes in the curvatures' floating dtype.

  Raises:
    TypeError, ValueError: as :func:`chebyshev_step_sizes`.

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
  dtype = _checks.float_dtype(min_curvature, max_curvature)
  if _checks.is_traced(min_curvature) or _checks.is_traced(max_curvature):
    return _fractal_steps(num_steps, min_curvature, max_curvature, dtype)
  return jnp.asarray(
    _host_table(num_steps, min_curvature, max_curvature, dtype)
  )


def _check_count_dtype(dtype: Any) -> None:
  if not _checks.is_real_dtype(dtype):
    raise TypeError(
      f"count must be an integer or floating step count, got dtype {dtype}."
    )


def _host_step_index(count: Any, num_steps: int, cycle: bool) -> np.ndarray:
  """:func:`_step_index` for Python and numpy counts, exact at any size."""
  if isinstance(count, numbers.Integral) and not isinstance(
    count, (bool, np.generic)
  ):
    # Python ints of any size.
    count = max(int(count), 0)
    return np.asarray(
      count % num_steps if cycle else min(count, num_steps - 1), np.int32
    )
  if isinstance(count, (bool, np.bool_)):
    _check_count_dtype(np.bool_)
  array = np.asarray(count)
  _check_count_dtype(array.dtype)
  if jnp.issubdtype(array.dtype, jnp.floating):
    array = array.astype(np.float64)
    if not np.all(np.isfinite(array)):
      raise ValueError(f"count must be finite, got {count=!r}.")
    array = np.maximum(np.floor(array), 0.0)
    index = (
      np.mod(array, num_steps) if cycle else np.minimum(array, num_steps - 1)
    )
    return index.astype(np.int32)
  if array.dtype.kind == "u":
    array = array.astype(np.uint64)
  else:
    array = np.maximum(array.astype(np.int64), 0)
  index = (
    np.remainder(array, num_steps)
    if cycle
    else np.minimum(array, num_steps - 1)
  )
  return index.astype(np.int32)


def _step_index(count: Any, num_steps: int, cycle: bool) -> jax.Array:
  """Maps optax counts to indices in ``[0, T)`` without overflow."""
  if not isinstance(count, jax.Array):  # Python or numpy: exact, on the host.
    return jnp.asarray(_host_step_index(count, num_steps, cycle))
  _check_count_dtype(count.dtype)
  if jnp.issubdtype(count.dtype, jnp.floating):
    # At least float32, where every index below T <= 2**24 is exact.
    count = count.astype(jnp.promote_types(count.dtype, jnp.float32))
    count = jnp.where(jnp.isnan(count), 0.0, count)
    count = jnp.maximum(jnp.floor(count), 0.0)
    index = (
      jnp.mod(count, num_steps) if cycle else jnp.minimum(count, num_steps - 1)
    )
    index = jnp.where(jnp.isfinite(index), index, 0.0)  # inf mod T.
    return index.astype(jnp.int32)
  zero = jnp.zeros((), count.dtype)
  count = jnp.maximum(count, zero)  # Counts below 0 behave as 0.
  if num_steps > jnp.iinfo(count.dtype).max:
    # Every count of this dtype is below T: it is its own index.
    return count.astype(jnp.int32)
  # In the count's own integer dtype: T fits it and count >= 0, so neither
  # the remainder nor the minimum can overflow.
  t = jnp.asarray(num_steps, count.dtype)
  index = jnp.remainder(count, t) if cycle else jnp.minimum(count, t - 1)
  # int32 holds every index (T <= 2**24); narrower dtypes would overflow in
  # jax's negative-index normalisation (index + T).
  return index.astype(jnp.int32)


def _scale_count(count: Any) -> jax.Array:
  """The count handed to a schedule ``scale``: clipped below at 0.

  Python and numpy integer counts beyond the default int dtype saturate at its
  largest value, as optax's counts do.
  """
  if isinstance(count, jax.Array):
    return jnp.maximum(count, jnp.zeros((), count.dtype))
  if isinstance(count, numbers.Integral) and not isinstance(count, np.generic):
    count = np.asarray(max(int(count), 0) if count < 2**63 else 2**63 - 1)
  array = np.asarray(count)
  if jnp.issubdtype(array.dtype, jnp.integer):
    int_dtype = jnp.asarray(0).dtype
    limit = int(np.iinfo(int_dtype).max)
    if array.dtype.kind == "u":
      array = np.minimum(array.astype(np.uint64), limit)
    else:
      array = np.clip(array.astype(np.int64), 0, limit)
    return jnp.asarray(array.astype(int_dtype))
  return jnp.asarray(np.maximum(array, 0))


def _check_scale_and_cycle(scale: Any, cycle: Any) -> Any:
  """Checks a schedule's ``scale`` and ``cycle``; returns ``scale`` (a Python
  int as a float: one beyond int64 would not trace)."""
  if not isinstance(cycle, (bool, np.bool_)):
    raise TypeError(f"cycle must be a bool, got {cycle=!r}.")
  if callable(scale):
    return scale
  try:
    _checks.check_positive_scalar(scale, "scale")
  except TypeError as e:
    raise TypeError(
      "scale must be a positive number or an optax schedule (a callable),"
      f" got {scale=!r}."
    ) from e
  if isinstance(scale, numbers.Integral) and not isinstance(scale, np.generic):
    scale = float(scale)
  return scale


def _check_scaled(table: np.ndarray, scale: Any, names: str) -> None:
  """A concrete numeric ``scale`` times the table must fit the dtype the
  product is computed in."""
  if not callable(scale) and not _checks.is_traced(scale):
    _checks.check_representable(
      table.astype(np.float64) * float(scale),
      jnp.result_type(table.dtype, scale),
      f"{scale=!r}, " + names,
    )


def _apply_scale(
  value: jax.Array, scale: optax.ScalarOrSchedule, count: Any
) -> jax.Array:
  """``value`` times ``scale`` (a constant, or a schedule of ``count``)."""
  if callable(scale):
    return value * scale(_scale_count(count))
  return value * scale


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

  Works under ``jit`` and ``vmap`` and on counts of every integer dtype
  (int8 … int64, uint8 … uint64: optax's int32, flax nnx's uint32, int64
  under x64) at all their values, including their maxima, without overflow,
  and on floating counts (floored; exact up to ``2**24`` in float32). Python
  ints of any size and numpy counts are reduced exactly on the host; a
  non-finite concrete float count raises ``ValueError``, while a traced NaN
  count gives index 0 (and ``±inf`` index 0 when cycling, as ``-inf`` does
  without). Bool and complex counts raise ``TypeError``.

  When the curvatures are concrete the table of steps is computed once in
  float64 numpy as in :func:`chebyshev_step_sizes`, rounded once to the
  curvatures' dtype and held as a constant; a step, or a step times a
  numeric ``scale``, that does not fit that dtype raises ``ValueError`` here.
  Traced curvatures (a schedule built inside ``jit``) go through
  :func:`fractal_chebyshev_step_sizes`' traced path, and their values (and
  a callable ``scale``'s) are not checked.

  Args:
    num_steps: ``T``, the cycle length, a positive Python int, at most
      ``2**24``.
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
    ValueError: ``num_steps`` is outside ``[1, 2**24]``, a curvature is not
      finite and positive, ``min_curvature > max_curvature``, ``scale`` is
      not finite and positive, or the (scaled) steps do not fit the dtype.

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
  scale = _check_scale_and_cycle(scale, cycle)

  traced = _checks.is_traced(min_curvature) or _checks.is_traced(max_curvature)
  dtype = _checks.float_dtype(min_curvature, max_curvature)
  if traced:
    table = None
  else:
    # A numpy constant: no jnp array is created here (optax issue #503).
    table = _host_table(num_steps, min_curvature, max_curvature, dtype)
    _check_scaled(table, scale, curvature_names(min_curvature, max_curvature))

  def schedule(count: jax.typing.ArrayLike) -> jax.Array:
    steps = (
      _fractal_steps(num_steps, min_curvature, max_curvature, dtype)
      if table is None
      else jnp.asarray(table)
    )
    index = _step_index(count, num_steps, cycle)
    return _apply_scale(steps[index], scale, count)

  return schedule
