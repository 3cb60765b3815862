"""Extreme and odd inputs for every public function but the curvature estimator.

Each case gives a correct finite value (against the mpmath reference or a
closed form) or a ValueError/TypeError naming the argument, quickly and in
bounded memory: no large T is materialised here.
"""

import math
import time

from absl.testing import absltest
from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

import fractal_optax
import reference

_MAX_T = 2**24  # The documented largest cycle length.

# Relative tolerance of one rounding to each dtype (a few ulps).
_RTOL = {
  jnp.bfloat16: 1e-2,
  jnp.float16: 2e-3,
  jnp.float32: 1e-6,
  jnp.float64: 1e-13,
}


def _fractal_reference(t, m, big_m):
  return reference.step_sizes(t, m, big_m)[fractal_optax.fractal_order(t)]


class NumStepsArgumentTest(parameterized.TestCase):
  """``num_steps`` (and ``oversample``) of every function that takes it."""

  _FUNCTIONS = (
    ("step_sizes", lambda t: fractal_optax.chebyshev_step_sizes(t, 0.1, 1.0)),
    ("error_bound", lambda t: fractal_optax.chebyshev_error_bound(t, 0.1, 1.0)),
    ("order", fractal_optax.fractal_order),
    (
      "fractal_steps",
      lambda t: fractal_optax.fractal_chebyshev_step_sizes(t, 0.1, 1.0),
    ),
    (
      "schedule",
      lambda t: fractal_optax.fractal_chebyshev_schedule(t, 0.1, 1.0),
    ),
    ("sgd", lambda t: fractal_optax.fractal_sgd(t, 0.1, 1.0)),
  )

  @parameterized.named_parameters(*_FUNCTIONS)
  def test_bad_types(self, fn):
    for bad in (
      True,
      np.bool_(False),
      3.0,
      np.float32(4),
      "8",
      None,
      np.array([4]),
      2 + 0j,
    ):
      with self.assertRaisesRegex(TypeError, "num_steps", msg=repr(bad)):
        fn(bad)

  @parameterized.named_parameters(*_FUNCTIONS)
  def test_out_of_range(self, fn):
    # 2**31 and 10**100 must fail at once, not after allocating T elements.
    for bad in (
      0,
      -1,
      np.int8(-128),
      _MAX_T + 1,
      2**31,
      np.uint64(2**64 - 1),
      10**100,
    ):
      start = time.perf_counter()
      with self.assertRaisesRegex(ValueError, "num_steps", msg=repr(bad)):
        fn(bad)
      self.assertLess(time.perf_counter() - start, 1.0)

  @parameterized.named_parameters(*_FUNCTIONS)
  def test_integer_likes_accepted(self, fn):
    for good in (np.int8(8), np.uint64(8), np.array(8), jnp.int32(8)):
      fn(good)

  def test_integer_likes_give_the_same_result(self):
    np.testing.assert_array_equal(
      fractal_optax.fractal_order(jnp.int32(12)),
      fractal_optax.fractal_order(12),
    )

  def test_traced_num_steps(self):
    with self.assertRaisesRegex(TypeError, "num_steps"):
      jax.jit(fractal_optax.fractal_order)(8)

  def test_bounds_documented(self):
    for fn in (
      fractal_optax.chebyshev_step_sizes,
      fractal_optax.fractal_order,
      fractal_optax.chebyshev_error_bound,
      fractal_optax.fractal_chebyshev_schedule,
      fractal_optax.fractal_chebyshev_step_sizes,
    ):
      self.assertIn("2**24", fn.__doc__, fn.__name__)


