"""Tests of the silver step sizes and schedules (fractal_optax/_silver.py).

Against tests/reference.py's mpmath recursion (written from the papers'
definitions, not the library's ν formula), closed forms, properties, bad
input, count dtypes, jit, and PEPit's own silver examples.
"""

import importlib.util
import math
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

import fractal_optax
import reference

_HAS_PEPIT = importlib.util.find_spec("PEPit") is not None
_SQRT2 = math.sqrt(2.0)


class SilverStepSizesTest(chex.TestCase):
  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.parameters(
    (1, 0.5, 2.0),
    (2, 0.1, 1.0),
    (3, 0.1, 1.0),
    (8, 1e-3, 10.0),
    (13, 0.01, 1.0),
    (64, 1.0, 1e6),
  )
  def test_matches_reference_float32(self, t, m, big_m):
    steps = self.variant(lambda a, b: fractal_optax.silver_step_sizes(t, a, b))(
      m, big_m
    )
    chex.assert_shape(steps, (t,))
    chex.assert_type(steps, jnp.float32)
    np.testing.assert_allclose(
      steps, reference.silver_step_sizes(t, m, big_m), rtol=2e-6
    )

  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.parameters(
    (1, 0.1, 1.0), (5, 0.1, 3.2), (16, 1e-3, 1.0), (100, 1e-5, 2.0)
  )
  def test_matches_reference_float64(self, t, m, big_m):
    with jax.enable_x64(True):
      steps = self.variant(
        lambda a, b: fractal_optax.silver_step_sizes(t, a, b)
      )(jnp.float64(m), jnp.float64(big_m))
      chex.assert_type(steps, jnp.float64)
    np.testing.assert_allclose(
      steps, reference.silver_step_sizes(t, m, big_m), rtol=1e-12
    )

  def test_closed_forms(self):
    m, big_m = 0.1, 1.0
    (one,) = np.asarray(fractal_optax.silver_step_sizes(1, m, big_m))
    self.assertAlmostEqual(one, 2.0 / (big_m + m), places=6)  # T = 1.
    # T = 2: z_2 = z_1 (η + √(1 + η²)), y_2 = z_1 / (…), η = 1 − 1/κ.
    z1, eta = m / big_m, 1.0 - m / big_m
    root = eta + math.sqrt(1.0 + eta * eta)
    psi = lambda t: (1.0 + t * big_m / m) / (1.0 + t) / big_m
    np.testing.assert_allclose(
      fractal_optax.silver_step_sizes(2, m, big_m),
      [psi(z1 / root), psi(z1 * root)],
      rtol=1e-6,
    )
    # κ = 1: every step is the exact 1/M.
    np.testing.assert_allclose(
      fractal_optax.silver_step_sizes(8, 2.0, 2.0), np.full(8, 0.5)
    )

  @parameterized.parameters(4, 16, 256)
  def test_ruler_sequence(self, t):
    # In a power-of-two block step i < T depends only on ν(i); the last is
    # the longest step, and the first step is a_2 whatever T.
    steps = np.asarray(fractal_optax.silver_step_sizes(t, 0.001, 1.0))
    for i in range(1, t):
      self.assertEqual(steps[i - 1], steps[(i & -i) - 1])
    self.assertEqual(steps[-1], steps.max())
    self.assertEqual(
      steps[0], fractal_optax.silver_step_sizes(2, 0.001, 1.0)[0]
    )

  def test_other_t_concatenates_binary_blocks(self):
    m, big_m = 0.01, 1.0
    blocks = [fractal_optax.silver_step_sizes(t, m, big_m) for t in (1, 4, 8)]
    np.testing.assert_array_equal(
      fractal_optax.silver_step_sizes(13, m, big_m), np.concatenate(blocks)
    )

  def test_traced_curvatures_from_device(self):
    @jax.jit
    def steps_from_matrix(a):
      eig = jnp.linalg.eigvalsh(a)
      return fractal_optax.silver_step_sizes(8, eig[0], eig[-1])

    steps = steps_from_matrix(jnp.diag(jnp.array([0.1, 0.5, 1.0])))
    np.testing.assert_allclose(
      steps, reference.silver_step_sizes(8, 0.1, 1.0), rtol=2e-6
    )


