"""The quadratic benchmark: five experiments, the targets, one entry point.

:func:`run` (``run(config, workdir)``) runs six resumable parts, each a unit
of ``benchmarks.resume.Store``, then writes the report:

1. :func:`orders`: the same Chebyshev steps in five orders (fractal,
   largest-first, smallest-first, random, and the PyTorch implementation's
   next-power-of-two-then-filter order) in float64, float32 and bfloat16:
   final error against ``chebyshev_error_bound``, largest intermediate
   error, inf/NaN, and the orders' ``stability_profile``.
2. :func:`acceleration`: iterations to ``‖x − x*‖/‖x_0 − x*‖ ≤ ε`` against κ
   for the baselines (``benchmarks.baselines``: GD, heavy ball, Nesterov,
   silver) and the fractal schedule (one cycle of the smallest sufficient
   ``T``, and short cycles repeated), plus :func:`timing`: wall time per
   iteration relative to constant-step ``optax.sgd`` and state bytes.
3. :func:`noise`: additive Gaussian gradient noise; final error per order,
   with the noise's predicted contribution from the suffix products.
4. :func:`negative_progress`: how often the fractal schedule increases the
   loss, by how much, and its final error against the bound.
5. :func:`adaptive`: ``adaptive_fractal_sgd`` with ``M`` unknown (guesses
   100× too low and too high) against the oracle ``fractal_sgd`` that knows
   ``[m, M]``, in float32: gradient evaluations (an HVP counts as 2) and wall
   time to ε.

:func:`targets` turns the results into the issue's pass/fail ratios.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import tqdm

import fractal_optax
from benchmarks import baselines
from benchmarks import config as config_lib
from benchmarks import files
from benchmarks import resume
from benchmarks.quadratic import configs
from benchmarks.quadratic import problems
from benchmarks.quadratic import report
from benchmarks.quadratic import simulation

ORDERS = ("fractal", "largest_first", "smallest_first", "random", "filtered")
SORTED_ORDERS = ("largest_first", "smallest_first")
ACCEL_METHODS = ("gd", "gd_1/M", "heavy_ball", "nesterov", "silver",
                 "fractal")
UNIT_ROUNDOFF = {"float64": 2.0**-53, "float32": 2.0**-24,
                 "bfloat16": 2.0**-8}
Progress = Callable[[], None]
_quiet = lambda: None


def step_order(name: str, num_steps: int, seed: int) -> np.ndarray:
  """Indices into ``chebyshev_step_sizes`` (0 = largest step) for an order.

  ``filtered`` is ``baselines.filtered_power_of_two_order``; ``random`` a
  permutation drawn from ``seed``.

  Example:
    >>> step_order("smallest_first", 4, 0).tolist()
    [3, 2, 1, 0]
  """
  t = num_steps
  orders = {
      "fractal": lambda: np.asarray(fractal_optax.fractal_order(t)),
      "largest_first": lambda: np.arange(t),
      "smallest_first": lambda: np.arange(t)[::-1].copy(),
      "random": lambda: np.random.default_rng([seed, t]).permutation(t),
      "filtered": lambda: baselines.filtered_power_of_two_order(t)}
  if name not in orders:
    raise ValueError(f"Unknown order, got {name=!r}; expected one of {ORDERS}.")
  return orders[name]()


def chebyshev_steps(num_steps: int, kappa: float) -> np.ndarray:
  """The ``T`` Chebyshev steps on ``[1/κ, 1]``, largest first, in float64."""
  with jax.enable_x64(True):
    return np.asarray(fractal_optax.chebyshev_step_sizes(
        num_steps, np.float64(1.0 / kappa), np.float64(1.0)), np.float64)


def predicted_num_steps(kappa: float, tolerance: float) -> int:
  """Smallest ``T`` with ``chebyshev_error_bound(T, 1/κ, 1) ≤ ε``."""
  return fractal_optax.chebyshev_num_steps(1.0 / kappa, 1.0, tolerance)


def table_size(config: configs.Config) -> int:
  """One length for every step table (one compile per dtype)."""
  longest = max(
      max(config.orders_num_steps), max(config.noise_num_steps),
      *(predicted_num_steps(k, config.tolerance) for k in config.accel_kappas))
  return 1 << (int(longest * 1.25) - 1).bit_length()


def _table(steps: np.ndarray, size: int) -> np.ndarray:
  """``steps`` padded with zeros to ``size`` (for ``baselines.steps``)."""
  if steps.size > size:
    raise ValueError(f"{steps.size} steps do not fit a table of {size=}.")
  return np.concatenate([steps, np.zeros(size - steps.size)])


def _finite_or_none(value: float) -> float | None:
  return float(value) if math.isfinite(value) else None


# ---------------------------------------------------------------------------
# 1. Orders and precision.
# ---------------------------------------------------------------------------


def orders(config: configs.Config, progress: Progress = _quiet
           ) -> dict[str, Any]:
  """Final and intermediate errors of every order, dtype, κ and ``T``.

  Returns:
    One record per (κ, T, order, dtype) with ``final_error`` (relative, None
    when inf/NaN), ``bound``, ``final_over_bound``, ``max_error`` (largest
    intermediate error, None when inf/NaN), ``first_nonfinite`` (step, or
    None) and the order's ``profile`` (``stability_profile`` fields, for
    ``T ≤ profile_max_steps``); ``curves[dtype][order]``: the error after
    each step at (``figure_kappa``, ``figure_num_steps``).
  """
  size = table_size(config)
  records, curves = [], {}
  with jax.enable_x64(True):
    quadratics = {(dtype, kappa): problems.make_quadratic(
        config.orders_dim, kappa, dense=True, dtype=dtype,
        seed=config.seed)[0]
                  for dtype in config.orders_dtypes
                  for kappa in config.orders_kappas}
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
                ordered, m, 1.0,
                oversample=config.profile_oversample)._asdict()
          for dtype in config.orders_dtypes:
            traj = simulation.run(baselines.steps, (_table(ordered, size),),
                                  quadratics[dtype, kappa], num_steps=t,
                                  chunk_size=config.chunk_size)
            final, finite = traj.final, traj.first_nonfinite is None
            records.append({
                "kappa": kappa, "num_steps": t, "order": order_name,
                "dtype": dtype, "final_error": _finite_or_none(final),
                "bound": bound,
                "final_over_bound": (final / bound if math.isfinite(final)
                                     and bound > 0 else None),
                "max_error": (_finite_or_none(float(np.max(traj.errors)))
                              if finite else None),
                "first_nonfinite": traj.first_nonfinite, "finite": finite,
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


def acceleration(config: configs.Config, progress: Progress = _quiet
                 ) -> dict[str, Any]:
  """Iterations to ε of every method at every κ (float64, diagonal problems).

  The fractal schedule as one cycle: ``measured`` is the smallest ``T`` whose
  single fractal cycle ends with error ≤ ε (bisection over ``T``, each a
  fresh schedule), ``predicted`` the smallest ``T`` with
  ``chebyshev_error_bound ≤ ε``; the cycle at ``measured`` is re-run through
  the real ``fractal_optax.fractal_sgd`` (``fractal_sgd_final_error``).
  Every other method counts the first iteration whose error is ≤ ε. Short
  fractal cycles (``fractal_T8`` …) run ``fractal_sgd(T, cycle=True)``.
  """
  size, eps, records = table_size(config), config.tolerance, []
  run = lambda builder, args, problem, num_steps, **kw: simulation.run(
      builder, args, problem, num_steps=num_steps,
      chunk_size=config.chunk_size, **kw)
  with jax.enable_x64(True):
    for kappa in config.accel_kappas:
      problem, spec = problems.make_quadratic(
          config.accel_dim, kappa, dense=False, dtype="float64",
          seed=config.seed)
      curvatures = (spec.min_curvature, spec.max_curvature)
      m, big_m = curvatures

      def add(method_name, iterations, **extra):
        records.append({"kappa": kappa, "method": method_name,
                        "iterations": iterations, **extra})
        progress()

      def iterations_to_eps(builder, args=curvatures):
        return run(builder, args, problem, config.max_iterations,
                   stop_below=eps).first_below

      add("gd", iterations_to_eps(baselines.constant),
          learning_rate=2.0 / (big_m + m))
      add("gd_1/M", iterations_to_eps(baselines.gd), learning_rate=1 / big_m)
      for name, constants in (
          ("heavy_ball", baselines.heavy_ball_constants(m, big_m)),
          ("nesterov", baselines.nesterov_constants(m, big_m))):
        add(name, iterations_to_eps(baselines.BASELINES[name]),
            learning_rate=constants[0], momentum=constants[1])
      add("silver", iterations_to_eps(baselines.silver),
          period=2**baselines.silver_num_doublings(m, big_m))

      predicted = predicted_num_steps(kappa, eps)
      final_at = lambda t, kappa=kappa, problem=problem: run(
          baselines.steps, (_table(chebyshev_steps(t, kappa)[
              fractal_optax.fractal_order(t)], size),), problem, t).final
      measured = smallest_sufficient(final_at, eps, start=predicted,
                                     limit=size)
      confirm = (run(simulation.fractal_builder(measured), curvatures,
                     problem, measured).final if measured else None)
      add("fractal", measured, predicted=predicted,
          ratio_to_predicted=(measured / predicted if measured else None),
          final_error=final_at(measured) if measured else None,
          fractal_sgd_final_error=confirm)
      for t in config.cycle_lengths:
        add(f"fractal_T{t}",
            iterations_to_eps(simulation.fractal_builder(t)), cycle_length=t,
            cycle_bound=fractal_optax.chebyshev_error_bound(t, m, big_m))
  return {"dim": config.accel_dim, "tolerance": eps, "records": records}


def timing(config: configs.Config, progress: Progress = _quiet
           ) -> dict[str, Any]:
  """Wall time per iteration and state bytes of each optimiser (float32).

  Measured on diagonal float32 problems at ``κ = target_kappa`` (x64 off, as
  a user runs them), with ``fractal_sgd``'s cycle length the predicted one
  for ``tolerance``. ``state_bytes`` is measured at ``d`` and ``2d``:
  per-parameter state grows with ``d``. ``sgd`` is ``baselines.constant``.
  """
  kappa = config.target_kappa
  m, t = 1.0 / kappa, predicted_num_steps(kappa, config.tolerance)
  out = {"kappa": kappa, "fractal_num_steps": t, "problems": []}
  opts = {"sgd": baselines.constant(m, 1.0),
          **{name: baselines.BASELINES[name](m, 1.0)
             for name in ("heavy_ball", "nesterov", "silver")},
          "fractal": baselines.fractal(t, m, 1.0)}
  for dim, num_steps in zip(config.timing_dims, config.timing_steps):
    problem, _ = problems.make_quadratic(dim, kappa, dense=False,
                                         dtype="float32", seed=config.seed)
    result = simulation.time_per_iteration(
        opts, problem, num_steps=num_steps, repeats=config.timing_repeats,
        progress=progress)
    reference = result["sgd"]
    for name, r in result.items():
      for key, ref in (("relative_to_sgd", "seconds_per_step"),
                       ("cpu_relative_to_sgd", "cpu_seconds_per_step")):
        r[key] = r[ref] / reference[ref]
      doubled = simulation.state_bytes(
          opts[name].init(np.zeros(2 * dim, np.float32)))
      r["state_bytes_at_2d"] = doubled
      r["per_parameter_state"] = doubled > r["state_bytes"]
    out["problems"].append({"dim": dim, "num_steps": num_steps,
                            "repeats": config.timing_repeats,
                            "optimizers": result})
  return out


# ---------------------------------------------------------------------------
# 3. Gradient noise and 4. negative progress.
# ---------------------------------------------------------------------------


def noise(config: configs.Config, progress: Progress = _quiet
          ) -> dict[str, Any]:
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
  kappa, dim = config.noise_kappa, config.orders_dim
  m, size, records = 1.0 / kappa, table_size(config), []
  with jax.enable_x64(True):
    problem, _ = problems.make_quadratic(dim, kappa, dense=True,
                                         dtype="float64", seed=config.seed)
    eigenvalues = problems.spectrum(dim, m, 1.0)
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
        for sigma in config.noise_scales:
          std = sigma * grad_norm / math.sqrt(dim)
          finals = []
          for r in range(config.noise_repeats if sigma > 0 else 1):
            finals.append(simulation.run(
                baselines.steps, (_table(ordered, size),), problem,
                num_steps=t, chunk_size=config.chunk_size, noise_std=std,
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
  return {"kappa": kappa, "dim": dim, "records": records}


def negative_progress(config: configs.Config, progress: Progress = _quiet
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
        traj = simulation.run(simulation.fractal_builder(t), (m, 1.0),
                              problem, num_steps=t,
                              chunk_size=config.chunk_size, track_loss=True)
        loss = traj.losses
        ratio = loss[1:] / loss[:-1]
        bound = fractal_optax.chebyshev_error_bound(t, m, 1.0)
        floor = kappa * UNIT_ROUNDOFF["float64"]
        records.append({
            "kappa": kappa, "num_steps": t,
            "fraction_increasing": float(np.mean(ratio > 1.0)),
            "num_increasing": int(np.sum(ratio > 1.0)),
            "max_increase_factor": float(np.max(ratio)),
            "max_loss_over_initial": float(np.max(loss) / loss[0]),
            "final_error": traj.final, "bound": bound,
            "final_over_bound": traj.final / bound, "float64_floor": floor,
            "within_bound_or_floor": traj.final <= max(bound, floor),
        })
        progress()
  return {"dim": config.orders_dim, "records": records}


# ---------------------------------------------------------------------------
# 5. The adaptive fractal optimiser with M unknown.
# ---------------------------------------------------------------------------


def adaptive_num_steps(kappa: float) -> int:
  """The cycle length of the adaptive experiment: the smallest power of two
  ``≥ √κ`` (each cycle then contracts the error by a factor of at least
  ``cosh(2)`` ≈ 3.8, so ε is reached in a handful of cycles).

  Example:
    >>> [adaptive_num_steps(k) for k in (1e2, 1e3, 1e4, 1e5)]
    [16, 32, 128, 512]
  """
  return 1 << (math.ceil(math.sqrt(kappa)) - 1).bit_length()


def _curve(evaluations: np.ndarray, errors: np.ndarray, stop: int | None,
           num_points: int = 300) -> dict[str, list[Any]]:
  """At most ``num_points`` (evaluations, error) pairs of a run up to ε."""
  n = errors.size if stop is None else stop
  idx = np.unique(np.linspace(0, n - 1, min(n, num_points)).astype(int))
  return {"evaluations": [int(v) for v in evaluations[idx]],
          "errors": [_finite_or_none(float(f"{v:.4g}")) for v in errors[idx]]}


def _timed(fn: Callable[[], simulation.Trajectory], repeats: int
           ) -> tuple[simulation.Trajectory, float]:
  """``fn()`` once to compile, then the median wall time of ``repeats``."""
  traj = fn()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    again = fn()
    times.append(time.perf_counter() - start)
    if again.first_below != traj.first_below:
      raise RuntimeError("a repeated run reached ε at another step: "
                         f"{traj.first_below} then {again.first_below}.")
  return traj, statistics.median(times)


def adaptive(config: configs.Config, progress: Progress = _quiet
             ) -> dict[str, Any]:
  """``adaptive_fractal_sgd`` with ``M`` unknown against the oracle fractal.

  Diagonal float32 problems (x64 off, as a user runs them) with spectrum
  ``[m, M] = [1/κ, 1]``; ``m`` is given exactly, ``max_curvature`` is
  ``guess · M``. Every run starts at ``x_0 = 0`` and stops at the first step
  with ``‖x − x*‖/‖x_0 − x*‖ ≤ ε`` (``adaptive_tolerance``). Methods, all with
  the cycle length ``T = adaptive_num_steps(κ)``:

  * ``oracle``: ``fractal_sgd(T, m, M)`` repeated (it knows ``[m, M]``);
  * ``adaptive``: ``adaptive_fractal_sgd(T, min_curvature=m,
    max_curvature=guess·M)`` with the library's defaults, given
    ``value=f(x)``, ``grad`` and ``value_fn=f`` (``problems.loss``, the plain
    ``½xᵀAx − bᵀx`` in float32); it gives up after ``adaptive_budget`` times
    the oracle's iterations;
  * ``single_cycle``: one fractal cycle of the smallest sufficient length
    (bisection over T, as in :func:`acceleration`), a second reference.

  Cost is counted in gradient evaluations: one per step (value and gradient
  together), plus, for the adaptive runs, ``num_value_evals + 2·num_hvps``
  from the state at the step that reaches ε. Wall time: the median of
  ``adaptive_timing_repeats`` warm repeats of the whole run (a string of
  jitted chunks of ``chunk_size`` steps, which may run past ε to the end of a
  chunk); ``seconds_to_eps`` scales it to the steps to ε.
  """
  eps, dim, records = config.adaptive_tolerance, config.adaptive_dim, []
  size = 1 << (int(1.25 * predicted_num_steps(
      max(config.adaptive_kappas), eps)) - 1).bit_length()
  repeats = config.adaptive_timing_repeats
  for kappa in config.adaptive_kappas:
    problem, spec = problems.make_quadratic(dim, kappa, dense=False,
                                            dtype="float32", seed=config.seed)
    m, big_m = spec.min_curvature, spec.max_curvature
    t = adaptive_num_steps(kappa)

    def summarise(method, traj, seconds, evaluations, **extra):
      hit = traj.first_below
      steps_run = traj.errors.size
      cost = int(evaluations[hit - 1]) if hit else None
      rec = {"kappa": kappa, "num_steps": t, "method": method,
             "iterations": hit, "evaluations": cost,
             "finite": traj.first_nonfinite is None
                       and bool(np.all(np.isfinite(traj.errors))),
             "first_nonfinite": traj.first_nonfinite,
             "wall_seconds": seconds, "steps_run": steps_run,
             "seconds_per_step": seconds / steps_run,
             "seconds_to_eps": (seconds / steps_run * hit if hit else None),
             "curve": _curve(evaluations, traj.errors, hit), **extra}
      records.append(rec)
      progress()
      return rec

    oracle_run = lambda: simulation.run(
        simulation.fractal_builder(t), (m, big_m), problem,
        num_steps=config.max_iterations, chunk_size=config.chunk_size,
        stop_below=eps)
    traj, seconds = _timed(oracle_run, repeats)
    oracle = summarise("oracle", traj, seconds,
                       np.arange(1, traj.errors.size + 1))

    final_at = lambda n, problem=problem, kappa=kappa: simulation.run(
        baselines.steps, (_table(chebyshev_steps(n, kappa)[
            fractal_optax.fractal_order(n)], size),), problem, num_steps=n,
        chunk_size=config.chunk_size).final
    single = smallest_sufficient(final_at, eps, start=predicted_num_steps(
        kappa, eps), limit=size)
    records.append({"kappa": kappa, "method": "single_cycle",
                    "num_steps": single, "iterations": single,
                    "evaluations": single,
                    "predicted": predicted_num_steps(kappa, eps)})

    budget = config.adaptive_budget * (oracle["iterations"]
                                       or config.max_iterations)
    for guess in config.adaptive_guesses:
      adaptive_run = lambda guess=guess: simulation.run(
          simulation.adaptive_builder(t), (m, guess * big_m), problem,
          num_steps=budget, chunk_size=config.chunk_size, stop_below=eps,
          with_value=True, record=simulation.adaptive_cost)
      traj, seconds = _timed(adaptive_run, repeats)
      rec = traj.recorded
      at = (traj.first_below or traj.errors.size) - 1
      summarise(
          "adaptive", traj, seconds, rec["evaluations"], guess=guess,
          max_curvature_guess=guess * big_m,
          num_hvps=int(rec["num_hvps"][at]),
          num_value_evals=int(rec["num_value_evals"][at]),
          num_rejected=int(rec["num_rejected"][at]),
          num_accepted=int(rec["num_accepted"][at]),
          final_max_curvature=float(rec["max_curvature"][at]),
          final_min_curvature=float(rec["min_curvature"][at]),
          true_max_curvature=big_m, budget=budget,
          best_error=_finite_or_none(float(np.nanmin(traj.errors))))
  by = {(r["kappa"], r["method"]): r for r in records
        if r["method"] != "adaptive"}
  for r in records:
    if r["method"] == "adaptive":
      o, s1 = by[r["kappa"], "oracle"], by[r["kappa"], "single_cycle"]
      r["ratio_to_oracle"] = _ratio(r["evaluations"], o["evaluations"])
      r["ratio_to_single_cycle"] = _ratio(r["evaluations"], s1["evaluations"])
      r["wall_ratio_to_oracle"] = _ratio(r["seconds_to_eps"],
                                         o["seconds_to_eps"])
  defaults = {name: p.default for name, p in inspect.signature(
      fractal_optax.adaptive_fractal_sgd).parameters.items()
              if p.default is not inspect.Parameter.empty}
  return {"dim": dim, "dtype": "float32", "tolerance": eps,
          "library_defaults": defaults, "library_source": _ADAPTIVE_SOURCE,
          "records": records}


def _source_digest(fn: Callable[..., Any]) -> dict[str, str | None]:
  """The file that defines ``fn`` and its sha256 (which code was measured)."""
  try:
    path = inspect.getsourcefile(fn)
    with open(path, "rb") as f:
      digest = hashlib.sha256(f.read()).hexdigest()
  except (OSError, TypeError):
    return {"file": None, "sha256": None}
  return {"file": os.path.basename(path), "sha256": digest}


# Read when this module is imported, as close as possible to when the library
# code that runs was imported.
_ADAPTIVE_SOURCE = _source_digest(fractal_optax.adaptive_fractal_sgd)


def schedule_examples(config: configs.Config) -> list[dict[str, Any]]:
  """The fractal schedule at ``figure_kappa`` for two cycle lengths."""
  return [{"kappa": config.figure_kappa, "num_steps": t,
           "step_sizes": chebyshev_steps(t, config.figure_kappa)[
               fractal_optax.fractal_order(t)].tolist()}
          for t in (64, config.figure_num_steps)]


# ---------------------------------------------------------------------------
# Targets.
# ---------------------------------------------------------------------------


def _target(name, description, measured, threshold, passed, **details):
  return {"name": name, "description": description, "measured": measured,
          "threshold": threshold, "passed": bool(passed), **details}


def _ratio(num, den):
  return num / den if num and den else None


def targets(results: dict[str, Any], config: configs.Config
            ) -> list[dict[str, Any]]:
  """The issue's targets, each a ratio from this run with pass/fail."""
  accel = results["acceleration"]["records"]
  by = {(r["kappa"], r["method"]): r["iterations"] for r in accel}
  ratios = {str(r["kappa"]): r["ratio_to_predicted"] for r in accel
            if r["method"] == "fractal"}
  valid = [v for v in ratios.values() if v is not None]
  out = [_target(
      "fractal_iterations_vs_bound",
      "fractal iterations-to-ε (one cycle, smallest sufficient T) / count "
      "predicted by chebyshev_error_bound, at every κ; within 5%",
      max(valid, key=lambda v: abs(v - 1.0)) if valid else None,
      "[0.95, 1.05]",
      len(valid) == len(ratios) and all(abs(v - 1) <= 0.05 for v in valid),
      per_kappa=ratios)]

  k = config.target_kappa
  gd, fr, hb = (by.get((k, name)) for name in ("gd", "fractal", "heavy_ball"))
  speedup = _ratio(gd, fr)
  out.append(_target(
      "fractal_vs_gd", f"GD(2/(M+m)) iterations / fractal iterations at "
      f"κ={k:g}", speedup, ">= 50", speedup is not None and speedup >= 50,
      gd_iterations=gd, fractal_iterations=fr))

  timing = results["timing"]["problems"]
  opts = timing[0]["optimizers"]
  hb_ratio = _ratio(fr, hb)
  out.append(_target(
      "fractal_vs_heavy_ball", f"fractal iterations / heavy-ball iterations "
      f"at κ={k:g}, with no per-parameter optimiser state", hb_ratio,
      "<= 1.2", hb_ratio is not None and hb_ratio <= 1.2
      and not opts["fractal"]["per_parameter_state"],
      heavy_ball_iterations=hb, fractal_iterations=fr,
      fractal_state_bytes=opts["fractal"]["state_bytes"],
      heavy_ball_state_bytes=opts["heavy_ball"]["state_bytes"],
      ratio_per_kappa={str(kk): _ratio(by.get((kk, "fractal")),
                                       by.get((kk, "heavy_ball")))
                       for kk in config.accel_kappas}))

  out.extend(_float32_targets(results["orders"], config))

  rel = opts["fractal"]["relative_to_sgd"]
  out.append(_target(
      "wall_time_vs_sgd", "fractal_sgd wall time per iteration / "
      f"optax.sgd(constant), float32, d={timing[0]['dim']}", rel, "<= 1.05",
      rel <= 1.05,
      per_problem={str(p["dim"]): p["optimizers"]["fractal"][
          "relative_to_sgd"] for p in timing},
      cpu_time_ratio=opts["fractal"]["cpu_relative_to_sgd"]))
  out.extend(_adaptive_targets(results["adaptive"]))
  return out