class CurvatureArgumentTest(parameterized.TestCase):
  """Bad curvatures are refused by every function, naming the argument."""

  _FUNCTIONS = (
    ("step_sizes", lambda m, M: fractal_optax.chebyshev_step_sizes(4, m, M)),
    ("error_bound", lambda m, M: fractal_optax.chebyshev_error_bound(4, m, M)),
    ("num_steps", lambda m, M: fractal_optax.chebyshev_num_steps(m, M, 1e-3)),
    (
      "fractal_steps",
      lambda m, M: fractal_optax.fractal_chebyshev_step_sizes(4, m, M),
    ),
    (
      "schedule",
      lambda m, M: fractal_optax.fractal_chebyshev_schedule(4, m, M),
    ),
    ("sgd", lambda m, M: fractal_optax.fractal_sgd(4, m, M)),
    ("profile", lambda m, M: fractal_optax.stability_profile([1.0], m, M)),
  )

  @parameterized.named_parameters(*_FUNCTIONS)
  def test_bad_values(self, fn):
    for bad in (
      0.0,
      -1.0,
      -0.0,
      math.nan,
      math.inf,
      -math.inf,
      np.float32(0),
      jnp.bfloat16(-1),
      np.float64(5e-324) * 0,
      10**400,
      -(10**400),
    ):
      with self.assertRaisesRegex(ValueError, "min_curvature", msg=repr(bad)):
        fn(bad, 1.0)
      with self.assertRaisesRegex(ValueError, "max_curvature", msg=repr(bad)):
        fn(1.0, bad)
    with self.assertRaisesRegex(ValueError, "min_curvature.*max_curvature"):
      fn(2.0, 1.0)
    with self.assertRaisesRegex(ValueError, "min_curvature.*shape"):
      fn(np.ones(2), 1.0)

  @parameterized.named_parameters(*_FUNCTIONS)
  def test_bad_types(self, fn):
    for bad in (
      True,
      None,
      "1",
      b"1",
      1 + 0j,
      np.complex64(1),
      [1.0],
      np.longdouble(1) if np.dtype(np.longdouble).itemsize > 8 else "1",
      object(),
    ):
      with self.assertRaisesRegex(
        (TypeError, ValueError), "min_curvature", msg=repr(bad)
      ):
        fn(bad, 2.0)
      with self.assertRaisesRegex(
        (TypeError, ValueError), "max_curvature", msg=repr(bad)
      ):
        fn(0.5, bad)

  @parameterized.named_parameters(*_FUNCTIONS)
  def test_odd_but_valid_types(self, fn):
    for m, big_m in (
      (np.int8(1), np.uint64(1000)),
      (1, 3),
      (jnp.bfloat16(0.5), jnp.float16(2)),
      (np.float32(0.5), jnp.array(2.0)),
      (2**60, 2**61),
      (np.uint64(2**64 - 1), np.uint64(2**64 - 1)),
    ):
      fn(m, big_m)


