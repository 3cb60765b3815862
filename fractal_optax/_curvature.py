"""Curvature range [m, M] of a loss from Hessian-vector products (Lanczos).

The fractal Chebyshev schedule needs the interval ``[m, M]`` that holds the
eigenvalues of the Hessian. Eigenvalues above ``M`` are amplified
catastrophically, eigenvalues below ``m`` only slow convergence down, so the
bounds returned here are *safe* in that direction: ``max_curvature``
over-estimates the largest eigenvalue and ``min_curvature`` under-estimates the
smallest one (see :func:`estimate_curvature` for exactly what is guaranteed).

Hessian-vector products are forward-over-reverse (``jax.jvp`` of
``jax.grad``) on the flattened float leaves of the parameter pytree, Lanczos
uses full reorthogonalisation, and the small tridiagonal eigenproblem is
solved with ``jnp.linalg.eigh``. On accelerators the whole loop is one
compiled program; on CPU, where XLA runs convolutions slowly inside compiled
loops, a Python loop calls one compiled Lanczos step ``k`` times (the basis is
updated in place), which also lets it stop early on negative curvature.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
import dataclasses
import functools
import math
import numbers
from typing import Any
import warnings

import jax
import jax.core
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp
import numpy as np

__all__ = [
  "CurvatureEstimate",
  "MaxCurvatureEstimate",
  "estimate_curvature",
  "estimate_max_curvature",
]

# Default start-vector key: fixed so that results are reproducible run to run.
_DEFAULT_SEED = 0
# Loop counters are int32.
_MAX_ITERATIONS = 2**31 - 1


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
    num_hvps: Hessian-vector products used: ``k + 5`` (``k`` Lanczos steps
      and five for the a-posteriori checks).
    num_params: ``n``, the number of differentiated scalars.
    rounding_allowance: ``δ``, the absolute slack added to each bound for the
      rounding error of the Hessian-vector products (measured, see
      :func:`estimate_curvature`).
    relative_margin: the relative margin added to ``M``.
    min_source: where ``min_curvature`` comes from: ``"ritz"`` (the Lanczos
      lower bound), ``"l2_regularization"``, ``"max_condition_number"`` or
      ``"dtype_floor"`` (bottom of the spectrum not resolved, no remedy given).
    dtype: name of the floating dtype the run used.
    num_iterations: ``k``, the Lanczos steps run (``min(num_iterations, n)``,
      fewer if negative curvature stopped the run early).
    rayleigh_quotients: ``(ρ₁, ρ_k)``, ``yᵀHy`` of the extreme unit Ritz
      vectors, recomputed with a fresh product.
    explicit_residuals: ``‖Hy − ρy‖`` of the same two vectors.
    probe_discrepancies: ``‖Hy − (H(y + u) − Hu)‖`` of the same two vectors
      (``u`` random): the measured rounding of the products.
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
  num_iterations: int = 0
  rayleigh_quotients: tuple[float, float] = (math.nan, math.nan)
  explicit_residuals: tuple[float, float] = (math.nan, math.nan)
  probe_discrepancies: tuple[float, float] = (math.nan, math.nan)

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
  if isinstance(num_iterations, bool) or not isinstance(
    num_iterations, numbers.Integral
  ):
    raise TypeError(f"num_iterations must be an int, got {num_iterations=}")
  value = int(num_iterations)
  if not 2 <= value <= _MAX_ITERATIONS:
    raise ValueError(
      f"num_iterations must be at least 2 and at most {_MAX_ITERATIONS}, "
      f"got {num_iterations=}"
    )
  return value


def _check_nonnegative(name: str, value: Any) -> float:
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    raise TypeError(f"{name} must be a real number, got {name}={value!r}")
  as_float = float(value)
  if not (math.isfinite(as_float) and as_float >= 0):
    raise ValueError(
      f"{name} must be finite and non-negative, got {name}={value!r}"
    )
  return as_float


def _check_params(params: Any) -> int:
  """Number of floating scalars; rejects empty, complex and non-finite."""
  leaves = jax.tree_util.tree_leaves(params)
  complex_leaves = [
    l for l in leaves if jnp.issubdtype(jnp.result_type(l), jnp.complexfloating)
  ]
  if complex_leaves:
    raise TypeError(
      "params must have real leaves (the Hessian of a real loss in real "
      "variables); split complex parameters into real and imaginary parts, "
      f"got leaf dtypes {[str(jnp.result_type(l)) for l in leaves]}"
    )
  _float_dtype(params)  # at least one floating leaf
  float_leaves = [
    l for l in leaves if jnp.issubdtype(jnp.result_type(l), jnp.floating)
  ]
  num_params = int(sum(np.size(l) for l in float_leaves))
  if num_params == 0:
    raise ValueError(
      "params must contain at least one floating-point scalar, got "
      f"floating leaves of shapes {[np.shape(l) for l in float_leaves]}"
    )
  for l in float_leaves:
    if isinstance(l, jax.core.Tracer):
      raise TypeError(
        "estimate_curvature must be called outside jax.jit "
        "and jax.vmap; params holds a traced value"
      )
    if not bool(jnp.all(jnp.isfinite(l))):
      raise ValueError(
        f"params must be finite, got a leaf of shape {np.shape(l)} holding "
        "NaN or inf"
      )
  return num_params


def _check_key(key: Any) -> jax.Array:
  """The default key, or ``key`` if it is a single PRNG key."""
  if key is None:
    return jax.random.key(_DEFAULT_SEED)
  if isinstance(key, jax.Array) and jnp.issubdtype(
    key.dtype, jax.dtypes.prng_key
  ):
    if key.shape == ():
      return key
  elif (
    isinstance(key, (jax.Array, np.ndarray))
    and key.shape == (2,)
    and key.dtype == np.uint32
  ):
    return jnp.asarray(key)  # a raw jax.random.PRNGKey
  raise TypeError(
    f"key must be a single jax.random.key (or PRNGKey) or None, got {key=}"
  )


def _default_key(key: Any) -> jax.Array:
  return jax.random.key(_DEFAULT_SEED) if key is None else key


def _norm_scale(big: jax.Array, dtype: Any) -> jax.Array:
  """A power of two near ``big = max |x|`` (1 where ``big`` is 0 or not
  finite): dividing by it is exact, and the quotients' squares stay below 4.
  """
  info = jnp.finfo(dtype)
  exponent = jnp.clip(jnp.frexp(big)[1] - 1, info.minexp, info.maxexp - 1)
  scale = jnp.ldexp(jnp.ones((), dtype), exponent)
  return jnp.where((big > 0) & jnp.isfinite(big), scale, 1).astype(dtype)


def _norm(x: jax.Array) -> jax.Array:
  """``‖x‖₂`` whose squares neither overflow nor underflow (scaled by
  :func:`_norm_scale`); wherever ``Σ x²`` is representable it is
  ``jnp.linalg.norm(x)`` bit for bit. A loss scaled by 10²⁰ gives float32
  products whose squares overflow.
  """
  scale = _norm_scale(jnp.max(jnp.abs(x), initial=0), x.dtype)
  return jnp.linalg.norm(x / scale) * scale


def _float_dtype(params: Any) -> np.dtype:
  """Promoted float dtype of the float leaves (at least float32)."""
  leaves = jax.tree_util.tree_leaves(params)
  dtypes = [jnp.result_type(leaf) for leaf in leaves]
  float_dtypes = [d for d in dtypes if jnp.issubdtype(d, jnp.floating)]
  if not float_dtypes:
    raise ValueError(
      "params must contain at least one floating-point leaf to "
      f"differentiate, got leaf dtypes {[str(d) for d in dtypes]}"
    )
  return np.dtype(
    jnp.promote_types(jnp.result_type(*float_dtypes), jnp.float32)
  )


def _check_scalar_loss(
  loss_fn: Callable[..., Any], params: Any, args: tuple[Any, ...]
) -> None:
  if not callable(loss_fn):
    raise TypeError(f"loss_fn must be callable, got {loss_fn=}")
  out = jax.eval_shape(loss_fn, params, *args)
  shape = getattr(out, "shape", None)
  dtype = getattr(out, "dtype", None)
  if shape != () or dtype is None or not jnp.issubdtype(dtype, jnp.floating):
    if shape is None:
      desc = f"a {type(out).__name__}"
    else:
      desc = f"shape {shape} and dtype {dtype}"
    raise ValueError(
      "loss_fn must return a real floating-point scalar (shape ()), got "
      f"{desc}; reduce the loss (e.g. jnp.mean) and drop auxiliary outputs"
    )


# ----------------------------------------------------------------------------
# The compiled core.


def _flat_hvp(
  loss_fn: Callable[..., Any], params: Any, args: tuple[Any, ...]
) -> tuple[jax.Array, Callable[[jax.Array], jax.Array]]:
  """Flat float parameters ``x0`` and ``v -> H(x0) v`` (forward-over-reverse).

  Only floating leaves are differentiated (cast to their promoted dtype, at
  least float32); other leaves are held fixed.
  """
  x0, _, hvp = _flat_loss_and_hvp(loss_fn, params, args)
  return x0, hvp


def _flat_loss_and_hvp(loss_fn, params, args):
  """Like :func:`_flat_hvp`, also returning the flat loss ``x -> f(x)``."""
  leaves, treedef = jax.tree_util.tree_flatten(params)
  is_float = [
    jnp.issubdtype(jnp.result_type(leaf), jnp.floating) for leaf in leaves
  ]
  dtype = _float_dtype(params)
  float_leaves = [
    jnp.asarray(l, dtype) for l, f in zip(leaves, is_float, strict=True) if f
  ]
  x0, unravel = ravel_pytree(float_leaves)

  def flat_loss(x):
    it = iter(unravel(x))
    rebuilt = [
      next(it) if f else l for l, f in zip(leaves, is_float, strict=True)
    ]
    return loss_fn(jax.tree_util.tree_unflatten(treedef, rebuilt), *args)

  grad = jax.grad(flat_loss)

  def hvp(v):
    return jax.jvp(grad, (x0,), (v,))[1].astype(dtype)

  return x0, flat_loss, hvp


# Rows of the Krylov basis are stored in blocks of this many, so that
# reorthogonalising against the first j vectors reads only ⌈j/_BLOCK⌉ blocks.
_BLOCK = 8


def _orthogonalize(
  blocks: jax.Array, num_blocks: jax.Array, w: jax.Array
) -> jax.Array:
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
    _norm(w1) < jnp.sqrt(0.5) * _norm(w),
    project_out,
    lambda v: v,
    w1,
  )


def _lanczos_init(n: int, k: int, dtype: Any, key: jax.Array) -> tuple:
  """Initial Lanczos state: a random unit start vector and an empty basis."""
  q0 = jax.random.normal(key, (n,), dtype)
  q0 = q0 / _norm(q0)
  zeros = jnp.zeros((k,), dtype)
  basis = jnp.zeros((-(-k // _BLOCK), _BLOCK, n), dtype)
  return (
    basis,
    zeros,
    zeros,
    zeros,
    q0,
    jnp.zeros((n,), dtype),
    jnp.zeros((), dtype),
    jnp.zeros((), dtype),
  )


def _lanczos_step(
  hvp: Callable[[jax.Array], jax.Array],
  key: jax.Array,
  j: jax.Array,
  state: tuple,
) -> tuple:
  """Step ``j`` of Lanczos with full reorthogonalisation (one product).

  ``state`` is ``(basis, alphas, betas, drops, q, q_prev, beta_prev, hnorm)``
  as made by :func:`_lanczos_init`; ``j`` may be traced.
  """
  basis, alphas, betas, drops, q, q_prev, beta_prev, hnorm = state
  n, dtype = q.shape[0], q.dtype
  # Breakdown (invariant subspace found) when the new direction is below
  # sqrt(eps)·‖Hq‖: semi-orthogonality is what keeps T an exact projection.
  breakdown_tol = jnp.sqrt(jnp.finfo(dtype).eps)
  basis = basis.at[j // _BLOCK, j % _BLOCK].set(q)
  num_blocks = j // _BLOCK + 1
  hq = hvp(q)
  alpha = jnp.vdot(q, hq)
  w = hq - alpha * q - beta_prev * q_prev
  w = _orthogonalize(basis, num_blocks, w)
  beta = _norm(w)
  hq_norm = _norm(hq)
  hnorm = jnp.maximum(hnorm, hq_norm)
  broke = beta <= breakdown_tol * hq_norm

  def random_unit():
    r = jax.random.normal(jax.random.fold_in(key, j + 1), (n,), dtype)
    r = _orthogonalize(basis, num_blocks, r)
    return r / _norm(r)

  q_next = jax.lax.cond(
    broke, random_unit, lambda: w / jnp.where(beta > 0, beta, 1).astype(dtype)
  )
  alphas = alphas.at[j].set(alpha)
  betas = betas.at[j].set(jnp.where(broke, 0, beta).astype(dtype))
  drops = drops.at[j].set(jnp.where(broke, beta, 0).astype(dtype))
  beta_t = jnp.where(broke, 0, beta).astype(dtype)
  return basis, alphas, betas, drops, q_next, q, beta_t, hnorm


def _ritz(
  alphas: jax.Array, betas: jax.Array, drops: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Ritz values (ascending), eigenvectors ``s`` of ``T_k``, residual norms."""
  tridiagonal = (
    jnp.diag(alphas) + jnp.diag(betas[:-1], 1) + jnp.diag(betas[:-1], -1)
  )
  theta, s = jnp.linalg.eigh(tridiagonal)
  # ‖H Q s − θ Q s‖ ≤ |β_k s_k| + Σ_j |dropped_j s_j| (dropped at breakdowns).
  residuals = jnp.abs(betas[-1] * s[-1]) + jnp.abs(drops) @ jnp.abs(s)
  return theta, s, residuals


