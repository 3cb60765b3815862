"""The order-stability table and figure."""

from __future__ import annotations

import os
from typing import Any

from benchmarks import files
from benchmarks import reporting

COLUMNS = ["order", "worst max_block / floor", "at (T, κ)", "mean"]


def table(summary: dict[str, Any]) -> str:
  """Worst and mean ratio of both orders, as Markdown."""
  rows = []
  for name, prefix in (("fractal_order (this library)", "fractal"),
                       ("next power of two, filtered (PyTorch implementation)",
                        "filtered")):
    at = summary[f"{prefix}_worst_at"]
    rows.append({"order": name,
                 "worst max_block / floor": summary[f"{prefix}_worst_ratio"],
                 "at (T, κ)": f"({at['T']}, {at['kappa']:g})" if at["T"]
                              else "-",
                 "mean": summary[f"{prefix}_mean_ratio"]})
  return reporting.markdown_table(rows, COLUMNS)


def figure(rows: list[dict[str, Any]], path: str) -> None:
  """The worst ratio over κ against T, for both orders (log scale)."""
  fig, ax = reporting.subplots(figsize=(8, 4))
  for prefix, style in (("fractal", "-"), ("filtered", ".")):
    worst = {row["T"]: max(v for k, v in row.items()
                           if k.startswith(prefix + "_"))
             for row in rows if any(k.startswith(prefix) for k in row)}
    ax.plot(list(worst), list(worst.values()), style, ms=3, lw=0.8,
            label=prefix)
  ax.set_yscale("log")
  ax.set_xlabel("T")
  ax.set_ylabel("max over κ of max_block / floor")
  ax.grid(True, alpha=0.3)
  ax.legend()
  reporting.save_figure(fig, path)


def write(result: dict[str, Any], workdir: str) -> str:
  """Writes ``order_stability.{json,md,png}``; returns the table."""
  text = table(result["summary"])
  files.write_json(os.path.join(workdir, "order_stability.json"), result)
  files.write_text(os.path.join(workdir, "order_stability.md"), text)
  figure(result["rows"], os.path.join(workdir, "order_stability.png"))
  return text
