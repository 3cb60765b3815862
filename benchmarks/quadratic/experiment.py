"""The quadratic benchmark: six parts, the targets, one entry point.

:func:`run` (``run(config, workdir)``) runs each part as a resumable unit of
``benchmarks.resume.Store``, checks :func:`targets` and writes the report.
The parts: :func:`orders` (five orders of the Chebyshev steps in three
dtypes), :func:`acceleration` (iterations to ε against κ for the baselines
and the fractal schedule), :func:`timing` (wall time and state against
``optax.sgd``), :func:`noise` (gradient noise), :func:`negative_progress`
(loss increases within a cycle) and :func:`adaptive`
(``adaptive_fractal_sgd`` with ``M`` unknown against the oracle).
"""

from __future__ import annotations

from collections.abc import Callable
import functools
import hashlib
import inspect
import math
import os
import statistics
import sys
import time
from typing import Any

import jax
import numpy as np
import tqdm

from benchmarks import baselines
from benchmarks import config as config_lib
from benchmarks import files
from benchmarks import resume
from benchmarks.quadratic import configs
from benchmarks.quadratic import problems
from benchmarks.quadratic import report
from benchmarks.quadratic import simulation
import fractal_optax

ORDERS = ("fractal", "largest_first", "smallest_first", "random", "filtered")
SORTED_ORDERS = ("largest_first", "smallest_first")
BASELINES = ("gd", "gd_1/M", "heavy_ball", "nesterov", "silver")
ACCEL_METHODS = (*BASELINES, "fractal")
UNIT_ROUNDOFF = {"float64": 2.0**-53, "float32": 2.0**-24, "bfloat16": 2.0**-8}
Config = configs.Config
Progress = Callable[[], None]
Record = dict[str, Any]


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
    "filtered": lambda: baselines.filtered_power_of_two_order(t),
  }
  if name not in orders:
    raise ValueError(f"Unknown order, got {name=!r}; expected one of {ORDERS}.")
  return orders[name]()


def ordered_steps(order: str, num_steps: int, kappa: float, seed: int = 0):
  """The ``T`` Chebyshev steps on ``[1/κ, 1]`` in ``order``, in float64."""
  with jax.enable_x64(True):
    steps = fractal_optax.chebyshev_step_sizes(
      num_steps, np.float64(1.0 / kappa), np.float64(1.0)
    )
    steps = np.asarray(steps, np.float64)
  return steps[step_order(order, num_steps, seed)]


def predicted_num_steps(kappa: float, tolerance: float) -> int:
  """Smallest ``T`` with ``chebyshev_error_bound(T, 1/κ, 1) ≤ ε``."""
  return fractal_optax.chebyshev_num_steps(1.0 / kappa, 1.0, tolerance)


def _table_size(longest: int) -> int:
  """A power of two ≥ 1.25·longest: one step-table length, one compile."""
  return 1 << (int(longest * 1.25) - 1).bit_length()


def table_size(config: Config) -> int:
  """One length for every float64 step table (one compile per dtype)."""
  accel = (
    predicted_num_steps(k, config.tolerance) for k in config.accel_kappas
  )
  longest = max(*config.orders_num_steps, *config.noise_num_steps, *accel)
  return _table_size(longest)


def _finite(value: float) -> float | None:
  return float(value) if math.isfinite(value) else None


def _ratio(num, den):
  return num / den if num and den else None


def _problem(
  config: Config, dim: int, kappa: float, dtype: str, *, dense: bool
):
  """``problems.make_quadratic`` with the run's seed."""
  return problems.make_quadratic(
    dim, kappa, dense=dense, dtype=dtype, seed=config.seed
  )


def _run(config: Config, builder, args, problem, num_steps: int, **kw):
  kw.setdefault("chunk_size", config.chunk_size)
  return simulation.run(builder, args, problem, num_steps=num_steps, **kw)


def _run_steps(config: Config, steps, size: int, problem, **kw):
  """One pass over ``steps``, padded to ``size`` (for ``baselines.steps``)."""
  if steps.size > size:
    raise ValueError(f"{steps.size} steps do not fit a table of {size=}.")
  table = np.concatenate([steps, np.zeros(size - steps.size)])
  return _run(config, baselines.steps, (table,), problem, steps.size, **kw)


