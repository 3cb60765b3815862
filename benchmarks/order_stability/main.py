"""Worst block amplification of fractal_order over the stability floor, for
every T up to max_t, against the PyTorch implementation's filtered order.
Writes order_stability.json, order_stability.md and order_stability.png; an
interrupted scan resumes from its finished chunks of T.

  python -m benchmarks.order_stability --workdir benchmarks/results/order
  python -m benchmarks.order_stability --set max_t=64 --workdir /tmp/order
"""

from benchmarks import cli
from benchmarks.order_stability import configs
from benchmarks.order_stability import experiment


def main(argv=None):
  return cli.main(
    argv,
    description=__doc__,
    presets=configs.PRESETS,
    run=experiment.run,
    default_workdir="results/order",
    prog="python -m benchmarks.order_stability",
  )


if __name__ == "__main__":
  main()
