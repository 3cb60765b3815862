"""Result files of the quadratic benchmark: JSON, Markdown and PNG figures.

Everything is written atomically (``benchmarks.files``, ``reporting``):

* ``results.json``: every number of the run (config, environment, the six
  parts, the targets);
* ``results.md``: the targets with pass/fail and the main tables;
* ``summary.md``: the command, the targets and iterations-to-ε (README);
* ``adaptive.md``: the adaptive-vs-oracle table alone (README, docs);
* ``schedule.png``: the fractal schedule itself;
* ``orders_error.png``: error against iteration for the five orders;
* ``iterations_to_eps.png``: iterations-to-ε against κ, log-log, with √κ
  and κ reference lines;
* ``float32_horizon.png``: final error against ``T`` in float32;
* ``adaptive.png``: error against gradient evaluations of
  ``adaptive_fractal_sgd`` (M unknown) and the oracle ``fractal_sgd``.
"""

from __future__ import annotations

from collections.abc import Mapping
import math
import os
from typing import Any

import numpy as np

from benchmarks import files
from benchmarks import reporting

ORDER_STYLE = {
  "fractal": ("C0", "-"),
  "largest_first": ("C3", "--"),
  "smallest_first": ("C1", "--"),
  "random": ("C7", ":"),
  "filtered": ("C2", "-."),
}
ERROR = "‖x_t − x*‖ / ‖x_0 − x*‖"
Results = dict[str, Any]


def write_all(results: Results, workdir: str) -> list[str]:
  """Writes the JSON, the Markdown files and the figures; returns the paths."""
  texts = {"results.md": markdown(results), "summary.md": summary(results)}
  if results.get("adaptive"):  # Quoted on its own by the README and docs.
    section = "\n".join(_adaptive_section(results))
    texts["adaptive.md"] = section.replace("## ", "#### ", 1)
  paths = [os.path.join(workdir, "results.json")]
  files.write_json(paths[0], results)
  for name, text in texts.items():
    paths.append(os.path.join(workdir, name))
    files.write_text(paths[-1], text)
  for name, draw in FIGURES.items():
    paths.append(os.path.join(workdir, name))
    fig = draw(results)
    fig.tight_layout()
    reporting.save_figure(fig, paths[-1])
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


def _table(rows: list[dict[str, Any]], columns: list[str]) -> str:
  """A Markdown table; None reads "—", booleans yes/no."""
  rows = [{k: _fmt(v) for k, v in row.items()} for row in rows]
  return reporting.markdown_table(rows, columns)


def _unique(records: list[dict[str, Any]], key: str) -> list[Any]:
  return list(dict.fromkeys(r[key] for r in records))


def targets_text(results: Results) -> str:
  """One ``PASS``/``FAIL`` line per target (printed at the end of a run)."""
  lines = []
  for t in results["targets"]:
    shown = t["measured"]
    shown = f"{shown:.4g}" if isinstance(shown, float) else shown
    verdict = "PASS" if t["passed"] else "FAIL"
    lines.append(f"{verdict}  {t['name']}: {shown} (target {t['threshold']})")
  return "\n".join(lines + [_wall_time(results)])


def _wall_time(results: Results) -> str:
  """This invocation's wall time, and the parts' (resumed ones included)."""
  parts = sum(results["part_wall_time_s"].values())
  return (
    f"wall time {results['wall_time_s_this_invocation']:.1f} s in this "
    f"invocation; the parts took {parts:.1f} s, resumed ones included"
  )


