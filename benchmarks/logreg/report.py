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
  n = cfg["num_steps"]
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
    f"step: `{summary['best_constant']}`.",
    "",
  ]
  rows = []
  for name, r in summary["methods"].items():
    steps = r["steps_to_epsilon"]
    rows.append(
      {
        "method": r["label"]
        + (" **(best constant)**" if name == summary["best_constant"] else ""),
        "steps to ε": _fmt(steps) if steps is not None else f"> {n}",
        "evaluations to ε": (
          _fmt(r["evaluations_to_epsilon"]) if steps is not None else "—"
        ),
        "wall time to ε": _seconds(r.get("seconds_to_epsilon")),
        "stays below from": _fmt(r["steps_to_epsilon_stay"]),
        "final (f−f*)/(f₀−f*)": _fmt(r["final_relative_suboptimality"]),
        "steps above 2/M": f"{100 * r['fraction_steps_above_2_over_M']:.0f}%",
        "loss-increasing steps": f"{100 * r['fraction_loss_increasing']:.0f}%",
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
      f"{100 * t['fraction_loss_increasing']:.0f}% of its steps up to ε "
      f"(and {100 * r['fraction_loss_increasing_to_floor']:.0f}% up to "
      f"{summary['noise_floor']:g}) increase the loss{extra}."
    )
  lines.append("")
  lines.append(
    "Evaluations are gradient-equivalent evaluations (an HVP "
    "counts 2; one per step for every method but `adaptive`, "
    "whose count includes its Lanczos measurement of M at the "
    "start). Wall time to ε: a second, compiled run of the method "
    "stopped at ε, on this machine (shared CPU: noisy). Step "
    "fractions (above 2/M, loss-increasing) are counted over "
    "the steps before the method first reaches ε (afterwards float "
    "rounding dominates); 2/M is the classical stability limit of "
    "a constant step, with the M of the schedules."
  )
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
  show = list(
    dict.fromkeys(
      [
        "gd",
        best,
        "heavy_ball",
        "nesterov",
        "fractal",
        "fractal_short",
        "adaptive",
      ]
    )
  )
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
  run: Mapping[str, Any] | None, n: int, key: str = "steps_to_epsilon"
) -> str:
  if run is None:
    return ""
  if run["diverged"]:
    return "div"
  steps = run[key] if run["steps_to_epsilon"] is not None else None
  return f"> {n}" if steps is None else str(steps)


def _evals(run: Mapping[str, Any], n: int) -> str:
  """Evaluations to epsilon (older sweeps: steps)."""
  return _cell(
    run,
    n,
    "evaluations_to_epsilon"
    if "evaluations_to_epsilon" in run
    else "steps_to_epsilon",
  )


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
  cycles = sorted(cfg["sweep_cycles"])
  columns = (
    ["λ", "κ", "T (bound)", "GD 1/M", "best constant", "heavy ball", "Nesterov"]
    + [f"T={t}" for t in cycles]
    + ["T=bound"]
  )
  adaptive = all("adaptive" in r["runs"] for r in summary["rows"])
  seeds = cfg.get("adaptive_seeds", [0])
  seed_column = f"adaptive, seeds {_seed_list(seeds)}: mean (min–max)"
  by_seed = adaptive and len(seeds) > 1
  if adaptive:
    columns += [
      "adaptive",
      *([seed_column] if by_seed else []),
      "best const. / adaptive",
      "adaptive / Nesterov",
      "rejections",
      "adaptive diverged",
    ]
  table, times = [], []
  for r in summary["rows"]:
    runs, best = r["runs"], r["best_constant"]
    row = {
      "λ": f"{r['l2']:g}",
      "κ": f"{r['kappa']:.0f}",
      "T (bound)": r["bound_cycle"],
      "GD 1/M": _evals(runs["constant_1"], n),
      "best constant": (f"{_evals(runs[best], n)} ({best.split('_')[1]}/M)"),
      "heavy ball": _evals(runs["heavy_ball"], n),
      "Nesterov": _evals(runs["nesterov"], n),
    }
    for t in cycles:
      row[f"T={t}"] = _evals(runs.get(f"fractal_{t}"), n)
    row["T=bound"] = _evals(runs[f"fractal_{r['bound_cycle']}"], n)
    if adaptive:
      a = runs["adaptive"]
      ev = lambda name, runs=runs: (
        None if runs[name]["diverged"] else runs[name]["evaluations_to_epsilon"]
      )
      ratio = lambda x, y: f"{x / y:.2f}" if x is not None and y else "—"
      row.update(
        {
          "adaptive": _evals(a, n),
          seed_column: _spread(a.get("evaluations_by_seed", []), n),
          "best const. / adaptive": ratio(ev(best), ev("adaptive")),
          "adaptive / Nesterov": ratio(ev("adaptive"), ev("nesterov")),
          "rejections": a["rejections"],
          "adaptive diverged": _fmt(a["diverged"]),
        }
      )
      sec = lambda name, runs=runs: runs[name].get("seconds_to_epsilon")
      times.append(
        {
          "λ": f"{r['l2']:g}",
          **{
            label: f"{_evals(runs[name], n)} / {_seconds(sec(name))}"
            for label, name in (
              ("best constant", best),
              ("heavy ball", "heavy_ball"),
              ("Nesterov", "nesterov"),
              ("adaptive", "adaptive"),
            )
          },
          "wall time: best const. / adaptive": ratio(
            sec(best), sec("adaptive")
          ),
          "wall time: adaptive / Nesterov": ratio(
            sec("adaptive"), sec("nesterov")
          ),
        }
      )
    table.append(row)
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
  text += "\n\n"
  text += reporting.markdown_table(table, columns)
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
      text = _cell(run, n)
      if steps is not None and not run["diverged"]:
        speedup = (best if best is not None else n) / max(steps, 1)
        value[i, j] = math.log2(speedup)
        text += f"\n{'≥' if best is None else ''}{speedup:.2g}×"
      if cycles[j] == "bound":
        text += f"\nT={t}"
      ax.text(j, i, text, ha="center", va="center", fontsize=8)
  limit = max(
    1.0, float(np.nanmax(np.abs(value))) if np.isfinite(value).any() else 1.0
  )
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
      f"const: {_cell(r['runs'][r['best_constant']], n)}"
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
