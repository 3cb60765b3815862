"""fractal_sgd inside real optax and flax training loops."""

from absl.testing import absltest
from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

import fractal_optax
import reference

try:
  from flax import nnx
except ImportError:  # The `test` extra alone: flax integration is skipped.
  nnx = None


def _quadratic(kappa, dim=6, seed=0):
  """f(x) = ½ (x − x*)ᵀ A (x − x*) with eigenvalues spread over [1, κ]."""
  rng = np.random.default_rng(seed)
  q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
  eig = np.geomspace(1.0, kappa, dim)
  a = (q * eig) @ q.T
  x_star = rng.normal(size=dim)
  return jnp.asarray(a, jnp.float32), jnp.asarray(x_star, jnp.float32)


class FractalSgdTest(chex.TestCase):
  @chex.variants(with_jit=True, without_jit=True)
  def test_one_cycle_meets_the_bound(self):
    t, kappa = 32, 100.0
    a, x_star = _quadratic(kappa)
    opt = fractal_optax.fractal_sgd(t, 1.0, kappa)
    update = self.variant(opt.update)
    x = jnp.zeros_like(x_star)
    state = opt.init(x)
    for _ in range(t):
      updates, state = update(a @ (x - x_star), state)
      x = optax.apply_updates(x, updates)
    ratio = float(jnp.linalg.norm(x - x_star) / jnp.linalg.norm(x_star))
    bound = reference.error_bound(t, 1.0, kappa)
    self.assertLessEqual(ratio, bound * 1.01)
    # Acceleration: constant step 2/(M+m) is far behind after T steps.
    rho_gd = (kappa - 1) / (kappa + 1)
    self.assertLess(bound, rho_gd**t / 10)

  def test_stateless_without_momentum(self):
    opt = fractal_optax.fractal_sgd(8, 1.0, 10.0)
    state = opt.init({"w": jnp.ones((100, 100))})
    leaves = jax.tree.leaves(state)
    self.assertEqual(sum(np.size(leaf) for leaf in leaves), 1)  # The count.

  def test_chain_with_clipping_matches_manual(self):
    t = 8
    steps = reference.step_sizes(t, 0.5, 4.0)[fractal_optax.fractal_order(t)]
    opt = optax.chain(
      optax.clip_by_global_norm(1.0), fractal_optax.fractal_sgd(t, 0.5, 4.0)
    )
    params = jnp.zeros(3)
    state = opt.init(params)
    grads = jnp.array([3.0, 4.0, 0.0])  # Norm 5: clipped to 1.
    for k in range(t + 2):
      updates, state = opt.update(grads, state, params)
      np.testing.assert_allclose(
        updates, -steps[k % t] * grads / 5.0, rtol=1e-5
      )

  def test_inject_hyperparams_reads_step_zero_first(self):
    schedule = fractal_optax.fractal_chebyshev_schedule(8, 0.1, 1.0)
    opt = optax.inject_hyperparams(optax.sgd)(learning_rate=schedule)
    params = jnp.ones(2)
    state = opt.init(params)
    first = _expected = reference.step_sizes(8, 0.1, 1.0)[
      fractal_optax.fractal_order(8)
    ]
    updates, state = opt.update(jnp.ones(2), state)
    np.testing.assert_allclose(
      state.hyperparams["learning_rate"], first[0], rtol=1e-6
    )
    np.testing.assert_allclose(updates, -first[0] * jnp.ones(2), rtol=1e-6)
    updates, state = opt.update(jnp.ones(2), state)
    np.testing.assert_allclose(
      state.hyperparams["learning_rate"], _expected[1], rtol=1e-6
    )

  def test_inject_hyperparams_of_fractal_sgd(self):
    opt = optax.inject_hyperparams(
      fractal_optax.fractal_sgd, static_args=("num_steps",)
    )(num_steps=4, min_curvature=1.0, max_curvature=3.0)
    state = opt.init(jnp.ones(2))
    step = jax.jit(opt.update)
    updates, state = step(jnp.ones(2), state)
    expected = reference.step_sizes(4, 1.0, 3.0)[fractal_optax.fractal_order(4)]
    np.testing.assert_allclose(updates, -expected[0] * jnp.ones(2), rtol=1e-6)
    # The curvature is a hyperparameter that can be changed in the state.
    state.hyperparams["max_curvature"] = jnp.asarray(5.0)
    updates, state = step(jnp.ones(2), state)
    expected = reference.step_sizes(4, 1.0, 5.0)[fractal_optax.fractal_order(4)]
    np.testing.assert_allclose(updates, -expected[1] * jnp.ones(2), rtol=1e-6)

  def test_second_update_does_not_recompile(self):
    opt = fractal_optax.fractal_sgd(16, 0.1, 1.0)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(params, state):
      updates, state = opt.update(params, state)
      return optax.apply_updates(params, updates), state

    params = jnp.ones(4)
    state = opt.init(params)
    for _ in range(3):
      params, state = step(params, state)
    chex.clear_trace_counter()

  @parameterized.named_parameters(("heavy_ball", False), ("nesterov", True))
  def test_momentum_is_passed_to_sgd(self, nesterov):
    fractal = fractal_optax.fractal_sgd(
      4, 1.0, 2.0, momentum=0.9, nesterov=nesterov
    )
    schedule = fractal_optax.fractal_chebyshev_schedule(4, 1.0, 2.0)
    plain = optax.sgd(schedule, momentum=0.9, nesterov=nesterov)
    params = jnp.ones(3)
    s1, s2 = fractal.init(params), plain.init(params)
    for k in range(6):
      g = jnp.full(3, float(k + 1))
      u1, s1 = fractal.update(g, s1)
      u2, s2 = plain.update(g, s2)
      chex.assert_trees_all_close(u1, u2)

  def test_bad_momentum(self):
    with self.assertRaisesRegex(ValueError, "momentum=1.5"):
      fractal_optax.fractal_sgd(4, 1.0, 2.0, momentum=1.5)
    with self.assertRaisesRegex(TypeError, "momentum="):
      fractal_optax.fractal_sgd(4, 1.0, 2.0, momentum="high")
    with self.assertRaisesRegex(ValueError, "nesterov=True"):
      fractal_optax.fractal_sgd(4, 1.0, 2.0, nesterov=True)
    with self.assertRaisesRegex(TypeError, "nesterov="):
      fractal_optax.fractal_sgd(4, 1.0, 2.0, momentum=0.5, nesterov=1)