def _headline(results: Results, level: str) -> list[str]:
  """Targets and iterations-to-ε: the lines the README shows."""
  rows = [
    {
      "target": t["name"],
      "measured": t["measured"],
      "threshold": t["threshold"],
      "pass": "PASS" if t["passed"] else "FAIL",
      "what": t["description"],
    }
    for t in results["targets"]
  ]
  accel = results["acceleration"]
  recs = accel["records"]
  predicted = {r["kappa"]: r["predicted"] for r in recs if "predicted" in r}
  table = reporting.pivot(
    recs,
    lambda r: {"κ": f"{r['kappa']:g}", "bound predicts": predicted[r["kappa"]]},
    lambda r: r["method"],
    lambda r: r["iterations"],
  )
  return [
    f"{level} Targets",
    "",
    _table(rows, ["target", "measured", "threshold", "pass", "what"]),
    f"{level} Iterations to ε = {accel['tolerance']:g} (diagonal, d = "
    f"{accel['dim']}, float64)",
    "",
    _table(table, ["κ", *_unique(recs, "method"), "bound predicts"]),
    "`fractal`: one cycle of the smallest sufficient T; `fractal_T8` …: "
    "`fractal_sgd(T, cycle=True)` repeated; — : not reached within "
    f"{results['config']['max_iterations']} iterations.",
    "",
  ]


def _header(results: Results) -> list[str]:
  env = results["environment"]
  return [
    f"Command: `{results['command']}`; {_wall_time(results)}; jax "
    f"{env['jax']}, optax {env['optax']}, backend {env['backend']}.",
    "",
  ]


def summary(results: Results) -> str:
  """The short report: command, targets and iterations-to-ε."""
  return "\n".join(_header(results) + _headline(results, level="####"))


def markdown(results: Results) -> str:
  """The Markdown report: targets first, then one table per experiment."""
  lines = ["# Fractal Chebyshev schedule on quadratics", ""]
  lines += _header(results) + _headline(results, "##")
  timing = results["timing"]
  rows = [
    {
      "d": prob["dim"],
      "optimiser": name,
      "µs/step": r["seconds_per_step"] * 1e6,
      "relative to sgd": r["relative_to_sgd"],
      "CPU time relative to sgd": r["cpu_relative_to_sgd"],
      "state bytes": r["state_bytes"],
      "per-parameter state": r["per_parameter_state"],
    }
    for prob in timing["problems"]
    for name, r in prob["optimizers"].items()
  ]
  lines += [
    f"## Wall time per iteration and state (float32, κ = "
    f"{timing['kappa']:g}, fractal T = {timing['fractal_num_steps']})",
    "",
    _table(rows, list(rows[0])),
    "Wall time: median over interleaved repeats of a jitted `lax.scan` after "
    "compilation; CPU time: the process's CPU time over the same calls (less "
    "disturbed by other processes on a shared machine).",
    "",
  ]
  lines += _orders_section(results["orders"])
  noise = results["noise"]
  table = reporting.pivot(
    noise["records"],
    lambda r: {"T": r["num_steps"], "σ": r["sigma"], "bound": r["bound"]},
    lambda r: r["order"],
    _noise_cell,
  )
  order_names = _unique(noise["records"], "order")
  lines += [
    f"## Gradient noise (κ = {noise['kappa']:g}, float64): median final "
    "error (predicted noise contribution)",
    "",
    _table(table, ["T", "σ", "bound", *order_names]),
    "## Negative progress of one fractal cycle (float64)",
    "",
    _table(
      results["negative_progress"]["records"],
      [
        "kappa",
        "num_steps",
        "fraction_increasing",
        "max_increase_factor",
        "max_loss_over_initial",
        "final_error",
        "bound",
        "float64_floor",
        "within_bound_or_floor",
      ],
    ),
  ]
  lines += _adaptive_section(results)
  lines += ["## Figures", ""] + [f"![{f}]({f})" for f in FIGURES] + [""]
  return "\n".join(lines)


def _noise_cell(record: Mapping[str, Any]) -> str:
  median = record["final_error_median"]
  shown = "inf/NaN" if median is None else f"{median:.3g}"
  return f"{shown} ({record['predicted_noise_error']:.2g})"


def _error_cell(record: Mapping[str, Any]) -> str:
  if not record["finite"]:
    return f"inf/NaN (step {record['first_nonfinite']})"
  return f"{record['final_error']:.3g}"


