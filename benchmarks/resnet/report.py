"""Tables, figure and verdict of the ResNet experiment and throughput."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks import reporting

FIGURE_FILE = "figure.png"
TABLE_FILE = "results.md"


def verdict(result: dict[str, Any]) -> str:
  """A sentence stating what the numbers say (no tuning towards a winner)."""
  const, fr = result["constant"], result["fractal"]
  text = ("The fractal run " + ("converged" if result["converged"]["fractal"]
                                else "did NOT converge")
          + f" (training loss {fr['initial_loss']:.3g} -> "
          f"{fr['final_window_loss']:.3g}, mean of the last quarter)")
  if fr["fraction_steps_above_stable"]:
    text += (f"; {100 * fr['fraction_steps_above_stable']:.0f}% of its steps "
             "exceed the largest stable constant rate (peak "
             f"{fr['peak_over_stable']:.2f}x)")
    inc = fr["fraction_loss_increased_above_stable"]
    if inc is not None:
      text += f" and {100 * inc:.0f}% of those increased their batch's loss"
  else:
    text += ("; none of its steps exceeds the largest stable constant rate, "
             "so it does not test the claim")
  ratio = result["final_window_loss_ratio_fractal_over_constant"]
  text += (f". Its final training loss is {'lower' if ratio < 1 else 'higher'}"
           f" than the best constant rate's (ratio {ratio:.3f} over the last "
           "quarter, "
           f"{result['final_cycle_end_loss_ratio_fractal_over_constant']:.3f}"
           " at cycle ends)")
  if "test_accuracy" in fr and "test_accuracy" in const:
    text += (f"; test accuracy {fr['test_accuracy']:.4f} (fractal) vs "
             f"{const['test_accuracy']:.4f} (constant)")
  if not result["sweep_found_stable_rate"]:
    text = ("No sweep rate met the stability criterion; the largest finite "
            "one stands in for it. " + text)
  return text + "."


def figure(path: str, curves: dict[str, dict[str, np.ndarray]],
           result: dict[str, Any], config: Any) -> None:
  """Both losses against step, rates beneath, fractal steps above marked."""
  eta_stable = result["max_stable_learning_rate"]
  labels = {
      "constant": f"constant lr {result['best_constant_learning_rate']:g}",
      "fractal": (f"fractal T={config.fractal_num_steps}, "
                  f"kappa={config.fractal_kappa:g}, base "
                  f"{result['fractal_base_learning_rate']:g}"),
  }
  frac = curves["fractal"]
  reporting.plot_loss_and_lr(
      path,
      {labels[n]: (c["step"], c["loss"]) for n, c in curves.items()},
      {labels[n]: (c["step"], c["learning_rate"]) for n, c in curves.items()},
      ylabel="training loss (batch)",
      title=(f"ResNet-18 (width x{config.width_multiplier:g}) on "
             f"{config.dataset}, batch {config.batch_size}: dots mark fractal "
             "steps above the largest stable constant rate"),
      lr_reference=eta_stable,
      lr_reference_label=f"largest stable constant rate {eta_stable:g}",
      marks={labels["fractal"]: frac["step"][
          frac["learning_rate"] > eta_stable * (1 + 1e-6)]})


def experiment_table(rows: list[dict[str, Any]], result: dict[str, Any]
                     ) -> str:
  """``results.md``: the sweep, the comparison and the verdict."""
  sweep = reporting.markdown_table(
      rows, ["learning_rate", "initial_loss", "final_window_loss", "stable",
             "test_accuracy"])
  runs = reporting.markdown_table(
      [dict(result[n], run=n) for n in ("constant", "fractal")],
      ["run", "learning_rate", "max_learning_rate", "final_window_loss",
       "final_cycle_end_loss", "fraction_loss_increased",
       "fraction_steps_above_stable", "fraction_loss_increased_above_stable",
       "test_accuracy"])
  note = "" if result["sweep_found_stable_rate"] else (
      " (no rate met the criterion: the largest finite rate)")
  return ("## Constant-rate sweep\n\n" + sweep + "\nLargest stable constant "
          f"rate: {result['max_stable_learning_rate']:g}{note}; fractal base "
          f"rate {result['fractal_base_learning_rate']:g}\n\n"
          "## Constant vs fractal\n\n" + runs + "\n" + result["verdict"]
          + "\n")


def throughput_table(summary: dict[str, Any]) -> str:
  """The throughput table: fractal against constant, same run."""
  env = summary["environment"]
  names = {"fractal": "inject_hyperparams(fractal_sgd) (T = "
                      f"{summary['config']['fractal_num_steps']}, repeated)",
           "constant": "optax.sgd (constant)"}
  rows = [{"learning rate": label,
           "images/s (best)": summary[n]["images_per_s_best"],
           "images/s (median)": summary[n]["images_per_s_median"],
           "compile s": summary[n].get("compile_s"),
           "fraction of matmul rate": summary[n].get(
               "fraction_of_matmul_rate")} for n, label in names.items()]
  head = (f"Batch {summary['batch_size']}, width ×"
          f"{summary['width_multiplier']:g}, {summary['dtype']}, images "
          f"{summary['image_shape']}, {summary['repeats']} interleaved repeats"
          f" of {summary['steps_per_repeat']} steps on {env['backend']} "
          f"({', '.join(sorted(set(env['devices'])))}), jax {env['jax']}.\n\n")
  tail = (f"\nThroughput ratio fractal / constant: "
          f"**{summary['ratio_fractal_over_constant']:.4f}** (best repeats; "
          f"median of paired repeats "
          f"{summary['ratio_median_of_paired_repeats']:.4f}; target ≥ "
          f"{summary['ratio_target']}).\n")
  return head + reporting.markdown_table(rows, list(rows[0])) + tail