class SilverErrorBoundTest(parameterized.TestCase):
  @parameterized.parameters(
    (1, 0.1, 1.0), (8, 0.1, 1.0), (6, 0.1, 3.2), (16, 1e-3, 1.0)
  )
  def test_matches_reference(self, t, m, big_m):
    self.assertAlmostEqual(
      fractal_optax.silver_error_bound(t, m, big_m),
      reference.silver_error_bound(t, m, big_m),
      delta=1e-13,
    )

  def test_closed_forms(self):
    kappa = 10.0
    self.assertAlmostEqual(
      fractal_optax.silver_error_bound(1, 1.0, kappa),
      (kappa - 1) / (kappa + 1),
    )
    self.assertEqual(fractal_optax.silver_error_bound(4, 2.0, 2.0), 0.0)
    # Binary blocks compose: T = 6 = 2 + 4.
    self.assertAlmostEqual(
      fractal_optax.silver_error_bound(6, 1.0, kappa),
      fractal_optax.silver_error_bound(2, 1.0, kappa)
      * fractal_optax.silver_error_bound(4, 1.0, kappa),
    )

  def test_attained_on_quadratics(self):
    # PEPit's example (κ = 10, n = 8): ‖x_8 − x*‖² ≤ 0.0169783, attained by
    # a quadratic: the sup over [m, M] of the step polynomial meets it.
    steps = np.asarray(reference.silver_step_sizes(8, 0.1, 1.0))
    lam = np.linspace(0.1, 1.0, 100001)
    sup = np.max(np.abs(np.prod(1.0 - np.outer(steps, lam), axis=0)))
    bound = fractal_optax.silver_error_bound(8, 0.1, 1.0)
    self.assertAlmostEqual(sup, bound, delta=1e-7)
    self.assertAlmostEqual(bound**2, 0.0169783, delta=2e-7)

  def test_bad_input(self):
    with self.assertRaisesRegex(TypeError, "min_curvature"):
      jax.jit(lambda m: fractal_optax.silver_error_bound(4, m, 1.0))(0.1)
    with self.assertRaisesRegex(ValueError, "num_steps=0"):
      fractal_optax.silver_error_bound(0, 0.1, 1.0)


class SilverConvexTest(chex.TestCase):
  def test_first_values(self):
    steps = fractal_optax.silver_convex_step_sizes(8, 1.0)
    rho = 1.0 + _SQRT2
    np.testing.assert_allclose(
      steps,
      [_SQRT2, 2.0, _SQRT2, 2.0 + _SQRT2, _SQRT2, 2.0, _SQRT2, 1.0 + rho**2],
      rtol=1e-6,
    )
    self.assertAlmostEqual(1.0 + rho**2, 4.0 + 2.0 * _SQRT2)

  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.parameters((1, 1.0), (7, 10.0), (31, 0.5), (100, 3.0))
  def test_matches_reference(self, t, big_m):
    steps = self.variant(
      lambda b: fractal_optax.silver_convex_step_sizes(t, b)
    )(big_m)
    chex.assert_shape(steps, (t,))
    np.testing.assert_allclose(
      steps, reference.silver_convex_step_sizes(t, big_m), rtol=1e-6
    )

  def test_prefix_consistent(self):
    long = fractal_optax.silver_convex_step_sizes(63, 2.0)
    for t in (1, 3, 7, 20):
      np.testing.assert_array_equal(
        fractal_optax.silver_convex_step_sizes(t, 2.0), long[:t]
      )

  def test_float64(self):
    with jax.enable_x64(True):
      steps = fractal_optax.silver_convex_step_sizes(15, jnp.float64(4.0))
      chex.assert_type(steps, jnp.float64)
    np.testing.assert_allclose(
      steps, reference.silver_convex_step_sizes(15, 4.0), rtol=1e-14
    )

  def test_schedule(self):
    schedule = fractal_optax.silver_convex_schedule(3, 2.0)
    np.testing.assert_allclose(
      schedule(jnp.arange(7)),
      np.tile(reference.silver_convex_step_sizes(3, 2.0), 3)[:7],
      rtol=1e-6,
    )
    held = fractal_optax.silver_convex_schedule(3, 2.0, cycle=False)
    np.testing.assert_allclose(
      held(jnp.arange(5)), np.array([1, _SQRT2, 1, 1, 1]) / _SQRT2, rtol=1e-6
    )
    traced = jax.jit(
      lambda b, c: fractal_optax.silver_convex_schedule(3, b, scale=0.5)(c)
    )(2.0, jnp.arange(7))
    np.testing.assert_allclose(traced, 0.5 * schedule(jnp.arange(7)))