def smallest_sufficient(
  final_error: Callable[[int], float], tolerance: float, *, start, limit
) -> int | None:
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


def _single_cycle(config: Config, problem, kappa: float, eps: float, size):
  """The smallest ``T`` whose one fractal cycle reaches ε, its final error."""

  @functools.cache
  def final(t: int) -> float:
    steps = ordered_steps("fractal", t, kappa)
    return _run_steps(config, steps, size, problem).final

  start = predicted_num_steps(kappa, eps)
  t = smallest_sufficient(final, eps, start=start, limit=size)
  return t, (final(t) if t else None)


# ---------------------------------------------------------------------------
# 1. Orders and precision.
# ---------------------------------------------------------------------------


@jax.enable_x64(True)
def orders(config: Config, progress: Progress) -> dict[str, Any]:
  """Final and intermediate errors of every order, dtype, κ and ``T``.

  Returns:
    One record per (κ, T, order, dtype) with ``final_error`` (relative, None
    when inf/NaN), ``bound``, ``final_over_bound``, ``max_error`` (largest
    intermediate error, None when inf/NaN), ``first_nonfinite`` (step, or
    None) and the order's ``profile`` (``stability_profile`` fields, for
    ``T ≤ profile_max_steps``); ``curves[dtype][order]``: the error after
    each step at (``figure_kappa``, ``figure_num_steps``).
  """
  size, dim, records, curves = table_size(config), config.orders_dim, [], {}
  quadratics = {
    (dtype, kappa): _problem(config, dim, kappa, dtype, dense=True)
    for dtype in config.orders_dtypes
    for kappa in config.orders_kappas
  }
  for kappa in config.orders_kappas:
    for t in config.orders_num_steps:
      bound = fractal_optax.chebyshev_error_bound(t, 1.0 / kappa, 1.0)
      for order in ORDERS:
        steps = ordered_steps(order, t, kappa, config.seed)
        profile = None
        if t <= config.profile_max_steps:
          profile = fractal_optax.stability_profile(
            steps, 1.0 / kappa, 1.0, oversample=config.profile_oversample
          )._asdict()
        for dtype in config.orders_dtypes:
          traj = _run_steps(config, steps, size, quadratics[dtype, kappa])
          final, finite = traj.final, traj.first_nonfinite is None
          ok = math.isfinite(final) and bound > 0
          records.append(
            {
              "kappa": kappa,
              "num_steps": t,
              "order": order,
              "dtype": dtype,
              "final_error": _finite(final),
              "bound": bound,
              "final_over_bound": final / bound if ok else None,
              "max_error": _finite(np.max(traj.errors)) if finite else None,
              "first_nonfinite": traj.first_nonfinite,
              "finite": finite,
              "profile": profile,
            }
          )
          if (kappa, t) == (config.figure_kappa, config.figure_num_steps):
            curve = [_finite(v) for v in traj.errors]
            curves.setdefault(dtype, {})[order] = curve
          progress()
  floor = {
    dtype: {str(k): k * UNIT_ROUNDOFF[dtype] for k in config.orders_kappas}
    for dtype in config.orders_dtypes
  }
  return {
    "dim": dim,
    "records": records,
    "curves": curves,
    "curve_kappa": config.figure_kappa,
    "curve_num_steps": config.figure_num_steps,
    "precision_floor": floor,
    "horizons": horizons(records),
  }


def horizons(records: list[Record]) -> list[Record]:
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
    head = {"kappa": kappa, "dtype": dtype, "order": order, "horizon": horizon}
    out.append(
      {**head, "first_failure": failed_at, "all_passed": failed_at is None}
    )
  return out


# ---------------------------------------------------------------------------
# 2. Acceleration, wall time and state.
# ---------------------------------------------------------------------------


