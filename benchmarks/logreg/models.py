r"""The model and its objective: L2-regularised multinomial logistic regression.

.. math::

  f(\theta) = \frac{1}{n} \sum_i \mathrm{CE}(W^\top x_i + b, y_i)
    + \frac{\lambda}{2} \lVert \theta \rVert^2, \qquad \theta = (W, b).

Example::

  problem = build_problem(dataset, l2=1e-2)
  problem.evaluate(problem.params)["loss"]   # log(num_classes)
"""

from __future__ import annotations

from collections.abc import Callable
import dataclasses
import functools
from typing import Any, NamedTuple

from flax import nnx
import jax
import jax.numpy as jnp
import optax

from benchmarks import input_pipeline

Data = tuple[jax.Array, jax.Array, jax.Array, jax.Array]


class LogisticRegression(nnx.Module):
  """Logits ``x W + b`` of flattened inputs, zero-initialised (so every
  method starts from f_0 = log(num_classes))."""

  def __init__(self, num_features: int, num_classes: int):
    self.linear = nnx.Linear(
      num_features,
      num_classes,
      kernel_init=nnx.initializers.zeros,
      bias_init=nnx.initializers.zeros,
      rngs=nnx.Rngs(0),
    )

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.linear(x.reshape(x.shape[0], -1))


class LossFunctions(NamedTuple):
  """Pure functions of one model structure; ``l2`` is an argument, so the
  programs compiled from them serve every lambda."""

  data_loss: Callable[[Any, Data], jax.Array]
  objective: Callable[[Any, Data, Any], jax.Array]
  metrics: Callable[[Any, Data, Any], dict[str, jax.Array]]


@functools.cache
def loss_functions(graphdef: Any) -> LossFunctions:
  """The data loss, the regularised objective and the evaluation metrics."""

  def data_loss(params, data):
    logits = nnx.merge(graphdef, params)(data[0])
    ce = optax.softmax_cross_entropy_with_integer_labels(logits, data[1])
    return jnp.mean(ce)

  def objective(params, data, l2):
    sq = sum(jnp.sum(jnp.square(p)) for p in jax.tree.leaves(params))
    return data_loss(params, data) + 0.5 * l2 * sq

  def metrics(params, data, l2):
    model = nnx.merge(graphdef, params)
    acc = lambda x, y: jnp.mean(jnp.argmax(model(x), -1) == y)
    return {
      "loss": objective(params, data, l2),
      "train_accuracy": acc(data[0], data[1]),
      "test_accuracy": acc(data[2], data[3]),
    }

  return LossFunctions(data_loss, objective, metrics)


@functools.cache
def _jitted_metrics(graphdef: Any) -> Callable[..., dict[str, jax.Array]]:
  return jax.jit(loss_functions(graphdef).metrics)


@dataclasses.dataclass(frozen=True, eq=False)
class Problem:
  """One regularised problem: the model's ``graphdef`` and initial (zero)
  ``params``, ``data = (x_train, y_train, x_test, y_test)`` (pixels in
  [0, 1]), ``l2`` (lambda) and the ``dataset`` name."""

  graphdef: Any
  params: Any
  data: Data
  l2: float
  dataset: str

  @property
  def fns(self) -> LossFunctions:
    return loss_functions(self.graphdef)

  def objective(self, params: Any, data: Data) -> jax.Array:
    """``data_loss + l2 / 2 * |params|^2`` (all parameters regularised)."""
    return self.fns.objective(params, data, self.l2)

  def evaluate(self, params: Any) -> dict[str, jax.Array]:
    """Objective and train/test accuracy at ``params`` (jitted, cached)."""
    return _jitted_metrics(self.graphdef)(params, self.data, self.l2)


def build_problem(dataset: input_pipeline.Dataset, l2: float) -> Problem:
  """Flattens and scales the images, builds the zero-initialised model."""
  if not l2 > 0:
    raise ValueError(
      f"l2 must be positive (it is the curvature lower bound m), got {l2=}."
    )
  flat = lambda im: jnp.asarray(im.reshape(im.shape[0], -1), jnp.float32) / 255
  data = (
    flat(dataset.train_images),
    jnp.asarray(dataset.train_labels),
    flat(dataset.test_images),
    jnp.asarray(dataset.test_labels),
  )
  model = LogisticRegression(data[0].shape[1], dataset.num_classes)
  graphdef, params = nnx.split(model, nnx.Param)
  return Problem(graphdef, params, data, float(l2), dataset.name)
