"""The order-stability scan: fractal_order against the stability floor.

For each T and κ, ``fractal_optax.stability_profile`` of the Chebyshev steps
for [1, κ] in a given order gives the largest block amplification
``max_block`` and the largest single-step amplification (the floor no order
can beat); the scan records ``max_block / max(max_single_step, 1)`` for
``fractal_order(T)`` and, every ``baseline_every``-th T, for the PyTorch
implementation's order (``baselines.filtered_power_of_two_order``). The
worst fractal cases are then measured again on a finer grid. The scan runs
in chunks of T, each a ``resume.Store`` unit.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

import numpy as np
import tqdm

import fractal_optax
from benchmarks import baselines
from benchmarks import files
from benchmarks import resume
from benchmarks.order_stability import configs
from benchmarks.order_stability import report


def block_ratio(order: np.ndarray, kappa: float, oversample: int) -> float:
  """``max_block / max(max_single_step, 1)`` of the steps taken in ``order``."""
  steps = np.asarray(fractal_optax.chebyshev_step_sizes(order.size, 1.0,
                                                        kappa))
  profile = fractal_optax.stability_profile(steps[order], 1.0, kappa,
                                            oversample=oversample)
  return profile.max_block / max(profile.max_single_step, 1.0)


def scan_row(t: int, config: configs.Config) -> dict[str, Any]:
  """Ratios of T = ``t`` for every κ (filtered order too, if due)."""
  orders = {"fractal": fractal_optax.fractal_order(t)}
  if t % config.baseline_every == 0 or t in config.baseline_at:
    orders["filtered"] = baselines.filtered_power_of_two_order(t)
  return {"T": t} | {f"{name}_{k:g}": block_ratio(order, k, config.oversample)
                     for name, order in orders.items() for k in config.kappas}


def scan_chunk(lo: int, hi: int, config: configs.Config) -> dict[str, Any]:
  """The rows of T = lo … hi and the seconds they took."""
  start = time.perf_counter()
  rows = [scan_row(t, config) for t in range(lo, hi + 1)]
  return {"rows": rows, "seconds": time.perf_counter() - start}


def refine(rows: list[dict[str, Any]], config: configs.Config
           ) -> dict[str, Any]:
  """The worst fractal (T, κ) measured again with ``refine_oversample``."""
  start = time.perf_counter()
  worst = sorted(((row[f"fractal_{k:g}"], row["T"], k) for row in rows
                  for k in config.kappas), reverse=True)
  cases = [{"T": t, "kappa": k, "ratio_coarse": r,
            "ratio_fine": block_ratio(fractal_optax.fractal_order(t),
                                      k, config.refine_oversample)}
           for r, t, k in worst[:config.refine_cases]]
  return {"cases": cases, "seconds": time.perf_counter() - start}


def summarize(rows: list[dict[str, Any]], refined: list[dict[str, Any]],
              config: configs.Config) -> dict[str, Any]:
  """Worst and mean ratios of both orders."""

  def cases(prefix, keep=lambda row: True):
    return [(row[f"{prefix}_{k:g}"], row["T"], k) for row in rows
            for k in config.kappas if f"{prefix}_{k:g}" in row and keep(row)]

  fractal = max(refined, key=lambda c: c["ratio_fine"])
  baseline = cases("filtered")
  filtered = max(baseline, default=(float("nan"), None, None))
  return {
      "max_t": config.max_t, "kappas": config.kappas,
      "oversample": config.oversample,
      "fractal_worst_ratio": fractal["ratio_fine"],
      "fractal_worst_at": {"T": fractal["T"], "kappa": fractal["kappa"]},
      "fractal_mean_ratio": float(np.mean([c[0] for c in cases("fractal")])),
      "power_of_two_worst_ratio": max(cases(
          "fractal", lambda row: row["T"] & (row["T"] - 1) == 0))[0],
      "filtered_worst_ratio": filtered[0],
      "filtered_worst_at": {"T": filtered[1], "kappa": filtered[2]},
      "filtered_mean_ratio":
          float(np.mean([c[0] for c in baseline])) if baseline else math.nan,
      "worst_cases_refined": refined,
  }


def run(config: configs.Config, workdir: str, *, command: str = ""
        ) -> dict[str, Any]:
  """Runs (or resumes) the scan and writes the report files.

  Args:
    config: the settings.
    workdir: output directory (``order_stability.{json,md,png}``; the
      finished chunks in ``units/`` until the end).
    command: the command line recorded in the results.

  Returns:
    The summary.
  """
  store = resume.Store(workdir, config)
  rows, seconds = [], 0.0
  starts = range(1, config.max_t + 1, config.chunk_size)
  for lo in tqdm.tqdm(starts, desc="T", unit="chunk", file=sys.stderr,
                      disable=not config.progress):
    hi = min(lo + config.chunk_size - 1, config.max_t)
    chunk = store.compute(f"T={lo}-{hi}",
                          lambda lo=lo, hi=hi: scan_chunk(lo, hi, config))
    rows += chunk["rows"]
    seconds += chunk["seconds"]
  refined = store.compute("refined", lambda: refine(rows, config))
  summary = summarize(rows, refined["cases"], config) | {
      "seconds": seconds + refined["seconds"],
      "environment": files.environment(), "command": command}
  print(report.write({"summary": summary, "rows": rows}, workdir))
  store.clear()
  return summary
