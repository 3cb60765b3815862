"""scale_by_adaptive_fractal: curvature repair, safeguards, optax and flax."""

import functools
import os
import subprocess
import sys

from absl.testing import absltest
from absl.testing import parameterized
import chex
from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np
import optax

import fractal_optax
from fractal_optax._adaptive import _all_finite

_DIM = 40


def _slack(anchor_value):
  """The rise of a cycle-end loss that is accepted as rounding (float32)."""
  return 8.0 * np.finfo(np.float32).eps * np.abs(anchor_value)


def _quadratic(kappa, top=1.0):
  """f(x) = ½ Σ a_i x_i², a geometric spectrum on [top/κ, top], float32."""
  a = jnp.asarray(np.geomspace(top / kappa, top, _DIM), jnp.float32)
  x0 = jnp.asarray(np.random.default_rng(0).normal(size=_DIM), jnp.float32)
  return (lambda x: 0.5 * jnp.sum(a * x * x)), x0


def _logistic(lam=1e-2, n=64, d=8, seed=0):
  """Binary logistic regression on random data with ½ λ ‖w‖²: convex."""
  rng = np.random.default_rng(seed)
  x = jnp.asarray(rng.normal(size=(n, d)) * 3.0, jnp.float32)
  y = jnp.asarray(rng.integers(0, 2, size=n), jnp.float32)

  def loss(w):
    logits = x @ w
    return jnp.mean(
      optax.sigmoid_binary_cross_entropy(logits, y)
    ) + 0.5 * lam * jnp.sum(w * w)

  return loss, jnp.zeros(d, jnp.float32)


def _bind(opt, loss):
  """``opt.update`` with ``value_fn=loss`` bound (so that it can be jitted)."""

  def update(grad, state, x, value):
    if isinstance(opt, optax.GradientTransformationExtraArgs):
      return opt.update(grad, state, x, value=value, grad=grad, value_fn=loss)
    return opt.update(grad, state, x)

  return update


def _run(opt, loss, x0, num_updates, variant=None):
  """Runs the optax loop; returns per-update losses (before each) and state."""
  update = _bind(opt, loss)
  update = update if variant is None else variant(update)
  state = opt.init(x0)
  x, losses = x0, []
  value_and_grad = jax.jit(jax.value_and_grad(loss))
  for _ in range(num_updates):
    value, grad = value_and_grad(x)
    updates, state = update(grad, state, x, value)
    x = optax.apply_updates(x, updates)
    assert bool(jnp.all(jnp.isfinite(x))), "non-finite parameters"
    losses.append(float(value))
  losses.append(float(loss(x)))
  return np.asarray(losses), state, x


@functools.cache
def _jitted_run(num_steps, kappa, guess, num_updates):
  """A compiled loop on the quadratic (shared by several tests)."""
  loss, x0 = _quadratic(kappa)
  opt = fractal_optax.adaptive_fractal_sgd(
    num_steps, min_curvature=1.0 / kappa, max_curvature=guess
  )

  def record(value, state):  # f(x_i) and the extra evaluations so far.
    return value, state.num_value_evals + 2 * state.num_hvps

  return loss, x0, _scanned(opt, loss, num_updates, record)


def _scanned(opt, loss, num_updates, record=lambda value, state: value):
  """A jitted ``lax.scan`` of the optax loop: ``x0 -> (x, state, records)``."""

  @jax.jit
  def run(x0):
    def body(carry, _):
      x, state = carry
      value, grad = jax.value_and_grad(loss)(x)
      updates, state = opt.update(
        grad, state, x, value=value, grad=grad, value_fn=loss
      )
      return (optax.apply_updates(x, updates), state), record(value, state)

    (x, state), records = jax.lax.scan(
      body, (x0, opt.init(x0)), None, length=num_updates
    )
    return x, state, records

  return run


