"""Where the fractal schedule works on logistic regression: lambda x T map.

For every L2 strength lambda in ``sweep_l2`` (so condition number
kappa = M / lambda) and every cycle length T in ``sweep_cycles`` (plus the T
the Chebyshev bound asks for), full-batch GD with the repeated fractal
schedule runs ``sweep_steps`` steps; so do the constant steps c/M of
``constant_grid``, heavy ball and Nesterov (same hyperparameters as
``train.make_methods``). Reported per cell: steps to the target relative
suboptimality, or ``div`` (diverged: final (f - f*)/(f_0 - f*) above 1 or
not finite) or ``> N`` (not reached).

All GD-type runs of one lambda share one compiled, ``vmap``-ed ``lax.scan``:
each row is ``optax.sgd`` with its own learning-rate sequence (for the
fractal rows, ``fractal_optax.fractal_chebyshev_schedule`` evaluated at
every step).

Files: ``sweep.json`` (atomic, at the end), ``sweep_partial.json`` (one
entry per finished lambda; a restarted sweep skips those), ``sweep.md`` and
``sweep.png`` (heat map of the speed-up over the best constant step).

Example::

  python -m benchmarks.logreg.main --preset sweep --workdir results/logreg
"""

from __future__ import annotations

import functools
import json
import math
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fractal_optax
from benchmarks import harness
from benchmarks import io_utils
from benchmarks.logreg import configs
from benchmarks.logreg import train

SWEEP_FILE = "sweep.json"
PARTIAL_FILE = "sweep_partial.json"


@functools.lru_cache(maxsize=None)
def _gd_runner(graphdef: Any) -> Callable[..., jax.Array]:
  """Jitted, vmapped GD runs for one model structure (l2 an argument)."""
  objective = train.loss_functions(graphdef).objective

  @jax.jit
  def run(params0, lrs, data, l2):
    def one(row):
      tx = optax.sgd(lambda count: row[count])

      def body(carry, _):
        params, opt_state = carry
        loss, grads = jax.value_and_grad(objective)(params, data, l2)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), loss

      (params, _), losses = jax.lax.scan(
          body, (params0, tx.init(params0)), None, length=row.shape[0])
      return jnp.append(losses, objective(params, data, l2))
    return jax.vmap(one)(lrs)

  return run


def gd_losses(problem: train.Problem, learning_rates: jax.Array
              ) -> np.ndarray:
  """Loss curves of GD runs, one per row of ``learning_rates`` ``[B, N]``.

  Returns:
    ``[B, N + 1]``: ``f_t`` for ``t = 0 ... N`` of each run.
  """
  run = _gd_runner(problem.graphdef)
  return np.asarray(run(problem.params, learning_rates, problem.data,
                        jnp.float32(problem.l2)))


def method_losses(problem: train.Problem, method: train.Method,
                  num_steps: int) -> np.ndarray:
  """Loss curve ``[N + 1]`` of one method (one jitted scan)."""
  state = {"params": problem.params,
           "opt_state": method.tx.init(problem.params)}
  state, metrics = train.make_chunk_fn(problem, method)(state, 0, num_steps)
  final = problem.evaluate(state["params"])["loss"]
  return np.append(np.asarray(metrics["loss"]), float(final))


