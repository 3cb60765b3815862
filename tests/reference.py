"""Independent references for the tests, written without the library.

Step sizes and bounds use mpmath at 40 digits with the textbook cos-form of the
Chebyshev nodes (the library uses the sin² form in float64/float32); the block
amplification uses a separate log-space evaluator in the normalised variable
z ∈ [-1, 1].
"""

import functools

import mpmath
import numpy as np

mpmath.mp.dps = 40


@functools.cache
def _step_sizes(num_steps, m, big_m):
  m, big_m = mpmath.mpf(m), mpmath.mpf(big_m)
  out = []
  for i in range(num_steps):
    theta = (i + mpmath.mpf(1) / 2) * mpmath.pi / num_steps
    lam = (big_m + m) / 2 - (big_m - m) / 2 * mpmath.cos(theta)
    out.append(1 / lam)
  return tuple(float(v) for v in out)


def step_sizes(num_steps, m, big_m):
  """1/λ_i, λ_i = (M+m)/2 − (M−m)/2 cos((i+½)π/T), sorted largest first."""
  return np.array(_step_sizes(num_steps, float(m), float(big_m)))


def error_bound(num_steps, m, big_m):
  """1/T_T(z0) = 1/cosh(T arccosh((M+m)/(M−m)))."""
  m, big_m = mpmath.mpf(m), mpmath.mpf(big_m)
  if m == big_m:
    return 0.0
  z0 = (big_m + m) / (big_m - m)
  return float(1 / mpmath.cosh(num_steps * mpmath.acosh(z0)))


def paper_order(num_steps):
  """PAPER.md's recursion σ_{2n} = interleave(σ_n, 2n − 1 − σ_n), lists only."""
  order = [0]
  while len(order) < num_steps:
    n = len(order)
    order = [v for k in order for v in (k, 2 * n - 1 - k)]
  return order


def block_ratios(order, kappas, oversample=0):
  """max_block / max(max_single, 1) of the Chebyshev steps in ``order``.

  One array program per T for all κ: in z = (M + m − 2λ)/(M − m) the factor
  of node z_i is (z − z_i)/(z0 − z_i), so log|numerators| are shared by all κ
  and each κ only shifts the prefix sums by a per-step constant. The sups are
  sampled at the T + 1 extrema of T_T (both ends included) and, with
  ``oversample > 0``, at ``2·oversample·T`` more points between them; in
  float32 by default (fast), float64 with ``oversample > 0``.
  """
  order = np.asarray(order)
  t = order.size
  dtype = np.float64 if oversample else np.float32
  z_nodes = np.cos((order + 0.5) * np.pi / t)
  z = np.cos(np.arange(t + 1) * np.pi / t)
  if oversample:
    count = oversample * 2 * t
    z = np.concatenate([z, np.cos((np.arange(count) + 0.5) * np.pi / count)])
  diff = np.abs(z[None, :] - z_nodes[:, None]).astype(dtype)
  log_num = np.log(np.maximum(diff, np.finfo(dtype).tiny))
  prefix_num = np.zeros((t + 1, z.size), dtype)
  np.cumsum(log_num, 0, out=prefix_num[1:])
  ratios = []
  for kappa in kappas:
    z0 = (kappa + 1.0) / (kappa - 1.0)
    log_den = np.log(z0 - z_nodes)
    shift = np.concatenate([[0.0], np.cumsum(log_den)]).astype(dtype)
    prefix = prefix_num - shift[:, None]
    running_min = np.minimum.accumulate(prefix[:-1], axis=0)
    block = np.exp(float((prefix[1:] - running_min).max()))
    single = np.max((1.0 + np.abs(z_nodes)) / (z0 - z_nodes))
    ratios.append(block / max(single, 1.0))
  return np.array(ratios)


# The silver steps (Altschuler & Parrilo), from the papers' definitions.

SILVER_RATIO = 1 + mpmath.sqrt(2)


def _silver_block(k, kappa):
  """Part I's recursion h(2n) = [h~(n), a, h~(n), b], literally, in mpmath."""
  psi = lambda t: (1 + kappa * t) / (1 + t)
  z = 1 / kappa
  block = [psi(z)]
  for _ in range(k):
    eta = 1 - z
    root = eta + mpmath.sqrt(1 + eta**2)
    y, z = z / root, z * root
    block = block[:-1] + [psi(y)] + block[:-1] + [psi(z)]
  return block, z


def silver_step_sizes(num_steps, m, big_m):
  """The blocks of T's binary digits (smallest first), each h/M, float64."""
  kappa = mpmath.mpf(big_m) / mpmath.mpf(m)
  out = []
  for k in range(num_steps.bit_length()):
    if num_steps >> k & 1:
      out += _silver_block(k, kappa)[0]
  return np.array([float(h / mpmath.mpf(big_m)) for h in out])


def silver_error_bound(num_steps, m, big_m):
  """The product of (1 − z_{k+1})/(1 + z_{k+1}) over T's binary digits k."""
  kappa = mpmath.mpf(big_m) / mpmath.mpf(m)
  bound = mpmath.mpf(1)
  for k in range(num_steps.bit_length()):
    if num_steps >> k & 1:
      z = _silver_block(k, kappa)[1]
      bound *= (1 - z) / (1 + z)
  return float(bound)


def silver_convex_step_sizes(num_steps, big_m):
  """Part II's (1 + ρ^(ν(i) − 1))/M, ν counted by repeated halving."""
  out = []
  for i in range(1, num_steps + 1):
    nu = 0
    while i % 2 == 0:
      i, nu = i // 2, nu + 1
    out.append((1 + SILVER_RATIO ** (nu - 1)) / mpmath.mpf(big_m))
  return np.array([float(h) for h in out])
