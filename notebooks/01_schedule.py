# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 1. The fractal Chebyshev schedule
#
# Gradient descent on a quadratic $f(x) = \tfrac12 x^\top A x - b^\top x$
# whose Hessian eigenvalues lie in $[m, M]$ takes $T$ steps
# $x_{t+1} = x_t - \eta_t \nabla f(x_t)$ and ends with
# $x_T - x^* = p(A)(x_0 - x^*)$, where
# $p(\lambda) = \prod_t (1 - \eta_t \lambda)$.
# Choosing the steps $\eta_i = 1/\lambda_i$ at the roots $\lambda_i$ of the
# Chebyshev polynomial $T_T$ mapped onto $[m, M]$ makes $p$ the smallest
# polynomial on $[m, M]$: about $\tfrac12\sqrt\kappa\ln(2/\varepsilon)$
# steps reach error $\varepsilon$, against $\tfrac12\kappa\ln(1/\varepsilon)$
# for the best constant step. The *order* of the steps does not change $p$,
# but it decides whether the iterates survive the way there: the fractal
# order of Lebedev and Finogenov keeps every stretch of the schedule tame.
#
# This notebook draws the schedule, its polynomial and how much each order
# amplifies errors along the way, all with `fractal_optax` (Agarwal, Goel &
# Zhang, [ICML 2021](https://arxiv.org/abs/2103.01338)). It needs only
# `pip install fractal_optax matplotlib`.

# %% tags=["parameters"]
import os

# CI runs the notebooks with FRACTAL_OPTAX_NOTEBOOK_QUICK=1: the knobs shrink.
QUICK = os.environ.get("FRACTAL_OPTAX_NOTEBOOK_QUICK", "0") == "1"
OVERSAMPLE = 4 if QUICK else 16  # evaluation points per step, stability_profile
PROFILE_NUM_STEPS = 32 if QUICK else 64  # T of the prefix/suffix figure
ODD_NUM_STEPS = (12, 100) if QUICK else (100, 127, 1000)  # T not a power of 2
print(f"QUICK = {QUICK}")

# %%
# %matplotlib inline
from IPython.display import Markdown
from IPython.display import display
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np

import fractal_optax

jax.config.update("jax_enable_x64", True)  # float64 pictures
plt.rcParams.update(
  {
    "figure.dpi": 80,
    "savefig.dpi": 80,
    "font.size": 9,
    "axes.grid": True,
    "grid.alpha": 0.3,
  }
)


def markdown_table(rows, columns):
  """A Markdown table of dicts, numbers with 4 significant digits."""
  fmt = lambda v: f"{v:.4g}" if isinstance(v, float) else str(v)
  lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
  lines += [
    "| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows
  ]
  return "\n".join(lines)


# %% [markdown]
# ## The steps and their order
#
# `chebyshev_step_sizes` returns the $T$ steps largest first;
# `fractal_order` is the permutation in which they are taken, and
# `fractal_chebyshev_step_sizes` applies it. For $m = 0.1$, $M = 1$,
# $T = 8$ (the paper's example):

# %%
m, M, T = 0.1, 1.0, 8
steps = np.asarray(fractal_optax.chebyshev_step_sizes(T, m, M))
order = fractal_optax.fractal_order(T)
taken = np.asarray(fractal_optax.fractal_chebyshev_step_sizes(T, m, M))
print("steps, largest first:", np.array2string(steps, precision=4))
print("fractal order:       ", order)
print("schedule as taken:   ", np.array2string(taken, precision=4))
assert np.allclose(taken, steps[order])
print(f"steps above the classical limit 2/M: {np.sum(steps > 2 / M)} of {T}")

# %% [markdown]
# ## The fractal picture
#
# The largest step (about $1/m$) comes first, then the smallest, and the
# pattern repeats at every scale: each half of the schedule is the
# schedule of half the length, interleaved with its mirror image. As an
# optax schedule it cycles with period $T$ (top left). About half of the
# steps exceed the classical stability limit $2/M$ of gradient descent
# (dotted line).

