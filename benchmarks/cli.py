"""The command line every benchmark's ``main.py`` shares.

Flags: ``--workdir DIR`` (``{preset}`` is replaced by the preset's name),
``--preset NAME`` (``--quick`` = ``--preset quick``), ``--set key=value ...``,
``--print-config``, and ``--data-dir`` / ``--dataset`` where the config has
those fields. A bad config or an unwritable workdir exits with status 2
before any work, as does a workdir holding unfinished work of another
config.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
import dataclasses
import inspect
import json
import shlex
import sys
from typing import Any

from benchmarks import config as config_lib
from benchmarks import files
from benchmarks import resume


def main(
  argv: Sequence[str] | None,
  *,
  description: str,
  presets: Mapping[str, Any],
  run: Callable[..., Any],
  default_workdir: str,
  prog: str | None = None,
  shortcuts: Sequence[str] = ("dataset", "data_dir"),
) -> Any:
  """Parses the flags, checks config and workdir, then ``run(config, workdir)``.

  Args:
    argv: the arguments (``None``: ``sys.argv[1:]``).
    presets: name -> config (a frozen dataclass that checks itself), with a
      ``"default"``.
    run: the experiment; it also gets ``command=`` the full command line if
      ``prog`` (how it is invoked: ``"python -m benchmarks.x"``, also the
      name in usage and errors) is given and ``run`` takes ``command``.
    shortcuts: config fields that get a flag of their own.

  Returns:
    What ``run`` returns (``None`` with ``--print-config``).
  """
  argv = sys.argv[1:] if argv is None else list(argv)
  fields = [f.name for f in dataclasses.fields(presets["default"])]
  parser = argparse.ArgumentParser(
    prog=prog,
    description=description,
    formatter_class=argparse.RawDescriptionHelpFormatter,
    epilog=f"Presets: {', '.join(presets)}. Keys for --set: "
    f"{', '.join(fields)}.",
  )
  parser.add_argument(
    "--preset",
    default="default",
    choices=list(presets),
    help="named configuration (default: %(default)s)",
  )
  if "quick" in presets:
    parser.add_argument(
      "--quick",
      action="store_const",
      const="quick",
      dest="preset",
      help="same as --preset quick (for CI)",
    )
  parser.add_argument(
    "--set",
    dest="overrides",
    metavar="KEY=VALUE",
    action="extend",
    nargs="+",
    default=[],
    help="override config fields, e.g. --set num_steps=100",
  )
  parser.add_argument(
    "--workdir",
    default=default_workdir,
    help="output directory (default: %(default)s)",
  )
  parser.add_argument(
    "--print-config",
    action="store_true",
    help="print the resolved config as JSON and exit",
  )
  shortcuts = [f for f in shortcuts if f in fields]
  for field in shortcuts:
    parser.add_argument(
      "--" + field.replace("_", "-"),
      dest=field,
      help=f"same as --set {field}=...",
    )
  args = parser.parse_args(argv)
  overrides = [
    f"{f}={getattr(args, f)}" for f in shortcuts if getattr(args, f) is not None
  ]
  try:
    config = config_lib.apply_overrides(
      presets[args.preset], overrides + args.overrides
    )
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
  kwargs = {}
  if prog and "command" in inspect.signature(run).parameters:
    kwargs["command"] = shlex.join([*prog.split(), *argv])
  try:
    return run(config, workdir, **kwargs)
  except resume.WorkdirConflict as e:
    parser.error(f"--workdir: {e}")