class SilverScheduleTest(chex.TestCase):
  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.parameters(True, False)
  def test_cycle_and_hold(self, cycle):
    t, m, big_m = 4, 0.01, 1.0
    table = reference.silver_step_sizes(t, m, big_m)
    counts = jnp.arange(11)
    values = self.variant(
      lambda a, b, c: fractal_optax.silver_schedule(t, a, b, cycle=cycle)(c)
    )(m, big_m, counts)
    index = counts % t if cycle else jnp.minimum(counts, t - 1)
    np.testing.assert_allclose(values, table[index], rtol=2e-6)

  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.parameters(2.0, 10.0, 1e3, 1e5)
  def test_default_is_the_horizon(self, kappa):
    k = fractal_optax.silver_num_doublings(1.0 / kappa, 1.0)
    self.assertEqual(
      k,
      0
      if kappa <= 3
      else math.floor(math.log(kappa / 3) / math.log(1 + math.sqrt(2))),
    )
    table = np.tile(reference.silver_step_sizes(2**k, 1 / kappa, 1.0), 3)
    with jax.enable_x64(True):
      values = self.variant(
        lambda a, c: fractal_optax.silver_schedule(None, a, 1.0)(c)
      )(jnp.float64(1 / kappa), jnp.arange(table.size))
    np.testing.assert_allclose(values, table, rtol=1e-12)

  def test_traced_horizon_holds(self):
    # κ = 1e3: horizon 2**6; the traced period clips the count at 63.
    fn = jax.jit(
      lambda a, c: fractal_optax.silver_schedule(None, a, 1.0, cycle=False)(c)
    )
    counts = jnp.array([0, 5, 63, 64, 2**31 - 1], jnp.int32)
    table = reference.silver_step_sizes(64, 1e-3, 1.0)
    np.testing.assert_allclose(
      fn(1e-3, counts), table[[0, 5, 63, 63, 63]], rtol=2e-6
    )
    self.assertEqual(
      int(jax.jit(fractal_optax.silver_num_doublings)(1e-3, 1.0)), 6
    )

  @chex.variants(with_jit=True, without_jit=True)
  @parameterized.parameters(
    "int8", "int16", "int32", "uint8", "uint16", "uint32", "float32"
  )
  def test_count_dtypes(self, dtype):
    t, m, big_m = 5, 0.01, 1.0
    table = reference.silver_step_sizes(t, m, big_m)
    top = (
      int(jnp.iinfo(dtype).max)
      if jnp.issubdtype(dtype, jnp.integer)
      else 2**24 - 1
    )
    counts = np.array([0, 1, 6, top - 1, top], dtype=np.int64)
    for traced in (False, True):
      fn = self.variant(
        lambda a, c, traced=traced: fractal_optax.silver_schedule(
          t, a if traced else m, big_m
        )(c)
      )
      values = fn(m, jnp.asarray(counts, dtype))
      np.testing.assert_allclose(values, table[counts % t], rtol=2e-6)
      horizon = self.variant(
        lambda a, c, traced=traced: fractal_optax.silver_schedule(
          None, a if traced else 0.01, 1.0
        )(c)
      )
      period = 2 ** fractal_optax.silver_num_doublings(0.01, 1.0)
      expected = reference.silver_step_sizes(period, 0.01, 1.0)
      np.testing.assert_allclose(
        horizon(m, jnp.asarray(counts, dtype)),
        expected[counts % period],
        rtol=2e-6,
      )

  def test_64_bit_and_host_counts(self):
    t = 6
    table = reference.silver_step_sizes(t, 0.1, 1.0)
    schedule = fractal_optax.silver_schedule(t, 0.1, 1.0)
    with jax.enable_x64(True):
      for dtype in (jnp.int64, jnp.uint64):
        top = int(jnp.iinfo(dtype).max)
        np.testing.assert_allclose(
          jax.jit(schedule)(jnp.asarray(top, dtype)), table[top % t], rtol=2e-6
        )
    for count in (2**70 + 3, np.uint64(2**64 - 1), -5, 7.9):
      index = max(math.floor(count), 0) % t if count >= 0 else 0
      if isinstance(count, np.uint64):
        index = (2**64 - 1) % t
      np.testing.assert_allclose(schedule(count), table[index], rtol=2e-6)

  def test_vmap_equals_loop(self):
    schedule = fractal_optax.silver_schedule(7, 0.05, 1.0)
    counts = jnp.arange(9)
    chex.assert_trees_all_close(
      jax.vmap(schedule)(counts), jnp.stack([schedule(c) for c in counts])
    )

  def test_scale(self):
    base = fractal_optax.silver_schedule(4, 0.1, 1.0)
    scaled = fractal_optax.silver_schedule(4, 0.1, 1.0, scale=0.1)
    decayed = fractal_optax.silver_schedule(
      4, 0.1, 1.0, scale=lambda c: 1.0 / (1.0 + c)
    )
    counts = jnp.arange(6)
    np.testing.assert_allclose(scaled(counts), 0.1 * base(counts), rtol=1e-6)
    np.testing.assert_allclose(
      decayed(counts), base(counts) / (1.0 + counts), rtol=1e-6
    )

  def test_optax_sgd_compiles_once(self):
    traces = []

    @jax.jit
    def run(m, x):
      traces.append(1)
      tx = optax.sgd(fractal_optax.silver_schedule(None, m, 1.0))
      state = tx.init(x)
      for _ in range(4):
        updates, state = tx.update(x, state)  # Gradient of |x|²/2.
        x = optax.apply_updates(x, updates)
      return x

    for kappa in (10.0, 1e3):
      x = run(jnp.float32(1 / kappa), jnp.ones(2))
      period = 2 ** fractal_optax.silver_num_doublings(1 / kappa, 1.0)
      steps = reference.silver_step_sizes(period, 1 / kappa, 1.0)
      expected = np.prod([1 - steps[i % period] for i in range(4)])
      np.testing.assert_allclose(x, np.full(2, expected), rtol=1e-5)
    self.assertLen(traces, 1)