def _orders_section(orders: dict[str, Any]) -> list[str]:
  """Final errors per dtype, the horizons and the stability profiles."""
  kappa = orders["curve_kappa"]
  recs = [r for r in orders["records"] if r["kappa"] == kappa]
  order_names = _unique(recs, "order")
  lines = [
    "## Orders and precision: final error ‖x_T − x*‖/‖x_0 − x*‖ at "
    f"κ = {kappa:g} (dense, d = {orders['dim']})",
    "",
  ]
  for dtype in _unique(recs, "dtype"):
    table = reporting.pivot(
      [r for r in recs if r["dtype"] == dtype],
      lambda r: {"T": r["num_steps"], "bound": r["bound"]},
      lambda r: r["order"],
      _error_cell,
    )
    lines += [f"**{dtype}**", "", _table(table, ["T", "bound", *order_names])]
  table = reporting.pivot(
    orders["horizons"],
    lambda h: {"κ": f"{h['kappa']:g}", "dtype": h["dtype"]},
    lambda h: h["order"],
    lambda h: f"≥ {h['horizon']}" if h["all_passed"] else h["horizon"],
  )
  profiles = [
    {"T": r["num_steps"], "order": r["order"], **r["profile"]}
    for r in recs
    if r["dtype"] == recs[0]["dtype"] and r["profile"]
  ]
  return lines + [
    "Horizon: the largest T of the grid up to which every run ends finite "
    "with error < 1 (≥: no T of the grid failed; —: the smallest T failed):",
    "",
    _table(table, ["κ", "dtype", *order_names]),
    f"Stability profile (sup over λ ∈ [m, M]) at κ = {kappa:g}:",
    "",
    _table(
      profiles,
      [
        "T",
        "order",
        "final",
        "max_prefix",
        "max_suffix",
        "max_block",
        "max_single_step",
      ],
    ),
  ]


_ADAPTIVE_NOTE = (
  "`adaptive_fractal_sgd(T, min_curvature=m, max_curvature=guess·M)` "
  "(library defaults; m exact) against the oracle `fractal_sgd(T, m, M)` "
  "repeated, same T (the smallest power of two ≥ √κ; the adaptive run's "
  "longest cycle, its first cycles are shorter). Evaluations to ε "
  "count value-and-gradient calls plus extra loss evaluations plus 2 per "
  "HVP (adaptive: the Lanczos HVPs at the start, one per accepted "
  "cycle, one per rejection). `single cycle T`: one fractal cycle of the "
  "smallest sufficient length (knows [m, M] and ε). `final M`: the adaptive "
  "estimate when ε is reached (true M = 1). Wall time to ε (ms): the "
  "median warm run's time per step × steps to ε (both are jitted "
  "`lax.scan` chunks; the adaptive step also evaluates the loss). On a "
  "problem this small the gradient is cheap, so the wall ratio measures "
  "the per-step overhead of the adaptive update, and it is noisy on a "
  "shared machine."
)
_NOT_DEFAULTS = (
  "min_curvature",
  "l2_regularization",
  "max_condition_number",
  "max_curvature",
  "num_steps",
)


def _adaptive_goal(kappa: float) -> float:
  return 1.25 if kappa >= 1e3 else 1.5


def _adaptive_per_step(timing: dict[str, Any] | None) -> list[str]:
  """The adaptive update's steady cost per step and its state, against
  ``fractal_sgd`` in the same interleaved timing run (``timing``)."""
  rows = [
    (p["dim"], p["optimizers"]["adaptive"], p["optimizers"]["fractal"])
    for p in (timing or {}).get("problems", [])
    if "adaptive" in p["optimizers"]
  ]
  if not rows:
    return []
  parts = [
    f"{a['seconds_per_step'] / f['seconds_per_step']:.3g}× at d = {d} "
    f"({a['seconds_per_step'] * 1e6:.4g} µs against "
    f"{f['seconds_per_step'] * 1e6:.4g} µs; state {a['state_bytes']} bytes "
    f"= {a['state_bytes'] / (4 * d):.4g} float32 vectors of d)"
    for d, a, f in rows
  ]
  return [
    "Per step, steady state (the `timing` part of this run: jitted "
    "`lax.scan`, interleaved repeats, median; the adaptive update also "
    "evaluates the loss it is given as `value`, tests cycle ends and takes "
    "one HVP per cycle; no Lanczos start), adaptive / `fractal_sgd`: "
    + "; ".join(parts)
    + ".",
    "",
  ]