@jax.enable_x64(True)
def acceleration(config: Config, progress: Progress) -> dict[str, Any]:
  """Iterations to ε of every method at every κ (float64, diagonal problems).

  The fractal schedule as one cycle: ``measured`` is the smallest ``T`` whose
  single fractal cycle ends with error ≤ ε (bisection over ``T``, each a
  fresh schedule), ``predicted`` the smallest ``T`` with
  ``chebyshev_error_bound ≤ ε``; the cycle at ``measured`` is re-run through
  the real ``fractal_optax.fractal_sgd`` (``fractal_sgd_final_error``).
  Every other method counts the first iteration whose error is ≤ ε. Short
  fractal cycles (``fractal_T8`` …) run ``fractal_sgd(T, cycle=True)``.
  """
  records = []
  for kappa in config.accel_kappas:
    records += _accelerate(config, kappa, progress)
  return {
    "dim": config.accel_dim,
    "tolerance": config.tolerance,
    "records": records,
  }


def _accelerate(
  config: Config, kappa: float, progress: Progress
) -> list[Record]:
  """The records of :func:`acceleration` at one κ."""
  problem = _problem(config, config.accel_dim, kappa, "float64", dense=False)
  m, eps, n_max = 1.0 / kappa, config.tolerance, config.max_iterations
  records = []

  def add(method, builder=None, iterations=None, **extra):
    if builder is not None:
      traj = _run(config, builder, (m, 1.0), problem, n_max, stop_below=eps)
      iterations = traj.first_below
    records.append(
      {"kappa": kappa, "method": method, "iterations": iterations, **extra}
    )
    progress()

  hb = baselines.heavy_ball_constants(m, 1.0)
  nesterov = baselines.nesterov_constants(m, 1.0)
  extras = {
    "gd": {"learning_rate": 2.0 / (1.0 + m)},
    "gd_1/M": {"learning_rate": 1.0},
    "heavy_ball": {"learning_rate": hb[0], "momentum": hb[1]},
    "nesterov": {"learning_rate": nesterov[0], "momentum": nesterov[1]},
    "silver": {"period": 2 ** baselines.silver_num_doublings(m, 1.0)},
  }
  for name in BASELINES:
    add(name, baselines.BASELINES[name], **extras[name])
  predicted = predicted_num_steps(kappa, eps)
  measured, final = _single_cycle(
    config, problem, kappa, eps, table_size(config)
  )
  confirm = None
  if measured:
    builder = simulation.fractal_builder(measured)
    confirm = _run(config, builder, (m, 1.0), problem, measured).final
  add(
    "fractal",
    iterations=measured,
    predicted=predicted,
    ratio_to_predicted=_ratio(measured, predicted),
    final_error=final,
    fractal_sgd_final_error=confirm,
  )
  for t in config.cycle_lengths:
    bound = fractal_optax.chebyshev_error_bound(t, m, 1.0)
    builder = simulation.fractal_builder(t)
    add(f"fractal_T{t}", builder, cycle_length=t, cycle_bound=bound)
  return records


def timing(config: Config, progress: Progress) -> dict[str, Any]:
  """Wall time per iteration and state bytes of each optimiser (float32).

  Measured on diagonal float32 problems at ``κ = target_kappa`` (x64 off, as
  a user runs them), with ``fractal_sgd``'s cycle length the predicted one
  for ``tolerance``. ``state_bytes`` is measured at ``d`` and ``2d``:
  per-parameter state grows with ``d``. ``sgd`` is ``baselines.constant``.
  ``adaptive`` is ``adaptive_fractal_sgd(adaptive_num_steps(κ),
  min_curvature=m, max_curvature=M, num_init_hvps=0)``: its steady per-step
  cost (the loss it needs as ``value``, the cycle-end test and one HVP per
  cycle) without the one-off Lanczos measurement.
  """
  kappa = config.target_kappa
  m, t = 1.0 / kappa, predicted_num_steps(kappa, config.tolerance)
  out = {"kappa": kappa, "fractal_num_steps": t, "problems": []}
  opts = {"sgd": baselines.constant(m, 1.0)}
  for name in ("heavy_ball", "nesterov", "silver"):
    opts[name] = baselines.BASELINES[name](m, 1.0)
  opts["fractal"] = baselines.fractal(t, m, 1.0)
  opts["adaptive"] = fractal_optax.adaptive_fractal_sgd(
    adaptive_num_steps(kappa),
    min_curvature=m,
    max_curvature=1.0,
    num_init_hvps=0,
  )
  for dim, num_steps in zip(
    config.timing_dims, config.timing_steps, strict=True
  ):
    problem = _problem(config, dim, kappa, "float32", dense=False)
    repeats = config.timing_repeats
    result = simulation.time_per_iteration(
      opts, problem, num_steps=num_steps, repeats=repeats, progress=progress
    )
    for name, r in result.items():
      for key in ("seconds_per_step", "cpu_seconds_per_step"):
        ratio = r[key] / result["sgd"][key]
        r[key.replace("seconds_per_step", "relative_to_sgd")] = ratio
      x = np.zeros(2 * dim, np.float32)
      r["state_bytes_at_2d"] = simulation.state_bytes(opts[name].init(x))
      r["per_parameter_state"] = r["state_bytes_at_2d"] > r["state_bytes"]
    out["problems"].append(
      dict(dim=dim, num_steps=num_steps, repeats=repeats, optimizers=result)
    )
  return out