def _adaptive_targets(adaptive_result: dict[str, Any]
                      ) -> list[dict[str, Any]]:
  """Adaptive evaluations-to-ε over the oracle fractal's, and finiteness."""
  runs = [r for r in adaptive_result["records"] if r["method"] == "adaptive"]
  eps = adaptive_result["tolerance"]
  out = []
  for name, select, limit, where in (
      ("adaptive_vs_oracle_kappa_ge_1e3", lambda k: k >= 1e3, 1.25,
       "κ ≥ 1e3"),
      ("adaptive_vs_oracle_kappa_below_1e3", lambda k: k < 1e3, 1.5,
       "κ < 1e3")):
    chosen = [r for r in runs if select(r["kappa"])]
    if not chosen:
      continue
    ratios = [r["ratio_to_oracle"] for r in chosen]
    valid = [v for v in ratios if v is not None]
    out.append(_target(
        name, f"adaptive_fractal_sgd gradient evaluations to ε={eps:g} "
        "(count + extra evaluations + 2·HVPs) / oracle fractal_sgd(T, m, M) "
        f"evaluations, float32, max over {where} and every max_curvature "
        "guess", max(valid) if valid else None, f"<= {limit}",
        len(valid) == len(ratios) and max(valid) <= limit,
        per_run={f"kappa={r['kappa']:g},guess={r['guess']:g}":
                 r["ratio_to_oracle"] for r in chosen}))
  bad = [r for r in runs if not r["finite"]]
  out.append(_target(
      "adaptive_finite", "adaptive runs with a non-finite iterate (every κ "
      "and guess)", len(bad), "== 0", not bad,
      nonfinite_runs=[f"kappa={r['kappa']:g},guess={r['guess']:g}"
                      for r in bad]))
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
    ok, dev = False, None
    if e32 is not None and e64 is not None:
      dev = abs(e32 / e64 - 1.0)
      ok = dev <= 0.01 or e32 <= floor
      if e64 < floor:
        floor_ratios.append(e32 / floor)
      else:
        deviations.append(dev)
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
  worst = max(first_bad.values()) if all(first_bad.values()) else None
  out.append(_target(
      "sorted_orders_nonfinite_float32",
      f"largest T at which a sorted order first ends in inf/NaN in float32 "
      f"at κ={kappa:g} / 256 (both by T=256), while fractal stays finite",
      worst / 256 if worst else None, "<= 1",
      worst is not None and worst <= 256 and fractal_finite,
      first_nonfinite_num_steps=first_bad, fractal_finite=fractal_finite))
  return out


