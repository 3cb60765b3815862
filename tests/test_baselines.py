"""Tests of benchmarks/baselines.py: closed forms, one compile for every κ
(the silver steps themselves are tested in tests/test_silver.py)."""

from absl.testing import absltest
from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import baselines
import fractal_optax


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
    self.assertAlmostEqual(
      _first_update(baselines.constant(m, big_m)), -2 / 4.01
    )
    self.assertAlmostEqual(
      _first_update(baselines.constant(m, big_m, 1.5)), -1.5 / 4
    )
    self.assertAlmostEqual(_first_update(baselines.gd(m, big_m)), -0.25)

  @parameterized.parameters("gd", "gd_1/M", "heavy_ball", "nesterov", "silver")
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


class OtherTest(parameterized.TestCase):
  @parameterized.parameters(1, 6, 64, 100, 127)
  def test_filtered_order(self, num_steps):
    order = baselines.filtered_power_of_two_order(num_steps)
    self.assertEqual(sorted(order.tolist()), list(range(num_steps)))
    if num_steps & (num_steps - 1) == 0:
      np.testing.assert_array_equal(
        order, fractal_optax.fractal_order(num_steps)
      )

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
