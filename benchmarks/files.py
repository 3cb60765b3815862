"""Result files: atomic writes, JSON, and the environment record.

Every writer writes a temporary file next to its destination and renames it
into place, so an interrupted run leaves the old file or the new one, never
half of one. On several hosts only process 0 writes; the others write to a
sink.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
import contextlib
import io
import json
import math
import os
import platform
import tempfile
from typing import Any

import numpy as np

SUMMARY_FILE = "summary.json"
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


def is_lead_process() -> bool:
  """True on process 0 of a multi-host JAX run (and in every 1-host run)."""
  import jax  # pylint: disable=g-import-not-at-top

  return jax.process_index() == 0


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w") -> Iterator[Any]:
  """A temporary file that replaces ``path`` only if the block succeeds."""
  if not is_lead_process():
    yield io.BytesIO() if "b" in mode else io.StringIO()
    return
  path = os.fspath(path)
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(
    dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp"
  )
  try:
    with os.fdopen(fd, mode) as f:
      yield f
      f.flush()
      os.fsync(f.fileno())
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are for everyone.
    os.replace(tmp, path)
  except BaseException:
    with contextlib.suppress(FileNotFoundError):
      os.remove(tmp)
    raise


def to_jsonable(obj: Any) -> Any:
  """numpy/jax scalars and arrays to JSON types; non-finite floats to str."""
  if isinstance(obj, dict):
    return {str(k): to_jsonable(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [to_jsonable(v) for v in obj]
  if hasattr(obj, "__array__") and not isinstance(obj, (str, bytes)):
    return to_jsonable(np.asarray(obj).tolist())
  if isinstance(obj, float) and not math.isfinite(obj):
    return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
  return obj


def from_jsonable(obj: Any) -> Any:
  """Inverse of :func:`to_jsonable` for floats: "nan"/"inf" strings back."""
  if isinstance(obj, dict):
    return {k: from_jsonable(v) for k, v in obj.items()}
  if isinstance(obj, list):
    return [from_jsonable(v) for v in obj]
  if isinstance(obj, str) and obj in _NONFINITE:
    return _NONFINITE[obj]
  return obj


def dumps(data: Any) -> str:
  """Indented JSON text of ``data`` (via :func:`to_jsonable`)."""
  return json.dumps(to_jsonable(data), indent=2) + "\n"


def write_text(path: str | os.PathLike, text: str) -> None:
  """Writes ``text`` atomically."""
  with atomic_open(path) as f:
    f.write(text)


def write_json(path: str | os.PathLike, data: Any) -> None:
  """Writes ``data`` as indented JSON, atomically."""
  write_text(path, dumps(data))


def read_json(path: str | os.PathLike) -> Any:
  """Reads a JSON file written by :func:`write_json` (non-finite restored)."""
  with open(path, encoding="utf-8") as f:
    return from_jsonable(json.load(f))


def write_summary(
  workdir: str | os.PathLike,
  summary: Mapping[str, Any],
  name: str = SUMMARY_FILE,
) -> str:
  """Writes ``workdir/name`` at the end of a run; returns its path."""
  path = os.path.join(os.fspath(workdir), name)
  write_json(path, dict(summary))
  return path


def remove_summary(
  workdir: str | os.PathLike, name: str = SUMMARY_FILE
) -> None:
  """Deletes a stale summary, so an unfinished run never shows one."""
  with contextlib.suppress(FileNotFoundError):
    os.remove(os.path.join(os.fspath(workdir), name))


def check_writable(directory: str | os.PathLike) -> None:
  """Creates ``directory`` if needed; ``OSError`` naming it if unwritable."""
  directory = os.fspath(directory)
  try:
    os.makedirs(directory, exist_ok=True)
    with tempfile.TemporaryFile(dir=directory):
      pass
  except OSError as e:
    raise OSError(f"cannot write to {directory!r}: {e.strerror or e}") from e


def _cpu_model() -> str:
  """The CPU's model name (float rounding, hence chaotic runs, depend on it)."""
  with contextlib.suppress(OSError):
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  return platform.processor() or "unknown"


def environment() -> dict[str, Any]:
  """Versions and devices, recorded next to every result."""
  import jax  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top

  env = {
    "python": platform.python_version(),
    "jax": jax.__version__,
    "optax": optax.__version__,
    "backend": jax.default_backend(),
    "devices": [str(d.device_kind) for d in jax.devices()],
    "device_count": jax.device_count(),
    "cpu_count": os.cpu_count(),
    "machine": platform.machine(),
    "cpu": _cpu_model(),
  }
  with contextlib.suppress(ImportError):
    import flax  # pylint: disable=g-import-not-at-top

    env["flax"] = flax.__version__
  return env
