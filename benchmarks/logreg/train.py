r"""One comparison of step sizes on logistic regression (the paper's Figure 5).

Full-batch GD on the objective of ``models``: m = lambda (attained: the
logits are invariant to a shift common to all classes); M the larger
``estimate_curvature`` bound at the start and at the optimum, or
(``max_curvature="global"``) lambda + lambda_max(X~^T X~ / n) / 2, valid
everywhere. Methods (``make_methods``): ``gd`` (1/M), ``constant_<c>`` (c/M;
the fastest is the best constant), ``heavy_ball``, ``nesterov``, ``fractal``
(the T with ``chebyshev_error_bound(T)^2 <= epsilon``) and ``fractal_short``
(the power of two nearest sqrt(kappa) / 2), both repeated, and ``adaptive``
(``adaptive_fractal_sgd``, m = lambda, which measures M itself); each a
``train_loop.run_loop`` of jitted ``lax.scan`` chunks. Cost: gradient
evaluations (an HVP counts 2) and wall time to epsilon (``time_to_target``).
f* is the lower of a long ``optax.lbfgs`` run and the lowest loss reached;
steps to epsilon is the first t with (f_t - f*) / (f_0 - f*) <= epsilon.

Example::

  from benchmarks.logreg import configs, train
  summary = train.train_and_evaluate(configs.get_config("quick"), "/tmp/lr")
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
import functools
import inspect
import math
import os
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import baselines
from benchmarks import config as config_lib
from benchmarks import files
from benchmarks import input_pipeline
from benchmarks import metrics as metrics_lib
from benchmarks import resume
from benchmarks import train_loop
from benchmarks.logreg import configs
from benchmarks.logreg import models
from benchmarks.logreg import report
import fractal_optax

Config = configs.Config
# A relative suboptimality above this (or non-finite) at the end: diverged.
DIVERGED = 1.0
# Well above float32 rounding of f (about 2e-8 here): loss increases are
# also counted up to the first step below it.
NOISE_FLOOR = 1e-6


def load_data(config: Config) -> input_pipeline.Dataset:
  """The configured dataset, cut to ``num_train`` / ``num_test``."""
  ds = input_pipeline.load_dataset(config.dataset, config.data_dir)
  return input_pipeline.take(
    ds, config.num_train or None, config.num_test or None
  )


@functools.cache
def _lbfgs_solver(
  graphdef: Any, num_steps: int, tol: float
) -> Callable[..., Any]:
  """A jitted L-BFGS loop for one model structure (l2 is an argument)."""
  objective = models.loss_functions(graphdef).objective
  opt = optax.lbfgs()

  @jax.jit
  def solve(params, data, l2):
    fn = lambda p: objective(p, data, l2)
    value_and_grad = optax.value_and_grad_from_state(fn)

    def cond(carry):
      _, _, it, _, gnorm = carry
      return (it < num_steps) & (gnorm > tol)

    def body(carry):
      params, state, it, best, _ = carry
      value, grad = value_and_grad(params, state=state)
      updates, state = opt.update(
        grad, state, params, value=value, grad=grad, value_fn=fn
      )
      gnorm = optax.tree.norm(grad)
      better = jnp.isfinite(value) & (value < best[1])
      best = jax.tree.map(
        lambda new, old: jnp.where(better, new, old),
        (params, value, gnorm),
        best,
      )
      return optax.apply_updates(params, updates), state, it + 1, best, gnorm

    inf = jnp.asarray(jnp.inf, jnp.float32)
    init = (params, opt.init(params), 0, (params, inf, inf), inf)
    _, _, it, best, _ = jax.lax.while_loop(cond, body, init)
    return best, it

  return solve


def reference_optimum(
  problem: models.Problem, num_steps: int, tol: float = 1e-7
) -> tuple[Any, float, float, int]:
  """``(params, value, grad_norm, iterations)`` of the best finite iterate of
  ``optax.lbfgs``, run until ``num_steps``, ``|grad| <= tol`` or a stall."""
  solve = _lbfgs_solver(problem.graphdef, int(num_steps), float(tol))
  (params, value, gnorm), it = solve(
    problem.params, problem.data, jnp.float32(problem.l2)
  )
  return params, float(value), float(gnorm), int(it)


def global_max_curvature(problem: models.Problem) -> float:
  """An upper bound of the Hessian valid at every point, not just one.

  With augmented inputs x~ = (x, 1) and S = X~^T X~ / n, the data-loss
  Hessian is (1/n) sum_i (diag(p_i) - p_i p_i^T) (x) x~_i x~_i^T, and by
  Gershgorin the softmax block has eigenvalues at most
  max_k 2 p_k (1 - p_k) <= 1/2, so lambda_max <= lambda + lambda_max(S) / 2.
  """
  import scipy.linalg  # pylint: disable=g-import-not-at-top

  x = np.asarray(problem.data[0], np.float64)
  x = np.concatenate([x, np.ones((x.shape[0], 1))], axis=1)
  d = x.shape[1]
  (top,) = scipy.linalg.eigvalsh(
    x.T @ x / x.shape[0], subset_by_index=[d - 1, d - 1]
  )
  return problem.l2 + 0.5 * float(top)


def curvature(
  problem: models.Problem,
  params_star: Any,
  iterations: int,
  seed: int,
  choice: str = "estimate",
) -> dict[str, float]:
  """m = lambda; ``max_curvature`` (the M of the schedules and momentum
  methods) is the estimate (start and optimum) or the global bound, by
  ``choice``; ``max_curvature_estimate`` (the M of the constant grid) is the
  estimate either way."""
  config_lib.one_of("max_curvature", choice, configs.MAX_CURVATURE_CHOICES)
  estimate = functools.partial(
    fractal_optax.estimate_curvature,
    problem.fns.data_loss,
    num_iterations=iterations,
    key=jax.random.key(seed),
    l2_regularization=problem.l2,
  )
  at_init = estimate(problem.params, problem.data)
  at_opt = estimate(params_star, problem.data)
  estimated = max(float(at_init.max_curvature), float(at_opt.max_curvature))
  bound = global_max_curvature(problem)
  max_curvature = estimated if choice == "estimate" else bound
  return {
    "min_curvature": problem.l2,
    "max_curvature": max_curvature,
    "max_curvature_choice": choice,
    "max_curvature_estimate": estimated,
    "max_curvature_at_init": float(at_init.max_curvature),
    "max_curvature_at_optimum": float(at_opt.max_curvature),
    "max_curvature_global_bound": bound,
    "estimated_min_curvature_at_init": float(at_init.min_curvature),
    "kappa": max_curvature / problem.l2,
  }


def bound_cycle_length(m: float, M: float, epsilon: float) -> int:
  """Smallest T with ``chebyshev_error_bound(T, m, M)^2 <= epsilon`` (on a
  quadratic the loss gap is the squared error)."""
  return fractal_optax.chebyshev_num_steps(m, M, math.sqrt(epsilon))


def short_cycle_length(kappa: float) -> int:
  """The power of two nearest sqrt(kappa) / 2 (at least 2)."""
  return max(2, 2 ** round(math.log2(max(math.sqrt(kappa) / 2, 1.0))))


def setup(
  config: Config,
  dataset: input_pipeline.Dataset,
  l2: float,
  store: resume.Store,
) -> tuple[models.Problem, dict[str, Any]]:
  """``(problem, numbers)`` at ``l2``; the numbers (f0, L-BFGS f*, curvature,
  cycle lengths, bound) are the stored unit ``setup,l2=<l2>``."""
  problem = models.build_problem(dataset, l2)

  def compute():
    t0 = time.perf_counter()
    params_star, value, gnorm, iters = reference_optimum(
      problem, config.lbfgs_steps
    )
    lbfgs = {
      "value": value,
      "grad_norm": gnorm,
      "iterations": iters,
      "seconds": time.perf_counter() - t0,
    }
    curv = curvature(
      problem,
      params_star,
      config.curvature_iterations,
      config.seed,
      config.max_curvature,
    )
    m, M = curv["min_curvature"], curv["max_curvature"]
    bound_cycle = config.bound_cycle or bound_cycle_length(m, M, config.epsilon)
    return {
      "f0": float(problem.evaluate(problem.params)["loss"]),
      "lbfgs": lbfgs,
      "curvature": curv,
      "bound_cycle": bound_cycle,
      "short_cycle": config.short_cycle or short_cycle_length(M / m),
      "bound": fractal_optax.chebyshev_error_bound(bound_cycle, m, M),
    }

  return problem, store.compute(f"setup,l2={l2:g}", compute)


class Method(NamedTuple):
  """An optimiser to compare and what its steps log.

  ``tx.update`` also receives ``value``, ``grad`` and ``value_fn``;
  ``learning_rate(opt_state, t)`` is logged for update t;
  ``evaluations(opt_state, t)`` is the number of gradient evaluations spent
  by updates 0 ... t (an HVP counts 2; None: one per update); ``extra``
  (opt_state) -> more scalars logged per step (None: none).
  """

  name: str
  label: str
  tx: optax.GradientTransformation
  learning_rate: Callable[[Any, jax.Array], jax.Array]
  hparams: dict[str, Any]
  evaluations: Callable[[Any, jax.Array], jax.Array] | None = None
  extra: Callable[[Any], dict[str, jax.Array]] | None = None


def _constant_rate(lr: float) -> Callable[[Any, jax.Array], jax.Array]:
  return lambda _, t: jnp.full(jnp.shape(t), lr, jnp.float32)


def make_methods(config: Config, numbers: Mapping[str, Any]) -> list[Method]:
  """The compared methods, constant steps first (their M is the estimate,
  so the best constant does not change with ``max_curvature``)."""
  curv = numbers["curvature"]
  m, M = curv["min_curvature"], curv["max_curvature"]
  methods = []
  for c in sorted(set(config.constant_grid) | {1.0}):
    lr = c / curv["max_curvature_estimate"]
    methods.append(
      Method(
        "gd" if c == 1.0 else f"constant_{c:g}",
        "GD 1/M" if c == 1.0 else f"constant {c:g}/M",
        baselines.constant(m, curv["max_curvature_estimate"], c),
        _constant_rate(lr),
        {"learning_rate": lr, "multiple_of_1/M": c},
      )
    )
  for name, label, constants in (
    ("heavy_ball", "heavy ball", baselines.heavy_ball_constants),
    ("nesterov", "Nesterov", baselines.nesterov_constants),
  ):
    lr, momentum = constants(m, M)
    methods.append(
      Method(
        name,
        label,
        baselines.BASELINES[name](m, M),
        _constant_rate(lr),
        {"learning_rate": lr, "momentum": momentum},
      )
    )
  for name, cycle, suffix in (
    ("fractal", numbers["bound_cycle"], "(bound)"),
    ("fractal_short", numbers["short_cycle"], "repeated"),
  ):
    schedule = fractal_optax.fractal_chebyshev_schedule(cycle, m, M)
    methods.append(
      Method(
        name,
        f"fractal T={cycle} {suffix}",
        baselines.fractal(cycle, m, M),
        lambda _, t, schedule=schedule: schedule(t),
        {
          "cycle_length": cycle,
          "min_curvature": m,
          "max_curvature": M,
          "largest_step": float(
            fractal_optax.chebyshev_step_sizes(cycle, m, M)[0]
          ),
        },
      )
    )
  methods.append(adaptive_method(config, m))
  return methods


def adaptive_method(
  config: Config, l2: float, seed: int | None = None
) -> Method:
  """``adaptive_fractal_sgd`` with m = lambda and no M guess; its cost is
  ``count + num_value_evals + 2 num_hvps`` (the start's Lanczos included).
  ``seed`` (default: the first of ``config.adaptive_seeds``) is its Lanczos
  start vector's.

  The logged rate is the state's ``step_size``, the step the update took
  (after a rejection: the first step of the repaired cycle).
  """
  kw = (
    {"num_steps": config.adaptive_num_steps}
    if config.adaptive_num_steps
    else {}
  )
  seed = config.adaptive_seeds[0] if seed is None else seed
  tx = fractal_optax.adaptive_fractal_sgd(**kw, l2_regularization=l2, seed=seed)
  cycle = (
    config.adaptive_num_steps
    or inspect.signature(fractal_optax.adaptive_fractal_sgd)
    .parameters["num_steps"]
    .default
  )

  return Method(
    "adaptive",
    f"adaptive fractal T={cycle}",
    tx,
    lambda s, _: s.step_size.astype(jnp.float32),
    {"cycle_length": cycle, "l2_regularization": l2, "seed": seed},
    lambda s, _: baselines.adaptive_evaluations(s),
    lambda s: {
      "rejections": s.num_rejected,
      "max_curvature": s.max_curvature,
      "min_curvature_eff": s.min_curvature,
    },
  )


def make_chunk_fn(
  problem: models.Problem, method: Method
) -> train_loop.ChunkFn:
  """``(state, start, n) -> (state, metrics)``: n full-batch steps, jitted."""
  step = _step_fn(method)
  evaluations = method.evaluations or (lambda _, t: t + 1)

  @jax.jit
  def scan(state, steps, data):
    fn = lambda p: problem.objective(p, data)

    def body(state, t):
      loss, grads, params, opt_state = step(
        fn, state["params"], state["opt_state"]
      )
      metrics = {
        "loss": loss,
        "learning_rate": method.learning_rate(opt_state, t),
        "grad_norm": optax.tree.norm(grads),
        "evaluations": evaluations(opt_state, t),
        **(method.extra(opt_state) if method.extra else {}),
      }
      return {"params": params, "opt_state": opt_state}, metrics

    return jax.lax.scan(body, state, steps)

  def chunk_fn(state, start, n):
    return scan(
      state, jnp.arange(start, start + n, dtype=jnp.int32), problem.data
    )

  return chunk_fn


def _step_fn(method: Method) -> Callable[..., Any]:
  """``(fn, params, opt_state) -> (loss, grads, params, opt_state)``."""
  tx = optax.with_extra_args_support(method.tx)

  def step(fn, params, opt_state):
    loss, grads = jax.value_and_grad(fn)(params)
    updates, opt_state = tx.update(
      grads, opt_state, params, value=loss, grad=grads, value_fn=fn
    )
    return loss, grads, optax.apply_updates(params, updates), opt_state

  return step


def _target_runner(graphdef: Any, method: Method) -> Callable[..., Any]:
  objective = models.loss_functions(graphdef).objective
  step = _step_fn(method)

  @jax.jit
  def run(params, data, l2, target, max_steps):
    fn = lambda p: objective(p, data, l2)

    def body(carry):
      loss, _, params, opt_state = step(fn, *carry[:2])
      return params, opt_state, carry[2] + 1, loss

    cond = lambda c: (c[2] < max_steps) & ~(c[3] <= target)
    init = (params, method.tx.init(params), jnp.int32(0), jnp.float32(jnp.inf))
    return jax.lax.while_loop(cond, body, init)[2:]

  return run


def time_to_target(
  problem: models.Problem,
  method: Method,
  target: float,
  max_steps: int,
  repeats: int = 3,
) -> dict[str, Any]:
  """Wall time of ``method`` until its loss is ``<= target``: compiled first,
  then the fastest of ``repeats`` runs (the machine is shared). The loop
  stops one update after the loss at the iterate reached ``target`` (the
  loss comes with that iterate's gradient), so it times ``steps`` + 1
  gradient steps. Returns ``{"seconds", "steps"}`` (None if never)."""
  run = _target_runner(problem.graphdef, method)
  args = (
    problem.params,
    problem.data,
    jnp.float32(problem.l2),
    jnp.float32(target),
  )
  jax.block_until_ready(run(*args, jnp.int32(1)))  # Compiles.
  seconds = math.inf
  for _ in range(repeats):
    t0 = time.perf_counter()
    steps, loss = jax.block_until_ready(run(*args, jnp.int32(max_steps)))
    seconds = min(seconds, time.perf_counter() - t0)
  reached = bool(loss <= target)
  return {
    "seconds": seconds if reached else None,
    "steps": int(steps) - 1 if reached else None,
  }


def steps_to(relative: np.ndarray, epsilon: float) -> int | None:
  """First index with ``relative <= epsilon`` (None if never)."""
  hit = np.nonzero(relative <= epsilon)[0]
  return int(hit[0]) if hit.size else None


def analyse(
  losses: np.ndarray, f_star: float, epsilon: float
) -> dict[str, Any]:
  """Statistics of a loss curve ``f_0 ... f_N`` (f_t after t updates).

  ``steps_to_epsilon`` (first hit), ``steps_to_epsilon_stay`` (always below
  from then on), final/min relative gap, ``diverged``; over the descent phase
  (steps 1 ... steps_to_epsilon, or all; later, float rounding dominates) the
  fraction of loss-increasing steps, the largest factor by which a step
  multiplied f - f* and the largest f_t / f_{t-1}; and the fraction of
  loss-increasing steps up to the first gap <= ``NOISE_FLOOR``.
  """
  losses = np.asarray(losses, dtype=np.float64)
  relative = (losses - f_star) / (losses[0] - f_star)
  finite = np.isfinite(relative)
  first = steps_to(np.where(finite, relative, np.inf), epsilon)
  above = np.nonzero(~(finite & (relative <= epsilon)))[0]
  stay = None
  if first is not None and (above.size == 0 or above[-1] < len(losses) - 1):
    stay = int(above[-1] + 1) if above.size else 0
  end = first if first is not None else len(losses) - 1
  prev, cur = losses[:end], losses[1 : end + 1]
  with np.errstate(all="ignore"):
    increased = cur > prev
    gap_ratio = (cur - f_star) / (prev - f_star)
    loss_ratio = cur / prev
  largest = lambda r: (
    float(np.nanmax(np.where(increased, r, np.nan))) if increased.any() else 1.0
  )
  floor = steps_to(np.where(finite, relative, np.inf), NOISE_FLOOR)
  floor = len(losses) - 1 if floor is None else floor
  return {
    "steps_to_epsilon": first,
    "steps_to_epsilon_stay": stay,
    "final_relative_suboptimality": float(relative[-1]),
    "min_relative_suboptimality": float(np.nanmin(relative)),
    "diverged": bool(not finite[-1] or relative[-1] > DIVERGED),
    "descent_phase_steps": int(end),
    "fraction_loss_increasing": float(np.mean(increased)) if end else 0.0,
    "largest_suboptimality_increase": largest(gap_ratio),
    "largest_loss_ratio": largest(loss_ratio),
    "fraction_loss_increasing_to_floor": float(
      np.mean(losses[1 : floor + 1] > losses[:floor])
    )
    if floor
    else 0.0,
  }


def best_constant(
  results: Mapping[str, Mapping[str, Any]], names: Sequence[str]
) -> str:
  """The name reaching epsilon first (then: the lowest final gap)."""
  return min(
    names,
    key=lambda n: (
      results[n]["steps_to_epsilon"] is None,
      results[n]["steps_to_epsilon"] or 0,
      np.nan_to_num(results[n]["final_relative_suboptimality"], nan=np.inf),
    ),
  )


def _ratio(num: float | None, den: float | None) -> float | None:
  return None if num is None or den is None or den == 0 else num / den


# Ratios of these methods are reported; the most evaluations they may take,
# as a multiple of Nesterov's (issue 11: the adaptive's goal is 1).
NESTEROV_LIMIT = {"fractal": 1.5, "fractal_short": 1.5, "adaptive": 1.0}


def method_ratios(
  results: Mapping[str, Mapping[str, Any]], best: str, name: str
) -> dict[str, float | None]:
  """``name``'s cost against the best constant and Nesterov, in gradient
  evaluations and (where timed) seconds to epsilon."""
  ev = lambda n: results[n]["evaluations_to_epsilon"]
  sec = lambda n: results[n].get("seconds_to_epsilon")
  return {
    "speedup_vs_best_constant": _ratio(ev(best), ev(name)),
    "evaluations_over_nesterov": _ratio(ev(name), ev("nesterov")),
    "time_speedup_vs_best_constant": _ratio(sec(best), sec(name)),
    "time_over_nesterov": _ratio(sec(name), sec("nesterov")),
  }


def loss_curve(records: Sequence[Mapping[str, Any]]) -> np.ndarray:
  """``f_t`` for ``t = 0 ... N`` from a run's metrics records."""
  steps, values = metrics_lib.metrics_arrays(records, "loss")
  if not np.array_equal(steps, np.arange(len(steps))):
    raise ValueError(f"Metrics are not one record per step: {steps[:10]}...")
  return values


def summarise(
  config: Config,
  problem: models.Problem,
  numbers: Mapping[str, Any],
  methods: Sequence[Method],
  records: Mapping[str, Sequence[Mapping[str, Any]]],
) -> dict[str, Any]:
  """Per-method statistics, the best constant step, ratios and targets."""
  curv = numbers["curvature"]
  losses = {name: loss_curve(r) for name, r in records.items()}
  lowest = min(float(np.nanmin(v)) for v in losses.values())
  f_star = min(numbers["lbfgs"]["value"], lowest)
  results = {}
  target = f_star + config.epsilon * (numbers["f0"] - f_star)
  for method in methods:
    stats = analyse(losses[method.name], f_star, config.epsilon)
    if stats["steps_to_epsilon"] is not None:  # Wall time, compiled.
      timed = time_to_target(problem, method, target, config.num_steps)
      stats.update(
        seconds_to_epsilon=timed["seconds"],
        timed_steps_to_epsilon=timed["steps"],
      )
    run = records[method.name]
    _, rates = metrics_lib.metrics_arrays(run, "learning_rate")
    _, evals = metrics_lib.metrics_arrays(run, "evaluations")
    end, first = stats["descent_phase_steps"], stats["steps_to_epsilon"]
    stats.update(
      label=method.label,
      hparams=method.hparams,
      fraction_steps_above_2_over_M=float(
        np.mean(  # float32 rounding.
          rates[:end] > 2 / curv["max_curvature"] * (1 + 1e-6)
        )
      )
      if end
      else 0.0,
      evaluations_to_epsilon=None
      if first is None
      else (int(evals[first - 1]) if first else 0),
      test_accuracy=run[-1].get("test_accuracy"),
      train_accuracy=run[-1].get("train_accuracy"),
      final_loss=run[-1].get("loss"),
      final_evaluations=int(evals[-1]),
    )
    if method.extra:
      stats.update(
        {k: run[-2][k] for k in method.extra(method.tx.init(problem.params))}
      )
    results[method.name] = stats
  best = best_constant(
    results, [m.name for m in methods if "multiple_of_1/M" in m.hparams]
  )
  ratios = {name: method_ratios(results, best, name) for name in NESTEROV_LIMIT}
  targets = {
    name: {
      "speedup_vs_best_constant_at_least_3": (
        ratios[name]["speedup_vs_best_constant"] or 0
      )
      >= 3,
      "nesterov_limit": limit,
      "within_limit_of_nesterov": (
        ratios[name]["evaluations_over_nesterov"] or math.inf
      )
      <= limit,
      "fraction_loss_increasing": results[name]["fraction_loss_increasing"],
    }
    for name, limit in NESTEROV_LIMIT.items()
  }
  return {
    "experiment": "logreg",
    "config": config_lib.to_dict(config),
    "dataset": {
      "name": problem.dataset,
      "num_train": int(problem.data[0].shape[0]),
      "num_test": int(problem.data[2].shape[0]),
      "num_features": int(problem.data[0].shape[1]),
    },
    "curvature": curv,
    "f0": numbers["f0"],
    "f_star": f_star,
    "f_star_source": "lbfgs"
    if f_star == numbers["lbfgs"]["value"]
    else "lowest loss of a method",
    "lbfgs": numbers["lbfgs"],
    "bound_cycle": numbers["bound_cycle"],
    "short_cycle": numbers["short_cycle"],
    "chebyshev_bound_squared": numbers["bound"] ** 2,
    "stability_limit_2_over_M": 2 / curv["max_curvature"],
    "noise_floor": NOISE_FLOOR,
    "best_constant": best,
    "methods": results,
    "ratios": ratios,
    "targets": targets,
    "environment": files.environment(),
  }


def train_and_evaluate(
  config: Config, workdir: str, *, command: str = ""
) -> dict[str, Any]:
  """Runs (or resumes) every method; returns the summary. Writes
  ``runs/<method>/metrics.jsonl`` (and ``checkpoints/``), ``results.md``,
  ``figure5.png`` and, last, ``summary.json`` (with ``command``, the
  command line)."""
  if config.mode != "compare":
    raise ValueError(
      "train_and_evaluate runs mode='compare' (the sweep is "
      f"benchmarks.logreg.sweep.run_sweep), got {config.mode=}."
    )
  start = time.perf_counter()
  store = resume.Store(workdir, config)
  files.remove_summary(workdir)
  problem, numbers = setup(config, load_data(config), config.l2, store)
  methods = make_methods(config, numbers)
  evaluate = lambda state: problem.evaluate(state["params"])
  records = {}
  for method in methods:
    run_dir = os.path.join(workdir, "runs", method.name)
    state = {
      "params": problem.params,
      "opt_state": method.tx.init(problem.params),
    }
    train_loop.run_loop(
      state,
      make_chunk_fn(problem, method),
      num_steps=config.num_steps,
      workdir=run_dir,
      checkpoint_every=config.checkpoint_every,
      eval_fn=evaluate,
      eval_every=config.eval_every,
      progress=config.progress,
      desc=method.name,
    )
    records[method.name] = metrics_lib.read_metrics(
      os.path.join(run_dir, metrics_lib.METRICS_FILE)
    )
  summary = summarise(config, problem, numbers, methods, records)
  summary["seconds"] = time.perf_counter() - start  # This invocation only.
  summary["command"] = command
  markdown = report.results_markdown(summary)
  files.write_text(os.path.join(workdir, "results.md"), markdown)
  report.plot_figure5(os.path.join(workdir, "figure5.png"), summary, records)
  files.write_summary(workdir, summary)
  store.clear()
  print(
    markdown + f"\nWritten to {workdir}/ (summary.json, results.md, "
    "figure5.png, runs/*/metrics.jsonl).",
    flush=True,
  )
  return summary