# ---------------------------------------------------------------------------
# 3. Gradient noise and 4. negative progress.
# ---------------------------------------------------------------------------


@jax.enable_x64(True)
def noise(config: Config, progress: Progress) -> dict[str, Any]:
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
  problem = _problem(config, dim, kappa, "float64", dense=True)
  eigenvalues = problems.spectrum(dim, m, 1.0)
  grad_norm = float(np.linalg.norm(np.asarray(problem.rhs)))
  for t in config.noise_num_steps:
    for order in ORDERS:
      steps = ordered_steps(order, t, kappa, config.seed)
      # suffix[t, i] = ∏_{u > t} (1 − η_u λ_i).
      factors = 1.0 - np.outer(steps, eigenvalues)
      suffix = np.ones_like(factors)
      suffix[:-1] = np.cumprod(factors[::-1], axis=0)[::-1][1:]
      gain = math.sqrt(float(np.sum(steps[:, None] ** 2 * suffix**2)))
      for sigma in config.noise_scales:
        std, finals = sigma * grad_norm / math.sqrt(dim), []
        for r in range(config.noise_repeats if sigma > 0 else 1):
          seed = config.seed * 1000 + r
          run = _run_steps(
            config, steps, size, problem, noise_std=std, seed=seed
          )
          finals.append(run.final)
          progress()
        records.append(
          {
            "num_steps": t,
            "order": order,
            "sigma": sigma,
            "noise_std": std,
            "final_error_median": _finite(float(np.median(finals))),
            "final_errors": [_finite(f) for f in finals],
            "predicted_noise_error": std * gain,
            "bound": fractal_optax.chebyshev_error_bound(t, m, 1.0),
          }
        )
  return {"kappa": kappa, "dim": dim, "records": records}


@jax.enable_x64(True)
def negative_progress(config: Config, progress: Progress) -> dict[str, Any]:
  """How the fractal schedule's loss goes up and down within one cycle.

  One cycle of ``fractal_optax.fractal_sgd(T, m, M)`` on the dense float64
  problem: the fraction of steps with ``f(x_{t+1}) > f(x_t)``, the largest
  single-step ratio ``f(x_{t+1})/f(x_t)``, the largest loss along the way
  relative to ``f(x_0)``, and the final error against the bound (or the
  float64 floor ``κ·u₆₄`` when the bound is below it).
  """
  records = []
  for kappa in config.negative_kappas:
    problem = _problem(config, config.orders_dim, kappa, "float64", dense=True)
    m, floor = 1.0 / kappa, kappa * UNIT_ROUNDOFF["float64"]
    for t in config.negative_num_steps:
      builder = simulation.fractal_builder(t)
      traj = _run(config, builder, (m, 1.0), problem, t, track_loss=True)
      loss, final = traj.losses, traj.final
      ratio = loss[1:] / loss[:-1]
      bound = fractal_optax.chebyshev_error_bound(t, m, 1.0)
      records.append(
        {
          "kappa": kappa,
          "num_steps": t,
          "fraction_increasing": float(np.mean(ratio > 1.0)),
          "num_increasing": int(np.sum(ratio > 1.0)),
          "max_increase_factor": float(np.max(ratio)),
          "max_loss_over_initial": float(np.max(loss) / loss[0]),
          "final_error": final,
          "bound": bound,
          "final_over_bound": final / bound,
          "float64_floor": floor,
          "within_bound_or_floor": final <= max(bound, floor),
        }
      )
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


