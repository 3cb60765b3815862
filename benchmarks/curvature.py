"""Curvature estimation: fractal_optax's Lanczos against scipy's eigsh.

Both methods are driven by the *same* jitted Hessian-vector product
(forward-over-reverse, in ``--dtype``: float64 by default so that the
comparison is about the algorithms, not the arithmetic; ``--dtype float32``
for the everyday case): ``estimate_curvature`` runs the whole Lanczos
loop on device in one compiled program; ``scipy.sparse.linalg.eigsh``
(ARPACK, implicitly restarted Lanczos, ``which="BE"``, ``k=2``: one eigenvalue
from each end) calls it through a ``LinearOperator`` whose ``matvec`` is
counted, one device round trip per product.

Problems:

* ``quadratic_<n>``: ``½‖D^{1/2} R x‖²`` with ``R`` a product of Householder
  reflections (orthogonal, applied in O(n)), so the Hessian ``Rᵀ D R`` is dense
  in the standard basis yet its spectrum ``D`` is known exactly: a bulk
  uniform in [1, 10], one low outlier 0.1 and top outliers 20, 40, 70, 100
  (κ = 1000).
* ``mlp_<n>``: a Flax NNX tanh MLP on synthetic regression data (mean squared
  error), at initialisation; reference: eigenvalues of the dense Hessian
  (``jax.hessian`` in ``--dtype``) by ``numpy.linalg.eigvalsh`` in float64.
  It is non-convex: λ_min < 0.

For each problem: eigsh's product count, wall time and relative errors of
λ_max and λ_min; ours at the *same* number of products (wall time, errors);
the fewest products with which ours matches eigsh's accuracy on both ends
(read off the leading blocks of the same Lanczos tridiagonal ``T_k``, since
``T_j`` is the leading ``j × j`` block of ``T_k``), where errors below the
rounding floor ``10·ε·λ_max`` count as matched, and ours' wall time at that
count (``time_ratio`` = ours to match / eigsh); and the safe bounds
``estimate_curvature`` hands to the schedule. Wall times exclude compilation
(reported apart) and are the best of ``--repeats`` runs. Results:
``<out>/curvature.json`` (every field) and ``<out>/curvature.md`` (the table).

Usage::

  python -m benchmarks.curvature [--quick] [--out results/curvature]
"""

from __future__ import annotations

import argparse
import functools
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse.linalg
from jax.flatten_util import ravel_pytree

from benchmarks import io_utils
from fractal_optax import _curvature

_NUM_REFLECTORS = 4


def structured_quadratic_loss(x: jax.Array, diagonal: jax.Array,
                              reflectors: jax.Array) -> jax.Array:
  """½‖D^{1/2} R x‖², ``R`` = product of Householder reflections."""
  y = x
  for u in reflectors:          # static number of reflectors
    y = y - 2.0 * u * (u @ y)
  return 0.5 * jnp.sum(diagonal * y * y)


def quadratic_problem(n: int, seed: int, dtype: Any) -> dict[str, Any]:
  """Structured quadratic with the bulk + outliers spectrum, κ = 1000."""
  rng = np.random.default_rng(seed)
  outliers_top = np.array([20.0, 40.0, 70.0, 100.0])
  bulk = rng.uniform(1.0, 10.0, n - 1 - len(outliers_top))
  diagonal = rng.permutation(np.concatenate([[0.1], bulk, outliers_top]))
  u = rng.standard_normal((_NUM_REFLECTORS, n))
  u /= np.linalg.norm(u, axis=1, keepdims=True)
  return {
      "name": f"quadratic_{n}",
      "loss_fn": structured_quadratic_loss,
      "params": jnp.zeros(n, dtype),
      "args": (jnp.asarray(diagonal, dtype), jnp.asarray(u, dtype)),
      "lambda_min": float(diagonal.min()),
      "lambda_max": float(diagonal.max()),
      "reference": "exact",
  }


