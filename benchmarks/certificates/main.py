"""Worst case over L-smooth μ-strongly convex functions of ‖x_T − x*‖² /
‖x_0 − x*‖² after one cycle of the fractal Chebyshev steps, the silver steps
and the best constant step (PEPit SDPs), next to their values over
quadratics. Writes results.json, results.md and certificates.png; an
interrupted run resumes from its finished (T, κ) cases. Needs PEPit, cvxpy and
an open SDP solver (Clarabel, SCS): the `benchmarks` extra.

  python -m benchmarks.certificates --workdir benchmarks/results/certificates
  python -m benchmarks.certificates --quick --workdir /tmp/certificates
"""

from benchmarks import cli
from benchmarks.certificates import configs
from benchmarks.certificates import experiment


def main(argv=None):
  return cli.main(
    argv,
    description=__doc__,
    presets=configs.PRESETS,
    run=experiment.run,
    default_workdir="results/certificates",
    prog="python -m benchmarks.certificates",
  )


if __name__ == "__main__":
  main()
