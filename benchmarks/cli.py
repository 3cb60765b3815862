"""The command line every benchmark's ``main.py`` shares.

Flags (the same for every benchmark): ``--workdir DIR``, ``--preset NAME``
(``--quick`` = ``--preset quick``), ``--set key=value ...`` (typed by the
field's default; unknown keys and wrong types are errors), ``--print-config``
and shortcut flags for some fields (``--data-dir`` = ``--set data_dir=``).
A benchmark with several modes makes the mode a config field, so modes are
chosen with a preset or ``--set mode=...``.

Before any work, :func:`main` resolves and checks the config and checks that
the workdir can be created and written; both failures exit with status 2 and
a message naming the flag.

Example ``main.py``::

  from benchmarks import cli
  from benchmarks.quadratic import configs, experiment

  def main(argv=None):
    return cli.main(argv, description=__doc__, presets=configs.PRESETS,
                    run=experiment.run, default_workdir="results/quadratic",
                    prog="python -m benchmarks.quadratic")
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from benchmarks import config as config_lib
from benchmarks import files


def build_parser(description: str, presets: Mapping[str, Any],
                 default_workdir: str,
                 shortcuts: Sequence[str] = ("dataset", "data_dir"),
                 ) -> argparse.ArgumentParser:
  """The shared parser (``presets`` must hold ``"default"``)."""
  fields = [f.name for f in dataclasses.fields(presets["default"])]
  parser = argparse.ArgumentParser(
      description=description,
      formatter_class=argparse.RawDescriptionHelpFormatter,
      epilog=f"Presets: {', '.join(presets)}. Keys for --set: "
      f"{', '.join(fields)}.")
  parser.add_argument("--preset", default="default", choices=list(presets),
                      help="named configuration (default: %(default)s)")
  if "quick" in presets:
    parser.add_argument("--quick", action="store_const", const="quick",
                        dest="preset", help="same as --preset quick (for CI)")
  parser.add_argument("--set", dest="overrides", metavar="KEY=VALUE",
                      action="append", nargs="+", default=[],
                      help="override config fields, e.g. --set num_steps=100")
  parser.add_argument("--workdir", default=default_workdir,
                      help="output directory (default: %(default)s; "
                      "{preset} is replaced by the preset's name)")
  parser.add_argument("--print-config", action="store_true",
                      help="print the resolved config as JSON and exit")
  for field in shortcuts:
    if field in fields:
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
  return config_lib.apply_overrides(presets[args.preset],
                                    shortcuts + overrides)


def main(argv: Sequence[str] | None, *, description: str,
         presets: Mapping[str, Any], run: Callable[[Any, str], Any],
         default_workdir: str, prog: str | None = None,
         shortcuts: Sequence[str] = ("dataset", "data_dir")) -> Any:
  """Parses the flags, checks config and workdir, then ``run(config, workdir)``.

  Args:
    argv: command-line arguments (``None``: ``sys.argv[1:]``).
    description: ``--help`` text.
    presets: preset name -> config (a frozen dataclass that checks itself).
    run: ``(config, workdir) -> result``, the experiment's entry point.
    default_workdir: default ``--workdir`` (``{preset}`` is replaced by the
      preset's name, e.g. ``"results/logreg/{preset}"``).
    prog: how the benchmark is invoked (``"python -m benchmarks.x"``); if
      given, ``run`` is called with ``command=`` the full command line, for
      the results to record.
    shortcuts: config fields that also get a flag of their own.

  Returns:
    What ``run`` returns (``None`` with ``--print-config``).
  """
  argv = sys.argv[1:] if argv is None else list(argv)
  parser = build_parser(description, presets, default_workdir, shortcuts)
  if prog:
    parser.prog = prog
  args = parser.parse_args(argv)
  try:
    config = config_from_args(args, presets)
  except (ValueError, TypeError) as e:
    parser.error(str(e))
  if args.print_config:
    print(json.dumps(config_lib.to_dict(config), indent=2))
    return None
  workdir = args.workdir.format(preset=args.preset)
  try:
    files.check_writable(workdir)
  except OSError as e:
    parser.error(f"--workdir: {e}")
  if prog:
    return run(config, workdir, command=shlex.join([*prog.split(), *argv]))
  return run(config, workdir)