class SilverBadInputTest(parameterized.TestCase):
  @parameterized.parameters(
    (0, ValueError, "num_steps=0"),
    (-3, ValueError, "num_steps=-3"),
    (2**24 + 1, ValueError, "num_steps=16777217"),
    (2.0, TypeError, "num_steps=2.0"),
    (True, TypeError, "num_steps=True"),
  )
  def test_num_steps(self, t, error, message):
    for fn in (
      lambda: fractal_optax.silver_step_sizes(t, 0.1, 1.0),
      lambda: fractal_optax.silver_schedule(t, 0.1, 1.0),
      lambda: fractal_optax.silver_convex_step_sizes(t, 1.0),
      lambda: fractal_optax.silver_convex_schedule(t, 1.0),
      lambda: fractal_optax.silver_error_bound(t, 0.1, 1.0),
    ):
      with self.assertRaisesRegex(error, message):
        fn()
    with self.assertRaisesRegex(TypeError, "num_steps"):
      fractal_optax.silver_convex_schedule(None, 1.0)

  @parameterized.parameters(
    (1.0, 0.5, ValueError, "min_curvature=1.0 > max_curvature=0.5"),
    (0.0, 1.0, ValueError, "min_curvature=0.0"),
    (0.1, math.inf, ValueError, "max_curvature=inf"),
    (math.nan, 1.0, ValueError, "min_curvature=nan"),
    ("a", 1.0, TypeError, "min_curvature='a'"),
    (0.1, None, TypeError, "max_curvature=None"),
  )
  def test_curvatures(self, m, big_m, error, message):
    for fn in (
      fractal_optax.silver_step_sizes,
      fractal_optax.silver_schedule,
      fractal_optax.silver_error_bound,
    ):
      with self.assertRaisesRegex(error, message):
        fn(4, m, big_m)
    with self.assertRaisesRegex(error, message):
      fractal_optax.silver_num_doublings(m, big_m)

  def test_convex_curvature(self):
    with self.assertRaisesRegex(ValueError, "max_curvature=0.0"):
      fractal_optax.silver_convex_step_sizes(3, 0.0)
    with self.assertRaisesRegex(ValueError, "max_curvature=-1.0"):
      fractal_optax.silver_convex_schedule(3, -1.0)

  def test_schedule_arguments(self):
    with self.assertRaisesRegex(TypeError, "cycle=1"):
      fractal_optax.silver_schedule(4, 0.1, 1.0, cycle=1)
    with self.assertRaisesRegex(ValueError, "scale=-1.0"):
      fractal_optax.silver_schedule(4, 0.1, 1.0, scale=-1.0)
    with self.assertRaisesRegex(TypeError, "scale='x'"):
      fractal_optax.silver_convex_schedule(3, 1.0, scale="x")
    with self.assertRaisesRegex(ValueError, "overflows float32"):
      fractal_optax.silver_schedule(4, 0.1, 1.0, scale=1e38)
    with self.assertRaisesRegex(ValueError, "overflows float32"):
      fractal_optax.silver_step_sizes(2, 1e-40, 1e-39)
    with self.assertRaisesRegex(TypeError, "complex"):
      fractal_optax.silver_schedule(4, 0.1, 1.0)(1j)
    with self.assertRaisesRegex(ValueError, "count must be finite"):
      fractal_optax.silver_schedule(4, 0.1, 1.0)(math.nan)

  def test_num_doublings_clipped(self):
    self.assertEqual(fractal_optax.silver_num_doublings(1.0, 1e30), 24)
    self.assertEqual(
      int(jax.jit(fractal_optax.silver_num_doublings)(1.0, 1e30)), 24
    )


