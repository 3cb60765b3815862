"""Tests for the fractal step-size generator and the Optax schedule."""

from absl.testing import absltest
from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

import fractal_optax
import reference


def _expected(t, m, big_m):
  """Reference steps in the fractal order (float64)."""
  return reference.step_sizes(t, m, big_m)[fractal_optax.fractal_order(t)]


class FractalStepSizesTest(chex.TestCase):
  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.parameters(
    (1, 0.5, 2.0), (8, 0.1, 1.0), (100, 1e-3, 10.0), (1024, 1.0, 1e6)
  )
  def test_matches_reference(self, t, m, big_m):
    steps = self.variant(
      lambda a, b: fractal_optax.fractal_chebyshev_step_sizes(t, a, b)
    )(m, big_m)
    chex.assert_shape(steps, (t,))
    np.testing.assert_allclose(steps, _expected(t, m, big_m), rtol=1e-5)

  def test_paper_example(self):
    # PAPER.md: m = 0.1, M = 1, T = 8.
    np.testing.assert_allclose(
      fractal_optax.fractal_chebyshev_step_sizes(8, 0.1, 1.0),
      [
        9.204152,
        1.008722,
        2.163522,
        1.567913,
        5.687031,
        1.082062,
        3.333407,
        1.249990,
      ],
      rtol=1e-6,
    )

  def test_float64(self):
    with jax.enable_x64(True):
      steps = fractal_optax.fractal_chebyshev_step_sizes(300, 1e-4, 3.0)
      chex.assert_type(steps, jnp.float64)
      np.testing.assert_allclose(steps, _expected(300, 1e-4, 3.0), rtol=1e-12)

  def test_traced_curvatures_from_device(self):
    # The curvature can come from a computation on device, inside jit.
    @jax.jit
    def steps_from_matrix(a):
      eig = jnp.linalg.eigvalsh(a)
      return fractal_optax.fractal_chebyshev_step_sizes(16, eig[0], eig[-1])

    a = jnp.diag(jnp.array([0.5, 2.0, 40.0]))
    np.testing.assert_allclose(
      steps_from_matrix(a), _expected(16, 0.5, 40.0), rtol=1e-5
    )

  def test_same_product_as_sorted(self):
    t, m, big_m = 32, 1.0, 50.0
    lam = np.linspace(m, big_m, 101)
    fractal = np.asarray(
      fractal_optax.fractal_chebyshev_step_sizes(t, m, big_m), np.float64
    )
    ordered = np.asarray(
      fractal_optax.chebyshev_step_sizes(t, m, big_m), np.float64
    )
    np.testing.assert_allclose(
      np.prod(1 - fractal[:, None] * lam, 0),
      np.prod(1 - ordered[:, None] * lam, 0),
      rtol=1e-4,
      atol=1e-12,
    )


