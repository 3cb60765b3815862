"""Tests for fractal_optax._curvature (Lanczos / power-iteration bounds).

References are dense float64 eigenvalues (``numpy.linalg.eigvalsh``) of the
same Hessian; the estimators run in float32. One jitted estimator is reused for
all quadratics of one size (the matrix is an argument, not a constant).
"""

import doctest
import warnings

from absl.testing import absltest
from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np

from fractal_optax import _curvature
from fractal_optax._curvature import estimate_curvature
from fractal_optax._curvature import estimate_max_curvature

_D = 256  # size of the reused quadratics
_D_LARGE = 2048  # the one large dense problem


def quadratic_loss(x, a):
  """½ xᵀAx: Hessian A at any x."""
  return 0.5 * x @ (a @ x)


def _orthogonal(d: int, seed: int, num_reflections: int = 12) -> np.ndarray:
  """A dense random orthogonal matrix: a product of Householder reflections.

  (Cheaper than a QR factorisation at d = 2048; Lanczos from a Gaussian start
  is rotation invariant anyway, the rotation only makes the products dense.)
  """
  rng = np.random.default_rng(seed)
  q = np.eye(d)
  for _ in range(num_reflections):
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u)
    q -= 2.0 * np.outer(q @ u, u)
  return q


_Q = _orthogonal(_D, 0)


def _matrix(eigenvalues: np.ndarray, q: np.ndarray = _Q) -> np.ndarray:
  a = (q * eigenvalues) @ q.T
  return 0.5 * (a + a.T)


