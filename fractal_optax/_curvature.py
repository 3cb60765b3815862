"""Curvature range [m, M] of a loss from Hessian-vector products (Lanczos).

The fractal Chebyshev schedule needs the interval ``[m, M]`` that holds the
eigenvalues of the Hessian. Eigenvalues above ``M`` are amplified
catastrophically, eigenvalues below ``m`` only slow convergence down, so the
bounds returned here are *safe* in that direction: ``max_curvature``
over-estimates the largest eigenvalue and ``min_curvature`` under-estimates the
smallest one (see :func:`estimate_curvature` for exactly what is guaranteed).

Everything runs on device in one compiled program: Hessian-vector products are
forward-over-reverse (``jax.jvp`` of ``jax.grad``) on the flattened float
leaves of the parameter pytree, the Lanczos loop is a ``lax.fori_loop`` with
full reorthogonalisation, and the small tridiagonal eigenproblem is solved with
``jnp.linalg.eigh``; only ``2 k`` numbers come back to the host.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

__all__ = [
    "CurvatureEstimate",
    "MaxCurvatureEstimate",
    "estimate_curvature",
    "estimate_max_curvature",
]

# Default start-vector key: fixed so that results are reproducible run to run.
_DEFAULT_SEED = 0


@dataclasses.dataclass(frozen=True)
class CurvatureEstimate:
  """Safe curvature bounds of a loss, with the Lanczos data behind them.

  Iterating over the record yields exactly ``(min_curvature, max_curvature)``,
  so it can be passed straight to a schedule:
  ``fractal_chebyshev_schedule(num_steps, *estimate)``.

  All fields are Python scalars or tuples of them (the record is not a JAX
  pytree; it is the host-side result of one compiled run).

  Attributes:
    min_curvature: ``m > 0``, the lower bound to give the schedule.
    max_curvature: ``M > m``, the upper bound to give the schedule.
    ritz_values: all ``k`` Ritz values of the Hessian of ``loss_fn`` (without
      ``l2_regularization``), ascending. ``ritz_values[0]`` and
      ``ritz_values[-1]`` are the extremes.
    residual_norms: ``‖H y_i − θ_i y_i‖`` for each Ritz pair, as computed by the
      Lanczos recurrence, same order as ``ritz_values``.
    num_hvps: Hessian-vector products used (``min(num_iterations, n)``).
    num_params: ``n``, the number of differentiated scalars.
    rounding_allowance: ``δ``, the absolute slack added to each bound for the
      rounding error of the Hessian-vector products.
    relative_margin: the relative margin added to ``M``.
    min_source: where ``min_curvature`` comes from: ``"ritz"`` (the Lanczos
      lower bound), ``"l2_regularization"``, ``"max_condition_number"`` or
      ``"dtype_floor"`` (bottom of the spectrum not resolved, no remedy given).
    dtype: name of the floating dtype the run used.
  """

  min_curvature: float
  max_curvature: float
  ritz_values: tuple[float, ...]
  residual_norms: tuple[float, ...]
  num_hvps: int
  num_params: int
  rounding_allowance: float
  relative_margin: float
  min_source: str
  dtype: str

  def __iter__(self) -> Iterator[float]:
    """Yields ``min_curvature`` then ``max_curvature``."""
    yield self.min_curvature
    yield self.max_curvature

  @property
  def condition_number(self) -> float:
    """``max_curvature / min_curvature``, the κ the schedule will assume."""
    return self.max_curvature / self.min_curvature

  @property
  def min_ritz_value(self) -> float:
    """θ_min, a Rayleigh quotient: ``λ_min(H) ≤ θ_min``."""
    return self.ritz_values[0]

  @property
  def max_ritz_value(self) -> float:
    """θ_max, a Rayleigh quotient: ``θ_max ≤ λ_max(H)``."""
    return self.ritz_values[-1]


@dataclasses.dataclass(frozen=True)
class MaxCurvatureEstimate:
  """Safe upper bound on the largest curvature, from power iteration.

  Attributes:
    max_curvature: ``M``, the upper bound to give the schedule.
    rayleigh_quotient: θ = vᵀHv of the last iterate (``θ ≤ λ_max``).
    residual_norm: ``‖Hv − θv‖`` of the last iterate.
    num_hvps: Hessian-vector products used.
    rounding_allowance: ``δ``, absolute slack for rounding errors.
    relative_margin: relative margin added to ``M``.
  """

  max_curvature: float
  rayleigh_quotient: float
  residual_norm: float
  num_hvps: int
  rounding_allowance: float
  relative_margin: float

  def __float__(self) -> float:
    return self.max_curvature


# ----------------------------------------------------------------------------
# Argument checks shared by both estimators.


def _check_num_iterations(num_iterations: Any) -> int:
  if (isinstance(num_iterations, bool)
      or not isinstance(num_iterations, numbers.Integral)):
    raise TypeError(
        f"num_iterations must be an int, got {num_iterations=}")
  if num_iterations < 2:
    raise ValueError(
        f"num_iterations must be at least 2, got {num_iterations=}")
  return int(num_iterations)


def _check_nonnegative(name: str, value: Any) -> float:
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    raise TypeError(f"{name} must be a real number, got {name}={value!r}")
  if not (math.isfinite(value) and value >= 0):
    raise ValueError(
        f"{name} must be finite and non-negative, got {name}={value!r}")
  return float(value)


def _default_key(key: Any) -> jax.Array:
  return jax.random.key(_DEFAULT_SEED) if key is None else key


def _float_dtype(params: Any) -> np.dtype:
  """Promoted float dtype of the float leaves (at least float32)."""
  leaves = jax.tree_util.tree_leaves(params)
  dtypes = [jnp.result_type(leaf) for leaf in leaves]
  float_dtypes = [d for d in dtypes if jnp.issubdtype(d, jnp.floating)]
  if not float_dtypes:
    raise ValueError(
        "params must contain at least one floating-point leaf to "
        f"differentiate, got leaf dtypes {[str(d) for d in dtypes]}")
  return np.dtype(jnp.promote_types(jnp.result_type(*float_dtypes),
                                    jnp.float32))


def _check_scalar_loss(loss_fn: Callable[..., Any], params: Any,
                       args: tuple[Any, ...]) -> None:
  if not callable(loss_fn):
    raise TypeError(f"loss_fn must be callable, got {loss_fn=}")
  out = jax.eval_shape(loss_fn, params, *args)
  shape = getattr(out, "shape", None)
  dtype = getattr(out, "dtype", None)
  if shape != () or not jnp.issubdtype(dtype, jnp.floating):
    if shape is None:
      desc = f"a {type(out).__name__}"
    else:
      desc = f"shape {shape} and dtype {dtype}"
    raise ValueError(
        "loss_fn must return a real floating-point scalar (shape ()), got "
        f"{desc}; reduce the loss (e.g. jnp.mean) and drop auxiliary outputs")


# ----------------------------------------------------------------------------
# The compiled core.


def _flat_hvp(loss_fn: Callable[..., Any], params: Any, args: tuple[Any, ...]
              ) -> tuple[jax.Array, Callable[[jax.Array], jax.Array]]:
  """Flat float parameters ``x0`` and ``v -> H(x0) v`` (forward-over-reverse).

  Only floating leaves are differentiated (cast to their promoted dtype, at
  least float32); other leaves are held fixed.
  """
  leaves, treedef = jax.tree_util.tree_flatten(params)
  is_float = [jnp.issubdtype(jnp.result_type(leaf), jnp.floating)
              for leaf in leaves]
  dtype = _float_dtype(params)
  float_leaves = [jnp.asarray(l, dtype) for l, f in zip(leaves, is_float) if f]
  x0, unravel = ravel_pytree(float_leaves)

  def flat_loss(x):
    it = iter(unravel(x))
    rebuilt = [next(it) if f else l for l, f in zip(leaves, is_float)]
    return loss_fn(jax.tree_util.tree_unflatten(treedef, rebuilt), *args)

  grad = jax.grad(flat_loss)

  def hvp(v):
    return jax.jvp(grad, (x0,), (v,))[1].astype(dtype)

  return x0, hvp


# Rows of the Krylov basis are stored in blocks of this many, so that
# reorthogonalising against the first j vectors reads only ⌈j/_BLOCK⌉ blocks.
_BLOCK = 8


def _orthogonalize(blocks: jax.Array, num_blocks: jax.Array,
                   w: jax.Array) -> jax.Array:
  """Gram-Schmidt of ``w`` against the basis, twice if needed.

  ``blocks`` has shape ``(B, _BLOCK, n)``; only its first ``num_blocks``
  blocks are read (later rows are zero). Within a block the projection is
  classical, across blocks modified Gram-Schmidt. A second pass runs only when
  the first removed a large part of ``w`` (‖w₁‖ < ‖w₀‖/√2, the
  Daniel-Gragg-Kaufman-Stewart criterion): "twice is enough".
  """
  def project_out(v):
    def body(b, v):
      block = jax.lax.dynamic_index_in_dim(blocks, b, keepdims=False)
      return v - block.T @ (block @ v)
    return jax.lax.fori_loop(0, num_blocks, body, v)

  w1 = project_out(w)
  return jax.lax.cond(
      jnp.linalg.norm(w1) < jnp.sqrt(0.5) * jnp.linalg.norm(w),
      project_out, lambda v: v, w1)


def _lanczos_impl(loss_fn, num_iterations, params, args, key):
  """Lanczos with full reorthogonalisation.

  Returns:
    ``(theta, residuals, hnorm, alphas, betas)``: the ``k`` Ritz values
    (ascending), their residual norms, ``max_j ‖H q_j‖``, and the diagonal and
    off-diagonal of ``T_k`` (``betas[j]`` couples ``q_j`` and ``q_{j+1}``; 0 at
    a breakdown, ``betas[-1]`` is the outgoing coupling ``β_k``).
  """
  x0, hvp = _flat_hvp(loss_fn, params, args)
  n = x0.shape[0]
  dtype = x0.dtype
  k = min(num_iterations, n)
  eps = jnp.finfo(dtype).eps
  # Breakdown (invariant subspace found) when the new direction is below
  # sqrt(eps)·‖Hq‖: semi-orthogonality is what keeps T an exact projection.
  breakdown_tol = jnp.sqrt(eps)

  def random_unit(basis, num_blocks, j):
    r = jax.random.normal(jax.random.fold_in(key, j), (n,), dtype)
    r = _orthogonalize(basis, num_blocks, r)
    return r / jnp.linalg.norm(r)

  def body(j, state):
    basis, alphas, betas, drops, q, q_prev, beta_prev, hnorm = state
    basis = basis.at[j // _BLOCK, j % _BLOCK].set(q)
    num_blocks = j // _BLOCK + 1
    hq = hvp(q)
    alpha = jnp.vdot(q, hq)
    w = hq - alpha * q - beta_prev * q_prev
    w = _orthogonalize(basis, num_blocks, w)
    beta = jnp.linalg.norm(w)
    hq_norm = jnp.linalg.norm(hq)
    hnorm = jnp.maximum(hnorm, hq_norm)
    broke = beta <= breakdown_tol * hq_norm
    q_next = jax.lax.cond(
        broke, lambda: random_unit(basis, num_blocks, j + 1),
        lambda: w / jnp.where(beta > 0, beta, 1).astype(dtype))
    alphas = alphas.at[j].set(alpha)
    betas = betas.at[j].set(jnp.where(broke, 0, beta).astype(dtype))
    drops = drops.at[j].set(jnp.where(broke, beta, 0).astype(dtype))
    beta_t = jnp.where(broke, 0, beta).astype(dtype)
    return basis, alphas, betas, drops, q_next, q, beta_t, hnorm

  q0 = jax.random.normal(key, (n,), dtype)
  q0 = q0 / jnp.linalg.norm(q0)
  zeros = jnp.zeros((k,), dtype)
  basis = jnp.zeros((-(-k // _BLOCK), _BLOCK, n), dtype)
  state = (basis, zeros, zeros, zeros, q0,
           jnp.zeros((n,), dtype), jnp.zeros((), dtype), jnp.zeros((), dtype))
  _, alphas, betas, drops, *_, hnorm = jax.lax.fori_loop(0, k, body, state)

  tridiagonal = (jnp.diag(alphas) + jnp.diag(betas[:-1], 1)
                 + jnp.diag(betas[:-1], -1))
  theta, s = jnp.linalg.eigh(tridiagonal)
  # ‖H Q s − θ Q s‖ ≤ |β_k s_k| + Σ_j |dropped_j s_j| (dropped at breakdowns).
  residuals = jnp.abs(betas[-1] * s[-1]) + jnp.abs(drops) @ jnp.abs(s)
  # alphas/betas are returned too: T_j for j < k is their leading block.
  return theta, residuals, hnorm, alphas, betas


_lanczos = jax.jit(_lanczos_impl, static_argnums=(0, 1))


def _power_impl(loss_fn, num_iterations, params, args, key):
  """Power iteration; returns the last Rayleigh quotient and its residual."""
  x0, hvp = _flat_hvp(loss_fn, params, args)
  n = x0.shape[0]
  dtype = x0.dtype
  v = jax.random.normal(key, (n,), dtype)
  v = v / jnp.linalg.norm(v)

  def body(_, state):
    v, _, _, hnorm = state
    hv = hvp(v)
    theta = jnp.vdot(v, hv)
    residual = jnp.linalg.norm(hv - theta * v)
    norm = jnp.linalg.norm(hv)
    hnorm = jnp.maximum(hnorm, norm)
    v_next = jnp.where(norm > 0, hv / jnp.where(norm > 0, norm, 1), v)
    return v_next.astype(dtype), theta, residual, hnorm

  zero = jnp.zeros((), dtype)
  _, theta, residual, hnorm = jax.lax.fori_loop(
      0, num_iterations, body, (v, zero, zero, zero))
  return theta, residual, hnorm


_power = jax.jit(_power_impl, static_argnums=(0, 1))


def _run(compiled, impl, loss_fn, num_iterations, params, args, key):
  """Calls the cached compiled core, or a fresh one if loss_fn is unhashable."""
  try:
    hash(loss_fn)
  except TypeError:
    return jax.jit(functools.partial(impl, loss_fn, num_iterations))(
        params, args, key)
  return compiled(loss_fn, num_iterations, params, args, key)


def _rounding_allowance(dtype: np.dtype, hnorm: float, num_hvps: int) -> float:
  """δ = 10·√k·ε·max‖Hq‖: slack for rounding in the products and the basis."""
  return 10.0 * math.sqrt(num_hvps) * float(np.finfo(dtype).eps) * hnorm


# ----------------------------------------------------------------------------
# Public API.


def estimate_curvature(
    loss_fn: Callable[..., jax.Array],
    params: Any,
    *args: Any,
    num_iterations: int = 64,
    key: jax.Array | None = None,
    relative_margin: float = 0.01,
    max_condition_number: float | None = None,
    l2_regularization: float = 0.0,
) -> CurvatureEstimate:
  r"""Estimates safe curvature bounds ``[m, M]`` of ``loss_fn`` at ``params``.

  Runs ``k = min(num_iterations, n)`` steps of the Lanczos process with full
  reorthogonalisation on the Hessian :math:`H = \nabla^2 f(x)` of
  :math:`f(x) = \texttt{loss\_fn}(x, *args)` with respect to the ``n`` floating
  scalars of ``params``, using one Hessian-vector product (forward-over-reverse)
  per step. The whole loop is one jit-compiled program.

  With the orthonormal Krylov basis :math:`Q_k` and the tridiagonal
  :math:`T_k = Q_k^\top H Q_k = S \,\mathrm{diag}(\theta)\, S^\top`, the Ritz
  values :math:`\theta_1 \le \dots \le \theta_k` and their residuals
  :math:`r_i = \|H Q_k s_i - \theta_i Q_k s_i\| = |\beta_k s_{k,i}|` give

  .. math::

    M &= \theta_k + r_k + \delta + \rho\,|\theta_k| + \lambda_2, \\
    m &= \max(\theta_1 - r_1 - \delta, \ 0) + \lambda_2
         \quad (\text{then floored at } M / \kappa_{\max} \text{ if given}),

  where :math:`\delta = 10 \sqrt{k}\, \varepsilon \max_j \|H q_j\|` is a
  rounding allowance (:math:`\varepsilon` the dtype's machine epsilon),
  :math:`\rho` is ``relative_margin``, :math:`\lambda_2` is
  ``l2_regularization`` and :math:`\kappa_{\max}` is ``max_condition_number``.

  **What is guaranteed.** Ritz values are Rayleigh quotients, so
  :math:`\lambda_{\min}(H) \le \theta_1` and :math:`\theta_k \le
  \lambda_{\max}(H)` always (up to rounding); and each interval
  :math:`[\theta_i - r_i, \theta_i + r_i]` contains an eigenvalue of ``H``.
  **What is not.** Lanczos sees ``H`` through a random start vector: an
  eigenvector with (almost) no component in it, or one that the ``k`` steps
  have not yet resolved, is invisible. ``M`` is then safe when the top of the
  spectrum has converged (small :math:`r_k`, which extreme eigenvalues do
  quickly: Kaniel–Paige), which is why a relative margin is added. The smallest
  eigenvalue converges much more slowly (roughly :math:`\sqrt{\kappa}` steps
  for a dense spectrum), and ``m`` is a true lower bound only when it is
  resolved, i.e. :math:`\theta_1 - r_1 - \delta > 0`. Otherwise:

  * if some :math:`\theta_i \le 0` (a direction of non-positive curvature was
    *measured*, e.g. a non-convex loss) and no remedy is given, a
    ``ValueError`` naming :math:`\theta_1` is raised; with
    ``l2_regularization`` and/or ``max_condition_number`` the floor they define
    is used and a ``UserWarning`` names the measured value;
  * if :math:`\theta_1 > 0` but the bottom is unresolved, ``m`` is
    :math:`\lambda_2` and/or :math:`M/\kappa_{\max}` when given (silently: this
    is what they are for), else ``M·ε`` (safe but pessimistic, κ = 1/ε) with a
    ``UserWarning`` suggesting a remedy.

  A ``UserWarning`` is also issued when the returned ``m`` exceeds the
  smallest measured curvature :math:`\theta_1 + \lambda_2` (a floor that
  contradicts the measurement: those directions converge slowly).

  **Cost.** ``k`` Hessian-vector products (each about two to three gradient
  evaluations), ``k × n`` floats of memory for the basis, and ``O(k² n)`` flops
  of reorthogonalisation (Gram-Schmidt against the vectors stored so far, in
  blocks of 8; a second pass only when the first one cancels, the DGKS
  criterion). For a model too large for the basis,
  :func:`estimate_max_curvature` needs one vector. **Precision.** Ritz values
  are accurate to about :math:`\varepsilon \|H\|` (absolute), which δ covers;
  in float32 a smallest eigenvalue below roughly :math:`10^{-5}\,\lambda_{\max}`
  cannot be certified: enable ``jax_enable_x64`` and pass float64 params if it
  must be.

  Call it outside ``jit`` (it returns Python floats and may warn); one call
  compiles once per ``(loss_fn, num_iterations, shapes)`` and is reused.

  Args:
    loss_fn: ``loss_fn(params, *args) -> scalar``, differentiable twice.
    params: a pytree of arrays. Floating leaves are the variables (computed in
      their promoted dtype, at least float32); other leaves are held fixed.
    *args: further arguments of ``loss_fn`` (arrays or pytrees of arrays, e.g.
      a batch). Bind non-array configuration with ``functools.partial``.
    num_iterations: Lanczos steps ``k ≥ 2`` (static); one Hessian-vector
      product each, and memory for ``k × n`` basis vectors.
    key: a JAX PRNG key for the random start vector; default
      ``jax.random.key(0)`` (reproducible).
    relative_margin: ρ ≥ 0 added to ``M`` as ``ρ·|θ_k|`` (default 1%).
    max_condition_number: κ_max > 1: floor ``m`` at ``M / κ_max``. The usual
      remedy for non-convex losses and for ill-conditioned problems whose
      smallest eigenvalue is not resolved.
    l2_regularization: λ₂ ≥ 0, the strength of a penalty ``½ λ₂ ‖x‖²`` that
      training adds *outside* ``loss_fn`` (e.g. ``optax.add_decayed_weights``):
      the bounds are those of :math:`H + \lambda_2 I`, with negative measured
      curvature clamped to 0 (so ``m ≥ λ₂``).

  Returns:
    A :class:`CurvatureEstimate`; it unpacks as ``(min_curvature,
    max_curvature)``.

  Raises:
    ValueError: on a non-scalar loss, ``num_iterations < 2``, params without
      floating leaves, a bad remedy value, or measured non-positive curvature
      without a remedy.
    TypeError: on a non-callable ``loss_fn`` or a non-integer
      ``num_iterations``.
    FloatingPointError: if the Hessian-vector products are not finite.

  Example:
    >>> import jax.numpy as jnp
    >>> import fractal_optax
    >>> def loss(w):  # Hessian diag(1, 4, 10)
    ...   return 0.5 * jnp.sum(jnp.array([1.0, 4.0, 10.0]) * w**2)
    >>> estimate = fractal_optax.estimate_curvature(loss, jnp.zeros(3))
    >>> print(f"{estimate.min_curvature:.3f} {estimate.max_curvature:.3f}")
    1.000 10.100
    >>> schedule = fractal_optax.fractal_chebyshev_schedule(8, *estimate)

  References:
    C. Lanczos, *An iteration method for the solution of the eigenvalue
    problem of linear differential and integral operators*, 1950.
    B. N. Parlett, *The Symmetric Eigenvalue Problem*, SIAM, 1998 (Ch. 11-13).
    Y. Zhou, R.-C. Li, *Bounding the spectrum of large Hermitian matrices*,
    Linear Algebra Appl. 435, 2011.
    N. Agarwal, S. Goel, C. Zhang, *Acceleration via Fractal Learning Rate
    Schedules*, ICML 2021, https://arxiv.org/abs/2103.01338.
  """
  num_iterations = _check_num_iterations(num_iterations)
  relative_margin = _check_nonnegative("relative_margin", relative_margin)
  l2_regularization = _check_nonnegative("l2_regularization",
                                         l2_regularization)
  if max_condition_number is not None:
    if (isinstance(max_condition_number, bool)
        or not isinstance(max_condition_number, numbers.Real)
        or not max_condition_number > 1
        or not math.isfinite(max_condition_number)):
      raise ValueError("max_condition_number must be a finite number > 1, got "
                       f"{max_condition_number=}")
    max_condition_number = float(max_condition_number)
  dtype = _float_dtype(params)
  _check_scalar_loss(loss_fn, params, args)
  key = _default_key(key)

  theta, residuals, hnorm, _, _ = jax.device_get(
      _run(_lanczos, _lanczos_impl, loss_fn, num_iterations, params, args,
           key))
  theta = np.asarray(theta, np.float64)
  residuals = np.asarray(residuals, np.float64)
  if not (np.all(np.isfinite(theta)) and np.all(np.isfinite(residuals))):
    raise FloatingPointError(
        "the Hessian-vector products are not finite at params: Ritz values "
        f"{theta.tolist()}")
  num_hvps = int(theta.shape[0])
  num_params = int(sum(np.size(leaf) for leaf in jax.tree_util.tree_leaves(
      params) if jnp.issubdtype(jnp.result_type(leaf), jnp.floating)))
  delta = _rounding_allowance(dtype, float(hnorm), num_hvps)
  theta_min, theta_max = float(theta[0]), float(theta[-1])
  r_min, r_max = float(residuals[0]), float(residuals[-1])

  max_curvature = (theta_max + r_max + delta + relative_margin * abs(theta_max)
                   + l2_regularization)
  if max_curvature <= 0:
    raise ValueError(
        "the measured curvature is nowhere positive (largest Ritz value "
        f"{theta_max:.6g}); a Chebyshev schedule needs a positive range")

  lower = theta_min - r_min - delta       # lower bound of λ_min(H) if > 0
  measured_min = theta_min + l2_regularization
  floors = {}
  if l2_regularization > 0:
    floors["l2_regularization"] = l2_regularization
  if max_condition_number is not None:
    floors["max_condition_number"] = max_curvature / max_condition_number
  tiny = max_curvature * float(np.finfo(dtype).eps)

  if theta_min <= 0:
    if not floors:
      raise ValueError(
          "loss_fn has non-positive curvature at params: smallest Ritz value "
          f"{theta_min:.6g} (largest {theta_max:.6g}); a Chebyshev schedule "
          "needs m > 0. Pass max_condition_number= (floor m at M/κ) or "
          "l2_regularization= (the weight decay you train with).")
    source = max(floors, key=floors.get)
    min_curvature = floors[source]
    warnings.warn(
        f"loss_fn has non-positive curvature at params: smallest Ritz value "
        f"{theta_min:.6g}; min_curvature floored at {min_curvature:.6g} "
        f"by {source}", UserWarning, stacklevel=2)
  else:
    candidates = dict(floors)
    candidates["ritz"] = max(lower, 0.0) + l2_regularization
    source = max(candidates, key=candidates.get)
    min_curvature = candidates[source]
    if min_curvature <= tiny and not floors:
      source, min_curvature = "dtype_floor", tiny
      warnings.warn(
          f"the smallest eigenvalue is not resolved after {num_hvps} "
          f"iterations (smallest Ritz value {theta_min:.6g} with residual "
          f"{r_min:.3g}); min_curvature falls back to M·eps = "
          f"{min_curvature:.3g}. Pass max_condition_number= or "
          "l2_regularization=, or raise num_iterations.",
          UserWarning, stacklevel=2)
    elif min_curvature > measured_min:
      warnings.warn(
          f"min_curvature {min_curvature:.6g} (from {source}) exceeds the "
          f"smallest measured curvature {measured_min:.6g}: those directions "
          "will converge slowly", UserWarning, stacklevel=2)

  if not min_curvature < max_curvature:
    raise ValueError(
        f"estimated min_curvature {min_curvature:.6g} is not below "
        f"max_curvature {max_curvature:.6g}; got {max_condition_number=}")

  return CurvatureEstimate(
      min_curvature=float(min_curvature),
      max_curvature=float(max_curvature),
      ritz_values=tuple(float(t) for t in theta),
      residual_norms=tuple(float(r) for r in residuals),
      num_hvps=num_hvps,
      num_params=num_params,
      rounding_allowance=float(delta),
      relative_margin=relative_margin,
      min_source=source,
      dtype=str(dtype),
  )


def estimate_max_curvature(
    loss_fn: Callable[..., jax.Array],
    params: Any,
    *args: Any,
    num_iterations: int = 32,
    key: jax.Array | None = None,
    relative_margin: float = 0.01,
) -> MaxCurvatureEstimate:
  r"""Estimates a safe upper bound ``M`` on the curvature by power iteration.

  The low-memory shortcut for ``M`` alone: it keeps one vector of ``n``
  parameters instead of the ``k × n`` Lanczos basis of
  :func:`estimate_curvature`, for models too large for that. It needs more
  Hessian-vector products for the same accuracy (convergence like
  :math:`(\lambda_2/\lambda_1)^k` instead of Chebyshev-accelerated), so prefer
  :func:`estimate_curvature` when memory allows. With
  :math:`v_{j+1} = H v_j / \|H v_j\|`, the last iterate gives
  :math:`\theta = v^\top H v \le \lambda_{\max}` and
  :math:`r = \|H v - \theta v\|`, and

  .. math::

    M = \theta + r + \delta + \rho\,|\theta|,

  with δ and ρ as in :func:`estimate_curvature`. ``M ≥ λ_max`` when the
  iteration has converged to the top eigenvector (an eigenvalue lies within
  ``r`` of θ); power iteration follows the largest ``|λ|``, so a strongly
  non-convex Hessian (dominant negative curvature) raises a ``ValueError``.

  Args:
    loss_fn: ``loss_fn(params, *args) -> scalar``.
    params: a pytree of arrays (floating leaves are differentiated).
    *args: further array arguments of ``loss_fn``.
    num_iterations: power steps ≥ 2 (static), one product each.
    key: PRNG key of the start vector; default ``jax.random.key(0)``.
    relative_margin: ρ ≥ 0, relative margin added to ``M``.

  Returns:
    A :class:`MaxCurvatureEstimate`.

  Example:
    >>> import jax.numpy as jnp
    >>> import fractal_optax
    >>> def loss(w):  # Hessian diag(1, 4, 10)
    ...   return 0.5 * jnp.sum(jnp.array([1.0, 4.0, 10.0]) * w**2)
    >>> bound = fractal_optax.estimate_max_curvature(loss, jnp.zeros(3))
    >>> 10.0 <= bound.max_curvature <= 10.5
    True
  """
  num_iterations = _check_num_iterations(num_iterations)
  relative_margin = _check_nonnegative("relative_margin", relative_margin)
  dtype = _float_dtype(params)
  _check_scalar_loss(loss_fn, params, args)
  key = _default_key(key)
  theta, residual, hnorm = (
      float(v) for v in jax.device_get(
          _run(_power, _power_impl, loss_fn, num_iterations, params, args,
               key)))
  if not (math.isfinite(theta) and math.isfinite(residual)):
    raise FloatingPointError(
        f"the Hessian-vector products are not finite at params: {theta=}")
  if theta <= 0:
    raise ValueError(
        "power iteration converged to non-positive curvature (Rayleigh "
        f"quotient {theta:.6g}): the dominant curvature is negative; use "
        "estimate_curvature instead")
  delta = _rounding_allowance(dtype, hnorm, num_iterations)
  return MaxCurvatureEstimate(
      max_curvature=theta + residual + delta + relative_margin * abs(theta),
      rayleigh_quotient=theta,
      residual_norm=residual,
      num_hvps=num_iterations,
      rounding_allowance=delta,
      relative_margin=relative_margin,
  )
