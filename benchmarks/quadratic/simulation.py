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

recording ``‖x_{t+1} − x*‖`` (and optionally ``f(x_{t+1}) − f*``, and
scalars of the optimiser state) after every step. Optimisers that test the
loss (``fractal_optax.adaptive_fractal_sgd``) get ``update(g_t, s_t, x_t,
value=f(x_t), grad=g_t, value_fn=f)`` with ``f = problems.loss``. The
compiled function depends only on the builder, the dtype and the shapes, so
every κ, schedule and order of one kind reuses it.
A run stops early once its iterate is inf/NaN (it stays so) or, for an
iterations-to-ε count, once the error is below ε.
"""

from __future__ import annotations

import dataclasses
import functools
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

import fractal_optax
from benchmarks import baselines
from benchmarks.quadratic import problems

Builder = Callable[..., optax.GradientTransformation]


def _adaptive(num_steps: int, m: jax.Array, max_curvature_guess: jax.Array
              ) -> optax.GradientTransformationExtraArgs:
  return fractal_optax.adaptive_fractal_sgd(
      num_steps, min_curvature=m, max_curvature=max_curvature_guess)


@functools.lru_cache(maxsize=None)
def adaptive_builder(num_steps: int) -> Builder:
  """``(m, M_guess) -> adaptive_fractal_sgd(T, min_curvature=m,
  max_curvature=M_guess)`` (the library's defaults otherwise); one object
  per ``T``. Run it with ``simulation.run(..., with_value=True)``."""
  return functools.partial(_adaptive, num_steps)


def adaptive_cost(state: Any) -> dict[str, jax.Array]:
  """Per-step record of an ``adaptive_fractal_sgd`` state (for ``run``).

  ``evaluations`` is the cost so far in gradient evaluations, ``count +
  num_value_evals + 2·num_hvps`` (one HVP costs about two gradients).
  """
  return {"evaluations": state.count + state.num_value_evals
                         + 2 * state.num_hvps,
          "num_hvps": state.num_hvps,
          "num_value_evals": state.num_value_evals,
          "num_rejected": state.num_rejected,
          "num_accepted": state.num_accepted,
          "max_curvature": state.max_curvature,
          "min_curvature": state.min_curvature}


@functools.lru_cache(maxsize=None)
def fractal_builder(num_steps: int, cycle: bool = True) -> Builder:
  """``(m, M) -> baselines.fractal(T, m, M)``, one object per ``(T, cycle)``."""
  return functools.partial(baselines.fractal, num_steps, cycle=cycle)


def hyper_dtype(dtype: Any) -> jnp.dtype:
  """Step sizes are float64 for float64 parameters, float32 otherwise."""
  return jnp.dtype(jnp.float64 if jnp.dtype(dtype) == jnp.float64
                   else jnp.float32)


def state_bytes(state: Any) -> int:
  """Total bytes of the arrays in an optimiser state."""
  return int(sum(np.asarray(leaf).nbytes for leaf in jax.tree.leaves(state)))


@dataclasses.dataclass
class Trajectory:
  """Errors along a run, relative to the initial error.

  Attributes:
    errors: ``(n,)`` float64, ``‖x_t − x*‖/‖x_0 − x*‖`` for ``t = 1 … n``
      (``n`` = steps run; a run stopped early is shorter than asked).
    losses: ``(n + 1,)`` float64 ``f(x_t) − f*`` for ``t = 0 … n`` when
      tracked, else None.
    first_nonfinite: first ``t`` (1-based) with a non-finite error, or None.
    first_below: first ``t`` with error ≤ the run's ``stop_below``, or None.
    recorded: name -> ``(n,)`` array of the run's ``record(state)`` after
      each step (empty without ``record``).
  """

  errors: np.ndarray
  losses: np.ndarray | None
  first_nonfinite: int | None
  first_below: int | None
  recorded: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

  @property
  def final(self) -> float:
    return float(self.errors[-1])


@functools.partial(jax.jit, static_argnames=("builder",))
def _init(builder: Builder, args: tuple[jax.Array, ...], x: jax.Array) -> Any:
  return builder(*args).init(x)


@functools.partial(
    jax.jit, static_argnames=("builder", "num_steps", "noisy", "track_loss",
                              "with_value", "record"))
def _chunk(builder: Builder, args: tuple[jax.Array, ...],
           problem: problems.Quadratic, carry: tuple[Any, ...],
           noise_std: jax.Array, *, num_steps: int, noisy: bool,
           track_loss: bool, with_value: bool = False,
           record: Callable[[Any], dict[str, jax.Array]] | None = None
           ) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
  opt = builder(*args)
  value_fn = functools.partial(problems.loss, problem)

  def step(carry, _):
    x, opt_state, key = carry
    g = problems.gradient(problem, x)
    if noisy:
      key, sub = jax.random.split(key)
      g = g + (noise_std * jax.random.normal(sub, x.shape, noise_std.dtype)
               ).astype(g.dtype)
    if with_value:
      updates, opt_state = opt.update(g, opt_state, x, value=value_fn(x),
                                      grad=g, value_fn=value_fn)
    else:
      updates, opt_state = opt.update(g, opt_state, x)
    x = optax.apply_updates(x, updates)
    out = (problems.error(problem, x),)
    if track_loss:
      out += (problems.excess_loss(problem, x),)
    if record is not None:
      out += (record(opt_state),)
    return (x, opt_state, key), out

  return jax.lax.scan(step, carry, length=num_steps)


def run(builder: Builder, args: tuple[Any, ...], problem: problems.Quadratic,
        *, num_steps: int, chunk_size: int,
        noise_std: float = 0.0, seed: int = 0, track_loss: bool = False,
        stop_below: float | None = None, with_value: bool = False,
        record: Callable[[Any], dict[str, jax.Array]] | None = None
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
      coordinate (0: exact gradients; the noise is drawn in the gradient's
      dtype from ``seed``).
    seed: noise seed.
    track_loss: also record ``f(x_t) − f*``.
    stop_below: stop after the chunk in which the error first drops to this.
    with_value: pass ``value``, ``grad`` and ``value_fn`` (``problems.loss``)
      to ``update`` (for ``adaptive_builder``).
    record: a hashable function of the optimiser state returning a dict of
      scalars, recorded after every step (e.g. :func:`adaptive_cost`).

  Returns:
    A :class:`Trajectory` (truncated to ``num_steps``, or to the end of the
    chunk where it stopped).
  """
  dtype = problem.matrix.dtype
  args = tuple(jnp.asarray(a, hyper_dtype(dtype)) for a in args)
  x = jnp.zeros(problem.rhs.shape, dtype)
  initial_error = float(problems.error(problem, x))
  carry = (x, _init(builder, args, x), jax.random.key(seed))
  noisy = noise_std > 0
  noise = jnp.asarray(noise_std, hyper_dtype(dtype))
  errors, losses, recorded = [], [], []
  first_nonfinite = first_below = None
  done = 0
  while done < num_steps:
    carry, out = _chunk(builder, args, problem, carry, noise,
                        num_steps=chunk_size, noisy=noisy,
                        track_loss=track_loss, with_value=with_value,
                        record=record)
    err = np.asarray(out[0], np.float64) / initial_error
    errors.append(err)
    if track_loss:
      losses.append(np.asarray(out[1], np.float64))
    if record is not None:
      recorded.append(jax.tree.map(np.asarray, out[-1]))
    bad = np.flatnonzero(~np.isfinite(err))
    if bad.size and first_nonfinite is None:
      first_nonfinite = done + int(bad[0]) + 1
    if stop_below is not None:
      hit = np.flatnonzero(err <= stop_below)
      if hit.size:
        first_below = done + int(hit[0]) + 1
    done += chunk_size
    if first_below is not None or not np.isfinite(err[-1]):
      break
  errors = np.concatenate(errors)[:num_steps]
  if first_nonfinite is not None and first_nonfinite <= num_steps:
    # A non-finite iterate stays non-finite: fill the steps not run.
    errors = np.concatenate(
        [errors, np.full(num_steps - errors.size, np.nan)])[:num_steps]
  elif first_nonfinite is not None:
    first_nonfinite = None
  loss_array = None
  if track_loss:
    initial_loss = float(problems.excess_loss(problem, x))
    loss_array = np.concatenate([[initial_loss], *losses])[:errors.size + 1]
  recorded = {k: np.concatenate([r[k] for r in recorded])[:errors.size]
              for k in (recorded[0] if recorded else {})}
  return Trajectory(errors, loss_array, first_nonfinite, first_below,
                    recorded)


def time_per_iteration(
    optimizers_by_name: Mapping[str, optax.GradientTransformation],
    problem: problems.Quadratic, *, num_steps: int, repeats: int,
    progress: Callable[[], None] | None = None) -> dict[str, dict[str, float]]:
  """Median wall time per step of each optimiser's compiled ``lax.scan``.

  Each optimiser gets its own jitted scan of ``num_steps`` steps of
  ``x ← x + opt.update(Ax − b)`` (nothing else: no error is recorded); after
  a compile-and-warm-up call, the optimisers are timed in turn, ``repeats``
  rounds (interleaved, so a load change on the machine hits all of them),
  each call ended by ``block_until_ready``.

  Args:
    optimizers_by_name: name -> optimiser.
    problem: the quadratic.
    num_steps: steps per timed call.
    repeats: timed rounds.
    progress: called after each timed call (a progress bar's update).

  Returns:
    name -> ``{"seconds_per_step": median wall time, "seconds_per_step_min":
    min, "cpu_seconds_per_step": median process CPU time (all threads; less
    sensitive to other processes on a shared machine), "state_bytes": bytes
    of opt.init(x)}``.
  """
  x0 = jnp.zeros(problem.rhs.shape, problem.matrix.dtype)
  compiled, states = {}, {}
  for name, opt in optimizers_by_name.items():

    def scan(x, state, problem, opt=opt):
      def step(carry, _):
        x, s = carry
        updates, s = opt.update(problems.gradient(problem, x), s, x)
        return (optax.apply_updates(x, updates), s), None
      return jax.lax.scan(step, (x, state), length=num_steps)[0]

    states[name] = opt.init(x0)
    compiled[name] = jax.jit(scan)
    jax.block_until_ready(compiled[name](x0, states[name], problem))
  times = {name: [] for name in optimizers_by_name}
  cpu_times = {name: [] for name in optimizers_by_name}
  for _ in range(repeats):
    for name, fn in compiled.items():
      start, cpu_start = time.perf_counter(), time.process_time()
      jax.block_until_ready(fn(x0, states[name], problem))
      times[name].append((time.perf_counter() - start) / num_steps)
      cpu_times[name].append((time.process_time() - cpu_start) / num_steps)
      if progress is not None:
        progress()
  return {
      name: {"seconds_per_step": statistics.median(t),
             "seconds_per_step_min": min(t),
             "cpu_seconds_per_step": statistics.median(cpu_times[name]),
             "state_bytes": state_bytes(states[name])}
      for name, t in times.items()
  }