def _timed(fn: Callable[[], Any], repeats: int) -> tuple[Any, float]:
  """``fn()`` once to compile, then the median wall time of ``repeats``."""
  traj, times = fn(), []
  for _ in range(repeats):
    start = time.perf_counter()
    again = fn()
    times.append(time.perf_counter() - start)
    if again.first_below != traj.first_below:
      raise RuntimeError(
        "a repeated run reached ε at another step: "
        f"{traj.first_below} then {again.first_below}."
      )
  return traj, statistics.median(times)


def _summary(traj, seconds: float, evaluations: np.ndarray) -> Record:
  """Steps, evaluations (the cost after each step) and wall time to ε of a
  run, and at most 300 (evaluations, error) points of it up to ε."""
  hit, n = traj.first_below, traj.errors.size
  shown = hit or n  # The curve goes up to ε, or over the whole run.
  idx = np.unique(np.linspace(0, shown - 1, min(shown, 300)).astype(int))
  return {
    "iterations": hit,
    "evaluations": int(evaluations[hit - 1]) if hit else None,
    "finite": traj.first_nonfinite is None,
    "first_nonfinite": traj.first_nonfinite,
    "wall_seconds": seconds,
    "steps_run": n,
    "seconds_per_step": seconds / n,
    "seconds_to_eps": seconds / n * hit if hit else None,
    "curve": {
      "evaluations": [int(v) for v in evaluations[idx]],
      "errors": [_finite(float(f"{v:.4g}")) for v in traj.errors[idx]],
    },
  }


def adaptive(config: Config, progress: Progress) -> dict[str, Any]:
  """``adaptive_fractal_sgd`` with ``M`` unknown against the oracle fractal.

  Diagonal float32 problems (x64 off, as a user runs them) with spectrum
  ``[m, M] = [1/κ, 1]``; ``m`` is given exactly, ``max_curvature`` is
  ``guess · M``. Every run starts at ``x_0 = 0`` and stops at the first step
  with ``‖x − x*‖/‖x_0 − x*‖ ≤ ε`` (``adaptive_tolerance``). Methods, all with
  the cycle length ``T = adaptive_num_steps(κ)``:

  * ``oracle``: ``fractal_sgd(T, m, M)`` repeated (it knows ``[m, M]``);
  * ``adaptive``: ``adaptive_fractal_sgd(T, min_curvature=m,
    max_curvature=guess·M)`` (``T`` its longest cycle) with the library's
    defaults, given ``value=f(x)``, ``grad`` and ``value_fn=f``
    (``problems.loss``, the plain ``½xᵀAx − bᵀx`` in float32); it gives up
    after ``adaptive_budget`` times the oracle's iterations;
  * ``single_cycle``: one fractal cycle of the smallest sufficient length
    (bisection over T, as in :func:`acceleration`), a second reference.

  Cost is counted in gradient evaluations: one per step (value and gradient
  together), plus, for the adaptive runs, ``num_value_evals + 2·num_hvps``
  from the state at the step that reaches ε. Wall time: the median of
  ``adaptive_timing_repeats`` warm repeats of the whole run (a string of
  jitted chunks of ``chunk_size`` steps, which may run past ε to the end of a
  chunk); ``seconds_to_eps`` scales it to the steps to ε.
  """
  eps, records = config.adaptive_tolerance, []
  size = _table_size(predicted_num_steps(max(config.adaptive_kappas), eps))
  for kappa in config.adaptive_kappas:
    records += _adaptive_at(config, kappa, size, progress)
  signature = inspect.signature(fractal_optax.adaptive_fractal_sgd)
  defaults = {
    name: p.default
    for name, p in signature.parameters.items()
    if p.default is not inspect.Parameter.empty
  }
  return {
    "dim": config.adaptive_dim,
    "dtype": "float32",
    "tolerance": eps,
    "library_defaults": defaults,
    "library_source": _ADAPTIVE_SOURCE,
    "records": records,
  }