def sweep_one(config: configs.Config, dataset: Any, l2: float
              ) -> dict[str, Any]:
  """All runs at one lambda; returns the row of the sweep table."""
  start = time.perf_counter()
  info = train.setup(config, dataset, l2=l2)
  problem, curv = info["problem"], info["curvature"]
  m, M = curv["min_curvature"], curv["max_curvature"]
  n = config.sweep_steps
  cycles = sorted(set(config.sweep_cycles) | {info["bound_cycle"]})
  grid = sorted(set(config.constant_grid) | {1.0})
  rows = [np.full(n, c / curv["max_curvature_estimate"], np.float32)
          for c in grid]
  steps = jnp.arange(n)
  rows += [np.asarray(fractal_optax.fractal_chebyshev_schedule(t, m, M)(steps),
                      np.float32) for t in cycles]
  losses = gd_losses(problem, jnp.asarray(np.stack(rows)))
  curves = {f"constant_{c:g}": losses[i] for i, c in enumerate(grid)}
  curves.update({f"fractal_{t}": losses[len(grid) + i]
                 for i, t in enumerate(cycles)})
  methods = {mt.name: mt for mt in train.make_methods(config, m, M, 2, 2)}
  for name in ("heavy_ball", "nesterov"):
    curves[name] = method_losses(problem, methods[name], n)
  lowest = min(float(np.nanmin(v)) for v in curves.values())
  f_star = min(info["lbfgs"]["value"], lowest)
  results = {name: train.analyse(v, f_star, config.epsilon)
             for name, v in curves.items()}
  constants = [f"constant_{c:g}" for c in grid]
  best = min(constants, key=lambda k: (
      results[k]["steps_to_epsilon"] is None,
      results[k]["steps_to_epsilon"] or 0,
      np.nan_to_num(results[k]["final_relative_suboptimality"], nan=np.inf)))
  keep = ("steps_to_epsilon", "steps_to_epsilon_stay", "diverged",
          "final_relative_suboptimality", "fraction_loss_increasing",
          "largest_suboptimality_increase")
  return {
      "l2": l2, "kappa": curv["kappa"], "curvature": curv,
      "bound_cycle": info["bound_cycle"], "cycles": cycles,
      "f_star": f_star, "lbfgs": info["lbfgs"], "best_constant": best,
      "runs": {k: {f: r[f] for f in keep} for k, r in results.items()},
      "seconds": time.perf_counter() - start,
  }


def run_sweep(config: configs.Config, workdir: str) -> dict[str, Any]:
  """Runs (or resumes) the sweep and writes its files under ``workdir``."""
  start = time.perf_counter()
  harness.check_workdir_config(workdir, config)
  harness.remove_summary(workdir, SWEEP_FILE)
  partial_path = os.path.join(workdir, PARTIAL_FILE)
  done = {}
  if os.path.isfile(partial_path):
    with open(partial_path) as f:
      previous = json.load(f)
    same = lambda c: {k: v for k, v in c.items() if k != "progress"}
    if same(previous.get("config", {})) == same(
        harness.config_to_dict(config)):
      done = {float(r["l2"]): r for r in previous["rows"]}
  dataset = train.load_data(config)
  rows = []
  for l2 in config.sweep_l2:
    row = done.get(float(l2))
    if row is None:
      if config.progress:
        print(f"sweep: lambda = {l2:g}", flush=True)
      row = io_utils.to_jsonable(sweep_one(config, dataset, l2))
    rows.append(row)
    io_utils.write_json(partial_path, {
        "config": harness.config_to_dict(config), "rows": rows})
  summary = {
      "experiment": "logreg_sweep",
      "config": harness.config_to_dict(config),
      "dataset": {"name": dataset.name,
                  "num_train": int(dataset.train_images.shape[0])},
      "rows": rows,  # Each with the "seconds" it took when computed.
      "seconds": time.perf_counter() - start,  # This invocation only.
      "environment": io_utils.environment(),
  }
  markdown = sweep_markdown(summary)
  io_utils.write_text(os.path.join(workdir, "sweep.md"), markdown)
  print(markdown + f"\nWritten to {workdir}/ (sweep.json, sweep.md, "
        "sweep.png).", flush=True)
  plot_heatmap(os.path.join(workdir, "sweep.png"), summary)
  harness.write_summary(workdir, summary, SWEEP_FILE)
  return summary


def _cell(run: Mapping[str, Any] | None, n: int) -> str:
  if run is None:
    return ""
  if run["diverged"]:
    return "div"
  steps = run["steps_to_epsilon"]
  return f"> {n}" if steps is None else str(steps)