# ---------------------------------------------------------------------------
# The entry point.
# ---------------------------------------------------------------------------

PARTS = {"orders": orders, "acceleration": acceleration, "timing": timing,
         "noise": noise, "negative_progress": negative_progress,
         "adaptive": adaptive}


def run(config: configs.Config, workdir: str, *, command: str = ""
        ) -> dict[str, Any]:
  """Runs (or resumes) the six parts, checks the targets, writes the report.

  Each part is a unit of ``resume.Store``: a run killed midway and restarted
  with the same config recomputes only the unfinished parts.

  Args:
    config: the settings.
    workdir: output directory (``results.json``, ``results.md``,
      ``summary.md``, the figures).
    command: the command line recorded in the results.

  Returns:
    The results (what ``results.json`` holds).
  """
  start = time.perf_counter()
  store = resume.Store(workdir, config)
  results = {"command": command, "config": config_lib.to_dict(config),
             "environment": files.environment(), "part_wall_time_s": {}}
  with tqdm.tqdm(desc="quadratic", unit="run", disable=not config.progress,
                 file=sys.stderr) as bar:
    for name, part in PARTS.items():
      bar.set_postfix_str(name)

      def compute(part=part):
        part_start = time.perf_counter()
        return {"result": part(config, lambda: bar.update(1)),
                "seconds": time.perf_counter() - part_start}

      unit = store.compute(name, compute)
      results[name] = unit["result"]
      results["part_wall_time_s"][name] = unit["seconds"]
  results["schedule"] = schedule_examples(config)
  results["targets"] = targets(results, config)
  results["wall_time_s"] = time.perf_counter() - start
  report.write_all(results, workdir)
  store.clear()
  print(report.targets_text(results) + f"\nresults in {workdir}/")
  return results
