"""Logistic regression on MNIST with fractal and classical step sizes.

The paper's Figure 5: full-batch gradient descent on

.. math::

  f(\\theta) = \\frac{1}{n} \\sum_i \\mathrm{CE}(W^\\top x_i + b, y_i)
    + \\frac{\\lambda}{2} \\lVert \\theta \\rVert^2,
  \\qquad \\theta = (W, b),

a convex, non-quadratic loss. Its Hessian is at least ``m = lambda`` (cross-
entropy is convex; the logits are invariant to a shift common to all
classes, so ``lambda`` is attained). ``M`` is, by default, the larger of the
``fractal_optax.estimate_curvature`` bounds at the start and at the optimum;
the Hessian can exceed it elsewhere on a trajectory. ``max_curvature=global``
uses instead ``lambda + lambda_max(X~^T X~ / n) / 2``, valid everywhere
(about five times larger).

Methods, each run as jitted ``lax.scan`` chunks through ``harness.run_loop``
(per-step metrics, checkpoints, resume):

* ``gd``: constant step 1/M;
* ``constant_<c>``: constant step c/M for ``c`` in ``constant_grid``; the one
  reaching the target first is reported as ``best_constant``;
* ``heavy_ball``: ``optax.sgd(4 / (sqrt(M) + sqrt(m))^2, momentum=rho^2)``;
* ``nesterov``: ``optax.sgd(1/M, momentum=rho, nesterov=True)``, with
  ``rho = (sqrt(kappa) - 1) / (sqrt(kappa) + 1)``;
* ``fractal``: ``fractal_optax.fractal_sgd`` with the cycle length T that the
  Chebyshev bound asks for (``bound(T)^2 <= epsilon``: on a quadratic,
  (f_T - f*) / (f_0 - f*) <= bound(T)^2), repeated if the run is longer;
* ``fractal_short``: a shorter cycle (the power of two nearest
  sqrt(kappa) / 2) repeated.

The reference optimum f* is the lower of a long ``optax.lbfgs`` run and the
lowest loss any method reached. The relative suboptimality is
``r_t = (f_t - f*) / (f_0 - f*)``; "steps to epsilon" is the first ``t`` with
``r_t <= epsilon``.

Example::

  from benchmarks.logreg import configs, train
  summary = train.train_and_evaluate(configs.get_config("quick"), "/tmp/lr")
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import fractal_optax
from benchmarks import harness
from benchmarks import input_pipeline
from benchmarks import io_utils
from benchmarks.logreg import configs
from benchmarks.logreg import models

Config = configs.Config
Data = tuple[jax.Array, jax.Array, jax.Array, jax.Array]

# A relative suboptimality above this (or non-finite) at the end: diverged.
DIVERGED = 1.0
# Relative suboptimality well above float32 rounding of f (about 2e-8 here):
# loss increases are also counted up to the first step below it.
NOISE_FLOOR = 1e-6


# ---------------------------------------------------------------------------
# Problem.
# ---------------------------------------------------------------------------


class LossFunctions(NamedTuple):
  """Pure functions of one model structure (cached per ``graphdef``).

  ``l2`` is an argument, not a constant, so the compiled programs built on
  them are reused across lambdas.
  """

  data_loss: Callable[[Any, Data], jax.Array]
  objective: Callable[[Any, Data, Any], jax.Array]
  metrics: Callable[[Any, Data, Any], dict[str, jax.Array]]


@functools.lru_cache(maxsize=None)
def loss_functions(graphdef: Any) -> LossFunctions:
  """The data loss, the regularised objective and the evaluation metrics."""

  def data_loss(params, data):
    logits = nnx.merge(graphdef, params)(data[0])
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, data[1])
    return jnp.mean(ce)

  def objective(params, data, l2):
    sq = sum(jnp.sum(jnp.square(p)) for p in jax.tree.leaves(params))
    return data_loss(params, data) + 0.5 * l2 * sq

  def metrics(params, data, l2):
    model = nnx.merge(graphdef, params)
    acc = lambda x, y: jnp.mean(jnp.argmax(model(x), -1) == y)
    return {"loss": objective(params, data, l2),
            "train_accuracy": acc(data[0], data[1]),
            "test_accuracy": acc(data[2], data[3])}

  return LossFunctions(data_loss, objective, metrics)


@dataclasses.dataclass(frozen=True, eq=False)
class Problem:
  """Data and model of one regularised logistic regression.

  Attributes:
    graphdef: the model's static graph (``nnx.split``).
    params: initial parameters (all zero).
    data: ``(x_train, y_train, x_test, y_test)``, pixels scaled to [0, 1].
    l2: the L2 strength lambda.
    dataset: dataset name.
  """

  graphdef: Any
  params: Any
  data: Data
  l2: float
  dataset: str

  @property
  def fns(self) -> LossFunctions:
    return loss_functions(self.graphdef)

  def data_loss(self, params: Any, data: Data) -> jax.Array:
    """Mean cross-entropy on the training set (no regularisation)."""
    return self.fns.data_loss(params, data)

  def objective(self, params: Any, data: Data) -> jax.Array:
    """``data_loss + l2 / 2 * |params|^2`` (all parameters regularised)."""
    return self.fns.objective(params, data, self.l2)

  def evaluate(self, params: Any) -> dict[str, float]:
    """Objective and train/test accuracy at ``params`` (jitted, cached)."""
    return _jitted_metrics(self.graphdef)(params, self.data, self.l2)


@functools.lru_cache(maxsize=None)
def _jitted_metrics(graphdef: Any) -> Callable[..., dict[str, jax.Array]]:
  return jax.jit(loss_functions(graphdef).metrics)


def load_data(config: Config) -> input_pipeline.Dataset:
  """The configured dataset, cut to ``num_train`` / ``num_test``."""
  ds = input_pipeline.load_dataset(config.dataset, config.data_dir)
  return input_pipeline.take(ds, config.num_train or None,
                             config.num_test or None)


def build_problem(dataset: input_pipeline.Dataset, l2: float) -> Problem:
  """Flattens and scales the images, builds the zero-initialised model."""
  if not l2 > 0:
    raise ValueError(f"l2 must be positive (it is the curvature lower bound "
                     f"m), got {l2=}.")
  flat = lambda im: jnp.asarray(im.reshape(im.shape[0], -1), jnp.float32) / 255
  data = (flat(dataset.train_images), jnp.asarray(dataset.train_labels),
          flat(dataset.test_images), jnp.asarray(dataset.test_labels))
  model = models.LogisticRegression(data[0].shape[1], dataset.num_classes)
  graphdef, params = nnx.split(model, nnx.Param)
  return Problem(graphdef, params, data, float(l2), dataset.name)


@functools.lru_cache(maxsize=None)
def _lbfgs_solver(graphdef: Any, num_steps: int, tol: float
                  ) -> Callable[..., Any]:
  """A jitted L-BFGS loop for one model structure (l2 is an argument)."""
  objective = loss_functions(graphdef).objective
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
      updates, state = opt.update(grad, state, params, value=value, grad=grad,
                                  value_fn=fn)
      gnorm = optax.tree.norm(grad)
      better = jnp.isfinite(value) & (value < best[1])
      best = jax.tree.map(lambda new, old: jnp.where(better, new, old),
                          (params, value, gnorm), best)
      return optax.apply_updates(params, updates), state, it + 1, best, gnorm

    inf = jnp.asarray(jnp.inf, jnp.float32)
    init = (params, opt.init(params), 0, (params, inf, inf), inf)
    _, _, it, best, _ = jax.lax.while_loop(cond, body, init)
    return best, it

  return solve


def reference_optimum(problem: Problem, num_steps: int,
                      tol: float = 1e-7) -> tuple[Any, float, float, int]:
  """Minimises the objective with ``optax.lbfgs`` (zoom line search).

  Stops after ``num_steps`` iterations, once the gradient norm is below
  ``tol``, or when the line search stalls (non-finite gradient norm).

  Args:
    problem: the problem.
    num_steps: most L-BFGS iterations.
    tol: gradient-norm tolerance.

  Returns:
    ``(params, value, grad_norm, iterations)`` of the best finite iterate.
  """
  solve = _lbfgs_solver(problem.graphdef, int(num_steps), float(tol))
  (params, value, gnorm), it = solve(problem.params, problem.data,
                                     jnp.float32(problem.l2))
  return params, float(value), float(gnorm), int(it)


def global_max_curvature(problem: Problem) -> float:
  """An upper bound of the Hessian valid at every point, not just one.

  With augmented inputs x~ = (x, 1) and S = X~^T X~ / n, the data-loss
  Hessian is (1/n) sum_i (diag(p_i) - p_i p_i^T) (x) x~_i x~_i^T, and by
  Gershgorin the softmax block has eigenvalues at most
  max_k 2 p_k (1 - p_k) <= 1/2, so lambda_max <= lambda + lambda_max(S) / 2.
  (At zero parameters the softmax block is (I - 11^T/K)/K: the bound is
  about K/2 times the curvature measured there.)
  """
  import scipy.linalg  # pylint: disable=g-import-not-at-top

  x = np.asarray(problem.data[0], np.float64)
  x = np.concatenate([x, np.ones((x.shape[0], 1))], axis=1)
  d = x.shape[1]
  (top,) = scipy.linalg.eigvalsh(x.T @ x / x.shape[0],
                                 subset_by_index=[d - 1, d - 1])
  return problem.l2 + 0.5 * float(top)


MAX_CURVATURE_CHOICES = ("estimate", "global")


def curvature(problem: Problem, params_star: Any, iterations: int,
              seed: int, choice: str = "estimate") -> dict[str, float]:
  """m = lambda; M estimated (start and optimum) or the global bound.

  ``estimate_curvature`` sees the data loss and adds the L2 term itself
  (``l2_regularization``), so its lower bound is at least lambda.

  Args:
    problem: the problem.
    params_star: the (approximate) optimum.
    iterations: Lanczos iterations.
    seed: PRNG seed of the start vector.
    choice: ``"estimate"``: M is the larger ``estimate_curvature`` bound at
      the start and at the optimum (``max_curvature_estimate``);
      ``"global"``: ``global_max_curvature``, valid along any trajectory.

  Returns:
    A dict with ``min_curvature``, ``max_curvature`` (the M used by the
    schedules and momentum methods), ``max_curvature_estimate`` (the
    reference of the constant-step grid, whatever ``choice`` is), the
    individual estimates and ``kappa``.
  """
  if choice not in MAX_CURVATURE_CHOICES:
    raise ValueError(f"max_curvature must be one of {MAX_CURVATURE_CHOICES}, "
                     f"got {choice=}.")
  key = jax.random.key(seed)
  estimate = functools.partial(
      fractal_optax.estimate_curvature, problem.fns.data_loss,
      num_iterations=iterations, key=key, l2_regularization=problem.l2)
  at_init = estimate(problem.params, problem.data)
  at_opt = estimate(params_star, problem.data)
  estimated = max(float(at_init.max_curvature), float(at_opt.max_curvature))
  bound = global_max_curvature(problem)
  max_curvature = estimated if choice == "estimate" else bound
  return {"min_curvature": problem.l2, "max_curvature": max_curvature,
          "max_curvature_choice": choice,
          "max_curvature_estimate": estimated,
          "max_curvature_at_init": float(at_init.max_curvature),
          "max_curvature_at_optimum": float(at_opt.max_curvature),
          "max_curvature_global_bound": bound,
          "estimated_min_curvature_at_init": float(at_init.min_curvature),
          "kappa": max_curvature / problem.l2}


def bound_cycle_length(min_curvature: float, max_curvature: float,
                       epsilon: float) -> int:
  """Smallest T with ``chebyshev_error_bound(T, m, M)^2 <= epsilon``.

  On a quadratic the loss gap is the squared error, hence the square.
  """
  return fractal_optax.chebyshev_num_steps(min_curvature, max_curvature,
                                           math.sqrt(epsilon))


def short_cycle_length(kappa: float) -> int:
  """The power of two nearest sqrt(kappa) / 2 (at least 2)."""
  return max(2, 2 ** round(math.log2(max(math.sqrt(kappa) / 2, 1.0))))


# ---------------------------------------------------------------------------
# Methods.
# ---------------------------------------------------------------------------


class Method(NamedTuple):
  """An optimiser to compare, with its learning-rate sequence for the log."""

  name: str
  label: str
  tx: optax.GradientTransformation
  learning_rate: Callable[[jax.Array], jax.Array]
  hparams: dict[str, Any]


def _constant(value: float) -> Callable[[jax.Array], jax.Array]:
  return lambda t: jnp.full(jnp.shape(t), value, jnp.float32)


def make_methods(config: Config, m: float, M: float,
                 bound_cycle: int, short_cycle: int,
                 grid_curvature: float | None = None) -> list[Method]:
  """The compared methods (see the module docstring).

  Args:
    config: the configuration (``constant_grid``).
    m: lower curvature bound (lambda).
    M: upper curvature bound of the momentum methods and fractal schedules.
    bound_cycle: cycle length of ``fractal``.
    short_cycle: cycle length of ``fractal_short``.
    grid_curvature: the M of the constant steps c/M (default ``M``); kept at
      the estimate when ``M`` is the global bound, so the best-constant
      reference does not change with that choice.

  Returns:
    The methods, constant steps first.
  """
  kappa = M / m
  rho = (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)
  grid_curvature = M if grid_curvature is None else grid_curvature
  methods = []
  for c in sorted(set(config.constant_grid) | {1.0}):
    lr = c / grid_curvature
    name = "gd" if c == 1.0 else f"constant_{c:g}"
    label = "GD 1/M" if c == 1.0 else f"constant {c:g}/M"
    methods.append(Method(name, label, optax.sgd(lr), _constant(lr),
                          {"learning_rate": lr, "multiple_of_1/M": c}))
  lr_hb = 4 / (math.sqrt(M) + math.sqrt(m)) ** 2
  methods.append(Method(
      "heavy_ball", "heavy ball", optax.sgd(lr_hb, momentum=rho ** 2),
      _constant(lr_hb), {"learning_rate": lr_hb, "momentum": rho ** 2}))
  methods.append(Method(
      "nesterov", "Nesterov", optax.sgd(1 / M, momentum=rho, nesterov=True),
      _constant(1 / M), {"learning_rate": 1 / M, "momentum": rho}))
  for name, cycle in (("fractal", bound_cycle), ("fractal_short", short_cycle)):
    methods.append(Method(
        name, f"fractal T={cycle}" + (" (bound)" if name == "fractal" else
                                      " repeated"),
        fractal_optax.fractal_sgd(cycle, m, M),
        fractal_optax.fractal_chebyshev_schedule(cycle, m, M),
        {"cycle_length": cycle, "min_curvature": m, "max_curvature": M,
         "largest_step": float(
             fractal_optax.chebyshev_step_sizes(cycle, m, M)[0])}))
  return methods


def make_chunk_fn(problem: Problem, method: Method) -> harness.ChunkFn:
  """``(state, start, n) -> (state, metrics)``: n full-batch steps, jitted."""

  @jax.jit
  def scan(state, steps, data):
    def body(state, t):
      loss, grads = jax.value_and_grad(problem.objective)(state["params"], data)
      updates, opt_state = method.tx.update(grads, state["opt_state"],
                                            state["params"])
      params = optax.apply_updates(state["params"], updates)
      metrics = {"loss": loss, "learning_rate": method.learning_rate(t),
                 "grad_norm": optax.tree.norm(grads)}
      return {"params": params, "opt_state": opt_state}, metrics
    return jax.lax.scan(body, state, steps)

  def chunk_fn(state, start, n):
    return scan(state, jnp.arange(start, start + n, dtype=jnp.int32),
                problem.data)

  return chunk_fn


# ---------------------------------------------------------------------------
# Analysis.
# ---------------------------------------------------------------------------


def steps_to(relative: np.ndarray, epsilon: float) -> int | None:
  """First index with ``relative <= epsilon`` (None if never)."""
  hit = np.nonzero(relative <= epsilon)[0]
  return int(hit[0]) if hit.size else None


def analyse(losses: np.ndarray, f_star: float, epsilon: float
            ) -> dict[str, Any]:
  """Steps to epsilon and the loss-increase statistics of one loss curve.

  Args:
    losses: ``f_t`` for ``t = 0 ... N`` (the iterate after ``t`` updates).
    f_star: the reference optimum.
    epsilon: target relative suboptimality.

  Returns:
    A dict: ``steps_to_epsilon`` (first hit), ``steps_to_epsilon_stay``
    (from then on always below), final/min relative suboptimality,
    ``diverged``, and over the descent phase (steps ``1 ...
    steps_to_epsilon``, or the whole run if it never gets there; afterwards
    float rounding makes increases meaningless): the fraction of steps that
    increased the loss, the largest factor by which one step multiplied
    ``f - f*``, and the largest ``f_t / f_{t-1}``; plus the fraction of
    loss-increasing steps up to the first ``r_t <= NOISE_FLOOR``.
  """
  losses = np.asarray(losses, dtype=np.float64)
  gap0 = losses[0] - f_star
  relative = (losses - f_star) / gap0
  finite = np.isfinite(relative)
  first = steps_to(np.where(finite, relative, np.inf), epsilon)
  above = np.nonzero(~(finite & (relative <= epsilon)))[0]
  stay = None
  if first is not None and (above.size == 0 or above[-1] < len(losses) - 1):
    stay = int(above[-1] + 1) if above.size else 0
  end = first if first is not None else len(losses) - 1
  prev, cur = losses[:end], losses[1:end + 1]
  with np.errstate(all="ignore"):
    increased = cur > prev
    gap_ratio = (cur - f_star) / (prev - f_star)
    loss_ratio = cur / prev
  final = relative[-1]
  return {
      "steps_to_epsilon": first,
      "steps_to_epsilon_stay": stay,
      "final_relative_suboptimality": float(final),
      "min_relative_suboptimality": float(np.nanmin(relative)),
      "diverged": bool(not np.isfinite(final) or final > DIVERGED),
      "descent_phase_steps": int(end),
      "fraction_loss_increasing": float(np.mean(increased)) if end else 0.0,
      "largest_suboptimality_increase": float(np.nanmax(
          np.where(increased, gap_ratio, np.nan))) if increased.any() else 1.0,
      "largest_loss_ratio": float(np.nanmax(
          np.where(increased, loss_ratio, np.nan))) if increased.any() else 1.0,
      "fraction_loss_increasing_to_floor": _fraction_increasing(
          losses, steps_to(np.where(finite, relative, np.inf), NOISE_FLOOR)),
  }


def _fraction_increasing(losses: np.ndarray, end: int | None) -> float:
  """Fraction of the steps 1 ... end (all if None) that increased the loss."""
  end = len(losses) - 1 if end is None else end
  return float(np.mean(losses[1:end + 1] > losses[:end])) if end else 0.0


def _ratio(num: int | None, den: int | None) -> float | None:
  return None if num is None or den is None or den == 0 else num / den


# ---------------------------------------------------------------------------
# The experiment.
# ---------------------------------------------------------------------------


SETUP_FILE = "setup.json"


def setup(config: Config, dataset: input_pipeline.Dataset | None = None,
          l2: float | None = None, cache_dir: str | None = None
          ) -> dict[str, Any]:
  """Problem, reference optimum and curvature bounds for one lambda.

  Args:
    config: the configuration.
    dataset: the data (None: ``load_data(config)``).
    l2: lambda (None: ``config.l2``).
    cache_dir: if given, the numbers (f*, M, cycle lengths) are stored in
      ``cache_dir/setup.json`` and reused by a restarted run with the same
      config, so its hyperparameters match the checkpoints bit for bit.

  Returns:
    A dict: ``problem``, ``f0``, ``lbfgs``, ``curvature``, ``bound_cycle``,
    ``short_cycle``, ``bound``.
  """
  dataset = load_data(config) if dataset is None else dataset
  problem = build_problem(dataset, config.l2 if l2 is None else l2)
  path = cache_dir and os.path.join(cache_dir, SETUP_FILE)
  key = {"config": {k: v for k, v in harness.config_to_dict(config).items()
                    if k != "progress"}, "l2": problem.l2}
  if path and os.path.isfile(path):
    with open(path) as f:
      cached = json.load(f)
    if cached.pop("key") == key:
      return {"problem": problem, **cached}
  t0 = time.perf_counter()
  params_star, f_lbfgs, gnorm, iters = reference_optimum(
      problem, config.lbfgs_steps)
  t1 = time.perf_counter()
  curv = curvature(problem, params_star, config.curvature_iterations,
                   config.seed, config.max_curvature)
  m, M = curv["min_curvature"], curv["max_curvature"]
  bound_cycle = config.bound_cycle or bound_cycle_length(m, M, config.epsilon)
  short_cycle = config.short_cycle or short_cycle_length(M / m)
  numbers = {
      "f0": float(problem.evaluate(problem.params)["loss"]),
      "lbfgs": {"value": f_lbfgs, "grad_norm": gnorm, "iterations": iters,
                "seconds": t1 - t0},
      "curvature": curv, "bound_cycle": bound_cycle, "short_cycle": short_cycle,
      "bound": fractal_optax.chebyshev_error_bound(bound_cycle, m, M),
  }
  if path:
    io_utils.write_json(path, {"key": key, **numbers})
  return {"problem": problem, **numbers}


def train_and_evaluate(config: Config, workdir: str) -> dict[str, Any]:
  """Runs the configured experiment; writes its files under ``workdir``.

  ``mode="compare"`` writes ``runs/<method>/metrics.jsonl``, ``summary.json``,
  ``results.md`` and ``figure5.png``; ``mode="sweep"`` delegates to
  ``benchmarks.logreg.sweep.run_sweep``.

  Args:
    config: the configuration.
    workdir: output directory.

  Returns:
    The summary dict (also in ``summary.json``).
  """
  if config.mode == "sweep":
    from benchmarks.logreg import sweep  # pylint: disable=g-import-not-at-top
    return sweep.run_sweep(config, workdir)
  if config.mode != "compare":
    raise ValueError(f"mode must be 'compare' or 'sweep', got "
                     f"{config.mode=}.")
  start = time.perf_counter()
  harness.check_workdir_config(workdir, config)
  harness.remove_summary(workdir)
  info = setup(config, cache_dir=workdir)
  problem = info["problem"]
  curv = info["curvature"]
  m, M = curv["min_curvature"], curv["max_curvature"]
  methods = make_methods(config, m, M, info["bound_cycle"],
                         info["short_cycle"], curv["max_curvature_estimate"])
  evaluate = lambda state: problem.evaluate(state["params"])
  records = {}
  for method in methods:
    run_dir = os.path.join(workdir, "runs", method.name)
    state = {"params": problem.params,
             "opt_state": method.tx.init(problem.params)}
    harness.run_loop(
        state, make_chunk_fn(problem, method), num_steps=config.num_steps,
        workdir=run_dir, checkpoint_every=config.checkpoint_every,
        eval_fn=evaluate, eval_every=config.eval_every,
        progress=config.progress, desc=method.name)
    records[method.name] = harness.read_metrics(
        os.path.join(run_dir, harness.METRICS_FILE))
  summary = summarise(config, info, methods, records)
  summary["seconds"] = time.perf_counter() - start
  harness.write_summary(workdir, summary)
  markdown = results_markdown(summary)
  io_utils.write_text(os.path.join(workdir, "results.md"), markdown)
  print(markdown + f"\nWritten to {workdir}/ (summary.json, results.md, "
        "figure5.png, runs/*/metrics.jsonl).", flush=True)
  plot(os.path.join(workdir, "figure5.png"), summary, methods, records)
  return summary


def _losses(records: Sequence[Mapping[str, Any]]) -> np.ndarray:
  steps, values = harness.metrics_arrays(records, "loss")
  if not np.array_equal(steps, np.arange(len(steps))):
    raise ValueError(f"Metrics are not one record per step: {steps[:10]}...")
  return values


def summarise(config: Config, info: Mapping[str, Any],
              methods: Sequence[Method],
              records: Mapping[str, Sequence[Mapping[str, Any]]]
              ) -> dict[str, Any]:
  """Per-method statistics, the best constant step, ratios and targets."""
  M = info["curvature"]["max_curvature"]
  losses = {name: _losses(r) for name, r in records.items()}
  lowest = min(float(np.nanmin(v)) for v in losses.values())
  f_star = min(info["lbfgs"]["value"], lowest)
  results = {}
  for method in methods:
    stats = analyse(losses[method.name], f_star, config.epsilon)
    final = records[method.name][-1]
    _, rates = harness.metrics_arrays(records[method.name], "learning_rate")
    end = stats["descent_phase_steps"]
    stats.update(label=method.label, hparams=method.hparams,
                 fraction_steps_above_2_over_M=float(  # float32 rounding.
                     np.mean(rates[:end] > 2 / M * (1 + 1e-6))) if end else 0.0,
                 test_accuracy=final.get("test_accuracy"),
                 train_accuracy=final.get("train_accuracy"),
                 final_loss=final.get("loss"))
    results[method.name] = stats
  constants = [n.name for n in methods if "multiple_of_1/M" in n.hparams]
  key = lambda n: (results[n]["steps_to_epsilon"] is None,
                   results[n]["steps_to_epsilon"] or 0,
                   np.nan_to_num(results[n]["final_relative_suboptimality"],
                                 nan=np.inf))
  best = min(constants, key=key)
  steps = {n: results[n]["steps_to_epsilon"] for n in results}
  ratios = {}
  for name in ("fractal", "fractal_short"):
    ratios[name] = {
        "speedup_vs_best_constant": _ratio(steps[best], steps[name]),
        "steps_over_nesterov": _ratio(steps[name], steps["nesterov"]),
        "speedup_vs_gd": _ratio(steps["gd"], steps[name]),
    }
  targets = {
      name: {
          "speedup_vs_best_constant_at_least_3":
              (ratios[name]["speedup_vs_best_constant"] or 0) >= 3,
          "within_1.5x_of_nesterov":
              (ratios[name]["steps_over_nesterov"] or math.inf) <= 1.5,
          "fraction_loss_increasing": results[name][
              "fraction_loss_increasing"],
      } for name in ("fractal", "fractal_short")}
  curv = info["curvature"]
  return {
      "experiment": "logreg",
      "config": harness.config_to_dict(config),
      "dataset": {"name": info["problem"].dataset,
                  "num_train": int(info["problem"].data[0].shape[0]),
                  "num_test": int(info["problem"].data[2].shape[0]),
                  "num_features": int(info["problem"].data[0].shape[1])},
      "curvature": curv,
      "f0": info["f0"], "f_star": f_star,
      "f_star_source": "lbfgs" if f_star == info["lbfgs"]["value"] else
                       "lowest loss of a method",
      "lbfgs": info["lbfgs"],
      "bound_cycle": info["bound_cycle"], "short_cycle": info["short_cycle"],
      "chebyshev_bound_squared": info["bound"] ** 2,
      "stability_limit_2_over_M": 2 / curv["max_curvature"],
      "best_constant": best,
      "methods": results,
      "ratios": ratios,
      "targets": targets,
      "environment": io_utils.environment(),
  }


def _fmt(value: Any, digits: int = 3) -> str:
  if value is None:
    return "—"
  if isinstance(value, bool):
    return "yes" if value else "no"
  if isinstance(value, float):
    return f"{value:.{digits}g}"
  return str(value)


def results_markdown(summary: Mapping[str, Any]) -> str:
  """README-ready Markdown: setup, per-method table, ratios, targets."""
  c, cfg = summary["curvature"], summary["config"]
  ds = summary["dataset"]
  n = cfg["num_steps"]
  lines = [
      f"Dataset `{ds['name']}` ({ds['num_train']} train / {ds['num_test']} "
      f"test), λ = {cfg['l2']:g}, m = λ, M = {c['max_curvature']:.4g} "
      f"(`max_curvature={c['max_curvature_choice']}`; estimated: "
      f"{c['max_curvature_at_init']:.4g} at the start, "
      f"{c['max_curvature_at_optimum']:.4g} at the optimum; global bound "
      f"{c['max_curvature_global_bound']:.4g}), κ = {c['kappa']:.4g}; "
      f"constant steps are multiples of 1/{c['max_curvature_estimate']:.4g}."
      f" Target: (f − f*)/(f₀ − f*) ≤ "
      f"{cfg['epsilon']:g}; f* = {summary['f_star']:.8g} "
      f"({summary['f_star_source']}). {n} steps per method; best constant "
      f"step: `{summary['best_constant']}`.",
      "",
  ]
  rows = []
  for name, r in summary["methods"].items():
    steps = r["steps_to_epsilon"]
    rows.append({
        "method": r["label"] + (" **(best constant)**"
                                if name == summary["best_constant"] else ""),
        "steps to ε": _fmt(steps) if steps is not None else f"> {n}",
        "stays below from": _fmt(r["steps_to_epsilon_stay"]),
        "final (f−f*)/(f₀−f*)": _fmt(r["final_relative_suboptimality"]),
        "steps above 2/M": f"{100 * r['fraction_steps_above_2_over_M']:.0f}%",
        "loss-increasing steps": f"{100 * r['fraction_loss_increasing']:.0f}%",
        "largest increase of f−f*": _fmt(r["largest_suboptimality_increase"]),
        "test acc.": _fmt(r["test_accuracy"], 4),
        "diverged": _fmt(r["diverged"]),
    })
  lines.append(io_utils.markdown_table(rows, list(rows[0])))
  floor_fraction = {name: r["fraction_loss_increasing_to_floor"]
                    for name, r in summary["methods"].items()}
  for name, ratio in summary["ratios"].items():
    t = summary["targets"][name]
    lines.append(
        f"- `{name}` (T = {summary['methods'][name]['hparams']['cycle_length']}"
        f"): {_fmt(ratio['speedup_vs_best_constant'])}× fewer steps than the "
        f"best constant step (target ≥ 3: "
        f"{_fmt(t['speedup_vs_best_constant_at_least_3'])}), "
        f"{_fmt(ratio['steps_over_nesterov'])}× Nesterov's count (target ≤ "
        f"1.5: {_fmt(t['within_1.5x_of_nesterov'])}), "
        f"{100 * t['fraction_loss_increasing']:.0f}% of its steps up to ε "
        f"(and {100 * floor_fraction[name]:.0f}% up to {NOISE_FLOOR:g}) "
        "increase the loss.")
  lines.append("")
  lines.append("Step fractions (above 2/M, loss-increasing) are counted over "
               "the steps before the method first reaches ε (afterwards float "
               "rounding dominates); 2/M is the classical stability limit of "
               "a constant step, with the M of the schedules.")
  return "\n".join(lines) + "\n"


def plot(path: str, summary: Mapping[str, Any], methods: Sequence[Method],
         records: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
  """Figure 5: relative suboptimality per method, learning rates beneath."""
  f_star, f0 = summary["f_star"], summary["f0"]
  show = ["gd", summary["best_constant"], "heavy_ball", "nesterov",
          "fractal", "fractal_short"]
  labels = {m.name: m.label for m in methods}
  curves, rates, marks = {}, {}, {}
  for name in dict.fromkeys(show):
    label = labels[name] + (" (best constant)"
                            if name == summary["best_constant"] else "")
    values = _losses(records[name])
    curves[label] = (np.arange(len(values)), (values - f_star) / (f0 - f_star))
    if name not in ("heavy_ball", "nesterov", "gd"):
      rates[label] = harness.metrics_arrays(records[name], "learning_rate")
    if name.startswith("fractal"):
      prev, cur = values[:-1], values[1:]
      marks[label] = np.nonzero(cur > prev)[0] + 1
  c = summary["curvature"]
  harness.plot_loss_and_lr(
      path, curves, rates, ylabel="(f − f*) / (f₀ − f*)",
      title=(f"Logistic regression, {summary['dataset']['name']}, "
             f"λ = {summary['config']['l2']:g}, κ ≈ {c['kappa']:.0f} "
             "(dots: steps that increased the loss)"),
      lr_reference=summary["stability_limit_2_over_M"],
      lr_reference_label="2/M", marks=marks,
      styles={k: {"ls": "--"} for k in curves if "fractal" not in k},
      xlim=(0, _plot_range(summary, show)))


def _plot_range(summary: Mapping[str, Any], names: Sequence[str]) -> float:
  """Up to 1.2x the slowest shown method that reached epsilon."""
  reached = [summary["methods"][n]["steps_to_epsilon"] for n in names]
  reached = [s for s in reached if s is not None]
  n = summary["config"]["num_steps"]
  return min(n, 1.2 * max(reached)) if reached else n
