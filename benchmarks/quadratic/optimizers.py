"""The compared optimisers, each an optax ``GradientTransformation``.

On a quadratic with Hessian spectrum in ``[m, M]`` (``κ = M/m``):

* ``gd``: ``optax.sgd(2/(M + m))``, the best constant step (contraction
  ``(κ − 1)/(κ + 1)`` per step).
* ``gd_1/M``: ``optax.sgd(1/M)``, the textbook safe step.
* ``heavy_ball``: Polyak's optimal constants, ``optax.sgd(α, momentum=β)``
  with ``α = 4/(√M + √m)²``, ``β = ((√κ − 1)/(√κ + 1))²``.
* ``nesterov``: the strongly convex constants, ``optax.sgd(1/M,
  momentum=(√κ − 1)/(√κ + 1), nesterov=True)`` (optax's form of Nesterov's
  method is the Sutskever et al. reparametrisation).
* ``silver``: the silver step-size schedule of Altschuler & Parrilo (2023),
  strongly convex version (:func:`silver_schedule`).
* ``fractal``: ``fractal_optax.fractal_sgd``, one cycle of ``T`` steps or a
  short cycle repeated.

For the benchmark's many runs the same methods are also available in a form
with one compiled ``lax.scan`` per (kind, dtype, shape): :class:`Method` is
the static part (hashable), the hyper-parameters are arrays (``hparams``), and
:func:`build` constructs the optimiser inside ``jit``. Every step-size
schedule is then a table of step sizes indexed by ``count mod period``
(:func:`table_schedule`); the fractal schedule is also run through the real
``fractal_optax.fractal_sgd`` (kind ``"fractal_sgd"``, curvatures traced).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fractal_optax

SILVER_RATIO = 1.0 + math.sqrt(2.0)
Hparams = dict[str, Any]


# ---------------------------------------------------------------------------
# The silver step-size schedule.
# ---------------------------------------------------------------------------


def silver_step_sizes(min_curvature: float, max_curvature: float,
                      num_doublings: int) -> np.ndarray:
  r"""The ``2**k`` steps of the strongly convex silver schedule, in float64.

  Altschuler & Parrilo (2023, Part I), in units of ``1/M``: with
  :math:`\psi(t) = (1 + \kappa t)/(1 + t)` and :math:`y_1 = z_1 = 1/\kappa`,

  .. math::

    \eta_j = 1 - z_j, \quad
    y_{j+1} = \frac{z_j}{\eta_j + \sqrt{1 + \eta_j^2}}, \quad
    z_{j+1} = z_j \big(\eta_j + \sqrt{1 + \eta_j^2}\big), \quad
    a_j = \psi(y_j), \quad b_j = \psi(z_j),

  and the schedules of length ``2**k`` are built recursively,

  .. math::

    h^{(1)} = [b_1], \qquad
    h^{(2n)} = [\tilde h^{(n)},\ a_{j+1},\ \tilde h^{(n)},\ b_{j+1}]
    \quad (n = 2^{j-1}),

  where :math:`\tilde h^{(n)}` is :math:`h^{(n)}` without its last step. So
  step ``i = 1 … 2^k − 1`` is :math:`a_{\nu(i) + 2}` (:math:`\nu` the 2-adic
  valuation: a fractal "ruler" sequence of long and short steps) and the last
  step is :math:`b_{k+1}`. One block contracts a quadratic's (and any smooth
  strongly convex function's) error by :math:`|1 - z_{k+1}|/(1 + z_{k+1})`
  while :math:`z_{k+1} < 1`. ``k = 0`` is ``[2/(M + m)]``. Step sizes returned
  are :math:`h_i / M`.

  Args:
    min_curvature: ``m > 0``.
    max_curvature: ``M > m``.
    num_doublings: ``k >= 0``.

  Returns:
    A ``(2**k,)`` float64 array of step sizes.

  Example:
    >>> silver_step_sizes(1.0, 10.0, 0).round(4).tolist()  # 2/(M + m)
    [0.1818]
    >>> len(silver_step_sizes(1.0, 10.0, 3))
    8

  References:
    Altschuler & Parrilo, `Acceleration by Stepsize Hedging I: Multi-Step
    Descent and the Silver Stepsize Schedule
    <https://arxiv.org/abs/2309.07879>`_, 2023 (recursion as implemented in
    PEPit's ``wc_gradient_descent_silver_stepsize_strongly_convex``).
  """
  if not isinstance(num_doublings, int) or num_doublings < 0:
    raise ValueError(
        f"num_doublings must be an int >= 0, got {num_doublings=}.")
  if not 0 < min_curvature < max_curvature:
    raise ValueError("need 0 < min_curvature < max_curvature, got "
                     f"{min_curvature=}, {max_curvature=}.")
  kappa = max_curvature / min_curvature
  psi = lambda t: (1.0 + kappa * t) / (1.0 + t)
  z = 1.0 / kappa
  steps = [psi(z)]
  for _ in range(num_doublings):
    eta = 1.0 - z
    root = eta + math.sqrt(1.0 + eta * eta)
    y, z = z / root, z * root
    steps = steps[:-1] + [psi(y)] + steps[:-1] + [psi(z)]
  return np.asarray(steps, np.float64) / max_curvature


def silver_num_doublings(min_curvature: float, max_curvature: float) -> int:
  r"""``k*`` with ``2**k*`` the silver schedule's saturation horizon ``n*``.

  :math:`n^* = 2^{\lfloor \log_\rho(\kappa/3) \rfloor}`, ``ρ = 1 + √2``
  (Altschuler & Parrilo, Part I): up to ``n*`` steps the schedule converges
  super-exponentially, beyond it at the fixed rate of repeating the ``n*``
  block, which is what :func:`silver_schedule` does. ``κ <= 3`` gives 0.
  """
  kappa = max_curvature / min_curvature
  if kappa <= 3.0:
    return 0
  return max(0, math.floor(math.log(kappa / 3.0, SILVER_RATIO)))


def silver_schedule(min_curvature: float, max_curvature: float, *,
                    num_doublings: int | None = None) -> optax.Schedule:
  r"""The silver step-size schedule, its ``2**k`` block repeated.

  .. math::

    \text{schedule}(c) = h_{c \bmod 2^k} / M,

  with ``h`` the block of :func:`silver_step_sizes` and ``k`` the saturation
  exponent :func:`silver_num_doublings` unless given: the strongly convex
  silver schedule run past its horizon, as the paper prescribes (the rate of
  repeated blocks is :math:`\kappa^{-\log_\rho 2} \approx
  \kappa^{-0.7864}` per step, between GD's ``1/κ`` and the accelerated
  ``1/√κ``).

  Args:
    min_curvature: ``m > 0``.
    max_curvature: ``M > m``.
    num_doublings: block length exponent ``k`` (default: ``k*``).

  Returns:
    An ``optax.Schedule``.

  Example:
    >>> import jax.numpy as jnp
    >>> schedule = silver_schedule(0.01, 1.0)
    >>> bool(schedule(jnp.asarray(0)) > 0)
    True

  References:
    Altschuler & Parrilo, `Acceleration by Stepsize Hedging I
    <https://arxiv.org/abs/2309.07879>`_, 2023.
  """
  if num_doublings is None:
    num_doublings = silver_num_doublings(min_curvature, max_curvature)
  table = silver_step_sizes(min_curvature, max_curvature, num_doublings)

  def schedule(count: jax.typing.ArrayLike) -> jax.Array:
    steps = jnp.asarray(table, jnp.result_type(float))
    return steps[jnp.remainder(jnp.asarray(count), table.size)]

  return schedule


# ---------------------------------------------------------------------------
# Constants of the baselines.
# ---------------------------------------------------------------------------


def heavy_ball_constants(min_curvature: float, max_curvature: float
                         ) -> tuple[float, float]:
  """Polyak's optimal ``(learning_rate, momentum)`` for a quadratic."""
  sm, sbig = math.sqrt(min_curvature), math.sqrt(max_curvature)
  return 4.0 / (sm + sbig) ** 2, ((sbig - sm) / (sbig + sm)) ** 2


def nesterov_constants(min_curvature: float, max_curvature: float
                       ) -> tuple[float, float]:
  """Nesterov's strongly convex ``(learning_rate, momentum)``."""
  root = math.sqrt(max_curvature / min_curvature)
  return 1.0 / max_curvature, (root - 1.0) / (root + 1.0)


def reference_optimizers(min_curvature: float, max_curvature: float,
                         fractal_num_steps: int
                         ) -> dict[str, optax.GradientTransformation]:
  """Every compared optimiser as a user would write it (for timing, state).

  Args:
    min_curvature: ``m``.
    max_curvature: ``M``.
    fractal_num_steps: cycle length ``T`` of ``fractal_sgd``.

  Returns:
    Name -> optimiser; ``"sgd"`` (constant ``2/(M + m)``) is the reference
    of the timing ratios.
  """
  m, big_m = min_curvature, max_curvature
  hb_lr, hb_momentum = heavy_ball_constants(m, big_m)
  nag_lr, nag_momentum = nesterov_constants(m, big_m)
  return {
      "sgd": optax.sgd(2.0 / (big_m + m)),
      "heavy_ball": optax.sgd(hb_lr, momentum=hb_momentum),
      "nesterov": optax.sgd(nag_lr, momentum=nag_momentum, nesterov=True),
      "silver": optax.sgd(silver_schedule(m, big_m)),
      "fractal": fractal_optax.fractal_sgd(fractal_num_steps, m, big_m),
  }


# ---------------------------------------------------------------------------
# Optimisers built inside jit from array hyper-parameters.
# ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Method:
  """The static (compile-time) part of an optimiser.

  Attributes:
    kind: ``"table"`` (``optax.sgd`` with :func:`table_schedule`; hparams
      ``table``, ``period``), ``"momentum"`` (``optax.sgd`` with momentum;
      hparams ``learning_rate``, ``momentum``) or ``"fractal_sgd"``
      (``fractal_optax.fractal_sgd``; hparams ``min_curvature``,
      ``max_curvature``).
    nesterov: Nesterov momentum (kind ``"momentum"``).
    num_steps: ``T`` of kind ``"fractal_sgd"``.
    cycle: ``cycle`` of kind ``"fractal_sgd"``.
  """

  kind: str
  nesterov: bool = False
  num_steps: int = 0
  cycle: bool = True

  def __post_init__(self):
    if self.kind not in ("table", "momentum", "fractal_sgd"):
      raise ValueError(f"Unknown method kind, got kind={self.kind!r}.")


TABLE = Method("table")
HEAVY_BALL = Method("momentum")
NESTEROV = Method("momentum", nesterov=True)


def hyper_dtype(dtype: Any) -> jnp.dtype:
  """The dtype of step sizes for parameters of ``dtype``.

  float64 parameters get float64 steps; float32 and bfloat16 get float32 (a
  learning rate is a float32 scalar in a low-precision run; the update is
  rounded to the parameter dtype by ``optax.apply_updates``).
  """
  return jnp.dtype(jnp.float64 if jnp.dtype(dtype) == jnp.float64
                   else jnp.float32)


def table_schedule(table: jax.Array, period: jax.Array) -> optax.Schedule:
  """``count -> table[count mod period]`` (``period <= len(table)``).

  A one-shot schedule is a table padded with zeros and ``period =
  len(table)``: past its last step the update is zero.
  """

  def schedule(count: jax.Array) -> jax.Array:
    return table[jnp.remainder(count, period.astype(count.dtype))]

  return schedule


def build(method: Method, hparams: Hparams) -> optax.GradientTransformation:
  """Constructs ``method`` from (possibly traced) hyper-parameter arrays."""
  if method.kind == "table":
    return optax.sgd(table_schedule(hparams["table"], hparams["period"]))
  if method.kind == "momentum":
    return optax.sgd(hparams["learning_rate"], momentum=hparams["momentum"],
                     nesterov=method.nesterov)
  return fractal_optax.fractal_sgd(
      method.num_steps, hparams["min_curvature"], hparams["max_curvature"],
      cycle=method.cycle)


def table_hparams(steps: np.ndarray, table_size: int, dtype: Any, *,
                  repeat: bool) -> Hparams:
  """Hyper-parameters of a ``"table"`` method: steps padded to ``table_size``.

  Args:
    steps: the step sizes of one cycle (float64 numpy).
    table_size: the fixed table length (one compile for all tables).
    dtype: parameter dtype (fixes the steps' dtype, see :func:`hyper_dtype`).
    repeat: cycle through ``steps`` forever (``period = len(steps)``) or take
      them once and then stop (zeros after, ``period = table_size``).

  Returns:
    ``{"table": (table_size,) array, "period": int32 scalar}``.
  """
  steps = np.asarray(steps, np.float64)
  if steps.size > table_size:
    raise ValueError(f"{steps.size} steps do not fit a table of {table_size=}.")
  table = np.zeros(table_size)
  table[:steps.size] = steps
  return {"table": jnp.asarray(table, hyper_dtype(dtype)),
          "period": jnp.asarray(steps.size if repeat else table_size,
                                jnp.int32)}


def momentum_hparams(constants: tuple[float, float], dtype: Any) -> Hparams:
  """Hyper-parameters of a ``"momentum"`` method from ``(lr, momentum)``."""
  dt = hyper_dtype(dtype)
  return {"learning_rate": jnp.asarray(constants[0], dt),
          "momentum": jnp.asarray(constants[1], dt)}


def curvature_hparams(min_curvature: float, max_curvature: float,
                      dtype: Any) -> Hparams:
  """Hyper-parameters of a ``"fractal_sgd"`` method."""
  dt = hyper_dtype(dtype)
  return {"min_curvature": jnp.asarray(min_curvature, dt),
          "max_curvature": jnp.asarray(max_curvature, dt)}


def state_bytes(state: Any) -> int:
  """Total bytes of the arrays in an optimiser state."""
  return int(sum(np.asarray(leaf).nbytes for leaf in jax.tree.leaves(state)))
