"""Presets of the certificates benchmark: ``default`` and ``quick`` (CI)."""

from __future__ import annotations

import dataclasses

from benchmarks import config as checks

SOLVERS = ("CLARABEL", "SCS")


@dataclasses.dataclass(frozen=True)
class Config:
  """One table: every cycle length in ``num_steps`` at every κ in ``kappas``.

  The class is L-smooth μ-strongly convex functions with ``L = 1``,
  ``μ = 1/κ``.

  Attributes:
    num_steps: the cycle lengths T (powers of two: the silver steps' and the
      fractal order's natural lengths).
    kappas: the condition numbers κ = L/μ.
    solvers: cvxpy solvers tried in turn until one returns an optimal status
      (the first inaccurate answer is kept if none does).
    accepted: also solve the fractal cycle's PEP restricted to the runs it
      does not raise f on (the adaptive optimiser's acceptance test).
    grid: points in [μ, L] for the silver steps' sup over quadratics.
  """

  num_steps: tuple[int, ...] = (2, 4, 8, 16)
  kappas: tuple[float, ...] = (10.0, 100.0, 1000.0)
  solvers: tuple[str, ...] = SOLVERS
  accepted: bool = True
  grid: int = 20001
  progress: bool = True

  def __post_init__(self):
    for name in ("num_steps", "kappas", "solvers"):
      checks.non_empty(name, getattr(self, name))
    checks.positive("num_steps", self.num_steps)
    checks.positive("grid", self.grid)
    checks.require(
      all(t & (t - 1) == 0 for t in self.num_steps),
      f"every T must be a power of two, got num_steps={self.num_steps!r}.",
    )
    checks.require(
      min(self.kappas) > 1, f"every κ must be > 1, got kappas={self.kappas!r}."
    )
    checks.one_of("solvers", self.solvers, SOLVERS)


PRESETS = {
  "default": Config(),
  "quick": Config(num_steps=(2, 4), kappas=(10.0,), grid=2001, progress=False),
}