def mlp_problem(num_inputs: int, hidden: int, num_samples: int,
                seed: int, dtype: Any) -> dict[str, Any]:
  """Flax NNX tanh MLP, MSE on a synthetic teacher; dense-Hessian reference."""
  from flax import nnx  # pylint: disable=g-import-not-at-top

  class MLP(nnx.Module):

    def __init__(self, rngs: nnx.Rngs):
      self.hidden1 = nnx.Linear(num_inputs, hidden, rngs=rngs)
      self.hidden2 = nnx.Linear(hidden, hidden, rngs=rngs)
      self.out = nnx.Linear(hidden, 1, rngs=rngs)

    def __call__(self, x):
      x = jnp.tanh(self.hidden1(x))
      x = jnp.tanh(self.hidden2(x))
      return self.out(x)[:, 0]

  rng = np.random.default_rng(seed)
  x = rng.standard_normal((num_samples, num_inputs))
  teacher = rng.standard_normal(num_inputs)
  y = (np.sin(x @ teacher) + 0.1 * rng.standard_normal(num_samples))
  graphdef, state = nnx.split(MLP(nnx.Rngs(seed)))
  state = jax.tree_util.tree_map(lambda a: a.astype(dtype), state)

  def loss_fn(params, x, y):
    model = nnx.merge(graphdef, params)
    return jnp.mean((model(x) - y) ** 2)

  args = (jnp.asarray(x, dtype), jnp.asarray(y, dtype))
  flat, unravel = ravel_pytree(state)
  hessian = jax.jit(jax.hessian(lambda f: loss_fn(unravel(f), *args)))(flat)
  eigenvalues = np.linalg.eigvalsh(np.asarray(hessian, np.float64))
  return {
      "name": f"mlp_{flat.shape[0]}",
      "loss_fn": loss_fn,
      "params": state,
      "args": args,
      "lambda_min": float(eigenvalues[0]),
      "lambda_max": float(eigenvalues[-1]),
      "reference": "dense eigvalsh",
  }


def _best_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
  best, out = float("inf"), None
  for _ in range(repeats):
    start = time.perf_counter()
    out = fn()
    best = min(best, time.perf_counter() - start)
  return best, out


def _rel(estimate: float, truth: float) -> float:
  return abs(estimate - truth) / abs(truth)


def run_eigsh(hvp: Callable[[jax.Array], jax.Array], n: int, v0: np.ndarray,
              tol: float, dtype: Any) -> dict[str, Any]:
  """eigsh(which="BE", k=2) on the jitted HVP; counts the products."""
  count = [0]

  def matvec(v):
    count[0] += 1
    return np.asarray(hvp(jnp.asarray(np.ravel(v), dtype)), np.float64)

  operator = scipy.sparse.linalg.LinearOperator((n, n), matvec=matvec,
                                                dtype=np.float64)
  start = time.perf_counter()
  values = scipy.sparse.linalg.eigsh(operator, k=2, which="BE", tol=tol,
                                     v0=v0, return_eigenvectors=False)
  wall = time.perf_counter() - start
  values = np.sort(values)
  return {"hvps": count[0], "time_s": wall, "theta_min": float(values[0]),
          "theta_max": float(values[-1])}


def _prefix_extremes(alphas: np.ndarray, betas: np.ndarray, j: int
                     ) -> tuple[float, float]:
  """Extreme Ritz values of the leading j × j block of T."""
  t = (np.diag(alphas[:j]) + np.diag(betas[:j - 1], 1)
       + np.diag(betas[:j - 1], -1))
  values = np.linalg.eigvalsh(t.astype(np.float64))
  return float(values[0]), float(values[-1])


