"""Command line: ``python -m benchmarks.logreg.main [--preset NAME] ...``.

Examples::

Results go to results/logreg/<preset>/ unless --workdir is given.

  python -m benchmarks.logreg.main                      # Figure 5, MNIST 5k
  python -m benchmarks.logreg.main --quick              # CI-sized
  python -m benchmarks.logreg.main --preset fashion     # Fashion-MNIST
  python -m benchmarks.logreg.main --preset sweep       # lambda x T map
  python -m benchmarks.logreg.main --dataset mnist --data-dir ~/mnist
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from benchmarks import harness
from benchmarks.logreg import configs
from benchmarks.logreg import train


def main(argv: Sequence[str] | None = None) -> object:
  return harness.main(
      argv, description=__doc__, presets=configs.PRESETS,
      train_and_evaluate=train.train_and_evaluate,
      default_workdir="results/logreg/{preset}")


if __name__ == "__main__":
  main(sys.argv[1:])
