"""The silver step sizes of Altschuler & Parrilo, for every T, and schedules.

Gradient descent with these steps is accelerated on every smooth (strongly)
convex function, not only on quadratics: its guarantee is a theorem over the
whole function class, where the fractal Chebyshev steps' is over quadratics.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fractal_optax import _checks
from fractal_optax._chebyshev import curvature_names
from fractal_optax._schedule import _apply_scale
from fractal_optax._schedule import _check_scale_and_cycle
from fractal_optax._schedule import _check_scaled
from fractal_optax._schedule import _step_index

# The silver ratio ρ = 1 + √2.
SILVER_RATIO = 1.0 + math.sqrt(2.0)
# The largest horizon exponent: 2**24 steps is the longest cycle of the
# library (``_checks.MAX_NUM_STEPS``).
MAX_SILVER_DOUBLINGS = 24
# Counts are reduced modulo this power of two first (see _horizon_index).
_INDEX_PERIOD = 2**MAX_SILVER_DOUBLINGS

_REFERENCES = """
  References:
    Altschuler & Parrilo, `Acceleration by Stepsize Hedging I: Multi-Step
    Descent and the Silver Stepsize Schedule
    <https://arxiv.org/abs/2309.07879>`_, 2023 (J. ACM, 2025).
    Altschuler & Parrilo, `Acceleration by Stepsize Hedging II: Silver
    Stepsize Schedule for Smooth Convex Optimization
    <https://arxiv.org/abs/2309.16530>`_, 2023 (Math. Program., 2025).
