"""Tests of fractal_optax._chebyshev against an independent mpmath reference."""

from absl.testing import absltest
from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np

import fractal_optax
import reference

# (T, m, M): powers of two and not, κ from 1 to 1e8.
_CASES = (
  (1, 1.0, 1.0),
  (1, 0.3, 7.0),
  (3, 0.1, 1.0),
  (8, 0.1, 1.0),
  (100, 1e-3, 2.5),
  (127, 2.0, 2e5),
  (1000, 1e-4, 1e4),
  (4096, 1e-8, 1.0),
  (2**16, 3e-6, 300.0),
  (2**16 - 1, 1.0, 1e8),
)


class ChebyshevStepSizesTest(chex.TestCase):
  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.parameters(*_CASES)
  def test_float32_matches_reference(self, t, m, big_m):
    fn = self.variant(
      lambda lo, hi: fractal_optax.chebyshev_step_sizes(t, lo, hi)
    )
    steps = fn(m, big_m)
    chex.assert_shape(steps, (t,))
    chex.assert_type(steps, jnp.float32)
    np.testing.assert_allclose(
      steps, reference.step_sizes(t, m, big_m), rtol=1e-5
    )

  @parameterized.parameters(*_CASES)
  def test_float64_matches_reference(self, t, m, big_m):
    with jax.enable_x64(True):
      steps = fractal_optax.chebyshev_step_sizes(t, m, big_m)
      chex.assert_type(steps, jnp.float64)
      np.testing.assert_allclose(
        steps, reference.step_sizes(t, m, big_m), rtol=1e-12
      )

  def test_random_cases_float64(self):
    rng = np.random.default_rng(0)
    with jax.enable_x64(True):
      for _ in range(8):
        t = int(rng.integers(1, 3000))
        m = float(10 ** rng.uniform(-6, 2))
        big_m = m * float(10 ** rng.uniform(0, 8))
        np.testing.assert_allclose(
          fractal_optax.chebyshev_step_sizes(t, m, big_m),
          reference.step_sizes(t, m, big_m),
          rtol=1e-12,
          err_msg=f"{t=}, {m=}, {big_m=}",
        )

  def test_properties(self):
    steps = np.asarray(fractal_optax.chebyshev_step_sizes(64, 0.5, 50.0))
    self.assertTrue(np.all(np.diff(steps) < 0), "largest first, strictly")
    self.assertLess(steps[0], 1 / 0.5)  # Largest step just below 1/m.
    self.assertGreater(steps[-1], 1 / 50.0)  # Smallest just above 1/M.
    # Mirror pairs: λ_i + λ_{T-1-i} = M + m.
    np.testing.assert_allclose(1 / steps + 1 / steps[::-1], 50.5, rtol=1e-6)
    # About half of the steps exceed the classical stability limit 2/M.
    self.assertEqual(int(np.sum(steps > 2 / 50.0)), 32)

  def test_degenerate_interval(self):
    np.testing.assert_allclose(
      fractal_optax.chebyshev_step_sizes(5, 2.0, 2.0), np.full(5, 0.5)
    )

  def test_vmap_over_curvatures(self):
    ms = jnp.array([0.1, 1.0, 3.0])
    out = jax.vmap(lambda m: fractal_optax.chebyshev_step_sizes(16, m, 10.0))(
      ms
    )
    chex.assert_shape(out, (3, 16))
    for row, m in zip(out, ms, strict=True):
      np.testing.assert_allclose(
        row, reference.step_sizes(16, float(m), 10.0), rtol=1e-5
      )