# %%
fig, axes = plt.subplots(2, 2, figsize=(11, 6.4))
schedule = fractal_optax.fractal_chebyshev_schedule(16, 0.01, 1.0)
counts = jnp.arange(48)
ax = axes[0, 0]
ax.plot(counts, schedule(counts), ".-", lw=0.8)
ax.set_title("fractal_chebyshev_schedule(16, 0.01, 1.0), three cycles")
for ax, (t, kappa) in zip(
  (axes[0, 1], axes[1, 0]), ((64, 1e2), (256, 1e4)), strict=True
):
  values = np.asarray(
    fractal_optax.fractal_chebyshev_step_sizes(t, 1 / kappa, 1.0)
  )
  ax.vlines(np.arange(t), values.min(), values, lw=0.9 if t <= 64 else 0.6)
  ax.set_title(
    f"T = {t}, κ = {kappa:g}: {np.mean(values > 2):.0%} of the steps > 2/M"
  )
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

# %% [markdown]
# ## The mean step is about $1/\sqrt{mM}$
#
# The nodes $\lambda_i$ follow the arcsine law on $[m, M]$, under which the
# mean of $1/\lambda$ is exactly $1/\sqrt{mM}$. For $T$ nodes the mean step
# is, in closed form,
# $\frac1T\sum_i \frac1{\lambda_i} = \frac{1}{\sqrt{mM}}\,
# \frac{1-\rho^{2T}}{1+\rho^{2T}}$ with
# $\rho = (\sqrt\kappa-1)/(\sqrt\kappa+1)$: about $1/\sqrt{mM}$ once
# $T \gtrsim \sqrt\kappa$, less for a short cycle at large $\kappa$ (its
# smallest node is far above $m$). With $M = 1$, $m = 1/\kappa$ (the
# *multipliers* of a base learning rate used for deep networks in notebook
# 3) the mean multiplier is about $\sqrt\kappa$, not 1: for $\kappa = 10$
# and $T = 8$ it is 3.16. Measured against the formula:

# %%
rows = []
for kappa in (10.0, 100.0, 1e4):
  rho = (np.sqrt(kappa) - 1) / (np.sqrt(kappa) + 1)
  row = {"κ": f"{kappa:g}", "√κ": float(np.sqrt(kappa))}
  for t in (8, 16, 64):
    values = np.asarray(
      fractal_optax.fractal_chebyshev_step_sizes(t, 1 / kappa, 1.0)
    )
    formula = np.sqrt(kappa) * (1 - rho ** (2 * t)) / (1 + rho ** (2 * t))
    row[f"mean, T = {t}"] = f"{values.mean():.4g} ({formula:.4g})"
  row["largest, T = 8"] = float(
    fractal_optax.chebyshev_step_sizes(8, 1 / kappa, 1.0)[0]
  )
  rows.append(row)
display(
  Markdown(
    "Mean of the `fractal_chebyshev_step_sizes(T, 1/κ, 1)` "
    "of one cycle (in brackets: the closed form):\n\n"
    + markdown_table(rows, list(rows[0]))
  )
)


# %% [markdown]
# ## The residual polynomial
#
# After one cycle the error along an eigenvector of eigenvalue $\lambda$ is
# multiplied by $p(\lambda) = \prod_t (1 - \eta_t\lambda)$, which vanishes
# at the Chebyshev nodes $\lambda_i = 1/\eta_i$ and equioscillates between
# $\pm 1/T_T(z_0)$ (`chebyshev_error_bound`) on $[m, M]$. Constant steps
# $2/(M+m)$ reach only $\big((\kappa-1)/(\kappa+1)\big)^T$. Above $M$ the
# polynomial explodes: *over*-estimate $M$.


# %%
def residual(step_sizes, lam):
  return np.prod(1.0 - np.outer(step_sizes, lam), axis=0)


fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for ax, (t, kappa, log) in zip(
  axes, ((5, 10.0, False), (16, 100.0, True)), strict=True
):
  m, M = 1 / kappa, 1.0
  step_sizes = np.asarray(fractal_optax.fractal_chebyshev_step_sizes(t, m, M))
  bound = fractal_optax.chebyshev_error_bound(t, m, M)
  lam = (
    np.geomspace(m / 4, 1.1 * M, 4001)
    if log
    else np.linspace(0, 1.08 * M, 4001)
  )
  p = residual(step_sizes, lam)
  gd = (1 - 2 * lam / (M + m)) ** t
  ax.axvspan(m, M, color="C2", alpha=0.08, label="[m, M]")
  if log:
    ax.loglog(lam, np.abs(p), lw=1.2, label="|p(λ)|, fractal Chebyshev")
    ax.loglog(
      lam, np.abs(gd), lw=1, ls="--", label="|1 − 2λ/(M+m)|^T, constant step"
    )
    ax.set_ylim(1e-4, 1e3)
  else:
    ax.plot(lam, p, lw=1.2, label="p(λ), fractal Chebyshev")
    ax.plot(lam, gd, lw=1, ls="--", label="(1 − 2λ/(M+m))^T, constant step")
    ax.axhline(-bound, color="k", ls=":", lw=0.8)
    ax.set_ylim(-0.15, 1.05)
  ax.axhline(
    bound, color="k", ls=":", lw=0.8, label=f"±1/T_T(z₀) = {bound:.3g}"
  )
  ax.plot(
    1 / step_sizes,
    np.full(t, bound if log else 0.0),
    "o",
    ms=4,
    mfc="none",
    color="C3",
    label="nodes λ_i = 1/η_i",
  )
  ax.set_title(f"T = {t}, κ = {kappa:g}" + (" (log-log)" if log else ""))
  ax.set_xlabel("eigenvalue λ")
  ax.legend(fontsize=7, loc="upper right" if not log else "lower left")
fig.tight_layout()

t, m, M = 16, 0.01, 1.0
fractal = np.asarray(fractal_optax.fractal_chebyshev_step_sizes(t, m, M))
lam = np.linspace(m, M, 20001)
print(
  f"T = {t}, κ = {M / m:g}: max |p| on [m, M] = "
  f"{np.abs(residual(fractal, lam)).max():.6g}, chebyshev_error_bound = "
  f"{fractal_optax.chebyshev_error_bound(t, m, M):.6g}, constant step: "
  f"{((M - m) / (M + m)) ** t:.3g}"
)
difference = residual(fractal, lam) - residual(np.sort(fractal), lam)
print(
  "same polynomial in any order: max difference to the sorted order "
  f"{np.abs(difference).max():.1e}"
)
print(
  "an eigenvalue at 1.05 M is multiplied by "
  f"{abs(residual(fractal, [1.05 * M])[0]):.3g}"
)

# %% [markdown]
# ## Why the order matters: prefix, suffix and block amplification
#
# `stability_profile(step_sizes, m, M)` returns the sup over
# $\lambda \in [m, M]$ of $|\prod (1 - \eta_t\lambda)|$ over the whole run,
# every prefix (how far the iterates stray), every suffix (how much an
# error injected at step $t$, a rounding or a noisy gradient, is amplified
# by the end) and every contiguous block. Below, the profile of each prefix
# $\eta_0 \dots \eta_{t-1}$ and each suffix $\eta_t \dots \eta_{T-1}$ for the
# fractal order and the two sorted orders: the sorted orders pass through
# amplifications of $10^{20}$ and more, which float32 cannot survive; the
# fractal prefix never exceeds the largest single step's
# $\eta_{\max} M - 1 < \kappa$, and its suffixes never amplify at all.


# %%
def step_order(name, num_steps, seed=0):
  """Indices into the largest-first steps, in the order they are taken."""
  if name == "fractal":
    return np.asarray(fractal_optax.fractal_order(num_steps))
  if name == "largest_first":
    return np.arange(num_steps)
  if name == "smallest_first":
    return np.arange(num_steps)[::-1]
  if name == "random":
    return np.random.default_rng(seed).permutation(num_steps)
  if name == "filtered":  # next power of two's order, indices >= T dropped
    full = np.asarray(
      fractal_optax.fractal_order(1 << (num_steps - 1).bit_length())
    )
    return full[full < num_steps]
  raise ValueError(f"unknown order, got {name=}")


t_len, kappa = PROFILE_NUM_STEPS, 100.0
m, M = 1 / kappa, 1.0
steps = np.asarray(fractal_optax.chebyshev_step_sizes(t_len, m, M))  # float64
names = ("fractal", "largest_first", "smallest_first", "random")
ordered = {name: steps[step_order(name, t_len)] for name in names}