def _adaptive_section(results: Results) -> list[str]:
  """The adaptive-vs-oracle table (evaluations and wall time to ε) and, from
  ``results["timing"]``, the steady cost per step against ``fractal_sgd``."""
  adaptive = results.get("adaptive")
  if not adaptive:
    return []
  recs = adaptive["records"]
  by = {(r["kappa"], r["method"]): r for r in recs}
  ms = lambda v: None if v is None else v * 1e3
  rows = []
  for r in recs:
    if r["method"] != "adaptive":
      continue
    o, s1 = by[r["kappa"], "oracle"], by[r["kappa"], "single_cycle"]
    goal, ratio = _adaptive_goal(r["kappa"]), r["ratio_to_oracle"]
    rows.append(
      {
        "κ": f"{r['kappa']:g}",
        "T": r["num_steps"],
        "M guess / M": f"{r['guess']:g}",
        "oracle evals": o["evaluations"],
        "adaptive evals": r["evaluations"],
        "ratio": ratio,
        "goal": f"≤ {goal:g}",
        "pass": "PASS" if ratio is not None and ratio <= goal else "FAIL",
        "adaptive steps": r["iterations"],
        "HVPs": r["num_hvps"],
        "rejections": r["num_rejected"],
        "final M": r["final_max_curvature"],
        "finite": r["finite"],
        "single cycle T": s1["evaluations"],
        "ratio to single": r["ratio_to_single_cycle"],
        "oracle ms": ms(o["seconds_to_eps"]),
        "adaptive ms": ms(r["seconds_to_eps"]),
        "wall ratio": r["wall_ratio_to_oracle"],
      }
    )
  lines = [
    f"## Adaptive fractal with M unknown ({adaptive['dtype']}, diagonal, "
    f"d = {adaptive['dim']}, ε = {adaptive['tolerance']:g})",
    "",
    _table(rows, list(rows[0]) if rows else []),
    _ADAPTIVE_NOTE,
    "",
    *_adaptive_per_step(results.get("timing")),
  ]
  defaults = adaptive.get("library_defaults") or {}
  shown = [
    f"`{k}={v!r}`" for k, v in defaults.items() if k not in _NOT_DEFAULTS
  ]
  if defaults:
    lines += [
      f"`adaptive_fractal_sgd` defaults in this run: {', '.join(shown)}.",
      "",
    ]
  source = adaptive.get("library_source") or {}
  if source.get("sha256"):
    lines += [
      f"Measured code: `{source['file']}` sha256 `{source['sha256'][:16]}…`.",
      "",
    ]
  return lines


# ---------------------------------------------------------------------------
# Figures.
# ---------------------------------------------------------------------------


def _nan(values: list[Any]) -> np.ndarray:
  return np.array([np.nan if v is None else v for v in values], float)


def _schedule(results: Results):
  examples = results["schedule"]
  fig, axes = reporting.subplots(
    1, len(examples), figsize=(6 * len(examples), 3.6), squeeze=False
  )
  for ax, ex in zip(axes[0], examples, strict=True):
    steps = np.asarray(ex["step_sizes"])
    if steps.size <= 64:
      ax.plot(np.arange(steps.size), steps, ".-", lw=0.6, ms=4)
    else:  # A ruler: one bar per step, from the smallest step up.
      ax.vlines(np.arange(steps.size), steps.min(), steps, lw=0.8)
    ax.axhline(2.0, color="k", ls=":", lw=0.8, label="2/M (GD stability limit)")
    ax.set(yscale="log", xlabel="step t", ylabel="step size η_t (M = 1)")
    ax.set_title(
      f"fractal Chebyshev schedule, κ = {ex['kappa']:g}, T = {ex['num_steps']}"
    )
    ax.legend(loc="upper right", fontsize=8)
  return fig


