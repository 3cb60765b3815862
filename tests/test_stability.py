"""Tests of fractal_optax.stability_profile: brute force and the paper."""

from absl.testing import absltest
from absl.testing import parameterized
import jax
import numpy as np

import fractal_optax
import reference


def _brute_force(steps, m, big_m, num_points=4001):
  """O(T² · grid) products of every block, straight from the definition."""
  lam = np.linspace(m, big_m, num_points)
  factors = 1.0 - np.asarray(steps, np.float64)[:, None] * lam[None, :]
  t = len(steps)
  block = -np.inf
  for a in range(t):
    running = np.ones_like(lam)
    for b in range(a, t):
      running = running * factors[b]
      block = max(block, np.abs(running).max())
  prefixes = np.cumprod(factors, axis=0)
  suffixes = np.cumprod(factors[::-1], axis=0)
  return dict(
    final=np.abs(prefixes[-1]).max(),
    max_prefix=np.abs(prefixes).max(),
    max_suffix=np.abs(suffixes).max(),
    max_block=block,
    max_single_step=np.abs(factors).max(),
  )


class StabilityProfileTest(parameterized.TestCase):
  @parameterized.parameters(
    ("fractal", 16, 10.0),
    ("sorted", 12, 50.0),
    ("reversed", 8, 200.0),
    ("random", 10, 30.0),
  )
  def test_matches_brute_force(self, kind, t, kappa):
    steps = reference.step_sizes(t, 1.0, kappa)
    if kind == "fractal":
      steps = steps[reference.paper_order(t)] if t & (t - 1) == 0 else steps
    elif kind == "reversed":
      steps = steps[::-1]
    elif kind == "random":
      steps = steps[np.random.default_rng(0).permutation(t)]
    got = fractal_optax.stability_profile(steps, 1.0, kappa, oversample=64)
    want = _brute_force(steps, 1.0, kappa)
    for field, value in want.items():
      # The library samples Chebyshev points, the brute force a uniform grid:
      # both are lower bounds of the sup that agree to sampling accuracy.
      np.testing.assert_allclose(
        getattr(got, field), value, rtol=2e-3, err_msg=field
      )

  @parameterized.parameters((2,), (16,), (64,), (256,), (1024,))
  def test_power_of_two_fractal_facts(self, t):
    # PAPER.md: suffixes ≤ 1; largest prefix and block equal the first step's
    # amplification η_max M − 1; final = 1/T_T(z0).
    for kappa in (10.0, 1e3, 1e5):
      steps = fractal_optax.fractal_chebyshev_step_sizes(t, 1.0, kappa)
      with jax.enable_x64(True):
        steps64 = fractal_optax.fractal_chebyshev_step_sizes(t, 1.0, kappa)
      profile = fractal_optax.stability_profile(steps64, 1.0, kappa)
      first = float(steps64[0]) * kappa - 1.0
      self.assertLessEqual(profile.max_suffix, 1.0 + 1e-9)
      np.testing.assert_allclose(profile.max_block, first, rtol=1e-9)
      np.testing.assert_allclose(profile.max_prefix, first, rtol=1e-9)
      np.testing.assert_allclose(profile.max_single_step, first, rtol=1e-12)
      np.testing.assert_allclose(
        profile.final, reference.error_bound(t, 1.0, kappa), rtol=1e-6
      )
      self.assertLess(first, kappa - 1.0)
      # float32 steps give the same picture.
      profile32 = fractal_optax.stability_profile(steps, 1.0, kappa)
      np.testing.assert_allclose(profile32.max_block, first, rtol=1e-4)

  def test_sorted_orders_explode(self):
    # PAPER.md: at κ = 100, T = 64 the largest-first order has a prefix of
    # 1.0e27 and the smallest-first order a suffix of 1.0e27.
    steps = reference.step_sizes(64, 1.0, 100.0)
    largest_first = fractal_optax.stability_profile(steps, 1.0, 100.0)
    smallest_first = fractal_optax.stability_profile(steps[::-1], 1.0, 100.0)
    self.assertAlmostEqual(np.log10(largest_first.max_prefix), 27.0, delta=0.1)
    self.assertAlmostEqual(np.log10(smallest_first.max_suffix), 27.0, delta=0.1)

  def test_orientation_matters(self):
    # Reversing the fractal schedule in time loses the suffix property.
    steps = np.asarray(fractal_optax.fractal_chebyshev_step_sizes(64, 1.0, 1e3))
    self.assertLessEqual(
      fractal_optax.stability_profile(steps, 1.0, 1e3).max_suffix, 1.0001
    )
    self.assertGreater(
      fractal_optax.stability_profile(steps[::-1], 1.0, 1e3).max_suffix, 10
    )

  def test_huge_t_does_not_overflow(self):
    steps = reference.step_sizes(2048, 1.0, 1e4)  # Largest first.
    profile = fractal_optax.stability_profile(steps, 1.0, 1e4, oversample=2)
    self.assertTrue(np.isinf(profile.max_prefix) or profile.max_prefix > 1e100)
    self.assertTrue(np.isfinite(profile.final))

  def test_degenerate_interval(self):
    profile = fractal_optax.stability_profile([0.5, 0.5], 2.0, 2.0)
    self.assertEqual(profile.max_single_step, 0.0)
    self.assertLess(profile.max_block, 1e-100)

  @parameterized.named_parameters(
    ("empty", [], ValueError, "non-empty"),
    ("two_d", [[1.0]], ValueError, "shape"),
    ("nan", [1.0, float("nan")], ValueError, "finite"),
    ("text", ["a"], TypeError, "step_sizes"),
  )
  def test_bad_steps(self, steps, error, regex):
    with self.assertRaisesRegex(error, regex):
      fractal_optax.stability_profile(steps, 1.0, 2.0)

  def test_bad_curvature(self):
    with self.assertRaisesRegex(ValueError, "min_curvature"):
      fractal_optax.stability_profile([1.0], 3.0, 2.0)
    with self.assertRaisesRegex(ValueError, "oversample=0"):
      fractal_optax.stability_profile([1.0], 1.0, 2.0, oversample=0)

  def test_traced_steps_rejected(self):
    with self.assertRaisesRegex(TypeError, "concrete"):
      jax.jit(lambda s: fractal_optax.stability_profile(s, 1.0, 2.0))(
        np.ones(3)
      )


if __name__ == "__main__":
  absltest.main()
