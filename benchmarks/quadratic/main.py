"""Command line of the quadratic benchmark.

Example::

  python -m benchmarks.quadratic                 # full run, ~5-10 min
  python -m benchmarks.quadratic --quick --out /tmp/q   # CI size, < 1 min
  python -m benchmarks.quadratic --set accel_kappas=10,100 --print-config
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from collections.abc import Sequence
from typing import Any

import tqdm

from benchmarks import harness
from benchmarks import io_utils
from benchmarks.quadratic import configs
from benchmarks.quadratic import experiments
from benchmarks.quadratic import report

DEFAULT_OUT = "results/quadratic"
DESCRIPTION = """\
Reproduces the theory of "Acceleration via Fractal Learning Rate Schedules"
(Agarwal, Goel & Zhang, ICML 2021) on convex quadratics: orders and precision,
acceleration (iterations to ε against κ, wall time, state), gradient noise and
negative progress. Writes results.json, results.md and PNG figures, and
reports the targets as ratios with pass/fail."""


def run(config: configs.Config, workdir: str, *, preset: str = "custom",
        command: str = "", show_progress: bool = True) -> dict[str, Any]:
  """Runs the four experiments, computes the targets, writes the files.

  Args:
    config: the settings.
    workdir: output directory.
    preset: name recorded in the results.
    command: command line recorded in the results.
    show_progress: draw a tqdm progress bar (on stderr).

  Returns:
    The results (what ``results.json`` holds).
  """
  configs.check(config)
  start = time.perf_counter()
  parts = (
      ("orders", experiments.orders, experiments.orders_plan_size),
      ("acceleration", experiments.acceleration,
       experiments.acceleration_plan_size),
      ("timing", experiments.timing, experiments.timing_plan_size),
      ("noise", experiments.noise, experiments.noise_plan_size),
      ("negative_progress", experiments.negative_progress,
       experiments.negative_plan_size),
  )
  results = {"command": command, "preset": preset,
             "config": harness.config_to_dict(config),
             "environment": io_utils.environment()}
  total = sum(size(config) for _, _, size in parts)
  with tqdm.tqdm(total=total, desc="quadratic", unit="run",
                 disable=not show_progress, file=sys.stderr) as bar:
    for name, fn, _ in parts:
      bar.set_postfix_str(name)
      part_start = time.perf_counter()
      results[name] = fn(config, lambda: bar.update(1))
      results.setdefault("part_wall_time_s", {})[name] = (
          time.perf_counter() - part_start)
  results["schedule"] = experiments.schedule_examples(config)
  results["targets"] = experiments.targets(results, config)
  results["wall_time_s"] = time.perf_counter() - start
  report.write_all(results, workdir)
  return results


def main(argv: Sequence[str] | None = None) -> dict[str, Any] | None:
  """Parses the command line and runs the benchmark.

  Args:
    argv: arguments (``None``: ``sys.argv[1:]``).

  Returns:
    The results, or None with ``--print-config``.
  """
  parser = harness.build_parser(DESCRIPTION, configs.PRESETS, DEFAULT_OUT)
  parser.prog = "python -m benchmarks.quadratic"
  parser.add_argument("--out", dest="workdir", default=argparse.SUPPRESS,
                      help="output directory (same as --workdir; default: "
                      f"{DEFAULT_OUT})")
  parser.add_argument("--no-progress", action="store_true",
                      help="do not draw the progress bar")
  args = parser.parse_args(argv)
  try:
    config = configs.check(harness.config_from_args(args, configs.PRESETS))
  except (ValueError, TypeError) as e:
    parser.error(str(e))
  if args.print_config:
    print(json.dumps(io_utils.to_jsonable(harness.config_to_dict(config)),
                     indent=2))
    return None
  argv = sys.argv[1:] if argv is None else list(argv)
  command = shlex.join(["python", "-m", "benchmarks.quadratic", *argv])
  results = run(config, args.workdir, preset=args.preset, command=command,
                show_progress=not args.no_progress)
  for t in results["targets"]:
    measured = t["measured"]
    shown = f"{measured:.4g}" if isinstance(measured, float) else measured
    print(f"{'PASS' if t['passed'] else 'FAIL'}  {t['name']}: {shown} "
          f"(target {t['threshold']})")
  print(f"wall time {results['wall_time_s']:.1f} s; results in "
        f"{args.workdir}/")
  return results
