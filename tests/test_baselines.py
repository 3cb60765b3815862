"""Tests of benchmarks/baselines.py: closed forms, the silver schedule against
its float64 recursion and PEPit's published rate, one compile for every κ."""

import math

from absl.testing import absltest
from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

import fractal_optax
from benchmarks import baselines


def _first_update(tx, grad=1.0):
  updates, _ = tx.update(jnp.full(2, grad), tx.init(jnp.zeros(2)))
  return float(updates[0])


class ConstantsTest(parameterized.TestCase):

  def test_closed_forms(self):
    m, big_m = 0.01, 4.0
    lr, beta = baselines.heavy_ball_constants(m, big_m)
    self.assertAlmostEqual(lr, 4 / (0.1 + 2) ** 2)
    self.assertAlmostEqual(beta, ((2 - 0.1) / (2 + 0.1)) ** 2)
    lr, beta = baselines.nesterov_constants(m, big_m)
    self.assertAlmostEqual(lr, 0.25)
    self.assertAlmostEqual(beta, (20 - 1) / (20 + 1))
    self.assertAlmostEqual(_first_update(baselines.constant(m, big_m)),
                           -2 / 4.01)
    self.assertAlmostEqual(_first_update(baselines.constant(m, big_m, 1.5)),
                           -1.5 / 4)
    self.assertAlmostEqual(_first_update(baselines.gd(m, big_m)), -0.25)

  @parameterized.parameters("gd", "gd_1/M", "heavy_ball", "nesterov",
                            "silver")
  def test_traced_curvatures_compile_once(self, name):
    builder = baselines.BASELINES[name]
    traces = []

    @jax.jit
    def three_steps(m, big_m):
      traces.append(1)
      tx = builder(m, big_m)
      x, state = jnp.ones(2), tx.init(jnp.ones(2))
      for _ in range(3):
        updates, state = tx.update(x, state)  # Gradient of |x|²/2.
        x = optax.apply_updates(x, updates)
      return x

    for kappa in (10.0, 1e3, 1e5):
      traced = three_steps(jnp.float32(1 / kappa), jnp.float32(1.0))
      tx = builder(1 / kappa, 1.0)  # The same optimiser from Python floats.
      x, state = jnp.ones(2), tx.init(jnp.ones(2))
      for _ in range(3):
        updates, state = tx.update(x, state)
        x = optax.apply_updates(x, updates)
      chex.assert_trees_all_close(traced, x, rtol=1e-5)
    self.assertLen(traces, 1)


class SilverTest(parameterized.TestCase):

  def test_matches_published_rate(self):
    # PEPit's example (κ = 10, n = 8): worst case ‖x_8 − x*‖² ≤ 0.0169783,
    # attained on quadratics.
    steps = baselines.silver_step_sizes(0.1, 1.0, 3)
    lam = np.linspace(0.1, 1.0, 100001)
    sup = np.max(np.abs(np.prod(1.0 - np.outer(steps, lam), axis=0)))
    self.assertAlmostEqual(sup**2, 0.0169783, delta=2e-7)

  def test_is_a_ruler_sequence(self):
    steps = baselines.silver_step_sizes(0.01, 1.0, 4)
    self.assertLen(steps, 16)
    for i in range(1, 16):  # Step i < 16 depends only on ν(i).
      self.assertEqual(steps[i - 1], steps[(i & -i) - 1])
    self.assertAlmostEqual(baselines.silver_step_sizes(0.01, 1.0, 0)[0],
                           2.0 / 1.01)

  @parameterized.parameters(2.0, 10.0, 1e3, 1e5, 1e7)
  def test_traced_schedule_matches_recursion(self, kappa):
    k = baselines.silver_num_doublings(1 / kappa, 1.0)
    self.assertEqual(k, 0 if kappa <= 3 else math.floor(
        math.log(kappa / 3) / math.log(1 + math.sqrt(2))))
    table = np.tile(baselines.silver_step_sizes(1 / kappa, 1.0, k), 3)
    with jax.enable_x64(True):
      traced = jax.jit(lambda m, c: baselines.silver_schedule(m, 1.0)(c))(
          jnp.float64(1 / kappa), jnp.arange(table.size))
      concrete = baselines.silver_schedule(1 / kappa, 1.0)(
          jnp.arange(table.size))
    np.testing.assert_allclose(traced, table, rtol=1e-14)
    np.testing.assert_array_equal(concrete, table)

  def test_bad_input(self):
    with self.assertRaisesRegex(ValueError, "num_doublings=-1"):
      baselines.silver_step_sizes(0.1, 1.0, -1)
    with self.assertRaisesRegex(ValueError, "m=1.0, M=0.5"):
      baselines.silver_step_sizes(1.0, 0.5, 2)


class OtherTest(parameterized.TestCase):

  @parameterized.parameters(1, 6, 64, 100, 127)
  def test_filtered_order(self, num_steps):
    order = baselines.filtered_power_of_two_order(num_steps)
    self.assertEqual(sorted(order.tolist()), list(range(num_steps)))
    if num_steps & (num_steps - 1) == 0:
      np.testing.assert_array_equal(order,
                                    fractal_optax.fractal_order(num_steps))

  def test_steps_then_zeros(self):
    tx = baselines.steps(jnp.array([0.5, 0.25]))
    state, rates = tx.init(jnp.zeros(1)), []
    for _ in range(4):
      updates, state = tx.update(jnp.ones(1), state)
      rates.append(-float(updates[0]))
    self.assertEqual(rates, [0.5, 0.25, 0.0, 0.0])

  def test_fractal_is_the_library(self):
    a = baselines.fractal(8, 0.1, 1.0)
    b = fractal_optax.fractal_sgd(8, 0.1, 1.0)
    self.assertEqual(_first_update(a), _first_update(b))


if __name__ == "__main__":
  absltest.main()