def _lanczos_impl(loss_fn, num_iterations, params, args, key):
  """Lanczos with full reorthogonalisation, as one fused loop.

  Returns:
    ``(theta, residuals, hnorm, alphas, betas)``: the ``k`` Ritz values
    (ascending), their residual norms, ``max_j ‖H q_j‖``, and the diagonal and
    off-diagonal of ``T_k`` (``betas[j]`` couples ``q_j`` and ``q_{j+1}``; 0 at
    a breakdown, ``betas[-1]`` is the outgoing coupling ``β_k``).
  """
  x0, hvp = _flat_hvp(loss_fn, params, args)
  n = x0.shape[0]
  k = min(num_iterations, n)
  state = jax.lax.fori_loop(
    0,
    k,
    functools.partial(_lanczos_step, hvp, key),
    _lanczos_init(n, k, x0.dtype, key),
  )
  _, alphas, betas, drops, *_, hnorm = state
  theta, _, residuals = _ritz(alphas, betas, drops)
  # alphas/betas are returned too: T_j for j < k is their leading block.
  return theta, residuals, hnorm, alphas, betas


_lanczos = jax.jit(_lanczos_impl, static_argnums=(0, 1))


def _leading_top(alphas, betas, drops, j, hnorm):
  """Top Ritz value of ``T_j`` (the leading ``j × j`` block) and its residual.

  The rows past ``j`` are decoupled and filled with ``-4‖H‖ - 1``, below
  every Ritz value, so the top eigenpair is that of ``T_j`` (``j`` traced).
  """
  k = alphas.shape[0]
  inside = jnp.arange(k) < j
  fill = -4.0 * hnorm - 1.0
  alphas = jnp.where(inside, alphas, fill.astype(alphas.dtype))
  couplings = jnp.where(jnp.arange(k) < j - 1, betas, 0).astype(betas.dtype)
  theta, s, _ = _ritz(alphas, couplings, jnp.where(inside, drops, 0))
  top = s[:, -1]
  residual = jnp.abs(betas[j - 1] * top[j - 1]) + jnp.abs(drops) @ jnp.abs(
    jnp.where(inside, top, 0)
  )
  return theta[-1], residual


