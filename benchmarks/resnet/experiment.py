"""The paper's Figure 6: training past the edge of stability, fractal cycle.

1. Sweep of constant rates (``sweep/lr_<rate>/``). A rate *still trains*
   when every loss is finite and the last quarter's mean loss is at most
   ``stable_loss_ratio`` times the first; ``eta_stable`` is the largest such
   rate, ``eta_best`` the one with the lowest final loss.
2. For every seed in ``seeds`` (``<run>/seed_<s>/``): constant ``eta_best``
   (``constant``), the fractal cycle on base ``fractal_base_lr``
   (``fractal``; 0: ``eta_best``, lowered if the peak would pass
   ``fractal_peak_limit * eta_stable``, raised to a peak of ``2 eta_stable``
   if it would not pass ``eta_stable``) and ``adaptive_fractal_sgd``
   (``adaptive``, no rate to choose).
3. ``figure.png`` (the first seed), ``results.md`` (means and spreads over
   the seeds) and ``summary.json``, with a verdict.

Each run is a ``resume.Store`` unit: a restart reuses finished runs and
resumes the unfinished one from its checkpoint.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import numpy as np

from benchmarks import config as config_lib
from benchmarks import files
from benchmarks import input_pipeline
from benchmarks import metrics as metrics_lib
from benchmarks import resume
from benchmarks.resnet import data
from benchmarks.resnet import parallel
from benchmarks.resnet import report
from benchmarks.resnet import train
from benchmarks.resnet.configs import Config

# Run-summary fields left out of the comparison.
_OMIT = ("num_steps", "wall_time_s_this_invocation", "environment")


def is_stable(summary: dict[str, Any], stable_loss_ratio: float) -> bool:
  """Whether a run still trains (see the module docstring)."""
  return bool(summary.get("all_finite")) and (
    summary["final_window_loss"] <= stable_loss_ratio * summary["initial_loss"]
  )


def choose_rates(config: Config, rows: list[dict[str, Any]]) -> dict[str, Any]:
  """``eta_stable``, ``eta_best`` and the fractal base rate from the sweep."""
  stable = [r for r in rows if r["stable"]]
  found = bool(stable)
  if not found:  # Go on with the best finite run, flagged.
    stable = [r for r in rows if r["all_finite"]] or rows
  eta_stable = max(r["learning_rate"] for r in stable)
  eta_best = min(stable, key=lambda r: r["final_window_loss"])["learning_rate"]
  base = config.fractal_base_lr or eta_best
  peak = float(
    np.max(train.multipliers(dataclasses.replace(config, schedule="fractal")))
  )
  if not config.fractal_base_lr:
    limit = config.fractal_peak_limit
    if limit and base * peak > limit * eta_stable:
      base = limit * eta_stable / peak
    if base * peak <= eta_stable:  # The claim is about steps beyond it.
      base = min(2.0, limit or 2.0) * eta_stable / peak
  return {
    "sweep_found_stable_rate": found,
    "max_stable_learning_rate": eta_stable,
    "best_constant_learning_rate": eta_best,
    "fractal_base_learning_rate": base,
  }


METHODS = ("constant", "fractal", "adaptive")


def run_stats(
  summary: dict[str, Any], curves: dict[str, np.ndarray], eta_stable: float
) -> dict[str, Any]:
  """A run's summary with its steps above ``eta_stable`` counted."""
  above = curves["learning_rate"] > eta_stable * (1 + 1e-6)
  increased = (
    curves["loss_increased"].astype(bool)
    if curves["loss_increased"].size
    else np.zeros_like(above)
  )
  return {
    **{k: v for k, v in summary.items() if k not in _OMIT},
    "fraction_steps_above_stable": float(above.mean()),
    "fraction_loss_increased_above_stable": float(increased[above].mean())
    if above.any()
    else None,
    "fraction_loss_increased_other": float(increased[~above].mean())
    if (~above).any()
    else None,
    "peak_over_stable": float(curves["learning_rate"].max() / eta_stable),
  }


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
  """One method over seeds: the first run's fields, numbers replaced by
  their mean, with ``<key>_std`` (standard deviation) and ``<key>_min`` /
  ``<key>_max`` beside them."""
  out = dict(runs[0])
  for key, value in runs[0].items():
    values = [r.get(key) for r in runs]
    if (
      isinstance(value, (int, float))
      and not isinstance(value, bool)
      and all(isinstance(v, (int, float)) for v in values)
    ):
      out[key] = float(np.mean(values))
      out.update(
        {
          f"{key}_std": float(np.std(values)),
          f"{key}_min": float(np.min(values)),
          f"{key}_max": float(np.max(values)),
        }
      )
  out["seeds"] = [r.get("seed") for r in runs]
  return out


