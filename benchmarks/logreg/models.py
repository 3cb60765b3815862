"""The model: multinomial logistic regression as a Flax NNX module."""

from __future__ import annotations

import jax
from flax import nnx


class LogisticRegression(nnx.Module):
  """Linear logits ``x W + b`` over flattened inputs, zero-initialised.

  Zero initialisation makes every run start from the same point
  (f_0 = log(num_classes)), so methods are compared from equal footing.

  Example::

    model = LogisticRegression(784, 10)
    logits = model(jnp.ones((2, 784)))   # shape (2, 10)
  """

  def __init__(self, num_features: int, num_classes: int):
    self.linear = nnx.Linear(
        num_features, num_classes, kernel_init=nnx.initializers.zeros,
        bias_init=nnx.initializers.zeros, rngs=nnx.Rngs(0))

  def __call__(self, x: jax.Array) -> jax.Array:
    return self.linear(x.reshape(x.shape[0], -1))
