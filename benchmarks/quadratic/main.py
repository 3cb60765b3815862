"""Reproduces the theory of "Acceleration via Fractal Learning Rate Schedules"
(Agarwal, Goel & Zhang, ICML 2021) on convex quadratics: orders and precision,
acceleration (iterations to ε against κ, wall time, state), gradient noise and
negative progress. Writes results.json, results.md, summary.md and PNG
figures, and reports the targets as ratios with pass/fail.

  python -m benchmarks.quadratic                          # ~35 s on 2 cores
  python -m benchmarks.quadratic --quick --workdir /tmp/q  # CI size
  python -m benchmarks.quadratic --set accel_kappas=10,100 target_kappa=10 \\
      --print-config
"""

from benchmarks import cli
from benchmarks.quadratic import configs
from benchmarks.quadratic import experiment


def main(argv=None):
  return cli.main(
    argv,
    description=__doc__,
    presets=configs.PRESETS,
    run=experiment.run,
    default_workdir="results/quadratic",
    prog="python -m benchmarks.quadratic",
  )


if __name__ == "__main__":
  main()