def _lanczos_top_impl(
  loss_fn, min_iterations, max_iterations, params, args, key, rtol
):
  """Lanczos steps until the top Ritz pair converges, as one traced loop.

  It stops after step ``j ≥ min_iterations`` once the top Ritz value ``θ`` is
  positive and its residual is at most ``rtol · θ``, or after
  ``max_iterations`` steps.
  Where negative curvature dominates ``H`` the first Krylov vectors resolve
  the bottom of the spectrum, and a fixed small ``k`` can miss the top by
  an order of magnitude; this loop keeps going until the top is resolved.

  Returns:
    ``(theta, residual, hnorm, num_iterations)``: the top Ritz value, its
    residual norm, ``max_j ‖H q_j‖`` and the products spent.
  """
  x0, hvp = _flat_hvp(loss_fn, params, args)
  n = x0.shape[0]
  k = min(max_iterations, n)
  step = functools.partial(_lanczos_step, hvp, key)

  def converged(j, state):
    _, alphas, betas, drops, *_, hnorm = state
    theta, residual = _leading_top(alphas, betas, drops, j, hnorm)
    return (j >= min_iterations) & (theta > 0) & (residual <= rtol * theta)

  def cond(carry):
    j, state = carry
    return (j < k) & ~converged(j, state)

  def body(carry):
    j, state = carry
    return j + 1, step(j, state)

  j, state = jax.lax.while_loop(
    cond, body, (jnp.zeros((), jnp.int32), _lanczos_init(n, k, x0.dtype, key))
  )
  _, alphas, betas, drops, *_, hnorm = state
  theta, residual = _leading_top(alphas, betas, drops, j, hnorm)
  return theta, residual, hnorm, j