class StepSizesExtremesTest(chex.TestCase):
  @parameterized.named_parameters(
    ("bfloat16", jnp.bfloat16),
    ("float16", jnp.float16),
    ("float32", jnp.float32),
    ("float64", jnp.float64),
  )
  def test_low_and_high_precision_dtypes(self, dtype):
    with jax.enable_x64(dtype == jnp.float64):
      m, big_m = dtype(0.1), dtype(1.0)
      for fn, expected in (
        (
          fractal_optax.chebyshev_step_sizes,
          reference.step_sizes(16, float(m), float(big_m)),
        ),
        (
          fractal_optax.fractal_chebyshev_step_sizes,
          _fractal_reference(16, float(m), float(big_m)),
        ),
      ):
        for args in ((m, big_m), (jnp.asarray(m), jnp.asarray(big_m))):
          steps = fn(16, *args)
          chex.assert_type(steps, dtype)
          np.testing.assert_allclose(
            np.asarray(steps, np.float64), expected, rtol=_RTOL[dtype]
          )

  @parameterized.parameters(
    # (T, m, M): overflow, underflow and the scale of float32 and float64.
    (8, 1e-50, 1e-40),
    (8, 1.0, 1e300),
    (8, 1e50, 1e50),
    (8, 1e-300, 1e300),
    (64, 5e-324, 1.0),
    (8, 1e-200, 1e-190),
    (8, 1e-30, 1e-20),
    (8, 1e30, 1e35),
  )
  def test_extreme_scales_correct_in_float64(self, t, m, big_m):
    with jax.enable_x64(True):
      for fn, expected in (
        (fractal_optax.chebyshev_step_sizes, reference.step_sizes(t, m, big_m)),
        (
          fractal_optax.fractal_chebyshev_step_sizes,
          _fractal_reference(t, m, big_m),
        ),
      ):
        steps = fn(t, m, big_m)
        chex.assert_type(steps, jnp.float64)
        self.assertTrue(np.all(np.isfinite(steps)))
        np.testing.assert_allclose(steps, expected, rtol=1e-13)
      schedule = fractal_optax.fractal_chebyshev_schedule(t, m, big_m)
      np.testing.assert_allclose(
        schedule(jnp.arange(t)), _fractal_reference(t, m, big_m), rtol=1e-13
      )

  @parameterized.parameters(
    # In float32 (the default): correct where the steps fit, else an error
    # that names the curvatures and the dtype.
    (8, 1e-50, 1e-40, "overflows float32"),
    (8, 1.0, 1e300, "underflows float32"),
    (8, 1e50, 1e50, "underflows float32"),
    (8, 1e-39, 1e-39, "overflows float32"),
    (8, 1e-30, 1e-20, None),
    (8, 5e-324, 1.0, None),
    (8, 1e30, 1e35, None),
  )
  def test_extreme_scales_in_float32(self, t, m, big_m, error):
    calls = (
      lambda: fractal_optax.chebyshev_step_sizes(t, m, big_m),
      lambda: fractal_optax.fractal_chebyshev_step_sizes(t, m, big_m),
      lambda: fractal_optax.fractal_chebyshev_schedule(t, m, big_m)(
        jnp.arange(t)
      ),
      lambda: fractal_optax.fractal_sgd(t, m, big_m),
    )
    for call in calls:
      if error:
        with self.assertRaisesRegex(
          ValueError, f"min_curvature.*max_curvature.*{error}"
        ):
          call()
    if not error:
      steps = calls[1]()
      chex.assert_type(steps, jnp.float32)
      np.testing.assert_allclose(
        steps, _fractal_reference(t, m, big_m), rtol=1e-6
      )
      np.testing.assert_allclose(
        calls[2](), _fractal_reference(t, m, big_m), rtol=1e-6
      )

  def test_float64_range_itself(self):
    with jax.enable_x64(True):
      with self.assertRaisesRegex(ValueError, "underflows float64"):
        fractal_optax.chebyshev_step_sizes(8, 1e-300, 1.7e308)
      with self.assertRaisesRegex(ValueError, "overflows float64"):
        fractal_optax.chebyshev_step_sizes(8, 1e-310, 1e-309)

  def test_float16_range(self):
    # float16 holds steps up to 65504 only: 9.2e4 at m = 1e-5 does not fit,
    # T = 8 at κ = 100 does.
    with self.assertRaisesRegex(ValueError, "overflows float16"):
      fractal_optax.chebyshev_step_sizes(8, np.float16(1e-5), np.float16(1e-4))
    steps = fractal_optax.chebyshev_step_sizes(
      8, np.float16(0.01), np.float16(1.0)
    )
    self.assertTrue(np.all(np.isfinite(np.asarray(steps, np.float32))))

  def test_equal_curvatures(self):
    for value in (1e-30, 1.0, 3e30):
      np.testing.assert_allclose(
        fractal_optax.chebyshev_step_sizes(5, value, value),
        np.full(5, 1 / value),
        rtol=1e-6,
      )

  def test_integer_curvatures_use_the_default_float(self):
    steps = fractal_optax.chebyshev_step_sizes(4, np.int8(1), np.uint64(10))
    chex.assert_type(steps, jnp.float32)
    np.testing.assert_allclose(steps, reference.step_sizes(4, 1, 10), rtol=1e-6)


