"""Gradient descent runs on a quadratic: chunks of a jitted ``lax.scan``.

A run is a Python loop over chunks of ``chunk_size`` steps; each chunk is one
call of a jitted function that builds the optimiser inside ``jit`` from a
builder of ``benchmarks.baselines`` (static) and its arguments (traced
arrays: ``(m, M)``, or a table of step sizes) and scans ``chunk_size`` steps
of

.. math::

  g_t = A x_t - b + \\sigma \\xi_t, \\qquad
  (u_t, s_{t+1}) = \\text{opt.update}(g_t, s_t, x_t), \\qquad
  x_{t+1} = x_t + u_t,

recording ``‖x_{t+1} − x*‖`` (and optionally ``f(x_{t+1}) − f*``) after every
step. ``adaptive_fractal_sgd`` gets ``update(g_t, s_t, x_t, value=f(x_t),
grad=g_t, value_fn=f)`` with ``f = problems.loss``, and its counters are
recorded. The compiled function depends only on the builder, the dtype and
the shapes, so every κ, schedule and order of one kind reuses it. A run stops
early once its iterate is inf/NaN (it stays so) or, for an iterations-to-ε
count, once the error is below ε.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
import dataclasses
import functools
import statistics
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import baselines
from benchmarks.quadratic import problems
import fractal_optax

Builder = Callable[..., optax.GradientTransformation]
COUNTERS = ("num_hvps", "num_value_evals", "num_rejected", "num_accepted")


def _adaptive(num_steps: int, m: jax.Array, max_curvature: jax.Array):
  return fractal_optax.adaptive_fractal_sgd(
    num_steps, min_curvature=m, max_curvature=max_curvature
  )


@functools.cache
def fractal_builder(num_steps: int, adaptive: bool = False) -> Builder:
  """``(m, M) -> fractal_sgd(T, m, M)`` (cycled), or with ``adaptive``
  ``adaptive_fractal_sgd(T, min_curvature=m, max_curvature=M)`` (the
  library's defaults otherwise); one object per ``(T, adaptive)``."""
  if adaptive:
    return functools.partial(_adaptive, num_steps)
  return functools.partial(baselines.fractal, num_steps)


def _adaptive_record(state: Any) -> dict[str, jax.Array]:
  """An ``adaptive_fractal_sgd`` state's counters and curvatures, and its
  cost so far in gradient evaluations, ``count + num_value_evals +
  2·num_hvps`` (one HVP costs about two gradients)."""
  out = {k: getattr(state, k) for k in COUNTERS}
  out["evaluations"] = baselines.adaptive_evaluations(state)
  out["max_curvature"] = state.max_curvature
  out["min_curvature"] = state.min_curvature
  return out


def _hyper_dtype(dtype: Any) -> jnp.dtype:
  """Step sizes are float64 for float64 parameters, float32 otherwise."""
  wide = jnp.dtype(dtype) == jnp.float64
  return jnp.dtype(jnp.float64 if wide else jnp.float32)


def state_bytes(state: Any) -> int:
  """Total bytes of the arrays in an optimiser state."""
  return int(sum(np.asarray(leaf).nbytes for leaf in jax.tree.leaves(state)))


@dataclasses.dataclass
class Trajectory:
  """Errors along a run, relative to the initial error.

  Attributes:
    errors: ``(n,)`` float64 ``‖x_t − x*‖/‖x_0 − x*‖``, ``t = 1 … n`` (``n``
      steps run: a run stopped early is shorter than asked).
    losses: ``(n + 1,)`` float64 ``f(x_t) − f*``, ``t = 0 … n``, or None.
    first_nonfinite: first ``t`` (1-based) with a non-finite error, or None.
    first_below: first ``t`` with error ≤ the run's ``stop_below``, or None.
    recorded: name -> ``(n,)`` adaptive counters after each step (see
      ``_adaptive_record``; empty unless ``adaptive``).
  """

  errors: np.ndarray
  losses: np.ndarray | None
  first_nonfinite: int | None
  first_below: int | None
  recorded: dict[str, np.ndarray]

  @property
  def final(self) -> float:
    return float(self.errors[-1])


@functools.partial(jax.jit, static_argnames=("builder",))
def _init(builder: Builder, args: tuple[jax.Array, ...], x: jax.Array) -> Any:
  return builder(*args).init(x)


@functools.partial(
  jax.jit, static_argnames=("builder", "length", "noisy", "loss", "adaptive")
)
def _chunk(
  builder, args, problem, carry, noise_std, *, length, noisy, loss, adaptive
):
  opt = builder(*args)
  value_fn = functools.partial(problems.loss, problem)

  def step(carry, _):
    x, opt_state, key = carry
    g = problems.gradient(problem, x)
    if noisy:
      key, sub = jax.random.split(key)
      noise = noise_std * jax.random.normal(sub, x.shape, noise_std.dtype)
      g = g + noise.astype(g.dtype)
    kw = dict(value=value_fn(x), grad=g, value_fn=value_fn) if adaptive else {}
    updates, opt_state = opt.update(g, opt_state, x, **kw)
    x = optax.apply_updates(x, updates)
    out = {"error": problems.error(problem, x)}
    if loss:
      out["loss"] = problems.excess_loss(problem, x)
    if adaptive:
      out.update(_adaptive_record(opt_state))
    return (x, opt_state, key), out

  return jax.lax.scan(step, carry, length=length)


def _first(mask: np.ndarray) -> int | None:
  hits = np.flatnonzero(mask)
  return int(hits[0]) + 1 if hits.size else None


def run(
  builder: Builder,
  args: tuple[Any, ...],
  problem: problems.Quadratic,
  *,
  num_steps: int,
  chunk_size: int,
  noise_std: float = 0.0,
  seed: int = 0,
  track_loss: bool = False,
  stop_below: float | None = None,
  adaptive: bool = False,
) -> Trajectory:
  """Runs ``num_steps`` steps of ``builder(*args)`` from ``x_0 = 0``.

  Args:
    builder: a hashable function returning the optimiser, e.g.
      ``baselines.heavy_ball`` or ``fractal_builder(T)``.
    args: its arguments, cast to the step-size dtype of the problem
      (``(m, M)``, or ``(step_sizes,)`` for ``baselines.steps``).
    problem: the quadratic (its dtype is the run's dtype).
    num_steps: steps to run (at most; see ``stop_below``).
    chunk_size: steps per jitted call.
    noise_std: standard deviation of the additive gradient noise per
      coordinate (0: exact gradients), drawn in its dtype from ``seed``.
    seed: noise seed.
    track_loss: also record ``f(x_t) − f*``.
    stop_below: stop after the chunk in which the error first drops to this.
    adaptive: pass ``value``, ``grad`` and ``value_fn`` to ``update`` and
      record the counters (for ``fractal_builder(T, adaptive=True)``).

  Returns:
    A :class:`Trajectory` (truncated to ``num_steps``, or to the end of the
    chunk where it stopped).
  """
  dtype = problem.matrix.dtype
  args = tuple(jnp.asarray(a, _hyper_dtype(dtype)) for a in args)
  x = jnp.zeros(problem.rhs.shape, dtype)
  initial_error = float(problems.error(problem, x))
  carry = (x, _init(builder, args, x), jax.random.key(seed))
  noise = jnp.asarray(noise_std, _hyper_dtype(dtype))
  flags = dict(noisy=noise_std > 0, loss=track_loss, adaptive=adaptive)
  chunks, done = [], 0
  while done < num_steps:
    carry, out = _chunk(
      builder, args, problem, carry, noise, length=chunk_size, **flags
    )
    out = jax.device_get(out)
    out["error"] = np.asarray(out["error"], np.float64) / initial_error
    chunks.append(out)
    done += chunk_size
    err = out["error"]
    if not np.isfinite(err[-1]) or (
      stop_below is not None and np.any(err <= stop_below)
    ):
      break
  out = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
  full = out.pop("error")
  first_below = None if stop_below is None else _first(full <= stop_below)
  first_nonfinite = _first(~np.isfinite(full))
  errors = full[:num_steps]
  if first_nonfinite is not None and first_nonfinite <= num_steps:
    # A non-finite iterate stays non-finite: fill the steps not run.
    errors = np.concatenate([errors, np.full(num_steps - errors.size, np.nan)])
  else:
    first_nonfinite = None
  losses = None
  if track_loss:
    initial_loss = float(problems.excess_loss(problem, x))
    losses = np.concatenate([[initial_loss], out.pop("loss")])
    losses = losses.astype(np.float64)[: errors.size + 1]
  recorded = {k: v[: errors.size] for k, v in out.items()}
  return Trajectory(errors, losses, first_nonfinite, first_below, recorded)


def time_per_iteration(
  optimizers: Mapping[str, optax.GradientTransformation],
  problem: problems.Quadratic,
  *,
  num_steps: int,
  repeats: int,
  progress: Callable[[], None] = lambda: None,
) -> dict[str, dict[str, float]]:
  """Median wall time per step of each optimiser's compiled ``lax.scan``.

  Each optimiser gets its own jitted scan of ``num_steps`` steps of
  ``x ← x + opt.update(Ax − b)`` (nothing else: no error is recorded; an
  ``optax.GradientTransformationExtraArgs`` also gets ``value=f(x)``,
  ``grad`` and ``value_fn=f``, whose cost is then part of its time); after
  a compile-and-warm-up call, the optimisers are timed in turn, ``repeats``
  rounds (interleaved, so a load change on the machine hits all of them),
  each call ended by ``block_until_ready``; ``progress`` is called after
  each timed call.

  Returns:
    name -> ``{"seconds_per_step": median wall time, "seconds_per_step_min":
    min, "cpu_seconds_per_step": median process CPU time (all threads; less
    sensitive to other processes on a shared machine), "state_bytes": bytes
    of opt.init(x)}``.
  """
  x0 = jnp.zeros(problem.rhs.shape, problem.matrix.dtype)
  compiled, states = {}, {}
  for name, opt in optimizers.items():

    def scan(x, state, problem, opt=opt):
      value_fn = functools.partial(problems.loss, problem)
      extra = isinstance(opt, optax.GradientTransformationExtraArgs)

      def step(carry, _):
        x, s = carry
        g = problems.gradient(problem, x)
        kw = dict(value=value_fn(x), grad=g, value_fn=value_fn) if extra else {}
        updates, s = opt.update(g, s, x, **kw)
        return (optax.apply_updates(x, updates), s), None

      return jax.lax.scan(step, (x, state), length=num_steps)[0]

    states[name] = opt.init(x0)
    compiled[name] = jax.jit(scan)
    jax.block_until_ready(compiled[name](x0, states[name], problem))
  times = {name: ([], []) for name in optimizers}
  for _ in range(repeats):
    for name, fn in compiled.items():
      start, cpu_start = time.perf_counter(), time.process_time()
      jax.block_until_ready(fn(x0, states[name], problem))
      times[name][0].append((time.perf_counter() - start) / num_steps)
      times[name][1].append((time.process_time() - cpu_start) / num_steps)
      progress()
  return {
    name: {
      "seconds_per_step": statistics.median(wall),
      "seconds_per_step_min": min(wall),
      "cpu_seconds_per_step": statistics.median(cpu),
      "state_bytes": state_bytes(states[name]),
    }
    for name, (wall, cpu) in times.items()
  }
