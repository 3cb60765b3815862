"""fractal_optax's Lanczos (estimate_curvature) against scipy's eigsh, on the
same Hessian-vector product. Writes curvature.json and curvature.md.

  python -m benchmarks.curvature --workdir benchmarks/results/curvature
  python -m benchmarks.curvature --quick --set dtype=float32
"""

from benchmarks import cli
from benchmarks.curvature import configs
from benchmarks.curvature import experiment


def main(argv=None):
  return cli.main(
    argv,
    description=__doc__,
    presets=configs.PRESETS,
    run=experiment.run,
    default_workdir="results/curvature",
    prog="python -m benchmarks.curvature",
  )


if __name__ == "__main__":
  main()