@absltest.skipIf(nnx is None, "needs flax (the benchmarks extra)")
class FlaxNnxTest(absltest.TestCase):
  def test_nnx_optimizer_trains_a_regression(self):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(64, 3)), jnp.float32)
    y = x @ jnp.array([1.0, -2.0, 0.5]) + 0.3
    # Curvature of the mean squared error: eigenvalues of 2·[x 1]ᵀ[x 1]/n.
    design = np.concatenate([np.asarray(x), np.ones((64, 1))], axis=1)
    eig = np.linalg.eigvalsh(2 * design.T @ design / 64)
    model = nnx.Linear(3, 1, rngs=nnx.Rngs(0))
    tx = fractal_optax.fractal_sgd(16, 0.9 * eig[0], 1.1 * eig[-1])
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

    @nnx.jit
    def train_step(model, optimizer, x, y):
      def loss_fn(model):
        return jnp.mean((model(x)[..., 0] - y) ** 2)

      loss, grads = nnx.value_and_grad(loss_fn)(model)
      optimizer.update(model, grads)
      return loss

    losses = [float(train_step(model, optimizer, x, y)) for _ in range(32)]
    self.assertLess(losses[-1], 1e-6 * losses[0])
    self.assertEqual(int(optimizer.step[...]), 32)
    self.assertEqual(optimizer.step[...].dtype, jnp.uint32)


if __name__ == "__main__":
  absltest.main()
