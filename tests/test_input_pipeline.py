"""Tests for benchmarks/input_pipeline.py on tiny files in each format."""

import gzip
import io
import os
import pickle
import struct
import tempfile
from typing import ClassVar

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np

from benchmarks import input_pipeline


def _idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
  header = bytes([0, 0, code, array.ndim])
  header += b"".join(int(n).to_bytes(4, "big") for n in array.shape)
  return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def _write(path: str, data: bytes, compress: bool = False) -> str:
  with open(path, "wb") as f:
    f.write(gzip.compress(data) if compress else data)
  return path


def _write_mnist_dir(
  directory: str,
  compress: bool,
  num_train: int = 6,
  num_test: int = 4,
  seed: int = 0,
) -> dict:
  rng = np.random.default_rng(seed)
  arrays = {}
  for split, n in (("train", num_train), ("t10k", num_test)):
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=(n,), dtype=np.uint8)
    suffix = ".gz" if compress else ""
    _write(
      os.path.join(directory, f"{split}-images-idx3-ubyte{suffix}"),
      _idx_bytes(images),
      compress,
    )
    _write(
      os.path.join(directory, f"{split}-labels-idx1-ubyte{suffix}"),
      _idx_bytes(labels),
      compress,
    )
    arrays[split] = (images, labels)
  return arrays


