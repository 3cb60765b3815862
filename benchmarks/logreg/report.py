"""Tables and figures of the logistic-regression results (from their dicts).

``results_markdown`` and ``plot_figure5`` render a comparison's summary;
``sweep_markdown`` and ``plot_heatmap`` the sweep's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import math
from typing import Any

import numpy as np

from benchmarks import metrics
from benchmarks import reporting


def _seconds(value: float | None) -> str:
  return "—" if value is None else f"{value:.3g} s"


def _percent(fraction: float) -> str:
  return f"{100 * fraction:.0f}%"


def _fmt(value: Any, digits: int = 3) -> str:
  if value is None:
    return "—"
  if isinstance(value, bool):
    return "yes" if value else "no"
  if isinstance(value, float):
    return f"{value:.{digits}g}"
  return str(value)


def results_markdown(summary: Mapping[str, Any]) -> str:
  """README-ready Markdown: setup, per-method table, ratios, targets."""
  c, cfg, ds = summary["curvature"], summary["config"], summary["dataset"]
  n, best = cfg["num_steps"], summary["best_constant"]
  lines = [
    f"Dataset `{ds['name']}` ({ds['num_train']} train / {ds['num_test']} "
    f"test), λ = {cfg['l2']:g}, m = λ, M = {c['max_curvature']:.4g} "
    f"(`max_curvature={c['max_curvature_choice']}`; estimated: "
    f"{c['max_curvature_at_init']:.4g} at the start, "
    f"{c['max_curvature_at_optimum']:.4g} at the optimum; global bound "
    f"{c['max_curvature_global_bound']:.4g}), κ = {c['kappa']:.4g}; "
    f"constant steps are multiples of 1/{c['max_curvature_estimate']:.4g}."
    f" Target: (f − f*)/(f₀ − f*) ≤ "
    f"{cfg['epsilon']:g}; f* = {summary['f_star']:.8g} "
    f"({summary['f_star_source']}). {n} steps per method; best constant "
    f"step: `{best}`.",
    "",
  ]
  rows = []
  for name, r in summary["methods"].items():
    steps = r["steps_to_epsilon"]
    rows.append(
      {
        "method": r["label"] + (" **(best constant)**" if name == best else ""),
        "steps to ε": _fmt(steps) if steps is not None else f"> {n}",
        "evaluations to ε": (
          _fmt(r["evaluations_to_epsilon"]) if steps is not None else "—"
        ),
        "wall time to ε": _seconds(r.get("seconds_to_epsilon")),
        "stays below from": _fmt(r["steps_to_epsilon_stay"]),
        "final (f−f*)/(f₀−f*)": _fmt(r["final_relative_suboptimality"]),
        "steps above 2/M": _percent(r["fraction_steps_above_2_over_M"]),
        "loss-increasing steps": _percent(r["fraction_loss_increasing"]),
        "largest increase of f−f*": _fmt(r["largest_suboptimality_increase"]),
        "test acc.": _fmt(r["test_accuracy"], 4),
        "diverged": _fmt(r["diverged"]),
      }
    )
  lines.append(reporting.markdown_table(rows, list(rows[0])))
  for name, ratio in summary["ratios"].items():
    t, r = summary["targets"][name], summary["methods"][name]
    extra = (
      f"; {r['rejections']} rejected cycles, final M = {r['max_curvature']:.4g}"
      if "rejections" in r
      else ""
    )
    lines.append(
      f"- `{name}` (T = {r['hparams']['cycle_length']}"
      f"): {_fmt(ratio['speedup_vs_best_constant'])}× fewer evaluations "
      f"than the best constant step (target ≥ 3: "
      f"{_fmt(t['speedup_vs_best_constant_at_least_3'])}; wall time "
      f"{_fmt(ratio['time_speedup_vs_best_constant'])}×), "
      f"{_fmt(ratio['evaluations_over_nesterov'])}× Nesterov's evaluations "
      f"(target ≤ {t['nesterov_limit']:g}: "
      f"{_fmt(t['within_limit_of_nesterov'])}; wall time "
      f"{_fmt(ratio['time_over_nesterov'])}×), "
      f"{_percent(t['fraction_loss_increasing'])} of its steps up to ε "
      f"(and {_percent(r['fraction_loss_increasing_to_floor'])} up to "
      f"{summary['noise_floor']:g}) increase the loss{extra}."
    )
  lines += [
    "",
    "Evaluations are gradient-equivalent evaluations (an HVP "
    "counts 2; one per step for every method but `adaptive`, "
    "whose count includes its Lanczos measurement of M at the "
    "start). Wall time to ε: a second, compiled run of the method "
    "stopped at ε, on this machine (shared CPU: noisy). Step "
    "fractions (above 2/M, loss-increasing) are counted over "
    "the steps before the method first reaches ε (afterwards float "
    "rounding dominates); 2/M is the classical stability limit of "
    "a constant step, with the M of the schedules.",
  ]
  return "\n".join(lines) + "\n"


def plot_figure5(
  path: str, summary: Mapping[str, Any], records: Mapping[str, Any]
) -> None:
  """Figure 5: relative suboptimality per method, learning rates beneath.

  Args:
    path: the PNG to write.
    summary: the comparison's summary.
    records: method name -> its metrics records (one per step).
  """
  f_star, f0 = summary["f_star"], summary["f0"]
  best = summary["best_constant"]
  others = ("heavy_ball", "nesterov", "fractal", "fractal_short", "adaptive")
  show = list(dict.fromkeys(("gd", best, *others)))
  curves, rates, marks = {}, {}, {}
  for name in show:
    label = summary["methods"][name]["label"] + (
      " (best constant)" if name == best else ""
    )
    values = metrics.metrics_arrays(records[name], "loss")[1]
    curves[label] = (np.arange(len(values)), (values - f_star) / (f0 - f_star))
    if name not in ("heavy_ball", "nesterov", "gd"):
      rates[label] = metrics.metrics_arrays(records[name], "learning_rate")
    if name.startswith("fractal") or name == "adaptive":
      marks[label] = np.nonzero(values[1:] > values[:-1])[0] + 1
  reached = [summary["methods"][n]["steps_to_epsilon"] for n in show]
  reached = [s for s in reached if s is not None]
  n = summary["config"]["num_steps"]
  c = summary["curvature"]
  reporting.plot_loss_and_lr(
    path,
    curves,
    rates,
    ylabel="(f − f*) / (f₀ − f*)",
    title=(
      f"Logistic regression, {summary['dataset']['name']}, "
      f"λ = {summary['config']['l2']:g}, κ ≈ {c['kappa']:.0f} "
      "(dots: steps that increased the loss)"
    ),
    lr_reference=summary["stability_limit_2_over_M"],
    lr_reference_label="2/M",
    marks=marks,
    styles={k: {"ls": "--"} for k in curves if "fractal" not in k},
    xlim=(0, min(n, 1.2 * max(reached)) if reached else n),
  )


def _cell(
  run: Mapping[str, Any] | None, n: int, key: str = "evaluations_to_epsilon"
) -> str:
  """A sweep cell: ``run[key]`` at the target (steps where a run of an older
  sweep lacks ``key``), ``div`` (diverged) or ``> n`` (not reached)."""
  if run is None:
    return ""
  if run["diverged"]:
    return "div"
  steps = run["steps_to_epsilon"]
  count = None if steps is None else run.get(key, steps)
  return f"> {n}" if count is None else str(count)


def _ratio(x: float | None, y: float | None) -> str:
  return f"{x / y:.2f}" if x is not None and y else "—"


def _seed_list(seeds: Sequence[int]) -> str:
  """``0–2`` for consecutive seeds, else ``0, 3, 7``."""
  if list(seeds) == list(range(seeds[0], seeds[0] + len(seeds))):
    return f"{seeds[0]}–{seeds[-1]}"
  return ", ".join(map(str, seeds))


def _spread(counts: Sequence[int | None], n: int) -> str:
  """``mean (min–max)`` of the counts that reached the target."""
  reached = [c for c in counts if c is not None]
  if not reached:
    return f"> {n}"
  text = f"{np.mean(reached):.0f} ({min(reached)}–{max(reached)})"
  if len(reached) < len(counts):
    text += f", {len(counts) - len(reached)} of {len(counts)} > {n}"
  return text


def sweep_markdown(summary: Mapping[str, Any]) -> str:
  """README-ready table: steps to epsilon per lambda, method and T."""
  cfg = summary["config"]
  n = cfg["sweep_steps"]
  adaptive = all("adaptive" in r["runs"] for r in summary["rows"])
  seeds = cfg.get("adaptive_seeds", [0])
  seed_column = f"adaptive, seeds {_seed_list(seeds)}: mean (min–max)"
  by_seed = adaptive and len(seeds) > 1
  table, times = [], []
  for r in summary["rows"]:
    runs, best = r["runs"], r["best_constant"]
    row = {
      "λ": f"{r['l2']:g}",
      "κ": f"{r['kappa']:.0f}",
      "T (bound)": r["bound_cycle"],
      "GD 1/M": _cell(runs["constant_1"], n),
      "best constant": f"{_cell(runs[best], n)} ({best.split('_')[1]}/M)",
      "heavy ball": _cell(runs["heavy_ball"], n),
      "Nesterov": _cell(runs["nesterov"], n),
    }
    for t in sorted(cfg["sweep_cycles"]):
      row[f"T={t}"] = _cell(runs.get(f"fractal_{t}"), n)
    row["T=bound"] = _cell(runs[f"fractal_{r['bound_cycle']}"], n)
    table.append(row)
    if not adaptive:
      continue
    a = runs["adaptive"]
    row["adaptive"] = _cell(a, n)
    if by_seed:
      row[seed_column] = _spread(a.get("evaluations_by_seed", []), n)
    # Evaluations (None: diverged) and seconds to epsilon, per run.
    evals = {
      k: None if v["diverged"] else v.get("evaluations_to_epsilon")
      for k, v in runs.items()
    }
    secs = {k: v.get("seconds_to_epsilon") for k, v in runs.items()}
    row["best const. / adaptive"] = _ratio(evals[best], evals["adaptive"])
    row["adaptive / Nesterov"] = _ratio(evals["adaptive"], evals["nesterov"])
    row["rejections"] = a["rejections"]
    row["adaptive diverged"] = _fmt(a["diverged"])
    timed = {
      "best constant": best,
      "heavy ball": "heavy_ball",
      "Nesterov": "nesterov",
      "adaptive": "adaptive",
    }
    times.append(
      {
        "λ": row["λ"],
        **{
          label: f"{_cell(runs[name], n)} / {_seconds(secs[name])}"
          for label, name in timed.items()
        },
        "wall time: best const. / adaptive": _ratio(
          secs[best], secs["adaptive"]
        ),
        "wall time: adaptive / Nesterov": _ratio(
          secs["adaptive"], secs["nesterov"]
        ),
      }
    )
  text = (
    f"Gradient evaluations to (f − f*)/(f₀ − f*) ≤ {cfg['epsilon']:g} "
    f"on `{summary['dataset']['name']}` "
    f"({summary['dataset']['num_train']} training images), {n} steps "
    f"per run; `div`: diverged, `> {n}`: not reached. One evaluation "
    f"per step for all but `adaptive` (an HVP counts 2, its Lanczos "
    f"measurement of M at the start included). Fractal columns repeat "
    f"a cycle of T steps built for [m, M] = [λ, M], with M = "
    f"`max_curvature={cfg['max_curvature']}` and κ = M/λ; heavy ball "
    f"and Nesterov use the same M; constant steps are multiples of 1/M̂,"
    f" M̂ the estimated curvature, whatever M is; `adaptive` is "
    f"`adaptive_fractal_sgd` with m = λ and no M (it measures M)."
  )
  if by_seed:
    text += (
      f" `adaptive, seeds …`: the same run with each seed of its Lanczos "
      f"start vector (seed {seeds[0]} is the `adaptive` column): where "
      f"cycles are rejected the path is chaotic, and the seed, or another "
      f"CPU's float rounding, moves the count within about this range."
    )
  text += "\n\n" + reporting.markdown_table(table, list(table[0]))
  if times:
    text += (
      "\nEvaluations / wall time to ε of the same runs (a second, "
      "compiled run of each method stopped at ε; shared 2-core CPU, "
      "so noisy):\n\n" + reporting.markdown_table(times, list(times[0]))
    )
  return text


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
  fig, ax = reporting.subplots(
    figsize=(1.0 * len(cycles) + 3, 0.7 * len(rows) + 2)
  )
  for i, r in enumerate(rows):
    best = r["runs"][r["best_constant"]]["steps_to_epsilon"]
    for j, t in enumerate(cycles):
      t = r["bound_cycle"] if t == "bound" else t
      run = r["runs"][f"fractal_{t}"]
      steps = run["steps_to_epsilon"]
      text = _cell(run, n, "steps_to_epsilon")
      if steps is not None and not run["diverged"]:
        speedup = (best if best is not None else n) / max(steps, 1)
        value[i, j] = math.log2(speedup)
        text += f"\n{'≥' if best is None else ''}{speedup:.2g}×"
      if cycles[j] == "bound":
        text += f"\nT={t}"
      ax.text(j, i, text, ha="center", va="center", fontsize=8)
  limit = float(np.nanmax(np.abs(value), initial=1.0))
  cmap = matplotlib.colormaps["RdBu"].with_extremes(bad="0.8")
  image = ax.imshow(
    np.ma.masked_invalid(value),
    cmap=cmap,
    vmin=-limit,
    vmax=limit,
    aspect="auto",
  )
  ax.set_xticks(range(len(cycles)), [str(t) for t in cycles])
  ax.set_yticks(
    range(len(rows)),
    [
      f"λ={r['l2']:g}\nκ={r['kappa']:.0f}\n"
      f"const: {_cell(r['runs'][r['best_constant']], n, 'steps_to_epsilon')}"
      for r in rows
    ],
    fontsize=8,
  )
  ax.set_xlabel("fractal cycle length T (repeated)")
  fig.colorbar(image, ax=ax, label="log2(best constant steps / fractal steps)")
  ax.set_title(
    f"Steps to (f − f*)/(f₀ − f*) ≤ {cfg['epsilon']:g}, "
    f"{summary['dataset']['name']} (grey: diverged / > {n})",
    fontsize=10,
  )
  reporting.save_figure(fig, path)