def _spectrum(name: str, d: int = _D) -> np.ndarray:
  rng = np.random.default_rng(1)
  if name == "uniform_kappa10":
    return np.linspace(1.0, 10.0, d)
  if name == "geometric_kappa1e3":
    return np.geomspace(1e-3, 1.0, d)
  if name == "geometric_kappa1e6":
    return np.geomspace(1.0, 1e6, d)
  if name == "separated":  # isolated extremes around a bulk: resolvable m
    return np.concatenate([[0.5], np.linspace(20.0, 80.0, d - 2), [100.0]])
  if name == "clustered":  # two tight clusters, κ = 1e6
    half = d // 2
    return np.concatenate(
      [1e-6 + rng.uniform(0, 1e-9, half), 1.0 - rng.uniform(0, 1e-3, d - half)]
    )
  if name == "three_values":  # Krylov space of dimension 3: breakdown path
    return np.repeat([2.0, 5.0, 9.0], [d // 3, d // 3, d - 2 * (d // 3)])
  raise ValueError(name)


def _eigvalsh64(a) -> np.ndarray:
  """Float64 eigenvalues of the matrix exactly as given (e.g. float32)."""
  return np.linalg.eigvalsh(np.asarray(a).astype(np.float64))


def _quiet(fn, *args, **kwargs):
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", UserWarning)
    return fn(*args, **kwargs)


class FlatHvpTest(chex.TestCase):
  """The forward-over-reverse product on a pytree with mixed leaves."""

  @chex.variants(with_jit=True, without_jit=True)
  def test_matches_dense_hessian(self):
    rng = np.random.default_rng(6)
    a = rng.standard_normal((7, 7))
    a = a + a.T
    params = {
      "w": jnp.ones((3,), jnp.float32),
      "v": jnp.ones((2, 2), jnp.bfloat16),
      "n": jnp.asarray(3, jnp.int32),
    }

    def loss(p):
      x = jnp.concatenate([p["v"].ravel().astype(jnp.float32), p["w"]])
      return 0.5 * x @ (jnp.asarray(a, jnp.float32) @ x) * (p["n"] - 2)

    v = jnp.asarray(rng.standard_normal(7), jnp.float32)
    hv = self.variant(lambda p, v: _curvature._flat_hvp(loss, p, ())[1](v))(
      params, v
    )
    chex.assert_shape(hv, (7,))
    chex.assert_type(hv, jnp.float32)
    # ravel_pytree orders leaves by key: n (int, skipped), v, w.
    chex.assert_trees_all_close(
      hv, jnp.asarray(a @ np.asarray(v)), rtol=1e-5, atol=1e-5
    )


class QuadraticSpectraTest(chex.TestCase):
  """Safe M ≥ λ_max within 5%; safe m ≤ λ_min; tight m where resolved."""

  @parameterized.named_parameters(
    ("uniform_kappa10", "uniform_kappa10", True),
    ("geometric_kappa1e3", "geometric_kappa1e3", False),
    ("geometric_kappa1e6", "geometric_kappa1e6", False),
    ("separated", "separated", True),
    ("clustered", "clustered", False),
    ("three_values", "three_values", True),
  )
  def test_bounds_bracket_the_spectrum(self, name, resolvable):
    a = jnp.asarray(_matrix(_spectrum(name)), jnp.float32)
    ref = _eigvalsh64(a)
    est = _quiet(estimate_curvature, quadratic_loss, jnp.zeros(_D), a)
    self.assertGreaterEqual(est.max_curvature, ref[-1])
    self.assertLessEqual(est.max_curvature, 1.05 * ref[-1])
    self.assertGreater(est.min_curvature, 0.0)
    self.assertLessEqual(est.min_curvature, ref[0])
    self.assertEqual(est.num_iterations, 64)
    self.assertEqual(est.num_hvps, 64 + 5)
    self.assertEqual(est.num_params, _D)
    if resolvable:
      self.assertEqual(est.min_source, "ritz")
      self.assertGreaterEqual(est.min_curvature, 0.9 * ref[0])
    # Ritz values are Rayleigh quotients: inside the spectrum up to rounding.
    self.assertGreaterEqual(est.ritz_values[0], ref[0] - est.rounding_allowance)
    self.assertLessEqual(est.ritz_values[-1], ref[-1] + est.rounding_allowance)

  def test_large_dense_kappa_1e6(self):
    rng = np.random.default_rng(2)
    eigenvalues = np.sort(
      np.concatenate(
        [np.geomspace(1.0, 1e6, _D_LARGE - 8), rng.uniform(9e5, 1e6, 8)]
      )
    )
    a = jnp.asarray(_matrix(eigenvalues, _orthogonal(_D_LARGE, 3)), jnp.float32)
    ref = _eigvalsh64(a)
    est = _quiet(estimate_curvature, quadratic_loss, jnp.zeros(_D_LARGE), a)
    self.assertGreaterEqual(est.max_curvature, ref[-1])
    self.assertLessEqual(est.max_curvature, 1.05 * ref[-1])
    self.assertLessEqual(est.min_curvature, ref[0])
    self.assertGreater(est.min_curvature, 0.0)

  @parameterized.parameters(1e-25, 1e30)
  def test_the_loss_scale_scales_the_bounds(self, scale):
    # float32 products of a loss scaled by 10⁻²⁵ (10³⁰) have squares that
    # underflow (overflow): M came out 3× too low (an error: "not finite").
    a = np.geomspace(1e-3, 1.0, 40)
    x0 = jnp.asarray(np.random.default_rng(0).normal(size=40), jnp.float32)
    loss = lambda x: scale * 0.5 * jnp.sum(jnp.asarray(a, jnp.float32) * x * x)
    est = _quiet(estimate_curvature, loss, x0)
    self.assertBetween(est.max_curvature / scale, 1.0, 1.05)
    self.assertBetween(est.min_curvature / scale, 0.5e-3, 1e-3)

  def test_exact_when_iterations_exceed_dimension(self):
    eigenvalues = np.array([0.3, 1.0, 2.0, 2.5, 7.0, 11.0])
    a = jnp.asarray(_matrix(eigenvalues, _orthogonal(6, 4)), jnp.float32)
    ref = _eigvalsh64(a)
    est = estimate_curvature(quadratic_loss, jnp.zeros(6), a, num_iterations=10)
    self.assertEqual(est.num_iterations, 6)
    self.assertEqual(est.num_hvps, 6 + 5)
    chex.assert_trees_all_close(np.array(est.ritz_values), ref, rtol=1e-4)
    chex.assert_trees_all_close(
      np.array(est.residual_norms), np.zeros(6), atol=1e-4
    )
    self.assertEqual(est.min_source, "ritz")
    self.assertLessEqual(est.min_curvature, ref[0])
    self.assertGreater(est.min_curvature, 0.29)
    self.assertAlmostEqual(est.max_curvature, 11.0 * 1.01, delta=1e-3)

  def test_unhashable_loss_fn(self):

    class Loss:  # defines __eq__ without __hash__: not usable as a jit static
      __hash__ = None

      def __eq__(self, other):
        return isinstance(other, Loss)

      def __call__(self, x, a):
        return quadratic_loss(x, a)

    eigenvalues = np.array([0.3, 1.0, 2.0, 2.5, 7.0, 11.0])
    a = jnp.asarray(_matrix(eigenvalues, _orthogonal(6, 4)), jnp.float32)
    est = estimate_curvature(Loss(), jnp.zeros(6), a, num_iterations=6)
    np.testing.assert_allclose(est.ritz_values, eigenvalues, rtol=1e-4)

  def test_relative_margin(self):
    a = jnp.asarray(_matrix(_spectrum("separated")), jnp.float32)
    tight = estimate_curvature(
      quadratic_loss, jnp.zeros(_D), a, relative_margin=0.0
    )
    loose = estimate_curvature(
      quadratic_loss, jnp.zeros(_D), a, relative_margin=0.2
    )
    self.assertAlmostEqual(
      loose.max_curvature - tight.max_curvature,
      0.2 * tight.max_ritz_value,
      places=3,
    )
    self.assertGreaterEqual(tight.max_curvature, _eigvalsh64(a)[-1])

  def test_keys(self):
    a = jnp.asarray(_matrix(_spectrum("separated")), jnp.float32)
    estimates = [
      estimate_curvature(quadratic_loss, jnp.zeros(_D), a, key=key)
      for key in (None, jax.random.key(7), jax.random.PRNGKey(7))
    ]
    self.assertEqual(
      estimates[0], estimate_curvature(quadratic_loss, jnp.zeros(_D), a)
    )  # default key: reproducible
    self.assertNotEqual(estimates[0].ritz_values, estimates[1].ritz_values)
    for est in estimates:
      self.assertBetween(est.max_curvature, 100.0, 105.0)

  def test_jitted_core_is_reused(self):
    traces = []

    def counting_loss(x, a):
      traces.append(1)
      return quadratic_loss(x, a)

    for scale in (1.0, 2.0, 3.0):
      a = jnp.asarray(scale * _matrix(_spectrum("separated")), jnp.float32)
      before = len(traces)
      est = estimate_curvature(counting_loss, jnp.zeros(_D), a)
      self.assertBetween(est.max_curvature, 100.0 * scale, 105.0 * scale)
      if scale == 1.0:
        first = len(traces) - before
      else:  # only the eager shape check traces again, not the Lanczos loop
        self.assertLess(len(traces) - before, first)


class RecordTest(absltest.TestCase):
  def test_unpacks_as_min_max(self):
    a = jnp.asarray(_matrix(_spectrum("uniform_kappa10")), jnp.float32)
    est = estimate_curvature(quadratic_loss, jnp.zeros(_D), a)
    m, big_m = est
    self.assertEqual((m, big_m), (est.min_curvature, est.max_curvature))
    self.assertLen(tuple(est), 2)
    self.assertIsInstance(m, float)
    self.assertAlmostEqual(est.condition_number, big_m / m)
    self.assertEqual(est.min_ritz_value, min(est.ritz_values))
    self.assertEqual(est.max_ritz_value, max(est.ritz_values))
    self.assertEqual(list(est.ritz_values), sorted(est.ritz_values))
    self.assertEqual(est.dtype, jnp.zeros(_D).dtype.name)  # float64 under x64

  def test_feeds_the_schedule(self):
    fractal_optax = __import__("fractal_optax")
    if not hasattr(fractal_optax, "fractal_chebyshev_schedule"):
      self.skipTest("fractal_chebyshev_schedule not available")
    a = jnp.asarray(_matrix(_spectrum("uniform_kappa10")), jnp.float32)
    est = estimate_curvature(quadratic_loss, jnp.zeros(_D), a)
    schedule = fractal_optax.fractal_chebyshev_schedule(8, *est)
    steps = np.asarray(jax.vmap(schedule)(jnp.arange(8)))
    expected = np.asarray(
      fractal_optax.fractal_chebyshev_step_sizes(
        8, est.min_curvature, est.max_curvature
      )
    )
    np.testing.assert_allclose(steps, expected, rtol=1e-6)
    # The largest step is below 1/m and the smallest above 1/M.
    self.assertLessEqual(steps.max(), 1.0 / est.min_curvature)
    self.assertGreaterEqual(steps.min(), 1.0 / est.max_curvature)

  def test_doctests(self):
    fractal_optax = __import__("fractal_optax")
    if not hasattr(fractal_optax, "estimate_curvature") or not hasattr(
      fractal_optax, "fractal_chebyshev_schedule"
    ):
      self.skipTest("public exports not available")
    result = doctest.testmod(_curvature, optionflags=doctest.ELLIPSIS)
    self.assertGreater(result.attempted, 0)
    self.assertEqual(result.failed, 0)


class LogisticRegressionTest(absltest.TestCase):
  def test_bounds_bracket_the_dense_hessian(self):
    rng = np.random.default_rng(5)
    n, d, l2 = 400, 96, 1e-2
    scales = np.geomspace(0.05, 3.0, d)  # ill-conditioned features
    x = jnp.asarray(rng.standard_normal((n, d)) * scales, jnp.float32)
    y = jnp.asarray(rng.integers(0, 2, n), jnp.float32)
    params = {
      "w": jnp.asarray(0.1 * rng.standard_normal(d), jnp.float32),
      "b": jnp.zeros((), jnp.float32),
    }

    def loss(p, x, y):
      logits = x @ p["w"] + p["b"]
      nll = jnp.mean(jnp.logaddexp(0.0, logits) - y * logits)
      return nll + 0.5 * l2 * (p["w"] @ p["w"] + p["b"] ** 2)

    # Closed-form Hessian in float64: Xᵀ diag(σ(1−σ)) X / n + λ I, X = [x, 1].
    x_aug = np.concatenate([np.asarray(x, np.float64), np.ones((n, 1))], 1)
    w_aug = np.concatenate([np.asarray(params["w"], np.float64), [0.0]])
    sigma = 1.0 / (1.0 + np.exp(-x_aug @ w_aug))
    hessian = (x_aug.T * (sigma * (1 - sigma))) @ x_aug / n + l2 * np.eye(d + 1)
    ref = _eigvalsh64(hessian)
    est = estimate_curvature(loss, params, x, y, num_iterations=48)
    self.assertGreaterEqual(est.max_curvature, ref[-1])
    self.assertLessEqual(est.max_curvature, 1.05 * ref[-1])
    self.assertLessEqual(est.min_curvature, ref[0])
    self.assertGreater(est.min_curvature, 0.0)
    self.assertEqual(est.num_params, d + 1)


class PytreeTest(absltest.TestCase):
  def test_leaves_and_dtypes(self):
    c_w = np.linspace(1.0, 5.0, 12).reshape(3, 4)
    c_v = np.array([0.5, 8.0, 2.0, 3.0, 6.0])
    params = {
      "w": jnp.ones((3, 4), jnp.float32),
      "v": (jnp.ones(5, jnp.bfloat16),),
      "scale": jnp.asarray(2, jnp.int32),  # not differentiated
      "step": 3,  # python int: not differentiated
    }

    def loss(p):
      v = p["v"][0].astype(jnp.float32)
      return 0.5 * jnp.sum(c_w * p["w"] ** 2) + 0.25 * p["scale"] * jnp.sum(
        c_v * v**2
      ) * (p["step"] - 2)

    ref = np.sort(np.concatenate([c_w.ravel(), 0.5 * 2 * c_v]))
    est = estimate_curvature(loss, params, num_iterations=17)
    self.assertEqual(est.num_params, 17)
    self.assertEqual(est.dtype, "float32")
    np.testing.assert_allclose(est.ritz_values, ref, rtol=1e-4)
    self.assertGreaterEqual(est.max_curvature, ref[-1])
    self.assertLessEqual(est.max_curvature, 1.05 * ref[-1])
    self.assertBetween(est.min_curvature, 0.9 * ref[0], ref[0])

  def test_float64_leaf_promotes(self):
    if not jax.config.jax_enable_x64:
      self.skipTest("float64 needs jax_enable_x64")
    params = [jnp.ones(2, jnp.float32), jnp.ones(2, jnp.float64)]
    est = estimate_curvature(lambda p: jnp.sum(p[0] ** 2 + p[1] ** 2), params)
    self.assertEqual(est.dtype, "float64")


class NonConvexTest(absltest.TestCase):
  def setUp(self):
    super().setUp()
    eigenvalues = np.linspace(-1.0, 10.0, _D)
    self.a = jnp.asarray(_matrix(eigenvalues), jnp.float32)

  def test_raises_without_remedy(self):
    with self.assertRaisesRegex(
      ValueError, r"negative curvature.*quotient -[01].*l2_regularization="
    ):
      estimate_curvature(quadratic_loss, jnp.zeros(_D), self.a)

  def test_max_condition_number_floor(self):
    with self.assertWarnsRegex(
      UserWarning, r"quotient -[01].*max_condition_number.*NOT"
    ):
      est = estimate_curvature(
        quadratic_loss, jnp.zeros(_D), self.a, max_condition_number=100.0
      )
    self.assertEqual(est.min_source, "max_condition_number")
    self.assertAlmostEqual(est.min_curvature, est.max_curvature / 100.0)
    self.assertBetween(est.max_curvature, 10.0, 10.5)

  def test_l2_regularization(self):
    with self.assertWarnsRegex(
      UserWarning, r"quotient -[01].*l2_regularization"
    ):
      est = estimate_curvature(
        quadratic_loss, jnp.zeros(_D), self.a, l2_regularization=2.0
      )
    self.assertEqual(est.min_source, "l2_regularization")
    self.assertEqual(est.min_curvature, 2.0)
    self.assertBetween(est.max_curvature, 12.0, 12.5)  # bounds of H + 2 I
    self.assertLess(est.ritz_values[0], -0.99)  # raw H, unshifted

  def test_l2_regularization_on_convex_loss_shifts_both_bounds(self):
    a = jnp.asarray(_matrix(_spectrum("separated")), jnp.float32)
    plain = estimate_curvature(quadratic_loss, jnp.zeros(_D), a)
    shifted = estimate_curvature(
      quadratic_loss, jnp.zeros(_D), a, l2_regularization=0.25
    )
    self.assertAlmostEqual(
      shifted.max_curvature, plain.max_curvature + 0.25, places=4
    )
    self.assertAlmostEqual(
      shifted.min_curvature, plain.min_curvature + 0.25, places=4
    )

  def test_unresolved_bottom_falls_back_safely(self):
    a = jnp.asarray(_matrix(_spectrum("geometric_kappa1e6")), jnp.float32)
    with self.assertWarnsRegex(UserWarning, "not resolved"):
      est = estimate_curvature(quadratic_loss, jnp.zeros(_D), a)
    self.assertEqual(est.min_source, "dtype_floor")
    with warnings.catch_warnings():
      warnings.simplefilter("error")  # a floor below the measurement: silent
      floored = estimate_curvature(
        quadratic_loss, jnp.zeros(_D), a, max_condition_number=1e7
      )
    self.assertEqual(floored.min_source, "max_condition_number")
    self.assertAlmostEqual(floored.min_curvature, floored.max_curvature / 1e7)


class MeasuredRoundingTest(absltest.TestCase):
  """δ is sized from the measured rounding of the products (issue 11.4)."""

  def test_float32_kappa_1e5_resolved_bottom(self):
    # κ = 1e5 with an isolated bottom: Lanczos resolves it in a few steps, and
    # the old a-priori allowance 10·√k·ε·‖H‖ ≈ 0.95 λ_min swallowed it.
    eigenvalues = np.concatenate([[1e-5], np.geomspace(1e-2, 1.0, _D - 1)])
    a = jnp.asarray(_matrix(eigenvalues), jnp.float32)
    ref = _eigvalsh64(a)
    with warnings.catch_warnings():
      warnings.simplefilter("error")
      est = estimate_curvature(quadratic_loss, jnp.zeros(_D), a)
    self.assertEqual(est.min_source, "ritz")
    self.assertLessEqual(est.min_curvature, ref[0])  # safe
    self.assertGreaterEqual(est.min_curvature, 0.5 * ref[0])  # within 2×
    self.assertGreaterEqual(est.max_curvature, ref[-1])
    self.assertLess(
      est.rounding_allowance,
      _curvature._rounding_allowance(np.dtype(np.float32), ref[-1], 64),
    )
    # The probe saw real rounding (float32 products are not exact here).
    self.assertGreater(max(est.probe_discrepancies), 0.0)

  def test_low_precision_products_widen_the_allowance(self):
    a32 = jnp.asarray(_matrix(_spectrum("uniform_kappa10")), jnp.float32)

    def bf16_loss(x, a):  # products rounded to bfloat16 inside the loss
      xb = x.astype(jnp.bfloat16)
      return 0.5 * jnp.vdot(xb, a.astype(jnp.bfloat16) @ xb).astype(jnp.float32)

    plain = estimate_curvature(quadratic_loss, jnp.zeros(_D), a32)
    coarse = _quiet(estimate_curvature, bf16_loss, jnp.zeros(_D), a32)
    self.assertGreater(
      coarse.rounding_allowance, 30.0 * plain.rounding_allowance
    )
    # bfloat16 rounding (ε = 2⁻⁷) is far above the float32 a-priori allowance.
    self.assertGreater(
      coarse.rounding_allowance,
      _curvature._rounding_allowance(np.dtype(np.float32), 10.0, 64),
    )


class LoopFormTest(absltest.TestCase):
  def test_host_and_fused_loops_agree(self):
    a = jnp.asarray(_matrix(_spectrum("separated")), jnp.float32)
    key = jax.random.key(0)
    host, _ = _curvature._run_lanczos(
      quadratic_loss, 16, jnp.zeros(_D), (a,), key, "host", False
    )
    fused, _ = _curvature._run_lanczos(
      quadratic_loss, 16, jnp.zeros(_D), (a,), key, "fused", False
    )
    for h, f in zip(host, fused, strict=True):
      np.testing.assert_allclose(h, f, rtol=1e-4, atol=1e-5)

  def test_cpu_uses_the_host_loop(self):
    if jax.default_backend() != "cpu":
      self.skipTest("CPU only")
    self.assertEqual(_curvature._loop_form(jnp.zeros(3)), "host")


class LanczosTopTest(parameterized.TestCase):
  """The traced early-stopping Lanczos that adaptive_fractal_sgd starts with."""

  @parameterized.parameters("separated", "geometric_kappa1e3", "three_values")
  def test_without_early_stop_equals_fixed_steps(self, name):
    a = jnp.asarray(_matrix(_spectrum(name)), jnp.float32)
    key = jax.random.key(0)
    theta, residuals, hnorm, *_ = _curvature._lanczos(
      quadratic_loss, 12, jnp.zeros(_D), (a,), key
    )
    top, residual, top_hnorm, num = _curvature._lanczos_top_impl(
      quadratic_loss, 12, 12, jnp.zeros(_D), (a,), key, 0.1
    )
    self.assertEqual(int(num), 12)
    np.testing.assert_allclose(top, theta[-1], rtol=1e-5)
    np.testing.assert_allclose(residual, residuals[-1], rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(top_hnorm, hnorm, rtol=1e-6)

  @parameterized.parameters(jnp.float32, jnp.float64)
  def test_stops_once_the_top_is_resolved(self, dtype):
    # Negative outliers dominate; the positive top is 6.5 (float64 truth).
    eigs = np.concatenate(
      [-np.geomspace(30.0, 557.0, 6), np.linspace(-0.3, 0.3, _D - 10)]
    )
    eigs = np.concatenate([eigs, [1.0, 2.0, 4.0, 6.5]])
    with jax.enable_x64(dtype == jnp.float64):
      a = jnp.asarray(_matrix(eigs), dtype)
      top, residual, _, num = _curvature._lanczos_top_impl(
        quadratic_loss,
        5,
        64,
        jnp.zeros(_D, dtype),
        (a,),
        jax.random.key(0),
        0.1,
      )
    top, residual, num = float(top), float(residual), int(num)
    self.assertBetween(num, 6, 63)  # Past the minimum, before the cap.
    self.assertLessEqual(residual, 0.1 * top)
    # A Ritz pair with residual r has an eigenvalue within r (float64 ref).
    nearest = np.min(np.abs(_eigvalsh64(a) - top))
    self.assertLessEqual(nearest, residual + 1e-4)
    self.assertBetween(top + residual, 6.5, 1.1 * 6.5)


class EarlyNegativeCurvatureTest(absltest.TestCase):
  def setUp(self):
    super().setUp()
    eigenvalues = np.concatenate([[-5.0], np.linspace(0.1, 10.0, _D - 1)])
    self.a = jnp.asarray(_matrix(eigenvalues), jnp.float32)

  def test_stops_early_and_names_the_remedy(self):
    with self.assertRaisesRegex(
      ValueError,
      r"quotient -[45]\..*found after (8|16) of 64 iterations"
      r".*weight decay.*l2_regularization=",
    ):
      estimate_curvature(quadratic_loss, jnp.zeros(_D), self.a)

  def test_too_small_l2_regularization(self):
    with self.assertRaisesRegex(ValueError, r"l2_regularization=1.0 does not"):
      estimate_curvature(
        quadratic_loss, jnp.zeros(_D), self.a, l2_regularization=1.0
      )

  def test_enough_l2_regularization_is_positive(self):
    with self.assertWarnsRegex(UserWarning, "l2_regularization"):
      est = estimate_curvature(
        quadratic_loss, jnp.zeros(_D), self.a, l2_regularization=6.0
      )
    self.assertEqual(est.min_source, "l2_regularization")
    self.assertEqual(est.num_iterations, 64)  # ran to the end
    self.assertBetween(est.max_curvature, 16.0, 16.5)


class BadInputTest(parameterized.TestCase):
  def test_non_scalar_loss(self):
    with self.assertRaisesRegex(ValueError, r"scalar.*shape \(3,\)"):
      estimate_curvature(lambda x: x**2, jnp.ones(3))
    with self.assertRaisesRegex(ValueError, "scalar.*tuple"):
      estimate_curvature(lambda x: (jnp.sum(x), x), jnp.ones(3))
    with self.assertRaisesRegex(ValueError, r"scalar.*shape \(3,\)"):
      estimate_max_curvature(lambda x: x**2, jnp.ones(3))

  @parameterized.parameters(1, 0, -4)
  def test_too_few_iterations(self, num_iterations):
    with self.assertRaisesRegex(ValueError, f"{num_iterations=}"):
      estimate_curvature(
        lambda x: jnp.sum(x**2), jnp.ones(3), num_iterations=num_iterations
      )
    with self.assertRaisesRegex(ValueError, f"{num_iterations=}"):
      estimate_max_curvature(
        lambda x: jnp.sum(x**2), jnp.ones(3), num_iterations=num_iterations
      )

  def test_non_integer_iterations(self):
    with self.assertRaisesRegex(TypeError, "num_iterations=2.5"):
      estimate_curvature(
        lambda x: jnp.sum(x**2), jnp.ones(3), num_iterations=2.5
      )

  def test_no_float_leaves(self):
    with self.assertRaisesRegex(ValueError, r"floating-point leaf.*int(32|64)"):
      estimate_curvature(lambda p: jnp.sum(p["n"]) * 1.0, {"n": jnp.arange(3)})
    with self.assertRaisesRegex(ValueError, "floating-point leaf"):
      estimate_curvature(lambda p: jnp.zeros(()), {})

  @parameterized.parameters(
    (np.zeros((0,), np.float32),),
    ({"w": np.zeros((0, 3), np.float32)},),
    ([np.zeros((0,), np.float32), np.arange(2)],),
  )
  def test_empty_params(self, params):
    with self.assertRaisesRegex(ValueError, "params.*floating-point scalar"):
      estimate_curvature(lambda p: jnp.zeros(()), params)
    with self.assertRaisesRegex(ValueError, "params.*floating-point scalar"):
      estimate_max_curvature(lambda p: jnp.zeros(()), params)

  @parameterized.parameters((True,), (2.0,), ("8",), (None,))
  def test_num_iterations_type(self, num_iterations):
    with self.assertRaisesRegex(TypeError, "num_iterations="):
      estimate_curvature(
        lambda x: jnp.sum(x**2), jnp.ones(3), num_iterations=num_iterations
      )
    with self.assertRaisesRegex(TypeError, "num_iterations="):
      estimate_max_curvature(
        lambda x: jnp.sum(x**2), jnp.ones(3), num_iterations=num_iterations
      )

  def test_huge_num_iterations(self):
    with self.assertRaisesRegex(ValueError, "num_iterations=1099511627776"):
      estimate_max_curvature(
        lambda x: jnp.sum(x**2), jnp.ones(3), num_iterations=2**40
      )
    est = estimate_curvature(
      lambda x: jnp.sum(x**2), jnp.ones(3), num_iterations=np.int64(2**31 - 1)
    )
    self.assertEqual(est.num_iterations, 3)  # capped at n
    self.assertAlmostEqual(est.min_curvature, 2.0, places=4)

  def test_complex_params(self):
    with self.assertRaisesRegex(TypeError, "params.*complex64"):
      estimate_curvature(
        lambda p: jnp.sum(jnp.abs(p["z"]) ** 2 + p["x"] ** 2),
        {"z": jnp.ones(2, jnp.complex64), "x": jnp.ones(2)},
      )

  def test_half_precision_params(self):
    for dtype in (jnp.bfloat16, jnp.float16):
      est = estimate_curvature(
        lambda x: jnp.sum(jnp.arange(1.0, 4.0) * x.astype(jnp.float32) ** 2),
        jnp.ones(3, dtype),
      )
      self.assertEqual(est.dtype, "float32")
      self.assertBetween(est.min_curvature, 1.9, 2.0)
      self.assertBetween(est.max_curvature, 6.0, 6.2)

  def test_non_finite(self):
    loss = lambda x: jnp.sum(x**2)
    with self.assertRaisesRegex(ValueError, "params must be finite.*NaN"):
      estimate_curvature(loss, jnp.array([1.0, jnp.nan]))
    with self.assertRaisesRegex(ValueError, "params must be finite.*NaN"):
      estimate_max_curvature(loss, jnp.array([1.0, jnp.inf]))
    with self.assertRaisesRegex(ValueError, "loss_fn is not finite.*nan"):
      estimate_curvature(lambda x: loss(x) + jnp.nan, jnp.ones(3))
    with self.assertRaisesRegex(ValueError, "loss_fn is not finite.*inf"):
      estimate_curvature(lambda x: loss(x) - jnp.log(0.0), jnp.ones(3))
    with self.assertRaisesRegex(ValueError, "products of loss_fn are not fin"):
      estimate_curvature(lambda x: jnp.sum(jnp.sqrt(x)), jnp.zeros(3))
    with self.assertRaisesRegex(ValueError, "products of loss_fn are not fin"):
      estimate_max_curvature(lambda x: jnp.sum(jnp.sqrt(x)), jnp.zeros(3))

  def test_bad_key(self):
    with self.assertRaisesRegex(TypeError, "key="):
      estimate_curvature(lambda x: jnp.sum(x**2), jnp.ones(3), key=0)
    with self.assertRaisesRegex(TypeError, "key="):
      estimate_curvature(
        lambda x: jnp.sum(x**2),
        jnp.ones(3),
        key=jax.random.split(jax.random.key(0)),
      )

  def test_bad_remedies(self):
    loss = lambda x: jnp.sum(x**2)
    with self.assertRaisesRegex(ValueError, "max_condition_number=1.0"):
      estimate_curvature(loss, jnp.ones(3), max_condition_number=1.0)
    with self.assertRaisesRegex(ValueError, "l2_regularization=-0.1"):
      estimate_curvature(loss, jnp.ones(3), l2_regularization=-0.1)
    with self.assertRaisesRegex(ValueError, "relative_margin=nan"):
      estimate_curvature(loss, jnp.ones(3), relative_margin=float("nan"))


class PowerIterationTest(absltest.TestCase):
  def test_upper_bound_with_gap(self):
    eigenvalues = np.concatenate([np.linspace(0.1, 5.0, _D - 1), [10.0]])
    a = jnp.asarray(_matrix(eigenvalues), jnp.float32)
    bound = estimate_max_curvature(quadratic_loss, jnp.zeros(_D), a)
    self.assertEqual(bound.num_hvps, 32)
    self.assertBetween(bound.max_curvature, 10.0, 10.5)
    self.assertLessEqual(bound.rayleigh_quotient, 10.0 + 1e-4)
    self.assertEqual(float(bound), bound.max_curvature)

  def test_negative_dominant_curvature(self):
    eigenvalues = np.concatenate([[-20.0], np.linspace(0.1, 5.0, _D - 1)])
    a = jnp.asarray(_matrix(eigenvalues), jnp.float32)
    with self.assertRaisesRegex(ValueError, "-20"):
      estimate_max_curvature(quadratic_loss, jnp.zeros(_D), a)


if __name__ == "__main__":
  absltest.main()