def compare(
  config: Config,
  rates: dict[str, Any],
  per_seed: dict[str, list[dict[str, Any]]],
) -> dict[str, Any]:
  """The comparison's numbers: each method over the seeds, and ratios of
  the means to the constant rate's."""
  result = {name: aggregate(runs) for name, runs in per_seed.items()}
  const = result["constant"]
  for name in METHODS[1:]:
    for key in ("final_window_loss", "final_cycle_end_loss"):
      result[f"{key}_ratio_{name}_over_constant"] = (
        result[name][key] / const[key]
      )
  result["converged"] = {
    n: all(is_stable(r, config.stable_loss_ratio) for r in runs)
    for n, runs in per_seed.items()
  }
  return {**rates, **result, "per_seed": per_seed}


def run_experiment(
  config: Config,
  workdir: str,
  dataset: input_pipeline.Dataset | None = None,
  *,
  command: str = "",
) -> dict[str, Any]:
  """Sweep and comparison; writes and returns the summary (``mode=experiment``).

  ``dataset`` defaults to ``data.load(config)``; ``command`` (the command
  line) is recorded in the summary.
  """
  parallel.maybe_initialize_distributed(config.distributed)
  mesh = parallel.make_mesh()
  store = resume.Store(workdir, config)  # Refuses before deleting anything.
  files.remove_summary(workdir)
  start = time.perf_counter()
  if dataset is None:
    dataset = data.load(config)

  def run(unit: str, subdir: str, **changes: Any) -> dict[str, Any]:
    run_config = dataclasses.replace(config, mode="train", **changes)
    return store.compute(
      unit,
      lambda: train.train_and_evaluate(
        run_config,
        os.path.join(workdir, subdir),
        dataset=dataset,
        mesh=mesh,
        desc=unit,
      ),
    )

  rows = []
  for rate in sorted(config.sweep_learning_rates):
    s = run(
      f"sweep_lr={rate:g}",
      os.path.join("sweep", f"lr_{rate:g}"),
      schedule="constant",
      learning_rate=rate,
      num_steps=config.sweep_steps,
      eval_every=0,
    )
    rows.append(
      {
        k: s.get(k)
        for k in (
          "learning_rate",
          "initial_loss",
          "final_window_loss",
          "all_finite",
          "fraction_loss_increased",
          "test_accuracy",
        )
      }
    )
    rows[-1]["stable"] = is_stable(s, config.stable_loss_ratio)
  rates = choose_rates(config, rows)
  learning_rate = {
    "constant": rates["best_constant_learning_rate"],
    "fractal": rates["fractal_base_learning_rate"],
    "adaptive": config.learning_rate,
  }
  per_seed, curves = {}, {}
  for name in METHODS:
    per_seed[name] = []
    for seed in config.seeds:
      subdir = os.path.join(name, f"seed_{seed}")
      summary = run(
        f"{name},seed={seed}",
        subdir,
        schedule=name,
        seed=seed,
        learning_rate=learning_rate[name],
      )
      records = [
        r
        for r in metrics_lib.read_metrics(
          os.path.join(workdir, subdir, metrics_lib.METRICS_FILE)
        )
        if r["step"] < config.num_steps
      ]
      run_curves = {"step": metrics_lib.metrics_arrays(records, "loss")[0]}
      for key in ("loss", "learning_rate", "loss_increased", "loss_after"):
        run_curves[key] = metrics_lib.metrics_arrays(records, key)[1]
      per_seed[name].append(
        run_stats(summary, run_curves, rates["max_stable_learning_rate"])
      )
      curves.setdefault(name, run_curves)  # The first seed's.
  result = compare(config, rates, per_seed)
  result["verdict"] = report.verdict(result)
  report.figure(
    os.path.join(workdir, report.FIGURE_FILE), curves, result, config
  )
  files.write_text(
    os.path.join(workdir, report.TABLE_FILE),
    report.experiment_table(rows, result),
  )
  summary = {
    "sweep": rows,
    **result,
    "config": config_lib.to_dict(config),
    "command": command,
    "num_train": int(dataset.train_images.shape[0]),
    "num_test": int(dataset.test_images.shape[0]),
    "wall_time_s_this_invocation": time.perf_counter() - start,
    "environment": files.environment(),
  }
  files.write_summary(workdir, summary)
  store.clear()
  return summary
