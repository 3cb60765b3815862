"""The curvature benchmark's table: ``curvature.json`` and ``curvature.md``."""

from __future__ import annotations

import os
from typing import Any

from benchmarks import files
from benchmarks import reporting

COLUMNS = [
    "problem", "dtype", "eigsh_hvps", "ours_hvps_to_match", "hvp_ratio",
    "eigsh_time_s", "ours_time_to_match_s", "time_ratio",
    "time_ratio_equal_hvps", "eigsh_err_max", "ours_err_max_at_match",
    "eigsh_err_min", "ours_err_min_at_match", "safe_max_over_lambda_max",
    "safe_brackets",
]


def write(result: dict[str, Any], workdir: str) -> str:
  """Writes both files; returns the Markdown table."""
  table = reporting.markdown_table(result["rows"], COLUMNS)
  files.write_json(os.path.join(workdir, "curvature.json"), result)
  files.write_text(os.path.join(workdir, "curvature.md"),
                   f"`{result['command']}`\n\n" + table)
  return table