def _time_ours(problem: dict[str, Any], num_iterations: int, key: jax.Array,
               repeats: int) -> tuple[float, float, Any]:
  """(best wall time, compile time, estimate) of estimate_curvature."""
  estimate = functools.partial(
      _curvature.estimate_curvature, problem["loss_fn"], problem["params"],
      *problem["args"], num_iterations=num_iterations, key=key,
      max_condition_number=1e6)   # a floor, so non-convex losses do not raise
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    start = time.perf_counter()
    estimate()
    first = time.perf_counter() - start
    best, est = _best_time(estimate, repeats)
  return best, max(first - best, 0.0), est


def benchmark_problem(problem: dict[str, Any], *, tol: float, repeats: int,
                      seed: int, noise_floor: float) -> dict[str, Any]:
  """Runs eigsh and ours on one problem and returns the table row."""
  loss_fn, params, args = problem["loss_fn"], problem["params"], problem["args"]
  lam_min, lam_max = problem["lambda_min"], problem["lambda_max"]
  key = jax.random.key(seed)
  flat = ravel_pytree(params)[0]
  n, dtype = int(flat.shape[0]), flat.dtype
  # The same forward-over-reverse product estimate_curvature uses, jitted.
  hvp = jax.jit(lambda v: _curvature._flat_hvp(loss_fn, params, args)[1](v))  # pylint: disable=protected-access
  v0 = np.asarray(jax.random.normal(key, (n,), dtype), np.float64)
  hvp(jnp.zeros(n, dtype)).block_until_ready()   # compile outside timing

  eig = min((run_eigsh(hvp, n, v0, tol, dtype) for _ in range(repeats)),
            key=lambda r: r["time_s"])

  # Ours with eigsh's product count; T_j (j < k) is the leading block of T_k.
  k = eig["hvps"]
  time_equal, compile_equal, est = _time_ours(problem, k, key, repeats)
  _, _, _, alphas, betas = jax.device_get(_curvature._lanczos(  # pylint: disable=protected-access
      loss_fn, k, params, args, key))
  alphas, betas = np.asarray(alphas), np.asarray(betas)
  floor = noise_floor * abs(lam_max)
  target_max = max(abs(eig["theta_max"] - lam_max), floor)
  target_min = max(abs(eig["theta_min"] - lam_min), floor)
  match, errors = None, {}
  for j in range(2, len(alphas) + 1):
    theta_min, theta_max = _prefix_extremes(alphas, betas, j)
    errors[j] = (_rel(theta_min, lam_min), _rel(theta_max, lam_max))
    if (match is None and abs(theta_max - lam_max) <= target_max
        and abs(theta_min - lam_min) <= target_min):
      match = j
  if match is not None:
    time_match, _, _ = _time_ours(problem, match, key, repeats)
  else:
    time_match = float("nan")

  return {
      "problem": problem["name"],
      "n": n,
      "dtype": str(dtype),
      "reference": problem["reference"],
      "lambda_min": lam_min,
      "lambda_max": lam_max,
      "eigsh_hvps": eig["hvps"],
      "eigsh_time_s": eig["time_s"],
      "eigsh_err_max": _rel(eig["theta_max"], lam_max),
      "eigsh_err_min": _rel(eig["theta_min"], lam_min),
      "ours_hvps_to_match": match,
      "hvp_ratio": (match / k) if match else None,
      "ours_err_max_at_match": errors[match][1] if match else None,
      "ours_err_min_at_match": errors[match][0] if match else None,
      "ours_time_to_match_s": time_match,
      "time_ratio": time_match / eig["time_s"],
      "ours_time_equal_hvps_s": time_equal,
      "time_ratio_equal_hvps": time_equal / eig["time_s"],
      "ours_compile_s": compile_equal,
      "ours_err_max_equal_hvps": _rel(est.max_ritz_value, lam_max),
      "ours_err_min_equal_hvps": _rel(est.min_ritz_value, lam_min),
      "safe_max_over_lambda_max": est.max_curvature / lam_max,
      "safe_min_over_lambda_min": est.min_curvature / lam_min,
      "safe_min_source": est.min_source,
      "safe_brackets": bool(est.max_curvature >= lam_max
                            and (lam_min <= 0
                                 or est.min_curvature <= lam_min)),
  }


