"""Where the fractal schedule works on logistic regression: a lambda x T map.

For every L2 strength lambda in ``sweep_l2`` (so kappa = M / lambda) and
every cycle length T in ``sweep_cycles`` (plus the T the Chebyshev bound
asks for), full-batch GD with the repeated fractal schedule runs
``sweep_steps`` steps; so do the constant steps c/M of ``constant_grid``
and the methods of ``OTHER_METHODS`` (``train.make_methods``'s, run with
``train.make_chunk_fn``, ``adaptive`` among them). A cell is the gradient
evaluations to the target (the steps, but for ``adaptive``), ``div``
(diverged) or ``> N`` (not reached); the best constant step and the other
methods are also timed to the target (``train.time_to_target``).

The GD-type runs of one lambda share one compiled, ``vmap``-ed
``lax.scan``: each row is ``baselines.steps`` through its own step sizes.
Each lambda is a ``resume.Store`` unit (``l2=<lambda>``, its set-up numbers
another), so a restarted sweep skips finished lambdas. Files: ``sweep.json``
(last), ``sweep.md``, ``sweep.png`` (speed-up over the best constant).

Example::

  python -m benchmarks.logreg --preset sweep --workdir /tmp/sweep
"""

from __future__ import annotations

from collections.abc import Callable
import functools
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import baselines
from benchmarks import config as config_lib
from benchmarks import files
from benchmarks import input_pipeline
from benchmarks import resume
from benchmarks.logreg import configs
from benchmarks.logreg import models
from benchmarks.logreg import report
from benchmarks.logreg import train
import fractal_optax

SWEEP_FILE = "sweep.json"
OTHER_METHODS = ("heavy_ball", "nesterov", "adaptive")
KEEP = (
  "steps_to_epsilon",
  "steps_to_epsilon_stay",
  "diverged",
  "final_relative_suboptimality",
  "fraction_loss_increasing",
  "largest_suboptimality_increase",
  "evaluations_to_epsilon",
  "seconds_to_epsilon",
  "timed_steps_to_epsilon",
  "rejections",
  "max_curvature",
  "final_evaluations",
  "evaluations_by_seed",
)


@functools.cache
def _gd_runner(graphdef: Any) -> Callable[..., jax.Array]:
  """Jitted, vmapped GD runs for one model structure (l2 an argument)."""
  objective = models.loss_functions(graphdef).objective

  @jax.jit
  def run(params0, lrs, data, l2):
    def one(row):
      tx = baselines.steps(row)

      def body(carry, _):
        params, opt_state = carry
        loss, grads = jax.value_and_grad(objective)(params, data, l2)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

      (params, _), losses = jax.lax.scan(
        body, (params0, tx.init(params0)), None, length=row.shape[0]
      )
      return jnp.append(losses, objective(params, data, l2))

    return jax.vmap(one)(lrs)

  return run


def gd_losses(problem: models.Problem, learning_rates: jax.Array) -> np.ndarray:
  """``[B, N + 1]`` loss curves of GD through each row of ``[B, N]`` rates."""
  run = _gd_runner(problem.graphdef)
  return np.asarray(
    run(problem.params, learning_rates, problem.data, jnp.float32(problem.l2))
  )


