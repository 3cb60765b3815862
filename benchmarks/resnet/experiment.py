"""The paper's Figure 6: training past the edge of stability, fractal cycle.

Three phases, each run a resumable ``train.train_and_evaluate`` in its own
sub-directory of ``workdir`` (a killed experiment restarted with the same
command skips finished runs and resumes the unfinished one):

1. **Edge of stability.** Constant learning rates ``sweep_learning_rates``,
   ``sweep_steps`` steps each (``sweep/lr_<rate>/``). A rate *still trains*
   when every loss is finite and the mean loss over the last quarter is at
   most ``stable_loss_ratio`` times the first loss. ``eta_stable`` is the
   largest such rate, ``eta_best`` the one with the lowest final loss.
2. **Comparison**, ``num_steps`` steps each at batch ``batch_size``:
   the constant rate ``eta_best`` (``constant/``), and the repeated T-step
   fractal Chebyshev cycle as multipliers of the base rate ``fractal_base_lr``
   (``fractal/``). By default the base is ``eta_best`` and the multipliers
   run from about 1 to about ``kappa`` (``fractal_normalization=min``): every
   fractal step is at least the best constant step, and the largest ones
   (9.2 times the base for T = 8, kappa = 10) go past ``eta_stable``. The
   base is lowered if the peak would exceed ``fractal_peak_limit``
   ``* eta_stable``, and raised to put the peak at ``2 eta_stable`` if it
   would not exceed ``eta_stable`` at all.
3. **Report.** Per step: training loss, learning rate, and whether the update
   increased the loss of its batch; test accuracy at the end. ``figure.png``
   shows both losses against step with the learning rates beneath, the
   largest stable constant rate as a line and the fractal steps above it
   marked; ``summary.json`` and ``results.md`` hold the numbers, with a
   verdict read off them (whichever way it comes out).

Example::

  python -m benchmarks.resnet.main --preset quick --workdir results/resnet
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import numpy as np

from benchmarks import harness
from benchmarks import input_pipeline
from benchmarks import io_utils
from benchmarks.resnet import parallel
from benchmarks.resnet import train
from benchmarks.resnet.configs import Config

FIGURE_FILE = "figure.png"
TABLE_FILE = "results.md"


def is_stable(summary: dict[str, Any], stable_loss_ratio: float) -> bool:
  """Whether a constant-rate sweep run still trains (see module docstring)."""
  return bool(summary.get("all_finite")) and (
      summary["final_window_loss"]
      <= stable_loss_ratio * summary["initial_loss"])


def _run_name(rate: float) -> str:
  return f"lr_{rate:g}"


def sweep(config: Config, workdir: str, dataset: Any, mesh: Any
          ) -> list[dict[str, Any]]:
  """Phase 1: one short constant-rate run per ``sweep_learning_rates``."""
  rows = []
  for rate in sorted(config.sweep_learning_rates):
    run_config = dataclasses.replace(
        config, mode="train", schedule="constant", learning_rate=rate,
        num_steps=config.sweep_steps, eval_every=0)
    summary = train.train_and_evaluate(
        run_config, os.path.join(workdir, "sweep", _run_name(rate)),
        dataset=dataset, mesh=mesh, desc=f"sweep lr={rate:g}")
    rows.append({
        "learning_rate": rate,
        "initial_loss": summary["initial_loss"],
        "final_window_loss": summary["final_window_loss"],
        "all_finite": summary["all_finite"],
        "stable": is_stable(summary, config.stable_loss_ratio),
        "fraction_loss_increased": summary.get("fraction_loss_increased"),
        "test_accuracy": summary.get("test_accuracy"),
    })
  return rows


def _per_step(workdir: str, num_steps: int) -> dict[str, np.ndarray]:
  """Per-step arrays (``step``, ``loss``, ...) of a finished run."""
  records = harness.read_metrics(os.path.join(workdir, harness.METRICS_FILE))
  records = [r for r in records if r["step"] < num_steps]
  out = {"step": harness.metrics_arrays(records, "loss")[0]}
  for key in ("loss", "learning_rate", "loss_increased", "loss_after"):
    out[key] = harness.metrics_arrays(records, key)[1]
  return out


def compare(config: Config, rows: list[dict[str, Any]], workdir: str,
            dataset: Any, mesh: Any) -> dict[str, Any]:
  """Phases 2 and 3: constant vs fractal at ``num_steps``, figure, numbers."""
  stable = [r for r in rows if r["stable"]]
  found_stable = bool(stable)
  if not found_stable:
    # Nothing met the criterion: go on with the best finite run, flagged, so
    # that a long run still reports what it measured.
    stable = [r for r in rows if r["all_finite"]] or rows
  eta_stable = max(r["learning_rate"] for r in stable)
  eta_best = min(stable, key=lambda r: r["final_window_loss"])["learning_rate"]
  base = config.fractal_base_lr or eta_best
  peak = float(np.max(train.lr_multipliers(
      dataclasses.replace(config, schedule="fractal"))))
  if not config.fractal_base_lr:
    limit = config.fractal_peak_limit
    if limit and base * peak > limit * eta_stable:
      base = limit * eta_stable / peak
    if base * peak <= eta_stable:
      # The claim is about steps beyond the stable limit: make sure there are.
      base = min(2.0, limit or 2.0) * eta_stable / peak
  runs = {
      "constant": dataclasses.replace(
          config, mode="train", schedule="constant", learning_rate=eta_best),
      "fractal": dataclasses.replace(
          config, mode="train", schedule="fractal", learning_rate=base),
  }
  results, curves = {}, {}
  for name, run_config in runs.items():
    run_dir = os.path.join(workdir, name)
    results[name] = train.train_and_evaluate(
        run_config, run_dir, dataset=dataset, mesh=mesh, desc=name)
    curves[name] = _per_step(run_dir, config.num_steps)

  frac = curves["fractal"]
  above = frac["learning_rate"] > eta_stable * (1 + 1e-6)
  increased = frac["loss_increased"].astype(bool) if frac[
      "loss_increased"].size else np.zeros_like(above)
  fractal_extra = {
      "fraction_steps_above_stable": float(above.mean()),
      "fraction_loss_increased_above_stable":
          float(increased[above].mean()) if above.any() else None,
      "fraction_loss_increased_other":
          float(increased[~above].mean()) if (~above).any() else None,
      "peak_over_stable": float(frac["learning_rate"].max() / eta_stable),
  }
  const, fr = results["constant"], results["fractal"]
  converged = {n: bool(r["all_finite"]) and r["final_window_loss"]
               <= config.stable_loss_ratio * r["initial_loss"]
               for n, r in results.items()}
  verdict = _verdict(const, fr, converged, fractal_extra)

  _figure(os.path.join(workdir, FIGURE_FILE), curves, eta_stable, eta_best,
          base, config)
  if not found_stable:
    verdict = ("No sweep rate met the stability criterion; the largest finite "
               "one stands in for it. " + verdict)
  return {
      "sweep_found_stable_rate": found_stable,
      "max_stable_learning_rate": eta_stable,
      "best_constant_learning_rate": eta_best,
      "fractal_base_learning_rate": base,
      "constant": _brief(const),
      "fractal": {**_brief(fr), **fractal_extra},
      "converged": converged,
      "final_window_loss_ratio_fractal_over_constant":
          fr["final_window_loss"] / const["final_window_loss"],
      "final_cycle_end_loss_ratio_fractal_over_constant":
          fr["final_cycle_end_loss"] / const["final_cycle_end_loss"],
      "test_accuracy_difference_fractal_minus_constant":
          fr.get("test_accuracy", np.nan) - const.get("test_accuracy", np.nan),
      "verdict": verdict,
  }


def _brief(summary: dict[str, Any]) -> dict[str, Any]:
  keys = ("learning_rate", "schedule", "initial_loss", "final_loss",
          "final_window_loss", "final_cycle_end_loss", "min_loss", "all_finite",
          "fraction_loss_increased", "max_loss_ratio", "max_learning_rate",
          "mean_learning_rate", "test_loss", "test_accuracy", "multipliers")
  return {k: summary[k] for k in keys if k in summary}


def _verdict(const: dict[str, Any], fr: dict[str, Any],
             converged: dict[str, bool], extra: dict[str, Any]) -> str:
  """A sentence stating what the numbers say (no tuning towards a winner)."""
  parts = [
      "The fractal run " + ("converged" if converged["fractal"] else
                            "did NOT converge")
      + f" (training loss {fr['initial_loss']:.3g} -> "
      f"{fr['final_window_loss']:.3g}, mean of the last quarter)"]
  if extra["fraction_steps_above_stable"]:
    parts.append(
        f"; {100 * extra['fraction_steps_above_stable']:.0f}% of its steps "
        f"exceed the largest stable constant rate (peak "
        f"{extra['peak_over_stable']:.2f}x)")
    inc = extra["fraction_loss_increased_above_stable"]
    if inc is not None:
      parts.append(f" and {100 * inc:.0f}% of those increased their batch's "
                   "loss")
  else:
    parts.append("; none of its steps exceeds the largest stable constant "
                 "rate, so it does not test the claim")
  ratio = fr["final_window_loss"] / const["final_window_loss"]
  ends = fr["final_cycle_end_loss"] / const["final_cycle_end_loss"]
  parts.append(
      f". Its final training loss is {'lower' if ratio < 1 else 'higher'} "
      f"than the best constant rate's (ratio {ratio:.3f} over the last "
      f"quarter, {ends:.3f} at cycle ends)")
  if "test_accuracy" in fr and "test_accuracy" in const:
    parts.append(f"; test accuracy {fr['test_accuracy']:.4f} (fractal) vs "
                 f"{const['test_accuracy']:.4f} (constant)")
  return "".join(parts) + "."


def _figure(path: str, curves: dict[str, dict[str, np.ndarray]],
            eta_stable: float, eta_best: float, base: float,
            config: Config) -> None:
  labels = {
      "constant": f"constant lr {eta_best:g}",
      "fractal": (f"fractal T={config.fractal_num_steps}, "
                  f"kappa={config.fractal_kappa:g}, base {base:g}"),
  }
  frac = curves["fractal"]
  above = frac["step"][frac["learning_rate"] > eta_stable * (1 + 1e-6)]
  harness.plot_loss_and_lr(
      path,
      {labels[n]: (c["step"], c["loss"]) for n, c in curves.items()},
      {labels[n]: (c["step"], c["learning_rate"]) for n, c in curves.items()},
      ylabel="training loss (batch)",
      title=(f"ResNet-18 (width x{config.width_multiplier:g}) on "
             f"{config.dataset}, batch {config.batch_size}: dots mark fractal "
             "steps above the largest stable constant rate"),
      lr_reference=eta_stable,
      lr_reference_label=f"largest stable constant rate {eta_stable:g}",
      marks={labels["fractal"]: above})


def _table(rows: list[dict[str, Any]], result: dict[str, Any]) -> str:
  sweep_table = io_utils.markdown_table(
      rows, ["learning_rate", "initial_loss", "final_window_loss", "stable",
             "test_accuracy"])
  runs = [dict(result[name], run=name) for name in ("constant", "fractal")]
  run_table = io_utils.markdown_table(
      runs, ["run", "learning_rate", "max_learning_rate", "final_window_loss",
             "final_cycle_end_loss", "fraction_loss_increased",
             "fraction_steps_above_stable",
             "fraction_loss_increased_above_stable", "test_accuracy"])
  stable_note = "" if result["sweep_found_stable_rate"] else (
      " (no rate met the criterion: the largest finite rate)")
  return ("## Constant-rate sweep\n\n" + sweep_table
          + f"\nLargest stable constant rate: "
          f"{result['max_stable_learning_rate']:g}{stable_note}; fractal base "
          f"rate {result['fractal_base_learning_rate']:g}\n\n"
          "## Constant vs fractal\n\n" + run_table + "\n"
          + result["verdict"] + "\n")


def run_experiment(config: Config, workdir: str,
                   dataset: input_pipeline.Dataset | None = None
                   ) -> dict[str, Any]:
  """Runs the sweep and the comparison; writes summary, table and figure.

  Args:
    config: the experiment's config (``mode=experiment``).
    workdir: output directory.
    dataset: the data (default: ``train.load_data(config)``).

  Returns:
    The summary dict (also ``workdir/summary.json``).
  """
  train.check_config(config)
  parallel.maybe_initialize_distributed(config.distributed)
  mesh = parallel.make_mesh()
  harness.remove_summary(workdir)
  harness.check_workdir_config(workdir, config)
  start = time.perf_counter()
  if dataset is None:
    dataset = train.load_data(config)
  rows = sweep(config, workdir, dataset, mesh)
  result = compare(config, rows, workdir, dataset, mesh)
  summary = {
      "sweep": rows,
      **result,
      "config": harness.config_to_dict(config),
      "num_train": int(dataset.train_images.shape[0]),
      "num_test": int(dataset.test_images.shape[0]),
      "wall_time_s_this_invocation": time.perf_counter() - start,
      "environment": io_utils.environment(),
  }
  io_utils.write_text(os.path.join(workdir, TABLE_FILE), _table(rows, result))
  harness.write_summary(workdir, summary)
  return summary