class ChebyshevErrorBoundTest(parameterized.TestCase):
  @parameterized.parameters(
    # PAPER.md's check values.
    (8, 1.0, 10.0, 1.0609e-2),
    (16, 1.0, 100.0, 8.0523e-2),
    (64, 1.0, 100.0, 5.2896e-6),
    (64, 1.0, 1000.0, 3.4867e-2),
    (256, 1.0, 1e4, 1.195e-2),
  )
  def test_paper_values(self, t, m, big_m, expected):
    self.assertAlmostEqual(
      fractal_optax.chebyshev_error_bound(t, m, big_m) / expected,
      1.0,
      delta=1e-3,
    )

  @parameterized.parameters(*_CASES, (10**6, 1.0, 1e6), (5, 1.0, 1.0 + 1e-9))
  def test_matches_reference(self, t, m, big_m):
    got = fractal_optax.chebyshev_error_bound(t, m, big_m)
    self.assertIsInstance(got, float)
    np.testing.assert_allclose(
      got, reference.error_bound(t, m, big_m), rtol=1e-10, atol=0.0
    )

  def test_below_two_rho_power(self):
    for t in (1, 7, 64, 500):
      for kappa in (2.0, 1e2, 1e5):
        rho = (np.sqrt(kappa) - 1) / (np.sqrt(kappa) + 1)
        bound = fractal_optax.chebyshev_error_bound(t, 1.0, kappa)
        self.assertLessEqual(bound, 2 * rho**t * (1 + 1e-12))
        if rho**t > 1e-300:  # Not an underflow in float64.
          self.assertGreater(bound, 0.0)

  def test_is_the_sup_of_the_residual_polynomial(self):
    # The bound equals max |∏(1 − η_i λ)| over [m, M], attained at λ = m.
    t, m, big_m = 24, 0.2, 30.0
    steps = reference.step_sizes(t, m, big_m)
    lam = np.linspace(m, big_m, 20001)
    poly = np.prod(1 - steps[:, None] * lam[None, :], axis=0)
    np.testing.assert_allclose(
      np.abs(poly).max(),
      fractal_optax.chebyshev_error_bound(t, m, big_m),
      rtol=1e-9,
    )

  def test_eigenvalue_above_max_curvature_is_catastrophic(self):
    # PAPER.md (quoted in the README): at κ = 1e3, T = 64, an eigenvalue at
    # 1.05·M is amplified by 3.8e10, while one below m only converges slower.
    steps = reference.step_sizes(64, 1.0, 1e3)
    above = abs(np.prod(1 - steps * 1.05e3))
    below = abs(np.prod(1 - steps * 0.5))
    self.assertAlmostEqual(above / 3.8e10, 1.0, delta=0.02)
    self.assertLess(below, 1.0)

  def test_traced_curvature_is_rejected(self):
    with self.assertRaisesRegex(TypeError, "concrete"):
      jax.jit(lambda m: fractal_optax.chebyshev_error_bound(4, m, 2.0))(1.0)


class ChebyshevNumStepsTest(parameterized.TestCase):
  @parameterized.parameters(
    (1.0, 10.0, 1e-2),
    (1.0, 1e4, 1e-6),
    (1e-3, 2.0, 1e-8),
    (1.0, 1e8, 0.5),
    (1.0, 1.0 + 1e-6, 1e-12),
  )
  def test_smallest_sufficient(self, m, big_m, eps):
    t = fractal_optax.chebyshev_num_steps(m, big_m, eps)
    self.assertLessEqual(reference.error_bound(t, m, big_m), eps * (1 + 1e-9))
    if t > 1:
      self.assertGreater(reference.error_bound(t - 1, m, big_m), eps)

  def test_sqrt_kappa_scaling(self):
    # About ½√κ ln(2/ε) steps (PAPER.md).
    for kappa in (1e2, 1e4, 1e6):
      t = fractal_optax.chebyshev_num_steps(1.0, kappa, 1e-6)
      self.assertAlmostEqual(
        t / (0.5 * np.sqrt(kappa) * np.log(2e6)), 1.0, delta=0.05
      )

  def test_degenerate_and_bad_input(self):
    self.assertEqual(fractal_optax.chebyshev_num_steps(2.0, 2.0, 1e-3), 1)
    for bad in (0.0, 1.0, 2.0, float("nan")):
      with self.assertRaisesRegex(ValueError, "tolerance="):
        fractal_optax.chebyshev_num_steps(1.0, 2.0, bad)
    with self.assertRaisesRegex(TypeError, "tolerance="):
      fractal_optax.chebyshev_num_steps(1.0, 2.0, "small")
    with self.assertRaisesRegex(ValueError, "min_curvature"):
      fractal_optax.chebyshev_num_steps(3.0, 2.0, 1e-3)


if __name__ == "__main__":
  absltest.main()
