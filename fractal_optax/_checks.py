"""Eager argument checks shared by the public functions.

Every check raises at call time with a message that names the caller's
argument and the value it passed. Values that are traced by ``jax.jit`` cannot
be inspected; their checks are skipped (the public docstrings say so).
"""

from __future__ import annotations

import math
import numbers
import operator
from typing import Any

import jax
import jax.core
import jax.numpy as jnp
import numpy as np

# The largest cycle length ``T`` any public function accepts. A length-T
# schedule holds a few (T,) float64/int64 arrays while it is built: at 2**24
# that is about 130 MB each and well under a second of host time.
MAX_NUM_STEPS = 2**24


def is_traced(value: Any) -> bool:
  """True if ``value`` is an abstract JAX value (a tracer) with no content."""
  return isinstance(value, jax.core.Tracer)


def check_num_steps(
  num_steps: Any,
  name: str = "num_steps",
  maximum: int | None = MAX_NUM_STEPS,
  minimum: int = 1,
) -> int:
  """Returns ``num_steps`` as a Python int after checking
  ``minimum <= it <= maximum``.

  Python and numpy integers and concrete 0-d integer arrays are accepted;
  bools, floats and traced values are not (``num_steps`` fixes array shapes).
  """
  if is_traced(num_steps):
    raise TypeError(
      f"{name} must be a concrete Python int (it fixes array shapes and must"
      f" be static under jit), got a traced {name}."
    )
  value = None
  if not _is_bool(num_steps):
    try:
      value = operator.index(num_steps)
    except TypeError:
      pass
  if value is None:
    raise TypeError(
      f"{name} must be a Python int >= {minimum} (it fixes array shapes and"
      f" must be static under jit), got {name}={num_steps!r} of type"
      f" {type(num_steps).__name__}."
    )
  if value < minimum:
    raise ValueError(
      f"{name} must be at least {minimum}, got {name}={_short(value)}."
    )
  if maximum is not None and value > maximum:
    raise ValueError(
      f"{name} must be at most {maximum} (2**{maximum.bit_length() - 1}),"
      f" got {name}={_short(value)}."
    )
  return value


def _is_bool(value: Any) -> bool:
  """True for Python, numpy and JAX bools (which ``operator.index`` takes)."""
  return isinstance(value, (bool, np.bool_)) or (
    getattr(value, "dtype", None) == np.bool_
  )


def _short(value: int) -> str:
  """An int for a message: digits, or their count when there are many."""
  text = str(value)
  return text if len(text) <= 24 else f"<a {len(text)}-digit int>"


def is_real_dtype(dtype: Any) -> bool:
  """True for the integer and floating dtypes JAX knows (bfloat16 included)."""
  if dtype == np.bool_:
    return False
  return bool(
    jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.floating)
  )


def check_positive_scalar(value: Any, name: str) -> float | None:
  """Checks a concrete scalar is finite and > 0; returns it as a float.

  Accepts Python numbers and 0-d numpy/JAX arrays of any integer or floating
  dtype JAX supports (bfloat16 and float16 included). Returns None (and
  checks only the dtype) when ``value`` is traced.
  """
  if (
    isinstance(value, (bool, np.bool_))
    or value is None
    or isinstance(value, (str, bytes))
  ):
    raise TypeError(
      f"{name} must be a positive real number, got {name}={value!r}."
    )
  if is_traced(value):
    if value.ndim != 0:
      raise ValueError(
        f"{name} must be a scalar, got a traced {name} with shape"
        f" {value.shape}."
      )
    if not is_real_dtype(value.dtype):
      raise TypeError(
        f"{name} must be a real number, got a traced {name} of dtype"
        f" {value.dtype}."
      )
    return None
  if isinstance(value, numbers.Integral) and not isinstance(value, np.generic):
    # Python ints of any size: numpy would make an object array of big ones.
    try:
      as_float = float(value)
    except OverflowError:
      raise ValueError(
        f"{name} must be finite and > 0 (within float64's range), got a"
        f" {len(str(value))}-digit {name}."
      ) from None
  else:
    try:
      array = np.asarray(value)
    except Exception as e:
      raise TypeError(
        f"{name} must be a positive real number, got {name}={value!r}."
      ) from e
    if array.ndim != 0:
      raise ValueError(
        f"{name} must be a scalar, got {name} with shape {array.shape}."
      )
    if not is_real_dtype(array.dtype):
      raise TypeError(
        f"{name} must be a positive real number, got {name}={value!r}"
        f" of dtype {array.dtype}."
      )
    if array.dtype.itemsize > 8:  # float128 / longdouble.
      raise TypeError(
        f"{name} has dtype {array.dtype}, which JAX does not support; pass"
        f" a float64 or Python float, got {name}={value!r}."
      )
    as_float = float(array)
  if not math.isfinite(as_float) or as_float <= 0.0:
    raise ValueError(f"{name} must be finite and > 0, got {name}={value!r}.")
  return as_float


def check_concrete(value: Any, name: str, function: str) -> None:
  """Raises TypeError if ``value`` is traced: ``function`` needs its value."""
  if is_traced(value):
    raise TypeError(
      f"{function} needs a concrete {name} (a number, not a traced value);"
      " call it outside jit."
    )


def check_curvatures(
  min_curvature: Any, max_curvature: Any
) -> tuple[float | None, float | None]:
  """Checks ``0 < min_curvature <= max_curvature`` for values that are known.

  Returns both as Python floats, ``None`` for a traced one.
  """
  low = check_positive_scalar(min_curvature, "min_curvature")
  high = check_positive_scalar(max_curvature, "max_curvature")
  if low is not None and high is not None and low > high:
    raise ValueError(
      "min_curvature must not exceed max_curvature, got"
      f" min_curvature={min_curvature!r} > max_curvature={max_curvature!r}."
    )
  return low, high


def float_dtype(*values: Any) -> np.dtype:
  """The floating dtype JAX computes in for these values (default for ints)."""
  return np.dtype(jnp.result_type(float, *values))


def check_representable(
  values: np.ndarray,
  dtype: Any,
  names: str,
) -> np.ndarray:
  """Casts float64 ``values`` (all > 0) to ``dtype``, or raises ValueError.

  A value is representable when it is finite and at least the dtype's
  smallest normal number after rounding (subnormals lose precision).
  ``names`` describes the arguments responsible, for the message.
  """
  info = jnp.finfo(dtype)
  with np.errstate(over="ignore", under="ignore", invalid="ignore"):
    cast = np.asarray(values, dtype=dtype)
  if values.size == 0:
    return cast
  largest, smallest = float(np.max(values)), float(np.min(values))
  cast_largest, cast_smallest = float(np.max(cast)), float(np.min(cast))
  if not (math.isfinite(largest) and math.isfinite(cast_largest)):
    shown = f"{largest:.4g}" if math.isfinite(largest) else "beyond 1.8e308"
    raise ValueError(
      f"{names}: the largest step size, {shown}, overflows"
      f" {np.dtype(dtype).name} (largest finite {float(info.max):.4g}); use"
      " float64 curvatures with jax_enable_x64, or rescale the problem."
    )
  if smallest < float(info.tiny) or not cast_smallest >= float(info.tiny):
    raise ValueError(
      f"{names}: the smallest step size, {smallest:.4g}, underflows"
      f" {np.dtype(dtype).name} (smallest normal {float(info.tiny):.4g});"
      " use float64 curvatures with jax_enable_x64, or rescale the problem."
    )
  return cast
