"""Experiment machinery shared by the Flax benchmarks (Flax-example shape).

An experiment is a package with ``configs.py`` (named presets, each a frozen
dataclass instance), ``train.py`` (``train_and_evaluate(config, workdir)``)
and a thin ``main.py`` that calls ``harness.main``. This module supplies the
pieces they share:

* **Configs**: ``apply_overrides`` turns ``--set key=value`` strings into a
  new frozen config, typed by each field's default; unknown keys are errors.
* **CLI**: ``main`` parses ``--preset NAME`` (``--quick`` = ``--preset
  quick``), ``--set key=value ...``, ``--workdir`` and shortcut flags such as
  ``--data-dir``, then runs ``train_and_evaluate``.
* **Metrics**: ``MetricsWriter`` appends one JSON object per step to
  ``metrics.jsonl``; ``read_metrics`` reads them back.
* **Summary**: ``write_summary`` writes ``summary.json`` atomically (via
  ``benchmarks.io_utils``), only at the end of a run; ``run_loop`` removes a
  stale one when a run starts, so an interrupted run never leaves a summary.
* **Resume**: ``run_loop`` saves the training state with orbax every
  ``checkpoint_every`` steps and at the end, restores the latest checkpoint
  when restarted, and rewrites ``metrics.jsonl`` to the restored step, so a
  resumed run ends with the same files as an uninterrupted one.
* **Figures**: ``plot_loss_and_lr``: loss against step (log scale) above the
  learning-rate sequence.

Step convention (all experiments): the record ``{"step": t, ...}`` holds the
loss measured at the iterate after ``t`` updates and the learning rate of
update ``t`` (optax's ``schedule(t)``), which moves it to ``t + 1``.
Evaluations (``eval_fn``) of the iterate after ``t`` updates are merged into
record ``t`` (the step's own metrics win on a name clash); the last record,
``step == num_steps``, holds only the final evaluation (so an ``eval_fn``
returning ``loss`` puts the final iterate's loss there).

Example::

  def chunk_fn(state, start, n):   # n jitted steps, e.g. with lax.scan
    ...
    return state, {"loss": losses, "learning_rate": lrs}   # arrays [n]

  state = run_loop(state, chunk_fn, num_steps=1000, workdir="results/x",
                   checkpoint_every=200, eval_fn=evaluate, eval_every=100)
  write_summary("results/x", {"final": read_metrics(...)[-1]})
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from benchmarks import io_utils

ConfigT = TypeVar("ConfigT")
State = Any
Metrics = Mapping[str, Any]
ChunkFn = Callable[[State, int, int], tuple[State, Metrics]]
StepFn = Callable[[State, int], tuple[State, Metrics]]

METRICS_FILE = "metrics.jsonl"
SUMMARY_FILE = "summary.json"
CONFIG_FILE = "config.json"
CHECKPOINT_DIR = "checkpoints"

# ---------------------------------------------------------------------------
# Configs.
# ---------------------------------------------------------------------------

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _parse_scalar(key: str, text: str, like: Any) -> Any:
  """Parses ``text`` as the type of ``like`` (literal guess when None)."""
  text = text.strip()
  if like is None:
    if text.lower() in ("none", "null", ""):
      return None
    for kind in (int, float):
      with contextlib.suppress(ValueError):
        return kind(text)
    return text
  if isinstance(like, bool):
    if text.lower() in _TRUE:
      return True
    if text.lower() in _FALSE:
      return False
    raise ValueError(f"--set {key}: expected a boolean, got {text!r}.")
  if isinstance(like, int):
    try:
      return int(text)
    except ValueError:
      with contextlib.suppress(ValueError):
        value = float(text)
        if value.is_integer():
          return int(value)
    raise ValueError(f"--set {key}: expected an integer, got {text!r}.")
  if isinstance(like, float):
    try:
      return float(text)
    except ValueError:
      raise ValueError(
          f"--set {key}: expected a number, got {text!r}.") from None
  if isinstance(like, str):
    return text
  raise TypeError(f"--set {key}: cannot parse a value for a field of type "
                  f"{type(like).__name__}.")


def parse_value(key: str, text: str, default: Any) -> Any:
  """Parses the override ``text`` for field ``key`` typed by its ``default``.

  Tuples/lists are comma-separated and typed by their first element
  (``"1e-2,3e-3"``); ``None`` defaults accept ``none``, an int, a float or a
  string; booleans accept true/false/yes/no/on/off/1/0.

  Args:
    key: the field name (for error messages).
    text: the value as typed on the command line.
    default: the field's current value, which fixes the type.

  Returns:
    The typed value.
  """
  if isinstance(default, (tuple, list)):
    like = default[0] if default else None
    items = [t for t in text.split(",") if t.strip()]
    return type(default)(_parse_scalar(key, t, like) for t in items)
  return _parse_scalar(key, text, default)


def apply_overrides(config: ConfigT, overrides: Iterable[str]) -> ConfigT:
  """Returns ``config`` with ``key=value`` overrides applied (typed).

  Args:
    config: a frozen dataclass instance.
    overrides: strings ``"key=value"``.

  Returns:
    A new config (``dataclasses.replace``).

  Raises:
    ValueError: malformed override, unknown key, or a value of the wrong type.

  Example::

    apply_overrides(Config(), ["num_steps=100", "lambdas=1e-2,3e-3"])
  """
  if not dataclasses.is_dataclass(config) or isinstance(config, type):
    raise TypeError(f"config must be a dataclass instance, got {config=}.")
  names = [f.name for f in dataclasses.fields(config)]
  changes = {}
  for item in overrides:
    key, sep, text = item.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key:
      raise ValueError(f"Overrides must look like key=value, got {item!r}.")
    if key not in names:
      raise ValueError(f"Unknown config key {key!r} in {item!r}; valid keys: "
                       f"{', '.join(sorted(names))}.")
    changes[key] = parse_value(key, text, getattr(config, key))
  return dataclasses.replace(config, **changes)


def config_to_dict(config: Any) -> dict[str, Any]:
  """A JSON-ready dict of a dataclass config."""
  return io_utils.to_jsonable(dataclasses.asdict(config))


def check_workdir_config(workdir: str | os.PathLike, config: Any,
                         ignore: Sequence[str] = ("progress",)) -> None:
  """Records ``config`` in ``workdir``; refuses to mix two configs' results.

  If ``workdir/config.json`` exists and differs (outside ``ignore``) while
  checkpoints are present, resuming would splice two experiments together.

  Args:
    workdir: the experiment's output directory.
    config: the dataclass config of this run.
    ignore: fields that do not change results.

  Raises:
    ValueError: the workdir holds checkpoints of a different config.
  """
  workdir = os.fspath(workdir)
  current = config_to_dict(config)
  path = os.path.join(workdir, CONFIG_FILE)
  if os.path.isfile(path) and _has_checkpoints(workdir):
    with open(path) as f:
      previous = json.load(f)
    diff = sorted(k for k in set(previous) | set(current)
                  if k not in ignore and previous.get(k) != current.get(k))
    if diff:
      raise ValueError(
          f"{workdir!r} holds checkpoints of a run with a different config "
          f"(keys {diff}); use another --workdir or delete it.")
  io_utils.write_json(path, current)


def _has_checkpoints(workdir: str) -> bool:
  for root, dirs, _ in os.walk(workdir):
    if os.path.basename(root) == CHECKPOINT_DIR and dirs:
      return True
  return False


# ---------------------------------------------------------------------------
# Command line.
# ---------------------------------------------------------------------------


def build_parser(description: str, presets: Mapping[str, Any],
                 default_workdir: str,
                 shortcuts: Sequence[str] = ("dataset", "data_dir"),
                 ) -> argparse.ArgumentParser:
  """The experiments' shared argument parser.

  Args:
    description: ``--help`` text.
    presets: preset name -> config instance (must contain ``"default"``).
    default_workdir: where results go unless ``--workdir`` is given; a
      ``{preset}`` in it is replaced by the preset's name.
    shortcuts: config fields that also get a flag of their own
      (``data_dir`` -> ``--data-dir``) when the default config has them.

  Returns:
    The parser.
  """
  parser = argparse.ArgumentParser(
      description=description,
      formatter_class=argparse.RawDescriptionHelpFormatter,
      epilog="Presets: " + ", ".join(presets) + ". Keys for --set: "
      + ", ".join(f.name for f in dataclasses.fields(presets["default"])))
  parser.add_argument("--preset", default="default", choices=list(presets),
                      help="named configuration (default: %(default)s)")
  if "quick" in presets:
    parser.add_argument("--quick", action="store_const", const="quick",
                        dest="preset", help="same as --preset quick (for CI)")
  parser.add_argument("--set", dest="overrides", metavar="KEY=VALUE",
                      action="append", nargs="+", default=[],
                      help="override config fields, e.g. --set num_steps=100")
  parser.add_argument("--workdir", default=default_workdir,
                      help="output directory (default: %(default)s)")
  parser.add_argument("--print-config", action="store_true",
                      help="print the resolved config as JSON and exit")
  names = {f.name for f in dataclasses.fields(presets["default"])}
  for field in shortcuts:
    if field in names:
      parser.add_argument("--" + field.replace("_", "-"),
                          dest="shortcut_" + field, default=None,
                          help=f"same as --set {field}=...")
  return parser


def config_from_args(args: argparse.Namespace,
                     presets: Mapping[str, Any]) -> Any:
  """Resolves ``--preset``, shortcut flags and ``--set`` into a config."""
  overrides = [item for group in args.overrides for item in group]
  shortcuts = [f"{k[len('shortcut_'):]}={v}" for k, v in vars(args).items()
               if k.startswith("shortcut_") and v is not None]
  return apply_overrides(presets[args.preset], shortcuts + overrides)


def main(argv: Sequence[str] | None, *, description: str,
         presets: Mapping[str, Any],
         train_and_evaluate: Callable[[Any, str], Any],
         default_workdir: str) -> Any:
  """Entry point shared by every experiment's ``main.py``.

  Args:
    argv: command-line arguments (``None``: ``sys.argv[1:]``).
    description: ``--help`` text.
    presets: preset name -> config.
    train_and_evaluate: ``(config, workdir) -> summary``.
    default_workdir: default ``--workdir`` (``{preset}`` is replaced by the
      preset's name, e.g. ``"results/logreg/{preset}"``).

  Returns:
    Whatever ``train_and_evaluate`` returns (``None`` with
    ``--print-config``).
  """
  parser = build_parser(description, presets, default_workdir)
  args = parser.parse_args(argv)
  try:
    config = config_from_args(args, presets)
  except (ValueError, TypeError) as e:
    parser.error(str(e))
  if args.print_config:
    print(json.dumps(config_to_dict(config), indent=2))
    return None
  return train_and_evaluate(config, args.workdir.format(preset=args.preset))


# ---------------------------------------------------------------------------
# Metrics and summary files.
# ---------------------------------------------------------------------------


def _decode(value: Any) -> Any:
  if isinstance(value, str) and value in ("nan", "inf", "-inf"):
    return float(value)
  return value


def read_metrics(path: str | os.PathLike, *, strict: bool = True
                 ) -> list[dict[str, Any]]:
  """Reads a metrics JSONL file (``"nan"``/``"inf"`` strings become floats).

  Args:
    path: the ``metrics.jsonl`` file.
    strict: if False, a malformed LAST line (a write cut short by a kill) is
      dropped instead of raising.

  Returns:
    The records in file order.

  Raises:
    ValueError: a malformed line (naming the file and line number).
  """
  path = os.fspath(path)
  with open(path) as f:
    lines = f.read().split("\n")
  if lines and lines[-1] == "":
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
          f"Malformed metrics line {i + 1} in {path!r}: {e}") from e
    records.append({k: _decode(v) for k, v in record.items()})
  return records


def metrics_arrays(records: Sequence[Mapping[str, Any]], key: str
                   ) -> tuple[np.ndarray, np.ndarray]:
  """``(steps, values)`` of the records that hold ``key``."""
  pairs = [(r["step"], r[key]) for r in records if key in r]
  steps = np.array([p[0] for p in pairs], dtype=np.int64)
  values = np.array([p[1] for p in pairs], dtype=np.float64)
  return steps, values


class MetricsWriter:
  """Appends per-step metrics to a JSON-lines file, resume-consistently.

  A fresh writer (``resume_step=None``) starts an empty file. A resuming
  writer keeps only the records with ``step < resume_step`` (atomically
  rewriting the file, dropping a cut-short last line), so the steps replayed
  after a restore are not duplicated.

  Example::

    with MetricsWriter("results/x/metrics.jsonl") as w:
      w.write(0, loss=2.3, learning_rate=0.1)
  """

  def __init__(self, path: str | os.PathLike, resume_step: int | None = None):
    self.path = os.fspath(path)
    if not io_utils.is_lead_process():  # One writer on a multi-host run.
      self._file = open(os.devnull, "a")
      return
    kept = []
    if resume_step is not None and os.path.isfile(self.path):
      kept = [r for r in read_metrics(self.path, strict=False)
              if r["step"] < resume_step]
    with io_utils.atomic_open(self.path) as f:
      for record in kept:
        f.write(self._encode(record))
    self._file = open(self.path, "a")

  @staticmethod
  def _encode(record: Mapping[str, Any]) -> str:
    return json.dumps(io_utils.to_jsonable(dict(record))) + "\n"

  def write(self, step: int, metrics: Mapping[str, Any] | None = None,
            **scalars: Any) -> None:
    """Appends one record ``{"step": step, **metrics, **scalars}``."""
    record = {"step": int(step)}
    record.update(metrics or {})
    record.update(scalars)
    self._file.write(self._encode(record))

  def write_chunk(self, start_step: int, metrics: Mapping[str, Any],
                  extra: Mapping[int, Mapping[str, Any]] | None = None) -> int:
    """Appends records for steps ``start_step ...`` from stacked metrics.

    Args:
      start_step: the step of the first row.
      metrics: name -> array with a leading axis of length ``n`` (all equal).
      extra: step -> additional metrics merged into that record (e.g. an
        evaluation); on a name clash the step metrics win.

    Returns:
      ``n``, the number of records written.
    """
    arrays = {k: np.asarray(v) for k, v in metrics.items()}
    lengths = {v.shape[0] if v.ndim else 0 for v in arrays.values()}
    if len(lengths) != 1:
      raise ValueError(f"Metrics must share one leading length, got "
                       f"{ {k: v.shape for k, v in arrays.items()} }.")
    (n,) = lengths
    extra = extra or {}
    for i in range(n):
      step = start_step + i
      record = dict(extra.get(step, {}))
      record.update({k: v[i] for k, v in arrays.items()})
      self.write(step, record)
    return n

  def flush(self) -> None:
    """Flushes and fsyncs, so the file survives a kill."""
    self._file.flush()
    os.fsync(self._file.fileno())

  def close(self) -> None:
    if not self._file.closed:
      self.flush()
      self._file.close()

  def __enter__(self) -> MetricsWriter:
    return self

  def __exit__(self, *exc: Any) -> None:
    self.close()


def write_summary(workdir: str | os.PathLike, summary: Mapping[str, Any],
                  name: str = SUMMARY_FILE) -> str:
  """Writes ``workdir/summary.json`` atomically; returns its path."""
  path = os.path.join(os.fspath(workdir), name)
  io_utils.write_json(path, dict(summary))
  return path


def remove_summary(workdir: str | os.PathLike, name: str = SUMMARY_FILE
                   ) -> None:
  """Deletes a stale summary, so an unfinished run never shows one."""
  with contextlib.suppress(FileNotFoundError):
    os.remove(os.path.join(os.fspath(workdir), name))


# ---------------------------------------------------------------------------
# Checkpoints and the training loop.
# ---------------------------------------------------------------------------


class Checkpointer:
  """Saves and restores a pytree of arrays with orbax's CheckpointManager.

  Saves are synchronous (the loop flushes metrics first, then saves, so the
  checkpoint never runs ahead of the metrics file). Restores take the
  initial state as the target, which fixes shapes, dtypes and shardings.
  Use raw ``uint32`` key data (``jax.random.key_data``) for PRNG keys.
  """

  def __init__(self, directory: str | os.PathLike, max_to_keep: int = 2):
    import orbax.checkpoint as ocp  # pylint: disable=g-import-not-at-top

    self._ocp = ocp
    self.directory = os.path.abspath(os.fspath(directory))
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep, create=True,
            enable_async_checkpointing=False))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state: State) -> None:
    self._manager.save(int(step), args=self._ocp.args.StandardSave(state),
                       force=True)
    self._manager.wait_until_finished()

  def restore(self, step: int, target: State) -> State:
    import jax  # pylint: disable=g-import-not-at-top

    abstract = jax.tree.map(self._ocp.utils.to_shape_dtype_struct, target)
    return self._manager.restore(
        int(step), args=self._ocp.args.StandardRestore(abstract))

  def close(self) -> None:
    self._manager.close()


def per_step(step_fn: StepFn) -> ChunkFn:
  """Turns ``step_fn(state, step) -> (state, scalars)`` into a chunk function.

  The scalars of each step are stacked once per chunk (one device-to-host
  transfer per chunk, so dispatch stays asynchronous).
  """

  def chunk_fn(state: State, start: int, n: int) -> tuple[State, Metrics]:
    import jax  # pylint: disable=g-import-not-at-top

    rows = []
    for step in range(start, start + n):
      state, metrics = step_fn(state, step)
      rows.append(metrics)
    rows = jax.device_get(rows)
    return state, {k: np.stack([np.asarray(r[k]) for r in rows])
                   for k in rows[0]}

  return chunk_fn


def run_loop(state: State, chunk_fn: ChunkFn, *, num_steps: int,
             workdir: str | os.PathLike, checkpoint_every: int = 0,
             chunk_size: int | None = None,
             eval_fn: Callable[[State], Metrics] | None = None,
             eval_every: int = 0, progress: bool = True, desc: str = "",
             resume: bool = True, postfix_key: str | None = "loss") -> State:
  """Runs ``num_steps`` training steps with metrics, checkpoints and resume.

  Files written under ``workdir``: ``metrics.jsonl`` (one record per step,
  plus the final evaluation at ``step == num_steps``) and ``checkpoints/``.
  A stale ``summary.json`` is removed first; the caller writes the new one
  (``write_summary``) after the loop returns.

  Args:
    state: the initial training state (a pytree of arrays); also the restore
      target.
    chunk_fn: ``(state, start_step, n) -> (state, metrics)`` running ``n``
      steps from ``start_step``; metrics are arrays with a leading axis ``n``
      (see ``per_step`` for a per-step function).
    num_steps: total number of steps.
    workdir: output directory of this run.
    checkpoint_every: save every this many steps (0: only at the end).
    chunk_size: most steps per ``chunk_fn`` call (None: up to the next
      checkpoint or evaluation). A ``lax.scan`` chunk compiles once per
      distinct length, so make ``checkpoint_every``, ``eval_every`` and
      ``chunk_size`` multiples of one another.
    eval_fn: ``state -> scalars``, evaluated every ``eval_every`` steps and at
      the end, merged into that step's record.
    eval_every: evaluation period in steps (0: only at the end).
    progress: show a tqdm progress bar.
    desc: progress-bar label.
    resume: restore the latest checkpoint if there is one.
    postfix_key: metric shown on the progress bar.

  Returns:
    The final state.
  """
  if num_steps < 0:
    raise ValueError(f"num_steps must be >= 0, got {num_steps=}.")
  for name, value in (("checkpoint_every", checkpoint_every),
                      ("eval_every", eval_every)):
    if value < 0:
      raise ValueError(f"{name} must be >= 0, got {name}={value}.")
  if chunk_size is not None and chunk_size <= 0:
    raise ValueError(f"chunk_size must be positive or None, got {chunk_size=}.")
  from tqdm.auto import tqdm  # pylint: disable=g-import-not-at-top

  workdir = os.fspath(workdir)
  os.makedirs(workdir, exist_ok=True)
  remove_summary(workdir)
  ckpt_dir = os.path.join(workdir, CHECKPOINT_DIR)
  if not resume:
    shutil.rmtree(ckpt_dir, ignore_errors=True)
  checkpointer = Checkpointer(ckpt_dir)
  start = checkpointer.latest_step() if resume else None
  if start is not None:
    if start > num_steps:
      raise ValueError(f"{ckpt_dir!r} holds step {start} > {num_steps=}.")
    state = checkpointer.restore(start, state)
  step = start or 0

  def boundary(period: int) -> int:
    return num_steps if period == 0 else min(num_steps,
                                             (step // period + 1) * period)

  writer = MetricsWriter(os.path.join(workdir, METRICS_FILE),
                         resume_step=start)
  bar = tqdm(total=num_steps, initial=step, desc=desc, disable=not progress,
             dynamic_ncols=True, leave=False)
  try:
    while step < num_steps:
      end = min(boundary(checkpoint_every), boundary(eval_every))
      if chunk_size is not None:
        end = min(end, step + chunk_size)
      extra = {}
      if eval_fn is not None and eval_every and step % eval_every == 0:
        extra[step] = dict(eval_fn(state))
      state, metrics = chunk_fn(state, step, end - step)
      writer.write_chunk(step, metrics, extra)
      if postfix_key and postfix_key in metrics:
        last = float(np.asarray(metrics[postfix_key])[-1])
        bar.set_postfix({postfix_key: f"{last:.4g}"}, refresh=False)
      bar.update(end - step)
      step = end
      due = checkpoint_every and step % checkpoint_every == 0
      if due or step == num_steps:
        writer.flush()
        if checkpointer.latest_step() != step:
          checkpointer.save(step, state)
    final = dict(eval_fn(state)) if eval_fn is not None else {}
    writer.write(num_steps, final)
  finally:
    bar.close()
    writer.close()
    checkpointer.close()
  return state


# ---------------------------------------------------------------------------
# Figures.
# ---------------------------------------------------------------------------


def plot_loss_and_lr(
    path: str | os.PathLike,
    curves: Mapping[str, tuple[Any, Any]],
    learning_rates: Mapping[str, tuple[Any, Any]],
    *,
    ylabel: str = "loss",
    title: str | None = None,
    log_loss: bool = True,
    log_lr: bool = True,
    lr_reference: float | None = None,
    lr_reference_label: str = "stability limit",
    marks: Mapping[str, Any] | None = None,
    styles: Mapping[str, Mapping[str, Any]] | None = None,
    xlim: tuple[float, float] | None = None,
) -> None:
  """Loss (log scale) against step, with the learning rates in a panel beneath.

  Args:
    path: PNG file to write (atomically).
    curves: label -> ``(steps, values)`` for the top panel. Non-positive or
      non-finite values are not drawn (log scale).
    learning_rates: label -> ``(steps, rates)`` for the bottom panel (drawn
      as steps).
    ylabel: top panel's y label.
    title: figure title.
    log_loss: log-scale the top panel.
    log_lr: log-scale the bottom panel.
    lr_reference: a horizontal line in the bottom panel (e.g. 2/M or the
      largest stable constant rate).
    lr_reference_label: its legend label.
    marks: label -> steps to mark with dots on that label's loss curve (e.g.
      steps that increased the loss).
    styles: label -> extra matplotlib keyword arguments.
    xlim: the step range shown (None: everything).
  """
  styles = styles or {}
  fig, (top, bottom) = io_utils.subplots(
      2, 1, sharex=True, figsize=(8, 6.5),
      gridspec_kw={"height_ratios": [3, 1.4], "hspace": 0.08})
  colors = {}
  for label, (steps, values) in curves.items():
    steps = np.asarray(steps, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(values) & ((values > 0) if log_loss else True)
    values = np.where(ok, values, np.nan)
    (line,) = top.plot(steps, values, label=label, lw=1.4,
                       **styles.get(label, {}))
    colors[label] = line.get_color()
    if marks and label in marks and len(marks[label]):
      at = np.asarray(marks[label], dtype=np.int64)
      index = {int(s): i for i, s in enumerate(steps)}
      rows = [index[s] for s in at if s in index]
      top.plot(steps[rows], values[rows], "o", ms=3, mfc="none", mew=0.7,
               color="k", alpha=0.7)
  if log_loss:
    top.set_yscale("log")
  top.set_ylabel(ylabel)
  top.grid(True, which="major", alpha=0.3)
  top.legend(fontsize=8, loc="best")
  if title:
    top.set_title(title, fontsize=10)
  for label, (steps, rates) in learning_rates.items():
    kwargs = dict(styles.get(label, {}))
    kwargs.setdefault("color", colors.get(label))
    bottom.step(np.asarray(steps), np.asarray(rates), where="post", lw=1.0,
                label=label, **kwargs)
  if lr_reference is not None and math.isfinite(lr_reference):
    bottom.axhline(lr_reference, color="k", ls="--", lw=0.8,
                   label=lr_reference_label)
    bottom.legend(fontsize=7, loc="upper right")
  if log_lr:
    bottom.set_yscale("log")
  if xlim is not None:
    bottom.set_xlim(*xlim)
  bottom.set_ylabel("learning rate")
  bottom.set_xlabel("step")
  bottom.grid(True, which="major", alpha=0.3)
  io_utils.save_figure(fig, path)