def _orders_error(results: Results):
  orders = results["orders"]
  curves, kappa, t = (
    orders[k] for k in ("curves", "curve_kappa", "curve_num_steps")
  )
  fig, axes = reporting.subplots(
    1, len(curves), figsize=(5.2 * len(curves), 4), squeeze=False
  )
  bounds = {(r["kappa"], r["num_steps"]): r["bound"] for r in orders["records"]}
  bound = bounds.get((kappa, t))
  for ax, (dtype, by_order) in zip(axes[0], curves.items(), strict=True):
    for order, errs in by_order.items():
      color, ls = ORDER_STYLE.get(order, ("k", "-"))
      y = _nan(errs)
      steps = np.arange(1, y.size + 1)
      ax.plot(steps, y, color=color, ls=ls, lw=1, label=order)
      bad = np.flatnonzero(~np.isfinite(y))
      if bad.size:
        top = np.nanmax(y) if np.isfinite(y).any() else 1.0
        ax.plot(steps[bad[0]], top, "x", color=color, ms=8)
    if bound:
      ax.axhline(bound, color="k", ls=":", lw=0.8, label="Chebyshev bound")
    ax.set(yscale="log", xlabel="iteration", ylabel=ERROR)
    ax.set_title(f"{dtype}, κ = {kappa:g}, T = {t} (x: first inf/NaN)")
    ax.legend(fontsize=7)
  return fig


def _iterations_to_eps(results: Results):
  accel = results["acceleration"]
  recs, eps = accel["records"], accel["tolerance"]
  fig, ax = reporting.subplots(figsize=(6.5, 4.8))
  for i, method in enumerate(_unique(recs, "method")):
    pts = [
      (r["kappa"], r["iterations"])
      for r in recs
      if r["method"] == method and r["iterations"]
    ]
    if pts:
      main = method == "fractal"
      ax.plot(
        *zip(*pts, strict=True),
        "o-" if main else ".-",
        lw=2 if main else 1,
        label=method,
        color=f"C{i}",
      )
  kappas = [r["kappa"] for r in recs]
  k = np.geomspace(min(kappas), max(kappas), 50)
  ax.plot(
    k,
    0.5 * np.sqrt(k) * math.log(2 / eps),
    "k--",
    lw=0.8,
    label="½√κ·ln(2/ε) (∝ √κ)",
  )
  ax.plot(
    k, 0.5 * k * math.log(1 / eps), "k:", lw=0.8, label="½κ·ln(1/ε) (∝ κ)"
  )
  ax.set(
    xscale="log",
    yscale="log",
    xlabel="condition number κ",
    ylabel=f"iterations to error ≤ {eps:g}",
    title="Iterations to ε against κ (diagonal quadratic, float64)",
  )
  ax.legend(fontsize=7, ncol=2)
  return fig


