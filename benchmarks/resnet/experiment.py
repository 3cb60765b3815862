"""The paper's Figure 6: training past the edge of stability, fractal cycle.

1. Sweep of constant rates (``sweep/lr_<rate>/``). A rate *still trains*
   when every loss is finite and the last quarter's mean loss is at most
   ``stable_loss_ratio`` times the first; ``eta_stable`` is the largest such
   rate, ``eta_best`` the one with the lowest final loss.
2. Constant ``eta_best`` (``constant/``) against the fractal cycle on base
   ``fractal_base_lr`` (``fractal/``; 0: ``eta_best``, lowered if the peak
   would pass ``fractal_peak_limit * eta_stable``, raised to a peak of
   ``2 eta_stable`` if it would not pass ``eta_stable``).
3. ``figure.png``, ``results.md`` and ``summary.json``, with a verdict.

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
      summary["final_window_loss"]
      <= stable_loss_ratio * summary["initial_loss"])


def choose_rates(config: Config, rows: list[dict[str, Any]]
                 ) -> dict[str, Any]:
  """``eta_stable``, ``eta_best`` and the fractal base rate from the sweep."""
  stable = [r for r in rows if r["stable"]]
  found = bool(stable)
  if not found:  # Go on with the best finite run, flagged.
    stable = [r for r in rows if r["all_finite"]] or rows
  eta_stable = max(r["learning_rate"] for r in stable)
  eta_best = min(stable, key=lambda r: r["final_window_loss"])["learning_rate"]
  base = config.fractal_base_lr or eta_best
  peak = float(np.max(train.multipliers(
      dataclasses.replace(config, schedule="fractal"))))
  if not config.fractal_base_lr:
    limit = config.fractal_peak_limit
    if limit and base * peak > limit * eta_stable:
      base = limit * eta_stable / peak
    if base * peak <= eta_stable:  # The claim is about steps beyond it.
      base = min(2.0, limit or 2.0) * eta_stable / peak
  return {"sweep_found_stable_rate": found,
          "max_stable_learning_rate": eta_stable,
          "best_constant_learning_rate": eta_best,
          "fractal_base_learning_rate": base}


def compare(config: Config, rates: dict[str, Any],
            results: dict[str, dict[str, Any]],
            frac: dict[str, np.ndarray]) -> dict[str, Any]:
  """The comparison's numbers (``frac``: the fractal run's curves)."""
  eta_stable = rates["max_stable_learning_rate"]
  above = frac["learning_rate"] > eta_stable * (1 + 1e-6)
  increased = (frac["loss_increased"].astype(bool)
               if frac["loss_increased"].size else np.zeros_like(above))
  const, fr = results["constant"], results["fractal"]
  return {
      "constant": {k: v for k, v in const.items() if k not in _OMIT},
      "fractal": {
          **{k: v for k, v in fr.items() if k not in _OMIT},
          "fraction_steps_above_stable": float(above.mean()),
          "fraction_loss_increased_above_stable":
              float(increased[above].mean()) if above.any() else None,
          "fraction_loss_increased_other":
              float(increased[~above].mean()) if (~above).any() else None,
          "peak_over_stable": float(frac["learning_rate"].max() / eta_stable),
      },
      "converged": {n: is_stable(r, config.stable_loss_ratio)
                    for n, r in results.items()},
      "final_window_loss_ratio_fractal_over_constant":
          fr["final_window_loss"] / const["final_window_loss"],
      "final_cycle_end_loss_ratio_fractal_over_constant":
          fr["final_cycle_end_loss"] / const["final_cycle_end_loss"],
      "test_accuracy_difference_fractal_minus_constant":
          fr.get("test_accuracy", np.nan) - const.get("test_accuracy", np.nan),
  }


def run_experiment(config: Config, workdir: str,
                   dataset: input_pipeline.Dataset | None = None
                   ) -> dict[str, Any]:
  """Sweep and comparison; writes and returns the summary (``mode=experiment``).

  ``dataset`` defaults to ``data.load(config)``.
  """
  parallel.maybe_initialize_distributed(config.distributed)
  mesh = parallel.make_mesh()
  files.remove_summary(workdir)
  store = resume.Store(workdir, config)
  start = time.perf_counter()
  if dataset is None:
    dataset = data.load(config)

  def run(unit: str, subdir: str, **changes: Any) -> dict[str, Any]:
    run_config = dataclasses.replace(config, mode="train", **changes)
    return store.compute(unit, lambda: train.train_and_evaluate(
        run_config, os.path.join(workdir, subdir), dataset=dataset, mesh=mesh,
        desc=unit))

  rows = []
  for rate in sorted(config.sweep_learning_rates):
    s = run(f"sweep_lr={rate:g}", os.path.join("sweep", f"lr_{rate:g}"),
            schedule="constant", learning_rate=rate,
            num_steps=config.sweep_steps, eval_every=0)
    rows.append({k: s.get(k) for k in (
        "learning_rate", "initial_loss", "final_window_loss", "all_finite",
        "fraction_loss_increased", "test_accuracy")})
    rows[-1]["stable"] = is_stable(s, config.stable_loss_ratio)
  rates = choose_rates(config, rows)
  results = {
      "constant": run("constant", "constant", schedule="constant",
                      learning_rate=rates["best_constant_learning_rate"]),
      "fractal": run("fractal", "fractal", schedule="fractal",
                     learning_rate=rates["fractal_base_learning_rate"]),
  }
  runs = {}
  for name in results:
    records = [r for r in metrics_lib.read_metrics(os.path.join(
        workdir, name, metrics_lib.METRICS_FILE))
               if r["step"] < config.num_steps]
    runs[name] = {"step": metrics_lib.metrics_arrays(records, "loss")[0]}
    for key in ("loss", "learning_rate", "loss_increased", "loss_after"):
      runs[name][key] = metrics_lib.metrics_arrays(records, key)[1]
  result = {**rates, **compare(config, rates, results, runs["fractal"])}
  result["verdict"] = report.verdict(result)
  report.figure(os.path.join(workdir, report.FIGURE_FILE), runs, result,
                config)
  files.write_text(os.path.join(workdir, report.TABLE_FILE),
                   report.experiment_table(rows, result))
  summary = {
      "sweep": rows, **result, "config": config_lib.to_dict(config),
      "num_train": int(dataset.train_images.shape[0]),
      "num_test": int(dataset.test_images.shape[0]),
      "wall_time_s_this_invocation": time.perf_counter() - start,
      "environment": files.environment(),
  }
  files.write_summary(workdir, summary)
  store.clear()
  return summary