def sweep_markdown(summary: Mapping[str, Any]) -> str:
  """README-ready table: steps to epsilon per lambda, method and T."""
  cfg = summary["config"]
  n = cfg["sweep_steps"]
  cycles = sorted({t for r in summary["rows"] for t in cfg["sweep_cycles"]})
  columns = (["λ", "κ", "T (bound)", "GD 1/M", "best constant", "heavy ball",
              "Nesterov"] + [f"T={t}" for t in cycles] + ["T=bound"])
  table = []
  for r in summary["rows"]:
    runs = r["runs"]
    row = {"λ": f"{r['l2']:g}", "κ": f"{r['kappa']:.0f}",
           "T (bound)": r["bound_cycle"],
           "GD 1/M": _cell(runs["constant_1"], n),
           "best constant": (f"{_cell(runs[r['best_constant']], n)} "
                             f"({r['best_constant'].split('_')[1]}/M)"),
           "heavy ball": _cell(runs["heavy_ball"], n),
           "Nesterov": _cell(runs["nesterov"], n)}
    for t in cycles:
      row[f"T={t}"] = _cell(runs.get(f"fractal_{t}"), n)
    row["T=bound"] = _cell(runs[f"fractal_{r['bound_cycle']}"], n)
    table.append(row)
  text = (f"Steps to (f − f*)/(f₀ − f*) ≤ {cfg['epsilon']:g} on "
          f"`{summary['dataset']['name']}` ({summary['dataset']['num_train']} "
          f"training images), {n} steps per run; `div`: diverged, "
          f"`> {n}`: not reached. Fractal columns repeat a cycle of T steps "
          f"built for [m, M] = [λ, M], with M = "
          f"`max_curvature={cfg['max_curvature']}` and κ = M/λ; heavy ball "
          f"and Nesterov use the same M; constant steps are multiples of 1/M̂,"
          f" M̂ the estimated curvature, whatever M is.\n\n")
  return text + io_utils.markdown_table(table, columns)


def plot_heatmap(path: str, summary: Mapping[str, Any]) -> None:
  """Heat map: speed-up of the fractal schedule over the best constant step.

  Rows are lambdas (kappa), columns cycle lengths; a cell's colour is
  log2(best-constant steps / fractal steps), its text the fractal step
  count and that speed-up (a lower bound, marked ``≥``, when the constant
  step never reached the target); grey cells diverged or did not reach it.
  """
  import matplotlib  # pylint: disable=g-import-not-at-top

  cfg = summary["config"]
  n = cfg["sweep_steps"]
  cycles = sorted(cfg["sweep_cycles"]) + ["bound"]
  rows = summary["rows"]
  value = np.full((len(rows), len(cycles)), np.nan)
  fig, ax = io_utils.subplots(
      figsize=(1.0 * len(cycles) + 3, 0.7 * len(rows) + 2))
  for i, r in enumerate(rows):
    best = r["runs"][r["best_constant"]]["steps_to_epsilon"]
    for j, t in enumerate(cycles):
      t = r["bound_cycle"] if t == "bound" else t
      run = r["runs"][f"fractal_{t}"]
      steps = run["steps_to_epsilon"]
      text = _cell(run, n)
      if steps is not None and not run["diverged"]:
        speedup = (best if best is not None else n) / max(steps, 1)
        value[i, j] = math.log2(speedup)
        text += f"\n{'≥' if best is None else ''}{speedup:.2g}×"
      if cycles[j] == "bound":
        text += f"\nT={t}"
      ax.text(j, i, text, ha="center", va="center", fontsize=8)
  limit = max(1.0, float(np.nanmax(np.abs(value))) if np.isfinite(value).any()
              else 1.0)
  cmap = matplotlib.colormaps["RdBu"].with_extremes(bad="0.8")
  image = ax.imshow(np.ma.masked_invalid(value), cmap=cmap, vmin=-limit,
                    vmax=limit, aspect="auto")
  ax.set_xticks(range(len(cycles)), [str(t) for t in cycles])
  ax.set_yticks(range(len(rows)), [
      f"λ={r['l2']:g}\nκ={r['kappa']:.0f}\n"
      f"const: {_cell(r['runs'][r['best_constant']], n)}"
      for r in rows], fontsize=8)
  ax.set_xlabel("fractal cycle length T (repeated)")
  fig.colorbar(image, ax=ax, label="log2(best constant steps / fractal steps)")
  ax.set_title(f"Steps to (f − f*)/(f₀ − f*) ≤ {cfg['epsilon']:g}, "
               f"{summary['dataset']['name']} (grey: diverged / > {n})",
               fontsize=10)
  io_utils.save_figure(fig, path)
