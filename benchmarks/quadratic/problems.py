"""Convex quadratics with a prescribed Hessian spectrum.

.. math::

  f(x) = \\tfrac12 x^\\top A x - b^\\top x, \\qquad b = A x^*, \\qquad
  \\operatorname{spec}(A) = \\{\\lambda_1 = m < \\lambda_2 < \\dots <
  \\lambda_d = M\\},

with the eigenvalues log-spaced over ``[m, M] = [1/κ, 1]`` (both ends
included, so the Chebyshev bound is attained on the extreme eigenvectors),
``x*`` a random unit vector and the start ``x_0 = 0``. ``A`` is either
diagonal (``dense=False``, cheap for large ``d``) or ``Q diag(λ) Qᵀ`` with
``Q`` a random rotation (``dense=True``: every gradient mixes all
coordinates, so rounding errors are not confined to an eigen-direction).
Everything is built in float64 numpy and cast once to the run's dtype; ``x*``
stays float64 so the error of a low-precision run is measured against the
exact solution.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np


class Quadratic(NamedTuple):
  """``f(x) = ½ xᵀAx − bᵀx`` (a pytree of arrays).

  Attributes:
    matrix: ``A`` (``(d, d)``; its diagonal ``(d,)`` if not dense), run dtype.
    rhs: ``b = A x*`` (computed in float64, then cast).
    solution: ``x*`` in float64 (or float32 when x64 is off).
  """

  matrix: jax.Array
  rhs: jax.Array
  solution: jax.Array


def spectrum(dim: int, min_curvature: float, max_curvature: float):
  """``dim ≥ 2`` log-spaced float64 eigenvalues from ``m`` to ``M``.

  Example:
    >>> spectrum(3, 0.01, 1.0).round(3).tolist()
    [0.01, 0.1, 1.0]
  """
  if not isinstance(dim, int) or dim < 2:
    raise ValueError(f"dim must be an int >= 2, got {dim=!r}.")
  if not 0 < min_curvature < max_curvature:
    raise ValueError(
      "need 0 < min_curvature < max_curvature, got "
      f"{min_curvature=!r}, {max_curvature=!r}."
    )
  return np.geomspace(min_curvature, max_curvature, dim)


def make_quadratic(
  dim: int, kappa: float, *, dense: bool, dtype: str, seed: int
) -> Quadratic:
  """The quadratic with spectrum ``[1/κ, 1]`` in ``dtype``, from ``seed``.

  The rotation and ``x*`` depend only on ``(dim, seed)``, so problems that
  differ in κ or dtype share them. float64 needs ``jax.enable_x64``.

  Example:
    >>> with jax.enable_x64(True):
    ...   problem = make_quadratic(4, 100.0, dense=True, dtype="float64",
    ...                            seed=0)
    >>> problem.matrix.shape
    (4, 4)
  """
  if not kappa > 1:
    raise ValueError(f"kappa must be > 1, got {kappa=!r}.")
  eigenvalues = spectrum(dim, 1.0 / float(kappa), 1.0)
  rng = np.random.default_rng([seed, dim])
  solution = rng.standard_normal(dim)
  solution /= np.linalg.norm(solution)
  matrix, rhs = eigenvalues, eigenvalues * solution
  if dense:
    q, r = np.linalg.qr(rng.standard_normal((dim, dim)))
    q *= np.sign(np.diag(r))  # Haar-distributed rotation.
    matrix = (q * eigenvalues) @ q.T
    matrix = 0.5 * (matrix + matrix.T)
    rhs = matrix @ solution
  dt = jnp.dtype(dtype)
  return Quadratic(
    jnp.asarray(matrix, dt), jnp.asarray(rhs, dt), jnp.asarray(solution)
  )


def _matvec(a: jax.Array, x: jax.Array) -> jax.Array:
  if a.ndim == 2:
    return jnp.matmul(a, x, precision=jax.lax.Precision.HIGHEST)
  return a * x


def gradient(problem: Quadratic, x: jax.Array) -> jax.Array:
  """``∇f(x) = Ax − b`` in the problem's dtype."""
  return _matvec(problem.matrix, x) - problem.rhs


def error(problem: Quadratic, x: jax.Array) -> jax.Array:
  """``‖x − x*‖`` in the solution's dtype (float64 under x64).

  The difference is taken after casting ``x`` up, so the error of a bfloat16
  run is not itself rounded to bfloat16.
  """
  e = x.astype(problem.solution.dtype) - problem.solution
  return jnp.sqrt(jnp.sum(e * e))


def excess_loss(problem: Quadratic, x: jax.Array) -> jax.Array:
  """``f(x) − f* = ½ (x − x*)ᵀA(x − x*)``, in the solution's dtype."""
  e = x.astype(problem.solution.dtype) - problem.solution
  return 0.5 * jnp.sum(e * _matvec(problem.matrix.astype(e.dtype), e))


def loss(problem: Quadratic, x: jax.Array) -> jax.Array:
  """``f(x) = ½ xᵀAx − bᵀx`` in the problem's dtype (as a user writes it).

  Unlike :func:`excess_loss` it does not know ``x*``: near the minimum it is
  ``f* + (f − f*)`` with ``|f*|`` much larger than ``f − f*``, so in float32
  its rounding (about ``u·|f*|``) hides progress below that size. This is the
  value an optimiser that tests the loss (``adaptive_fractal_sgd``) sees.
  """
  quadratic = 0.5 * jnp.sum(x * _matvec(problem.matrix, x))
  return quadratic - jnp.sum(problem.rhs * x)
