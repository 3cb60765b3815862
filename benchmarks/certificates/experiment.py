"""Worst-case certificates of one step-size cycle, by performance estimation.

For a step sequence ``h_0 … h_{T−1}`` the performance-estimation problem
(PEP) is the SDP

  sup ‖x_T − x*‖²  over L-smooth μ-strongly convex f and x_0 with
  ‖x_0 − x*‖² ≤ 1,  x_{t+1} = x_t − h_t ∇f(x_t),

whose value is the exact worst case of the ratio ‖x_T − x*‖²/‖x_0 − x*‖²
over the whole class (Drori & Teboulle 2014; Taylor, Hendrickx & Glineur
2017), solved with PEPit. Each (T, κ) solves it for:

* ``fractal``: ``fractal_optax.fractal_chebyshev_step_sizes(T, μ, L)``, in
  its fractal order;
* ``silver``: ``fractal_optax.silver_step_sizes(T, μ, L)``;
* ``constant``: T steps of 2/(L + μ);
* ``fractal_accepted`` (``accepted=True``): the fractal cycle with the extra
  constraint f(x_T) ≤ f(x_0), i.e. the worst case over the runs that the
  adaptive optimiser's acceptance test lets through (see ``write``'s notes).

Next to each: its value over quadratics with spectrum in [μ, L] (``fractal``:
1/T_T(z₀)², ``fractal_optax.chebyshev_error_bound`` squared; ``constant``:
((κ − 1)/(κ + 1))^{2T}; ``silver``: the sup of ∏(1 − h_t λ)² on a grid, and
its proven bound ``fractal_optax.silver_error_bound`` squared). Writes
``results.{json,md}`` and ``certificates.png``.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import sys
import time
from typing import Any

import numpy as np
import tqdm

from benchmarks import files
from benchmarks import reporting
from benchmarks import resume
from benchmarks.certificates import configs
import fractal_optax

METHODS = ("fractal", "silver", "constant", "fractal_accepted")
_LABELS = {
  "fractal": "fractal (Chebyshev, fractal order)",
  "silver": "silver",
  "constant": "constant 2/(L+μ)",
  "fractal_accepted": "fractal, given f(x_T) ≤ f(x_0)",
}
_OPTIMAL = "optimal"


def step_sizes(
  method: str, num_steps: int, mu: float, big_l: float
) -> np.ndarray:
  """The float64 steps of one cycle of ``method``."""
  if method in ("fractal", "fractal_accepted"):
    return np.asarray(
      fractal_optax.fractal_chebyshev_step_sizes(num_steps, mu, big_l),
      np.float64,
    )
  if method == "silver":
    return np.asarray(
      fractal_optax.silver_step_sizes(num_steps, mu, big_l), np.float64
    )
  if method == "constant":
    return np.full(num_steps, 2.0 / (big_l + mu))
  raise ValueError(f"unknown method, got {method=}.")


def host_steps(
  method: str, num_steps: int, mu: float, big_l: float
) -> np.ndarray:
  """:func:`step_sizes` computed in float64 (JAX's x64 switched on)."""
  import jax  # pylint: disable=g-import-not-at-top

  with jax.enable_x64(True):
    return step_sizes(method, num_steps, mu, big_l)


def worst_case(
  steps: np.ndarray,
  mu: float,
  big_l: float,
  *,
  accepted: bool = False,
  solvers: tuple[str, ...] = configs.SOLVERS,
) -> dict[str, Any]:
  """Solves the PEP of ``steps``; tries ``solvers`` until one is optimal.

  Returns the dual value (PEPit's upper bound, the certificate), the primal
  value (a worst-case function found), the cvxpy status, the solver, and the
  seconds each attempt took. A solver that raises or returns no value is
  recorded with its status and the next one is tried; if none is optimal the
  first answer with a value is kept, with its status.
  """
  from PEPit import PEP  # pylint: disable=g-import-not-at-top
  from PEPit.functions import SmoothStronglyConvexFunction  # pylint: disable=g-import-not-at-top

  attempts, kept = [], None
  for solver in solvers:
    problem = PEP()
    func = problem.declare_function(
      SmoothStronglyConvexFunction, L=big_l, mu=mu
    )
    xs = func.stationary_point()
    x0 = problem.set_initial_point()
    problem.set_initial_condition((x0 - xs) ** 2 <= 1)
    x = x0
    for h in steps:
      x = x - float(h) * func.gradient(x)
    if accepted:
      problem.add_constraint(func(x) <= func(x0))
    problem.set_performance_metric((x - xs) ** 2)
    start = time.perf_counter()
    value, primal, status = None, None, "solver_error"
    try:
      with contextlib.redirect_stdout(io.StringIO()):
        value = problem.solve(verbose=0, solver=solver)
      status = str(problem.wrapper.prob.status)
      primal = problem.wrapper.prob.value
    except Exception as e:  # pylint: disable=broad-except
      status = f"solver_error: {type(e).__name__}"
    attempt = {
      "solver": solver,
      "status": status,
      "seconds": time.perf_counter() - start,
      "worst_case": _float(value),
      "primal": _float(primal),
    }
    attempts.append(attempt)
    if attempt["worst_case"] is not None and kept is None:
      kept = attempt
    if status == _OPTIMAL and attempt["worst_case"] is not None:
      kept = attempt
      break
  kept = kept or {
    "solver": None,
    "status": "failed: "
    + ", ".join(f"{a['solver']} {a['status']}" for a in attempts),
    "worst_case": None,
    "primal": None,
  }
  return {
    **{k: kept[k] for k in ("solver", "status", "worst_case", "primal")},
    "seconds": sum(a["seconds"] for a in attempts),
    "attempts": attempts,
  }


def _float(value: Any) -> float | None:
  if value is None:
    return None
  value = float(value)
  return value if math.isfinite(value) else None


def lipschitz_bound(steps: np.ndarray, mu: float, big_l: float) -> float:
  """``∏ max(|1 − h_t μ|, |1 − h_t L|)²``: a bound that needs no solver.

  Each step ``x ↦ x − h∇f(x)`` is Lipschitz with that constant on the class,
  so the product bounds the PEP value (loosely) from above.
  """
  factors = np.maximum(np.abs(1.0 - steps * mu), np.abs(1.0 - steps * big_l))
  return float(np.prod(factors.astype(np.float64) ** 2))


def quadratic_value(
  steps: np.ndarray, mu: float, big_l: float, grid: int
) -> float:
  """``max over λ in [μ, L] of ∏(1 − h_t λ)²`` on a grid (ends included)."""
  lam = np.linspace(mu, big_l, grid)
  with np.errstate(divide="ignore"):  # A grid point on a root: log 0.
    log_abs = np.log(np.abs(1.0 - np.outer(steps, lam))).sum(axis=0)
  return float(np.exp(2.0 * log_abs.max()))


def case(
  num_steps: int, kappa: float, config: configs.Config
) -> dict[str, Any]:
  """The rows of one (T, κ): every method's certificate and quadratic value."""
  big_l, mu = 1.0, 1.0 / kappa
  methods = METHODS if config.accepted else METHODS[:-1]
  quadratic = {
    "fractal": fractal_optax.chebyshev_error_bound(num_steps, mu, big_l) ** 2,
    "constant": ((kappa - 1.0) / (kappa + 1.0)) ** (2 * num_steps),
  }
  rows = []
  for method in methods:
    steps = host_steps(method, num_steps, mu, big_l)
    row = {
      "T": num_steps,
      "kappa": kappa,
      "method": method,
      **worst_case(
        steps,
        mu,
        big_l,
        accepted=method == "fractal_accepted",
        solvers=config.solvers,
      ),
    }
    row["lipschitz_bound"] = lipschitz_bound(steps, mu, big_l)
    closed_form = "fractal" if method == "fractal_accepted" else method
    row["quadratic"] = (
      quadratic[closed_form]
      if closed_form in quadratic
      else quadratic_value(steps, mu, big_l, config.grid)
    )
    if method == "silver":
      row["proven_bound"] = (
        fractal_optax.silver_error_bound(num_steps, mu, big_l) ** 2
      )
    rows.append(row)
  return {"rows": rows}


def _value(row: dict[str, Any]) -> str:
  if row["worst_case"] is None:
    return f"— ({row['status']})"
  text = f"{row['worst_case']:.4g}"
  return text if row["status"] == _OPTIMAL else f"{text} ({row['status']})"


def table(rows: list[dict[str, Any]]) -> str:
  """The Markdown table: one line per (T, κ), worst cases and solver times."""
  lines = []
  for (t, kappa), group in _groups(rows).items():
    line = {"T": t, "κ": f"{kappa:g}"}
    for row in group:
      name = row["method"]
      line[name] = _value(row)
      line[f"{name} s"] = f"{row['seconds']:.2f}"
      if name == "fractal":
        line["quadratic 1/T_T(z₀)²"] = row["quadratic"]
      if name == "constant":
        line["constant, quadratic"] = row["quadratic"]
      if name == "silver":
        line["silver, proven"] = row["proven_bound"]
    lines.append(line)
  columns = [
    "T",
    "κ",
    "fractal",
    "quadratic 1/T_T(z₀)²",
    "silver",
    "silver, proven",
    "constant",
    "constant, quadratic",
  ]
  columns += (
    ["fractal_accepted"]
    if any("fractal_accepted" in line for line in lines)
    else []
  )
  columns += [
    f"{m} s" for m in METHODS if any(f"{m} s" in line for line in lines)
  ]
  header = (
    "Worst case of ‖x_T − x*‖²/‖x_0 − x*‖² over L-smooth μ-strongly "
    "convex functions (L = 1, μ = 1/κ), one cycle; "
    "columns `… s`: solver seconds.\n\n"
  )
  return header + reporting.markdown_table(lines, columns)


def _groups(rows):
  groups = {}
  for row in rows:
    groups.setdefault((row["T"], row["kappa"]), []).append(row)
  return groups


def _solved(rows, method):
  return [
    r
    for r in rows
    if r["method"] == method
    and r["worst_case"] is not None
    and r["status"] == _OPTIMAL
  ]


def takeaway(rows: list[dict[str, Any]]) -> str:
  """The findings in plain words, computed from the rows."""
  out = []
  fractal = _solved(rows, "fractal")
  amplifies = [r for r in fractal if r["worst_case"] > 1.0]
  if fractal:
    worst = max(fractal, key=lambda r: r["worst_case"])
    smallest = min(amplifies, key=lambda r: (r["T"], r["kappa"]), default=None)
    out.append(
      f"- **Fractal cycle.** Its worst case over smooth strongly convex "
      f"functions exceeds 1 (it can move *away* from x*) in "
      f"{len(amplifies)} of the {len(fractal)} solved cases"
      + (
        f", from T = {smallest['T']} at κ = {smallest['kappa']:g}"
        if smallest
        else ""
      )
      + f"; the largest is {worst['worst_case']:.3g} (T = {worst['T']}, "
      f"κ = {worst['kappa']:g}), where quadratics give "
      f"{worst['quadratic']:.3g}. The quadratic guarantee does not carry "
      "over to the class."
    )
    contract = sorted(
      {(r["T"], r["kappa"]) for r in fractal if r["worst_case"] < 1.0}
    )
    out.append(
      "- Fractal cycles that do contract on the class: "
      + (
        ", ".join(f"T = {t}, κ = {k:g}" for t, k in contract)
        if contract
        else "none of the solved cases"
      )
      + "."
    )
  silver = _solved(rows, "silver")
  if silver:
    gap = max(
      abs(r["worst_case"] - r["proven_bound"]) / r["proven_bound"]
      for r in silver
    )
    out.append(
      f"- **Silver steps.** Every solved worst case is below 1 (largest "
      f"{max(r['worst_case'] for r in silver):.3g}) and matches the proven "
      f"bound `silver_error_bound(T, μ, L)²` to a relative {gap:.1e}, as "
      "Part I's theorem says: the guarantee holds on every smooth strongly "
      "convex function."
      if all(r["worst_case"] < 1.0 for r in silver)
      else "- **Silver steps.** Worst cases "
      f"{[r['worst_case'] for r in silver]}"
      f" (largest relative gap to the proven bound {gap:.1e})."
    )
    compare = [
      (s, c)
      for s in silver
      for c in _solved(rows, "constant")
      if (s["T"], s["kappa"]) == (c["T"], c["kappa"])
    ]
    better = [s for s, c in compare if s["worst_case"] < c["worst_case"]]
    out.append(
      f"- Silver beats the best constant step's worst case in {len(better)} "
      f"of {len(compare)} cases."
    )
  constant = _solved(rows, "constant")
  if constant:
    gap = max(
      abs(r["worst_case"] - r["quadratic"]) / r["quadratic"] for r in constant
    )
    out.append(
      f"- **Constant 2/(L+μ).** Its worst case is the quadratic "
      f"((κ − 1)/(κ + 1))^(2T) to a relative {gap:.1e}."
    )
  accepted = _solved(rows, "fractal_accepted")
  if accepted:
    largest = max(accepted, key=lambda r: r["worst_case"])
    out.append(
      f"- **Accepted fractal cycles** (f(x_T) ≤ f(x_0) imposed): worst case "
      f"up to {largest['worst_case']:.3g} (T = {largest['T']}, "
      f"κ = {largest['kappa']:g}); below 1 in "
      f"{sum(r['worst_case'] < 1.0 for r in accepted)} of {len(accepted)}, "
      f"and within 1% of κ in "
      f"{sum(abs(r['worst_case'] / r['kappa'] - 1) < 0.01 for r in accepted)}"
      " (κ is the trivial bound: μ/2·‖x − x*‖² ≤ f(x) − f* ≤ L/2·‖x − x*‖²). "
      "A rejected cycle returns to x_0 (ratio 1), so the safeguarded cycle's "
      "worst case is the larger of 1 and this value: it never diverges, but "
      "no contraction is certified."
    )
  failed = [r for r in rows if r["status"] != _OPTIMAL]
  out.append(
    "- **Solver.** "
    + (
      "Every SDP was solved to an optimal status."
      if not failed
      else "Not optimal: "
      + "; ".join(
        f"{r['method']} at T = {r['T']}, κ = {r['kappa']:g}: {r['status']}"
        + (
          f" (value {r['worst_case']:.3g})"
          if r["worst_case"] is not None
          else " (no value; the per-step Lipschitz product bounds it by "
          f"{r.get('lipschitz_bound', math.nan):.3g})"
        )
        for r in failed
      )
      + "."
    )
  )
  return "\n".join(out) + "\n"


NOTES = """
Notes. Each value is PEPit's dual bound (the certificate) of the SDP, solved
with cvxpy and the first of the configured solvers that reports an optimal
status; a case no solver solves is shown with its status, not dropped. The
adaptive optimiser (`fractal_optax.adaptive_fractal_sgd`) changes its cycle
from the outcome of the last one (a rejected cycle raises m_eff or M), so it
is not a fixed step sequence and has no PEP of this form; the
`fractal_accepted` column is the fixed fractal cycle conditioned on the
acceptance test f(x_T) ≤ f(x_0): over every function and start where the cycle
does not raise f, ‖x_T − x*‖² ≤ value · ‖x_0 − x*‖². It certifies one accepted
cycle, not the optimiser's run.
"""


def write(
  rows: list[dict[str, Any]], summary: dict[str, Any], workdir: str
) -> str:
  """Writes ``results.{json,md}`` and ``certificates.png``; returns the text."""
  text = table(rows) + "\n" + summary["takeaway"] + NOTES
  files.write_json(
    os.path.join(workdir, "results.json"), {"summary": summary, "rows": rows}
  )
  files.write_text(os.path.join(workdir, "results.md"), text)
  kappas = sorted({r["kappa"] for r in rows})
  fig, axes = reporting.subplots(
    1, len(kappas), squeeze=False, figsize=(4.2 * len(kappas), 3.8)
  )
  for ax, kappa in zip(axes[0], kappas, strict=True):
    for method, color in zip(METHODS, ("C0", "C2", "C1", "C3"), strict=True):
      mine = [r for r in rows if r["kappa"] == kappa and r["method"] == method]
      if not mine:
        continue
      ts = [r["T"] for r in mine]
      values = [
        r["worst_case"] if r["worst_case"] is not None else np.nan for r in mine
      ]
      ax.plot(ts, values, "o-", color=color, ms=4, label=_LABELS[method])
      if method in ("fractal", "constant", "silver"):
        ax.plot(
          ts,
          [r["quadratic"] for r in mine],
          "--",
          color=color,
          lw=1,
          label=f"{method}, quadratics",
        )
    ax.axhline(1.0, color="k", lw=0.6)
    ax.set(xscale="log", yscale="log", xlabel="T", title=f"κ = {kappa:g}")
    ax.set_xticks(
      sorted({r["T"] for r in rows}),
      [str(t) for t in sorted({r["T"] for r in rows})],
    )
    ax.set_xticks([], minor=True)
    ax.grid(True, alpha=0.3)
  axes[0][0].set_ylabel("worst ‖x_T − x*‖² / ‖x_0 − x*‖²")
  handles, labels = axes[0][0].get_legend_handles_labels()
  fig.legend(
    handles,
    labels,
    loc="upper center",
    ncol=4,
    fontsize=8,
    bbox_to_anchor=(0.5, 0.0),
  )
  reporting.save_figure(fig, os.path.join(workdir, "certificates.png"))
  return text


def run(
  config: configs.Config, workdir: str, *, command: str = ""
) -> dict[str, Any]:
  """Runs (or resumes) every (T, κ), writes the files, returns the summary."""
  store = resume.Store(workdir, config)
  cases = [(t, k) for k in config.kappas for t in config.num_steps]
  rows = []
  for t, kappa in tqdm.tqdm(
    cases, desc="(T, κ)", file=sys.stderr, disable=not config.progress
  ):
    rows += store.compute(
      f"T={t},kappa={kappa:g}", lambda t=t, kappa=kappa: case(t, kappa, config)
    )["rows"]
  summary = {
    "num_steps": config.num_steps,
    "kappas": config.kappas,
    "solvers": config.solvers,
    "takeaway": takeaway(rows),
    "seconds": sum(r["seconds"] for r in rows),
    "versions": _versions(),
    "environment": files.environment(),
    "command": command,
  }
  print(write(rows, summary, workdir))
  store.clear()
  return summary


def _versions() -> dict[str, str]:
  import importlib.metadata  # pylint: disable=g-import-not-at-top

  out = {}
  for name in ("pepit", "cvxpy", "clarabel", "scs"):
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
      out[name] = importlib.metadata.version(name)
  return out