def _adaptive_at(config: Config, kappa: float, size: int, progress: Progress):
  """The records of :func:`adaptive` at one κ."""
  problem = _problem(config, config.adaptive_dim, kappa, "float32", dense=False)
  m, t = 1.0 / kappa, adaptive_num_steps(kappa)
  eps = config.adaptive_tolerance

  def to_eps(builder, args, num_steps, **kw):
    """A run stopped at ε, and its median warm wall time."""
    run = functools.partial(
      _run, config, builder, args, problem, num_steps, stop_below=eps, **kw
    )
    return _timed(run, config.adaptive_timing_repeats)

  oracle_builder = simulation.fractal_builder(t)
  traj, seconds = to_eps(oracle_builder, (m, 1.0), config.max_iterations)
  oracle = _summary(traj, seconds, np.arange(1, traj.errors.size + 1))
  head = {"kappa": kappa, "num_steps": t}
  records = [{**head, "method": "oracle", **oracle}]
  progress()
  single, _ = _single_cycle(config, problem, kappa, eps, size)
  records.append(
    {
      "kappa": kappa,
      "method": "single_cycle",
      "num_steps": single,
      "iterations": single,
      "evaluations": single,
      "predicted": predicted_num_steps(kappa, eps),
    }
  )
  budget = config.adaptive_budget * (
    oracle["iterations"] or config.max_iterations
  )
  builder = simulation.fractal_builder(t, adaptive=True)
  for guess in config.adaptive_guesses:
    traj, seconds = to_eps(builder, (m, guess), budget, adaptive=True)
    counts, at = traj.recorded, (traj.first_below or traj.errors.size) - 1
    rec = _summary(traj, seconds, counts["evaluations"])
    rec.update(
      guess=guess,
      max_curvature_guess=guess,
      **{k: int(counts[k][at]) for k in simulation.COUNTERS},
      final_max_curvature=float(counts["max_curvature"][at]),
      final_min_curvature=float(counts["min_curvature"][at]),
      true_max_curvature=1.0,
      budget=budget,
      best_error=_finite(float(np.nanmin(traj.errors))),
      ratio_to_oracle=_ratio(rec["evaluations"], oracle["evaluations"]),
      ratio_to_single_cycle=_ratio(rec["evaluations"], single),
      wall_ratio_to_oracle=_ratio(
        rec["seconds_to_eps"], oracle["seconds_to_eps"]
      ),
    )
    records.append({**head, "method": "adaptive", **rec})
    progress()
  return records


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


def schedule_examples(config: Config) -> list[Record]:
  """The fractal schedule at ``figure_kappa`` for two cycle lengths."""
  kappa = config.figure_kappa
  return [
    {
      "kappa": kappa,
      "num_steps": t,
      "step_sizes": ordered_steps("fractal", t, kappa).tolist(),
    }
    for t in (64, config.figure_num_steps)
  ]


# ---------------------------------------------------------------------------
# Targets.
# ---------------------------------------------------------------------------


def _target(name, description, measured, threshold, passed, **details):
  return {
    "name": name,
    "description": description,
    "measured": measured,
    "threshold": threshold,
    "passed": bool(passed),
    **details,
  }