# Salt of the probe direction's key (any constant unlikely to be a step).
_PROBE_SALT = 0x5EED


def _refine(flat_loss, hvp, x0, key, state, num_done):
  """A-posteriori checks of the two extreme Ritz pairs (five products).

  Uses the first ``num_done`` (may be traced) Lanczos steps of ``state``. For
  ``y`` the unit Ritz vector of θ₁ and of θ_j: the Rayleigh quotient
  ``ρ = yᵀ(Hy)``, the explicit residual ``‖Hy − ρy‖`` and the rounding probe
  ``‖Hy − (H(y + u) − Hu)‖`` (``u`` a random unit vector; exact arithmetic
  gives 0 since the product is linear in ``v``). Also the loss at ``x0``.

  Returns:
    ``(theta (k,), residuals (k,), hnorm, rayleigh (2,), explicit (2,),
    probe (2,), loss)``; only the first ``num_done`` Ritz values are real.
  """
  basis, alphas, betas, drops, *_, hnorm = state
  k = alphas.shape[0]
  idx = jnp.arange(k)
  real = idx < num_done
  # Steps not done yet become decoupled diagonal entries above ‖T‖
  # (Gershgorin), so the real Ritz values come first, in order.
  big = 4 * (jnp.max(jnp.abs(alphas)) + jnp.max(jnp.abs(betas))) + 1
  diag = jnp.where(real, alphas, big)
  off = jnp.where(idx[:-1] < num_done - 1, betas[:-1], 0)
  tridiagonal = jnp.diag(diag) + jnp.diag(off, 1) + jnp.diag(off, -1)
  theta, s = jnp.linalg.eigh(tridiagonal)
  last = num_done - 1
  drops = jnp.where(real, drops, 0)
  residuals = jnp.abs(betas[last] * s[last]) + jnp.abs(drops) @ jnp.abs(s)
  rows = basis.reshape(-1, basis.shape[-1])[:k]
  u = jax.random.normal(
    jax.random.fold_in(key, _PROBE_SALT), x0.shape, x0.dtype
  )
  u = u / _norm(u)
  hu = hvp(u)
  rayleigh, explicit, probe = [], [], []
  for col in (0, last):
    y = rows.T @ jnp.where(real, s[:, col], 0)
    y = y / _norm(y)
    hy = hvp(y)
    rho = jnp.vdot(y, hy)
    rayleigh.append(rho)
    explicit.append(_norm(hy - rho * y))
    probe.append(_norm(hy - (hvp(y + u) - hu)))
    hnorm = jnp.maximum(hnorm, _norm(hy))
  return (
    theta,
    residuals,
    hnorm,
    jnp.stack(rayleigh),
    jnp.stack(explicit),
    jnp.stack(probe),
    flat_loss(x0),
  )


def _estimate_fused_impl(loss_fn, k, params, args, key):
  """The whole estimate as one compiled program (the loop form for GPU/TPU)."""
  x0, flat_loss, hvp = _flat_loss_and_hvp(loss_fn, params, args)
  state = jax.lax.fori_loop(
    0,
    k,
    functools.partial(_lanczos_step, hvp, key),
    _lanczos_init(x0.shape[0], k, x0.dtype, key),
  )
  return _refine(flat_loss, hvp, x0, key, state, k)


_estimate_fused = jax.jit(_estimate_fused_impl, static_argnums=(0, 1))


def _init_impl(loss_fn, k, params, args, key):
  x0, _ = _flat_hvp(loss_fn, params, args)
  return _lanczos_init(x0.shape[0], k, x0.dtype, key)


def _step_impl(loss_fn, params, args, key, j, state):
  _, hvp = _flat_hvp(loss_fn, params, args)
  return _lanczos_step(hvp, key, j, state)


def _finish_impl(loss_fn, params, args, key, state, num_done):
  x0, flat_loss, hvp = _flat_loss_and_hvp(loss_fn, params, args)
  return _refine(flat_loss, hvp, x0, key, state, num_done)


_init = jax.jit(_init_impl, static_argnums=(0, 1))
# The state (the k × n basis above all) is updated in place.
_step = jax.jit(_step_impl, static_argnums=(0,), donate_argnums=(5,))
_finish = jax.jit(_finish_impl, static_argnums=(0,))


