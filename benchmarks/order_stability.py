"""How close `fractal_order` stays to the stability floor, for every T.

For each T and κ it measures, with `fractal_optax.stability_profile`, the
largest block amplification of the fractal schedule divided by the largest
single-step amplification (the floor no order can beat), and the same ratio
for the order that the PyTorch implementation uses (the next power of two's
order with the indices ≥ T dropped). The worst (T, κ) cases are then measured
again with a 16× finer evaluation grid.

  python -m benchmarks.order_stability            # T = 1 … 1024
  python -m benchmarks.order_stability --max-t 64 --out /tmp/order

Writes `order_stability.json` and `order_stability.md` into ``--out``. The
sweep saves its finished rows to `order_stability_partial.json` as it goes; a
run that is interrupted and restarted with the same arguments resumes there.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from tqdm import tqdm

import fractal_optax
from benchmarks import io_utils

KAPPAS = (10.0, 1e2, 1e3, 1e4, 1e5)


def filtered_power_of_two_order(num_steps: int) -> np.ndarray:
  """The next power of two's fractal order with indices ≥ T dropped."""
  full = fractal_optax.fractal_order(1 << (num_steps - 1).bit_length())
  return full[full < num_steps]


def block_ratio(order: np.ndarray, kappa: float, oversample: int) -> float:
  """max_block / max(max_single_step, 1) of the Chebyshev steps in order."""
  steps = np.asarray(fractal_optax.chebyshev_step_sizes(order.size, 1.0,
                                                        kappa))
  # Steps in float64 from the float32 generator are accurate to 1e-7, far
  # below the ratios' sampling error.
  profile = fractal_optax.stability_profile(steps[order], 1.0, kappa,
                                            oversample=oversample)
  return profile.max_block / max(profile.max_single_step, 1.0)


def main(argv: list[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--max-t", type=int, default=1024,
                      help="largest T measured (all T from 1).")
  parser.add_argument("--oversample", type=int, default=2,
                      help="evaluation points per step for the sweep.")
  parser.add_argument("--baseline-every", type=int, default=7,
                      help="measure the filtered baseline every N-th T.")
  parser.add_argument("--out", default=os.path.join("results", "order"),
                      help="output directory.")
  args = parser.parse_args(argv)
  if args.max_t < 1:
    parser.error(f"--max-t must be >= 1, got {args.max_t}")

  start = time.perf_counter()
  partial_path = os.path.join(args.out, "order_stability_partial.json")
  settings = {"oversample": args.oversample,
              "baseline_every": args.baseline_every}
  rows = []
  if os.path.exists(partial_path):
    with open(partial_path, encoding="utf-8") as f:
      partial = json.load(f)
    if partial["settings"] == settings:
      rows = partial["rows"][:args.max_t]
  for t in tqdm(range(len(rows) + 1, args.max_t + 1), desc="T", unit="T",
                initial=len(rows), total=args.max_t):
    order = fractal_optax.fractal_order(t)
    row = {"T": t}
    for kappa in KAPPAS:
      row[f"fractal_{kappa:g}"] = block_ratio(order, kappa, args.oversample)
    if t % args.baseline_every == 0 or t in (100, 127):
      filtered = filtered_power_of_two_order(t)
      for kappa in KAPPAS:
        row[f"filtered_{kappa:g}"] = block_ratio(filtered, kappa,
                                                 args.oversample)
    rows.append(row)
    if t % 64 == 0:
      io_utils.write_json(partial_path, {"settings": settings, "rows": rows})

  def worst(prefix):
    cases = [(row[f"{prefix}_{k:g}"], row["T"], k) for row in rows
             for k in KAPPAS if f"{prefix}_{k:g}" in row]
    return max(cases) if cases else (float("nan"), None, None)

  # Re-measure the worst fractal cases on a finer grid.
  cases = sorted(((row[f"fractal_{k:g}"], row["T"], k) for row in rows
                  for k in KAPPAS), reverse=True)[:5]
  refined = [{"T": t, "kappa": k, "ratio_coarse": r,
              "ratio_fine": block_ratio(fractal_optax.fractal_order(t), k, 16)}
             for r, t, k in cases]
  fractal_worst = max(refined, key=lambda c: c["ratio_fine"])
  filtered_worst = worst("filtered")
  powers = [row for row in rows if row["T"] & (row["T"] - 1) == 0]
  summary = {
      "max_t": args.max_t,
      "kappas": KAPPAS,
      "oversample": args.oversample,
      "fractal_worst_ratio": fractal_worst["ratio_fine"],
      "fractal_worst_at": {"T": fractal_worst["T"],
                           "kappa": fractal_worst["kappa"]},
      "fractal_mean_ratio": float(np.mean(
          [row[f"fractal_{k:g}"] for row in rows for k in KAPPAS])),
      "power_of_two_worst_ratio": max(
          row[f"fractal_{k:g}"] for row in powers for k in KAPPAS),
      "filtered_worst_ratio": filtered_worst[0],
      "filtered_worst_at": {"T": filtered_worst[1],
                            "kappa": filtered_worst[2]},
      "worst_cases_refined": refined,
      "seconds": time.perf_counter() - start,
      "environment": io_utils.environment(),
      "command": "python -m benchmarks.order_stability " + " ".join(
          argv if argv is not None else []),
  }
  table = io_utils.markdown_table(
      [{"order": "fractal_order (this library)",
        "worst max_block / floor": summary["fractal_worst_ratio"],
        "at (T, κ)": f"({fractal_worst['T']}, {fractal_worst['kappa']:g})",
        "mean": summary["fractal_mean_ratio"]},
       {"order": "next power of two, filtered (PyTorch implementation)",
        "worst max_block / floor": summary["filtered_worst_ratio"],
        "at (T, κ)": f"({filtered_worst[1]}, {filtered_worst[2]:g})",
        "mean": float(np.mean([row[f"filtered_{k:g}"] for row in rows
                               for k in KAPPAS
                               if f"filtered_{k:g}" in row]))}],
      ["order", "worst max_block / floor", "at (T, κ)", "mean"])
  io_utils.write_json(os.path.join(args.out, "order_stability.json"),
                      {"summary": summary, "rows": rows})
  io_utils.write_text(os.path.join(args.out, "order_stability.md"), table)
  if os.path.exists(partial_path):
    os.remove(partial_path)
  print(table)
  return summary


if __name__ == "__main__":
  main()
