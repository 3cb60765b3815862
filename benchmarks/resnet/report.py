"""Tables, figure and verdict of the ResNet experiment and throughput."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks import reporting

FIGURE_FILE = "figure.png"
TABLE_FILE = "results.md"


def _pm(run: dict[str, Any], key: str, fmt: str = ".4g") -> str:
  """``mean ± std`` of ``key`` over the seeds ("—" if absent)."""
  if run.get(key) is None:
    return "—"
  std = run.get(f"{key}_std")
  return f"{run[key]:{fmt}}" + (
    f" ± {std:{fmt}}"
    if std is not None and len(run.get("seeds", ())) > 1
    else ""
  )


def verdict(result: dict[str, Any]) -> str:
  """Sentences stating what the numbers say (no tuning towards a winner)."""
  const = result["constant"]
  seeds = len(const.get("seeds", [0]))
  parts = [f"Means ± standard deviations over {seeds} seed(s)."]
  for name in ("fractal", "adaptive"):
    run = result[name]
    converged = result["converged"][name]
    text = (
      f"The {name} runs "
      f"{'all converged' if converged else 'did NOT all converge'}"
      f" (training loss {run['initial_loss']:.3g} -> "
      f"{_pm(run, 'final_window_loss', '.3g')}, mean of the last "
      "quarter)"
    )
    if run["fraction_steps_above_stable"]:
      text += (
        f"; {100 * run['fraction_steps_above_stable']:.0f}% of their "
        "steps exceed the largest stable constant rate (peak "
        f"{run['peak_over_stable']:.2f}x)"
      )
      inc = run.get("fraction_loss_increased_above_stable")
      if inc is not None:
        text += f" and {100 * inc:.0f}% of those increased their batch's loss"
    else:
      text += "; none of their steps exceeds the largest stable constant rate"
    if "fraction_steps_above_2_over_M" in run:
      text += (
        f"; {100 * run['fraction_steps_above_2_over_M']:.0f}% of its "
        "steps exceed 2/M of its own M (final M "
        f"{_pm(run, 'final_max_curvature', '.3g')}, "
        f"{_pm(run, 'rejections', '.2g')} rejected cycles)"
      )
    ratio = result[f"final_window_loss_ratio_{name}_over_constant"]
    ends = result[f"final_cycle_end_loss_ratio_{name}_over_constant"]
    text += (
      f". Final training loss {'below' if ratio < 1 else 'above'} the "
      f"best constant rate's (ratio of means {ratio:.3f} over the last "
      f"quarter, {ends:.3f} at cycle ends)"
    )
    if "test_accuracy" in run and "test_accuracy" in const:
      text += (
        f"; test accuracy {_pm(run, 'test_accuracy')} against "
        f"{_pm(const, 'test_accuracy')}"
      )
    parts.append(text + ".")
  if not result["sweep_found_stable_rate"]:
    parts.insert(
      0,
      "No sweep rate met the stability criterion; the largest "
      "finite one stands in for it.",
    )
  return " ".join(parts)


def _labels(result: dict[str, Any], config: Any) -> dict[str, str]:
  return {
    "constant": f"constant lr {result['best_constant_learning_rate']:g}",
    "fractal": (
      f"fractal T={config.fractal_num_steps}, "
      f"kappa={config.fractal_kappa:g}, base "
      f"{result['fractal_base_learning_rate']:g}"
    ),
    "adaptive": (
      f"adaptive T={config.fractal_num_steps}, "
      f"kappa_max={config.fractal_kappa:g}"
    ),
  }


def figure(
  path: str,
  curves: dict[str, dict[str, np.ndarray]],
  result: dict[str, Any],
  config: Any,
) -> None:
  """The losses against step, rates beneath, steps above the edge marked."""
  eta_stable = result["max_stable_learning_rate"]
  labels = _labels(result, config)
  reporting.plot_loss_and_lr(
    path,
    {labels[n]: (c["step"], c["loss"]) for n, c in curves.items()},
    {labels[n]: (c["step"], c["learning_rate"]) for n, c in curves.items()},
    ylabel="training loss (batch)",
    title=(
      f"ResNet-18 (width x{config.width_multiplier:g}) on "
      f"{config.dataset}, batch {config.batch_size}, seed "
      f"{config.seeds[0]}: dots mark steps above the largest stable "
      "constant rate"
    ),
    lr_reference=eta_stable,
    lr_reference_label=f"largest stable constant rate {eta_stable:g}",
    marks={
      labels[n]: c["step"][c["learning_rate"] > eta_stable * (1 + 1e-6)]
      for n, c in curves.items()
      if n != "constant"
    },
  )


def experiment_table(rows: list[dict[str, Any]], result: dict[str, Any]) -> str:
  """``results.md``: the sweep, the comparison and the verdict."""
  sweep = reporting.markdown_table(
    rows,
    [
      "learning_rate",
      "initial_loss",
      "final_window_loss",
      "stable",
      "test_accuracy",
    ],
  )
  keys = (
    "final_window_loss",
    "final_cycle_end_loss",
    "test_accuracy",
    "fraction_loss_increased",
    "fraction_steps_above_stable",
    "fraction_loss_increased_above_stable",
    "fraction_steps_above_2_over_M",
  )
  runs = [
    {
      "run": n,
      "seeds": len(result[n].get("seeds", [0])),
      "learning_rate": result[n].get("learning_rate"),
      "max_learning_rate": _pm(result[n], "max_learning_rate"),
      **{k: _pm(result[n], k) for k in keys},
    }
    for n in ("constant", "fractal", "adaptive")
  ]
  note = (
    ""
    if result["sweep_found_stable_rate"]
    else " (no rate met the criterion: the largest finite rate)"
  )
  return (
    f"## Constant-rate sweep\n\n{sweep}\nLargest stable constant rate: "
    f"{result['max_stable_learning_rate']:g}{note}; fractal base rate "
    f"{result['fractal_base_learning_rate']:g}\n\n"
    "## Constant vs fractal vs adaptive (mean ± std over seeds)\n\n"
    f"{reporting.markdown_table(runs, list(runs[0]))}\n{result['verdict']}\n"
  )


def throughput_table(summary: dict[str, Any]) -> str:
  """The throughput table: fractal against constant, same run."""
  env = summary["environment"]
  names = {
    "fractal": "inject_hyperparams(fractal_sgd) (T = "
    f"{summary['config']['fractal_num_steps']}, repeated)",
    "constant": "optax.sgd (constant)",
  }
  rows = [
    {
      "learning rate": label,
      "images/s (best)": summary[n]["images_per_s_best"],
      "images/s (median)": summary[n]["images_per_s_median"],
      "compile s": summary[n].get("compile_s"),
      "fraction of matmul rate": summary[n].get("fraction_of_matmul_rate"),
    }
    for n, label in names.items()
  ]
  head = (
    f"Batch {summary['batch_size']}, width ×"
    f"{summary['width_multiplier']:g}, {summary['dtype']}, images "
    f"{summary['image_shape']}, {summary['repeats']} interleaved repeats"
    f" of {summary['steps_per_repeat']} steps on {env['backend']} "
    f"({', '.join(sorted(set(env['devices'])))}), jax {env['jax']}.\n\n"
  )
  tail = (
    f"\nThroughput ratio fractal / constant: "
    f"**{summary['ratio_fractal_over_constant']:.4f}** (best repeats; "
    f"median of paired repeats "
    f"{summary['ratio_median_of_paired_repeats']:.4f}; target ≥ "
    f"{summary['ratio_target']}).\n"
  )
  return head + reporting.markdown_table(rows, list(rows[0])) + tail
