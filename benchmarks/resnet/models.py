r"""ResNet-18, CIFAR variant (3x3 stem, stride 1, no max-pool), in Flax NNX.

Four stages of two basic blocks, widths :math:`(64, 128, 256, 512)\cdot w`,
strides (1, 2, 2, 2), BatchNorm after every convolution, 1x1 projection
shortcuts where the shape changes, global average pooling, one dense layer:
11,173,962 parameters for ``w = 1``, RGB and 10 classes. Any image size
works. Parameters are float32; ``dtype`` is the compute dtype.
"""

from __future__ import annotations

from typing import Any

from flax import nnx
import jax
import jax.numpy as jnp

STAGE_WIDTHS = (64, 128, 256, 512)
STAGE_STRIDES = (1, 2, 2, 2)


class ConvBN(nnx.Module):
  """A bias-free ``k x k`` convolution ("same" padding), then BatchNorm."""

  def __init__(
    self,
    in_features: int,
    out_features: int,
    k: int,
    stride: int = 1,
    *,
    dtype: Any,
    rngs: nnx.Rngs,
  ):
    self.conv = nnx.Conv(
      in_features,
      out_features,
      (k, k),
      strides=stride,
      padding=k // 2,
      use_bias=False,
      dtype=dtype,
      param_dtype=jnp.float32,
      rngs=rngs,
      kernel_init=nnx.initializers.variance_scaling(2.0, "fan_out", "normal"),
    )
    self.bn = nnx.BatchNorm(
      out_features,
      momentum=0.9,
      dtype=dtype,
      param_dtype=jnp.float32,
      rngs=rngs,
    )

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    return self.bn(self.conv(x), use_running_average=not train)


class BasicBlock(nnx.Module):
  """Two 3x3 ``ConvBN`` and an identity or projection shortcut."""

  def __init__(
    self,
    in_features: int,
    out_features: int,
    stride: int,
    *,
    dtype: Any,
    rngs: nnx.Rngs,
  ):
    self.conv1 = ConvBN(
      in_features, out_features, 3, stride, dtype=dtype, rngs=rngs
    )
    self.conv2 = ConvBN(out_features, out_features, 3, dtype=dtype, rngs=rngs)
    self.proj = (
      ConvBN(in_features, out_features, 1, stride, dtype=dtype, rngs=rngs)
      if stride != 1 or in_features != out_features
      else None
    )

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    y = self.conv2(nnx.relu(self.conv1(x, train=train)), train=train)
    return nnx.relu(y + (x if self.proj is None else self.proj(x, train=train)))


class ResNet(nnx.Module):
  """ResNet-18 for ``in_channels`` 1 or 3; float32 logits.

  Example:
    >>> model = ResNet(num_classes=10, in_channels=1, width_multiplier=1 / 16,
    ...                rngs=nnx.Rngs(0))
    >>> model(jnp.zeros((2, 28, 28, 1)), train=False).shape
    (2, 10)
  """

  def __init__(
    self,
    *,
    num_classes: int = 10,
    in_channels: int = 3,
    width_multiplier: float = 1.0,
    dtype: Any = jnp.float32,
    rngs: nnx.Rngs,
  ):
    if num_classes < 1:
      raise ValueError(f"num_classes must be >= 1, got {num_classes=}")
    if in_channels not in (1, 3):
      raise ValueError(f"in_channels must be 1 or 3, got {in_channels=}")
    if not width_multiplier > 0:
      raise ValueError(
        f"width_multiplier must be positive, got {width_multiplier=}"
      )
    self.dtype = dtype
    widths = [max(1, round(w * width_multiplier)) for w in STAGE_WIDTHS]
    self.stem = ConvBN(in_channels, widths[0], 3, dtype=dtype, rngs=rngs)
    blocks, features = [], widths[0]
    for width, stride in zip(widths, STAGE_STRIDES, strict=True):
      for s in (stride, 1):
        blocks.append(BasicBlock(features, width, s, dtype=dtype, rngs=rngs))
        features = width
    self.blocks = nnx.List(blocks)
    self.head = nnx.Linear(
      features, num_classes, dtype=dtype, param_dtype=jnp.float32, rngs=rngs
    )

  def __call__(self, x: jax.Array, *, train: bool) -> jax.Array:
    x = nnx.relu(self.stem(x.astype(self.dtype), train=train))
    for block in self.blocks:
      x = block(x, train=train)
    return self.head(jnp.mean(x, axis=(1, 2))).astype(jnp.float32)
