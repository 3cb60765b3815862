"""Command line: ``python -m benchmarks.resnet.main [--preset NAME] ...``.

``mode`` (a config field) picks what runs: ``experiment`` (default: the
constant-rate sweep, then constant vs fractal, figure), ``train`` (one run)
or ``throughput`` (images/s of the train step, fractal vs constant rate).

Examples::

  python -m benchmarks.resnet.main --preset quick --workdir results/resnet
  python -m benchmarks.resnet.main                     # Fashion-MNIST, 8192
  python -m benchmarks.resnet.main --preset cifar10 --data-dir ~/cifar-10
  python -m benchmarks.resnet.main --preset quick --set mode=train \\
      --set schedule=fractal learning_rate=2
  python -m benchmarks.resnet.main --preset throughput
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from benchmarks import harness
from benchmarks.resnet import configs


def run(config: configs.Config, workdir: str) -> Any:
  """Dispatches on ``config.mode``."""
  # Imported here so that --help and --print-config do not load JAX.
  # pylint: disable=g-import-not-at-top
  from benchmarks.resnet import experiment
  from benchmarks.resnet import throughput
  from benchmarks.resnet import train
  # pylint: enable=g-import-not-at-top

  modes = {"experiment": experiment.run_experiment,
           "train": train.train_and_evaluate,
           "throughput": throughput.run_throughput}
  if config.mode not in modes:
    raise ValueError(f"mode must be one of {tuple(modes)}, got "
                     f"mode={config.mode!r}")
  return modes[config.mode](config, workdir)


def main(argv: Sequence[str] | None = None) -> Any:
  return harness.main(argv, description=__doc__, presets=configs.PRESETS,
                      train_and_evaluate=run, default_workdir="results/resnet")


if __name__ == "__main__":
  main(sys.argv[1:])