def targets(results: dict[str, Any], config: Config) -> list[Record]:
  """The issue's targets, each a ratio from this run with pass/fail."""
  accel = results["acceleration"]["records"]
  by = {(r["kappa"], r["method"]): r["iterations"] for r in accel}
  ratios = {
    str(r["kappa"]): r["ratio_to_predicted"]
    for r in accel
    if r["method"] == "fractal"
  }
  valid = [v for v in ratios.values() if v is not None]
  k = config.target_kappa
  gd, fr, hb = (by.get((k, name)) for name in ("gd", "fractal", "heavy_ball"))
  speedup, hb_ratio = _ratio(gd, fr), _ratio(fr, hb)
  timing = results["timing"]["problems"]
  opts = timing[0]["optimizers"]
  rel = opts["fractal"]["relative_to_sgd"]
  return [
    _target(
      "fractal_iterations_vs_bound",
      "fractal iterations-to-ε (one cycle, smallest sufficient T) / count "
      "predicted by chebyshev_error_bound, at every κ; within 5%",
      max(valid, key=lambda v: abs(v - 1.0)) if valid else None,
      "[0.95, 1.05]",
      len(valid) == len(ratios) and all(abs(v - 1) <= 0.05 for v in valid),
      per_kappa=ratios,
    ),
    _target(
      "fractal_vs_gd",
      f"GD(2/(M+m)) iterations / fractal iterations at κ={k:g}",
      speedup,
      ">= 50",
      speedup is not None and speedup >= 50,
      gd_iterations=gd,
      fractal_iterations=fr,
    ),
    _target(
      "fractal_vs_heavy_ball",
      f"fractal iterations / heavy-ball iterations at κ={k:g}, with no "
      "per-parameter optimiser state",
      hb_ratio,
      "<= 1.2",
      hb_ratio is not None
      and hb_ratio <= 1.2
      and not opts["fractal"]["per_parameter_state"],
      heavy_ball_iterations=hb,
      fractal_iterations=fr,
      fractal_state_bytes=opts["fractal"]["state_bytes"],
      heavy_ball_state_bytes=opts["heavy_ball"]["state_bytes"],
      ratio_per_kappa={
        str(kk): _ratio(by.get((kk, "fractal")), by.get((kk, "heavy_ball")))
        for kk in config.accel_kappas
      },
    ),
    *_float32_targets(results["orders"], config),
    _target(
      "wall_time_vs_sgd",
      "fractal_sgd wall time per iteration / optax.sgd(constant), float32, "
      f"d={timing[0]['dim']}",
      rel,
      "<= 1.05",
      rel <= 1.05,
      per_problem={
        str(p["dim"]): p["optimizers"]["fractal"]["relative_to_sgd"]
        for p in timing
      },
      cpu_time_ratio=opts["fractal"]["cpu_relative_to_sgd"],
    ),
    *_adaptive_targets(results["adaptive"]),
  ]


def _adaptive_targets(adaptive_result: dict[str, Any]) -> list[Record]:
  """Adaptive evaluations-to-ε over the oracle fractal's, and finiteness."""
  runs = [r for r in adaptive_result["records"] if r["method"] == "adaptive"]
  eps, out = adaptive_result["tolerance"], []
  for name, large, limit in (("ge_1e3", True, 1.25), ("below_1e3", False, 1.5)):
    chosen = [r for r in runs if (r["kappa"] >= 1e3) == large]
    ratios = [r["ratio_to_oracle"] for r in chosen]
    valid = [v for v in ratios if v is not None]
    if chosen:
      out.append(
        _target(
          f"adaptive_vs_oracle_kappa_{name}",
          f"adaptive_fractal_sgd gradient evaluations to ε={eps:g} (count + "
          "extra evaluations + 2·HVPs) / oracle fractal_sgd(T, m, M) "
          f"evaluations, float32, max over κ {'≥' if large else '<'} 1e3 "
          "and every max_curvature guess",
          max(valid) if valid else None,
          f"<= {limit}",
          len(valid) == len(chosen) and max(valid) <= limit,
          per_run={_run_name(r): r["ratio_to_oracle"] for r in chosen},
        )
      )
  bad = [_run_name(r) for r in runs if not r["finite"]]
  out.append(
    _target(
      "adaptive_finite",
      "adaptive runs with a non-finite iterate (every κ and guess)",
      len(bad),
      "== 0",
      not bad,
      nonfinite_runs=bad,
    )
  )
  return out


def _run_name(record: Record) -> str:
  return f"kappa={record['kappa']:g},guess={record['guess']:g}"


