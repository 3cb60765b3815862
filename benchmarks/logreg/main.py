"""Logistic regression on MNIST with fractal and classical step sizes (Fig. 5).

  python -m benchmarks.logreg                      # Figure 5, MNIST 5k
  python -m benchmarks.logreg --quick              # CI-sized
  python -m benchmarks.logreg --preset fashion     # Fashion-MNIST
  python -m benchmarks.logreg --preset sweep       # lambda x T map
  python -m benchmarks.logreg --preset sweep_fashion
  python -m benchmarks.logreg --dataset mnist --data-dir ~/mnist

Results go to results/logreg/<preset>/ unless --workdir is given.
"""

from benchmarks import cli
from benchmarks.logreg import configs
from benchmarks.logreg import sweep
from benchmarks.logreg import train

MODES = {"compare": train.train_and_evaluate, "sweep": sweep.run_sweep}


def run(config: configs.Config, workdir: str, *, command: str = ""):
  """Dispatches on ``config.mode``."""
  return MODES[config.mode](config, workdir, command=command)


def main(argv=None):
  return cli.main(
    argv,
    description=__doc__,
    presets=configs.PRESETS,
    run=run,
    default_workdir="results/logreg/{preset}",
    prog="python -m benchmarks.logreg",
  )


if __name__ == "__main__":
  main()