def sup(step_sizes):
  return fractal_optax.stability_profile(
    step_sizes, m, M, oversample=OVERSAMPLE
  ).final


fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), sharey=True)
for name in names[:3]:
  s = ordered[name]
  axes[0].semilogy(
    range(1, t_len + 1), [sup(s[:t]) for t in range(1, t_len + 1)], label=name
  )
  axes[1].semilogy(range(t_len), [sup(s[t:]) for t in range(t_len)], label=name)
axes[0].set_title(
  f"prefix: sup |∏_{{s<t}} (1 − η_s λ)|, T = {t_len}, κ = {kappa:g}"
)
axes[1].set_title("suffix: sup |∏_{s≥t} (1 − η_s λ)|")
for ax in axes:
  ax.axhline(1.0, color="k", lw=0.6)
  ax.set_xlabel("t")
  ax.legend(fontsize=8)
fig.tight_layout()

rows = [
  {
    "order": name,
    **fractal_optax.stability_profile(
      ordered[name], m, M, oversample=OVERSAMPLE
    )._asdict(),
  }
  for name in names
]
display(
  Markdown(
    f"`stability_profile`, T = {t_len}, κ = {kappa:g}:\n\n"
    + markdown_table(
      rows,
      [
        "order",
        "final",
        "max_prefix",
        "max_suffix",
        "max_block",
        "max_single_step",
      ],
    )
  )
)

# %% [markdown]
# All four orders end at the same `final` value, $1/T_T(z_0)$. The fractal
# order's `max_block` equals `max_single_step`: no stretch of the schedule
# amplifies more than its largest step alone, which no order can beat.
#
# ## A cycle length that is not a power of two
#
# The paper's recursion stops at powers of two. `fractal_order` extends it to
# every $T$ (odd sizes insert their middle step, a pure contraction, at a
# fixed place). The alternative of the one maintained PyTorch implementation,
# taking the order of the next power of two and dropping the indices
# $\ge T$ (`filtered`), keeps the final error but not the stability:

# %%
print("fractal_order(12):", fractal_optax.fractal_order(12))
kappa = 1e4
m, M = 1 / kappa, 1.0
rows = []
for t in ODD_NUM_STEPS:
  steps = np.asarray(fractal_optax.chebyshev_step_sizes(t, m, M))
  for name in ("fractal", "filtered", "largest_first"):
    profile = fractal_optax.stability_profile(
      steps[step_order(name, t)], m, M, oversample=OVERSAMPLE
    )
    rows.append(
      {
        "T": t,
        "order": name,
        "final": profile.final,
        "max_suffix": profile.max_suffix,
        "max_block": profile.max_block,
        "max_block / floor": profile.max_block / profile.max_single_step,
      }
    )
display(
  Markdown(
    f"κ = {kappa:g}; floor = `max_single_step` = η_max·M − 1, the least any "
    "order can have:\n\n"
    + markdown_table(
      rows,
      ["T", "order", "final", "max_suffix", "max_block", "max_block / floor"],
    )
  )
)

fig, ax = plt.subplots(figsize=(11, 2.6))
values = np.asarray(fractal_optax.fractal_chebyshev_step_sizes(100, 1e-3, 1.0))
ax.vlines(np.arange(100), values.min(), values, lw=0.9)
ax.axhline(2.0, color="k", ls=":", lw=0.8)
ax.set_yscale("log")
ax.set_title("fractal_chebyshev_step_sizes(100, 1e-3, 1.0): T = 100, κ = 1000")
ax.set_xlabel("count t")
ax.set_ylabel("η_t")
fig.tight_layout()

# %% [markdown]
# **Takeaways.** The steps fix the polynomial, the order fixes the
# stability. The fractal order takes the largest step first and keeps every
# block within the single-step floor (within a small factor for $T$ that is
# not a power of two), every suffix contracting for powers of two. The mean
# step of a cycle is about $1/\sqrt{mM}$ once $T \gtrsim \sqrt\kappa$
# ($\sqrt\kappa$ times the base rate when the schedule is used as
# multipliers). The next notebook runs these schedules on quadratics in
# float32.
