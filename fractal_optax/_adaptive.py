"""An adaptive fractal Chebyshev optimiser that measures its own curvature."""

from __future__ import annotations

from collections.abc import Callable
import inspect
import math
import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from fractal_optax import _checks
from fractal_optax._curvature import _float_dtype
from fractal_optax._curvature import _lanczos_top_impl
from fractal_optax._curvature import _norm_scale
from fractal_optax._curvature import _rounding_allowance
from fractal_optax._schedule import fractal_chebyshev_step_sizes

__all__ = [
  "ScaleByAdaptiveFractalState",
  "adaptive_fractal_sgd",
  "scale_by_adaptive_fractal",
]

# Relative safety margin on every measured M (over-estimating M costs
# sqrt(1 + margin) in speed, under-estimating it costs a rejected cycle).
_MARGIN = 0.05
# A rejected cycle multiplies m_eff by _RAISE (up to M/2); an accepted cycle
# divides it by _RELAX, down to the floor m.
_RAISE = 4.0
_RELAX = 3.0
# The first M is measured by at least _INIT_MIN_HVPS Lanczos steps, then until
# the top Ritz value's residual is at most _INIT_RTOL of it (or num_init_hvps
# steps).
_INIT_MIN_HVPS = 3
_INIT_RTOL = 0.1
# The first cycle is built for κ_eff = min(M/m, _FIRST_KAPPA) (docstring).
_FIRST_KAPPA = 16.0
# An accepted cycle's power step lowers M only to below _LOWER · M: a cycle of
# T steps amplifies curvature a fraction δ above its M by about cosh(2T√δ), so
# a slightly low M costs far more than a slightly high one saves.
_LOWER = 0.9
# A cycle end is accepted if its loss exceeds the anchor's by at most _SLACK
# units of the dtype's epsilon (relative): the rounding of the loss itself.
_SLACK = 8.0


class ScaleByAdaptiveFractalState(NamedTuple):
  """State of :func:`scale_by_adaptive_fractal`.

  Two parameter-sized vectors (``anchor`` and ``grad``); everything else is a
  scalar.

  Attributes:
    count: updates so far (int32, saturating).
    position: index of the next update in the current cycle, ``0 … T-1``.
    anchor: the parameters at the start of the current cycle (the last
      accepted cycle end). Parameter-sized vector 1.
    anchor_value: the loss at ``anchor``.
    grad: the power-iteration direction (unit norm), warm-started across
      cycles. It is *not* a gradient: it is named ``grad`` only so that
      ``optax.value_and_grad_from_state`` finds the field it needs; ``value``
      is always ``+inf``, so that helper always evaluates ``value_fn``.
      Parameter-sized vector 2.
    value: always ``+inf`` (see ``grad``).
    max_curvature: ``M``, the current upper curvature bound (0 before the
      first update).
    min_curvature: ``m_eff >= m``, the lower end of the interval the current
      cycle's schedule is built for.
    restarting: whether the last update rejected a cycle (it went back to
      ``anchor`` and, when that step is finite, took the first step from it).
    retrying: whether the current cycle repairs a rejected one (its
      acceptance keeps ``m_eff`` instead of relaxing it).
    pending: whether the last update proposed a cycle end (this update tests
      it on its ``value``).
    num_accepted: accepted cycles.
    num_rejected: rejected cycles (the parameters went back to ``anchor``).
    num_hvps: Hessian-vector products spent (one costs about two gradients).
    num_value_evals: extra ``value_fn`` evaluations spent.
    level: the current cycle's length is ``T`` halved (rounding up)
      ``level`` times: the shortest of ``T, ⌈T/2⌉, …`` (down to 4-7) that is
      at least ``√(M/m_eff)`` (``T`` if none is).
    step_size: the step size η of the update that left this state (after a
      rejection, the first step of the repaired cycle from the anchor; 0 if
      that update returned the anchor itself), for logging.
  """

  count: jax.Array
  position: jax.Array
  anchor: optax.Params
  anchor_value: jax.Array
  grad: optax.Updates
  value: jax.Array
  max_curvature: jax.Array
  min_curvature: jax.Array
  restarting: jax.Array
  retrying: jax.Array
  pending: jax.Array
  num_accepted: jax.Array
  num_rejected: jax.Array
  num_hvps: jax.Array
  num_value_evals: jax.Array
  level: jax.Array
  step_size: jax.Array


def _check_optional_positive(value: Any, name: str) -> float | None:
  if value is None:
    return None
  return _checks.check_positive_scalar(value, name)


def _fn_kwargs(
  value_fn: Callable[..., Any], extra_args: dict[str, Any]
) -> dict[str, Any]:
  """The extra arguments that ``value_fn`` accepts (all if it takes **kw)."""
  if not extra_args:
    return {}
  try:
    parameters = inspect.signature(value_fn).parameters
  except (TypeError, ValueError):
    return dict(extra_args)
  if any(p.kind == p.VAR_KEYWORD for p in parameters.values()):
    return dict(extra_args)
  return {k: v for k, v in extra_args.items() if k in parameters}


def _abs_maxima(tree: Any) -> list[jax.Array]:
  """``max |x|`` of each inexact leaf (0 for an empty one)."""
  return [
    jnp.max(jnp.abs(x), initial=0)
    for x in jax.tree_util.tree_leaves(tree)
    if jnp.issubdtype(jnp.result_type(x), jnp.inexact)
  ]


