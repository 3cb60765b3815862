"""Experiment configs: typed ``key=value`` overrides and argument checks.

A config is a frozen dataclass whose ``__post_init__`` checks its fields with
the helpers below (tuples element-wise), so a bad preset or ``--set`` fails
when it is built, with a message that names the key and the value:

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

from collections.abc import Callable, Collection, Iterable
import contextlib
import dataclasses
from typing import Any

from benchmarks import files

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _check(name: str, value: Any, ok: Callable[[Any], bool], what: str) -> None:
  for v in value if isinstance(value, (tuple, list)) else (value,):
    if not ok(v):
      raise ValueError(f"{name} must be {what}, got {name}={value!r}.")


def positive(name: str, value: Any) -> None:
  """``value > 0``."""
  _check(name, value, lambda v: v > 0, "> 0")


def non_negative(name: str, value: Any) -> None:
  """``value >= 0``."""
  _check(name, value, lambda v: v >= 0, ">= 0")


def one_of(name: str, value: Any, choices: Collection[Any]) -> None:
  """``value in choices``."""
  _check(name, value, lambda v: v in choices, f"one of {sorted(choices)}")


def non_empty(name: str, value: Any) -> None:
  """A tuple with at least one element."""
  require(bool(value), f"{name} must not be empty, got {name}={value!r}.")


def require(condition: bool, message: str) -> None:
  """Raises ``ValueError(message)`` unless ``condition`` (relations of keys)."""
  if not condition:
    raise ValueError(message)


def _parse_scalar(key: str, text: str, like: Any) -> Any:
  """Parses ``text`` as the type of ``like`` (a literal guess when None)."""
  text = text.strip()
  if like is None:
    if text.lower() in ("none", "null", ""):
      return None
    for kind in (int, float):
      with contextlib.suppress(ValueError):
        return kind(text)
    return text
  if isinstance(like, bool):
    require(
      text.lower() in _TRUE + _FALSE,
      f"--set {key}: expected a boolean, got {text!r}.",
    )
    return text.lower() in _TRUE
  if isinstance(like, (int, float)):
    kind = "an integer" if isinstance(like, int) else "a number"
    with contextlib.suppress(ValueError):
      return int(text) if isinstance(like, int) else float(text)
    with contextlib.suppress(ValueError):
      if isinstance(like, int) and float(text).is_integer():
        return int(float(text))
    raise ValueError(f"--set {key}: expected {kind}, got {text!r}.")
  if isinstance(like, str):
    return text
  raise TypeError(
    f"--set {key}: cannot parse a value for a field of type "
    f"{type(like).__name__}."
  )


def _like_annotation(annotation: Any) -> Any:
  """A value of the type an ``X | None`` field's annotation names (its
  text, under ``from __future__ import annotations``), or None if unknown."""
  words = str(annotation).replace("|", " ").replace(",", " ").split()
  for name, like in (("bool", False), ("int", 0), ("float", 0.0), ("str", "")):
    if name in words:
      return like
  return None


def parse_value(
  key: str, text: str, default: Any, annotation: Any = None
) -> Any:
  """Parses ``text`` for field ``key`` as the type of its ``default``.

  Tuples are comma-separated; booleans true/false/yes/no/on/off/1/0. A
  field whose default or ``annotation`` allows None takes ``none``; a
  ``None`` default otherwise a value of the type its annotation names
  (``float | None``: a number), else a number or a string.
  """
  optional = default is None or "None" in str(annotation).split()
  if optional and text.strip().lower() in ("none", "null", ""):
    return None
  if default is None:
    default = _like_annotation(annotation)
  if isinstance(default, (tuple, list)):
    like = default[0] if default else None
    items = [t for t in text.split(",") if t.strip()]
    return type(default)(_parse_scalar(key, t, like) for t in items)
  return _parse_scalar(key, text, default)


def apply_overrides(config: Any, overrides: Iterable[str]) -> Any:
  """``config`` with ``"key=value"`` overrides (``-`` in a key reads as ``_``).

  Raises ``ValueError`` for a malformed override, an unknown key, a value of
  the wrong type, or one the config's ``__post_init__`` refuses.
  """
  if not dataclasses.is_dataclass(config) or isinstance(config, type):
    raise TypeError(f"config must be a dataclass instance, got {config=}.")
  annotations = {f.name: f.type for f in dataclasses.fields(config)}
  names = list(annotations)
  changes = {}
  for item in overrides:
    key, sep, text = item.partition("=")
    key = key.strip().replace("-", "_")
    require(
      bool(sep and key), f"Overrides must look like key=value, got {item!r}."
    )
    require(
      key in names,
      f"Unknown config key {key!r} in {item!r}; valid "
      f"keys: {', '.join(sorted(names))}.",
    )
    changes[key] = parse_value(
      key, text, getattr(config, key), annotations[key]
    )
  return dataclasses.replace(config, **changes)


def to_dict(config: Any) -> dict[str, Any]:
  """A JSON-ready dict of a dataclass config."""
  return files.to_jsonable(dataclasses.asdict(config))
