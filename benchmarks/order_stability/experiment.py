"""The order-stability scan: fractal_order against the stability floor.

For each T and κ, ``fractal_optax.stability_profile`` of the Chebyshev steps
for [1, κ] in an order gives ``max_block / max(max_single_step, 1)``: 1 is
the floor no order can beat. The scan measures ``fractal_order(T)`` and, at
some T, the PyTorch implementation's filtered order, in resumable chunks of
T, then measures the worst fractal cases again on a finer grid. Writes
``order_stability.{json,md,png}``.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any

import numpy as np
import tqdm

from benchmarks import baselines
from benchmarks import files
from benchmarks import reporting
from benchmarks import resume
from benchmarks.order_stability import configs
import fractal_optax

_ORDERS = (
  ("fractal", "fractal_order (this library)"),
  ("filtered", "next power of two, filtered (PyTorch implementation)"),
)


def block_ratio(order: np.ndarray, kappa: float, oversample: int) -> float:
  """``max_block / max(max_single_step, 1)`` of the steps taken in ``order``."""
  steps = np.asarray(fractal_optax.chebyshev_step_sizes(order.size, 1.0, kappa))
  profile = fractal_optax.stability_profile(
    steps[order], 1.0, kappa, oversample=oversample
  )
  return profile.max_block / max(profile.max_single_step, 1.0)


def scan_chunk(lo: int, hi: int, config: configs.Config) -> dict[str, Any]:
  """The rows of T = lo … hi (the filtered order where due), and the time."""
  start, rows = time.perf_counter(), []
  for t in range(lo, hi + 1):
    orders = {"fractal": fractal_optax.fractal_order(t)}
    if t % config.baseline_every == 0 or t in config.baseline_at:
      orders["filtered"] = baselines.filtered_power_of_two_order(t)
    rows.append(
      {"T": t}
      | {
        f"{name}_{k:g}": block_ratio(order, k, config.oversample)
        for name, order in orders.items()
        for k in config.kappas
      }
    )
  return {"rows": rows, "seconds": time.perf_counter() - start}


def _cases(rows, config, prefix, keep=lambda t: True):
  """``(ratio, T, κ)`` of every measured case of one order."""
  return [
    (row[f"{prefix}_{k:g}"], row["T"], k)
    for row in rows
    for k in config.kappas
    if f"{prefix}_{k:g}" in row and keep(row["T"])
  ]


def refine(
  rows: list[dict[str, Any]], config: configs.Config
) -> dict[str, Any]:
  """The worst fractal (T, κ) measured again with ``refine_oversample``."""
  start = time.perf_counter()
  worst = sorted(_cases(rows, config, "fractal"), reverse=True)
  cases = [
    {
      "T": t,
      "kappa": k,
      "ratio_coarse": r,
      "ratio_fine": block_ratio(
        fractal_optax.fractal_order(t), k, config.refine_oversample
      ),
    }
    for r, t, k in worst[: config.refine_cases]
  ]
  return {"cases": cases, "seconds": time.perf_counter() - start}


def summarize(
  rows: list[dict[str, Any]],
  refined: list[dict[str, Any]],
  config: configs.Config,
) -> dict[str, Any]:
  """Worst and mean ratios of both orders."""
  fractal = max(refined, key=lambda c: c["ratio_fine"])
  baseline = _cases(rows, config, "filtered")
  filtered = max(baseline, default=(math.nan, None, None))
  return {
    "max_t": config.max_t,
    "kappas": config.kappas,
    "oversample": config.oversample,
    "fractal_worst_ratio": fractal["ratio_fine"],
    "fractal_worst_at": {"T": fractal["T"], "kappa": fractal["kappa"]},
    "fractal_mean_ratio": float(
      np.mean([c[0] for c in _cases(rows, config, "fractal")])
    ),
    "power_of_two_worst_ratio": max(
      _cases(rows, config, "fractal", lambda t: t & (t - 1) == 0)
    )[0],
    "filtered_worst_ratio": filtered[0],
    "filtered_worst_at": {"T": filtered[1], "kappa": filtered[2]},
    "filtered_mean_ratio": float(np.mean([c[0] for c in baseline]))
    if baseline
    else math.nan,
    "worst_cases_refined": refined,
  }


def write(
  summary: dict[str, Any], rows: list[dict[str, Any]], workdir: str
) -> str:
  """Writes ``order_stability.{json,md,png}``; returns the Markdown table."""
  table = []
  for prefix, name in _ORDERS:
    at = summary[f"{prefix}_worst_at"]
    at = f"({at['T']}, {at['kappa']:g})" if at["T"] else "-"
    table.append(
      {
        "order": name,
        "at (T, κ)": at,
        "worst max_block / floor": summary[f"{prefix}_worst_ratio"],
        "mean": summary[f"{prefix}_mean_ratio"],
      }
    )
  text = reporting.markdown_table(
    table, ["order", "worst max_block / floor", "at (T, κ)", "mean"]
  )
  files.write_json(
    os.path.join(workdir, "order_stability.json"),
    {"summary": summary, "rows": rows},
  )
  files.write_text(os.path.join(workdir, "order_stability.md"), text)
  fig, ax = reporting.subplots(figsize=(8, 4))
  for prefix, style in (("fractal", "-"), ("filtered", ".")):
    worst = {
      row["T"]: max(v for k, v in row.items() if k.startswith(prefix + "_"))
      for row in rows
      if any(k.startswith(prefix) for k in row)
    }
    ax.plot(
      list(worst), list(worst.values()), style, ms=3, lw=0.8, label=prefix
    )
  ax.set(yscale="log", xlabel="T", ylabel="max over κ of max_block / floor")
  ax.grid(True, alpha=0.3)
  ax.legend()
  reporting.save_figure(fig, os.path.join(workdir, "order_stability.png"))
  return text


def run(
  config: configs.Config, workdir: str, *, command: str = ""
) -> dict[str, Any]:
  """Runs (or resumes) the scan, writes the files and returns the summary."""
  store = resume.Store(workdir, config)
  rows, seconds = [], 0.0
  starts = range(1, config.max_t + 1, config.chunk_size)
  for lo in tqdm.tqdm(
    starts, desc="T", unit="chunk", file=sys.stderr, disable=not config.progress
  ):
    hi = min(lo + config.chunk_size - 1, config.max_t)
    chunk = store.compute(
      f"T={lo}-{hi}", lambda lo=lo, hi=hi: scan_chunk(lo, hi, config)
    )
    rows += chunk["rows"]
    seconds += chunk["seconds"]
  refined = store.compute("refined", lambda: refine(rows, config))
  summary = summarize(rows, refined["cases"], config) | {
    "seconds": seconds + refined["seconds"],
    "environment": files.environment(),
    "command": command,
  }
  print(write(summary, rows, workdir))
  store.clear()
  return summary
