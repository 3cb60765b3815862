"""Presets of the order-stability scan: ``default`` and ``quick`` (CI size)."""

from __future__ import annotations

import dataclasses

from benchmarks import config as checks


@dataclasses.dataclass(frozen=True)
class Config:
  """One scan: every T ≤ ``max_t``, the steps for [1, κ], κ in ``kappas``.

  Attributes:
    oversample: evaluation points per step of ``stability_profile``.
    baseline_every: measure the filtered order at every N-th T and at the T
      of ``baseline_at``.
    refine_cases: how many of the worst fractal (T, κ) are measured again
      with ``refine_oversample`` points per step.
    chunk_size: T per resumable unit.
  """

  max_t: int = 1024
  kappas: tuple[float, ...] = (10.0, 1e2, 1e3, 1e4, 1e5)
  oversample: int = 2
  baseline_every: int = 7
  baseline_at: tuple[int, ...] = (100, 127)
  refine_cases: int = 5
  refine_oversample: int = 16
  chunk_size: int = 64
  progress: bool = True

  def __post_init__(self):
    checks.non_empty("kappas", self.kappas)
    for name in (
      "max_t",
      "oversample",
      "baseline_every",
      "baseline_at",
      "refine_cases",
      "refine_oversample",
      "chunk_size",
    ):
      checks.positive(name, getattr(self, name))
    checks.require(
      min(self.kappas) > 1, f"every κ must be > 1, got kappas={self.kappas!r}."
    )


PRESETS = {
  "default": Config(),
  "quick": Config(
    max_t=40,
    kappas=(10.0, 1e4),
    baseline_at=(20,),
    refine_cases=2,
    chunk_size=16,
    progress=False,
  ),
}
