"""Test tiers: library tests need only the `test` extra.

Tests of `benchmarks/` are marked `benchmarks` and the notebook runs
`notebooks`; when an extra is not installed, its test files are not collected,
so `pip install -e '.[test]' && pytest` runs the library's tests alone and
`pip install -e '.[dev]' && pytest` runs everything.
"""

import importlib.util
import pathlib

import pytest

_BENCHMARK_TESTS = {
  "test_baselines.py",
  "test_certificates_benchmark.py",
  "test_cli.py",
  "test_cnn_recipe.py",
  "test_curvature_benchmark.py",
  "test_input_pipeline.py",
  "test_logreg.py",
  "test_multiprocess.py",
  "test_order_stability_benchmark.py",
  "test_quadratic_benchmark.py",
  "test_readme.py",
  "test_resnet.py",
  "test_resume.py",
}
_NOTEBOOK_TESTS = {"test_notebooks.py"}
_NEEDS = {
  "benchmarks": (
    "flax",
    "scipy",
    "matplotlib",
    "tqdm",
    "orbax.checkpoint",
    "mlxtend",
    "PEPit",
    "cvxpy",
  ),
  "notebooks": ("flax", "matplotlib", "mlxtend", "nbclient", "jupytext"),
}


def _installed(module: str) -> bool:
  try:
    return importlib.util.find_spec(module) is not None
  except ModuleNotFoundError:
    return False


def _tier(name: str) -> str | None:
  if name in _BENCHMARK_TESTS:
    return "benchmarks"
  if name in _NOTEBOOK_TESTS:
    return "notebooks"
  return None


collect_ignore = [
  name
  for name in sorted(_BENCHMARK_TESTS | _NOTEBOOK_TESTS)
  if not all(_installed(m) for m in _NEEDS[_tier(name)])
]


def pytest_collection_modifyitems(items):
  for item in items:
    tier = _tier(pathlib.Path(str(item.fspath)).name)
    if tier:
      item.add_marker(getattr(pytest.mark, tier))