class TracedCurvaturesTest(chex.TestCase):
  """Traced m, M (the adaptive optimiser's path): unchecked, kept finite."""

  @chex.variants(with_jit=True)
  def test_unchecked_but_finite(self):
    fn = self.variant(
      lambda m, big_m: fractal_optax.fractal_chebyshev_step_sizes(8, m, big_m)
    )
    # m = 0, m > M and tiny M: finite, as the docstring says.
    for m, big_m in ((0.0, 1.0), (2.0, 1.0), (2e-38, 1e-37), (1e37, 3e38)):
      steps = fn(jnp.float32(m), jnp.float32(big_m))
      self.assertTrue(np.all(np.isfinite(steps)), (m, big_m))
    # Tiny M in float32, where m + (M − m)·f would be subnormal: the scaled
    # form keeps full precision.
    m, big_m = np.float32(2e-38), np.float32(1e-37)
    np.testing.assert_allclose(
      fn(m, big_m), _fractal_reference(8, float(m), float(big_m)), rtol=1e-5
    )

  @chex.variants(with_jit=True)
  def test_low_precision_traced(self):
    fn = self.variant(
      lambda m, big_m: fractal_optax.chebyshev_step_sizes(64, m, big_m)
    )
    # 1/f_0 ≈ 6600 at T = 64 would overflow float16 arithmetic before the
    # division by M: the traced path computes in float32.
    steps = fn(jnp.float16(1.0), jnp.float16(100.0))
    chex.assert_type(steps, jnp.float16)
    np.testing.assert_allclose(
      np.asarray(steps, np.float64),
      reference.step_sizes(64, 1.0, 100.0),
      rtol=2e-3,
    )
    steps = fn(jnp.bfloat16(1.0), jnp.bfloat16(100.0))
    chex.assert_type(steps, jnp.bfloat16)
    np.testing.assert_allclose(
      np.asarray(steps, np.float64),
      reference.step_sizes(64, 1.0, 100.0),
      rtol=1e-2,
    )

  def test_traced_curvature_refused_where_a_value_is_needed(self):
    for name, fn in (
      ("error_bound", lambda m: fractal_optax.chebyshev_error_bound(4, m, 2.0)),
      ("num_steps", lambda m: fractal_optax.chebyshev_num_steps(m, 2.0, 0.1)),
      ("profile", lambda m: fractal_optax.stability_profile([1.0], m, 2.0)),
    ):
      with self.assertRaisesRegex(TypeError, "min_curvature", msg=name):
        jax.jit(fn)(1.0)
    with self.assertRaisesRegex(TypeError, "tolerance"):
      jax.jit(lambda e: fractal_optax.chebyshev_num_steps(1.0, 2.0, e))(0.1)

  def test_traced_non_scalar_curvature(self):
    with self.assertRaisesRegex(ValueError, "min_curvature.*shape"):
      jax.jit(lambda m: fractal_optax.chebyshev_step_sizes(4, m, 2.0))(
        jnp.ones(3)
      )


class ErrorBoundAndNumStepsTest(parameterized.TestCase):
  @parameterized.parameters(
    (1, 1e-300, 1e300),
    (100, 5e-324, 1.7e308),
    (7, 1.0, 1.0 + 2**-52),
    (3, 1e-20, 1e-19),
    (_MAX_T, 1.0, 1e12),
  )
  def test_error_bound_extremes(self, t, m, big_m):
    bound = fractal_optax.chebyshev_error_bound(t, m, big_m)
    self.assertTrue(0.0 <= bound <= 1.0)
    np.testing.assert_allclose(
      bound, reference.error_bound(t, m, big_m), rtol=1e-9, atol=1e-300
    )

  def test_num_steps_issue_cases(self):
    # It used to loop for ever at m = 1e-300 and return T ≈ 1e16 … 1e21 for
    # κ = 1e30 … 1e40: now a prompt ValueError naming the arguments.
    for m, big_m in ((1e-300, 1.0), (1.0, 1e30), (1.0, 1e40), (5e-324, 1e308)):
      start = time.perf_counter()
      with self.assertRaisesRegex(
        ValueError, "tolerance.*min_curvature.*max_curvature.*2\\*\\*24"
      ):
        fractal_optax.chebyshev_num_steps(m, big_m, 1e-6)
      self.assertLess(time.perf_counter() - start, 1.0)

  @parameterized.parameters(
    (1.0, 4e12, 1e-6),
    (1.0, 10.0, 5e-324),
    (1.0, 2.0, 1.0 - 2**-53),
    (1.0, 1.0 + 1e-15, 0.5),
    (1e-200, 1e-195, 1e-3),
    (1.0, 1e4, np.float16(1e-3)),
    (1.0, 1e4, jnp.bfloat16(1e-3)),
  )
  def test_num_steps_extremes(self, m, big_m, eps):
    t = fractal_optax.chebyshev_num_steps(m, big_m, eps)
    self.assertIsInstance(t, int)
    self.assertTrue(1 <= t <= _MAX_T)
    eps = float(eps)
    self.assertLessEqual(fractal_optax.chebyshev_error_bound(t, m, big_m), eps)
    if t > 1:
      self.assertGreater(
        fractal_optax.chebyshev_error_bound(t - 1, m, big_m), eps
      )

  def test_num_steps_bad_tolerance(self):
    for bad in (0.0, 1.0, -1e-3, 1.5, math.inf, math.nan, 10**400):
      with self.assertRaisesRegex(ValueError, "tolerance="):
        fractal_optax.chebyshev_num_steps(1.0, 2.0, bad)
    for bad in (True, None, "0.1", 0.1j):
      with self.assertRaisesRegex(TypeError, "tolerance="):
        fractal_optax.chebyshev_num_steps(1.0, 2.0, bad)