class IdxTest(parameterized.TestCase):
  def setUp(self):
    super().setUp()
    tmp = tempfile.TemporaryDirectory()
    self.addCleanup(tmp.cleanup)
    self.dir = tmp.name

  @parameterized.named_parameters(("raw", False), ("gzip", True))
  def test_roundtrip_dtypes(self, compress):
    for code, dtype in ((0x08, np.uint8), (0x0C, np.int32), (0x0D, np.float32)):
      array = np.arange(24).reshape(2, 3, 4).astype(dtype) - (code != 0x08)
      path = _write(
        os.path.join(self.dir, f"a{code}"), _idx_bytes(array, code), compress
      )
      out = input_pipeline.load_idx(path)
      self.assertEqual(out.dtype, np.dtype(dtype))
      self.assertTrue(out.dtype.isnative)
      np.testing.assert_array_equal(out, array)

  @parameterized.named_parameters(
    ("truncated", lambda b: b[:-3], "truncated"),
    ("trailing", lambda b: b + b"\0", "longer than its header"),
    ("bad_magic", lambda b: b"\x08\x03" + b[2:], "bad magic number"),
    ("bad_type", lambda b: b[:2] + b"\x07" + b[3:], "unknown type code"),
    (
      "wrong_count",
      lambda b: b[:4] + (3).to_bytes(4, "big") + b[8:],
      "truncated",
    ),
    ("header_only", lambda b: b[:6], "inside its header"),
    ("empty", lambda b: b"", "too short"),
  )
  def test_broken_files_name_the_file(self, corrupt, message):
    good = _idx_bytes(np.zeros((2, 28, 28), np.uint8))
    for compress in (False, True):
      path = _write(
        os.path.join(self.dir, f"broken{compress}"), corrupt(good), compress
      )
      with self.assertRaisesRegex(ValueError, message) as cm:
        input_pipeline.load_idx(path)
      self.assertIn(path, str(cm.exception))

  def test_truncated_gzip_stream(self):
    data = gzip.compress(_idx_bytes(np.zeros((5, 28, 28), np.uint8)))
    path = _write(os.path.join(self.dir, "cut.gz"), data[: len(data) // 2])
    with self.assertRaisesRegex(ValueError, "gzip.*cut.gz"):
      input_pipeline.load_idx(path)

  def test_missing_file(self):
    with self.assertRaisesRegex(FileNotFoundError, "nope"):
      input_pipeline.load_idx(os.path.join(self.dir, "nope"))


class MnistDirTest(parameterized.TestCase):
  @parameterized.named_parameters(("raw", False), ("gzip", True))
  def test_mnist_and_fashion_layout(self, compress):
    with tempfile.TemporaryDirectory() as d:
      arrays = _write_mnist_dir(d, compress)
      for ds in (
        input_pipeline.load_mnist(d),
        input_pipeline.load_dataset("fashion_mnist", d),
      ):
        self.assertEqual(ds.train_images.shape, (6, 28, 28, 1))
        self.assertEqual(ds.test_images.shape, (4, 28, 28, 1))
        self.assertEqual(ds.train_images.dtype, np.uint8)
        self.assertEqual(ds.train_labels.dtype, np.int32)
        np.testing.assert_array_equal(
          ds.train_images[..., 0], arrays["train"][0]
        )
        np.testing.assert_array_equal(ds.test_labels, arrays["t10k"][1])
        self.assertEqual(ds.num_classes, 10)

  def test_count_mismatch_and_label_range(self):
    with tempfile.TemporaryDirectory() as d:
      _write_mnist_dir(d, compress=False)
      labels = os.path.join(d, "t10k-labels-idx1-ubyte")
      _write(labels, _idx_bytes(np.zeros(3, np.uint8)))
      with self.assertRaisesRegex(ValueError, "Count mismatch.*t10k-labels"):
        input_pipeline.load_mnist(d)
      _write(labels, _idx_bytes(np.array([0, 1, 2, 10], np.uint8)))
      with self.assertRaisesRegex(ValueError, r"t10k-labels.*\[0, 10\)"):
        input_pipeline.load_mnist(d)
      os.remove(labels)
      with self.assertRaisesRegex(FileNotFoundError, "t10k-labels-idx1-ubyte"):
        input_pipeline.load_mnist(d)

  def test_mnist_needs_a_directory(self):
    with self.assertRaisesRegex(ValueError, "data_dir=None"):
      input_pipeline.load_dataset("mnist")
    with self.assertRaisesRegex(ValueError, "name='svhn'"):
      input_pipeline.load_dataset("svhn")


class CifarTest(absltest.TestCase):
  def _write_batches(self, d, n=3):
    rng = np.random.default_rng(1)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
      data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
      labels = rng.integers(0, 10, size=n).tolist()
      with open(os.path.join(d, name), "wb") as f:
        pickle.dump({b"data": data, b"labels": labels, b"batch_label": b"x"}, f)
      batches[name] = (data, labels)
    return batches

  def test_loads_nhwc(self):
    with tempfile.TemporaryDirectory() as d:
      batches = self._write_batches(d)
      ds = input_pipeline.load_dataset("cifar10", d)
      self.assertEqual(ds.train_images.shape, (15, 32, 32, 3))
      self.assertEqual(ds.test_images.shape, (3, 32, 32, 3))
      data, labels = batches["test_batch"]
      # Channel-major rows: pixel (0, 1) of image 0 has R at 1, G at 1025.
      np.testing.assert_array_equal(
        ds.test_images[0, 0, 1], data[0, [1, 1025, 2049]]
      )
      np.testing.assert_array_equal(ds.test_labels, labels)
      # Batches are concatenated in order: image 3 is batch 2's first.
      data, labels = batches["data_batch_2"]
      np.testing.assert_array_equal(
        ds.train_images[3], data[0].reshape(3, 32, 32).transpose(1, 2, 0)
      )
      self.assertEqual(ds.train_labels[3], labels[0])

  def test_broken_batches(self):
    with tempfile.TemporaryDirectory() as d:
      self._write_batches(d)
      path = os.path.join(d, "data_batch_3")
      with open(path, "rb") as f:
        raw = f.read()
      _write(path, raw[: len(raw) // 2])
      with self.assertRaisesRegex(ValueError, "data_batch_3.*not a valid"):
        input_pipeline.load_cifar10(d)
      with open(path, "wb") as f:
        pickle.dump({b"data": np.zeros((2, 3072), np.uint8), b"labels": [1]}, f)
      with self.assertRaisesRegex(ValueError, "Count mismatch.*data_batch_3"):
        input_pipeline.load_cifar10(d)
      with open(path, "wb") as f:
        pickle.dump(
          {b"data": np.zeros((2, 100), np.uint8), b"labels": [1, 2]}, f
        )
      with self.assertRaisesRegex(ValueError, "data_batch_3.*3072"):
        input_pipeline.load_cifar10(d)
      os.remove(path)
      with self.assertRaisesRegex(FileNotFoundError, "data_batch_3"):
        input_pipeline.load_cifar10(d)


class _Python2StylePickler(pickle._Pickler):
  """Writes bytes as Python 2 ``str`` (BINSTRING), as CIFAR-10's files hold."""

  dispatch: ClassVar[dict] = dict(pickle._Pickler.dispatch)

  def _save_bytes(self, obj):
    if len(obj) < 256:
      self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
    else:
      self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
    self.memoize(obj)

  dispatch[bytes] = _save_bytes


def _cifar_like_pickle(batch) -> bytes:
  """Protocol 2 with numpy 1's module name, like the official batches."""
  out = io.BytesIO()
  _Python2StylePickler(out, protocol=2).dump(batch)
  return out.getvalue().replace(
    b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n"
  )


class _RunsCode:
  def __init__(self, command):
    self.command = command

  def __reduce__(self):
    return (os.system, (self.command,))


class CifarUnpicklerTest(absltest.TestCase):
  def _batch(self, n=2):
    rng = np.random.default_rng(2)
    return {
      b"batch_label": b"testing batch 1 of 1",
      b"labels": rng.integers(0, 10, size=n).tolist(),
      b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
      b"filenames": [b"a.png", b"b.png"][:n],
    }

  def test_crafted_pickle_is_refused_and_never_runs(self):
    with tempfile.TemporaryDirectory() as d:
      marker = os.path.join(d, "ran")
      path = os.path.join(d, "data_batch_1")
      for protocol in (0, 2, pickle.HIGHEST_PROTOCOL):
        batch = self._batch()
        batch[b"data"] = _RunsCode(f"touch {marker}")
        with open(path, "wb") as f:
          pickle.dump(batch, f, protocol=protocol)
        with self.assertRaisesRegex(
          ValueError, "data_batch_1.*refusing global .*system"
        ):
          input_pipeline._load_cifar_batch(path)
        self.assertFalse(os.path.exists(marker))
      # Any other global is refused too, whatever it is.
      for evil in (print, np.load, pickle.loads):
        with open(path, "wb") as f:
          pickle.dump({b"data": evil}, f, protocol=2)
        with self.assertRaisesRegex(ValueError, "data_batch_1.*refusing"):
          input_pipeline._load_cifar_batch(path)

  def test_codecs_only_as_latin1(self):
    with tempfile.TemporaryDirectory() as d:
      path = os.path.join(d, "test_batch")
      # A protocol-2 pickle calling _codecs.encode(..., 'rot13').
      raw = (
        b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x05"
        b"\x00\x00\x00rot13\x86R."
      )
      _write(path, raw)
      with self.assertRaisesRegex(ValueError, "test_batch.*latin1"):
        input_pipeline._load_cifar_batch(path)

  def test_real_format_batches_load(self):
    batch = self._batch()
    expected = batch[b"data"][1].reshape(3, 32, 32).transpose(1, 2, 0)
    official = _cifar_like_pickle(batch)
    self.assertIn(b"cnumpy.core.multiarray\n_reconstruct", official)
    self.assertNotIn(b"_codecs", official)
    with tempfile.TemporaryDirectory() as d:
      path = os.path.join(d, "data_batch_1")
      for raw in [official] + [
        pickle.dumps(batch, protocol=p)
        for p in range(2, pickle.HIGHEST_PROTOCOL + 1)
      ]:
        _write(path, raw)
        images, labels = input_pipeline._load_cifar_batch(path)
        np.testing.assert_array_equal(images[1], expected)
        np.testing.assert_array_equal(labels, batch[b"labels"])


class MnistSubsetTest(absltest.TestCase):
  def test_embedded_subset(self):
    ds = input_pipeline.load_dataset("mnist5k")
    self.assertEqual(ds.train_images.shape, (4000, 28, 28, 1))
    self.assertEqual(ds.test_images.shape, (1000, 28, 28, 1))
    self.assertEqual(ds.train_images.dtype, np.uint8)
    np.testing.assert_array_equal(np.bincount(ds.train_labels), [400] * 10)
    np.testing.assert_array_equal(np.bincount(ds.test_labels), [100] * 10)
    self.assertEqual(int(ds.train_images.max()), 255)
    # Shuffled with a fixed seed: a prefix holds every digit, reproducibly.
    self.assertLen(np.unique(ds.train_labels[:50]), 10)
    self.assertLen(np.unique(ds.test_labels[:50]), 10)
    again = input_pipeline.load_mnist_subset()
    np.testing.assert_array_equal(again.test_images, ds.test_images)
    # Real digits: every image has ink, and no two splits share an image.
    self.assertTrue((ds.train_images.reshape(4000, -1).max(1) > 0).all())
    train = {im.tobytes() for im in ds.train_images[ds.train_labels == 3]}
    test = {im.tobytes() for im in ds.test_images[ds.test_labels == 3]}
    self.assertEmpty(train & test)

  def test_bad_csv(self):
    with tempfile.TemporaryDirectory() as d:
      path = _write(os.path.join(d, "x.csv.gz"), b"1,2,3\n", compress=True)
      with self.assertRaisesRegex(ValueError, "x.csv.gz.*785 columns"):
        input_pipeline.load_mnist_subset(path)


if __name__ == "__main__":
  absltest.main()