def method_losses(
  problem: models.Problem, method: train.Method, num_steps: int
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
  """Loss curve ``[N + 1]`` of one method (one jitted scan) and its other
  per-step metrics (``[N]`` each)."""
  state = {
    "params": problem.params,
    "opt_state": method.tx.init(problem.params),
  }
  state, metrics = train.make_chunk_fn(problem, method)(state, 0, num_steps)
  final = problem.evaluate(state["params"])["loss"]
  metrics = {k: np.asarray(v) for k, v in metrics.items()}
  return np.append(metrics.pop("loss"), float(final)), metrics


def _evaluations_at(first: int | None, evaluations: np.ndarray) -> int | None:
  """Evaluations spent by the ``first`` step to reach the target (None:
  never reached; 0: reached at the start)."""
  if first is None:
    return None
  return int(evaluations[first - 1]) if first else 0


def sweep_one(
  config: configs.Config,
  dataset: input_pipeline.Dataset,
  l2: float,
  store: resume.Store,
) -> dict[str, Any]:
  """All runs at one lambda; returns the row of the sweep table."""
  start = time.perf_counter()
  problem, numbers = train.setup(config, dataset, l2, store)
  curv = numbers["curvature"]
  m, M = curv["min_curvature"], curv["max_curvature"]
  n = config.sweep_steps
  cycles = sorted(set(config.sweep_cycles) | {numbers["bound_cycle"]})
  grid = sorted(set(config.constant_grid) | {1.0})
  rows = [
    np.full(n, c / curv["max_curvature_estimate"], np.float32) for c in grid
  ]
  rows += [
    np.asarray(
      fractal_optax.fractal_chebyshev_schedule(t, m, M)(jnp.arange(n)),
      np.float32,
    )
    for t in cycles
  ]
  losses = gd_losses(problem, jnp.asarray(np.stack(rows)))
  names = [f"constant_{c:g}" for c in grid] + [f"fractal_{t}" for t in cycles]
  curves = dict(zip(names, losses, strict=True))
  methods = {m.name: m for m in train.make_methods(config, numbers)}
  logs = {
    name: method_losses(problem, methods[name], n) for name in OTHER_METHODS
  }
  curves.update({name: log[0] for name, log in logs.items()})
  lowest = min(float(np.nanmin(v)) for v in curves.values())
  f_star = min(numbers["lbfgs"]["value"], lowest)
  results = {
    name: train.analyse(v, f_star, config.epsilon) for name, v in curves.items()
  }
  for name, r in results.items():
    first = r["steps_to_epsilon"]
    evals = (
      logs[name][1]["evaluations"] if name in logs else np.arange(1, n + 1)
    )
    r["evaluations_to_epsilon"] = _evaluations_at(first, evals)
  best = train.best_constant(results, names[: len(grid)])
  target = f_star + config.epsilon * (numbers["f0"] - f_star)
  for name in (best, *OTHER_METHODS):
    if results[name]["steps_to_epsilon"] is not None:
      method = methods["gd" if name == "constant_1" else name]
      timed = train.time_to_target(problem, method, target, n)
      results[name].update(
        seconds_to_epsilon=timed["seconds"],
        timed_steps_to_epsilon=timed["steps"],
      )
  by_seed = [results["adaptive"]["evaluations_to_epsilon"]]
  for seed in config.adaptive_seeds[1:]:  # The first is the "adaptive" run.
    curve, seed_logs = method_losses(
      problem, train.adaptive_method(config, l2, seed), n
    )
    first = train.analyse(curve, f_star, config.epsilon)["steps_to_epsilon"]
    by_seed.append(_evaluations_at(first, seed_logs["evaluations"]))
  adaptive = logs["adaptive"][1]
  results["adaptive"].update(
    rejections=int(adaptive["rejections"][-1]),
    max_curvature=float(adaptive["max_curvature"][-1]),
    final_evaluations=int(adaptive["evaluations"][-1]),
    evaluations_by_seed=by_seed,
  )
  return {
    "l2": l2,
    "kappa": curv["kappa"],
    "curvature": curv,
    "bound_cycle": numbers["bound_cycle"],
    "cycles": cycles,
    "f_star": f_star,
    "lbfgs": numbers["lbfgs"],
    "best_constant": best,
    "runs": {k: {f: r[f] for f in KEEP if f in r} for k, r in results.items()},
    "seconds": time.perf_counter() - start,
  }


def run_sweep(
  config: configs.Config, workdir: str, *, command: str = ""
) -> dict[str, Any]:
  """Runs (or resumes) the sweep and writes its files under ``workdir``
  (``sweep.json`` records ``command``, the command line)."""
  start = time.perf_counter()
  store = resume.Store(workdir, config)
  files.remove_summary(workdir, SWEEP_FILE)
  dataset = train.load_data(config)
  rows = []
  for l2 in config.sweep_l2:
    if config.progress:
      print(f"sweep: lambda = {l2:g}", flush=True)
    rows.append(
      store.compute(
        f"l2={l2:g}", lambda l2=l2: sweep_one(config, dataset, l2, store)
      )
    )
  summary = {
    "experiment": "logreg_sweep",
    "command": command,
    "config": config_lib.to_dict(config),
    "dataset": {
      "name": dataset.name,
      "num_train": int(dataset.train_images.shape[0]),
    },
    "rows": rows,  # Each with the "seconds" it took when computed.
    "seconds": time.perf_counter() - start,  # This invocation only.
    "environment": files.environment(),
  }
  markdown = report.sweep_markdown(summary)
  files.write_text(os.path.join(workdir, "sweep.md"), markdown)
  report.plot_heatmap(os.path.join(workdir, "sweep.png"), summary)
  files.write_summary(workdir, summary, SWEEP_FILE)
  store.clear()
  print(
    markdown + f"\nWritten to {workdir}/ (sweep.json, sweep.md, sweep.png).",
    flush=True,
  )
  return summary
