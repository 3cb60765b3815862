"""ResNet-18 past the edge of stability (the paper's Figure 6).

``mode``: ``experiment`` (default: constant-rate sweep, then constant vs
fractal, figure), ``train`` (one run) or ``throughput`` (images/s).

  python -m benchmarks.resnet --preset quick --workdir results/resnet
  python -m benchmarks.resnet --preset cifar10 --data-dir ~/cifar-10
  python -m benchmarks.resnet --preset quick --set mode=train \\
      schedule=fractal learning_rate=0.25
  python -m benchmarks.resnet --preset throughput
"""

from benchmarks import cli
from benchmarks.resnet import configs


def run(config, workdir, *, command=""):
  """Dispatches on ``config.mode`` (imports JAX only now, not for --help)."""
  # pylint: disable=g-import-not-at-top
  from benchmarks.resnet import experiment
  from benchmarks.resnet import throughput
  from benchmarks.resnet import train

  return {
    "experiment": experiment.run_experiment,
    "train": train.train_and_evaluate,
    "throughput": throughput.run,
  }[config.mode](config, workdir, command=command)


def main(argv=None):
  return cli.main(
    argv,
    description=__doc__,
    presets=configs.PRESETS,
    run=run,
    default_workdir="results/resnet",
    prog="python -m benchmarks.resnet",
  )


if __name__ == "__main__":
  main()