def _power_impl(loss_fn, num_iterations, params, args, key):
  """Power iteration; returns the last Rayleigh quotient and its residual."""
  x0, hvp = _flat_hvp(loss_fn, params, args)
  n = x0.shape[0]
  dtype = x0.dtype
  v = jax.random.normal(key, (n,), dtype)
  v = v / _norm(v)

  def body(_, state):
    v, _, _, hnorm = state
    hv = hvp(v)
    theta = jnp.vdot(v, hv)
    residual = _norm(hv - theta * v)
    norm = _norm(hv)
    hnorm = jnp.maximum(hnorm, norm)
    v_next = jnp.where(norm > 0, hv / jnp.where(norm > 0, norm, 1), v)
    return v_next.astype(dtype), theta, residual, hnorm

  zero = jnp.zeros((), dtype)
  _, theta, residual, hnorm = jax.lax.fori_loop(
    0, num_iterations, body, (v, zero, zero, zero)
  )
  return theta, residual, hnorm


_power = jax.jit(_power_impl, static_argnums=(0, 1))


def _run(compiled, impl, loss_fn, num_iterations, params, args, key):
  """Calls the cached compiled core, or a fresh one if loss_fn is unhashable."""
  try:
    hash(loss_fn)
  except TypeError:
    return jax.jit(functools.partial(impl, loss_fn, num_iterations))(
      params, args, key
    )
  return compiled(loss_fn, num_iterations, params, args, key)


def _rounding_allowance(dtype: np.dtype, hnorm: Any, num_hvps: Any) -> Any:
  """δ = 10·√k·ε·max‖Hq‖: slack for rounding in the products and the basis.

  Host numbers give a float; jax arrays ``hnorm`` and ``num_hvps`` (of
  ``dtype``, traced inside ``jit``) give an array of ``dtype``.
  """
  traced = isinstance(hnorm, jax.Array)
  xp = jnp if traced else np
  delta = 10.0 * xp.sqrt(num_hvps) * jnp.finfo(dtype).eps * hnorm
  return delta if traced else float(delta)


# Safety factor on the measured rounding of one product (see
# estimate_curvature's docstring), and the floor, in units of ε·max‖Hq‖,
# for the rounding of the vector operations.
_PROBE_SAFETY = 4.0
_VECTOR_ROUNDING = 10.0


def _measured_allowance(
  dtype: np.dtype, hnorm: float, probe: np.ndarray
) -> float:
  """δ = 4·max(probe) + 10·ε·max‖Hq‖ (see estimate_curvature)."""
  return (
    _PROBE_SAFETY * float(np.max(probe))
    + _VECTOR_ROUNDING * float(np.finfo(dtype).eps) * hnorm
  )


def _loop_form(params: Any) -> str:
  """``"host"`` (a Python loop of one compiled step) on CPU, else ``"fused"``.

  XLA:CPU runs convolutions much more slowly inside a compiled loop than at
  the top level of a program, so on CPU each Lanczos step is its own call;
  accelerators run the whole loop as one program.
  """
  leaves = jax.tree_util.tree_leaves(params)
  platforms = set()
  for leaf in leaves:
    if isinstance(leaf, jax.Array):
      try:
        platforms.update(d.platform for d in leaf.devices())
      except Exception:  # Tracers have no devices.
        pass
  if not platforms:
    platforms = {jax.default_backend()}
  return "host" if platforms == {"cpu"} else "fused"


def _compiled(loss_fn):
  """(init, step, finish, fused), cached when ``loss_fn`` is hashable."""
  try:
    hash(loss_fn)
  except TypeError:
    part = functools.partial
    return (
      jax.jit(part(_init_impl, loss_fn), static_argnums=(0,)),
      jax.jit(part(_step_impl, loss_fn), donate_argnums=(4,)),
      jax.jit(part(_finish_impl, loss_fn)),
      jax.jit(part(_estimate_fused_impl, loss_fn), static_argnums=(0,)),
    )
  part = functools.partial
  return (
    part(_init, loss_fn),
    part(_step, loss_fn),
    part(_finish, loss_fn),
    part(_estimate_fused, loss_fn),
  )


def _host_theta_min(alphas: np.ndarray, betas: np.ndarray, j: int) -> float:
  """Smallest eigenvalue of the leading ``j × j`` block of ``T`` (float64)."""
  t = (
    np.diag(alphas[:j])
    + np.diag(betas[: j - 1], 1)
    + np.diag(betas[: j - 1], -1)
  ).astype(np.float64)
  return float(np.linalg.eigvalsh(t)[0])


