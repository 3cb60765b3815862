"""Atomic result files and environment records shared by every benchmark.

A benchmark that is interrupted must never leave a half-written result behind:
every writer here writes to a temporary file in the destination directory and
renames it into place (``os.replace`` is atomic on POSIX and Windows), so a
reader sees either the old file or the complete new one.

On several hosts (``jax.process_count() > 1``) only process 0 writes: the
others' writes go to a sink, so a shared file system sees one writer.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import platform
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np


def is_lead_process() -> bool:
  """True on process 0 of a multi-host JAX run (and in every 1-host run)."""
  import jax  # pylint: disable=g-import-not-at-top

  return jax.process_index() == 0


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w") -> Iterator[Any]:
  """Opens a temporary file that replaces ``path`` only if the block succeeds.

  On processes other than the lead one, yields an in-memory sink instead.
  """
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
  """Converts numpy/jax scalars and arrays to JSON types; non-finite -> str."""
  if isinstance(obj, dict):
    return {str(k): to_jsonable(v) for k, v in obj.items()}
  if isinstance(obj, (list, tuple)):
    return [to_jsonable(v) for v in obj]
  if hasattr(obj, "__array__") and not isinstance(obj, (str, bytes)):
    arr = np.asarray(obj)
    if arr.ndim == 0:
      return to_jsonable(arr.item())
    return [to_jsonable(v) for v in arr.tolist()]
  if isinstance(obj, float) and not math.isfinite(obj):
    # JSON has no inf/nan; keep them explicit rather than silently dropped.
    return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
  if isinstance(obj, (np.floating, np.integer, np.bool_)):
    return to_jsonable(obj.item())
  return obj


def write_json(path: str | os.PathLike, data: Any) -> None:
  """Writes ``data`` as indented JSON, atomically."""
  with atomic_open(path) as f:
    json.dump(to_jsonable(data), f, indent=2, sort_keys=False)
    f.write("\n")


def write_text(path: str | os.PathLike, text: str) -> None:
  """Writes ``text`` atomically."""
  with atomic_open(path) as f:
    f.write(text)


def subplots(*args: Any, figsize: tuple[float, float] | None = None,
             **kwargs: Any) -> tuple[Any, Any]:
  """``pyplot.subplots`` without pyplot: no global backend switch, no state.

  The figure is a plain ``matplotlib.figure.Figure``, so benchmarks can draw
  inside a notebook without turning its inline plots off, and nothing needs
  closing.
  """
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top

  fig = Figure(figsize=figsize)
  return fig, fig.subplots(*args, **kwargs)


def save_figure(fig: Any, path: str | os.PathLike, **kwargs: Any) -> None:
  """Saves a matplotlib figure atomically (PNG unless ``format`` is given)."""
  kwargs.setdefault("dpi", 120)
  kwargs.setdefault("bbox_inches", "tight")
  kwargs.setdefault("format", os.fspath(path).rsplit(".", 1)[-1])
  with atomic_open(path, "wb") as f:
    fig.savefig(f, **kwargs)


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
  }
  with contextlib.suppress(ImportError):
    import flax  # pylint: disable=g-import-not-at-top

    env["flax"] = flax.__version__
  return env


def markdown_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
  """Renders ``rows`` (dicts) as a GitHub Markdown table."""

  def fmt(v: Any) -> str:
    if isinstance(v, float):
      return f"{v:.4g}"
    return str(v)

  lines = ["| " + " | ".join(columns) + " |",
           "|" + "---|" * len(columns)]
  for row in rows:
    lines.append("| " + " | ".join(fmt(row.get(c, "")) for c in columns) + " |")
  return "\n".join(lines) + "\n"
