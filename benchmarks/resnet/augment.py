"""On-device preprocessing of ``uint8`` batches: normalise, crop, flip.

The crop pads the normalised image with zeros (the mean) and cuts a window
of the original size at a uniform offset; the flip has probability 1/2.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

# Per-channel mean and standard deviation of the training images in [0, 1].
CHANNEL_STATS = {
  "fashion_mnist": ((0.2860,), (0.3530,)),
  "mnist": ((0.1307,), (0.3081,)),
  "mnist5k": ((0.1307,), (0.3081,)),
  "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}


def random_crop(images: jax.Array, key: jax.Array, padding: int) -> jax.Array:
  """Pads (N, H, W, C) images by ``padding`` zeros and crops back at random.

  Example:
    >>> random_crop(jnp.ones((2, 8, 8, 1)), jax.random.key(0), 2).shape
    (2, 8, 8, 1)
  """
  if padding < 0:
    raise ValueError(f"padding must be >= 0, got {padding=}")
  if padding == 0:
    return images
  n, h, w, c = images.shape
  pad = (padding, padding)
  padded = jnp.pad(images, ((0, 0), pad, pad, (0, 0)))
  offsets = jax.random.randint(key, (n, 2), 0, 2 * padding + 1)
  return jax.vmap(
    lambda image, o: jax.lax.dynamic_slice(image, (o[0], o[1], 0), (h, w, c))
  )(padded, offsets)


def random_flip(images: jax.Array, key: jax.Array) -> jax.Array:
  """Mirrors each (N, H, W, C) image left-right with probability 1/2."""
  flip = jax.random.bernoulli(key, 0.5, (images.shape[0],))
  return jnp.where(flip[:, None, None, None], images[:, :, ::-1, :], images)


def preprocess(
  images: jax.Array,
  key: jax.Array | None,
  *,
  mean: Sequence[float],
  std: Sequence[float],
  padding: int = 0,
  flip: bool = False,
) -> jax.Array:
  """``uint8`` images to ``(x/255 - mean) / std``; augmented unless key=None."""
  x = images.astype(jnp.float32) / 255.0
  x = (x - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)
  if key is None:
    return x
  crop_key, flip_key = jax.random.split(key)
  x = random_crop(x, crop_key, padding)
  return random_flip(x, flip_key) if flip else x