def _float32_horizon(results: Results):
  orders = results["orders"]
  kappa = orders["curve_kappa"]
  recs = [r for r in orders["records"] if r["kappa"] == kappa]

  def finals(order: str, dtype: str) -> list[tuple[int, float | None]]:
    return sorted(
      (r["num_steps"], r["final_error"])
      for r in recs
      if (r["order"], r["dtype"]) == (order, dtype)
    )

  fig, ax = reporting.subplots(figsize=(6.5, 4.8))
  top = 1.0
  for order in _unique(recs, "order"):
    color, ls = ORDER_STYLE.get(order, ("k", "-"))
    runs = finals(order, "float32")
    finite = [(t, e) for t, e in runs if e is not None]
    if finite:
      main = order == "fractal"
      ax.plot(
        *zip(*finite, strict=True),
        marker="o",
        ms=4 if main else 3,
        color=color,
        ls=ls,
        lw=2 if main else 1,
        zorder=3 if main else 2,
        label=f"{order} (float32)",
      )
      top = max(top, *(e for _, e in finite))
    bad = [t for t, e in runs if e is None]
    if bad:
      height = top * 10 ** (2 + 2 * list(ORDER_STYLE).index(order))
      ax.plot(bad, [height] * len(bad), "^", color=color, ms=6)
  ref = [(t, e) for t, e in finals("fractal", "float64") if e is not None]
  if ref:
    ax.plot(
      *zip(*ref, strict=True), "k-", lw=2, alpha=0.35, label="fractal (float64)"
    )
  bounds = sorted({(r["num_steps"], max(r["bound"], 1e-300)) for r in recs})
  ax.plot(*zip(*bounds, strict=True), "k:", lw=0.8, label="Chebyshev bound")
  floor = orders["precision_floor"].get("float32", {}).get(str(kappa))
  if floor:
    ax.axhline(
      floor, color="C4", ls="--", lw=0.8, label="κ·u₃₂ (float32 floor)"
    )
  ax.set_xscale("log", base=2)
  ax.set_yscale("log")
  ax.set(
    ylim=(max(1e-20, ax.get_ylim()[0]), top * 1e12),
    xlabel="cycle length T",
    ylabel="final ‖x_T − x*‖ / ‖x_0 − x*‖",
    title=f"float32 horizon, κ = {kappa:g} (▲: ended in inf/NaN)",
  )
  ax.legend(fontsize=7)
  return fig


def _adaptive(results: Results):
  adaptive = results["adaptive"]
  recs, eps = adaptive["records"], adaptive["tolerance"]
  kappas = _unique(recs, "kappa")
  fig, axes = reporting.subplots(
    1, len(kappas), figsize=(4.6 * len(kappas), 4), squeeze=False
  )
  for ax, kappa in zip(axes[0], kappas, strict=True):
    runs = [r for r in recs if r["kappa"] == kappa and "curve" in r]
    guesses = [r["guess"] for r in runs if r["method"] == "adaptive"]
    for r in runs:
      x = np.asarray(r["curve"]["evaluations"], float)
      if r["method"] == "oracle":
        label = "oracle fractal_sgd (knows M)"
        style = dict(color="k", lw=1.6, alpha=0.6)
      else:
        i = guesses.index(r["guess"]) % 4
        label = f"adaptive, M guess = {r['guess']:g}·M"
        style = dict(
          color=("C0", "C2", "C1", "C4")[i], lw=1, ls=("-", ":", "--", "-.")[i]
        )
      ax.plot(x, _nan(r["curve"]["errors"]), label=label, **style)
      if r["method"] == "oracle" and r["evaluations"]:
        goal = _adaptive_goal(kappa)
        ax.axvline(
          goal * r["evaluations"],
          color="C3",
          ls=":",
          lw=0.8,
          label=f"{goal:g}× oracle evaluations (goal)",
        )
    ax.axhline(eps, color="k", ls=":", lw=0.8, label=f"ε = {eps:g}")
    ax.set(
      yscale="log",
      ylim=(eps / 30, 1e4),
      xlabel="gradient evaluations (HVP = 2)",
      ylabel="‖x − x*‖ / ‖x_0 − x*‖",
    )
    ax.set_title(
      f"κ = {kappa:g}, T = {runs[0]['num_steps']}, float32 (identical runs "
      "overlap)",
      fontsize=9,
    )
    ax.legend(fontsize=6)
  return fig


FIGURES = {  # File name -> drawing function.
  "schedule.png": _schedule,
  "orders_error.png": _orders_error,
  "iterations_to_eps.png": _iterations_to_eps,
  "float32_horizon.png": _float32_horizon,
  "adaptive.png": _adaptive,
}