class ScheduleCountTest(chex.TestCase):
  """Counts of every dtype, at their extremes, on and off jit."""

  def _expected(self, t, count, cycle):
    # An independent float64 table (the cos form), indexed with Python ints.
    index = max(count, 0) % t if cycle else min(max(count, 0), t - 1)
    theta = (np.arange(t) + 0.5) * np.pi / t
    steps = 1.0 / (0.55 - 0.45 * np.cos(theta))  # m = 0.1, M = 1.
    return steps[fractal_optax.fractal_order(t)][index]

  @parameterized.parameters(True, False)
  def test_integer_dtypes_at_their_limits(self, cycle):
    dtypes = ("int8", "uint8", "int16", "uint16", "int32", "uint32")
    # T below and above a dtype's maximum (40000 > int16's 32767).
    for t in (7, 40000):
      schedule = fractal_optax.fractal_chebyshev_schedule(
        t, 0.1, 1.0, cycle=cycle
      )
      counts = {}
      for dtype in dtypes:
        info = np.iinfo(dtype)
        values = [
          int(info.min),
          -1,
          0,
          1,
          t - 1,
          int(info.max) - 1,
          int(info.max),
        ]
        counts[dtype] = [c for c in values if info.min <= c <= info.max]
      # One compilation for all dtypes.
      got = jax.jit(lambda *arrays, fn=schedule: [fn(a) for a in arrays])(
        *[jnp.asarray(counts[d], d) for d in dtypes]
      )
      for dtype, values in zip(dtypes, got, strict=True):
        np.testing.assert_allclose(
          values,
          [self._expected(t, c, cycle) for c in counts[dtype]],
          rtol=1e-6,
          err_msg=f"{dtype=}, {t=}",
        )
        # numpy scalars (the host path) at the dtype's maximum.
        top = np.iinfo(dtype).max
        np.testing.assert_allclose(
          schedule(np.asarray(top, dtype)),
          self._expected(t, int(top), cycle),
          rtol=1e-6,
          err_msg=f"{dtype=}, {t=}",
        )

  def test_narrow_signed_counts_without_jit(self):
    # int8 indices used to overflow in jax's negative-index normalisation.
    schedule = fractal_optax.fractal_chebyshev_schedule(300, 0.1, 1.0)
    np.testing.assert_allclose(
      schedule(jnp.asarray([-128, 0, 127], jnp.int8)),
      [self._expected(300, c, True) for c in (0, 0, 127)],
      rtol=1e-6,
    )

  def test_issue_case_uint8(self):
    value = fractal_optax.fractal_chebyshev_schedule(300, 0.1, 1.0)(
      jnp.uint8(255)
    )
    np.testing.assert_allclose(value, self._expected(300, 255, True), rtol=1e-6)

  @parameterized.parameters(True, False)
  def test_64_bit_counts(self, cycle):
    with jax.enable_x64(True):
      schedule = fractal_optax.fractal_chebyshev_schedule(
        300, 0.1, 1.0, cycle=cycle
      )
      for dtype in (np.int64, np.uint64):
        info = np.iinfo(dtype)
        counts = [int(info.max), int(info.min), 2**40 + 7]
        counts = [c for c in counts if info.min <= c <= info.max]
        np.testing.assert_allclose(
          jax.jit(schedule)(jnp.asarray(counts, dtype)),
          [self._expected(300, c, cycle) for c in counts],
          rtol=1e-13,
        )

  def test_host_counts_exact_at_any_size(self):
    schedule = fractal_optax.fractal_chebyshev_schedule(300, 0.1, 1.0)
    for count in (
      2**40 + 7,
      10**30 + 11,
      -(10**30),
      np.int64(2**40 + 7),
      np.uint64(2**64 - 1),
      np.array([2**40 + 7, 5]),
      3.9,
      np.float64(2.0**60),
    ):
      expected = [
        self._expected(300, int(c), True)
        for c in np.atleast_1d(
          np.floor(
            np.asarray(count, object) if isinstance(count, int) else count
          )
        )
      ]
      np.testing.assert_allclose(
        np.atleast_1d(schedule(count)), expected, rtol=1e-6, err_msg=repr(count)
      )

  @chex.variants(with_jit=True, without_jit=True)
  def test_float_counts(self):
    schedule = self.variant(
      fractal_optax.fractal_chebyshev_schedule(4097, 0.1, 1.0)
    )
    # float16 cannot hold 4097; its nearest, 4096, is the index (a float16
    # T = 4097 would round to 4096 and wrongly give index 0).
    np.testing.assert_allclose(
      schedule(jnp.float16(4097)), self._expected(4097, 4096, True), rtol=1e-6
    )
    np.testing.assert_allclose(
      schedule(jnp.bfloat16(-3)), self._expected(4097, 0, True), rtol=1e-6
    )
    np.testing.assert_allclose(
      schedule(jnp.float32(2**31)), self._expected(4097, 2**31, True), rtol=1e-6
    )

  def test_non_finite_counts(self):
    schedule = fractal_optax.fractal_chebyshev_schedule(7, 0.1, 1.0)
    for bad in (math.nan, math.inf, np.float32(-math.inf)):
      with self.assertRaisesRegex(ValueError, "count"):
        schedule(bad)
    # Traced: documented, finite, index 0.
    got = jax.jit(schedule)(jnp.array([math.nan, math.inf, -math.inf]))
    np.testing.assert_allclose(got, [self._expected(7, 0, True)] * 3, rtol=1e-6)

  def test_bad_count_dtypes(self):
    schedule = fractal_optax.fractal_chebyshev_schedule(7, 0.1, 1.0)
    for bad in (
      True,
      np.bool_(True),
      jnp.array([True]),
      1j,
      jnp.complex64(1),
      "3",
    ):
      with self.assertRaisesRegex(TypeError, "count", msg=repr(bad)):
        schedule(bad)
    with self.assertRaisesRegex(TypeError, "count"):
      jax.jit(schedule)(jnp.bool_(True))

  def test_callable_scale_gets_a_clipped_count(self):
    seen = []

    def scale(count):
      seen.append(count)
      return jnp.ones((), jnp.float32)

    schedule = fractal_optax.fractal_chebyshev_schedule(
      7, 0.1, 1.0, scale=scale
    )
    schedule(10**30)
    schedule(np.uint64(2**64 - 1))
    schedule(jnp.int8(-5))
    self.assertEqual(int(seen[0]), np.iinfo(jnp.asarray(0).dtype).max)
    self.assertEqual(int(seen[1]), np.iinfo(jnp.asarray(0).dtype).max)
    self.assertEqual(int(seen[2]), 0)

  def test_scale_overflowing_the_dtype(self):
    with self.assertRaisesRegex(ValueError, "scale=.*overflows float32"):
      fractal_optax.fractal_chebyshev_schedule(8, 0.1, 1.0, scale=1e38)
    with self.assertRaisesRegex(ValueError, "scale=.*underflows float32"):
      fractal_optax.fractal_chebyshev_schedule(8, 0.1, 1.0, scale=1e-40)
    # A Python int beyond int64 is a valid scale.
    np.testing.assert_allclose(
      fractal_optax.fractal_chebyshev_schedule(8, 0.1, 1.0, scale=2**70)(0),
      2.0**70 * self._expected(8, 0, True),
      rtol=1e-6,
    )
    for bad in (0.0, -1.0, math.nan, math.inf, 10**400):
      with self.assertRaisesRegex(ValueError, "scale"):
        fractal_optax.fractal_chebyshev_schedule(8, 0.1, 1.0, scale=bad)
    for bad in ("1", None, True, 1j):
      with self.assertRaisesRegex(TypeError, "scale"):
        fractal_optax.fractal_chebyshev_schedule(8, 0.1, 1.0, scale=bad)
    with self.assertRaisesRegex(TypeError, "cycle"):
      fractal_optax.fractal_chebyshev_schedule(8, 0.1, 1.0, cycle=1)

  def test_vmap_of_uint8_counts(self):
    schedule = fractal_optax.fractal_chebyshev_schedule(300, 0.1, 1.0)
    counts = jnp.arange(256, dtype=jnp.uint8)
    np.testing.assert_allclose(jax.vmap(schedule)(counts), schedule(counts))


