"""Tables and figures: Markdown tables and matplotlib without pyplot.

Figures are plain ``matplotlib.figure.Figure`` objects (no global backend
switch, nothing to close) saved atomically with ``files.atomic_open``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from benchmarks import files


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
  with files.atomic_open(path, "wb") as f:
    fig.savefig(f, **kwargs)


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
  fig, (top, bottom) = subplots(
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
  save_figure(fig, path)
