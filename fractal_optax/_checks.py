"""Eager argument checks shared by the public functions.

Every check raises at call time with a message that names the caller's
argument and the value it passed. Values that are traced by ``jax.jit`` cannot
be inspected; their checks are skipped (the public docstrings say so).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import jax
import numpy as np


def is_traced(value: Any) -> bool:
  """True if ``value`` is an abstract JAX value (a tracer) with no content."""
  return isinstance(value, jax.core.Tracer)


def check_num_steps(num_steps: Any, name: str = "num_steps") -> int:
  """Returns ``num_steps`` as a Python int after checking it is a positive int."""
  if isinstance(num_steps, (bool, np.bool_)) or not isinstance(
      num_steps, numbers.Integral
  ):
    raise TypeError(
        f"{name} must be a positive Python int (it fixes array shapes and must"
        f" be static under jit), got {name}={num_steps!r} of type"
        f" {type(num_steps).__name__}."
    )
  num_steps = int(num_steps)
  if num_steps < 1:
    raise ValueError(f"{name} must be at least 1, got {name}={num_steps}.")
  return num_steps


def check_positive_scalar(value: Any, name: str) -> float | None:
  """Checks a concrete scalar is finite and > 0; returns it as a float.

  Returns None (and checks only the type) when ``value`` is traced.
  """
  if isinstance(value, (bool, np.bool_)) or value is None or isinstance(
      value, (str, bytes)
  ):
    raise TypeError(
        f"{name} must be a positive real number, got {name}={value!r}."
    )
  if is_traced(value):
    if not np.issubdtype(value.dtype, np.number):
      raise TypeError(f"{name} must be numeric, got dtype {value.dtype}.")
    return None
  try:
    array = np.asarray(value)
  except Exception as e:  # pylint: disable=broad-except
    raise TypeError(
        f"{name} must be a positive real number, got {name}={value!r}."
    ) from e
  if array.ndim != 0:
    raise ValueError(
        f"{name} must be a scalar, got {name} with shape {array.shape}."
    )
  if not (np.issubdtype(array.dtype, np.integer)
          or np.issubdtype(array.dtype, np.floating)):
    raise TypeError(
        f"{name} must be a positive real number, got {name}={value!r}."
    )
  as_float = float(array)
  if not math.isfinite(as_float) or as_float <= 0.0:
    raise ValueError(
        f"{name} must be finite and > 0, got {name}={value!r}."
    )
  return as_float


def check_curvatures(min_curvature: Any, max_curvature: Any) -> None:
  """Checks ``0 < min_curvature <= max_curvature`` where the values are known."""
  low = check_positive_scalar(min_curvature, "min_curvature")
  high = check_positive_scalar(max_curvature, "max_curvature")
  if low is not None and high is not None and low > high:
    raise ValueError(
        "min_curvature must not exceed max_curvature, got"
        f" min_curvature={min_curvature!r} > max_curvature={max_curvature!r}."
    )