class FractalSgdArgumentsTest(parameterized.TestCase):
  def test_momentum_types(self):
    for good in (
      0.0,
      0.9,
      np.float32(0.9),
      np.float64(0.5),
      jnp.array(0.5),
      np.int8(0),
    ):
      opt = fractal_optax.fractal_sgd(4, 0.1, 1.0, momentum=good)
    params = jnp.ones(2)
    updates, _ = opt.update(params, opt.init(params))
    self.assertTrue(np.all(np.isfinite(updates)))
    for bad in (True, np.bool_(False), "0.9", [0.9], 0.9j, np.ones(2)):
      with self.assertRaisesRegex(TypeError, "momentum", msg=repr(bad)):
        fractal_optax.fractal_sgd(4, 0.1, 1.0, momentum=bad)
    for bad in (-0.1, 1.0, math.nan, math.inf, jnp.array(2.0)):
      with self.assertRaisesRegex(ValueError, "momentum", msg=repr(bad)):
        fractal_optax.fractal_sgd(4, 0.1, 1.0, momentum=bad)

  def test_nesterov_types(self):
    fractal_optax.fractal_sgd(
      4, 0.1, 1.0, momentum=0.5, nesterov=np.bool_(True)
    )
    for bad in (1, "yes", None):
      with self.assertRaisesRegex(TypeError, "nesterov"):
        fractal_optax.fractal_sgd(4, 0.1, 1.0, momentum=0.5, nesterov=bad)

  def test_is_an_optax_transformation(self):
    self.assertIsInstance(
      fractal_optax.fractal_sgd(4, 0.1, 1.0), optax.GradientTransformation
    )