def _run_lanczos(loss_fn, k, params, args, key, loop, stop_if_negative):
  """Runs Lanczos and the checks; returns (refine outputs, steps done).

  In the host loop, every ``_BLOCK`` steps the smallest Ritz value of ``T_j``
  is computed on the host; once it is below minus the a-priori rounding
  allowance, the a-posteriori checks run on the ``j`` steps done, and if
  they confirm negative curvature (``ρ₁ + δ < 0``) and ``stop_if_negative``,
  the loop stops there.
  """
  init, step, finish, fused = _compiled(loss_fn)
  if loop == "fused":
    return jax.device_get(fused(k, params, args, key)), k
  dtype = _float_dtype(params)
  state = init(k, params, args, key)
  checked = not stop_if_negative
  for j in range(k):
    state = step(params, args, key, j, state)
    done = j + 1
    if checked or done % _BLOCK or done == k:
      continue
    alphas, betas, hnorm = jax.device_get((state[1], state[2], state[7]))
    theta_min = _host_theta_min(np.asarray(alphas), np.asarray(betas), done)
    if theta_min < -_rounding_allowance(dtype, float(hnorm), done):
      checked = True  # one a-posteriori check at most: it costs 5 products
      out = jax.device_get(finish(params, args, key, state, done))
      delta = _measured_allowance(dtype, float(out[2]), out[5])
      if float(out[3][0]) + delta < 0:
        return out, done
  return jax.device_get(finish(params, args, key, state, k)), k


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
  per step, then five more products to check the two extreme Ritz pairs.

  With the orthonormal Krylov basis :math:`Q_k` and the tridiagonal
  :math:`T_k = Q_k^\top H Q_k = S \,\mathrm{diag}(\theta)\, S^\top`, the Ritz
  values :math:`\theta_1 \le \dots \le \theta_k` and their residuals
  :math:`r_i = \|H Q_k s_i - \theta_i Q_k s_i\| = |\beta_k s_{k,i}|` give

  For the unit Ritz vectors :math:`y_1 = Q_k s_1` and :math:`y_k = Q_k s_k`
  one fresh product each gives the Rayleigh quotient :math:`\rho_i = y_i^\top
  H y_i` and the explicit residual :math:`x_i = \|H y_i - \rho_i y_i\|`, and
  with a random unit :math:`u` the rounding probe :math:`p_i = \|H y_i - (H(y_i
  + u) - H u)\|` (zero in exact arithmetic, the product being linear). Then

  .. math::

    \delta &= 4 \max(p_1, p_k) + 10\, \varepsilon \max_j \|H q_j\|, \\
    M &= \max(\rho_k + x_k,\ \theta_k + r_k) + \delta
         + \varsigma\,|\theta_k| + \lambda_2, \\
    m &= \max\big(\min(\rho_1 - x_1,\ \theta_1 - r_1) - \delta, \ 0\big)
         + \lambda_2
         \quad (\text{then floored at } M / \kappa_{\max} \text{ if given}),

  where :math:`\varepsilon` is the dtype's machine epsilon,
  :math:`\varsigma` is ``relative_margin``, :math:`\lambda_2` is
  ``l2_regularization`` and :math:`\kappa_{\max}` is ``max_condition_number``.

  **The rounding allowance δ.** If the computed product is :math:`Hv + e(v)`
  with :math:`\|e(v)\| \le \sigma`, then :math:`|\lambda - \rho_i| \le
  x_i + 3\sigma` for some eigenvalue :math:`\lambda` (the error moves
  :math:`\rho_i` by at most σ and the residual by at most 2σ). The probe
  measures :math:`e(y) - e(y + u) + e(u)`, of size about :math:`\sqrt 3\,
  \sigma` when the three errors are unrelated, so :math:`4 p` covers
  :math:`3\sigma` with a factor of about 2 to spare; the
  :math:`10\varepsilon\|H\|` term covers the vector operations. This is
  an estimate, not a proof: rounding that is *linear* in ``v`` (a fixed
  perturbation of the operator, e.g. weights stored in low precision) is
  invisible to the probe, and is then part of the Hessian being measured.
  Because δ is measured, products computed in low precision inside
  ``loss_fn`` (bfloat16, TF32) widen it, and a bottom that they blur falls
  back as below; accurate float32 products certify a well-resolved
  :math:`\lambda_{\min}` down to about :math:`10^{-5}\lambda_{\max}`.

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

  * if :math:`\min(\theta_1, \rho_1) + \delta < 0`, a Rayleigh quotient
    proves :math:`\lambda_{\min}(H) < 0` (non-convex loss). No schedule of
    positive steps is then safe: each step η multiplies those directions by
    :math:`1 + \eta |\lambda|`, about :math:`\exp(|\lambda| \sum_t
    \eta_t)` per cycle, and :math:`\sum_t \eta_t \approx T/\sqrt{mM}` for
    Chebyshev steps on :math:`[m, M]`. Without a remedy a ``ValueError``
    names the value and suggests a weight decay :math:`\lambda_2` to train
    with; on CPU the run stops as soon as a block of 8 steps shows it. With
    ``l2_regularization`` (the weight decay you *train with*) the bounds are
    those of :math:`H + \lambda_2 I`: it raises if :math:`\lambda_2` does
    not lift the measured value above 0, else ``m = λ₂`` with a warning
    (directions with curvature in :math:`[0, m]` converge slowly but do not
    grow; :math:`\lambda_{\min}(H)` may still lie below the smallest Ritz
    value if unresolved). ``max_condition_number`` alone only floors ``m``
    at :math:`M/\kappa_{\max}`: it returns numbers, with a warning, but does
    *not* make ``fractal_sgd`` safe, since the negative directions still grow;
  * if :math:`\theta_1 > 0` but the bottom is unresolved, ``m`` is
    :math:`\lambda_2` and/or :math:`M/\kappa_{\max}` when given (silently: this
    is what they are for), else ``M·ε`` (safe but pessimistic, κ = 1/ε) with a
    ``UserWarning`` suggesting a remedy.

  A ``UserWarning`` is also issued when the returned ``m`` exceeds the
  smallest measured curvature :math:`\theta_1 + \lambda_2` (a floor that
  contradicts the measurement: those directions converge slowly).

  **Cost.** ``k + 5`` Hessian-vector products (each about two to three gradient
  evaluations), ``k × n`` floats of memory for the basis, and ``O(k² n)`` flops
  of reorthogonalisation (Gram-Schmidt against the vectors stored so far, in
  blocks of 8; a second pass only when the first one cancels, the DGKS
  criterion). For a model too large for the basis,
  :func:`estimate_max_curvature` needs one vector. **Precision.** Ritz values
  are accurate to about :math:`\varepsilon \|H\|` (absolute), which δ covers;
  in float32 a smallest eigenvalue below roughly :math:`10^{-5}\,\lambda_{\max}`
  cannot be certified: enable ``jax_enable_x64`` and pass float64 params if it
  must be.

  Call it outside ``jit`` (it returns Python floats and may warn); it compiles
  once per ``(loss_fn, k, shapes)`` and the programs are reused.

  Args:
    loss_fn: ``loss_fn(params, *args) -> scalar``, differentiable twice.
    params: a pytree of arrays. Floating leaves are the variables (computed in
      their promoted dtype, at least float32); other leaves are held fixed.
    *args: further arguments of ``loss_fn`` (arrays or pytrees of arrays, e.g.
      a batch). Bind non-array configuration with ``functools.partial``.
    num_iterations: Lanczos steps ``k ≥ 2`` (capped at ``n``); one
      Hessian-vector product each, and memory for ``k × n`` basis vectors.
    key: a JAX PRNG key for the random start vector; default
      ``jax.random.key(0)`` (reproducible).
    relative_margin: ς ≥ 0 added to ``M`` as ``ς·|θ_k|`` (default 1%).
    max_condition_number: κ_max > 1: floor ``m`` at ``M / κ_max``. The
      remedy for ill-conditioned problems whose smallest eigenvalue is not
      resolved; on a non-convex loss it gives numbers but no safety (above).
    l2_regularization: λ₂ ≥ 0, the strength of a penalty ``½ λ₂ ‖x‖²`` that
      training adds *outside* ``loss_fn`` (e.g. ``optax.add_decayed_weights``):
      the bounds are those of :math:`H + \lambda_2 I`, with negative measured
      curvature clamped to 0 (so ``m ≥ λ₂``).

  Returns:
    A :class:`CurvatureEstimate`; it unpacks as ``(min_curvature,
    max_curvature)``.

  Raises:
    ValueError: on a non-scalar loss, ``num_iterations`` outside
      ``[2, 2**31 − 1]``, params without floating scalars or with NaN/inf, a
      loss or Hessian-vector products that are not finite, a bad remedy
      value, or measured negative curvature that no ``l2_regularization``
      lifts above 0.
    TypeError: on a non-callable ``loss_fn``, a non-integer
      ``num_iterations``, complex params, or a key that is not one PRNG key.

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
  l2_regularization = _check_nonnegative("l2_regularization", l2_regularization)
  if max_condition_number is not None:
    if (
      isinstance(max_condition_number, bool)
      or not isinstance(max_condition_number, numbers.Real)
      or not max_condition_number > 1
      or not math.isfinite(max_condition_number)
    ):
      raise ValueError(
        "max_condition_number must be a finite number > 1, got "
        f"{max_condition_number=}"
      )
    max_condition_number = float(max_condition_number)
  num_params = _check_params(params)
  dtype = _float_dtype(params)
  _check_scalar_loss(loss_fn, params, args)
  key = _check_key(key)
  k = min(num_iterations, num_params)
  has_remedy = l2_regularization > 0 or max_condition_number is not None

  out, num_steps = _run_lanczos(
    loss_fn,
    k,
    params,
    args,
    key,
    _loop_form(params),
    stop_if_negative=not has_remedy,
  )
  theta, residuals, hnorm, rayleigh, explicit, probe, loss_value = out
  theta = np.asarray(theta, np.float64)[:num_steps]
  residuals = np.asarray(residuals, np.float64)[:num_steps]
  rayleigh = np.asarray(rayleigh, np.float64)
  explicit = np.asarray(explicit, np.float64)
  probe = np.asarray(probe, np.float64)
  if not np.isfinite(float(loss_value)):
    raise ValueError(
      f"loss_fn is not finite at params: it returned {float(loss_value)}"
    )
  if not all(
    np.all(np.isfinite(a))
    for a in (theta, residuals, rayleigh, explicit, probe)
  ):
    raise ValueError(
      "the Hessian-vector products of loss_fn are not finite at params "
      f"(Ritz values {theta.tolist()}); loss_fn's second derivatives "
      "overflow or are undefined there"
    )
  num_hvps = num_steps + 5
  delta = _measured_allowance(dtype, float(hnorm), probe)
  theta_min, theta_max = float(theta[0]), float(theta[-1])
  r_min, r_max = float(residuals[0]), float(residuals[-1])
  rho_min, rho_max = float(rayleigh[0]), float(rayleigh[1])
  x_min, x_max = float(explicit[0]), float(explicit[1])

  # An eigenvalue of H lies within ‖Hy − ρy‖ + δ of ρ (explicit residual), and
  # within r + δ of θ (Lanczos recurrence): the extremes use the wider one.
  top = max(rho_max + x_max, theta_max + r_max) + delta
  max_curvature = top + relative_margin * abs(theta_max) + l2_regularization
  if max_curvature <= 0:
    raise ValueError(
      "the measured curvature is nowhere positive (largest Ritz value "
      f"{theta_max:.6g}); a Chebyshev schedule needs a positive range"
    )

  # Lower bound of λ_min(H) when the bottom is resolved and it is > 0.
  lower = min(rho_min - x_min, theta_min - r_min) - delta
  measured_min = min(theta_min, rho_min)  # ≥ λ_min(H) up to δ
  floors = {}
  if l2_regularization > 0:
    floors["l2_regularization"] = l2_regularization
  if max_condition_number is not None:
    floors["max_condition_number"] = max_curvature / max_condition_number
  tiny = max_curvature * float(np.finfo(dtype).eps)
  negative = measured_min + delta < 0  # certainly λ_min(H) < 0
  # λ_min(H) ≤ measured_min + δ; the bottom may be lower still if unresolved.
  suggested_l2 = 2.0 * abs(min(lower, measured_min))
  if negative and l2_regularization + measured_min + delta <= 0:
    stopped = (
      "" if num_steps == k else f" (found after {num_steps} of {k} iterations)"
    )
    if l2_regularization > 0:
      raise ValueError(
        f"loss_fn has negative curvature at params: a Rayleigh quotient "
        f"{measured_min:.6g} (± rounding {delta:.3g}){stopped}, which "
        f"{l2_regularization=} does not lift above 0; H + λ₂I is not "
        "positive, and no positive step-size schedule is safe for it. "
        f"Train with weight decay at least {suggested_l2:.3g} and pass it "
        "as l2_regularization=."
      )
    if max_condition_number is None:
      raise ValueError(
        f"loss_fn has negative curvature at params: a Rayleigh quotient "
        f"{measured_min:.6g} (± rounding {delta:.3g}){stopped}, largest "
        f"curvature {theta_max:.6g}. Every positive step amplifies those "
        "directions (by 1 + η|λ| each), so no (m, M) makes fractal_sgd "
        "safe on this loss as it is. Train with weight decay λ₂ of at "
        f"least {suggested_l2:.3g} (e.g. optax.add_decayed_weights) and "
        "pass l2_regularization=λ₂: then (m, M) bound H + λ₂I. "
        "max_condition_number= only floors m and does not remove the "
        "growth of the negative directions."
      )
  if negative:
    source = max(floors, key=lambda name: floors[name])
    min_curvature = floors[source]
    if l2_regularization + measured_min + delta > 0 and source == (
      "l2_regularization"
    ):
      warnings.warn(
        f"loss_fn has negative curvature at params: a Rayleigh quotient "
        f"{measured_min:.6g}; min_curvature is {min_curvature:.6g} from "
        f"l2_regularization (H + λ₂I is measured positive but not "
        "certified: λ_min(H) may lie below the smallest Ritz value)",
        UserWarning,
        stacklevel=2,
      )
    else:
      warnings.warn(
        f"loss_fn has negative curvature at params: a Rayleigh quotient "
        f"{measured_min:.6g}; min_curvature floored at {min_curvature:.6g} "
        f"by {source}. This does NOT make a schedule safe: each step η "
        f"amplifies those directions by about 1 + η·{abs(measured_min):.3g}"
        "; train with weight decay of at least "
        f"{suggested_l2:.3g} and pass it as l2_regularization=",
        UserWarning,
        stacklevel=2,
      )
  else:
    candidates = dict(floors)
    candidates["ritz"] = max(lower, 0.0) + l2_regularization
    source = max(candidates, key=lambda name: candidates[name])
    min_curvature = candidates[source]
    if min_curvature <= tiny and not floors:
      source, min_curvature = "dtype_floor", tiny
      warnings.warn(
        f"the smallest eigenvalue is not resolved after {num_steps} "
        f"iterations (smallest Ritz value {theta_min:.6g} with residual "
        f"{max(r_min, x_min):.3g}, rounding allowance {delta:.3g}); "
        f"min_curvature falls back to M·eps = {min_curvature:.3g}. Pass "
        "max_condition_number= or l2_regularization=, or raise "
        "num_iterations.",
        UserWarning,
        stacklevel=2,
      )
    elif min_curvature > measured_min + l2_regularization:
      warnings.warn(
        f"min_curvature {min_curvature:.6g} (from {source}) exceeds the "
        f"smallest measured curvature {measured_min + l2_regularization:.6g}"
        ": those directions will converge slowly",
        UserWarning,
        stacklevel=2,
      )

  if not min_curvature < max_curvature:
    raise ValueError(
      f"estimated min_curvature {min_curvature:.6g} is not below "
      f"max_curvature {max_curvature:.6g}; got {max_condition_number=}"
    )

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
    num_iterations=num_steps,
    rayleigh_quotients=(rho_min, rho_max),
    explicit_residuals=(x_min, x_max),
    probe_discrepancies=(float(probe[0]), float(probe[1])),
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

  with :math:`\delta = 10\sqrt{k}\,\varepsilon \max_j \|H v_j\|` and ρ
  ``relative_margin``. ``M ≥ λ_max`` when the
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
  _check_params(params)
  dtype = _float_dtype(params)
  _check_scalar_loss(loss_fn, params, args)
  key = _check_key(key)
  theta, residual, hnorm = (
    float(v)
    for v in jax.device_get(
      _run(_power, _power_impl, loss_fn, num_iterations, params, args, key)
    )
  )
  if not (math.isfinite(theta) and math.isfinite(residual)):
    raise ValueError(
      "the Hessian-vector products of loss_fn are not finite at params: "
      f"{theta=}"
    )
  if theta <= 0:
    raise ValueError(
      "power iteration converged to non-positive curvature (Rayleigh "
      f"quotient {theta:.6g}): the dominant curvature is negative; use "
      "estimate_curvature instead"
    )
  delta = _rounding_allowance(dtype, hnorm, num_iterations)
  return MaxCurvatureEstimate(
    max_curvature=theta + residual + delta + relative_margin * abs(theta),
    rayleigh_quotient=theta,
    residual_norm=residual,
    num_hvps=num_iterations,
    rounding_allowance=delta,
    relative_margin=relative_margin,
  )