def _all_finite(tree: Any) -> jax.Array:
  """Whether every float entry of ``tree`` is finite.

  ``max |x|`` is finite exactly when every entry is (a NaN propagates through
  ``max``, an inf is its own maximum): one float reduction per leaf, which
  XLA:CPU runs several times faster than ``all(isfinite(x))``'s boolean one
  (about 30 against 110 µs for 2^18 entries).
  """
  leaves = [jnp.isfinite(m) for m in _abs_maxima(tree)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


def _check_real(tree: Any, name: str) -> None:
  """Raises if a leaf of ``tree`` is complex (the curvature is of a real
  loss of real parameters)."""
  for x in jax.tree_util.tree_leaves(tree):
    if jnp.iscomplexobj(x):
      raise TypeError(
        f"{name} must be real, got a leaf of dtype {jnp.result_type(x)} and "
        f"shape {jnp.shape(x)}."
      )


def _check_like(
  tree: Any, params: Any, name: str, dtypes: bool = False
) -> None:
  """Raises unless ``tree`` has the structure and leaf shapes (and, with
  ``dtypes``, the leaf dtypes) of ``params``."""
  shapes = lambda t: [jnp.shape(x) for x in jax.tree_util.tree_leaves(t)]
  structure = jax.tree_util.tree_structure
  if structure(tree) != structure(params) or shapes(tree) != shapes(params):
    raise ValueError(
      f"{name} must have the structure and shapes of params, got "
      f"{jax.tree_util.tree_map(jnp.shape, tree)} for params "
      f"{jax.tree_util.tree_map(jnp.shape, params)}."
    )
  kinds = lambda t: [jnp.result_type(x) for x in jax.tree_util.tree_leaves(t)]
  if dtypes and kinds(tree) != kinds(params):
    raise TypeError(
      f"{name} must have the dtypes of params, got "
      f"{[str(k) for k in kinds(tree)]} for params "
      f"{[str(k) for k in kinds(params)]}."
    )


def _add(count: jax.Array, increment: jax.typing.ArrayLike) -> jax.Array:
  """``count + increment`` (``increment ≥ 0``), saturating at the maximum of
  ``count``'s integer dtype, as ``optax.safe_increment`` does for ``count``."""
  count = jnp.asarray(count)
  increment = jnp.asarray(increment).astype(count.dtype)
  top = jnp.iinfo(count.dtype).max
  return jnp.where(count > top - increment, top, count + increment)


def _cond(pred: Any, true_fn: Callable, false_fn: Callable, operand: Any):
  """``jax.lax.cond``, or without jit (a concrete ``pred``) only the branch
  taken: an eager ``lax.cond`` traces and compiles both at every call."""
  if not _checks.is_traced(pred):
    return (true_fn if bool(pred) else false_fn)(operand)
  return jax.lax.cond(pred, true_fn, false_fn, operand)


def _is_float(x: Any) -> bool:
  return jnp.issubdtype(jnp.result_type(x), jnp.floating)


def _tree_vdot(a: Any, b: Any, dtype) -> jax.Array:
  return sum(
    (
      jnp.vdot(x.astype(dtype), y.astype(dtype))
      for x, y in zip(
        jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True
      )
    ),
    jnp.zeros((), dtype),
  )


def _tree_norm(tree: Any, dtype) -> jax.Array:
  """``‖tree‖₂`` in ``dtype`` without overflow or underflow of the squares
  (scaled by a power of two: ``sqrt(⟨tree, tree⟩)`` bit for bit where that is
  representable)."""
  leaves = [m.astype(dtype) for m in _abs_maxima(tree)]
  big = jnp.max(jnp.stack(leaves)) if leaves else jnp.zeros((), dtype)
  scale = _norm_scale(big, dtype)
  scaled = _tree_scale(tree, 1 / scale)
  return jnp.sqrt(_tree_vdot(scaled, scaled, dtype)) * scale


def _tree_scale(tree: Any, s: jax.typing.ArrayLike) -> Any:
  return jax.tree_util.tree_map(lambda x: (x * s).astype(x.dtype), tree)


def _unit_or(
  tree: Any, fallback: Any, dtype, allowed: jax.Array | bool = True
) -> tuple[Any, jax.Array, jax.Array]:
  """``tree / ‖tree‖`` where ``allowed`` and that norm is finite and positive,
  else ``fallback`` (same structure); also the norm and whether it was used."""
  norm = _tree_norm(tree, dtype)
  use = allowed & jnp.isfinite(norm) & (norm > 0)
  unit = jax.tree_util.tree_map(
    lambda x, f: jnp.where(use, x / jnp.where(use, norm, 1.0), f).astype(
      f.dtype
    ),
    tree,
    fallback,
  )
  return unit, norm, use


def _float_part(tree: Any) -> Any:
  """Zeros in place of non-float leaves (they are not differentiated; the
  gradient of an integer leaf is float0, on which no arithmetic runs)."""

  def part(x):
    if _is_float(x):
      return x
    if jnp.result_type(x) == jax.dtypes.float0:
      return jnp.zeros(jnp.shape(x), jnp.int32)
    return jnp.zeros_like(x)

  return jax.tree_util.tree_map(part, tree)


def scale_by_adaptive_fractal(
  num_steps: int = 1024,
  *,
  min_curvature: jax.typing.ArrayLike | None = None,
  l2_regularization: jax.typing.ArrayLike | None = None,
  max_condition_number: jax.typing.ArrayLike | None = None,
  max_curvature: jax.typing.ArrayLike | None = None,
  num_init_hvps: int = 32,
  adapt_max_curvature: bool = True,
  recheck_anchor: bool = False,
  seed: int = 0,
) -> optax.GradientTransformationExtraArgs:
  r"""Fractal Chebyshev descent that measures and repairs its own curvature.

  The optimiser runs cycles of ``T_k`` gradient steps with the fractal
  Chebyshev step sizes on ``[m_eff, M]`` (:func:`fractal_chebyshev_step_sizes`,
  rebuilt inside ``jit`` from the traced curvatures),

  .. math::

    x_{t+1} = x_t - \eta^{\text{fractal}}_{t \bmod T_k}(m_\text{eff}, M)\,
    \nabla f(x_t),

  and checks every cycle. ``T_k`` is the shortest of ``T, ⌈T/2⌉, ⌈T/4⌉,
  …`` (down to 4-7; to 4 for a power of two) with
  :math:`T_k \ge \sqrt{M/m_\text{eff}}` (``T`` if none is): unless capped
  at ``T``, each cycle contracts the error in its band by at least
  :math:`\cosh 2 \approx 3.8`, at a per-step rate at least
  :math:`\tfrac12 \ln\cosh 2 \approx 0.66` of the best any cycle length
  reaches on a quadratic. Short cycles while ``κ_eff`` is small test
  the quadratic model often and waste little when it fails; the
  cycles lengthen as ``κ_eff`` grows, so that the rate becomes the
  accelerated :math:`\sqrt{\kappa}` one (a fixed ``T`` below
  :math:`\sqrt\kappa` only reaches a rate like gradient descent's, ``T``
  times faster). ``f`` is ``value_fn``, ``M`` an upper bound on its
  curvature, ``m`` the lower bound the caller gives (exactly one of
  ``min_curvature``, ``l2_regularization`` or ``max_condition_number``) and
  ``m ≤ m_eff ≤ M/2`` the lower end the current cycle is built for
  (``κ_eff = M/m_eff``). The last step of a cycle returns the proposed cycle
  end :math:`x_T`; the test is made at the next update, on the loss ``value``
  the caller passes there, :math:`f(x_T)`, at no extra cost.

  * **Accept** when :math:`f(x_T) \le f(a) + 8\,\epsilon\,|f(a)|`, ``a`` the
    anchor (the start of the cycle) and :math:`\epsilon` the dtype's machine
    epsilon (a rise that small is below the loss's resolution), or, when ``m``
    is a lower bound on the curvature (``min_curvature`` or
    ``l2_regularization``), when
    :math:`\nabla f(x_T)^\top d \le \tfrac12 m \|d\|^2`, :math:`d = x_T - a`,
    and ``m < M`` (an ``M`` below the stated ``m`` proves one of them wrong):
    strong convexity gives
    :math:`f(x_T) - f(a) \le \nabla f(x_T)^\top d - \tfrac12 m \|d\|^2`, so the
    loss fell, whatever its rounding shows (a loss that cancels, such as
    ``optax.losses.log_cosh`` near 0, is rounded far above
    :math:`\epsilon |f|`). ``value`` and the gradient there must be finite. Then
    ``x_T`` becomes the anchor and the caller's gradient is the first step of
    the next cycle, and ``m_eff`` is divided by 3, down to ``m`` (unless the
    cycle repaired a rejected one: then ``m_eff`` is kept one more cycle, so
    after a failure, which multiplies ``m_eff`` by 4, the third accepted cycle,
    not the second, is the first built past the failed ``κ_eff``). One HVP at
    ``x_T`` is one step of power iteration (warm-started across cycles) that can
    raise or lower ``M`` (``adapt_max_curvature``): the top of the Hessian moves
    as the iterate does (Fashion-MNIST logistic regression at λ = 0.1: 11.3 at
    the start, 15.6 at the optimum), and a cycle built for an ``M`` below it
    amplifies the components above ``M``.
  * **Reject** otherwise: one forward-over-reverse pass at ``a`` gives the
    gradient there and the HVP along the failed end's gradient
    :math:`g = \nabla f(x_T)`, which weights each component of the error by its
    curvature and so is dominated by what the cycle amplified (far more than
    the displacement :math:`d = x_T - a`, which also holds the cycle's
    progress along flat directions). If its Rayleigh quotient
    :math:`\theta = g^\top H g / g^\top g` at ``a``, or the secant
    curvature along the segment, :math:`h = (\nabla f(x_T) - \nabla
    f(a))^\top d / \|d\|^2` (the mean curvature along ``d`` between ``a``
    and ``x_T``, from the caller's gradient and the same pass, on the same
    batch; gradients keep their digits where loss differences near the
    optimum are rounding), exceeds ``M``, M was too low and is raised above
    both (above the secant by at most 4×: the segment may have run far from
    the anchor, into much sharper regions, as a cycle whose loss overflowed).
    Either way ``m_eff`` is multiplied by 4, up to its cap ``M/2``: the
    quadratic model may have failed too (the largest steps, about
    ``1/m_eff``, carried the iterate where the curvature differs), and on
    real losses both happen at once (Fashion-MNIST logistic regression: the
    top curvature grows along the path, and repairing M alone fails again).
    A cycle that fails with ``m_eff`` already at the cap had every
    step below ``2/M``, which lowers the loss of any function whose curvature
    stays below ``M`` (the descent lemma): M is too low somewhere on the path
    (a sharper region that the steps jumped over) and is doubled. The
    repaired cycle's length follows its ``κ_eff`` (a 4× larger ``m_eff``
    halves it): its largest step is shorter and another failure costs half
    as much. The update
    then returns the first step of the repaired cycle from the anchor
    (``updates = a − η₀ ∇f(a) − x``), so a rejection wastes one gradient (the
    caller's at ``x_T``). The same pass gives ``f(a)`` on the current batch,
    which becomes the anchor's value. Where the anchor's own loss or gradient
    is not finite there (a broken batch), nothing is learnt: ``M`` and
    ``m_eff`` stay, and the update returns the anchor.
    A proposed step that is not finite (at any step of a cycle, or a
    non-finite ``value`` or gradient) rejects the cycle at once in the same
    way, and if the step from the anchor is not finite either the update
    returns the anchor itself.

  ``M`` is first measured at the first update by Lanczos steps at the initial
  parameters: 3, then more until the top Ritz value ``θ`` is positive with a
  residual ``r ≤ 0.1 θ`` (at most ``num_init_hvps`` steps in all), as
  ``(θ + r)`` plus a rounding allowance and a 5% margin. A convex loss often
  stops at 3 (the logistic-regression benchmarks do); where negative curvature
  dominates the Hessian, as at a network's initialisation, the first Krylov
  vectors resolve the bottom of the spectrum and a few steps can miss the top by
  10× (9-15 resolve it on the ResNet benchmark). A ``max_curvature`` guess is
  kept when it is consistent with that measurement (between the largest Ritz
  value and the bound), so a guess 100× too low or too high is corrected before
  the first step. The first cycle is built for ``m_eff = max(m, M/16)``
  (``κ_eff ≤ 16``, a cycle of 4 steps for a power-of-two ``T``; ``m_eff`` at
  most ``M/2``), and each accepted cycle (but a repair's) divides ``m_eff`` by 3
  toward ``m`` (``κ_eff`` triples, the cycle grows by about √3): at the start
  point, where the quadratic model is least accurate, the largest step is about
  ``16/M`` instead of ``1/m``, and a cycle that fails there costs a few
  gradients. An accepted cycle's power step lowers ``M`` only to below ``0.9 M``
  (a long cycle built for an ``M`` a fraction ``δ`` below the top curvature
  amplifies it by about :math:`\cosh(2T_k\sqrt\delta)`, so small decreases cost
  more than they save).

  **Guarantees.** (1) Parameters stay finite: every update is checked before it
  is returned (the loss there may still be non-finite: that is caught at the
  next update, which returns to the last accepted anchor, finite). (2) The
  loss at accepted cycle ends never rises beyond its own rounding: with
  full-batch ``value_fn``, every accepted end satisfies the test above, and
  every other cycle end is discarded at the next update. For any loss
  (convex or not), an end the loss test accepts satisfies
  :math:`f(a_{k+1}) \le f(a_k) + 8\,\epsilon\,|f(a_k)|` in computed values,
  so its exact loss may have risen by that much plus the loss's rounding:
  near the optimum of a loss whose :math:`|f^*|` is far above the gap
  :math:`f - f^*`, that rise can exceed the gap. With a stated ``m``, on
  a loss whose curvature is at least ``m``, an end the gradient test accepts
  did not raise the exact loss (the computed one may show the loss's
  rounding), up to the rounding of the computed gradient in the test: at the
  dtype's floor, where the gradient itself is rounding (a consistent
  least-squares loss near 0), the exact loss may rise by amounts of that
  size. ``ε`` is the machine epsilon of the loss's dtype or of the
  parameters', whichever is larger (a bfloat16 loss of float32 parameters
  rounds at bfloat16's). (3) On
  a convex quadratic whose Hessian lies in ``[m, M]``, a cycle built for
  ``[m_eff, M]`` contracts the error by :func:`chebyshev_error_bound` and is
  always accepted. (4) It cannot stall at an anchor: on a loss with an
  ``L``-Lipschitz gradient (convex or not, full batch), consecutive rejections
  raise ``m_eff`` to ``M/2`` and then double ``M`` until ``M ≥ L``, when every
  step of the cycle is below ``2/L`` and its end is accepted. The other side
  of (4): where the loss's rounding alone makes cycle ends rise (a loss that
  cancels, such as ``log_cosh`` near 0, or one computed in a lower precision
  than it returns, with ``max_condition_number``, where no gradient test
  applies), those failures double ``M`` too, and near the optimum ``M`` can
  grow far above the curvature and freeze the iterate at the loss's
  resolution. Nothing is
  promised about the loss *inside* a cycle, nor at a proposed cycle end before
  its test: the fractal schedule's large steps raise it there by design.

  **Mini-batches.** ``value_fn`` is called on the caller's current batch
  (pass it through ``extra_args``). The test compares the caller's ``value``
  :math:`f_B(x_T)` on the batch ``B`` of the update after the cycle end with
  ``f(a)`` measured on an earlier batch (when ``a`` was accepted, or at the
  last rejection, whose pass re-measures it): it is a noisy test. Noise-driven
  rejections raise ``m_eff`` and, at its cap, ``M``, which accepted cycles
  lower only gradually: on a long noisy run ``M`` drifts up and the steps
  shrink. With ``recheck_anchor=True`` that update also evaluates
  :math:`f_B(a)` (one extra evaluation per cycle) and the anchor value is
  replaced by it, so both sides use the same batch; the guarantee (2) then
  holds batch by batch (:math:`f_B(x_T) \le f_B(a)`), not for the full loss.
  The gradient test uses the gradient on ``B``, so it holds batch by batch
  without ``recheck_anchor``. Curvature is measured on the current batch too.

  **State.** Two parameter-sized vectors (the anchor and the power-iteration
  vector) and scalars (see :class:`ScaleByAdaptiveFractalState`). **Cost**,
  in gradient evaluations: one per update (the caller's gradient), plus per
  accepted cycle one HVP (2), per rejected cycle one HVP (2, the wasted
  gradient at ``x_T`` being one of the updates), plus 2 per initial Lanczos
  step (at most ``2 · num_init_hvps``) once; ``recheck_anchor`` adds 1 per
  cycle. The state counts them: ``count + num_value_evals + 2 · num_hvps``.

  **Composition.** Chain it after transformations that keep the gradient's
  meaning (``optax.clip_by_global_norm``, ``optax.identity``), not after
  ones that change the loss it minimises: ``optax.add_decayed_weights``
  makes the updates the gradient of another loss than ``value_fn`` (put
  ``½ λ ‖x‖²`` in ``value_fn`` and pass ``l2_regularization=λ``).
  ``optax.masked`` and ``optax.multi_transform`` hide parameters from
  ``value_fn`` and raise an error.

  Args:
    num_steps: ``T``, the longest cycle, a static positive int (a power of
      two keeps the fractal order's stability guarantee); cycles have length
      ``T, ⌈T/2⌉, …``, the shortest that ``κ_eff`` asks for (see above). Beyond
      ``κ_eff = T²`` the rate is no longer accelerated.
    min_curvature: ``m > 0``, a lower bound on the curvature of ``value_fn``.
    l2_regularization: ``λ > 0`` when ``value_fn`` already includes
      ``½ λ ‖x‖²`` on a convex loss: ``m = λ``.
    max_condition_number: ``κ_max > 1``: ``m = M / κ_max`` (for losses with no
      known lower bound, e.g. non-convex ones).
    max_curvature: an optional first guess of ``M`` (required when
      ``num_init_hvps=0``). Curvatures may be traced (under ``jit``); those
      are not checked: a traced ``m`` that is not finite and > 0 in the
      parameters' dtype gives no lower bound (``m_eff ≥ ε M``, no gradient
      test), a traced ``max_curvature`` that is not is ignored (1 where
      ``num_init_hvps=0``).
    num_init_hvps: the most Lanczos steps that measure ``M`` at the first
      update, 0 or at least 2 (0: trust ``max_curvature``; failed cycles
      correct one that is too low, while one too high comes down by at most
      2× per accepted cycle, slowly when the cycles are long).
      The Krylov basis of that many parameter-sized vectors is memory the
      compiled update holds (transiently, not state).
    adapt_max_curvature: let the power iteration (at every accepted cycle end)
      lower ``M`` as well as raise it.
    recheck_anchor: re-evaluate ``value_fn`` at the anchor on the current
      batch at each cycle end (for mini-batches).
    seed: seed of the random start vector of the curvature iterations.

  Returns:
    An ``optax.GradientTransformationExtraArgs``. Its ``update(updates, state,
    params, *, value, value_fn, **extra_args)`` needs ``params``, the loss
    ``value`` at ``params`` and ``value_fn(params, **extra_args)``, like
    ``optax.scale_by_backtracking_linesearch``; ``updates`` is the gradient.

  Raises:
    TypeError: ``num_steps`` or ``num_init_hvps`` is not an int, or a
      curvature is not a number.
    ValueError: not exactly one of ``min_curvature``, ``l2_regularization``,
      ``max_condition_number``; a value out of range; ``num_init_hvps=0``
      without ``max_curvature``.

  Example:
    >>> import jax, jax.numpy as jnp, optax
    >>> import fractal_optax
    >>> a = jnp.linspace(0.01, 1.0, 50)  # f(x) = ½ Σ a_i x_i², κ = 100.
    >>> f = lambda x: 0.5 * jnp.sum(a * x**2)
    >>> opt = fractal_optax.adaptive_fractal_sgd(
    ...     32, min_curvature=0.01, max_curvature=100.0)  # M guess 100× high
    >>> x = jnp.ones(50)
    >>> state = opt.init(x)
    >>> @jax.jit
    ... def step(x, state):
    ...   value, grad = jax.value_and_grad(f)(x)
    ...   updates, state = opt.update(grad, state, x, value=value, grad=grad,
    ...                               value_fn=f)
    ...   return optax.apply_updates(x, updates), state
    >>> for _ in range(64):
    ...   x, state = step(x, state)
    >>> bool(f(x) < 1e-4 * f(jnp.ones(50))), int(state.num_rejected)
    (True, 0)
    >>> 1.0 <= float(state.max_curvature) < 1.1
    True

  References:
    Agarwal, Goel & Zhang, `Acceleration via Fractal Learning Rate Schedules
    <https://arxiv.org/abs/2103.01338>`_, ICML 2021.
  """
  num_steps = _checks.check_num_steps(num_steps)
  num_init_hvps = _checks.check_num_steps(
    num_init_hvps, "num_init_hvps", maximum=None, minimum=0
  )
  if num_init_hvps == 1:
    raise ValueError(
      f"num_init_hvps must be 0 or at least 2, got {num_init_hvps=}."
    )
  for name, flag in (
    ("adapt_max_curvature", adapt_max_curvature),
    ("recheck_anchor", recheck_anchor),
  ):
    if not isinstance(flag, (bool, np.bool_)):
      raise TypeError(f"{name} must be a bool, got {name}={flag!r}.")
  if isinstance(seed, (bool, np.bool_)) or not isinstance(
    seed, numbers.Integral
  ):
    raise TypeError(f"seed must be an int, got {seed=!r}.")
  if not -(2**63) <= seed < 2**63:
    raise ValueError(f"seed must fit in int64, got {seed=}.")
  given = {
    name: v
    for name, v in (
      ("min_curvature", min_curvature),
      ("l2_regularization", l2_regularization),
      ("max_condition_number", max_condition_number),
    )
    if v is not None
  }
  if len(given) != 1:
    raise ValueError(
      "pass exactly one of min_curvature, l2_regularization or "
      f"max_condition_number, got {min_curvature=}, {l2_regularization=}, "
      f"{max_condition_number=}."
    )
  ((m_source, m_value),) = given.items()
  try:
    m_float = _checks.check_positive_scalar(m_value, m_source)
  except ValueError as e:
    if m_source != "max_condition_number":
      raise
    raise ValueError(
      f"max_condition_number must be finite and > 1, got "
      f"{max_condition_number=}."
    ) from e
  if (
    m_source == "max_condition_number"
    and m_float is not None
    and not (m_float > 1.0 and math.isfinite(m_float))
  ):
    raise ValueError(
      f"max_condition_number must be finite and > 1, got "
      f"{max_condition_number=}."
    )
  big_m_float = _check_optional_positive(max_curvature, "max_curvature")
  if num_init_hvps == 0 and max_curvature is None:
    raise ValueError(
      "num_init_hvps=0 trusts max_curvature, which must then be given, got "
      f"{num_init_hvps=}, {max_curvature=}."
    )
  del big_m_float  # A guess below m is allowed: it is measured and raised.

  # The cycle lengths T, ⌈T/2⌉, ⌈T/4⌉, … (down to 4-7; to 4 for a power of 2).
  lengths = [num_steps]
  while lengths[-1] >= 8:
    lengths.append((lengths[-1] + 1) // 2)
  lengths = tuple(lengths)

  def cycle_level(m_eff, big_m):
    """The index of the shortest length ``t`` with ``t² ≥ M/m_eff`` (0 if
    none): a cycle that contracts its band by at least ``cosh(2)``."""
    long_enough = jnp.asarray([float(t) ** 2 for t in lengths]) >= big_m / m_eff
    return jnp.maximum(jnp.sum(long_enough.astype(jnp.int32)) - 1, 0)

  def step_size(level, position, m_eff, big_m):
    """Step ``position`` of the cycle of length ``lengths[level]``.

    Before the first update ``M = m_eff = 0``: that step is never taken, but
    without ``jit`` a single-branch ``lax.switch`` runs the generator, whose
    checks need a valid interval.
    """
    valid = (m_eff > 0) & (m_eff < big_m)
    branches = [
      lambda lo, hi, t=t: fractal_chebyshev_step_sizes(t, lo, hi)[position]
      for t in lengths
    ]
    args = (jnp.where(valid, m_eff, 0.5), jnp.where(valid, big_m, 1.0))
    if not _checks.is_traced(level):  # Without jit: only the branch taken.
      return branches[int(level)](*args)
    return jax.lax.switch(level, branches, *args)

  def init_fn(params: optax.Params) -> ScaleByAdaptiveFractalState:
    _check_real(params, "params")
    dtype = _float_dtype(params)
    leaves, treedef = jax.tree_util.tree_flatten(params)
    for x in leaves:
      if not _is_float(x) or _checks.is_traced(x):
        continue
      try:  # Concrete params; under an outer jit even this check is traced.
        finite = bool(jnp.all(jnp.isfinite(x)))
      except jax.errors.ConcretizationTypeError:
        continue
      if not finite:
        raise ValueError(
          "params must be finite (the anchor of the first cycle), got a leaf "
          f"of shape {jnp.shape(x)} with non-finite entries."
        )
    keys = jax.random.split(jax.random.key(seed), max(len(leaves), 1))
    direction = [
      jax.random.normal(k, jnp.shape(x), jnp.result_type(x))
      if _is_float(x)
      else jnp.zeros_like(x)
      for k, x in zip(keys, leaves, strict=True)
    ]
    direction = jax.tree_util.tree_unflatten(treedef, direction)
    norm = _tree_norm(direction, dtype)
    direction = _tree_scale(direction, 1.0 / jnp.maximum(norm, 1e-30))
    # On the devices of its parameter leaf (sharded params: sharded the same).
    direction = jax.tree_util.tree_map(
      lambda v, x: (
        jax.device_put(v, x.sharding)
        if isinstance(x, jax.Array) and not _checks.is_traced(x)
        else v
      ),
      direction,
      params,
    )
    # Every leaf its own buffer (a shared one, or params' own, could not be
    # donated: a jitted step may donate params and the state together).
    zero_i = lambda: jnp.zeros((), jnp.int32)
    scalar = lambda x: jnp.full((), x, dtype)
    return ScaleByAdaptiveFractalState(
      count=zero_i(),
      position=zero_i(),
      anchor=jax.tree_util.tree_map(lambda x: jnp.array(x, copy=True), params),
      anchor_value=scalar(jnp.inf),
      grad=direction,
      value=scalar(jnp.inf),
      max_curvature=scalar(0),
      min_curvature=scalar(0),
      restarting=jnp.zeros((), bool),
      retrying=jnp.zeros((), bool),
      pending=jnp.zeros((), bool),
      num_accepted=zero_i(),
      num_rejected=zero_i(),
      num_hvps=zero_i(),
      num_value_evals=zero_i(),
      level=zero_i(),
      step_size=scalar(0),
    )

  def update_fn(
    updates: optax.Updates,
    state: ScaleByAdaptiveFractalState,
    params: optax.Params | None = None,
    *,
    value: jax.typing.ArrayLike | None = None,
    grad: optax.Updates | None = None,
    value_fn: Callable[..., jax.typing.ArrayLike] | None = None,
    **extra_args: Any,
  ) -> tuple[optax.Updates, ScaleByAdaptiveFractalState]:
    del grad  # ``updates`` is the gradient (as in optax's line searches).
    if params is None:
      raise ValueError(
        "scale_by_adaptive_fractal needs params in update, got params=None."
      )
    if value is None:
      raise ValueError(
        "scale_by_adaptive_fractal needs value=loss(params) in update, got "
        "value=None."
      )
    if not callable(value_fn):
      raise TypeError(
        "scale_by_adaptive_fractal needs value_fn=loss in update (it "
        f"evaluates the loss and its curvature), got {value_fn=!r}."
      )
    if not isinstance(state, ScaleByAdaptiveFractalState):
      raise TypeError(
        "scale_by_adaptive_fractal's update needs the state its init "
        f"returned, got a state of type {type(state).__name__}."
      )
    _check_like(
      state.anchor, params, "state (the one init returned)", dtypes=True
    )
    _check_like(updates, params, "updates (the gradient)")
    if any(
      isinstance(x, optax.MaskedNode)
      for x in jax.tree_util.tree_leaves(
        params, is_leaf=lambda x: isinstance(x, optax.MaskedNode)
      )
    ):
      raise ValueError(
        "scale_by_adaptive_fractal cannot run under optax.masked or "
        "optax.multi_transform: value_fn needs every parameter, got params "
        "with masked-out leaves (optax.MaskedNode)."
      )
    for name, tree in (("params", params), ("updates", updates)):
      _check_real(tree, name)
    kwargs = _fn_kwargs(value_fn, extra_args)
    dtype = _float_dtype(params)

    def scalar(x, name):
      """``x`` as a real scalar array of its own dtype, or a clear error."""
      try:
        x = jnp.asarray(x)
      except (TypeError, ValueError) as e:
        raise TypeError(
          f"{name} must be the scalar loss, got a {type(x).__name__}."
        ) from e
      if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(
          f"{name} must be the real floating-point scalar loss, got dtype "
          f"{x.dtype} (a loss rounded to integers has no curvature)."
        )
      if x.ndim != 0:
        raise ValueError(
          f"{name} must be the scalar loss, got shape {x.shape}."
        )
      return x

    value = scalar(value, "value")
    # The loss's own precision sets what rise is rounding: a bfloat16 loss of
    # float32 params, or a float32 loss of params with a float64 leaf.
    value_eps = max(
      float(jnp.finfo(dtype).eps), float(jnp.finfo(value.dtype).eps)
    )
    value = value.astype(dtype)

    def loss(p):
      return scalar(value_fn(p, **kwargs), "value_fn's output").astype(dtype)

    if not any(
      jnp.size(x) for x in jax.tree_util.tree_leaves(params) if _is_float(x)
    ):  # Nothing to optimise (every float leaf is empty).
      return jax.tree_util.tree_map(jnp.zeros_like, params), state._replace(
        count=jnp.asarray(optax.safe_increment(state.count))
      )

    def value_and_grad_and_hvp(p, v):
      """f(p), ∇f(p) and H(p) v (zeros at leaves that are not float)."""
      tangent = jax.tree_util.tree_map(
        lambda x, t: (
          t if _is_float(x) else np.zeros(jnp.shape(x), jax.dtypes.float0)
        ),
        p,
        v,
      )
      (f, g), (_, hv) = jax.jvp(
        jax.value_and_grad(loss, allow_int=True), (p,), (tangent,)
      )
      zeros = lambda x, t: t if _is_float(x) else jnp.zeros_like(x)
      return (
        f,
        jax.tree_util.tree_map(zeros, p, g),
        jax.tree_util.tree_map(zeros, p, hv),
      )

    def power_stats(v, hv):
      """θ = vᵀHv, the residual ‖Hv − θv‖ and the next (unit) vector."""
      theta = _tree_vdot(v, hv, dtype)
      res = jax.tree_util.tree_map(lambda a, b: a - theta * b, hv, v)
      residual = _tree_norm(res, dtype)
      v_next, _, _ = _unit_or(hv, v, dtype)
      return theta, residual, v_next

    def m_floor(big_m):
      """The stated ``m`` (``M / κ_max`` with ``max_condition_number``)."""
      if m_source == "max_condition_number":
        return big_m / jnp.asarray(m_value, dtype)
      return jnp.asarray(m_value, dtype)

    def m_low(big_m):
      """The lowest ``m_eff``: ``m``, but at least ``ε M``. An ``m`` that
      underflows in ``dtype`` (or a ``κ_max`` beyond ``1/ε``) would otherwise
      relax ``m_eff`` to 0, which leaves the schedule no interval; a traced
      ``m`` that is not finite and > 0 (unchecked) gets the same floor."""
      m = m_floor(big_m)
      low = jnp.finfo(dtype).eps * big_m
      return jnp.where(m > low, m, low)  # NaN > low is False.

    def descend(eta):
      """The step ``-η g`` (each leaf's dtype; zeros where not float) and
      the point ``x - η g`` it leads to, exactly as ``apply_updates`` does."""
      step = jax.tree_util.tree_map(
        lambda p, g: (
          (-eta * g).astype(p.dtype) if _is_float(p) else jnp.zeros_like(p)
        ),
        params,
        updates,
      )
      point = jax.tree_util.tree_map(
        lambda p, u: (p + u).astype(p.dtype) if _is_float(p) else p,
        params,
        step,
      )
      return step, point

    # Inside a cycle (the usual update) the fractal step is all there is to
    # do. The cycle-end test, the curvature measurements and the repair of a
    # failed cycle run in ``cycle_update``, only at the updates that need them.
    eta = step_size(
      state.level, state.position, state.min_curvature, state.max_curvature
    )
    step, proposal = descend(eta)
    # One reduction per update: with a finite step η > 0 and finite params, a
    # finite proposal x - η g has a finite gradient g (checked again, with the
    # loss, where a cycle ends). Each reduction over the parameters is a pass
    # that XLA:CPU cannot fuse with the update that depends on it.
    in_cycle = (
      (state.max_curvature > 0)
      & ~state.pending
      & jnp.isfinite(value)
      & _all_finite(proposal)
    )

    def updates_to(new_params):
      """The updates that move ``params`` to ``new_params``."""
      return jax.tree_util.tree_map(
        lambda n, p: (
          (n - p).astype(p.dtype) if _is_float(p) else jnp.zeros_like(p)
        ),
        new_params,
        params,
      )

    def cycle_update(state):
      usable = jnp.isfinite(value) & _all_finite(_float_part(updates))
      position = state.position
      big_m = state.max_curvature
      m_eff = state.min_curvature
      anchor = state.anchor
      anchor_value = state.anchor_value
      direction = state.grad
      num_hvps = state.num_hvps
      num_value_evals = state.num_value_evals

      # First update: measure M at the initial parameters, which are the anchor.
      first = big_m <= 0

      def guess_or(default):
        """The ``max_curvature`` guess where it is finite and > 0 in dtype (a
        traced one is not checked), else ``default``."""
        if max_curvature is None:
          return jnp.asarray(default, dtype)
        guess = jnp.asarray(max_curvature, dtype)
        return jnp.where(jnp.isfinite(guess) & (guess > 0), guess, default)

      def measure(_):
        if num_init_hvps == 0:
          return guess_or(1.0), jnp.zeros((), jnp.int32)
        top, residual, hnorm, num = _lanczos_top_impl(
          lambda p: loss(p),
          min(_INIT_MIN_HVPS, num_init_hvps),
          num_init_hvps,
          params,
          (),
          jax.random.key(seed),
          _INIT_RTOL,
        )
        top = top.astype(dtype)
        delta = _rounding_allowance(
          dtype, hnorm.astype(dtype), num.astype(dtype)
        )
        bound = (top + residual.astype(dtype) + delta) * (1 + _MARGIN)
        guess = guess_or(jnp.nan)
        bound = jnp.where((guess >= top) & (guess <= bound), guess, bound)
        # A non-finite or non-positive measurement: fall back to the guess.
        ok = jnp.isfinite(bound) & (bound > 0)
        return jnp.where(ok, bound, guess_or(1.0)), num.astype(jnp.int32)

      big_m, num_init = _cond(
        first, measure, lambda _: (big_m, jnp.zeros((), jnp.int32)), None
      )
      num_hvps = _add(num_hvps, num_init)
      m_first = jnp.maximum(m_low(big_m), big_m / _FIRST_KAPPA)
      m_eff = jnp.where(first, m_first, m_eff)  # Clipped to M/2 below.
      anchor = jax.tree_util.tree_map(
        lambda p, a: jnp.where(first, p, a), params, anchor
      )
      anchor_value = jnp.where(first, value, anchor_value)

      # The previous update proposed a cycle end: ``params`` is that end and the
      # caller's ``value`` (and gradient) are the loss (and gradient) there.
      pending = state.pending
      if recheck_anchor:
        anchor_value = _cond(
          pending, lambda _: loss(anchor), lambda _: anchor_value, None
        )
        num_value_evals = _add(num_value_evals, pending)
      # A rise within the rounding of the loss carries no curvature signal (near
      # the optimum f(x_T) and f(a) differ by less than their own rounding):
      # accept it, so that progress below the loss's resolution is kept.
      slack = _SLACK * value_eps * jnp.abs(anchor_value)
      decreased = value <= anchor_value + slack
      if m_source != "max_condition_number":
        # A loss whose curvature is at least m (as the caller states) satisfies
        # f(x_T) - f(a) <= g(x_T)·d - ½ m ‖d‖², d = x_T - a: where that is <= 0
        # the loss fell, whatever its rounding shows (losses that cancel, such
        # as optax.losses.log_cosh near 0, are rounded far above ε |f|).
        cycle = jax.tree_util.tree_map(
          lambda p, a: (
            (p - a).astype(p.dtype) if _is_float(p) else jnp.zeros_like(p)
          ),
          params,
          anchor,
        )
        m_stated = m_floor(big_m)
        certified = _tree_vdot(
          _float_part(updates), cycle, dtype
        ) <= 0.5 * m_stated * _tree_vdot(cycle, cycle, dtype)
        # M below the stated m proves one of them wrong: then the loss alone
        # decides (a too-high m would certify rising cycles). So does an m
        # that is not > 0 (a traced one is not checked).
        decreased = decreased | (
          certified & (m_stated > 0) & (m_stated < big_m)
        )
      accept = pending & usable & decreased
      reject_end = pending & ~accept

      # Accepted: the cycle end is the new anchor and this update is the first
      # step of the next cycle. A power-iteration step there can move M.
      anchor = jax.tree_util.tree_map(
        lambda p, a: jnp.where(accept, p, a), params, anchor
      )
      anchor_value = jnp.where(accept, value, anchor_value)
      # A repaired cycle's acceptance keeps m_eff one more cycle: relaxing at
      # once would return to the failed κ_eff after two accepted cycles.
      m_eff = jnp.where(accept & ~state.retrying, m_eff / _RELAX, m_eff)
      position = jnp.where(pending, 0, position)

      def power_step(args):
        big_m, direction = args
        _, _, hv = value_and_grad_and_hvp(params, direction)
        theta, residual, v_next = power_stats(direction, hv)
        raised = jnp.maximum(big_m, theta * (1 + _MARGIN))
        if adapt_max_curvature:
          converged = residual <= 0.1 * jnp.abs(theta)
          lowered = jnp.maximum((theta + residual) * (1 + _MARGIN), 0.5 * big_m)
          raised = jnp.where(
            converged & (lowered < _LOWER * big_m), lowered, raised
          )
        raised = jnp.where(jnp.isfinite(raised) & (raised > 0), raised, big_m)
        return raised, v_next

      big_m, direction = _cond(
        accept, power_step, lambda args: args, (big_m, direction)
      )
      num_hvps = _add(num_hvps, accept)
      m_eff = jnp.clip(m_eff, m_low(big_m), 0.5 * big_m)

      # The fractal step from ``params``; its result must be finite.
      # A new cycle (the first, or after an accepted end) gets the length its
      # κ_eff asks for.
      level = jnp.where(accept | first, cycle_level(m_eff, big_m), state.level)
      eta = step_size(level, position, m_eff, big_m)
      step, proposal = descend(eta)
      proposal_ok = _all_finite(proposal) & usable
      reject = reject_end | (~pending & ~proposal_ok) | (accept & ~proposal_ok)

      # Rejected: one HVP at the anchor along the failed end's gradient g(x_T)
      # gives its Rayleigh quotient θ and, from the same pass, the anchor's
      # gradient, so this update already takes the first step of the repaired
      # cycle from the anchor. g(x_T) weights each component of the error by
      # its curvature, so what the cycle amplified dominates it far more than
      # the displacement d = x_T - a, which also holds the cycle's progress
      # along flat directions. Without a usable g(x_T) (a non-finite
      # proposal), the probe is d (the proposal's finite part).
      def diagnose(args):
        big_m, m_eff, direction = args
        failed = jax.tree_util.tree_map(
          lambda x, p: (
            jnp.where(reject_end | ~jnp.isfinite(x), p, x)
            if _is_float(p)
            else p
          ),
          proposal,
          params,
        )
        displacement = jax.tree_util.tree_map(
          lambda x, a: (
            (x - a).astype(x.dtype) if _is_float(x) else jnp.zeros_like(x)
          ),
          failed,
          anchor,
        )
        probe, d_norm, use_d = _unit_or(displacement, direction, dtype)
        probe, _, _ = _unit_or(
          _float_part(updates), probe, dtype, reject_end & usable
        )
        f_a, g_a, hv = value_and_grad_and_hvp(anchor, probe)
        theta, residual, v_next = power_stats(probe, hv)
        # The secant curvature along the failed segment, from the gradients at
        # both ends on the same batch: (g(x_T) - g(a))·d = ‖d‖² h, h the mean of
        # the directional curvature d̂ᵀH(a + s d)d̂ over the segment, so h > M
        # proves M too low somewhere on the path (θ sees only a). Gradients, not
        # values: near the optimum f(x_T) - f(a) is below the loss's rounding,
        # and that noise over ‖d‖² would raise M without bound.
        gradient_change = jax.tree_util.tree_map(
          lambda g_t, g: g_t - g, _float_part(updates), g_a
        )
        secant = _tree_vdot(gradient_change, displacement, dtype) / d_norm**2
        secant = jnp.where(
          reject_end & use_d & jnp.isfinite(secant), secant, -jnp.inf
        )
        seen = jnp.maximum(theta, secant)
        too_low = seen * (1 + _MARGIN) > big_m
        # The secant is the mean over the whole failed segment, which may have
        # run far from the anchor into much sharper regions (a cycle whose
        # loss overflowed): it raises M at most _RAISE-fold per rejection.
        new_big_m = jnp.where(
          too_low,
          jnp.maximum(
            jnp.maximum(
              theta * (1 + 2 * _MARGIN) + residual,
              jnp.minimum(secant * (1 + 2 * _MARGIN), _RAISE * big_m),
            ),
            1.25 * big_m,
          ),
          big_m,
        )
        # m_eff already at its cap M/2: every step was below 2/M, so on a
        # function whose curvature stays below M each step lowers the loss
        # (the descent lemma) and the cycle cannot fail. It did: M is too low
        # on the path (which may have jumped over a sharper region than
        # either end shows). Without this the same cycle would repeat forever.
        at_cap = ~too_low & (m_eff >= 0.999 * 0.5 * big_m)
        new_big_m = jnp.where(at_cap, 2 * big_m, new_big_m)
        # Whether M or the quadratic model failed (or both, as where the top
        # curvature grows along the path), a shorter largest step repairs the
        # cycle: m_eff rises unless it is at the cap.
        new_m_eff = jnp.where(at_cap, m_eff, m_eff * _RAISE)
        # Where the anchor's own loss or gradient is not finite on this batch
        # (a broken batch) nothing is learnt, and M stays finite.
        keep = ~jnp.isfinite(f_a) | ~_all_finite(g_a) | ~jnp.isfinite(new_big_m)
        new_big_m = jnp.where(keep, big_m, new_big_m)
        new_m_eff = jnp.where(keep, m_eff, new_m_eff)
        new_m_eff = jnp.clip(new_m_eff, m_low(new_big_m), 0.5 * new_big_m)
        new_level = cycle_level(new_m_eff, new_big_m)
        eta0 = step_size(new_level, 0, new_m_eff, new_big_m)
        restep = jax.tree_util.tree_map(
          lambda a, g: (a - eta0 * g).astype(a.dtype) if _is_float(a) else a,
          anchor,
          g_a,
        )
        ok = jnp.isfinite(f_a) & _all_finite(restep)
        restep = jax.tree_util.tree_map(
          lambda r, a: jnp.where(ok, r, a), restep, anchor
        )
        # The anchor's loss on this batch, from the same pass: with
        # mini-batches the next test compares against a recent measurement,
        # not one easy batch's (which would reject every later cycle).
        new_anchor_value = jnp.where(jnp.isfinite(f_a), f_a, anchor_value)
        return (
          new_big_m,
          new_m_eff,
          v_next,
          restep,
          ok,
          new_level,
          eta0,
          new_anchor_value.astype(dtype),
        )

      def no_diagnose(args):
        big_m, m_eff, direction = args
        return (
          big_m,
          m_eff,
          direction,
          anchor,
          jnp.asarray(False),
          level,
          eta,
          anchor_value.astype(dtype),
        )

      (
        big_m,
        m_eff,
        direction,
        restep,
        restepped,
        level,
        eta_taken,
        anchor_value,
      ) = _cond(reject, diagnose, no_diagnose, (big_m, m_eff, direction))
      num_hvps = _add(num_hvps, reject)

      # Accepted or mid-cycle: the fractal step. Rejected: the anchor's step
      # (or the anchor itself, if that step is not finite either).
      new_updates = jax.tree_util.tree_map(
        lambda u, r: jnp.where(reject, r, u), step, updates_to(restep)
      )
      steps_done = jnp.where(reject, restepped.astype(jnp.int32), position + 1)
      next_pending = steps_done == jnp.asarray(lengths, jnp.int32)[level]
      next_position = jnp.where(next_pending, 0, steps_done)

      new_state = ScaleByAdaptiveFractalState(
        count=jnp.asarray(optax.safe_increment(state.count)),
        position=next_position.astype(jnp.int32),
        anchor=anchor,
        anchor_value=anchor_value.astype(dtype),
        grad=direction,
        value=state.value,
        max_curvature=big_m.astype(dtype),
        min_curvature=m_eff.astype(dtype),
        restarting=reject,
        retrying=reject | (state.retrying & ~accept),
        pending=next_pending,
        num_accepted=_add(state.num_accepted, accept),
        num_rejected=_add(state.num_rejected, reject),
        num_hvps=num_hvps,
        num_value_evals=num_value_evals,
        level=level.astype(jnp.int32),
        step_size=jnp.where(
          reject & ~restepped, 0.0, eta_taken.astype(dtype)
        ).astype(dtype),
      )
      return new_updates, new_state

    # A while loop of 0 or 1 trips, not lax.cond: a conditional copies every
    # parameter-sized array that its other branch passes through (on XLA:CPU
    # the anchor and ``grad``, at every update), a loop updates its carry in
    # place. Inside a cycle it does not run: ``state`` comes back unchanged
    # and only its counters move.
    if not _checks.is_traced(in_cycle):  # Without jit: no loop to compile.
      new_updates, new_state = (
        (step, state) if bool(in_cycle) else cycle_update(state)
      )
    else:
      _, new_updates, new_state = jax.lax.while_loop(
        lambda carry: carry[0],
        lambda carry: (jnp.asarray(False), *cycle_update(carry[2])),
        (~in_cycle, step, state),
      )
    steps_done = state.position + 1
    next_pending = steps_done == jnp.asarray(lengths, jnp.int32)[state.level]
    pick = lambda in_cycle_value, other: jnp.where(
      in_cycle, in_cycle_value, other
    )
    return new_updates, new_state._replace(
      count=pick(optax.safe_increment(state.count), new_state.count),
      position=pick(jnp.where(next_pending, 0, steps_done), new_state.position),
      restarting=pick(False, new_state.restarting),
      pending=pick(next_pending, new_state.pending),
      step_size=pick(eta.astype(dtype), new_state.step_size),
    )

  # optax types an update's `state` as the whole OptState union; like every
  # optax transformation, this one narrows it to its own state NamedTuple.
  return optax.GradientTransformationExtraArgs(
    init_fn,
    update_fn,  # pyright: ignore[reportArgumentType]
  )


def adaptive_fractal_sgd(
  num_steps: int = 1024,
  *,
  min_curvature: jax.typing.ArrayLike | None = None,
  l2_regularization: jax.typing.ArrayLike | None = None,
  max_condition_number: jax.typing.ArrayLike | None = None,
  max_curvature: jax.typing.ArrayLike | None = None,
  num_init_hvps: int = 32,
  adapt_max_curvature: bool = True,
  recheck_anchor: bool = False,
  seed: int = 0,
) -> optax.GradientTransformationExtraArgs:
  """The optimiser :func:`scale_by_adaptive_fractal` (its updates are final).

  The updates already hold the (negative) step, so no learning rate follows;
  arguments, guarantees and costs are those of
  :func:`scale_by_adaptive_fractal` (its **Composition** paragraph says what
  it chains after).

  Example:
    >>> import fractal_optax
    >>> opt = fractal_optax.adaptive_fractal_sgd(16, l2_regularization=1e-2)
  """
  return scale_by_adaptive_fractal(
    num_steps,
    min_curvature=min_curvature,
    l2_regularization=l2_regularization,
    max_condition_number=max_condition_number,
    max_curvature=max_curvature,
    num_init_hvps=num_init_hvps,
    adapt_max_curvature=adapt_max_curvature,
    recheck_anchor=recheck_anchor,
    seed=seed,
  )