def _pepit_strongly_convex_steps(n, mu, big_l):
  """The steps PEPit's strongly convex silver example takes, and its τ.

  The example is run with ``PEP.solve`` patched out; its performance metric
  ``‖x_n − x*‖²`` with ``x_n = x_0 − Σ_t γ_t g_t`` has the coefficient
  ``γ_t²`` on ``g_t·g_t`` (gradients are the leaves after x* and x_0).
  """
  from PEPit import PEP  # pylint: disable=g-import-not-at-top
  from PEPit.examples.unconstrained_convex_minimization import (  # pylint: disable=g-import-not-at-top
    gradient_descent_silver_stepsize_strongly_convex as example,
  )

  metrics = []
  with (
    mock.patch.object(PEP, "solve", lambda self, *a, **k: 0.0),
    mock.patch.object(
      PEP,
      "set_performance_metric",
      lambda self, e, name=None: metrics.append(e),
    ),
    mock.patch("warnings.warn"),
  ):
    _, tau = example.wc_gradient_descent_silver_stepsize_strongly_convex(
      L=big_l, mu=mu, n=n, verbose=-1
    )
  (metric,) = metrics
  diagonal = {p: c for (p, q), c in metric.decomposition_dict.items() if p is q}
  leaves = sorted(diagonal, key=lambda p: p.counter)
  return np.sqrt([diagonal[p] for p in leaves[2:]]), tau