class StabilityProfileExtremesTest(parameterized.TestCase):
  def test_overflowing_products_give_no_nan(self):
    # η·λ = 2e308 overflows float64, but the whole run does not: |1 − ηλ|
    # is taken in log space, so final and max_suffix are 2e308 · 2e-10.
    steps = [1e308, 0.5 - 1e-10]
    profile = fractal_optax.stability_profile(steps, 2.0, 2.0)
    self.assertFalse(any(math.isnan(v) for v in profile), profile)
    np.testing.assert_allclose(profile.final, 4e298, rtol=1e-5)
    np.testing.assert_allclose(profile.max_suffix, 4e298, rtol=1e-5)
    # The first step alone amplifies by 2e308, beyond float64: inf, as
    # documented.
    self.assertEqual(profile.max_prefix, math.inf)
    self.assertEqual(profile.max_single_step, math.inf)

  def test_extreme_curvatures(self):
    with jax.enable_x64(True):
      steps = fractal_optax.fractal_chebyshev_step_sizes(16, 1e-200, 1e-190)
    profile = fractal_optax.stability_profile(steps, 1e-200, 1e-190)
    self.assertLessEqual(profile.max_suffix, 1.0 + 1e-9)
    np.testing.assert_allclose(
      profile.final, reference.error_bound(16, 1e-200, 1e-190), rtol=1e-6
    )

  def test_low_precision_steps(self):
    steps = fractal_optax.fractal_chebyshev_step_sizes(
      16, jnp.bfloat16(1.0), jnp.bfloat16(10.0)
    )
    profile = fractal_optax.stability_profile(steps, 1.0, 10.0)
    self.assertTrue(all(math.isfinite(v) for v in profile))

  def test_bad_step_sizes(self):
    for bad in (
      [True, False],
      ["1.0"],
      [1 + 1j],
      [[1.0]],
      [],
      [math.nan],
      [math.inf],
      None,
      [10**400],
    ):
      with self.assertRaisesRegex(
        (TypeError, ValueError), "step_sizes", msg=repr(bad)
      ):
        fractal_optax.stability_profile(bad, 1.0, 2.0)

  def test_work_is_bounded(self):
    start = time.perf_counter()
    for steps, oversample in (
      (np.ones(4), 10**12),
      (np.ones(4), 2**40),
      (np.ones(10**5), 1),
      (np.ones(3000), 16),
    ):
      with self.assertRaisesRegex(ValueError, "oversample"):
        fractal_optax.stability_profile(steps, 1.0, 2.0, oversample=oversample)
    self.assertLess(time.perf_counter() - start, 2.0)
    for bad in (0, -3, True, 2.0):
      with self.assertRaisesRegex((TypeError, ValueError), "oversample"):
        fractal_optax.stability_profile([1.0], 1.0, 2.0, oversample=bad)


if __name__ == "__main__":
  absltest.main()
