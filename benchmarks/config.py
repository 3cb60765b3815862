"""Experiment configs: typed ``key=value`` overrides and argument checks.

A config is a frozen dataclass whose ``__post_init__`` checks its fields with
the helpers below, so a bad preset or ``--set`` fails when it is built, with
a message that names the key and the value:

>>> import dataclasses
>>> @dataclasses.dataclass(frozen=True)
... class Config:
...   num_steps: int = 10
...   order: str = "fractal"
...   def __post_init__(self):
...     positive("num_steps", self.num_steps)
...     one_of("order", self.order, ("fractal", "random"))
>>> apply_overrides(Config(), ["num_steps=1e3"]).num_steps
1000
>>> apply_overrides(Config(), ["num_steps=0"])
Traceback (most recent call last):
ValueError: num_steps must be > 0, got num_steps=0.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Collection, Iterable
from typing import Any, TypeVar

from benchmarks import files

ConfigT = TypeVar("ConfigT")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")

# ---------------------------------------------------------------------------
# Checks (call them from a config's __post_init__).
# ---------------------------------------------------------------------------


def positive(name: str, value: Any) -> None:
  """``value > 0`` (every element if a tuple)."""
  for v in value if isinstance(value, (tuple, list)) else (value,):
    if not v > 0:
      raise ValueError(f"{name} must be > 0, got {name}={value!r}.")


def non_negative(name: str, value: Any) -> None:
  """``value >= 0`` (every element if a tuple)."""
  for v in value if isinstance(value, (tuple, list)) else (value,):
    if not v >= 0:
      raise ValueError(f"{name} must be >= 0, got {name}={value!r}.")


def one_of(name: str, value: Any, choices: Collection[Any]) -> None:
  """``value in choices`` (every element if a tuple)."""
  for v in value if isinstance(value, (tuple, list)) else (value,):
    if v not in choices:
      raise ValueError(f"{name} must be one of {sorted(choices)}, got "
                       f"{name}={value!r}.")


def non_empty(name: str, value: Any) -> None:
  """A tuple with at least one element."""
  if not value:
    raise ValueError(f"{name} must not be empty, got {name}={value!r}.")


def require(condition: bool, message: str) -> None:
  """Raises ``ValueError(message)`` unless ``condition`` (relations of keys)."""
  if not condition:
    raise ValueError(message)


# ---------------------------------------------------------------------------
# Overrides.
# ---------------------------------------------------------------------------


def _parse_scalar(key: str, text: str, like: Any) -> Any:
  """Parses ``text`` as the type of ``like`` (literal guess when None)."""
  text = text.strip()
  if like is None:
    if text.lower() in ("none", "null", ""):
      return None
    for kind in (int, float):
      with contextlib.suppress(ValueError):
        return kind(text)
    return text
  if isinstance(like, bool):
    if text.lower() in _TRUE + _FALSE:
      return text.lower() in _TRUE
    raise ValueError(f"--set {key}: expected a boolean, got {text!r}.")
  if isinstance(like, int):
    with contextlib.suppress(ValueError):
      return int(text)
    with contextlib.suppress(ValueError):
      if float(text).is_integer():
        return int(float(text))
    raise ValueError(f"--set {key}: expected an integer, got {text!r}.")
  if isinstance(like, float):
    try:
      return float(text)
    except ValueError:
      raise ValueError(
          f"--set {key}: expected a number, got {text!r}.") from None
  if isinstance(like, str):
    return text
  raise TypeError(f"--set {key}: cannot parse a value for a field of type "
                  f"{type(like).__name__}.")


def parse_value(key: str, text: str, default: Any) -> Any:
  """Parses the override ``text`` of field ``key``, typed by its ``default``.

  Tuples/lists are comma-separated and typed by their first element
  (``"1e-2,3e-3"``); ``None`` defaults accept ``none``, an int, a float or a
  string; booleans accept true/false/yes/no/on/off/1/0.
  """
  if isinstance(default, (tuple, list)):
    like = default[0] if default else None
    items = [t for t in text.split(",") if t.strip()]
    return type(default)(_parse_scalar(key, t, like) for t in items)
  return _parse_scalar(key, text, default)


def apply_overrides(config: ConfigT, overrides: Iterable[str]) -> ConfigT:
  """``config`` with ``"key=value"`` overrides applied, typed and checked.

  Args:
    config: a frozen dataclass instance.
    overrides: strings ``"key=value"`` (``-`` in a key reads as ``_``).

  Returns:
    A new config (``dataclasses.replace``, so ``__post_init__`` checks it).

  Raises:
    ValueError: malformed override, unknown key, a value of the wrong type,
      or a value the config's checks refuse.
  """
  if not dataclasses.is_dataclass(config) or isinstance(config, type):
    raise TypeError(f"config must be a dataclass instance, got {config=}.")
  names = [f.name for f in dataclasses.fields(config)]
  changes = {}
  for item in overrides:
    key, sep, text = item.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key:
      raise ValueError(f"Overrides must look like key=value, got {item!r}.")
    if key not in names:
      raise ValueError(f"Unknown config key {key!r} in {item!r}; valid keys: "
                       f"{', '.join(sorted(names))}.")
    changes[key] = parse_value(key, text, getattr(config, key))
  return dataclasses.replace(config, **changes)


def to_dict(config: Any) -> dict[str, Any]:
  """A JSON-ready dict of a dataclass config."""
  return files.to_jsonable(dataclasses.asdict(config))