def _float32_targets(orders: dict[str, Any], config: Config) -> list[Record]:
  """float32 against float64 at ``figure_kappa``, and the sorted orders."""
  kappa = config.figure_kappa
  recs = {
    (r["num_steps"], r["order"], r["dtype"]): r
    for r in orders["records"]
    if r["kappa"] == kappa
  }
  if not {"float32", "float64"} <= set(config.orders_dtypes):
    return []
  floor = kappa * UNIT_ROUNDOFF["float32"]
  per_t, deviations, floor_ratios = {}, [], []
  for t in sorted({key[0] for key in recs}):
    e32, e64 = (
      recs[t, "fractal", d]["final_error"] for d in ("float32", "float64")
    )
    dev = None if e32 is None or e64 is None else abs(e32 / e64 - 1.0)
    if dev is not None and e64 < floor:
      floor_ratios.append(e32 / floor)
    elif dev is not None:
      deviations.append(dev)
    per_t[str(t)] = {
      "float32": e32,
      "float64": e64,
      "relative_deviation": dev,
      "passed": dev is not None and (dev <= 0.01 or e32 <= floor),
    }
  float32 = {(t, o): r for (t, o, d), r in recs.items() if d == "float32"}
  first_bad = {}
  for order in SORTED_ORDERS:
    bad = [t for (t, o), r in float32.items() if o == order and not r["finite"]]
    first_bad[order] = min(bad) if bad else None
  fractal_finite = all(
    r["finite"] for (_, o), r in float32.items() if o == "fractal"
  )
  worst = max(first_bad.values()) if all(first_bad.values()) else None
  return [
    _target(
      "float32_matches_float64",
      f"fractal final error in float32 vs float64 at κ={kappa:g}, every T "
      f"in the grid: |e32/e64 − 1| ≤ 1% or e32 ≤ the float32 floor κ·u32 = "
      f"{floor:.3g}",
      max(deviations) if deviations else None,
      "<= 0.01 (or at the floor)",
      all(p["passed"] for p in per_t.values()),
      max_error_over_floor_below_floor=max(floor_ratios, default=None),
      float32_floor=floor,
      per_num_steps=per_t,
    ),
    _target(
      "sorted_orders_nonfinite_float32",
      f"largest T at which a sorted order first ends in inf/NaN in float32 "
      f"at κ={kappa:g} / 256 (both by T=256), while fractal stays finite",
      worst / 256 if worst else None,
      "<= 1",
      worst is not None and worst <= 256 and fractal_finite,
      first_nonfinite_num_steps=first_bad,
      fractal_finite=fractal_finite,
    ),
  ]


# ---------------------------------------------------------------------------
# The entry point.
# ---------------------------------------------------------------------------

PARTS = {
  "orders": orders,
  "acceleration": acceleration,
  "timing": timing,
  "noise": noise,
  "negative_progress": negative_progress,
  "adaptive": adaptive,
}


def run(config: Config, workdir: str, *, command: str = "") -> dict[str, Any]:
  """Runs (or resumes) the six parts, checks the targets, writes the report.

  Each part is a unit of ``resume.Store``: a run killed midway and restarted
  with the same config recomputes only the unfinished parts.

  Args:
    config: the settings.
    workdir: output directory (``results.json``, ``results.md``,
      ``summary.md``, ``adaptive.md``, the figures).
    command: the command line recorded in the results.

  Returns:
    The results (what ``results.json`` holds).
  """
  start = time.perf_counter()
  store = resume.Store(workdir, config)
  results = {
    "command": command,
    "config": config_lib.to_dict(config),
    "environment": files.environment(),
    "part_wall_time_s": {},
  }
  bar = tqdm.tqdm(
    desc="quadratic", unit="run", disable=not config.progress, file=sys.stderr
  )
  with bar:
    for name, part in PARTS.items():
      bar.set_postfix_str(name)

      def compute(part=part):
        part_start = time.perf_counter()
        result = part(config, lambda: bar.update(1))
        return {"result": result, "seconds": time.perf_counter() - part_start}

      unit = store.compute(name, compute)
      results[name] = unit["result"]
      results["part_wall_time_s"][name] = unit["seconds"]
  results["schedule"] = schedule_examples(config)
  results["targets"] = targets(results, config)
  results["wall_time_s_this_invocation"] = time.perf_counter() - start
  report.write_all(results, workdir)
  store.clear()
  print(report.targets_text(results) + f"\nresults in {workdir}/")
  return results
