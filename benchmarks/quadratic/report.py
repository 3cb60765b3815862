"""Result files of the quadratic benchmark: JSON, Markdown and PNG figures.

Everything is written atomically (``benchmarks.files``, ``reporting``):

* ``results.json``: every number of the run (config, environment, the four
  experiments, the targets);
* ``results.md``: the targets with pass/fail and the main tables;
* ``summary.md``: the command, the targets and iterations-to-ε (README);
* ``schedule.png``: the fractal schedule itself;
* ``orders_error.png``: error against iteration for the five orders;
* ``iterations_to_eps.png``: iterations-to-ε against κ, log-log, with √κ
  and κ reference lines;
* ``float32_horizon.png``: final error against ``T`` in float32;
* ``adaptive.png``: error against gradient evaluations of
  ``adaptive_fractal_sgd`` (M unknown) and the oracle ``fractal_sgd``.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from benchmarks import files
from benchmarks import reporting

FIGURES = ("schedule.png", "orders_error.png", "iterations_to_eps.png",
           "float32_horizon.png", "adaptive.png")
ORDER_STYLE = {"fractal": ("C0", "-"), "largest_first": ("C3", "--"),
               "smallest_first": ("C1", "--"), "random": ("C7", ":"),
               "filtered": ("C2", "-.")}


def write_all(results: dict[str, Any], workdir: str) -> list[str]:
  """Writes the JSON, the Markdown table and the figures into ``workdir``.

  Returns:
    The paths written.
  """
  paths = [os.path.join(workdir, "results.json"),
           os.path.join(workdir, "results.md"),
           os.path.join(workdir, "summary.md")]
  files.write_json(paths[0], results)
  files.write_text(paths[1], markdown(results))
  files.write_text(paths[2], summary_markdown(results))
  if results.get("adaptive"):  # Quoted on its own by the README and docs.
    paths.append(os.path.join(workdir, "adaptive.md"))
    files.write_text(paths[-1], "\n".join(
        _adaptive_section(results["adaptive"])).replace("## ", "#### ", 1))
  paths += write_figures(results, workdir)
  return paths


# ---------------------------------------------------------------------------
# Markdown.
# ---------------------------------------------------------------------------


def _fmt(value: Any) -> Any:
  if value is None:
    return "—"
  if isinstance(value, bool):
    return "yes" if value else "no"
  return value


def _error_cell(record: dict[str, Any]) -> str:
  if not record["finite"]:
    return f"inf/NaN (step {record['first_nonfinite']})"
  return f"{record['final_error']:.3g}"


def targets_text(results: dict[str, Any]) -> str:
  """One ``PASS``/``FAIL`` line per target (printed at the end of a run)."""
  lines = []
  for t in results["targets"]:
    shown = (f"{t['measured']:.4g}" if isinstance(t["measured"], float)
             else t["measured"])
    lines.append(f"{'PASS' if t['passed'] else 'FAIL'}  {t['name']}: {shown} "
                 f"(target {t['threshold']})")
  return "\n".join(lines + [f"wall time {results['wall_time_s']:.1f} s"])


def _headline(results: dict[str, Any], level: str = "##") -> list[str]:
  """Targets and iterations-to-ε: the lines the README shows."""
  cfg = results["config"]
  lines = [
      f"{level} Targets",
      "",
  ]
  rows = [{"target": t["name"], "measured": _fmt(t["measured"]),
           "threshold": t["threshold"],
           "pass": "PASS" if t["passed"] else "FAIL",
           "what": t["description"]} for t in results["targets"]]
  lines.append(reporting.markdown_table(
      rows, ["target", "measured", "threshold", "pass", "what"]))

  accel = results["acceleration"]
  lines += [f"{level} Iterations to ε = "
            f"{accel['tolerance']:g} (diagonal, d = {accel['dim']}, float64)",
            ""]
  methods = list(dict.fromkeys(r["method"] for r in accel["records"]))
  table = {}
  for r in accel["records"]:
    table.setdefault(r["kappa"], {"κ": f"{r['kappa']:g}"})[r["method"]] = (
        _fmt(r["iterations"]))
    if r["method"] == "fractal":
      table[r["kappa"]]["bound predicts"] = r["predicted"]
  lines.append(reporting.markdown_table(
      list(table.values()), ["κ"] + methods + ["bound predicts"]))
  lines += ["`fractal`: one cycle of the smallest sufficient T; "
            "`fractal_T8` …: `fractal_sgd(T, cycle=True)` repeated; "
            "— : not reached within "
            f"{cfg['max_iterations']} iterations.", ""]
  return lines


def summary_markdown(results: dict[str, Any]) -> str:
  """The short report: command, targets and iterations-to-ε."""
  return "\n".join(_header(results) + _headline(results, level="####"))


def _header(results: dict[str, Any]) -> list[str]:
  return [
      f"Command: `{results['command']}`; "
      f"wall time {results['wall_time_s']:.0f} s; "
      f"jax {results['environment']['jax']}, optax "
      f"{results['environment']['optax']}, backend "
      f"{results['environment']['backend']}.",
      "",
  ]


def markdown(results: dict[str, Any]) -> str:
  """The Markdown report: targets first, then one table per experiment."""
  lines = ["# Fractal Chebyshev schedule on quadratics", ""]
  lines += _header(results) + _headline(results)

  timing = results["timing"]
  lines += [f"## Wall time per iteration and state (float32, κ = "
            f"{timing['kappa']:g}, fractal T = "
            f"{timing['fractal_num_steps']})", ""]
  rows = []
  for prob in timing["problems"]:
    for name, r in prob["optimizers"].items():
      rows.append({"d": prob["dim"], "optimiser": name,
                   "µs/step": r["seconds_per_step"] * 1e6,
                   "relative to sgd": r["relative_to_sgd"],
                   "CPU time relative to sgd": r["cpu_relative_to_sgd"],
                   "state bytes": r["state_bytes"],
                   "per-parameter state": _fmt(r["per_parameter_state"])})
  lines.append(reporting.markdown_table(
      rows, ["d", "optimiser", "µs/step", "relative to sgd",
             "CPU time relative to sgd", "state bytes",
             "per-parameter state"]))
  lines += ["Wall time: median over interleaved repeats of a jitted "
            "`lax.scan` after compilation; CPU time: the process's CPU "
            "time over the same calls (less disturbed by other processes on "
            "a shared machine).", ""]

  orders = results["orders"]
  kappa = orders["curve_kappa"]
  recs = [r for r in orders["records"] if r["kappa"] == kappa]
  order_names = list(dict.fromkeys(r["order"] for r in recs))
  lines += [f"## Orders and precision: final error ‖x_T − x*‖/‖x_0 − x*‖ at "
            f"κ = {kappa:g} (dense, d = {orders['dim']})", ""]
  for dtype in dict.fromkeys(r["dtype"] for r in recs):
    table = {}
    for r in recs:
      if r["dtype"] != dtype:
        continue
      row = table.setdefault(r["num_steps"], {"T": r["num_steps"],
                                              "bound": r["bound"]})
      row[r["order"]] = _error_cell(r)
    lines += [f"**{dtype}**", ""]
    lines.append(reporting.markdown_table(list(table.values()),
                                         ["T", "bound"] + order_names))
  lines += ["Horizon: the largest T of the grid up to which every run ends "
            "finite with error < 1 (≥: no T of the grid failed; —: the "
            "smallest T failed):", ""]
  table = {}
  for h in orders["horizons"]:
    row = table.setdefault((h["kappa"], h["dtype"]),
                           {"κ": f"{h['kappa']:g}", "dtype": h["dtype"]})
    row[h["order"]] = (f"≥ {h['horizon']}" if h["all_passed"]
                       else _fmt(h["horizon"]))
  lines.append(reporting.markdown_table(list(table.values()),
                                       ["κ", "dtype"] + order_names))
  lines += [f"Stability profile (sup over λ ∈ [m, M]) at κ = {kappa:g}:", ""]
  rows = []
  for r in recs:
    if r["dtype"] == recs[0]["dtype"] and r["profile"]:
      rows.append({"T": r["num_steps"], "order": r["order"],
                   **{k: v for k, v in r["profile"].items()}})
  lines.append(reporting.markdown_table(
      rows, ["T", "order", "final", "max_prefix", "max_suffix", "max_block",
             "max_single_step"]))

  noise = results["noise"]
  lines += [f"## Gradient noise (κ = {noise['kappa']:g}, float64): median "
            "final error (predicted noise contribution)", ""]
  table = {}
  for r in noise["records"]:
    row = table.setdefault((r["num_steps"], r["sigma"]),
                           {"T": r["num_steps"], "σ": r["sigma"],
                            "bound": r["bound"]})
    med = r["final_error_median"]
    row[r["order"]] = (f"{med:.3g}" if med is not None else "inf/NaN") + (
        f" ({r['predicted_noise_error']:.2g})")
  lines.append(reporting.markdown_table(list(table.values()),
                                       ["T", "σ", "bound"] + order_names))

  neg = results["negative_progress"]
  lines += ["## Negative progress of one fractal cycle (float64)", ""]
  rows = [{**r, "within_bound_or_floor": _fmt(r["within_bound_or_floor"])}
          for r in neg["records"]]
  lines.append(reporting.markdown_table(
      rows, ["kappa", "num_steps", "fraction_increasing",
             "max_increase_factor", "max_loss_over_initial", "final_error",
             "bound", "float64_floor", "within_bound_or_floor"]))
  lines += _adaptive_section(results.get("adaptive"))
  lines += ["## Figures", ""] + [f"![{f}]({f})" for f in FIGURES] + [""]
  return "\n".join(lines)


def _adaptive_section(adaptive: dict[str, Any] | None) -> list[str]:
  """The adaptive-vs-oracle table (evaluations and wall time to ε)."""
  if not adaptive:
    return []
  recs = adaptive["records"]
  by = {(r["kappa"], r["method"]): r for r in recs
        if r["method"] != "adaptive"}
  lines = [f"## Adaptive fractal with M unknown ({adaptive['dtype']}, "
           f"diagonal, d = {adaptive['dim']}, ε = {adaptive['tolerance']:g})",
           ""]
  rows = []
  ms = lambda v: None if v is None else v * 1e3
  for r in recs:
    if r["method"] != "adaptive":
      continue
    o, s1 = by[r["kappa"], "oracle"], by[r["kappa"], "single_cycle"]
    goal = 1.25 if r["kappa"] >= 1e3 else 1.5
    ratio = r["ratio_to_oracle"]
    rows.append({
        "κ": f"{r['kappa']:g}", "T": r["num_steps"],
        "M guess / M": f"{r['guess']:g}",
        "oracle evals": _fmt(o["evaluations"]),
        "adaptive evals": _fmt(r["evaluations"]),
        "ratio": _fmt(ratio), "goal": f"≤ {goal:g}",
        "pass": "PASS" if ratio is not None and ratio <= goal else "FAIL",
        "adaptive steps": _fmt(r["iterations"]), "HVPs": r["num_hvps"],
        "rejections": r["num_rejected"],
        "final M": r["final_max_curvature"],
        "finite": _fmt(r["finite"]),
        "single cycle T": _fmt(s1["evaluations"]),
        "ratio to single": _fmt(r["ratio_to_single_cycle"]),
        "oracle ms": _fmt(ms(o["seconds_to_eps"])),
        "adaptive ms": _fmt(ms(r["seconds_to_eps"])),
        "wall ratio": _fmt(r["wall_ratio_to_oracle"]),
    })
  columns = ["κ", "T", "M guess / M", "oracle evals", "adaptive evals",
             "ratio", "goal", "pass", "adaptive steps", "HVPs", "rejections",
             "final M", "finite", "single cycle T", "ratio to single",
             "oracle ms", "adaptive ms", "wall ratio"]
  lines.append(reporting.markdown_table(rows, columns))
  lines += [
      "`adaptive_fractal_sgd(T, min_curvature=m, max_curvature=guess·M)` "
      "(library defaults; m exact) against the oracle `fractal_sgd(T, m, M)`"
      " repeated, same T (the smallest power of two ≥ √κ). Evaluations to ε "
      "count value-and-gradient calls plus extra loss evaluations plus 2 per "
      "HVP (adaptive: the Lanczos HVPs at the start, one per 8 accepted "
      "cycles, one per rejection). `single cycle T`: one fractal cycle of the smallest "
      "sufficient length (knows [m, M] and ε). `final M`: the adaptive "
      "estimate when ε is reached (true M = 1). Wall time to ε (ms): the "
      "median warm run's time per step × steps to ε (both are jitted "
      "`lax.scan` chunks; the adaptive step also evaluates the loss). On a "
      "problem this small the gradient is cheap, so the wall ratio measures "
      "the per-step overhead of the adaptive update, and it is noisy on a "
      "shared machine.", ""]
  defaults = adaptive.get("library_defaults")
  if defaults:
    lines += ["`adaptive_fractal_sgd` defaults in this run: " + ", ".join(
        f"`{k}={v!r}`" for k, v in defaults.items() if k not in (
            "min_curvature", "l2_regularization", "max_condition_number",
            "max_curvature", "num_steps")) + ".", ""]
  source = adaptive.get("library_source") or {}
  if source.get("sha256"):
    lines += [f"Measured code: `{source['file']}` sha256 "
              f"`{source['sha256'][:16]}…`.", ""]
  return lines


# ---------------------------------------------------------------------------
# Figures.
# ---------------------------------------------------------------------------


def write_figures(results: dict[str, Any], workdir: str) -> list[str]:
  """Draws and saves the figures; returns their paths."""
  paths = []
  for name, draw in zip(FIGURES, (_schedule, _orders_error,
                                  _iterations_to_eps, _float32_horizon,
                                  _adaptive)):
    fig = draw(results)
    path = os.path.join(workdir, name)
    reporting.save_figure(fig, path)
    paths.append(path)
  return paths


def _schedule(results):
  examples = results["schedule"]
  fig, axes = reporting.subplots(1, len(examples),
                                 figsize=(6 * len(examples), 3.6))
  for ax, ex in zip(np.atleast_1d(axes), examples):
    steps = np.asarray(ex["step_sizes"])
    if steps.size <= 64:
      ax.plot(np.arange(steps.size), steps, ".-", lw=0.6, ms=4)
    else:  # A ruler: one bar per step, from the smallest step up.
      ax.vlines(np.arange(steps.size), steps.min(), steps, lw=0.8)
    ax.axhline(2.0, color="k", ls=":", lw=0.8, label="2/M (GD stability limit)")
    ax.set_yscale("log")
    ax.set_xlabel("step t")
    ax.set_ylabel("step size η_t (M = 1)")
    ax.set_title(f"fractal Chebyshev schedule, κ = {ex['kappa']:g}, "
                 f"T = {ex['num_steps']}")
    ax.legend(loc="upper right", fontsize=8)
  fig.tight_layout()
  return fig


def _orders_error(results):
  orders = results["orders"]
  curves = orders["curves"]
  fig, axes = reporting.subplots(1, len(curves),
                                 figsize=(5.2 * len(curves), 4), squeeze=False)
  bound = next((r["bound"] for r in orders["records"]
                if r["kappa"] == orders["curve_kappa"]
                and r["num_steps"] == orders["curve_num_steps"]), None)
  for ax, (dtype, by_order) in zip(axes[0], curves.items()):
    for order, errs in by_order.items():
      color, ls = ORDER_STYLE.get(order, ("k", "-"))
      y = np.array([np.nan if v is None else v for v in errs], float)
      t = np.arange(1, y.size + 1)
      ax.plot(t, y, color=color, ls=ls, lw=1, label=order)
      bad = np.flatnonzero(~np.isfinite(y))
      if bad.size:
        ax.plot(t[bad[0]], np.nanmax(y) if np.isfinite(y).any() else 1.0,
                "x", color=color, ms=8)
    if bound:
      ax.axhline(bound, color="k", ls=":", lw=0.8, label="Chebyshev bound")
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("‖x_t − x*‖ / ‖x_0 − x*‖")
    ax.set_title(f"{dtype}, κ = {orders['curve_kappa']:g}, "
                 f"T = {orders['curve_num_steps']} (x: first inf/NaN)")
    ax.legend(fontsize=7)
  fig.tight_layout()
  return fig


def _iterations_to_eps(results):
  accel = results["acceleration"]
  eps = accel["tolerance"]
  fig, ax = reporting.subplots(figsize=(6.5, 4.8))
  methods = list(dict.fromkeys(r["method"] for r in accel["records"]))
  kappas = sorted({r["kappa"] for r in accel["records"]})
  for i, method in enumerate(methods):
    pts = [(r["kappa"], r["iterations"]) for r in accel["records"]
           if r["method"] == method and r["iterations"]]
    if pts:
      x, y = zip(*pts)
      ax.plot(x, y, "o-" if method == "fractal" else ".-",
              lw=2 if method == "fractal" else 1, label=method,
              color=f"C{i}")
  k = np.geomspace(min(kappas), max(kappas), 50)
  ax.plot(k, 0.5 * np.sqrt(k) * math.log(2 / eps), "k--", lw=0.8,
          label="½√κ·ln(2/ε) (∝ √κ)")
  ax.plot(k, 0.5 * k * math.log(1 / eps), "k:", lw=0.8,
          label="½κ·ln(1/ε) (∝ κ)")
  ax.set_xscale("log")
  ax.set_yscale("log")
  ax.set_xlabel("condition number κ")
  ax.set_ylabel(f"iterations to error ≤ {eps:g}")
  ax.set_title("Iterations to ε against κ (diagonal quadratic, float64)")
  ax.legend(fontsize=7, ncol=2)
  fig.tight_layout()
  return fig


def _float32_horizon(results):
  orders = results["orders"]
  kappa = orders["curve_kappa"]
  recs = [r for r in orders["records"] if r["kappa"] == kappa]
  fig, ax = reporting.subplots(figsize=(6.5, 4.8))
  ts = sorted({r["num_steps"] for r in recs})
  top = 1.0
  for order in dict.fromkeys(r["order"] for r in recs):
    color, ls = ORDER_STYLE.get(order, ("k", "-"))
    pts = {r["num_steps"]: r for r in recs
           if r["order"] == order and r["dtype"] == "float32"}
    finite = [(t, pts[t]["final_error"]) for t in ts
              if t in pts and pts[t]["final_error"] is not None]
    if finite:
      x, y = zip(*finite)
      main = order == "fractal"
      ax.plot(x, y, marker="o", ms=4 if main else 3, color=color, ls=ls,
              lw=2 if main else 1, zorder=3 if main else 2,
              label=f"{order} (float32)")
      top = max(top, max(y))
    bad = [t for t in ts if t in pts and pts[t]["final_error"] is None]
    if bad:
      height = top * 10 ** (2 + 2 * list(ORDER_STYLE).index(order))
      ax.plot(bad, [height] * len(bad), "^", color=color, ms=6)
  ref = [(r["num_steps"], r["final_error"]) for r in recs
         if r["order"] == "fractal" and r["dtype"] == "float64"
         and r["final_error"] is not None]
  if ref:
    x, y = zip(*sorted(ref))
    ax.plot(x, y, "k-", lw=2, alpha=0.35, label="fractal (float64)")
  bounds = sorted({(r["num_steps"], r["bound"]) for r in recs})
  ax.plot([b[0] for b in bounds], [max(b[1], 1e-300) for b in bounds],
          "k:", lw=0.8, label="Chebyshev bound")
  floor = orders["precision_floor"].get("float32", {}).get(str(kappa))
  if floor:
    ax.axhline(floor, color="C4", ls="--", lw=0.8,
               label="κ·u₃₂ (float32 floor)")
  ax.set_xscale("log", base=2)
  ax.set_yscale("log")
  ax.set_ylim(max(1e-20, ax.get_ylim()[0]), top * 1e12)
  ax.set_xlabel("cycle length T")
  ax.set_ylabel("final ‖x_T − x*‖ / ‖x_0 − x*‖")
  ax.set_title(f"float32 horizon, κ = {kappa:g} (▲: ended in inf/NaN)")
  ax.legend(fontsize=7)
  fig.tight_layout()
  return fig


def _adaptive(results):
  adaptive = results["adaptive"]
  recs = adaptive["records"]
  kappas = list(dict.fromkeys(r["kappa"] for r in recs))
  fig, axes = reporting.subplots(1, len(kappas),
                                 figsize=(4.6 * len(kappas), 4),
                                 squeeze=False)
  eps = adaptive["tolerance"]
  for ax, kappa in zip(axes[0], kappas):
    runs = [r for r in recs if r["kappa"] == kappa and "curve" in r]
    guesses = [r["guess"] for r in runs if r["method"] == "adaptive"]
    for r in runs:
      x = np.asarray(r["curve"]["evaluations"], float)
      y = np.array([np.nan if v is None else v for v in r["curve"]["errors"]],
                   float)
      if r["method"] == "oracle":
        label, style = "oracle fractal_sgd (knows M)", dict(
            color="k", lw=1.6, alpha=0.6)
      else:
        i = guesses.index(r["guess"])
        label, style = f"adaptive, M guess = {r['guess']:g}·M", dict(
            color=("C0", "C2", "C1", "C4")[i % 4], lw=1,
            ls=("-", ":", "--", "-.")[i % 4])
      ax.plot(x, y, label=label, **style)
      if r["method"] == "oracle" and r["evaluations"]:
        goal = 1.25 if kappa >= 1e3 else 1.5
        ax.axvline(goal * r["evaluations"], color="C3", ls=":", lw=0.8,
                   label=f"{goal:g}× oracle evaluations (goal)")
    ax.axhline(eps, color="k", ls=":", lw=0.8, label=f"ε = {eps:g}")
    ax.set_yscale("log")
    ax.set_ylim(eps / 30, 1e4)
    ax.set_xlabel("gradient evaluations (HVP = 2)")
    ax.set_ylabel("‖x − x*‖ / ‖x_0 − x*‖")
    ax.set_title(f"κ = {kappa:g}, T = {runs[0]['num_steps']}, float32 "
                 "(identical runs overlap)", fontsize=9)
    ax.legend(fontsize=6)
  fig.tight_layout()
  return fig