class AdaptiveFractalTest(chex.TestCase):
  @chex.variants(with_jit=True, without_jit=True)
  def test_without_jit_equals_jit(self):
    loss, x0 = _quadratic(100.0)
    opt = fractal_optax.adaptive_fractal_sgd(
      8, min_curvature=0.01, max_curvature=0.01
    )
    # Cycles of 4 steps (κ_eff = 16) and 8 (48): two cycle ends are tested.
    _, state, x = _run(opt, loss, x0, 13, variant=self.variant)
    _, state_ref, x_ref = _run(opt, loss, x0, 13, variant=jax.jit)
    chex.assert_trees_all_close(x, x_ref, rtol=1e-5, atol=1e-7)
    chex.assert_trees_all_close(
      state.max_curvature, state_ref.max_curvature, rtol=1e-5
    )
    self.assertEqual(int(state.position), 1)
    self.assertEqual(int(state.num_accepted), 2)
    # Without jit only the branches taken run: a rejection's as well.
    low = fractal_optax.adaptive_fractal_sgd(
      8, min_curvature=0.01, max_curvature=0.05, num_init_hvps=0
    )
    _, state, x = _run(low, loss, x0, 13, variant=self.variant)
    _, state_ref, x_ref = _run(low, loss, x0, 13, variant=jax.jit)
    chex.assert_trees_all_close(x, x_ref, rtol=1e-5, atol=1e-7)
    self.assertGreaterEqual(int(state.num_rejected), 1)
    for field in ("num_rejected", "num_accepted", "num_hvps", "position"):
      self.assertEqual(
        int(getattr(state, field)), int(getattr(state_ref, field))
      )

  @parameterized.named_parameters(
    ("m_too_low", 0.01), ("m_too_high", 100.0), ("no_guess", None)
  )
  def test_wrong_max_curvature_is_corrected(self, guess):
    kappa, t = 100.0, 16
    loss, x0 = _quadratic(kappa)
    opt = fractal_optax.adaptive_fractal_sgd(
      t, min_curvature=1.0 / kappa, max_curvature=guess
    )
    # Cycles of 4 steps on [M/16, M], of 8 on [M/48, M], then of 16 on [m, M].
    losses, state, _ = _run(opt, loss, x0, 4 + 8 + 2 * t, variant=jax.jit)
    # M was measured at the first update: above λ_max = 1, with a margin.
    self.assertBetween(float(state.max_curvature), 1.0, 1.2)
    self.assertEqual(int(state.num_rejected), 0)
    # The fourth cycle's end is tested at the next update, on its value.
    self.assertEqual(int(state.num_accepted), 3)
    self.assertTrue(bool(state.pending))
    # The two cycles on [m, M] contract like the Chebyshev bound; the first
    # two, built for narrower bands, do not expand anything in [0, M].
    bound = fractal_optax.chebyshev_error_bound(
      t, 1.0 / kappa, float(state.max_curvature)
    )
    self.assertLess(losses[-1], losses[0] * (2 * bound**2) ** 2)

  @parameterized.named_parameters(("float32", jnp.float32), ("float64", None))
  def test_first_m_resolves_the_top_under_dominant_negative_curvature(
    self, dtype
  ):
    # A saddle like a ResNet's initialisation (benchmarks/resnet, seed 0):
    # large negative outliers, a bulk near 0 and a small positive top, 6.5
    # (float64 reference: the eigenvalues themselves). The first Krylov
    # vectors resolve the negative end (a few fixed steps give M ≈ 0.44); M must
    # still bound the positive top, the step limit 2/M of gradient descent.
    rng = np.random.default_rng(3)
    eigs = np.concatenate(
      [
        [-557.0, -105.0, -84.0, -61.0, -44.0, -30.0],
        np.random.default_rng(0).normal(0.0, 0.3, 200),
        [1.0, 2.0, 4.0, 6.5],
      ]
    )
    q, _ = np.linalg.qr(rng.normal(size=(eigs.size, eigs.size)))
    h = (q * eigs) @ q.T
    x0 = rng.normal(size=eigs.size)
    with jax.enable_x64(dtype is None):
      dtype = dtype or jnp.float64
      hj, x = jnp.asarray(h, dtype), jnp.asarray(x0, dtype)

      def loss(x):
        return 0.5 * x @ hj @ x

      opt = fractal_optax.adaptive_fractal_sgd(8, max_condition_number=10.0)
      _, state, _ = _run(opt, loss, x, 1, variant=jax.jit)
      big_m, spent = float(state.max_curvature), int(state.num_hvps)
    # (θ + r)(1 + 5%) with r ≤ 0.1 θ, θ ≤ 6.5: within 1.16× of the top.
    self.assertBetween(big_m, 6.5, 1.16 * 6.5)
    self.assertBetween(spent, 6, 32)  # More than the first 3.

  # The first cycle is built for κ_eff = min(κ, 16) (here 16 < κ); its
  # length is the shortest of T, ⌈T/2⌉, … with length² ≥ κ_eff: 4 of
  # (32, 16, 8, 4), 5 of (33, 17, 9, 5).
  @parameterized.parameters((32, 4), (33, 5))
  def test_one_cycle_matches_fractal_sgd_with_the_measured_interval(
    self, t, first
  ):
    kappa = 1e3
    loss, x0 = _quadratic(kappa)
    opt = fractal_optax.adaptive_fractal_sgd(t, min_curvature=1.0 / kappa)
    _, state, x = _run(opt, loss, x0, first, variant=jax.jit)
    self.assertTrue(bool(state.pending))  # The cycle ended after `first`.
    big_m = float(state.max_curvature)
    m_first = max(1.0 / kappa, big_m / 16)
    np.testing.assert_allclose(float(state.min_curvature), m_first, rtol=1e-6)
    ref = fractal_optax.fractal_sgd(first, m_first, big_m)
    _, _, x_ref = _run(ref, loss, x0, first, variant=jax.jit)
    chex.assert_trees_all_close(x, x_ref, rtol=1e-4, atol=1e-6)

  def test_step_size_is_the_step_taken(self):
    # No rejection on this quadratic: cycle k takes the fractal steps on
    # [m_k, M], m_k = max(m, M/16 / 3^k) (the first κ_eff is 16, and each
    # accepted cycle divides m_eff by 3 toward m), with T_k the shortest of
    # T, T/2, … with T_k² ≥ M/m_k (T if none is), and ``state.step_size``
    # reports exactly that η.
    kappa, t = 1e2, 16
    loss, x0 = _quadratic(kappa)
    opt = fractal_optax.adaptive_fractal_sgd(
      t, min_curvature=1 / kappa, max_curvature=1.0, num_init_hvps=0
    )
    update = jax.jit(_bind(opt, loss))
    cycles = [(4, 1 / 16), (8, 1 / 48), (16, 0.01), (16, 0.01)]
    steps = np.concatenate(
      [fractal_optax.fractal_chebyshev_step_sizes(n, m, 1.0) for n, m in cycles]
    )
    state, x = opt.init(x0), x0
    for i in range(steps.size):
      value, grad = jax.value_and_grad(loss)(x)
      updates, state = update(grad, state, x, value)
      np.testing.assert_allclose(float(state.step_size), steps[i], 1e-6)
      chex.assert_trees_all_close(
        updates, -state.step_size * grad, rtol=1e-6, atol=1e-7
      )
      x = optax.apply_updates(x, updates)
    self.assertEqual(int(state.num_rejected), 0)

  @parameterized.named_parameters(
    ("k1e3_low", 1e3, 0.01), ("k1e3_high", 1e3, 100.0), ("k1e4_low", 1e4, 0.01)
  )
  def test_cost_close_to_the_oracle_cycle(self, kappa, guess):
    # T = 84 and 265 (odd): the cycles are T, ⌈T/2⌉, … long.
    t = fractal_optax.chebyshev_num_steps(1.0 / kappa, 1.0, 1e-2)
    loss, x0, run = _jitted_run(t, kappa, guess, t)
    _, _, (values, overheads) = run(x0)
    oracle = fractal_optax.fractal_sgd(t, 1.0 / kappa, 1.0)
    _, _, x_oracle = _run(oracle, loss, x0, t, variant=jax.jit)
    # The oracle's loss after its T gradients is reached within 1.25× their
    # cost, counting the curvature evaluations (an HVP as 2): values[i] is
    # f(x_i), reached by i gradients and the overhead of updates 0 … i-1.
    reached = np.flatnonzero(np.asarray(values) <= float(loss(x_oracle)))
    self.assertNotEmpty(reached)
    i = int(reached[0])
    self.assertLessEqual(i + int(overheads[i - 1]), 1.25 * t)

  def test_anchor_losses_never_rise_on_a_convex_loss(self):
    loss, x0 = _logistic()
    t = 16
    # m = λ is far below the curvature at the start: the first cycles overshoot
    # into regions where the quadratic model fails, and must be rejected.
    opt = fractal_optax.adaptive_fractal_sgd(t, l2_regularization=1e-2)
    update = jax.jit(_bind(opt, loss))
    value_and_grad = jax.jit(jax.value_and_grad(loss))
    state = opt.init(x0)
    x, anchors = x0, []
    # Independent model of the cycle ends: update ``next_end`` tests the end
    # on the caller's value against the anchor's (beyond the loss's rounding)
    # or by the strong-convexity bound g·d ≤ ½ λ ‖d‖²; that update also takes
    # the first step of the next cycle, whose length is the shortest of t,
    # t/2, … (down to 4) whose square is at least M/m_eff (t if none is).
    # An accepted cycle divides m_eff by 3, unless it repaired a rejected one.
    next_end, anchor, accepted, rejected = 0, None, 0, 0
    retry, held, init_hvps = False, 0, -1
    for i in range(12 * t):
      value, grad = value_and_grad(x)
      m_before = float(state.min_curvature)
      if i == 0:
        anchor, anchor_x = float(value), np.asarray(x, np.float64)
      elif i == next_end:
        d = np.asarray(x, np.float64) - anchor_x
        certified = np.asarray(grad, np.float64) @ d <= 0.5 * 1e-2 * (d @ d)
        if float(value) <= anchor + _slack(anchor) or certified:
          anchor, accepted = float(value), accepted + 1
          anchor_x = np.asarray(x, np.float64)
          relaxed = m_before if retry else m_before / 3
          retry, held = False, held + retry
        else:
          rejected, relaxed, retry = rejected + 1, None, True
      updates, state = update(grad, state, x, value)
      if i and i == next_end and relaxed is not None:
        big_m = float(state.max_curvature)
        np.testing.assert_allclose(
          float(state.min_curvature),
          np.clip(relaxed, 1e-2, 0.5 * big_m),
          rtol=1e-6,
        )
      if i == 0:  # The first update measures M, by Lanczos steps only.
        init_hvps = int(state.num_hvps)
      x = optax.apply_updates(x, updates)
      anchors.append(float(state.anchor_value))
      if i == next_end:
        kappa_eff = float(state.max_curvature) / float(state.min_curvature)
        length = min(
          (n for n in (t, t // 2, t // 4) if n * n >= kappa_eff), default=t
        )
        self.assertEqual(t >> int(state.level), length)
        next_end = i + length
      if bool(state.restarting):  # Back at the anchor, one step taken.
        self.assertEqual(int(state.position), 1)
    anchors = np.asarray(anchors)
    self.assertTrue(
      np.all(np.diff(anchors) <= _slack(anchors[:-1])),
      msg=f"anchor losses rose: {anchors}",
    )
    self.assertGreater(rejected, 0)
    self.assertGreater(accepted, 0)
    self.assertGreater(held, 0)  # A repaired cycle was accepted.
    self.assertEqual(int(state.num_accepted), accepted)
    self.assertEqual(int(state.num_rejected), rejected)
    # Cost: at least 3 Lanczos HVPs at the first update, then one HVP per
    # accepted (power step) and per rejected (diagnosis at the anchor) cycle
    # end; no extra loss evaluation.
    self.assertBetween(init_hvps, 3, 32)
    self.assertEqual(
      int(state.num_hvps),
      init_hvps + int(state.num_rejected) + int(state.num_accepted),
    )
    self.assertEqual(int(state.num_value_evals), 0)
    # Converged (random labels: f* ≈ 0.63 > 0, the gradient vanishes).
    self.assertLess(anchors[-1], float(loss(x0)) - 0.05)
    grad_norm = float(jnp.linalg.norm(jax.grad(loss)(x)))
    self.assertLess(grad_norm, 1e-3)

  def test_progress_below_the_loss_resolution_is_kept_in_float32(self):
    # ½ xᵀAx − bᵀx near its optimum: f(x_T) and f(a) differ by less than the
    # rounding of f itself. Such cycle ends are accepted, not read as a failed
    # curvature model, so the error keeps falling past the loss's resolution.
    kappa, t = 1e3, 32
    a = jnp.asarray(np.geomspace(1 / kappa, 1.0, 256), jnp.float32)
    b = jnp.asarray(np.random.default_rng(0).normal(size=256), jnp.float32)
    loss = lambda x: 0.5 * jnp.sum(a * x * x) - jnp.sum(b * x)
    opt = fractal_optax.adaptive_fractal_sgd(t, min_curvature=1 / kappa)
    update = jax.jit(_bind(opt, loss))
    value_and_grad = jax.jit(jax.value_and_grad(loss))
    x = jnp.zeros(256, jnp.float32)
    state = opt.init(x)
    for _ in range(16 * t):
      value, grad = value_and_grad(x)
      updates, state = update(grad, state, x, value)
      x = optax.apply_updates(x, updates)
    error = float(jnp.linalg.norm(x - b / a) / jnp.linalg.norm(b / a))
    self.assertLess(error, 1e-6)
    self.assertEqual(int(state.num_rejected), 0)

  def test_rounding_of_a_cancelling_loss_does_not_raise_m(self):
    # Σ ½ a_i x_i² + c log cosh x as optax.losses.log_cosh computes it,
    # logaddexp(x, -x) - log 2: f* = 0, but f carries the rounding of
    # log 2 (about 1e-7 in float32), far above the relative slack 8 ε |f|
    # near the optimum. Such noise rejects cycles; read through f(x_T) - f(a)
    # over ‖d‖² it raised M to 1e7 and froze the iterate at ‖x‖ ≈ 3e-3.
    a = jnp.asarray(np.geomspace(0.01, 1.0, 20), jnp.float32)
    loss = lambda x: (
      jnp.sum(0.5 * a * x * x) + 2.0 * jnp.sum(optax.losses.log_cosh(x[-1:]))
    )
    opt = fractal_optax.adaptive_fractal_sgd(8, min_curvature=0.01)
    update = jax.jit(_bind(opt, loss))
    value_and_grad = jax.jit(jax.value_and_grad(loss))
    x = jnp.full(20, 6.0, jnp.float32)
    state, exact = opt.init(x), []
    for _ in range(600):
      value, grad = value_and_grad(x)
      updates, state = update(grad, state, x, value)
      x = optax.apply_updates(x, updates)
      a64 = np.asarray(state.anchor, np.float64)
      exact.append(
        np.sum(0.5 * np.asarray(a, np.float64) * a64**2)
        + 2.0 * np.log(np.cosh(a64[-1]))
      )
    self.assertLess(float(jnp.linalg.norm(x)), 1e-6)
    self.assertLess(float(state.max_curvature), 10.0)  # The top is 3.
    # The gradient test's guarantee: the exact losses of the anchors never
    # rise (up to the gradient's own rounding, below 1e-12 here).
    self.assertLessEqual(float(np.max(np.diff(exact))), 1e-12)

  def test_a_sharp_band_the_cycles_jump_over_does_not_stall(self):
    # Guarantee (4). A convex loss whose curvature is 10⁴ times higher in the
    # band 0.4 < x_i < 0.6, which the start's measurement of M misses: the
    # cycles jump over it and fail at the cap. A rule that read such a
    # failure as the loss's rounding (probing a ± d/16, which reaches the
    # band) stopped doubling M: no cycle was ever accepted in 2,000 updates.
    a = jnp.asarray(np.linspace(0.01, 1.0, 100), jnp.float32)
    relu = jax.nn.relu

    def loss(x):
      band = relu(x - 0.4) ** 2 - relu(x - 0.6) ** 2
      return 0.5 * jnp.sum(a * (x - 2.0) ** 2) + 5e3 * jnp.sum(a * band)

    x0 = jnp.asarray(np.random.default_rng(1).normal(size=100) * 0.3)
    opt = fractal_optax.adaptive_fractal_sgd(64, min_curvature=0.01)
    run = _scanned(opt, loss, 600, lambda value, state: state.anchor_value)
    _, state, anchors = run(x0.astype(jnp.float32))
    anchors = np.asarray(anchors)
    self.assertGreater(int(state.num_accepted), 10)
    self.assertGreater(float(state.max_curvature), 1e3)  # The band's 10⁴.
    self.assertLess(float(state.anchor_value), 0.5 * float(loss(x0)))
    self.assertTrue(np.all(np.diff(anchors) <= _slack(anchors[:-1])))

  def test_a_loss_of_lower_precision_than_params_sets_the_slack(self):
    # A bfloat16 loss of float32 params rounds at bfloat16's ε: a cycle end
    # whose loss is 4 bfloat16 ε above the anchor's is within the rounding
    # (8 ε |f|) and accepted; the same rise in a float32 loss is not.
    loss32, x = _quadratic(100.0)
    loss = lambda x: loss32(x).astype(jnp.bfloat16)
    opt = fractal_optax.adaptive_fractal_sgd(8, max_condition_number=100.0)
    update = jax.jit(_bind(opt, loss))
    grad_fn = jax.jit(jax.grad(loss32))
    state = opt.init(x)
    while not bool(state.pending):
      updates, state = update(grad_fn(x), state, x, loss(x))
      x = optax.apply_updates(x, updates)
    eps = float(jnp.finfo(jnp.bfloat16).eps)
    rise = float(state.anchor_value) * (1 + 4 * eps)
    accepted = {}
    for dtype in (jnp.bfloat16, jnp.float32):
      _, after = update(grad_fn(x), state, x, jnp.asarray(rise, dtype))
      accepted[jnp.dtype(dtype).name] = int(
        after.num_accepted - state.num_accepted
      )
    self.assertEqual(accepted, {"bfloat16": 1, "float32": 0})

  @parameterized.parameters(
    ("min_curvature", True), ("max_condition_number", False)
  )
  def test_gradient_acceptance_only_where_m_bounds_the_curvature(
    self, source, certified
  ):
    # The caller reports every cycle end's loss 10 above the truth. The
    # gradient test (∇f(x_T)ᵀd ≤ ½ m ‖d‖²) still certifies the descent when
    # m is a lower bound on the curvature; with max_condition_number, m is
    # not, so only the loss values decide and the cycle is rejected.
    kappa, t = 100.0, 32
    loss, x = _quadratic(kappa)
    m = {"min_curvature": 1 / kappa, "max_condition_number": kappa}
    opt = fractal_optax.adaptive_fractal_sgd(t, **{source: m[source]})
    update = jax.jit(_bind(opt, loss))
    value_and_grad = jax.jit(jax.value_and_grad(loss))
    state = opt.init(x)
    for _ in range(3 * t + 2):
      value, grad = value_and_grad(x)
      reported = value + 10.0 * state.pending.astype(value.dtype)
      updates, state = update(grad, state, x, reported)
      x = optax.apply_updates(x, updates)
    if certified:
      # Every acceptance is the gradient test's (the values rose by 10). The
      # test is only sufficient: the first cycle, 4 steps on [M/16, M],
      # contracts its band by only about cosh 2 ≈ 3.8, and its end fails it.
      self.assertGreaterEqual(int(state.num_accepted), 5)
      self.assertLessEqual(int(state.num_rejected), 1)
    else:
      self.assertEqual(int(state.num_accepted), 0)
      self.assertGreaterEqual(int(state.num_rejected), 1)

  def test_anchor_values_are_monotone_and_finite_under_overflow(self):
    # The loss is finite everywhere but overflows to inf far from 0, and M is
    # guessed 10⁴× too low without measuring it: the first cycle explodes.
    def loss(x):
      return jnp.sum(jnp.exp(jnp.abs(x)) - 1.0)

    x0 = jnp.full((4,), 2.0, jnp.float32)
    opt = fractal_optax.adaptive_fractal_sgd(
      8, max_condition_number=1e3, max_curvature=1e-3, num_init_hvps=0
    )
    update = jax.jit(opt.update, static_argnames="value_fn")
    state = opt.init(x0)
    x, anchors = x0, []
    for _ in range(20 * 8):
      value, grad = jax.value_and_grad(loss)(x)
      updates, state = update(
        grad, state, x, value=value, grad=grad, value_fn=loss
      )
      x = optax.apply_updates(x, updates)
      self.assertTrue(bool(jnp.all(jnp.isfinite(x))), msg=f"{x=}")
      anchors.append(float(state.anchor_value))
    anchors = np.asarray(anchors[1:])
    self.assertTrue(np.all(np.diff(anchors) <= _slack(anchors[:-1])))
    self.assertGreater(int(state.num_rejected), 0)
    self.assertGreater(float(state.max_curvature), 1e-3)
    self.assertLess(float(loss(x)), float(loss(x0)))

  @parameterized.product(
    name=("huber", "log_cosh", "poisson"), guess=(1e-3, 1e3)
  )
  def test_exact_anchor_losses_never_rise_on_convex_losses(self, name, guess):
    # Convex non-quadratic regressions with ½ λ ‖w‖², M guessed 1000× off.
    # The anchors' losses, in float64 (an independent numpy model), never
    # rise beyond float32 rounding, and the run converges.
    lam, rng = 1e-2, np.random.default_rng(0)
    a64 = rng.normal(size=(64, 8))
    y64 = a64 @ rng.normal(size=8) + rng.standard_cauchy(size=64)
    if name == "poisson":
      y64 = rng.poisson(np.exp(0.3 * a64 @ rng.normal(size=8))).astype(float)
    a, y = jnp.asarray(a64, jnp.float32), jnp.asarray(y64, jnp.float32)
    terms = {
      "huber": (
        lambda r, y: optax.losses.huber_loss(r, y),
        lambda r, y: np.where(
          np.abs(r - y) <= 1, 0.5 * (r - y) ** 2, np.abs(r - y) - 0.5
        ),
      ),
      "log_cosh": (
        optax.losses.log_cosh,
        lambda r, y: np.logaddexp(r - y, y - r) - np.log(2.0),
      ),
      "poisson": (
        lambda r, y: jnp.exp(0.3 * r) - 0.3 * y * r,
        lambda r, y: np.exp(0.3 * r) - 0.3 * y * r,
      ),
    }[name]

    def loss(w):
      return jnp.mean(terms[0](a @ w, y)) + 0.5 * lam * jnp.sum(w * w)

    def loss64(w):
      return np.mean(terms[1](a64 @ w, y64)) + 0.5 * lam * (w @ w)

    opt = fractal_optax.adaptive_fractal_sgd(
      8, l2_regularization=lam, max_curvature=guess
    )
    run = _scanned(opt, loss, 400, record=lambda value, state: state.anchor)
    w, _, anchors = run(jnp.zeros(8, jnp.float32))
    self.assertTrue(bool(jnp.all(jnp.isfinite(anchors))))
    exact = np.asarray([loss64(x) for x in np.asarray(anchors, np.float64)])
    self.assertTrue(
      np.all(np.diff(exact) <= 2 * _slack(exact[:-1]) + 1e-12),
      msg=f"anchor losses rose: {np.max(np.diff(exact))}",
    )
    self.assertLess(float(jnp.linalg.norm(jax.grad(loss)(w))), 1e-4)

  def test_a_sharp_region_between_anchor_and_end_raises_m(self):
    # Convex: ½ λ‖x‖² + w Σ log cosh(x_i − s). Its curvature λ + w sech²(x − s)
    # peaks at x = s, far from the start 0, where Lanczos measures M ≈ 0.13 <
    # 2.1 = the true top. The big steps jump over the peak, so neither the
    # anchor's HVP nor the secant over the whole segment exceeds M, and
    # raising m_eff alone soon reaches its cap M/2 and then repeats the same
    # failed cycle forever. A failed cycle at the cap raises M instead.
    lam, w, s = 0.1, 2.0, 3.0

    def loss(x):
      return 0.5 * lam * jnp.sum(x * x) + w * jnp.sum(
        jnp.logaddexp(x - s, s - x) - jnp.log(2.0)
      )

    def grad64(x):
      return lam * x + w * np.tanh(x - s)

    x0 = jnp.zeros(4, jnp.float32)
    opt = fractal_optax.adaptive_fractal_sgd(8, min_curvature=lam)
    update = jax.jit(_bind(opt, loss))
    value_and_grad = jax.jit(jax.value_and_grad(loss))
    state, x, anchors = opt.init(x0), x0, []
    for _ in range(25 * 8):
      value, grad = value_and_grad(x)
      anchor, was_pending = state.anchor, bool(state.pending)
      updates, state = update(grad, state, x, value)
      if was_pending and bool(state.restarting):
        # M now covers the secant curvature of the failed segment (float64).
        a, end = np.asarray(anchor, np.float64), np.asarray(x, np.float64)
        d = end - a
        secant = (grad64(end) - grad64(a)) @ d / (d @ d)
        self.assertGreaterEqual(float(state.max_curvature), secant)
      x = optax.apply_updates(x, updates)
      anchors.append(float(state.anchor_value))
    anchors = np.asarray(anchors)
    self.assertTrue(np.all(np.diff(anchors) <= _slack(anchors[:-1])))
    self.assertGreater(int(state.num_rejected), 0)
    self.assertGreater(int(state.num_accepted), int(state.num_rejected))
    self.assertGreater(float(state.max_curvature), lam + 0.5 * w)
    self.assertLess(float(jnp.linalg.norm(jax.grad(loss)(x))), 1e-4)

  def test_a_failed_cycle_with_m_too_low_measures_the_top(self):
    # f = ½ Σ a_i x_i², a_i in [0.01, 1], M trusted at 0.6: the first cycle
    # (4 steps on [M/16, M]) amplifies the components above 0.6 about 58×
    # and fails. The start holds them 30× below the flat ones, so the failed
    # displacement is mostly the cycle's progress along flat directions (its
    # Rayleigh quotient and the secant stay below 0.6: a probe along it left M
    # at 0.6); the end's gradient weights every component by its curvature and
    # resolves the top.
    a = jnp.asarray(np.linspace(0.01, 1.0, _DIM), jnp.float32)
    x0 = jnp.where(a > 0.6, 1.0, 30.0).astype(jnp.float32)
    opt = fractal_optax.adaptive_fractal_sgd(
      16, min_curvature=0.01, max_curvature=0.6, num_init_hvps=0
    )
    _, state, _ = _run(opt, lambda x: 0.5 * jnp.sum(a * x * x), x0, 5)
    self.assertEqual(int(state.num_rejected), 1)
    self.assertTrue(bool(state.restarting))
    self.assertBetween(float(state.max_curvature), 1.0, 1.2)
    # And m_eff rose 4× (the quadratic model is not trusted either).
    np.testing.assert_allclose(
      float(state.min_curvature), 4 * 0.6 / 16, rtol=1e-6
    )

  def test_nan_loss_keeps_parameters_finite(self):
    def loss(x):
      q = 0.5 * jnp.sum(x * x)
      return jnp.where(jnp.max(jnp.abs(x)) > 3.0, jnp.nan, q)

    x0 = jnp.ones((3,), jnp.float32)
    opt = fractal_optax.adaptive_fractal_sgd(
      8, min_curvature=1e-3, max_curvature=1.0, num_init_hvps=0
    )
    losses, state, x = _run(opt, loss, x0, 8 * 8, variant=jax.jit)
    self.assertGreater(int(state.num_rejected), 0)
    self.assertLess(float(loss(x)), 1e-3 * float(loss(x0)))
    del losses

  def test_without_jit_a_single_cycle_length(self):
    # T ≤ 7 has one cycle length: its one-branch lax.switch runs the step
    # generator eagerly, and the initial state (M = m_eff = 0) reached its
    # checks ("min_curvature must be finite and > 0").
    loss, x0 = _quadratic(10.0)
    opt = fractal_optax.adaptive_fractal_sgd(4, min_curvature=0.1)
    losses, state, _ = _run(opt, loss, x0, 5)
    self.assertEqual(int(state.num_accepted), 1)
    self.assertLess(losses[-1], losses[0])

  def test_integer_leaves_are_left_alone(self):
    # An int leaf's gradient is float0; the HVPs must not differentiate it.
    loss = lambda p: jnp.sum((p["w"] - p["n"]) ** 2)
    p = {"w": jnp.ones(3, jnp.float32), "n": jnp.arange(3)}
    opt = fractal_optax.adaptive_fractal_sgd(8, min_curvature=1.0)
    update = jax.jit(opt.update, static_argnames="value_fn")
    state = opt.init(p)
    for _ in range(20):
      value, grad = jax.value_and_grad(loss, allow_int=True)(p)
      updates, state = update(grad, state, p, value=value, value_fn=loss)
      p = optax.apply_updates(p, updates)
    np.testing.assert_array_equal(p["n"], np.arange(3))
    self.assertGreater(int(state.num_accepted), 1)
    self.assertLess(float(loss(p)), 1e-6)

  def test_a_rejection_remeasures_the_anchor_on_the_current_batch(self):
    # Mini-batches without recheck_anchor: one easy batch (its loss 10 lower)
    # is the first cycle end's, so its value becomes the anchor value and
    # every later batch's cycle end is higher. The rejection's pass measures
    # the anchor's loss on the current batch, and the next test compares
    # against that: before, every later cycle was rejected and M doubled
    # without end.
    loss, x0 = _quadratic(100.0)
    batched = lambda x, offset: loss(x) + offset
    opt = fractal_optax.adaptive_fractal_sgd(8, max_condition_number=100.0)
    update = jax.jit(opt.update, static_argnames="value_fn")
    value_and_grad = jax.jit(jax.value_and_grad(batched))
    state, x, easy = opt.init(x0), x0, True
    for _ in range(64):
      offset = jnp.float32(-10.0 if easy and bool(state.pending) else 0.0)
      easy = easy and not bool(state.pending)
      value, grad = value_and_grad(x, offset)
      updates, state = update(
        grad, state, x, value=value, value_fn=batched, offset=offset
      )
      x = optax.apply_updates(x, updates)
    self.assertEqual(int(state.num_rejected), 1)
    self.assertGreater(int(state.num_accepted), 4)
    self.assertLess(float(loss(state.anchor)), 1e-3 * float(loss(x0)))
    np.testing.assert_allclose(
      float(state.anchor_value), float(loss(state.anchor)), rtol=1e-6
    )

  def test_a_broken_batch_teaches_nothing(self):
    # A streak of batches whose loss is NaN everywhere (at the anchor too):
    # each update returns to the anchor, M and m_eff stay, and the run goes
    # on when the batches are clean. Before, every such update raised m_eff
    # 4× and then doubled M (10⁹ after 30 of them).
    loss, x0 = _quadratic(100.0)
    batched = lambda x, bad: jnp.where(bad, jnp.nan, loss(x))
    opt = fractal_optax.adaptive_fractal_sgd(8, min_curvature=0.01)
    update = jax.jit(opt.update, static_argnames="value_fn")
    value_and_grad = jax.jit(jax.value_and_grad(batched))
    state, x = opt.init(x0), x0
    for i in range(150):
      bad = jnp.asarray(10 <= i < 40)
      if i == 10:
        before = (state.max_curvature, state.min_curvature, state.anchor)
      value, grad = value_and_grad(x, bad)
      updates, state = update(
        grad, state, x, value=value, value_fn=batched, bad=bad
      )
      x = optax.apply_updates(x, updates)
      if i == 39:
        self.assertEqual(float(state.max_curvature), float(before[0]))
        self.assertEqual(float(state.min_curvature), float(before[1]))
        chex.assert_trees_all_equal(x, before[2])
    self.assertTrue(bool(jnp.all(jnp.isfinite(x))))
    self.assertLess(float(loss(state.anchor)), 1e-4 * float(loss(x0)))

  @parameterized.parameters(1e-25, 1e30)
  def test_the_loss_scale_does_not_change_the_measured_m(self, scale):
    # float32 products of a loss scaled by 10³⁰ (10⁻²⁵) have squares that
    # overflow (underflow): norms are taken of scaled vectors.
    loss, x0 = _quadratic(1e3)
    scaled = lambda x: scale * loss(x)
    opt = fractal_optax.adaptive_fractal_sgd(64, min_curvature=1e-3 * scale)
    _, state, _ = _run(opt, scaled, x0, 1, variant=jax.jit)
    self.assertBetween(float(state.max_curvature) / scale, 1.0, 1.2)

  def test_a_min_curvature_above_the_top_certifies_nothing(self):
    # m = 5 is stated for a loss whose curvature is at most 1 (and M is
    # guessed at 0.05, unmeasured). The gradient test, sound only where m is
    # a lower bound, certified cycles whose loss rose to 10¹¹. An M below
    # the stated m proves one of them wrong: then the loss alone decides.
    loss, x0 = _quadratic(1e3)
    opt = fractal_optax.adaptive_fractal_sgd(
      16, min_curvature=5.0, max_curvature=0.05, num_init_hvps=0
    )
    run = _scanned(opt, loss, 40, lambda value, state: state.anchor_value)
    _, state, anchors = run(x0)
    anchors = np.asarray(anchors)
    self.assertGreater(int(state.num_accepted), 0)
    self.assertTrue(np.all(np.diff(anchors) <= _slack(anchors[:-1])))

  def test_a_cycle_that_overflows_far_away_raises_m_at_most_4x(self):
    # 2-D Rosenbrock. A cycle ran into a region where the loss is 10²², and
    # the secant curvature of that segment raised M from 791 to 6·10¹²: the
    # steps shrank to nothing and the run stalled at f = 0.016.
    def rosenbrock(x):
      return 100.0 * (x[1] - x[0] ** 2) ** 2 + (1.0 - x[0]) ** 2

    x0 = jnp.asarray([-1.2, 1.0], jnp.float32)
    opt = fractal_optax.adaptive_fractal_sgd(64, max_condition_number=1e4)
    _, state, _ = _run(opt, rosenbrock, x0, 1000, variant=jax.jit)
    self.assertLess(float(state.max_curvature), 1e4)
    self.assertLess(float(state.anchor_value), 1e-8)

  def test_in_optax_chain_and_with_value_and_grad_from_state(self):
    loss, x0 = _quadratic(100.0)
    opt = fractal_optax.adaptive_fractal_sgd(8, min_curvature=0.01)
    chained = optax.chain(optax.identity(), opt)
    value_and_grad = optax.value_and_grad_from_state(loss)
    _, _, x_plain = _run(opt, loss, x0, 16, variant=jax.jit)

    @jax.jit
    def step(x, state):
      value, grad = value_and_grad(x, state=state)
      updates, state = chained.update(
        grad, state, x, value=value, grad=grad, value_fn=loss
      )
      return optax.apply_updates(x, updates), state

    state = chained.init(x0)
    x = x0
    for _ in range(16):
      x, state = step(x, state)
    chex.assert_trees_all_close(x, x_plain, rtol=1e-4, atol=1e-6)

  def test_traced_curvatures_inside_jit(self):
    loss, x0 = _quadratic(100.0)

    @jax.jit
    def run(m, guess):
      opt = fractal_optax.adaptive_fractal_sgd(
        8, min_curvature=m, max_curvature=guess
      )

      def body(carry, _):
        x, state = carry
        value, grad = jax.value_and_grad(loss)(x)
        updates, state = opt.update(grad, state, x, value=value, value_fn=loss)
        return (optax.apply_updates(x, updates), state), None

      (x, state), _ = jax.lax.scan(body, (x0, opt.init(x0)), None, length=16)
      return loss(x), state.max_curvature

    value, big_m = run(jnp.float32(0.01), jnp.float32(3.0))
    self.assertLess(float(value), 0.05 * float(loss(x0)))  # 2 cycles, κ=100.
    self.assertBetween(float(big_m), 1.0, 1.2)

  def test_donating_params_and_state(self):
    # The usual flax pattern: one jitted step that donates the params and
    # the optimiser state. init put params' own buffer (and one zero buffer
    # for several counters) into the state: "donate the same buffer twice".
    loss, x = _quadratic(100.0)
    opt = fractal_optax.adaptive_fractal_sgd(8, min_curvature=0.01)

    def step(x, state):
      value, grad = jax.value_and_grad(loss)(x)
      updates, state = opt.update(
        grad, state, x, value=value, grad=grad, value_fn=loss
      )
      return optax.apply_updates(x, updates), state

    step = jax.jit(step, donate_argnums=(0, 1))
    for init in (opt.init, jax.jit(opt.init)):
      x_i, state = jnp.array(x), init(jnp.array(x))
      for _ in range(16):
        x_i, state = step(x_i, state)
      self.assertLess(float(loss(x_i)), 0.05 * float(loss(x)))

  def test_init_puts_the_state_where_the_params_are(self):
    # The power-iteration vector was drawn on the default device even for
    # sharded params (jit in_shardings read from the state pinned it there).
    # Two host devices need a fresh process (XLA reads the flag at start).
    script = """
import jax, jax.numpy as jnp, numpy as np, fractal_optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
mesh = Mesh(np.array(jax.devices()), ("d",))
params = {"x": jax.device_put(jnp.arange(8.0), NamedSharding(mesh, P("d"))),
          "y": jax.device_put(jnp.ones((2, 3)), NamedSharding(mesh, P()))}
state = fractal_optax.adaptive_fractal_sgd(8, min_curvature=0.1).init(params)
assert jax.device_count() == 2
for tree in (state.grad, state.anchor):
  for k, p in params.items():
    assert tree[k].sharding.is_equivalent_to(p.sharding, p.ndim), k
print("ok")
"""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
    done = subprocess.run(
      [sys.executable, "-c", script],
      env=env,
      capture_output=True,
      text=True,
      timeout=300,
      check=False,
    )
    self.assertEqual(done.returncode, 0, done.stderr[-2000:])
    self.assertEqual(done.stdout.strip(), "ok")

  @parameterized.parameters(
    {"min_curvature": 1e-50},
    {"l2_regularization": 1e-45},
    {"max_condition_number": 1e300},
  )
  def test_an_m_that_underflows_in_the_dtype(self, **m):
    # m = 0 in float32 (or M/κ_max = 0): m_eff, divided by 3 at each
    # accepted cycle, reached 0 after about 80 cycles; the schedule then had
    # no interval and took steps of 1-4 on a loss whose top curvature is
    # 100, and cycles failed for good. m_eff now stays at least ε M.
    a = jnp.asarray(np.geomspace(1e-2, 100.0, _DIM), jnp.float32)
    loss = lambda x: 0.5 * jnp.sum(a * (x - 1.0) ** 2)
    opt = fractal_optax.adaptive_fractal_sgd(16, **m)
    _, state, values = _scanned(opt, loss, 2000)(jnp.zeros(_DIM))
    self.assertGreater(float(state.min_curvature), 0.0)
    self.assertGreater(int(state.num_accepted), 100)
    self.assertEqual(int(state.num_rejected), 0)
    self.assertLess(float(values[-1]), 1e-3 * float(values[0]))

  def test_traced_curvatures_that_are_not_valid(self):
    # Traced curvatures are not checked (no error can be raised under jit):
    # an m that is not finite and > 0 means no lower bound (m_eff ≥ ε M, no
    # gradient test), a bad max_curvature guess is ignored. Before, a NaN m
    # made m_eff NaN and a NaN guess with num_init_hvps=0 made M NaN.
    loss, x0 = _quadratic(100.0)

    @jax.jit
    def run(m, guess):
      opt = fractal_optax.adaptive_fractal_sgd(
        8, min_curvature=m, max_curvature=guess, num_init_hvps=0
      )
      _, state, values = _scanned(opt, loss, 400)(x0)
      return values[-1], state.min_curvature, state.max_curvature

    for m, guess in ((jnp.nan, 2.0), (-1.0, 2.0), (0.01, jnp.nan)):
      value, m_eff, big_m = run(jnp.float32(m), jnp.float32(guess))
      self.assertTrue(np.isfinite([value, m_eff, big_m]).all(), (m, guess))
      self.assertGreater(float(m_eff), 0.0)
      self.assertLess(float(value), 1e-3 * float(loss(x0)))

  def test_mini_batches_reach_value_fn(self):
    # A mini-batch loss: value_fn(params, batch=...) on the current batch.
    rng = np.random.default_rng(1)
    data = jnp.asarray(rng.normal(size=(4, 16, 3)), jnp.float32)

    w_true = jnp.array([1.0, -2.0, 0.5])

    def loss(w, batch):  # Consistent batches: they share one minimiser.
      return jnp.mean((batch @ (w - w_true)) ** 2) + 0.0005 * jnp.sum(w * w)

    opt = fractal_optax.adaptive_fractal_sgd(
      8, min_curvature=0.1, recheck_anchor=True
    )
    update = jax.jit(opt.update, static_argnames="value_fn")
    w = jnp.zeros(3, jnp.float32)
    state = opt.init(w)
    for i in range(48):
      batch = data[i % 4]
      value, grad = jax.value_and_grad(loss)(w, batch)
      updates, state = update(
        grad, state, w, value=value, grad=grad, value_fn=loss, batch=batch
      )
      w = optax.apply_updates(w, updates)
    full = lambda w: jnp.mean(jax.vmap(lambda b: loss(w, b))(data))
    # Batch Hessians differ from the one M was measured on: some cycles are
    # rejected, m_eff rises, and the full loss at the last accepted cycle end
    # still falls (inside a cycle nothing is promised).
    self.assertLess(float(full(state.anchor)), 1e-2 * float(full(jnp.zeros(3))))
    # One recheck of the anchor per tested cycle end.
    self.assertGreater(int(state.num_rejected), 0)
    self.assertEqual(
      int(state.num_value_evals),
      int(state.num_accepted) + int(state.num_rejected),
    )
    self.assertTrue(bool(jnp.all(jnp.isfinite(w))))

  def test_state_holds_two_parameter_sized_vectors(self):
    params = {"a": jnp.zeros((5, 3)), "b": jnp.zeros(7)}
    opt = fractal_optax.scale_by_adaptive_fractal(8, min_curvature=1.0)
    state = opt.init(params)
    sizes = [np.size(x) for x in jax.tree_util.tree_leaves(state)]
    n = 22
    self.assertEqual(sum(s for s in sizes if s > 1), 2 * n)
    self.assertEqual(sum(s for s in sizes if s == 1), len(state) - 2)

  def test_bad_input(self):
    make = fractal_optax.scale_by_adaptive_fractal
    with self.assertRaisesRegex(ValueError, "exactly one"):
      make(8)
    with self.assertRaisesRegex(ValueError, "exactly one"):
      make(8, min_curvature=1.0, l2_regularization=1.0)
    with self.assertRaisesRegex(ValueError, "min_curvature="):
      make(8, min_curvature=-1.0)
    with self.assertRaisesRegex(ValueError, "max_condition_number="):
      make(8, max_condition_number=0.5)
    with self.assertRaisesRegex(ValueError, "max_curvature="):
      make(8, min_curvature=1.0, max_curvature=float("nan"))
    with self.assertRaisesRegex(TypeError, "num_steps="):
      make(8.0, min_curvature=1.0)
    with self.assertRaisesRegex(ValueError, "num_steps="):
      make(0, min_curvature=1.0)
    with self.assertRaisesRegex(ValueError, "num_init_hvps="):
      make(8, min_curvature=1.0, num_init_hvps=1)
    with self.assertRaisesRegex(ValueError, "max_curvature=None"):
      make(8, min_curvature=1.0, num_init_hvps=0)
    with self.assertRaisesRegex(TypeError, "recheck_anchor="):
      make(8, min_curvature=1.0, recheck_anchor=1)
    opt = make(8, min_curvature=1.0)
    x = jnp.zeros(2)
    state = opt.init(x)
    with self.assertRaisesRegex(TypeError, "value_fn="):
      opt.update(x, state, x, value=0.0)
    with self.assertRaisesRegex(ValueError, "value=None"):
      opt.update(x, state, x, value_fn=jnp.sum)
    with self.assertRaisesRegex(ValueError, "params=None"):
      opt.update(x, state, value=0.0, value_fn=jnp.sum)
    with self.assertRaisesRegex(ValueError, "value must be the scalar loss"):
      opt.update(x, state, x, value=x, value_fn=jnp.sum)
    with self.assertRaisesRegex(TypeError, "value_fn's output must be"):
      opt.update(x, state, x, value=0.0, value_fn=lambda p: (p.sum(), {}))
    with self.assertRaisesRegex(
      ValueError, "updates .* structure and shapes of params"
    ):
      opt.update({"a": x}, state, x, value=0.0, value_fn=jnp.sum)
    with self.assertRaisesRegex(TypeError, "state of type NoneType"):
      opt.update(x, None, x, value=0.0, value_fn=jnp.sum)
    with self.assertRaisesRegex(ValueError, "params must be finite"):
      opt.init(jnp.asarray([1.0, jnp.inf]))
    with self.assertRaisesRegex(ValueError, "seed="):
      make(8, min_curvature=1.0, seed=2**70)
    with self.assertRaisesRegex(ValueError, "finite and > 1"):
      make(8, max_condition_number=float("inf"))
    with self.assertRaisesRegex(TypeError, "params must be real.*complex64"):
      opt.init({"a": x, "z": x.astype(jnp.complex64)})
    with self.assertRaisesRegex(TypeError, "updates must be real"):
      opt.update(x.astype(jnp.complex64), state, x, value=0.0, value_fn=jnp.sum)
    with self.assertRaisesRegex(TypeError, "value must be the real float"):
      opt.update(x, state, x, value=jnp.complex64(0), value_fn=jnp.sum)
    with self.assertRaisesRegex(TypeError, "value must be .*got dtype int32"):
      opt.update(x, state, x, value=jnp.int32(0), value_fn=jnp.sum)
    with self.assertRaisesRegex(
      TypeError, "value_fn's output must be .*got dtype int32"
    ):
      opt.update(
        x, state, x, value=0.0, value_fn=lambda p: jnp.sum(p).astype(int)
      )
    with self.assertRaisesRegex(
      TypeError, r"state .* dtypes of params, got \['float32'\] .*bfloat16"
    ):
      y = x.astype(jnp.bfloat16)
      opt.update(y, state, y, value=0.0, value_fn=jnp.sum)
    with self.assertRaisesRegex(
      ValueError, r"updates .*\(3,\) for params \(2,\)"
    ):
      opt.update(jnp.zeros(3), state, x, value=0.0, value_fn=jnp.sum)
    masked = optax.masked(opt, {"a": True, "b": False})
    params = {"a": x, "b": x}
    with self.assertRaisesRegex(ValueError, "optax.masked"):
      masked.update(
        params, masked.init(params), params, value=0.0, value_fn=jnp.sum
      )
    with self.assertRaisesRegex(
      ValueError, r"state \(the one init returned\) must"
    ):
      opt.update(jnp.zeros(3), state, jnp.zeros(3), value=0.0, value_fn=jnp.sum)
    with self.assertRaisesRegex(
      ValueError, r"state \(the one init returned\) must"
    ):
      opt.update({"a": x}, state, {"a": x}, value=0.0, value_fn=jnp.sum)
    # A 0-d int array is an int (as num_steps accepts it).
    make(8, min_curvature=1.0, num_init_hvps=jnp.asarray(8))
    empty = jnp.zeros((0,))
    updates, _ = opt.update(
      empty, opt.init(empty), empty, value=0.0, value_fn=jnp.sum
    )
    self.assertEqual(updates.shape, (0,))


class AllFiniteTest(parameterized.TestCase):
  """``_all_finite`` (max |x| per leaf) against numpy's ``isfinite``."""

  @parameterized.product(
    dtype=("float32", "bfloat16", "float16"),
    bad=(None, np.nan, np.inf, -np.inf),
    position=(0, 700, 1000),
  )
  def test_matches_numpy(self, dtype, bad, position):
    x = np.full(1001, 3.0, np.float32)
    x[-1] = 65504.0  # float16's largest finite value is finite.
    if bad is not None:
      x[position] = bad
    tree = {
      "x": jnp.asarray(x, dtype),
      "empty": jnp.zeros((0,), dtype),
      "count": jnp.arange(3),
    }
    expected = bool(np.all(np.isfinite(x)))
    self.assertEqual(bool(_all_finite(tree)), expected)
    self.assertEqual(bool(jax.jit(_all_finite)(tree)), expected)

  def test_float64_beyond_float32_range_is_finite(self):
    with jax.enable_x64(True):
      x = jnp.asarray([1e300, -1e300, 3.0], jnp.float64)
      self.assertTrue(bool(jax.jit(_all_finite)({"x": x})))
      self.assertFalse(bool(jax.jit(_all_finite)({"x": x.at[2].set(np.inf)})))


class _Tiny(nnx.Module):
  def __init__(self, rngs: nnx.Rngs):
    self.linear = nnx.Linear(3, 1, rngs=rngs)

  def __call__(self, x):
    return self.linear(x)[..., 0]


class FlaxNnxTest(absltest.TestCase):
  def test_nnx_optimizer_passes_value_fn(self):
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(64, 3)), jnp.float32)
    y = x @ jnp.array([1.0, -2.0, 0.5]) + 0.3
    model = _Tiny(nnx.Rngs(0))
    tx = fractal_optax.adaptive_fractal_sgd(16, max_condition_number=100.0)
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)

    @nnx.jit
    def train_step(model, optimizer, x, y):
      graphdef, params, rest = nnx.split(model, nnx.Param, ...)

      def value_fn(params):
        return jnp.mean((nnx.merge(graphdef, params, rest)(x) - y) ** 2)

      loss, grads = nnx.value_and_grad(lambda m: jnp.mean((m(x) - y) ** 2))(
        model
      )
      optimizer.update(model, grads, value=loss, grad=grads, value_fn=value_fn)
      return loss

    losses = [float(train_step(model, optimizer, x, y)) for _ in range(48)]
    self.assertLess(losses[-1], 1e-4 * losses[0])
    self.assertEqual(int(optimizer.step[...]), 48)


if __name__ == "__main__":
  absltest.main()
