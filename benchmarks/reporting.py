"""Markdown tables and matplotlib figures without pyplot.

Figures are plain ``matplotlib.figure.Figure`` objects (no global backend
switch, nothing to close, notebooks keep their inline plots), saved
atomically.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
import math
import os
from typing import Any

import numpy as np

from benchmarks import files


def markdown_table(rows: list[dict[str, Any]], columns: list[str]) -> str:
  """Renders ``rows`` (dicts) as a GitHub Markdown table."""

  def fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)

  lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
  for row in rows:
    lines.append("| " + " | ".join(fmt(row.get(c, "")) for c in columns) + " |")
  return "\n".join(lines) + "\n"


def pivot(
  records: Iterable[Mapping[str, Any]],
  index: Callable[[Mapping[str, Any]], dict[str, Any]],
  column: Callable[[Mapping[str, Any]], Any],
  value: Callable[[Mapping[str, Any]], Any],
) -> list[dict[str, Any]]:
  """Rows of a wide table for :func:`markdown_table`: a cell per record.

  Record ``r`` puts ``value(r)`` in column ``column(r)`` of the row whose
  leading cells are ``index(r)`` (a dict; equal dicts make one row). Rows
  keep the order of their first record.

  Example:
    >>> recs = [dict(k=1, m="a", v=2), dict(k=1, m="b", v=3)]
    >>> pivot(recs, lambda r: {"k": r["k"]}, lambda r: r["m"],
    ...       lambda r: r["v"])
    [{'k': 1, 'a': 2, 'b': 3}]
  """
  rows = {}
  for r in records:
    head = index(r)
    rows.setdefault(tuple(head.values()), head)[column(r)] = value(r)
  return list(rows.values())


def subplots(
  *args: Any, figsize: tuple[float, float] | None = None, **kwargs: Any
) -> tuple[Any, Any]:
  """``pyplot.subplots`` on a plain ``Figure``."""
  from matplotlib.figure import Figure  # pylint: disable=g-import-not-at-top

  fig = Figure(figsize=figsize)
  return fig, fig.subplots(*args, **kwargs)


def save_figure(fig: Any, path: str | os.PathLike, **kwargs: Any) -> None:
  """Saves a figure atomically, in the format of ``path``'s extension."""
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
  lr_reference: float | None = None,
  lr_reference_label: str = "stability limit",
  marks: Mapping[str, Any] | None = None,
  styles: Mapping[str, Mapping[str, Any]] | None = None,
  xlim: tuple[float, float] | None = None,
) -> None:
  """Loss against step (log scale), the learning rates in a panel beneath.

  Args:
    path: the PNG file.
    curves: label -> ``(steps, values)``; non-positive or non-finite values
      are not drawn.
    learning_rates: label -> ``(steps, rates)``, drawn as steps (log scale).
    lr_reference: a dashed horizontal line in the rate panel (e.g. 2/M),
      labelled ``lr_reference_label``.
    marks: label -> steps marked with circles on that loss curve.
    styles: label -> extra matplotlib keyword arguments.
    xlim: the step range shown (None: everything).
  """
  styles, marks = styles or {}, marks or {}
  mark_style = dict(ms=3, mfc="none", mew=0.7, color="k", alpha=0.7)
  fig, (top, bottom) = subplots(
    2,
    1,
    sharex=True,
    figsize=(8, 6.5),
    gridspec_kw={"height_ratios": [3, 1.4], "hspace": 0.08},
  )
  colors = {}
  for label, (steps, values) in curves.items():
    steps = np.asarray(steps, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    values = np.where(np.isfinite(values) & (values > 0), values, np.nan)
    (line,) = top.plot(
      steps, values, label=label, lw=1.4, **styles.get(label, {})
    )
    colors[label] = line.get_color()
    marked = np.isin(
      steps.astype(np.int64), np.asarray(marks.get(label, ()), np.int64)
    )
    if marked.any():
      top.plot(steps[marked], values[marked], "o", **mark_style)
  top.set_yscale("log")
  top.set_ylabel(ylabel)
  top.grid(True, which="major", alpha=0.3)
  top.legend(fontsize=8, loc="best")
  if title:
    top.set_title(title, fontsize=10)
  for label, (steps, rates) in learning_rates.items():
    style = {"color": colors.get(label), **styles.get(label, {})}
    steps, rates = np.asarray(steps), np.asarray(rates)
    bottom.step(steps, rates, where="post", lw=1.0, label=label, **style)
  if lr_reference is not None and math.isfinite(lr_reference):
    bottom.axhline(
      lr_reference, color="k", ls="--", lw=0.8, label=lr_reference_label
    )
    bottom.legend(fontsize=7, loc="upper right")
  bottom.set_yscale("log")
  if xlim is not None:
    bottom.set_xlim(*xlim)
  bottom.set_ylabel("learning rate")
  bottom.set_xlabel("step")
  bottom.grid(True, which="major", alpha=0.3)
  save_figure(fig, path)
