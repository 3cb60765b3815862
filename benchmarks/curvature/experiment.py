"""``estimate_curvature`` against scipy's eigsh on the same jitted HVP.

Ours runs its Lanczos loop in one compiled program; eigsh (ARPACK,
``which="BE"``, ``k=2``) makes a device round trip per product. Problems:
``quadratic_<n>``, ``½‖D^{1/2} R x‖²`` with ``R`` Householder reflections and
a known spectrum ``D``, and ``mlp_<n>``, a non-convex Flax NNX tanh MLP
(reference: dense ``eigvalsh``). A row gives eigsh's products ``k``, time and
errors; ours at ``k`` products, and at the fewest that match eigsh on both
ends (errors below ``10·ε·λ_max`` match; found by bisection, as the errors
shrink with the Krylov dimension); the safe bounds. Times: best of
``config.repeats``, compilation apart.
"""

from __future__ import annotations

from collections.abc import Callable
import functools
import os
import time
from typing import Any
import warnings

import jax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp
import numpy as np
import scipy.sparse.linalg

from benchmarks import config as config_lib
from benchmarks import files
from benchmarks import reporting
from benchmarks import resume
from benchmarks.curvature import configs
import fractal_optax

COLUMNS = [
  "problem",
  "dtype",
  "eigsh_hvps",
  "ours_hvps_to_match",
  "hvp_ratio",
  "eigsh_time_s",
  "ours_time_to_match_s",
  "time_ratio",
  "time_ratio_equal_hvps",
  "eigsh_err_max",
  "ours_err_max_at_match",
  "eigsh_err_min",
  "ours_err_min_at_match",
  "safe_max_over_lambda_max",
  "safe_brackets",
]


def quadratic_loss(
  x: jax.Array, diagonal: jax.Array, reflectors: jax.Array
) -> jax.Array:
  """½‖D^{1/2} R x‖², ``R`` = product of Householder reflections."""
  for u in reflectors:
    x = x - 2.0 * u * (u @ x)
  return 0.5 * jnp.sum(diagonal * x * x)


def quadratic_problem(n: int, config: configs.Config) -> dict[str, Any]:
  """Dimension ``n``, spectrum: bulk in [1, 10], 0.1 and 20 … 100 (κ = 1000)."""
  rng = np.random.default_rng(config.seed)
  top = np.array([20.0, 40.0, 70.0, 100.0])
  bulk = rng.uniform(1.0, 10.0, n - 1 - len(top))
  diagonal = rng.permutation(np.concatenate([[0.1], bulk, top]))
  u = rng.standard_normal((config.num_reflectors, n))
  u /= np.linalg.norm(u, axis=1, keepdims=True)
  return {
    "name": f"quadratic_{n}",
    "loss_fn": quadratic_loss,
    "params": jnp.zeros(n, config.dtype),
    "args": (jnp.asarray(diagonal, config.dtype), jnp.asarray(u, config.dtype)),
    "lambda_min": float(diagonal.min()),
    "lambda_max": float(diagonal.max()),
    "reference": "exact",
  }


def mlp_problem(config: configs.Config) -> dict[str, Any]:
  """Flax NNX tanh MLP, MSE on a synthetic teacher; dense-Hessian reference."""
  from flax import nnx  # pylint: disable=g-import-not-at-top

  inputs, hidden, dtype = config.mlp_inputs, config.mlp_hidden, config.dtype

  class MLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
      self.hidden1 = nnx.Linear(inputs, hidden, rngs=rngs)
      self.hidden2 = nnx.Linear(hidden, hidden, rngs=rngs)
      self.out = nnx.Linear(hidden, 1, rngs=rngs)

    def __call__(self, x):
      x = jnp.tanh(self.hidden1(x))
      x = jnp.tanh(self.hidden2(x))
      return self.out(x)[:, 0]

  rng = np.random.default_rng(config.seed)
  x = rng.standard_normal((config.mlp_samples, inputs))
  teacher = rng.standard_normal(inputs)
  y = np.sin(x @ teacher) + 0.1 * rng.standard_normal(config.mlp_samples)
  graphdef, state = nnx.split(MLP(nnx.Rngs(config.seed)))
  state = jax.tree_util.tree_map(lambda a: a.astype(dtype), state)

  def loss_fn(params, x, y):
    return jnp.mean((nnx.merge(graphdef, params)(x) - y) ** 2)

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


def _rel(estimate: float, truth: float) -> float:
  return abs(estimate - truth) / abs(truth)


def run_eigsh(
  hvp: Callable[[jax.Array], jax.Array],
  n: int,
  v0: np.ndarray,
  tol: float,
  dtype: Any,
) -> dict[str, Any]:
  """eigsh(which="BE", k=2) on the jitted HVP; counts the products."""
  count = [0]

  def matvec(v):
    count[0] += 1
    return np.asarray(hvp(jnp.asarray(np.ravel(v), dtype)), np.float64)

  operator = scipy.sparse.linalg.LinearOperator(
    (n, n), matvec=matvec, dtype=np.float64
  )
  start = time.perf_counter()
  values = np.sort(
    scipy.sparse.linalg.eigsh(
      operator, k=2, which="BE", tol=tol, v0=v0, return_eigenvectors=False
    )
  )
  return {
    "hvps": count[0],
    "time_s": time.perf_counter() - start,
    "theta_min": float(values[0]),
    "theta_max": float(values[-1]),
  }


