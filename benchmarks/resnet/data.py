"""The run's images: loaded, cut, resized, and batched by step.

Batches leave the host as ``uint8``; each process builds only its own rows of
every global batch (``benchmarks.resnet.parallel``), and the batch of step
``t`` depends only on ``(seed, t)``, so a restarted run sees the same data.
"""

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
        f"image_size must divide the {h}x{w} images, got image_size={size}")
  k = h // size
  blocks = images.reshape(n, size, k, size, k, c).astype(np.float32)
  return np.round(blocks.mean(axis=(2, 4))).astype(np.uint8)


def load(config) -> input_pipeline.Dataset:
  """The config's dataset, cut to ``num_train``/``num_test`` and resized."""
  ds = input_pipeline.load_dataset(config.dataset, config.data_dir)
  ds = input_pipeline.take(ds, config.num_train or None,
                           config.num_test or None)
  if config.image_size and config.image_size != ds.train_images.shape[1]:
    ds = ds._replace(
        train_images=downsample(ds.train_images, config.image_size),
        test_images=downsample(ds.test_images, config.image_size))
  return ds


class BatchSampler:
  """Deterministic shuffled batches: step ``t`` depends on ``(seed, t)`` only.

  Epoch ``e`` visits the training set in the order
  ``default_rng([seed, e]).permutation(n)``, in ``n // batch_size`` full
  batches (the remainder is dropped).
  """

  def __init__(self, images: np.ndarray, labels: np.ndarray, batch_size: int,
               seed: int, mesh: jax.sharding.Mesh):
    if images.shape[0] < batch_size:
      raise ValueError(
          f"batch_size must not exceed the {images.shape[0]} training images, "
          f"got {batch_size=}")
    parallel.check_batch_size(batch_size, mesh)
    self.images, self.labels = images, labels
    self.batch_size, self.seed, self.mesh = batch_size, seed, mesh
    self.steps_per_epoch = images.shape[0] // batch_size
    self.rows = parallel.process_rows(mesh, batch_size)
    self._epoch, self._perm = -1, None

  def indices(self, step: int) -> np.ndarray:
    """Indices of the global batch of ``step``."""
    epoch, i = divmod(int(step), self.steps_per_epoch)
    if epoch != self._epoch:
      rng = np.random.default_rng([self.seed, epoch])
      self._epoch, self._perm = epoch, rng.permutation(self.images.shape[0])
    return self._perm[i * self.batch_size:(i + 1) * self.batch_size]

  def batch(self, step: int) -> tuple[jax.Array, jax.Array]:
    """The sharded ``(uint8 images, int32 labels)`` of ``step``."""
    idx = self.indices(step)[self.rows]
    return parallel.global_batch(self.mesh, self.images[idx], self.labels[idx])


def eval_batches(images: np.ndarray, labels: np.ndarray, batch_size: int,
                 mesh: jax.sharding.Mesh):
  """Sharded ``(images, labels, mask)`` covering all of ``images``.

  The last batch is padded with zeros and masked out.
  """
  parallel.check_batch_size(batch_size, mesh, "eval_batch_size")
  rows = parallel.process_rows(mesh, batch_size)
  for start in range(0, images.shape[0], batch_size):
    x, y = images[start:start + batch_size], labels[start:start + batch_size]
    mask = np.ones(x.shape[0], np.float32)
    pad = batch_size - x.shape[0]
    if pad:
      x = np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)])
      y = np.concatenate([y, np.zeros(pad, y.dtype)])
      mask = np.concatenate([mask, np.zeros(pad, np.float32)])
    yield parallel.global_batch(mesh, x[rows], y[rows], mask[rows])
