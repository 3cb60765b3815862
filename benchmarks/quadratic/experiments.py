"""The four experiments of the quadratic benchmark and the targets they check.

1. :func:`orders`: the same Chebyshev steps in five orders (fractal,
   largest-first, smallest-first, random, and the PyTorch implementation's
   next-power-of-two-then-filter order) in float64, float32 and bfloat16:
   final error against ``chebyshev_error_bound``, largest intermediate
   error, inf/NaN, and the orders' ``stability_profile``.
2. :func:`acceleration`: iterations to ``‖x − x*‖/‖x_0 − x*‖ ≤ ε`` against κ
   for GD, heavy ball, Nesterov, the silver schedule and the fractal schedule
   (one cycle of the smallest sufficient ``T``, and short cycles repeated),
   plus :func:`timing`: wall time per iteration relative to constant-step
   ``optax.sgd`` and optimiser state bytes.
3. :func:`noise`: additive Gaussian gradient noise; final error per order,
   with the noise's predicted contribution from the suffix products.
4. :func:`negative_progress`: how often the fractal schedule increases the
   loss, by how much, and its final error against the bound.

:func:`targets` turns the results into the issue's pass/fail ratios. Every
function returns plain Python data (the JSON file holds all of it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

import fractal_optax
from benchmarks.quadratic import configs
from benchmarks.quadratic import optimizers
from benchmarks.quadratic import problems
from benchmarks.quadratic import simulation

ORDERS = ("fractal", "largest_first", "smallest_first", "random", "filtered")
SORTED_ORDERS = ("largest_first", "smallest_first")
UNIT_ROUNDOFF = {"float64": 2.0**-53, "float32": 2.0**-24,
                 "bfloat16": 2.0**-8}
Progress = Callable[[], None]


def _next_power_of_two(n: int) -> int:
  return 1 << max(0, (n - 1).bit_length())


def step_order(name: str, num_steps: int, seed: int) -> np.ndarray:
  """Indices into ``chebyshev_step_sizes`` (0 = largest step) for an order.

  Args:
    name: one of :data:`ORDERS`. ``filtered`` is the order of the PyTorch
      implementation: ``fractal_order`` of the next power of two ``P ≥ T``
      with the indices ``≥ T`` dropped (it equals ``fractal`` when ``T`` is a
      power of two). ``random`` is a permutation drawn from ``seed``.
    num_steps: ``T``.
    seed: seed of the random order.

  Returns:
    A permutation of ``range(T)``.

  Example:
    >>> step_order("filtered", 6, 0).tolist()
    [0, 3, 4, 1, 2, 5]
  """
  t = num_steps
  if name == "fractal":
    return np.asarray(fractal_optax.fractal_order(t))
  if name == "largest_first":
    return np.arange(t)
  if name == "smallest_first":
    return np.arange(t)[::-1].copy()
  if name == "random":
    return np.random.default_rng([seed, t]).permutation(t)
  if name == "filtered":
    full = np.asarray(fractal_optax.fractal_order(_next_power_of_two(t)))
    return full[full < t]
  raise ValueError(f"Unknown order, got {name=!r}; expected one of {ORDERS}.")


def chebyshev_steps(num_steps: int, kappa: float) -> np.ndarray:
  """The ``T`` Chebyshev steps on ``[1/κ, 1]``, largest first, in float64."""
  with jax.enable_x64(True):
    return np.asarray(fractal_optax.chebyshev_step_sizes(
        num_steps, np.float64(1.0 / kappa), np.float64(1.0)), np.float64)


def predicted_num_steps(kappa: float, tolerance: float) -> int:
  """Smallest ``T`` with ``chebyshev_error_bound(T, 1/κ, 1) ≤ ε``."""
  return fractal_optax.chebyshev_num_steps(1.0 / kappa, 1.0, tolerance)


def table_size(config: configs.Config) -> int:
  """One table length for every ``"table"`` run (one compile per dtype)."""
  longest = max(
      max(config.orders_num_steps), max(config.noise_num_steps),
      *(predicted_num_steps(k, config.tolerance) for k in config.accel_kappas),
      *(2**optimizers.silver_num_doublings(1.0 / k, 1.0)
        for k in config.accel_kappas))
  return _next_power_of_two(int(longest * 1.25))


def _finite_or_none(value: float) -> float | None:
  return float(value) if math.isfinite(value) else None


# ---------------------------------------------------------------------------
# 1. Orders and precision.
# ---------------------------------------------------------------------------


def orders_plan_size(config: configs.Config) -> int:
  return (len(config.orders_kappas) * len(config.orders_num_steps)
          * len(ORDERS) * len(config.orders_dtypes))


def orders(config: configs.Config, progress: Progress) -> dict[str, Any]:
  """Final and intermediate errors of every order, dtype, κ and ``T``.

  Returns:
    ``{"records": [...], "curves": {...}, "float32_floor": {...}}``: one
    record per (κ, T, order, dtype) with the final error ``final_error``
    (relative, None when inf/NaN), ``bound``, ``final_over_bound``,
    ``max_error`` (largest intermediate error, None when inf/NaN),
    ``first_nonfinite`` (step, or None) and the order's ``profile``
    (``stability_profile`` fields, for ``T ≤ profile_max_steps``);
    ``curves[dtype][order]``: the error after each step at
    (``figure_kappa``, ``figure_num_steps``).
  """
  with jax.enable_x64(True):
    return _orders(config, progress)


def _orders(config: configs.Config, progress: Progress) -> dict[str, Any]:
  size = table_size(config)
  records, curves = [], {}
  problems_by_key = {}
  for dtype in config.orders_dtypes:
    for kappa in config.orders_kappas:
      problems_by_key[dtype, kappa] = problems.make_quadratic(
          config.orders_dim, kappa, dense=True, dtype=dtype,
          seed=config.seed)[0]
  for kappa in config.orders_kappas:
    m = 1.0 / kappa
    for t in config.orders_num_steps:
      steps = chebyshev_steps(t, kappa)
      bound = fractal_optax.chebyshev_error_bound(t, m, 1.0)
      for order_name in ORDERS:
        ordered = steps[step_order(order_name, t, config.seed)]
        profile = None
        if t <= config.profile_max_steps:
          profile = fractal_optax.stability_profile(
              ordered, m, 1.0, oversample=config.profile_oversample)._asdict()
        for dtype in config.orders_dtypes:
          hparams = optimizers.table_hparams(ordered, size, dtype,
                                             repeat=False)
          traj = simulation.run(optimizers.TABLE, hparams,
                                problems_by_key[dtype, kappa], num_steps=t,
                                chunk_size=config.chunk_size)
          final = traj.final
          finite = math.isfinite(final)
          records.append({
              "kappa": kappa, "num_steps": t, "order": order_name,
              "dtype": dtype, "final_error": _finite_or_none(final),
              "bound": bound,
              "final_over_bound": (final / bound if finite and bound > 0
                                   else None),
              "max_error": (_finite_or_none(float(np.max(traj.errors)))
                            if traj.first_nonfinite is None else None),
              "first_nonfinite": traj.first_nonfinite,
              "finite": traj.first_nonfinite is None,
              "profile": profile,
          })
          if kappa == config.figure_kappa and t == config.figure_num_steps:
            curves.setdefault(dtype, {})[order_name] = [
                _finite_or_none(v) for v in traj.errors]
          progress()
  floor = {dtype: {str(k): k * UNIT_ROUNDOFF[dtype]
                   for k in config.orders_kappas}
           for dtype in config.orders_dtypes}
  return {"dim": config.orders_dim, "records": records, "curves": curves,
          "curve_kappa": config.figure_kappa,
          "curve_num_steps": config.figure_num_steps,
          "precision_floor": floor, "horizons": horizons(records)}


def horizons(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
  """Per (κ, dtype, order): up to which ``T`` the runs make progress.

  ``horizon`` is the largest ``T`` of the grid such that every run with
  ``T' ≤ T`` ends finite with error below 1 (better than ``x_0``); None when
  the smallest ``T`` already fails. ``all_passed``: no ``T`` of the grid
  fails.
  """
  groups = {}
  for r in records:
    groups.setdefault((r["kappa"], r["dtype"], r["order"]), []).append(r)
  out = []
  for (kappa, dtype, order), recs in groups.items():
    horizon, failed_at = None, None
    for r in sorted(recs, key=lambda r: r["num_steps"]):
      if r["final_error"] is None or r["final_error"] >= 1.0:
        failed_at = r["num_steps"]
        break
      horizon = r["num_steps"]
    out.append({"kappa": kappa, "dtype": dtype, "order": order,
                "horizon": horizon, "first_failure": failed_at,
                "all_passed": failed_at is None})
  return out


# ---------------------------------------------------------------------------
# 2. Acceleration, wall time and state.
# ---------------------------------------------------------------------------

ACCEL_METHODS = ("gd", "gd_1/M", "heavy_ball", "nesterov", "silver",
                 "fractal")


def acceleration_plan_size(config: configs.Config) -> int:
  return len(config.accel_kappas) * (len(ACCEL_METHODS)
                                     + len(config.cycle_lengths))


def _iterations_to(method, hparams, problem, config) -> int | None:
  traj = simulation.run(method, hparams, problem,
                        num_steps=config.max_iterations,
                        chunk_size=config.chunk_size,
                        stop_below=config.tolerance)
  return traj.first_below


def smallest_sufficient(final_error: Callable[[int], float], tolerance: float,
                        *, start: int, limit: int) -> int | None:
  """Smallest ``T ≤ limit`` with ``final_error(T) ≤ tolerance``, by bisection.

  Assumes ``final_error`` decreases with ``T`` (true of the Chebyshev bound;
  of a given problem's error up to small wiggles). Starts from ``start``
  (the bound's prediction), grows it by 5% steps while it does not suffice,
  then bisects below it.

  Example:
    >>> smallest_sufficient(lambda t: 0.5**t, 1e-3, start=4, limit=64)
    10
  """
  hi = start
  while final_error(hi) > tolerance:
    if hi >= limit:
      return None
    hi = min(limit, math.ceil(hi * 1.05))
  lo = 0  # No step at all leaves the error at 1 > tolerance.
  while hi - lo > 1:
    mid = (lo + hi) // 2
    lo, hi = (lo, mid) if final_error(mid) <= tolerance else (mid, hi)
  return hi


def _one_cycle_final(steps_fn, problem, size, t, config) -> float:
  hparams = optimizers.table_hparams(steps_fn(t), size, "float64",
                                     repeat=False)
  return simulation.run(optimizers.TABLE, hparams, problem, num_steps=t,
                        chunk_size=config.chunk_size).final


def acceleration(config: configs.Config, progress: Progress
                 ) -> dict[str, Any]:
  """Iterations to ε of every method at every κ (float64, diagonal problems).

  The fractal schedule as one cycle: ``measured`` is the smallest ``T`` whose
  single fractal cycle ends with error ≤ ε (bisection over ``T``, each a
  fresh schedule), ``predicted`` the smallest ``T`` with
  ``chebyshev_error_bound ≤ ε``; the cycle at ``measured`` is re-run through
  the real ``fractal_optax.fractal_sgd`` (``fractal_sgd_final_error``).
  Every other method counts the first iteration whose error is ≤ ε. Short
  fractal cycles (``fractal_T8`` …) run ``fractal_sgd(T, cycle=True)``.

  Returns:
    ``{"records": [{"kappa", "method", "iterations", ...}], ...}``.
  """
  size = table_size(config)
  records = []
  eps = config.tolerance
  with jax.enable_x64(True):
    for kappa in config.accel_kappas:
      problem, spec = problems.make_quadratic(
          config.accel_dim, kappa, dense=False, dtype="float64",
          seed=config.seed)
      m, big_m = spec.min_curvature, spec.max_curvature

      def add(method_name, iterations, **extra):
        records.append({"kappa": kappa, "method": method_name,
                        "iterations": iterations, **extra})
        progress()

      for name, lr in (("gd", 2.0 / (big_m + m)), ("gd_1/M", 1.0 / big_m)):
        hp = optimizers.table_hparams(np.array([lr]), size, "float64",
                                      repeat=True)
        add(name, _iterations_to(optimizers.TABLE, hp, problem, config),
            learning_rate=lr)
      for name, method, constants in (
          ("heavy_ball", optimizers.HEAVY_BALL,
           optimizers.heavy_ball_constants(m, big_m)),
          ("nesterov", optimizers.NESTEROV,
           optimizers.nesterov_constants(m, big_m))):
        hp = optimizers.momentum_hparams(constants, "float64")
        add(name, _iterations_to(method, hp, problem, config),
            learning_rate=constants[0], momentum=constants[1])
      k = optimizers.silver_num_doublings(m, big_m)
      hp = optimizers.table_hparams(
          optimizers.silver_step_sizes(m, big_m, k), size, "float64",
          repeat=True)
      add("silver", _iterations_to(optimizers.TABLE, hp, problem, config),
          period=2**k)

      predicted = predicted_num_steps(kappa, eps)
      steps_fn = lambda t, kappa=kappa: chebyshev_steps(t, kappa)[
          fractal_optax.fractal_order(t)]
      final_at = lambda t: _one_cycle_final(steps_fn, problem, size, t,
                                            config)
      measured = smallest_sufficient(final_at, eps, start=predicted,
                                     limit=size)
      confirm = None
      if measured is not None:
        traj = simulation.run(
            optimizers.Method("fractal_sgd", num_steps=measured, cycle=True),
            optimizers.curvature_hparams(m, big_m, "float64"), problem,
            num_steps=measured, chunk_size=config.chunk_size)
        confirm = traj.final
      add("fractal", measured, predicted=predicted,
          ratio_to_predicted=(measured / predicted if measured else None),
          final_error=final_at(measured) if measured else None,
          fractal_sgd_final_error=confirm)

      for t in config.cycle_lengths:
        traj = simulation.run(
            optimizers.Method("fractal_sgd", num_steps=t, cycle=True),
            optimizers.curvature_hparams(m, big_m, "float64"), problem,
            num_steps=config.max_iterations, chunk_size=config.chunk_size,
            stop_below=eps)
        add(f"fractal_T{t}", traj.first_below, cycle_length=t,
            cycle_bound=fractal_optax.chebyshev_error_bound(t, m, big_m))
  return {"dim": config.accel_dim, "tolerance": eps, "records": records}


def timing_plan_size(config: configs.Config) -> int:
  return len(config.timing_dims) * config.timing_repeats * 5


def timing(config: configs.Config, progress: Progress) -> dict[str, Any]:
  """Wall time per iteration and state bytes of each optimiser (float32).

  Measured on diagonal float32 problems at ``κ = target_kappa`` (x64 off, as
  a user runs them), with ``fractal_sgd``'s cycle length the predicted one
  for ``tolerance``. ``state_bytes`` is measured at ``d`` and ``2d``:
  per-parameter state grows with ``d``.
  """
  kappa = config.target_kappa
  m = 1.0 / kappa
  t = predicted_num_steps(kappa, config.tolerance)
  out = {"kappa": kappa, "fractal_num_steps": t, "problems": []}
  opts = optimizers.reference_optimizers(m, 1.0, t)
  for dim, num_steps in zip(config.timing_dims, config.timing_steps):
    problem, _ = problems.make_quadratic(dim, kappa, dense=False,
                                         dtype="float32", seed=config.seed)
    result = simulation.time_per_iteration(
        opts, problem, num_steps=num_steps, repeats=config.timing_repeats,
        progress=progress)
    reference = result["sgd"]
    for name, r in result.items():
      r["relative_to_sgd"] = r["seconds_per_step"] / reference[
          "seconds_per_step"]
      r["cpu_relative_to_sgd"] = r["cpu_seconds_per_step"] / reference[
          "cpu_seconds_per_step"]
      doubled = optimizers.state_bytes(
          opts[name].init(np.zeros(2 * dim, np.float32)))
      r["state_bytes_at_2d"] = doubled
      r["per_parameter_state"] = doubled > r["state_bytes"]
    out["problems"].append({"dim": dim, "num_steps": num_steps,
                            "repeats": config.timing_repeats,
                            "optimizers": result})
  return out


# ---------------------------------------------------------------------------
# 3. Gradient noise.
# ---------------------------------------------------------------------------


def _noise_repeats(config: configs.Config, sigma: float) -> int:
  return config.noise_repeats if sigma > 0 else 1


def noise_plan_size(config: configs.Config) -> int:
  return (len(config.noise_num_steps) * len(ORDERS)
          * sum(_noise_repeats(config, s) for s in config.noise_scales))


def noise(config: configs.Config, progress: Progress) -> dict[str, Any]:
  r"""Final error per order under additive Gaussian gradient noise.

  The gradient is ``Ax − b + s·ξ_t`` with ``ξ_t ~ N(0, I)`` and ``s =
  σ‖∇f(x_0)‖/√d``; every order sees the same noise draws (seeds
  ``0 … repeats−1``; σ = 0 is the noiseless run, which shows the rounding
  errors of the order alone). The noise reaches the end of the run through the
  suffix products, so its expected contribution to the final error is

  .. math::

    \frac{s}{\|x_0 - x^*\|}\Big(\sum_t \eta_t^2 \sum_i
    \prod_{u > t} (1 - \eta_u\lambda_i)^2\Big)^{1/2}

  (``predicted_noise_error``, exact in exact arithmetic).
  """
  kappa = config.noise_kappa
  m = 1.0 / kappa
  size = table_size(config)
  records = []
  with jax.enable_x64(True):
    problem, spec = problems.make_quadratic(
        config.orders_dim, kappa, dense=True, dtype="float64",
        seed=config.seed)
    eigenvalues = problems.spectrum(config.orders_dim, m, 1.0)
    grad_norm = float(np.linalg.norm(np.asarray(problem.rhs)))
    for t in config.noise_num_steps:
      steps = chebyshev_steps(t, kappa)
      for order_name in ORDERS:
        ordered = steps[step_order(order_name, t, config.seed)]
        # suffix[t, i] = ∏_{u > t} (1 − η_u λ_i).
        factors = 1.0 - np.outer(ordered, eigenvalues)
        suffix = np.ones_like(factors)
        suffix[:-1] = np.cumprod(factors[::-1], axis=0)[::-1][1:]
        gain = math.sqrt(float(np.sum(ordered[:, None]**2 * suffix**2)))
        hparams = optimizers.table_hparams(ordered, size, "float64",
                                           repeat=False)
        for sigma in config.noise_scales:
          std = sigma * grad_norm / math.sqrt(config.orders_dim)
          finals = []
          for r in range(_noise_repeats(config, sigma)):
            finals.append(simulation.run(
                optimizers.TABLE, hparams, problem, num_steps=t,
                chunk_size=config.chunk_size, noise_std=std,
                seed=config.seed * 1000 + r).final)
            progress()
          records.append({
              "num_steps": t, "order": order_name, "sigma": sigma,
              "noise_std": std,
              "final_error_median": _finite_or_none(float(np.median(finals))),
              "final_errors": [_finite_or_none(f) for f in finals],
              "predicted_noise_error": std * gain,
              "bound": fractal_optax.chebyshev_error_bound(t, m, 1.0),
          })
  return {"kappa": kappa, "dim": config.orders_dim, "records": records}


# ---------------------------------------------------------------------------
# 4. Negative progress.
# ---------------------------------------------------------------------------


def negative_plan_size(config: configs.Config) -> int:
  return len(config.negative_kappas) * len(config.negative_num_steps)


def negative_progress(config: configs.Config, progress: Progress
                      ) -> dict[str, Any]:
  """How the fractal schedule's loss goes up and down within one cycle.

  One cycle of ``fractal_optax.fractal_sgd(T, m, M)`` on the dense float64
  problem: the fraction of steps with ``f(x_{t+1}) > f(x_t)``, the largest
  single-step ratio ``f(x_{t+1})/f(x_t)``, the largest loss along the way
  relative to ``f(x_0)``, and the final error against the bound (or the
  float64 floor ``κ·u₆₄`` when the bound is below it).
  """
  records = []
  with jax.enable_x64(True):
    for kappa in config.negative_kappas:
      problem, spec = problems.make_quadratic(
          config.orders_dim, kappa, dense=True, dtype="float64",
          seed=config.seed)
      m = spec.min_curvature
      for t in config.negative_num_steps:
        traj = simulation.run(
            optimizers.Method("fractal_sgd", num_steps=t, cycle=True),
            optimizers.curvature_hparams(m, 1.0, "float64"), problem,
            num_steps=t, chunk_size=config.chunk_size, track_loss=True)
        loss = traj.losses
        ratio = loss[1:] / loss[:-1]
        bound = fractal_optax.chebyshev_error_bound(t, m, 1.0)
        records.append({
            "kappa": kappa, "num_steps": t,
            "fraction_increasing": float(np.mean(ratio > 1.0)),
            "num_increasing": int(np.sum(ratio > 1.0)),
            "max_increase_factor": float(np.max(ratio)),
            "max_loss_over_initial": float(np.max(loss) / loss[0]),
            "final_error": traj.final, "bound": bound,
            "final_over_bound": traj.final / bound,
            "float64_floor": kappa * UNIT_ROUNDOFF["float64"],
            "within_bound_or_floor": traj.final <= max(
                bound, kappa * UNIT_ROUNDOFF["float64"]),
        })
        progress()
  return {"dim": config.orders_dim, "records": records}


# ---------------------------------------------------------------------------
# The schedule itself (for the figure).
# ---------------------------------------------------------------------------


def schedule_examples(config: configs.Config) -> list[dict[str, Any]]:
  """The fractal schedule at ``figure_kappa`` for two cycle lengths."""
  out = []
  for t in (64, config.figure_num_steps):
    steps = chebyshev_steps(t, config.figure_kappa)
    out.append({"kappa": config.figure_kappa, "num_steps": t,
                "step_sizes": steps[fractal_optax.fractal_order(t)].tolist()})
  return out


# ---------------------------------------------------------------------------
# Targets.
# ---------------------------------------------------------------------------


def _target(name, description, measured, threshold, passed, **details):
  return {"name": name, "description": description, "measured": measured,
          "threshold": threshold, "passed": bool(passed), **details}


def targets(results: dict[str, Any], config: configs.Config
            ) -> list[dict[str, Any]]:
  """The issue's targets, each a ratio from this run with pass/fail."""
  out = []
  accel = results["acceleration"]["records"]
  by = {(r["kappa"], r["method"]): r["iterations"] for r in accel}
  fractal = [r for r in accel if r["method"] == "fractal"]

  ratios = {str(r["kappa"]): r["ratio_to_predicted"] for r in fractal}
  valid = [v for v in ratios.values() if v is not None]
  worst = max(valid, key=lambda v: abs(v - 1.0)) if valid else None
  out.append(_target(
      "fractal_iterations_vs_bound",
      "fractal iterations-to-ε (one cycle, smallest sufficient T) / count "
      "predicted by chebyshev_error_bound, at every κ; within 5%",
      worst, "[0.95, 1.05]",
      len(valid) == len(ratios) and all(abs(v - 1) <= 0.05 for v in valid),
      per_kappa=ratios))

  k = config.target_kappa
  gd, fr, hb = by.get((k, "gd")), by.get((k, "fractal")), by.get(
      (k, "heavy_ball"))
  speedup = gd / fr if gd and fr else None
  out.append(_target(
      "fractal_vs_gd", f"GD(2/(M+m)) iterations / fractal iterations at "
      f"κ={k:g}", speedup, ">= 50", speedup is not None and speedup >= 50,
      gd_iterations=gd, fractal_iterations=fr))

  timing = results["timing"]["problems"]
  fractal_state = timing[0]["optimizers"]["fractal"]
  hb_ratio = fr / hb if fr and hb else None
  out.append(_target(
      "fractal_vs_heavy_ball", f"fractal iterations / heavy-ball iterations "
      f"at κ={k:g}, with no per-parameter optimiser state", hb_ratio,
      "<= 1.2", hb_ratio is not None and hb_ratio <= 1.2
      and not fractal_state["per_parameter_state"],
      heavy_ball_iterations=hb, fractal_iterations=fr,
      fractal_state_bytes=fractal_state["state_bytes"],
      heavy_ball_state_bytes=timing[0]["optimizers"]["heavy_ball"][
          "state_bytes"],
      ratio_per_kappa={str(kk): (by.get((kk, "fractal")) / by[kk, "heavy_ball"]
                                 if by.get((kk, "fractal"))
                                 and by.get((kk, "heavy_ball")) else None)
                       for kk in config.accel_kappas}))

  out.extend(_float32_targets(results["orders"], config))

  rel = timing[0]["optimizers"]["fractal"]["relative_to_sgd"]
  out.append(_target(
      "wall_time_vs_sgd", "fractal_sgd wall time per iteration / "
      f"optax.sgd(constant), float32, d={timing[0]['dim']}", rel, "<= 1.05",
      rel <= 1.05,
      per_problem={str(p["dim"]): p["optimizers"]["fractal"][
          "relative_to_sgd"] for p in timing},
      cpu_time_ratio=timing[0]["optimizers"]["fractal"][
          "cpu_relative_to_sgd"]))
  return out


def _float32_targets(orders_result: dict[str, Any], config: configs.Config
                     ) -> list[dict[str, Any]]:
  """float32 against float64 at ``figure_kappa``, and the sorted orders."""
  kappa = config.figure_kappa
  recs = {(r["num_steps"], r["order"], r["dtype"]): r
          for r in orders_result["records"] if r["kappa"] == kappa}
  if not {"float32", "float64"} <= set(config.orders_dtypes) or not recs:
    return []
  floor = kappa * UNIT_ROUNDOFF["float32"]
  per_t, deviations, floor_ratios = {}, [], []
  passed = True
  for t in sorted({key[0] for key in recs}):
    e32 = recs[t, "fractal", "float32"]["final_error"]
    e64 = recs[t, "fractal", "float64"]["final_error"]
    ok = False
    dev = None
    if e32 is not None and e64 is not None:
      dev = abs(e32 / e64 - 1.0)
      at_floor = e32 <= floor
      ok = dev <= 0.01 or at_floor
      (floor_ratios if e64 < floor else deviations).append(
          e32 / floor if e64 < floor else dev)
    passed &= ok
    per_t[str(t)] = {"float32": e32, "float64": e64,
                     "relative_deviation": dev, "passed": ok}
  out = [_target(
      "float32_matches_float64",
      f"fractal final error in float32 vs float64 at κ={kappa:g}, every T "
      f"in the grid: |e32/e64 − 1| ≤ 1% or e32 ≤ the float32 floor κ·u32 = "
      f"{floor:.3g}", max(deviations) if deviations else None,
      "<= 0.01 (or at the floor)", passed,
      max_error_over_floor_below_floor=(max(floor_ratios) if floor_ratios
                                        else None),
      float32_floor=floor, per_num_steps=per_t)]
  first_bad = {}
  for order in SORTED_ORDERS:
    bad = [t for (t, o, d), r in recs.items()
           if o == order and d == "float32" and not r["finite"]]
    first_bad[order] = min(bad) if bad else None
  fractal_finite = all(r["finite"] for (t, o, d), r in recs.items()
                       if o == "fractal" and d == "float32")
  worst = (max(first_bad.values()) if all(first_bad.values()) else None)
  out.append(_target(
      "sorted_orders_nonfinite_float32",
      f"largest T at which a sorted order first ends in inf/NaN in float32 "
      f"at κ={kappa:g} / 256 (both by T=256), while fractal stays finite",
      worst / 256 if worst else None, "<= 1",
      worst is not None and worst <= 256 and fractal_finite,
      first_nonfinite_num_steps=first_bad, fractal_finite=fractal_finite))
  return out
