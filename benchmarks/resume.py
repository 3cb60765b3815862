"""The one resume mechanism: a long run is a set of named, finished units.

A :class:`Store` keeps each finished unit (a deterministic function of the
config) as ``workdir/units/<name>.json``, written atomically; a restarted run
reuses them and computes only the rest. :func:`claim` records the config in
``workdir/config.json`` and refuses a workdir holding unfinished work (units,
or training checkpoints of a run without its ``summary.json``) of another
config; a finished run of another config is replaced. Only process 0 writes.

Example::

  store = resume.Store(workdir, config)
  rows = [store.compute(f"l2={l2:g}", lambda: sweep_one(config, l2))
          for l2 in config.sweep_l2]
  files.write_json(os.path.join(workdir, "sweep.json"), {"rows": rows})
  store.clear()   # The final files are written: drop the units.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
import json
import os
import re
import shutil
from typing import Any

from benchmarks import config as config_lib
from benchmarks import files

CONFIG_FILE = "config.json"
UNITS_DIR = "units"
CHECKPOINT_DIR = "checkpoints"
IGNORED_KEYS = ("progress",)
_UNIT_NAME = re.compile(r"[A-Za-z0-9_.=+,-]+")


class WorkdirConflict(ValueError):
  """The workdir holds unfinished work of a run with another config."""


def _work(workdir: str) -> tuple[list[str], list[str]]:
  """``(unfinished, finished)``: non-empty unit directories and training
  checkpoints of runs without a ``summary.json``; checkpoints of finished
  runs (kept beside, or below, the summary written last)."""
  unfinished, finished = [], []
  for root, dirs, names in os.walk(workdir):
    base = os.path.basename(root)
    if base == UNITS_DIR and names:
      unfinished.append(root)
    elif base == CHECKPOINT_DIR and dirs:
      run = os.path.dirname(root)
      while not os.path.isfile(os.path.join(run, files.SUMMARY_FILE)):
        if os.path.samefile(run, workdir) or run == os.path.dirname(run):
          unfinished.append(root)
          break
        run = os.path.dirname(run)
      else:
        finished.append(root)
  return sorted(unfinished), sorted(finished)


def _differing_keys(
  previous: dict[str, Any], current: dict[str, Any], ignore: Sequence[str]
) -> list[str]:
  return sorted(
    k
    for k in set(previous) | set(current)
    if k not in ignore and previous.get(k) != current.get(k)
  )


def claim(
  workdir: str | os.PathLike, config: Any, ignore: Sequence[str] = IGNORED_KEYS
) -> None:
  """Records ``config`` in ``workdir``, refusing unfinished work of another.

  Raises :class:`WorkdirConflict` naming the differing keys (outside
  ``ignore``, the fields that do not change results) and the unfinished
  paths if the workdir holds units or checkpoints of an unfinished run of
  another config. A finished run of another config loses its
  ``summary.json`` (which would vouch for results of that config) and its
  checkpoints (which a new run would resume from) before the new config is
  recorded.
  """
  workdir = os.fspath(workdir)
  current = config_lib.to_dict(config)
  path = os.path.join(workdir, CONFIG_FILE)
  if os.path.isfile(path):
    with open(path) as f:
      previous = json.load(f)
    diff = _differing_keys(previous, current, ignore)
    unfinished, finished = _work(workdir) if diff else ([], [])
    if unfinished:
      raise WorkdirConflict(
        f"{workdir!r} holds unfinished work of a run with a different "
        f"config (keys {diff}); use another --workdir, or delete "
        f"{', '.join(repr(p) for p in unfinished)}."
      )
    if diff and files.is_lead_process():
      files.remove_summary(workdir)
      for stale in finished:
        shutil.rmtree(stale)
  files.write_json(path, current)


def finished(
  workdir: str | os.PathLike, config: Any, ignore: Sequence[str] = IGNORED_KEYS
) -> dict[str, Any] | None:
  """The summary of a finished run of ``config`` in ``workdir``, or None.

  A run is finished when its ``summary.json`` (written last) sits beside a
  ``config.json`` equal to ``config`` outside ``ignore``; a rerun returns it
  instead of rewriting it.
  """
  workdir = os.fspath(workdir)
  paths = [os.path.join(workdir, n) for n in (CONFIG_FILE, files.SUMMARY_FILE)]
  if not all(os.path.isfile(p) for p in paths):
    return None
  previous = files.read_json(paths[0])
  if _differing_keys(previous, config_lib.to_dict(config), ignore):
    return None
  return files.read_json(paths[1])


class Store:
  """Finished units of one run (the workdir is claimed for ``config``)."""

  def __init__(
    self,
    workdir: str | os.PathLike,
    config: Any,
    ignore: Sequence[str] = IGNORED_KEYS,
  ):
    self.directory = os.path.join(os.fspath(workdir), UNITS_DIR)
    claim(workdir, config, ignore)

  def compute(self, unit: str, fn: Callable[[], Any]) -> Any:
    """The stored value of ``unit``, or ``fn()`` stored first.

    Either way the value is what its JSON reads back as (tuples and arrays
    become lists, non-finite floats stay floats).
    """
    if not isinstance(unit, str) or not _UNIT_NAME.fullmatch(unit):
      raise ValueError(
        f"A unit name is letters, digits and _.=+,- only, got {unit=}."
      )
    path = os.path.join(self.directory, unit + ".json")
    if os.path.isfile(path):
      return files.read_json(path)
    text = files.dumps(fn())
    files.write_text(path, text)
    return files.from_jsonable(json.loads(text))

  def clear(self) -> None:
    """Deletes the units (call once the run's final files are written)."""
    if files.is_lead_process():
      shutil.rmtree(self.directory, ignore_errors=True)