_COLUMNS = [
    "problem", "dtype", "eigsh_hvps", "ours_hvps_to_match", "hvp_ratio",
    "eigsh_time_s", "ours_time_to_match_s", "time_ratio",
    "time_ratio_equal_hvps", "eigsh_err_max", "ours_err_max_at_match",
    "eigsh_err_min", "ours_err_min_at_match", "safe_max_over_lambda_max",
    "safe_brackets",
]


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
  parser = argparse.ArgumentParser(
      prog="python -m benchmarks.curvature",
      description=__doc__.split("\n\n", 1)[0])
  parser.add_argument("--quick", action="store_true",
                      help="small problems only (well under a minute)")
  parser.add_argument("--out", default="results/curvature",
                      help="output directory (curvature.json, curvature.md)")
  parser.add_argument("--sizes", type=int, nargs="*", default=None,
                      help="quadratic dimensions (default 1000 10000 100000; "
                           "quick: 1000 10000)")
  parser.add_argument("--dtype", choices=("float64", "float32"),
                      default="float64",
                      help="dtype of parameters and products, for both "
                           "methods (float64 enables jax_enable_x64)")
  parser.add_argument("--tol", type=float, default=None,
                      help="eigsh relative tolerance (default 1e-8 in "
                           "float64, 1e-4 in float32)")
  parser.add_argument("--repeats", type=int, default=None,
                      help="timed repeats, best kept (default 3; quick: 1)")
  parser.add_argument("--seed", type=int, default=0)
  args = parser.parse_args(argv)
  sizes = args.sizes or ([1000, 10000] if args.quick
                         else [1000, 10000, 100000])
  repeats = args.repeats or (1 if args.quick else 3)
  mlp_shape = (8, 16, 128) if args.quick else (16, 32, 512)
  if args.dtype == "float64":
    jax.config.update("jax_enable_x64", True)
  dtype = jnp.dtype(args.dtype)
  tol = args.tol or (1e-8 if args.dtype == "float64" else 1e-4)
  # Errors below this fraction of λ_max are rounding noise of the products.
  noise_floor = 10 * float(jnp.finfo(dtype).eps)

  problems = [functools.partial(quadratic_problem, n, args.seed, dtype)
              for n in sizes]
  problems.append(functools.partial(mlp_problem, *mlp_shape, args.seed, dtype))
  rows = []
  for make in problems:
    row = benchmark_problem(make(), tol=tol, repeats=repeats, seed=args.seed,
                            noise_floor=noise_floor)
    rows.append(row)
    print(f"{row['problem']}: eigsh {row['eigsh_hvps']} HVPs "
          f"{row['eigsh_time_s']:.3f}s | ours {row['ours_hvps_to_match']} HVPs "
          f"{row['ours_time_to_match_s']:.3f}s", flush=True)

  command = "python -m benchmarks.curvature" + (" --quick" if args.quick
                                                else "")
  if args.dtype != "float64":
    command += f" --dtype {args.dtype}"
  table = io_utils.markdown_table(rows, _COLUMNS)
  result = {
      "benchmark": "curvature",
      "command": command,
      "config": {"sizes": sizes, "dtype": args.dtype, "tol": tol,
                 "repeats": repeats, "seed": args.seed,
                 "mlp_inputs_hidden_samples": mlp_shape,
                 "noise_floor": noise_floor,
                 "num_reflectors": _NUM_REFLECTORS},
      "environment": io_utils.environment(),
      "rows": rows,
  }
  io_utils.write_json(f"{args.out}/curvature.json", result)
  io_utils.write_text(f"{args.out}/curvature.md",
                      f"`{command}`\n\n" + table)
  print(table)
  return result


if __name__ == "__main__":
  main()