"""


def _add_references(function):
  function.__doc__ += _REFERENCES
  return function


def _valuation(i: np.ndarray) -> np.ndarray:
  """The 2-adic valuation ν(i) of positive int64 ``i`` (numpy)."""
  return np.log2(i & -i).astype(np.int64)


def _traced_valuation(i: jax.Array) -> jax.Array:
  """The 2-adic valuation ν(i) of positive int32 ``i`` (jnp)."""
  return jax.lax.population_count((i & -i) - 1)


def _blocks(num_steps: int) -> list[tuple[int, int]]:
  """``(k, offset)`` of the ``2**k`` blocks of T: binary digits, smallest first.

  The block of digit ``k`` starts after the smaller ones, at ``T mod 2**k``.
  """
  return [
    (k, num_steps & ((1 << k) - 1))
    for k in range(num_steps.bit_length())
    if num_steps >> k & 1
  ]


def _yz(ratio, count: int, xp) -> tuple[list, list]:
  """``y_1 … y_{count+1}`` and ``z_1 … z_{count+1}`` of the recursion."""
  ys, zs = [ratio], [ratio]
  for _ in range(count):
    eta = 1.0 - zs[-1]
    root = eta + xp.sqrt(1.0 + eta * eta)
    ys.append(zs[-1] / root)
    zs.append(zs[-1] * root)
  return ys, zs


def _traced_yz(ratio: jax.Array, count: int) -> tuple[jax.Array, jax.Array]:
  """:func:`_yz` as a ``lax.scan`` (unrolled, XLA compiles slowly)."""

  def body(z, _):
    eta = 1.0 - z
    root = eta + jnp.sqrt(1.0 + eta * eta)
    return z * root, (z / root, z * root)

  _, (ys, zs) = jax.lax.scan(body, ratio, None, length=count)
  return jnp.append(ratio, ys), jnp.append(ratio, zs)


def _host_steps(num_steps: int, m: float, big_m: float) -> np.ndarray:
  """The strongly convex silver steps of T in float64 (unchecked)."""
  ratio = m / big_m
  blocks = _blocks(num_steps)
  ys, zs = _yz(ratio, blocks[-1][0], math)
  # ψ(t)/M = (1 + κt)/((1 + t)M) = (r + t)/((1 + t)m): no κ = M/m to overflow.
  step = lambda t: (ratio + t) / ((1.0 + t) * m)
  out = []
  for k, _ in blocks:
    i = np.arange(1, 2**k + 1, dtype=np.int64)
    # a_{ν+2} = ψ(y_{ν+2}) is ys[ν + 1]; the padding stands for the last step.
    values = np.asarray([step(y) for y in ys] + [0.0])[_valuation(i) + 1]
    values[-1] = step(zs[k])
    out.append(values)
  return np.concatenate(out)


def _traced_steps(
  index: jax.Array, num_steps: int | None, m, big_m, dtype
) -> jax.Array:
  """Step ``index`` (int32, in ``[0, T)``) of T in jnp; ``None``: the horizon.

  With ``num_steps=None`` the cycle is one block of ``2**k`` steps, ``k`` =
  :func:`silver_num_doublings` of the (traced) curvatures.
  """
  m = jnp.asarray(m, dtype)
  big_m = jnp.asarray(big_m, dtype)
  ratio = m / big_m
  step = lambda t: (ratio + t) / ((1.0 + t) * m)
  if num_steps is None:
    k = _traced_num_doublings(m, big_m)
    layout = [(k, 0)]
    depth = MAX_SILVER_DOUBLINGS
  else:
    layout = _blocks(num_steps)
    depth = layout[-1][0]
  ys, zs = _traced_yz(ratio, depth)
  a = step(jnp.append(ys, ys[-1]))  # a_{j+1} at j; padded for ν + 1.
  b = step(zs)  # b_{j+1} at j.
  out = jnp.zeros(jnp.shape(index), dtype)
  for k, offset in layout:
    i = index - offset + 1  # 1-based position in the block.
    size = jnp.left_shift(jnp.int32(1), k)
    inside = (i >= 1) & (i <= size)
    i = jnp.clip(i, 1, size)
    value = jnp.where(i == size, b[k], a[_traced_valuation(i) + 1])
    out = jnp.where(inside, value, out)
  return out


def _traced_num_doublings(m, big_m) -> jax.Array:
  kappa = jnp.asarray(big_m) / jnp.asarray(m)
  k = jnp.floor(jnp.log(jnp.maximum(kappa / 3.0, 1.0)) / math.log(SILVER_RATIO))
  return jnp.clip(k, 0, MAX_SILVER_DOUBLINGS).astype(jnp.int32)


@_add_references
def silver_num_doublings(
  min_curvature: jax.typing.ArrayLike, max_curvature: jax.typing.ArrayLike
) -> Any:
  r"""The silver horizon exponent: the saturated cycle has ``2**k`` steps.

  .. math::

    k^\star = \max\big(0, \lfloor \log_\rho(\kappa / 3) \rfloor\big),
    \qquad \rho = 1 + \sqrt 2, \quad \kappa = M / m,

  clipped at ``MAX_SILVER_DOUBLINGS`` (24, the library's longest cycle
  ``2**24``, reached at ``κ`` about ``4.8e9``). Up to ``n* = 2**k*`` steps
  the silver schedule converges super-exponentially, like
  :math:`\exp(-n^{\log_2 \rho}/\kappa)`; beyond it, repeating the block of
  ``n*`` steps gives the rate :math:`\exp(-n/\kappa^{\log_\rho 2})`,
  :math:`\log_\rho 2 \approx 0.7864` (Part I, Section 1). This is
  :func:`silver_schedule`'s default cycle length.

  Args:
    min_curvature: ``m > 0``; may be traced.
    max_curvature: ``M >= m``; may be traced.

  Returns:
    ``k*`` as a Python int for concrete curvatures, an int32 scalar array for
    traced ones.

  Raises:
    TypeError, ValueError: a curvature is not a real number, is not finite
      and positive, or ``min_curvature > max_curvature``.

  Example:
    >>> import fractal_optax
    >>> [fractal_optax.silver_num_doublings(1.0, k) for k in (3, 10, 100)]
    [0, 1, 3]
  """
  low, high = _checks.check_curvatures(min_curvature, max_curvature)
  if low is None or high is None:  # Traced.
    return _traced_num_doublings(min_curvature, max_curvature)
  kappa = high / low
  if kappa <= 3.0:
    return 0
  k = math.floor(math.log(kappa / 3.0) / math.log(SILVER_RATIO))
  return min(max(k, 0), MAX_SILVER_DOUBLINGS)


@_add_references
def silver_step_sizes(
  num_steps: int,
  min_curvature: jax.typing.ArrayLike,
  max_curvature: jax.typing.ArrayLike,
) -> jax.Array:
  r"""The silver step sizes for ``L``-smooth ``μ``-strongly convex functions.

  With :math:`\kappa = M/m`, :math:`\psi(t) = (1 + \kappa t)/(1 + t)` and
  :math:`y_1 = z_1 = 1/\kappa`,

  .. math::

    \eta_j = 1 - z_j, \quad
    y_{j+1} = \frac{z_j}{\eta_j + \sqrt{1 + \eta_j^2}}, \quad
    z_{j+1} = z_j \big(\eta_j + \sqrt{1 + \eta_j^2}\big), \quad
    a_j = \psi(y_j), \quad b_j = \psi(z_j).

  The block of ``2**k`` steps (in units of ``1/M``) is :math:`h^{(1)} =
  [b_1]`, :math:`h^{(2n)} = [\tilde h^{(n)}, a_{j+1}, \tilde h^{(n)},
  b_{j+1}]` for :math:`n = 2^{j-1}`, :math:`\tilde h` being :math:`h`
  without its last step: step ``i = 1 … 2**k − 1`` of the block is
  :math:`a_{\nu(i) + 2}` (:math:`\nu` the 2-adic valuation) and the last is
  :math:`b_{k+1}`. ``T = 1`` is the best constant step ``2/(M + m)``. After
  the block, for every ``L = M``, ``μ = m`` smooth strongly convex ``f``,

  .. math::

    \|x_{2^k} - x^\star\| \le \tau_k \|x_0 - x^\star\|, \qquad
    \tau_k = \frac{1 - z_{k+1}}{1 + z_{k+1}}
    \quad (\text{Part I; see } \texttt{silver\_error\_bound}).

  **Other T.** The natural lengths are powers of two. Any other
  :math:`T = \sum_j 2^{k_j}` is the concatenation of the blocks of its binary
  digits, smallest first (what PEPit's silver example does); each block
  contracts by its :math:`\tau_{k_j}` from wherever it starts, so the cycle
  is certified with the product of the blocks' bounds. (Truncating a longer
  block has no such guarantee: its prefixes end on a long step ``a``.)
  Beyond the horizon ``2**k*`` (:func:`silver_num_doublings`) one long block
  still holds its bound but is slower than repeating the ``2**k*`` block.

  Concrete curvatures are computed in float64 on the host and rounded once
  to the curvatures' dtype (a ``ValueError`` when a step does not fit it);
  traced ones in that dtype with ``jnp`` (at least float32); traced values
  cannot be checked.

  Args:
    num_steps: ``T``, a positive Python int, at most ``2**24``.
    min_curvature: ``m > 0``, the strong convexity ``μ``.
    max_curvature: ``M >= m``, the smoothness ``L``.

  Returns:
    A ``(T,)`` array of step sizes in the curvatures' floating dtype.

  Raises:
    TypeError: ``num_steps`` is not an int, or a curvature is not a real
      number.
    ValueError: ``num_steps`` is outside ``[1, 2**24]``, a curvature is not
      finite and positive, ``min_curvature > max_curvature``, or a step does
      not fit the dtype.

  Example:
    >>> import fractal_optax
    >>> steps = fractal_optax.silver_step_sizes(4, 0.1, 1.0)
    >>> [round(float(s), 4) for s in steps]
    [1.3837, 1.892, 1.3837, 3.8282]
    >>> round(float(fractal_optax.silver_step_sizes(1, 0.1, 1.0)[0]), 4)
    1.8182
  """
  num_steps = _checks.check_num_steps(num_steps)
  _checks.check_curvatures(min_curvature, max_curvature)
  dtype = _checks.float_dtype(min_curvature, max_curvature)
  if _checks.is_traced(min_curvature) or _checks.is_traced(max_curvature):
    index = jnp.arange(num_steps, dtype=jnp.int32)
    return _traced_steps(index, num_steps, min_curvature, max_curvature, dtype)
  return jnp.asarray(
    _host_table(num_steps, min_curvature, max_curvature, dtype)
  )


def _host_table(
  num_steps: int, min_curvature, max_curvature, dtype
) -> np.ndarray:
  steps = _host_steps(num_steps, float(min_curvature), float(max_curvature))
  return _checks.check_representable(
    steps, dtype, curvature_names(min_curvature, max_curvature)
  )


@_add_references
def silver_error_bound(
  num_steps: int, min_curvature: float, max_curvature: float
) -> float:
  r"""The proven worst case of one cycle of :func:`silver_step_sizes`.

  .. math::

    \sup_f \frac{\|x_T - x^\star\|}{\|x_0 - x^\star\|}
    \le \prod_j \frac{1 - z_{k_j + 1}}{1 + z_{k_j + 1}},
    \qquad T = \sum_j 2^{k_j},

  over every ``M``-smooth ``m``-strongly convex ``f`` (``z`` as in
  :func:`silver_step_sizes`): Part I's bound for each block of the binary
  decomposition, multiplied. For ``T = 2**k`` it is one factor, and the
  performance-estimation problem attains it (PEPit's silver example); for
  ``T = 1`` it is the best constant step's ``(κ − 1)/(κ + 1)``. Compare
  :func:`chebyshev_error_bound`, which holds over quadratics only. Computed
  in float64.

  Args:
    num_steps: ``T``, a positive Python int, at most ``2**24``.
    min_curvature: ``m > 0`` (a concrete number).
    max_curvature: ``M >= m`` (a concrete number).

  Returns:
    The bound as a Python float in ``[0, 1]``.

  Raises:
    TypeError, ValueError: as :func:`chebyshev_error_bound`.

  Example:
    >>> import fractal_optax
    >>> round(fractal_optax.silver_error_bound(8, 0.1, 1.0) ** 2, 6)
    0.016978
  """
  num_steps = _checks.check_num_steps(num_steps)
  _checks.check_concrete(min_curvature, "min_curvature", "silver_error_bound")
  _checks.check_concrete(max_curvature, "max_curvature", "silver_error_bound")
  _checks.check_curvatures(min_curvature, max_curvature)
  blocks = _blocks(num_steps)
  _, zs = _yz(float(min_curvature) / float(max_curvature), blocks[-1][0], math)
  return math.prod((1.0 - zs[k]) / (1.0 + zs[k]) for k, _ in blocks)


def _convex_table(num_steps: int) -> np.ndarray:
  """``1 + ρ^{ν(i) − 1}``, ``i = 1 … T``, in float64 (units of ``1/M``)."""
  i = np.arange(1, num_steps + 1, dtype=np.int64)
  return 1.0 + SILVER_RATIO ** (_valuation(i) - 1.0)


@_add_references
def silver_convex_step_sizes(
  num_steps: int, max_curvature: jax.typing.ArrayLike
) -> jax.Array:
  r"""The silver step sizes for ``L``-smooth convex functions (``μ = 0``).

  .. math::

    \eta_i = \frac{1 + \rho^{\nu(i) - 1}}{M}, \qquad i = 1, \dots, T,
    \qquad \rho = 1 + \sqrt 2,

  :math:`\nu(i)` the 2-adic valuation of ``i``: in units of ``1/M``,
  ``√2, 2, √2, 2 + √2, √2, 2, √2, 4 + 2√2, …``. For ``T = 2**k − 1``
  and every ``M``-smooth convex ``f`` with a minimiser (Part II, Theorem
  1.1),

  .. math::

    f(x_T) - f^\star \le
    \frac{M \|x_0 - x^\star\|^2}{1 + \sqrt{4\rho^{2k} - 3}}
    = O\big(T^{-\log_2 \rho}\big), \quad \log_2\rho \approx 1.2716.

  **Other T.** The sequence is prefix-consistent (step ``i`` does not depend
  on ``T``), so any ``T`` takes its first ``T`` terms. Part II proves the
  bound only at ``T = 2**k − 1``, the natural lengths; a cycle that ends
  just after one of them ends on a long step (``T = 2**k`` ends on
  ``1 + ρ^{k−1}``), which can raise ``f``: prefer ``T = 2**k − 1``.

  ``max_curvature`` may be traced (the steps are a float64 constant divided
  by it).

  Args:
    num_steps: ``T``, a positive Python int, at most ``2**24``.
    max_curvature: ``M > 0``, the smoothness ``L``.

  Returns:
    A ``(T,)`` array of step sizes in ``max_curvature``'s floating dtype.

  Raises:
    TypeError: ``num_steps`` is not an int, or ``max_curvature`` is not a
      real number.
    ValueError: ``num_steps`` is outside ``[1, 2**24]``,
      ``max_curvature`` is not finite and positive, or a step does not fit
      the dtype.

  Example:
    >>> import fractal_optax
    >>> steps = fractal_optax.silver_convex_step_sizes(7, 1.0)
    >>> [round(float(s), 4) for s in steps]
    [1.4142, 2.0, 1.4142, 3.4142, 1.4142, 2.0, 1.4142]
  """
  num_steps = _checks.check_num_steps(num_steps)
  _checks.check_positive_scalar(max_curvature, "max_curvature")
  dtype = _checks.float_dtype(max_curvature)
  table = _convex_table(num_steps)
  if _checks.is_traced(max_curvature):
    return jnp.asarray(table, dtype) / jnp.asarray(max_curvature, dtype)
  return jnp.asarray(_convex_host_table(num_steps, max_curvature, dtype))


def _convex_host_table(num_steps: int, max_curvature, dtype) -> np.ndarray:
  return _checks.check_representable(
    _convex_table(num_steps) / float(max_curvature),
    dtype,
    f"{max_curvature=!r}",
  )


def _horizon_index(count: Any, period: jax.Array, cycle: bool) -> jax.Array:
  """The index of ``count`` in a traced power-of-two ``period <= 2**24``.

  The count is first reduced exactly to ``[0, 2**24)`` (cycling) or clipped
  to ``2**24 − 1`` (holding) by the fractal schedule's reduction, which
  handles every count dtype; ``period`` divides ``2**24``.
  """
  index = _step_index(count, _INDEX_PERIOD, cycle)
  if cycle:
    return index & (period - 1)
  return jnp.minimum(index, period - 1)


@_add_references
def silver_schedule(
  num_steps: int | None,
  min_curvature: jax.typing.ArrayLike,
  max_curvature: jax.typing.ArrayLike,
  *,
  scale: optax.ScalarOrSchedule = 1.0,
  cycle: bool = True,
) -> optax.Schedule:
  r"""Optax schedule of the strongly convex silver steps, optionally repeated.

  .. math::

    \text{schedule}(c) = s(c) \cdot \eta_{c \bmod T}
    \quad (\texttt{cycle=True}), \qquad
    s(c) \cdot \eta_{\min(c,\, T - 1)}
    \quad (\texttt{cycle=False}),

  where :math:`\eta` is :func:`silver_step_sizes` ``(T, m, M)``, ``c`` the
  optax step count (counts below 0 behave as 0) and ``s = scale`` a constant
  or an optax schedule. Each cycle contracts ``‖x − x*‖`` on every smooth
  strongly convex function by :func:`silver_error_bound`; ``num_steps=None``
  takes the paper's saturated cycle, ``T = 2**k*`` with ``k*`` =
  :func:`silver_num_doublings` ``(m, M)``, whose repetition converges at the
  rate :math:`\exp(-n/\kappa^{0.7864})` (Part I).

  ``cycle=False`` holds the last step, as
  :func:`fractal_chebyshev_schedule` does. For ``T >= 2`` that step,
  :math:`b_{k+1}/M`, exceeds the stability limit ``2/M``, so gradient
  descent diverges if it runs on: hold only to stop at ``T``, or join
  another schedule after it (``optax.join_schedules``).

  Counts of every integer dtype at all their values, floating counts, and
  Python and numpy counts are reduced as :func:`fractal_chebyshev_schedule`
  reduces them. The curvatures may be traced (a schedule built inside
  ``jit``), even with ``num_steps=None``: the cycle length is then computed
  on device; concrete curvatures give a float64 table rounded once to their
  dtype and held as a constant.

  Args:
    num_steps: ``T``, the cycle length, a positive Python int at most
      ``2**24``, or ``None`` for ``2**silver_num_doublings(m, M)``.
    min_curvature: ``m > 0``, the strong convexity.
    max_curvature: ``M >= m``, the smoothness.
    scale: a positive float, or an optax schedule of the count, multiplying
      every value (a base learning rate).
    cycle: repeat the ``T`` steps (``True``) or hold the last one after ``T``
      counts (``False``).

  Returns:
    An ``optax.Schedule``: a function of the count returning the step size.

  Raises:
    TypeError: ``num_steps`` is neither an int nor None, a curvature is not a
      number, ``scale`` is neither a number nor callable, or ``cycle`` is not
      a bool.
    ValueError: ``num_steps`` is outside ``[1, 2**24]``, a curvature is not
      finite and positive, ``min_curvature > max_curvature``, ``scale`` is
      not finite and positive, or the (scaled) steps do not fit the dtype.

  Example:
    >>> import jax.numpy as jnp
    >>> import fractal_optax
    >>> schedule = fractal_optax.silver_schedule(2, 0.1, 1.0)
    >>> [round(float(v), 4) for v in schedule(jnp.arange(4))]
    [1.3837, 2.6503, 1.3837, 2.6503]
    >>> fractal_optax.silver_schedule(None, 0.1, 1.0)(3) == schedule(3)
    Array(True, dtype=bool)
  """
  if num_steps is not None:
    num_steps = _checks.check_num_steps(num_steps)
  _checks.check_curvatures(min_curvature, max_curvature)
  scale = _check_scale_and_cycle(scale, cycle)
  traced = _checks.is_traced(min_curvature) or _checks.is_traced(max_curvature)
  dtype = _checks.float_dtype(min_curvature, max_curvature)
  if traced:
    table = None
  else:
    length = num_steps
    if length is None:
      length = 2 ** int(silver_num_doublings(min_curvature, max_curvature))
    # A numpy constant: no jnp array is created here (optax issue #503).
    table = _host_table(length, min_curvature, max_curvature, dtype)
    _check_scaled(table, scale, curvature_names(min_curvature, max_curvature))

  def schedule(count: jax.typing.ArrayLike) -> jax.Array:
    if table is not None:
      value = jnp.asarray(table)[_step_index(count, table.size, cycle)]
    elif num_steps is None:
      k = _traced_num_doublings(min_curvature, max_curvature)
      period = jnp.left_shift(jnp.int32(1), k)
      value = _traced_steps(
        _horizon_index(count, period, cycle),
        None,
        min_curvature,
        max_curvature,
        dtype,
      )
    else:
      value = _traced_steps(
        _step_index(count, num_steps, cycle),
        num_steps,
        min_curvature,
        max_curvature,
        dtype,
      )
    return _apply_scale(value, scale, count)

  return schedule


@_add_references
def silver_convex_schedule(
  num_steps: int,
  max_curvature: jax.typing.ArrayLike,
  *,
  scale: optax.ScalarOrSchedule = 1.0,
  cycle: bool = True,
) -> optax.Schedule:
  r"""Optax schedule of the convex (``μ = 0``) silver steps.

  .. math::

    \text{schedule}(c) = s(c) \cdot \eta_{(c \bmod T) + 1}
    \quad (\texttt{cycle=True}), \qquad
    s(c) \cdot \eta_{\min(c,\, T - 1) + 1}
    \quad (\texttt{cycle=False}),

  with :math:`\eta_i = (1 + \rho^{\nu(i) - 1})/M` as in
  :func:`silver_convex_step_sizes` (``T = 2**k − 1`` carries Part II's
  guarantee), ``c`` the optax step count and ``s = scale``. For
  ``T = 2**k − 1`` the last step is ``√2/M < 2/M``, so holding it
  (``cycle=False``) is plain gradient descent with a stable step after the
  cycle. Counts of every dtype are reduced as
  :func:`fractal_chebyshev_schedule` reduces them; ``max_curvature`` may be
  traced.

  Args:
    num_steps: ``T``, the cycle length, a positive Python int at most
      ``2**24``.
    max_curvature: ``M > 0``, the smoothness.
    scale: a positive float, or an optax schedule of the count, multiplying
      every value (a base learning rate).
    cycle: repeat the ``T`` steps (``True``) or hold the last one after ``T``
      counts (``False``).

  Returns:
    An ``optax.Schedule``: a function of the count returning the step size.

  Raises:
    TypeError, ValueError: as :func:`silver_schedule` (``num_steps`` may
      not be None).

  Example:
    >>> import jax.numpy as jnp
    >>> import fractal_optax
    >>> schedule = fractal_optax.silver_convex_schedule(3, 1.0, cycle=False)
    >>> [round(float(v), 4) for v in schedule(jnp.arange(5))]
    [1.4142, 2.0, 1.4142, 1.4142, 1.4142]
  """
  num_steps = _checks.check_num_steps(num_steps)
  _checks.check_positive_scalar(max_curvature, "max_curvature")
  scale = _check_scale_and_cycle(scale, cycle)
  dtype = _checks.float_dtype(max_curvature)
  traced = _checks.is_traced(max_curvature)
  if traced:
    # Python floats: the float64 multipliers, divided by M on device.
    multipliers = _convex_table(num_steps)
    table = None
  else:
    multipliers = None
    table = _convex_host_table(num_steps, max_curvature, dtype)
    _check_scaled(table, scale, f"{max_curvature=!r}")

  def schedule(count: jax.typing.ArrayLike) -> jax.Array:
    index = _step_index(count, num_steps, cycle)
    if table is not None:
      value = jnp.asarray(table)[index]
    else:
      value = jnp.asarray(multipliers, dtype)[index] / jnp.asarray(
        max_curvature, dtype
      )
    return _apply_scale(value, scale, count)

  return schedule
