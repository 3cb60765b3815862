r"""ResNet-18, CIFAR variant, in Flax NNX.

He et al.'s ResNet-18 as used for CIFAR-10 in most reproductions (and the
paper's Figure 6): a 3x3 stem with stride 1 and no max-pool, four stages of
two basic blocks,

.. math::

  \text{widths} = (64, 128, 256, 512) \cdot w, \qquad
  \text{strides} = (1, 2, 2, 2),

BatchNorm after every convolution, a 1x1 projection shortcut where the shape
changes, global average pooling and one dense layer: 11,173,962 trainable
parameters for ``w = 1``, RGB input and 10 classes. ``w`` (the width
multiplier) makes small networks for CPU runs. Fully convolutional up to the
pooling, so any image size works (Fashion-MNIST 28x28x1, CIFAR-10 32x32x3).
Parameters are float32; ``dtype=jnp.bfloat16`` computes in bfloat16 (mixed
precision) and returns float32 logits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

STAGE_WIDTHS = (64, 128, 256, 512)
STAGE_STRIDES = (1, 2, 2, 2)

_conv_init = nnx.initializers.variance_scaling(2.0, "fan_out", "normal")


class BasicBlock(nnx.Module):
  """Two 3x3 convolutions with BatchNorm and an identity/projection shortcut."""

  def __init__(self, in_features: int, out_features: int, stride: int, *,
               dtype: Any, bn_momentum: float, rngs: nnx.Rngs):
    conv = dict(use_bias=False, dtype=dtype, param_dtype=jnp.float32,
                kernel_init=_conv_init, rngs=rngs)
    bn = dict(momentum=bn_momentum, dtype=dtype, param_dtype=jnp.float32,
              rngs=rngs)
    self.conv1 = nnx.Conv(in_features, out_features, (3, 3), strides=stride,
                          padding=1, **conv)
    self.bn1 = nnx.BatchNorm(out_features, **bn)
    self.conv2 = nnx.Conv(out_features, out_features, (3, 3), padding=1,
                          **conv)
    self.bn2 = nnx.BatchNorm(out_features, **bn)
    if stride != 1 or in_features != out_features:
      self.proj_conv = nnx.Conv(in_features, out_features, (1, 1),
                                strides=stride, padding=0, **conv)
      self.proj_bn = nnx.BatchNorm(out_features, **bn)
    else:
      self.proj_conv = self.proj_bn = None

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    ura = not train
    y = nnx.relu(self.bn1(self.conv1(x), use_running_average=ura))
    y = self.bn2(self.conv2(y), use_running_average=ura)
    if self.proj_conv is not None:
      x = self.proj_bn(self.proj_conv(x), use_running_average=ura)
    return nnx.relu(x + y)


class ResNet(nnx.Module):
  """CIFAR-style ResNet with basic blocks (ResNet-18 for ``(2, 2, 2, 2)``).

  Args:
    num_classes: number of output logits.
    in_channels: 1 (grayscale) or 3 (RGB).
    width_multiplier: scales every stage's width (1.0 = ResNet-18).
    blocks_per_stage: basic blocks in each of the four stages.
    dtype: computation dtype; parameters are always float32.
    bn_momentum: BatchNorm running-average momentum (flax convention).
    rngs: initialisation keys.

  Example:
    >>> model = ResNet(num_classes=10, in_channels=1, width_multiplier=1 / 16,
    ...                rngs=nnx.Rngs(0))
    >>> model(jnp.zeros((2, 28, 28, 1)), train=False).shape
    (2, 10)
  """

  def __init__(self, *, num_classes: int = 10, in_channels: int = 3,
               width_multiplier: float = 1.0,
               blocks_per_stage: Sequence[int] = (2, 2, 2, 2),
               dtype: Any = jnp.float32, bn_momentum: float = 0.9,
               rngs: nnx.Rngs):
    if num_classes < 1:
      raise ValueError(f"num_classes must be >= 1, got {num_classes=}")
    if in_channels not in (1, 3):
      raise ValueError(f"in_channels must be 1 or 3, got {in_channels=}")
    if not width_multiplier > 0:
      raise ValueError(
          f"width_multiplier must be positive, got {width_multiplier=}")
    if len(blocks_per_stage) != len(STAGE_WIDTHS):
      raise ValueError(f"blocks_per_stage needs {len(STAGE_WIDTHS)} entries, "
                       f"got {blocks_per_stage=}")
    self.dtype = dtype
    widths = [max(1, round(w * width_multiplier)) for w in STAGE_WIDTHS]
    self.stem_conv = nnx.Conv(in_channels, widths[0], (3, 3), padding=1,
                              use_bias=False, dtype=dtype,
                              param_dtype=jnp.float32,
                              kernel_init=_conv_init, rngs=rngs)
    self.stem_bn = nnx.BatchNorm(widths[0], momentum=bn_momentum, dtype=dtype,
                                 param_dtype=jnp.float32, rngs=rngs)
    blocks, features = [], widths[0]
    for width, stride, count in zip(widths, STAGE_STRIDES, blocks_per_stage):
      for i in range(count):
        blocks.append(BasicBlock(features, width, stride if i == 0 else 1,
                                 dtype=dtype, bn_momentum=bn_momentum,
                                 rngs=rngs))
        features = width
    self.blocks = nnx.List(blocks)
    self.head = nnx.Linear(features, num_classes, dtype=dtype,
                           param_dtype=jnp.float32, rngs=rngs)

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    """Logits (float32) for images ``x`` of shape (batch, height, width, C)."""
    x = x.astype(self.dtype)
    x = nnx.relu(self.stem_bn(self.stem_conv(x), use_running_average=not train))
    for block in self.blocks:
      x = block(x, train=train)
    return self.head(jnp.mean(x, axis=(1, 2))).astype(jnp.float32)


def count_params(tree: Any) -> int:
  """Elements in the ``nnx.Param`` leaves of a module (abstract works too)."""
  state = nnx.state(tree, nnx.Param) if isinstance(tree, nnx.Module) else tree
  return sum(int(x.size) for x in jax.tree.leaves(state))