def run_ours(
  problem: dict[str, Any], num_iterations: int, key: jax.Array, repeats: int = 0
) -> tuple[float, float, Any]:
  """(best time, compile time, estimate); ``repeats=0``: one call, nan time."""
  estimate = functools.partial(
    fractal_optax.estimate_curvature,
    problem["loss_fn"],
    problem["params"],
    *problem["args"],
    num_iterations=num_iterations,
    key=key,
    max_condition_number=1e6,
  )  # a floor, so non-convex losses do not raise
  times = []
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    for _ in range(repeats + 1):
      start = time.perf_counter()
      est = estimate()
      times.append(time.perf_counter() - start)
  best = min(times[1:], default=float("nan"))
  return best, max(times[0] - best, 0.0), est


def benchmark_problem(
  problem: dict[str, Any], config: configs.Config
) -> dict[str, Any]:
  """Runs eigsh and ours on one problem and returns its table row."""
  lam_min, lam_max = problem["lambda_min"], problem["lambda_max"]
  key = jax.random.key(config.seed)
  flat, unravel = ravel_pytree(problem["params"])
  n, dtype = int(flat.shape[0]), flat.dtype
  grad = jax.grad(lambda f: problem["loss_fn"](unravel(f), *problem["args"]))
  hvp = jax.jit(lambda v: jax.jvp(grad, (flat,), (v,))[1])
  v0 = np.asarray(jax.random.normal(key, (n,), dtype), np.float64)
  hvp(jnp.zeros(n, dtype)).block_until_ready()  # compile outside timing
  eig = min(
    (
      run_eigsh(hvp, n, v0, config.eigsh_tol, dtype)
      for _ in range(config.repeats)
    ),
    key=lambda r: r["time_s"],
  )

  k = eig["hvps"]
  time_equal, compile_equal, est = run_ours(problem, k, key, config.repeats)
  floor = 10 * float(jnp.finfo(dtype).eps) * abs(lam_max)
  target_max = max(abs(eig["theta_max"] - lam_max), floor)
  target_min = max(abs(eig["theta_min"] - lam_min), floor)

  def matched(j):  # The errors shrink with j: bisect for the fewest.
    e = run_ours(problem, j, key)[2]
    return (
      abs(e.max_ritz_value - lam_max) <= target_max
      and abs(e.min_ritz_value - lam_min) <= target_min
    )

  match, time_match, est_match = None, float("nan"), None
  if matched(k):
    lo, hi = 2, k
    while lo < hi:
      mid = (lo + hi) // 2
      lo, hi = (lo, mid) if matched(mid) else (mid + 1, hi)
    match = lo
    time_match, _, est_match = run_ours(problem, match, key, config.repeats)
  return {
    "problem": problem["name"],
    "n": n,
    "dtype": str(dtype),
    "reference": problem["reference"],
    "lambda_min": lam_min,
    "lambda_max": lam_max,
    "eigsh_hvps": k,
    "eigsh_time_s": eig["time_s"],
    "eigsh_err_max": _rel(eig["theta_max"], lam_max),
    "eigsh_err_min": _rel(eig["theta_min"], lam_min),
    "ours_hvps_to_match": match,
    "hvp_ratio": match / k if match else None,
    "ours_err_max_at_match": _rel(est_match.max_ritz_value, lam_max)
    if match
    else None,
    "ours_err_min_at_match": _rel(est_match.min_ritz_value, lam_min)
    if match
    else None,
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
    "safe_brackets": bool(
      est.max_curvature >= lam_max
      and (lam_min <= 0 or est.min_curvature <= lam_min)
    ),
  }


def run(
  config: configs.Config, workdir: str, *, command: str = ""
) -> dict[str, Any]:
  """Benchmarks every problem; writes and returns ``curvature.json``.

  ``curvature.md`` holds the table under ``command``, the command line. Each
  problem's row is a unit of ``benchmarks.resume.Store``: a killed run
  resumes at the first problem it had not finished.
  """
  store = resume.Store(workdir, config)
  rows = []
  with jax.enable_x64(config.dtype == "float64"):
    makers = {
      f"quadratic_n={n}": functools.partial(quadratic_problem, n, config)
      for n in config.sizes
    } | {"mlp": functools.partial(mlp_problem, config)}
    for unit, make in makers.items():
      row = store.compute(
        unit, lambda make=make: benchmark_problem(make(), config)
      )
      rows.append(row)
      if config.progress:
        print(
          f"{row['problem']}: eigsh {row['eigsh_hvps']} HVPs "
          f"{row['eigsh_time_s']:.3f}s | ours {row['ours_hvps_to_match']} "
          f"HVPs {row['ours_time_to_match_s']:.3f}s",
          flush=True,
        )
  result = {
    "benchmark": "curvature",
    "command": command,
    "config": config_lib.to_dict(config) | {"tol": config.eigsh_tol},
    "environment": files.environment(),
    "rows": rows,
  }
  table = reporting.markdown_table(rows, COLUMNS)
  files.write_json(os.path.join(workdir, "curvature.json"), result)
  files.write_text(
    os.path.join(workdir, "curvature.md"), f"`{command}`\n\n" + table
  )
  store.clear()
  print(table)
  return result
