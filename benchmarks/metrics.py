"""Per-step metrics as JSON lines: ``MetricsWriter`` and ``read_metrics``.

Record ``{"step": t, ...}`` holds the loss at the iterate after ``t`` updates
and the learning rate of update ``t`` (optax's ``schedule(t)``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
import json
import os
from typing import Any

import numpy as np

from benchmarks import files

METRICS_FILE = "metrics.jsonl"


def read_metrics(
  path: str | os.PathLike, *, strict: bool = True
) -> list[dict[str, Any]]:
  """The records of a metrics file (``"nan"`` etc. as floats).

  A malformed line raises ``ValueError`` naming the file and line, except a
  last one (a write cut short) with ``strict=False``: it is dropped.
  """
  path = os.fspath(path)
  with open(path) as f:
    lines = f.read().split("\n")
  if lines[-1] == "":  # The newline ending the last record.
    lines.pop()
  records = []
  for i, line in enumerate(lines):
    try:
      record = json.loads(line)
      if not isinstance(record, dict) or "step" not in record:
        raise ValueError("not an object with a 'step'")
    except ValueError as e:
      if not strict and i == len(lines) - 1:
        break
      raise ValueError(
        f"Malformed metrics line {i + 1} in {path!r}: {e}"
      ) from e
    records.append(files.from_jsonable(record))
  return records


def metrics_arrays(
  records: Sequence[Mapping[str, Any]], key: str
) -> tuple[np.ndarray, np.ndarray]:
  """``(steps, values)`` of the records that hold ``key``."""
  pairs = [(r["step"], r[key]) for r in records if key in r]
  steps = np.array([p[0] for p in pairs], dtype=np.int64)
  values = np.array([p[1] for p in pairs], dtype=np.float64)
  return steps, values


class MetricsWriter:
  """Appends per-step records to a JSON-lines file.

  A fresh writer starts an empty file; one with ``resume_step`` keeps only the
  records of earlier steps (rewriting the file atomically), so steps replayed
  after a restore are not duplicated. Use as a context manager.
  """

  def __init__(self, path: str | os.PathLike, resume_step: int | None = None):
    self.path = os.fspath(path)
    self._lead = files.is_lead_process()
    if not self._lead:  # One writer on a multi-host run.
      self._file = open(os.devnull, "a")
      return
    kept = []
    if resume_step is not None and os.path.isfile(self.path):
      kept = [
        r
        for r in read_metrics(self.path, strict=False)
        if r["step"] < resume_step
      ]
    with files.atomic_open(self.path) as f:
      f.writelines(map(self._encode, kept))
    self._file = open(self.path, "a")

  @staticmethod
  def _encode(record: Mapping[str, Any]) -> str:
    return json.dumps(files.to_jsonable(dict(record))) + "\n"

  def write(
    self, step: int, metrics: Mapping[str, Any] | None = None, **scalars: Any
  ) -> None:
    """Appends one record ``{"step": step, **metrics, **scalars}``."""
    self._file.write(
      self._encode({"step": int(step), **(metrics or {}), **scalars})
    )

  def write_chunk(
    self,
    start_step: int,
    metrics: Mapping[str, Any],
    extra: Mapping[int, Mapping[str, Any]] | None = None,
  ) -> int:
    """Appends a record per row of ``metrics`` (arrays); returns how many.

    ``extra`` maps a step to more metrics for its record (e.g. an evaluation;
    the step's own win a name clash).
    """
    arrays = {k: np.asarray(v) for k, v in metrics.items()}
    lengths = {v.shape[0] if v.ndim else 0 for v in arrays.values()}
    if len(lengths) != 1:
      raise ValueError(
        f"Metrics must share one leading length, got "
        f"{ {k: v.shape for k, v in arrays.items()} }."
      )
    (n,) = lengths
    extra = extra or {}
    for i in range(n):
      step = start_step + i
      self.write(
        step, {**extra.get(step, {}), **{k: v[i] for k, v in arrays.items()}}
      )
    return n

  def flush(self) -> None:
    """Flushes and fsyncs, so the file survives a kill."""
    self._file.flush()
    if self._lead:  # fsync of os.devnull fails (EINVAL) on Linux.
      os.fsync(self._file.fileno())

  def close(self) -> None:
    if not self._file.closed:
      self.flush()
      self._file.close()

  def __enter__(self) -> MetricsWriter:
    return self

  def __exit__(self, *exc: Any) -> None:
    self.close()