class FractalScheduleTest(chex.TestCase):
  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.named_parameters(("cycle", True), ("no_cycle", False))
  def test_values(self, cycle):
    t = 8
    schedule = fractal_optax.fractal_chebyshev_schedule(
      t, 0.1, 1.0, cycle=cycle
    )
    fn = self.variant(schedule)
    expected = _expected(t, 0.1, 1.0)
    for count in range(-2, 3 * t):
      index = max(count, 0)
      index = index % t if cycle else min(index, t - 1)
      np.testing.assert_allclose(
        fn(jnp.asarray(count, jnp.int32)), expected[index], rtol=1e-6
      )

  def test_arange_equals_loop_and_vmap(self):
    schedule = fractal_optax.fractal_chebyshev_schedule(12, 0.2, 5.0)
    counts = jnp.arange(40)
    batched = schedule(counts)
    looped = jnp.stack([schedule(c) for c in counts])
    vmapped = jax.vmap(schedule)(counts)
    chex.assert_trees_all_close(batched, looped, rtol=0)
    chex.assert_trees_all_close(batched, vmapped, rtol=0)
    chex.assert_shape(batched, (40,))

  @parameterized.parameters(jnp.int32, jnp.uint32)
  def test_count_dtypes_near_int32_max(self, dtype):
    t = 1000  # Not a power of two: 2**31 − 1 mod T is not a bit mask.
    schedule = jax.jit(fractal_optax.fractal_chebyshev_schedule(t, 1.0, 10.0))
    expected = _expected(t, 1.0, 10.0)
    for count in (0, 2**31 - 2, 2**31 - 1):
      got = schedule(jnp.asarray(count, dtype))
      self.assertTrue(np.isfinite(got))
      np.testing.assert_allclose(got, expected[count % t], rtol=1e-6)

  def test_int64_counts(self):
    with jax.enable_x64(True):
      schedule = fractal_optax.fractal_chebyshev_schedule(7, 1.0, 10.0)
      count = jnp.asarray(2**40 + 3, jnp.int64)
      np.testing.assert_allclose(
        schedule(count), _expected(7, 1.0, 10.0)[(2**40 + 3) % 7], rtol=1e-12
      )

  def test_uint32_counts_without_cycle(self):
    schedule = fractal_optax.fractal_chebyshev_schedule(
      5, 1.0, 4.0, cycle=False
    )
    got = schedule(jnp.asarray([0, 4, 2**32 - 1], jnp.uint32))
    expected = _expected(5, 1.0, 4.0)
    np.testing.assert_allclose(got, expected[[0, 4, 4]], rtol=1e-6)

  def test_scale_constant_and_schedule(self):
    base = _expected(4, 1.0, 8.0)
    constant = fractal_optax.fractal_chebyshev_schedule(4, 1.0, 8.0, scale=0.5)
    np.testing.assert_allclose(constant(jnp.arange(4)), 0.5 * base, rtol=1e-6)
    decay = optax.exponential_decay(1.0, transition_steps=1, decay_rate=0.5)
    scheduled = fractal_optax.fractal_chebyshev_schedule(
      4, 1.0, 8.0, scale=decay
    )
    np.testing.assert_allclose(
      scheduled(jnp.arange(6)),
      base[[0, 1, 2, 3, 0, 1]] * 0.5 ** np.arange(6),
      rtol=1e-6,
    )
    # Negative counts behave as 0 for the scale too.
    np.testing.assert_allclose(scheduled(-3), base[0], rtol=1e-6)

  def test_multipliers_with_unit_max_curvature(self):
    # With M = 1 the values multiply a base rate by 1 … κ.
    values = np.asarray(
      fractal_optax.fractal_chebyshev_schedule(8, 0.01, 1.0)(jnp.arange(8))
    )
    self.assertTrue(np.all(values > 1.0) and np.all(values < 100.0))

  def test_traced_curvature_schedule_inside_jit(self):
    @jax.jit
    def value(m, count):
      return fractal_optax.fractal_chebyshev_schedule(8, m, 1.0)(count)

    np.testing.assert_allclose(
      value(0.1, 4), _expected(8, 0.1, 1.0)[4], rtol=1e-6
    )

  def test_no_tracer_leak_when_built_in_jit(self):
    @jax.jit
    def make_and_apply(x):
      opt = fractal_optax.fractal_sgd(8, 0.1, 1.0)
      state = opt.init(x)
      updates, _ = opt.update(x, state)
      return updates

    with jax.checking_leaks():
      make_and_apply(jnp.ones(3))


class BadInputTest(parameterized.TestCase):
  _FUNCTIONS = (
    ("steps", fractal_optax.chebyshev_step_sizes),
    ("fractal_steps", fractal_optax.fractal_chebyshev_step_sizes),
    ("schedule", fractal_optax.fractal_chebyshev_schedule),
    ("sgd", fractal_optax.fractal_sgd),
    ("bound", fractal_optax.chebyshev_error_bound),
  )

  @parameterized.named_parameters(*_FUNCTIONS)
  def test_num_steps(self, fn):
    for bad, error in (
      (0, ValueError),
      (-4, ValueError),
      (2.5, TypeError),
      (True, TypeError),
      (None, TypeError),
    ):
      with self.assertRaisesRegex(error, "num_steps="):
        fn(bad, 1.0, 2.0)

  @parameterized.named_parameters(*_FUNCTIONS)
  def test_curvatures(self, fn):
    for m, big_m, name in (
      (0.0, 1.0, "min_curvature"),
      (-1.0, 1.0, "min_curvature"),
      (float("nan"), 1.0, "min_curvature"),
      (1.0, float("inf"), "max_curvature"),
      (1.0, 0.0, "max_curvature"),
      (2.0, 1.0, "min_curvature=2.0 > max_curvature"),
    ):
      with self.assertRaisesRegex(ValueError, name):
        fn(4, m, big_m)
    with self.assertRaisesRegex(TypeError, "min_curvature"):
      fn(4, "1", 2.0)
    with self.assertRaisesRegex(TypeError, "max_curvature"):
      fn(4, 1.0, None)

  @parameterized.named_parameters(*_FUNCTIONS)
  def test_equal_curvatures_are_valid(self, fn):
    fn(4, 1.5, 1.5)

  def test_scale_and_cycle(self):
    make = fractal_optax.fractal_chebyshev_schedule
    with self.assertRaisesRegex(TypeError, "scale="):
      make(4, 1.0, 2.0, scale="fast")
    with self.assertRaisesRegex(TypeError, "scale="):
      make(4, 1.0, 2.0, scale=True)
    with self.assertRaisesRegex(ValueError, "scale="):
      make(4, 1.0, 2.0, scale=float("nan"))
    with self.assertRaisesRegex(ValueError, "scale="):
      make(4, 1.0, 2.0, scale=-1.0)
    with self.assertRaisesRegex(TypeError, "cycle="):
      make(4, 1.0, 2.0, cycle="yes")


if __name__ == "__main__":
  absltest.main()
