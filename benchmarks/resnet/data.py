"""The run's ``uint8`` images: loaded, cut, resized, batched by step."""

from __future__ import annotations

import jax
import numpy as np

from benchmarks import input_pipeline
from benchmarks.resnet import parallel


def downsample(images: np.ndarray, size: int) -> np.ndarray:
  """Averages (N, H, W, C) ``uint8`` images in blocks down to ``size``."""
  n, h, w, c = images.shape
  if size <= 0 or h % size or w % size or h != w:
    raise ValueError(
      f"image_size must divide the {h}x{w} images, got image_size={size}"
    )
  k = h // size
  blocks = images.reshape(n, size, k, size, k, c).astype(np.float32)
  return np.round(blocks.mean(axis=(2, 4))).astype(np.uint8)


def load(config) -> input_pipeline.Dataset:
  """The config's dataset, cut to ``num_train``/``num_test`` and resized."""
  ds = input_pipeline.load_dataset(config.dataset, config.data_dir)
  ds = input_pipeline.take(
    ds, config.num_train or None, config.num_test or None
  )
  if config.image_size and config.image_size != ds.train_images.shape[1]:
    ds = ds._replace(
      train_images=downsample(ds.train_images, config.image_size),
      test_images=downsample(ds.test_images, config.image_size),
    )
  return ds


class BatchSampler:
  """Shuffled, sharded batches: step ``t``'s depends on ``(seed, t)`` only.

  Epoch ``e`` visits ``default_rng([seed, e]).permutation(n)`` in full
  batches (the remainder is dropped).
  """

  def __init__(
    self,
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    seed: int,
    mesh: jax.sharding.Mesh,
  ):
    if images.shape[0] < batch_size:
      raise ValueError(
        f"batch_size must not exceed the {images.shape[0]} training images, "
        f"got {batch_size=}"
      )
    self.images, self.labels = images, labels
    self.batch_size, self.seed, self.mesh = batch_size, seed, mesh
    self.rows = parallel.process_rows(mesh, batch_size)
    self._epoch, self._perm = -1, None

  def batch(self, step: int) -> tuple[jax.Array, jax.Array]:
    epoch, i = divmod(int(step), self.images.shape[0] // self.batch_size)
    if epoch != self._epoch:
      rng = np.random.default_rng([self.seed, epoch])
      self._epoch, self._perm = epoch, rng.permutation(self.images.shape[0])
    idx = self._perm[i * self.batch_size : (i + 1) * self.batch_size][self.rows]
    return parallel.global_batch(self.mesh, self.images[idx], self.labels[idx])


def eval_batches(
  images: np.ndarray,
  labels: np.ndarray,
  batch_size: int,
  mesh: jax.sharding.Mesh,
):
  """Sharded ``(images, labels, mask)`` covering ``images``, padding masked."""
  rows = parallel.process_rows(mesh, batch_size, "eval_batch_size")
  n = images.shape[0]
  for start in range(0, n, batch_size):
    idx = np.arange(start, start + batch_size)[rows]
    mask = (idx < n).astype(np.float32)
    idx = np.minimum(idx, n - 1)
    yield parallel.global_batch(mesh, images[idx], labels[idx], mask)
