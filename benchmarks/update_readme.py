"""Copies the Markdown tables the benchmarks wrote into README.md.

A results block is replaced by the file it names (relative to the
repository root)::

  <!-- results: benchmarks/results/order/order_stability.md -->
  ... (generated; do not edit by hand) ...
  <!-- /results -->

  python -m benchmarks.update_readme          # rewrite README.md in place
  python -m benchmarks.update_readme --check  # exit 1 if one is out of date
"""

from __future__ import annotations

import argparse
import os
import re
import sys

from benchmarks import files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_BLOCK = re.compile(
  r"(<!-- results: (?P<path>[^ ]+) -->\n).*?(<!-- /results -->)", re.S
)


def render(readme: str, root: str = ROOT) -> str:
  """``readme`` with every results block replaced by its file's content."""

  def replace(match: re.Match) -> str:
    path = os.path.join(root, match.group("path"))
    if not os.path.exists(path):
      raise FileNotFoundError(
        f"README block names {match.group('path')}, which does not exist;"
        " run the benchmark that writes it first."
      )
    with open(path, encoding="utf-8") as f:
      body = f.read()
    end = "" if body.endswith("\n") else "\n"
    return match.group(1) + body + end + match.group(3)

  return _BLOCK.sub(replace, readme)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument(
    "--check",
    action="store_true",
    help="only check; exit 1 if README.md is out of date.",
  )
  args = parser.parse_args(argv)
  path = os.path.join(ROOT, "README.md")
  with open(path, encoding="utf-8") as f:
    readme = f.read()
  updated = render(readme)
  if updated != readme and args.check:
    print("README.md is out of date (run python -m benchmarks.update_readme)")
    return 1
  if updated != readme:
    files.write_text(path, updated)
  return 0


if __name__ == "__main__":
  sys.exit(main())