def _pepit_convex_steps(n, big_l):
  """The steps PEPit's convex silver example takes: from ``x_n``'s terms."""
  from PEPit import PEP  # pylint: disable=g-import-not-at-top
  from PEPit.examples.unconstrained_convex_minimization import (  # pylint: disable=g-import-not-at-top
    gradient_descent_silver_stepsize_convex as example,
  )
  from PEPit.function import Function  # pylint: disable=g-import-not-at-top

  points, add_point = [], Function.add_point

  def recording(self, triplet):
    points.append(triplet[0])
    return add_point(self, triplet)

  with (
    mock.patch.object(PEP, "solve", lambda self, *a, **k: 0.0),
    mock.patch.object(Function, "add_point", recording),
  ):
    example.wc_gradient_descent_silver_stepsize_convex(L=big_l, n=n, verbose=-1)
  last = points[-1].decomposition_dict  # x_n = x_0 − Σ γ_t g_t.
  leaves = sorted(last, key=lambda p: p.counter)
  return -np.array([last[p] for p in leaves[1:]])


@absltest.skipUnless(_HAS_PEPIT, "PEPit is not installed")
class PEPitExamplesTest(parameterized.TestCase):
  @parameterized.parameters(
    (1, 0.1, 1.0),
    (2, 0.1, 3.2),
    (8, 0.1, 3.2),
    (16, 0.01, 1.0),
    (6, 0.1, 3.2),
    (11, 0.05, 2.0),
  )
  def test_strongly_convex_example(self, n, mu, big_l):
    steps, tau = _pepit_strongly_convex_steps(n, mu, big_l)
    with jax.enable_x64(True):
      ours = fractal_optax.silver_step_sizes(n, jnp.float64(mu), big_l)
    np.testing.assert_allclose(ours, steps, rtol=1e-12)
    self.assertAlmostEqual(
      fractal_optax.silver_error_bound(n, mu, big_l) ** 2, tau, delta=1e-14
    )

  @parameterized.parameters((1, 1.0), (3, 10.0), (7, 10.0), (31, 2.0))
  def test_convex_example(self, n, big_l):
    steps = _pepit_convex_steps(n, big_l)
    with jax.enable_x64(True):
      ours = fractal_optax.silver_convex_step_sizes(n, jnp.float64(big_l))
    np.testing.assert_allclose(ours, steps, rtol=1e-14)

  def test_worst_case_solved(self):
    # The SDP's worst case over smooth strongly convex functions meets the
    # bound (Part I's bound is tight; κ = 10, T = 4).
    from PEPit import PEP  # pylint: disable=g-import-not-at-top
    from PEPit.functions import SmoothStronglyConvexFunction  # pylint: disable=g-import-not-at-top

    problem = PEP()
    func = problem.declare_function(SmoothStronglyConvexFunction, L=1.0, mu=0.1)
    xs = func.stationary_point()
    x0 = problem.set_initial_point()
    problem.set_initial_condition((x0 - xs) ** 2 <= 1)
    x = x0
    for step in np.asarray(fractal_optax.silver_step_sizes(4, 0.1, 1.0)):
      x = x - float(step) * func.gradient(x)
    problem.set_performance_metric((x - xs) ** 2)
    value = problem.solve(verbose=0)
    bound = fractal_optax.silver_error_bound(4, 0.1, 1.0) ** 2
    self.assertAlmostEqual(value, bound, delta=1e-5 * bound + 1e-7)


if __name__ == "__main__":
  absltest.main()
