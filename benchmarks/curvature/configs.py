"""Presets of the curvature benchmark: ``default`` and ``quick`` (CI size)."""

from __future__ import annotations

import dataclasses

from benchmarks import config as checks


@dataclasses.dataclass(frozen=True)
class Config:
  """Settings of one run: quadratics of dimensions ``sizes``, an MLP.

  Attributes:
    dtype: of parameters and products, for both methods.
    tol: eigsh's relative tolerance (None: 1e-8 in float64, 1e-4 in float32).
    repeats: timed repeats (the best is kept).
    seed: of the problems and of the Lanczos start vector.
    progress: print a line per problem as it finishes.
  """

  sizes: tuple[int, ...] = (1000, 10000, 100000)
  mlp_inputs: int = 16
  mlp_hidden: int = 32
  mlp_samples: int = 512
  dtype: str = "float64"
  tol: float | None = None
  repeats: int = 3
  seed: int = 0
  num_reflectors: int = 4
  progress: bool = True

  def __post_init__(self):
    checks.non_empty("sizes", self.sizes)
    for name in (
      "mlp_inputs",
      "mlp_hidden",
      "mlp_samples",
      "repeats",
      "num_reflectors",
    ):
      checks.positive(name, getattr(self, name))
    checks.require(
      min(self.sizes) > 5,
      "every size must be > 5 (one low and "
      f"four high outliers), got sizes={self.sizes!r}.",
    )
    checks.one_of("dtype", self.dtype, ("float64", "float32"))
    if self.tol is not None:
      checks.positive("tol", self.tol)

  @property
  def eigsh_tol(self) -> float:
    default = 1e-8 if self.dtype == "float64" else 1e-4
    return default if self.tol is None else self.tol


PRESETS = {
  "default": Config(),
  "quick": Config(
    sizes=(1000, 10000), mlp_inputs=8, mlp_hidden=16, mlp_samples=128, repeats=1
  ),
}
