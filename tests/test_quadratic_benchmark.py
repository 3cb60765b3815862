"""Smoke test of ``python -m benchmarks.quadratic --quick`` and its pieces.

The benchmark runs once, in-process (its jitted scans are compiled once), into
a temporary directory; the tests check the files it writes, the structure of
its JSON and the claims a quick run can check: the fractal order stays finite
in float32 where both sorted orders end in inf/NaN, and float64 final errors
are within the Chebyshev bound. The orders are checked against independent
numbers (the baselines in tests/test_baselines.py).
"""

import dataclasses
import json
import math
import os
import tempfile

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np

from benchmarks.quadratic import configs
from benchmarks.quadratic import experiment as experiments
from benchmarks.quadratic import main as quadratic_main
from benchmarks.quadratic import report
import fractal_optax

_TARGETS = (
  "fractal_iterations_vs_bound",
  "fractal_vs_gd",
  "fractal_vs_heavy_ball",
  "float32_matches_float64",
  "sorted_orders_nonfinite_float32",
  "wall_time_vs_sgd",
  "adaptive_vs_oracle_kappa_ge_1e3",
  "adaptive_vs_oracle_kappa_below_1e3",
  "adaptive_finite",
)


class QuickRunTest(absltest.TestCase):
  """One ``--quick`` run shared by every test of the class."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls._tmp = tempfile.TemporaryDirectory()
    cls.out = cls._tmp.name
    cls.returned = quadratic_main.main(
      ["--quick", "--workdir", cls.out, "--set", "progress=false"]
    )
    with open(os.path.join(cls.out, "results.json")) as f:
      cls.results = json.load(f)

  @classmethod
  def tearDownClass(cls):
    cls._tmp.cleanup()
    super().tearDownClass()

  def test_files_written(self):
    names = set(os.listdir(self.out))
    self.assertLessEqual({"results.json", "results.md", *report.FIGURES}, names)
    self.assertFalse([n for n in names if n.endswith(".tmp")])
    self.assertNotIn("units", names)  # A finished run drops its units.
    self.assertIn("config.json", names)
    for figure in report.FIGURES:
      with open(os.path.join(self.out, figure), "rb") as f:
        self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")

  def test_json_structure(self):
    r = self.results
    for key in (
      "command",
      "config",
      "environment",
      "orders",
      "acceleration",
      "timing",
      "noise",
      "negative_progress",
      "adaptive",
      "schedule",
      "targets",
      "wall_time_s_this_invocation",
    ):
      self.assertIn(key, r)
    self.assertEqual(
      r["command"],
      "python -m benchmarks.quadratic --quick "
      f"--workdir {self.out} --set progress=false",
    )
    self.assertEqual(list(r["part_wall_time_s"]), list(experiments.PARTS))
    self.assertIn("jax", r["environment"])
    self.assertEqual([t["name"] for t in r["targets"]], list(_TARGETS))
    for t in r["targets"]:
      self.assertIsInstance(t["passed"], bool)
    cfg = r["config"]
    self.assertLen(
      r["orders"]["records"],
      len(cfg["orders_kappas"])
      * len(cfg["orders_num_steps"])
      * len(experiments.ORDERS)
      * len(cfg["orders_dtypes"]),
    )
    methods = {rec["method"] for rec in r["acceleration"]["records"]}
    self.assertLessEqual(set(experiments.ACCEL_METHODS), methods)
    # The returned results are what the file holds.
    self.assertEqual(self.returned["targets"][0]["name"], _TARGETS[0])

  def test_markdown_lists_every_target(self):
    with open(os.path.join(self.out, "results.md")) as f:
      text = f.read()
    self.assertIn("## Targets", text)
    for name in _TARGETS:
      self.assertIn(name, text)

  def test_fractal_finite_in_float32_where_sorted_orders_are_not(self):
    recs = {
      (r["kappa"], r["num_steps"], r["order"], r["dtype"]): r
      for r in self.results["orders"]["records"]
    }
    fractal32 = [
      r for k, r in recs.items() if k[2] == "fractal" and k[3] == "float32"
    ]
    self.assertTrue(fractal32)
    self.assertTrue(all(r["finite"] for r in fractal32))
    for order in experiments.SORTED_ORDERS:
      self.assertFalse(recs[1e4, 256, order, "float32"]["finite"], order)
    target = {t["name"]: t for t in self.results["targets"]}[
      "sorted_orders_nonfinite_float32"
    ]
    self.assertTrue(target["passed"])

  def test_float64_final_errors_within_bound(self):
    for r in self.results["orders"]["records"]:
      if r["order"] in ("fractal", "filtered") and r["dtype"] == "float64":
        self.assertLessEqual(
          r["final_error"], r["bound"] * (1 + 1e-6) + 1e-12, r
        )
    for r in self.results["negative_progress"]["records"]:
      self.assertLessEqual(r["final_error"], r["bound"])
      self.assertGreater(r["fraction_increasing"], 0.0)

  def test_fractal_reaches_tolerance_and_matches_fractal_sgd(self):
    eps = self.results["acceleration"]["tolerance"]
    for r in self.results["acceleration"]["records"]:
      if r["method"] == "fractal":
        self.assertLessEqual(r["final_error"], eps)
        self.assertLessEqual(r["iterations"], r["predicted"])
        self.assertTrue(
          math.isclose(
            r["fractal_sgd_final_error"], r["final_error"], rel_tol=1e-6
          ),
          r,
        )

  def test_adaptive_runs_against_the_oracle(self):
    adaptive = self.results["adaptive"]
    eps, cfg = adaptive["tolerance"], self.results["config"]
    by = {
      (r["kappa"], r["method"]): r
      for r in adaptive["records"]
      if r["method"] != "adaptive"
    }
    runs = [r for r in adaptive["records"] if r["method"] == "adaptive"]
    self.assertLen(
      runs, len(cfg["adaptive_kappas"]) * len(cfg["adaptive_guesses"])
    )
    for r in runs:
      oracle = by[r["kappa"], "oracle"]
      self.assertEqual(oracle["num_steps"], r["num_steps"])
      self.assertEqual(oracle["evaluations"], oracle["iterations"])
      self.assertTrue(r["finite"] and oracle["finite"], r)
      self.assertIsNotNone(r["iterations"], r)
      # Cost = steps + extra loss evaluations + 2 per HVP: the first Lanczos
      # steps, one per rejected and one per accepted cycle.
      self.assertEqual(
        r["evaluations"],
        r["iterations"] + r["num_value_evals"] + 2 * r["num_hvps"],
      )
      # The first measurement: 3 Lanczos steps, more (up to the cap) while
      # the top Ritz value is unresolved.
      cap = adaptive["library_defaults"]["num_init_hvps"]
      init = r["num_hvps"] - r["num_rejected"] - r["num_accepted"]
      self.assertBetween(init, min(3, cap), cap)
      self.assertGreater(r["num_accepted"], 0)
      self.assertAlmostEqual(
        r["ratio_to_oracle"], r["evaluations"] / oracle["evaluations"]
      )
      for rec in (r, oracle):  # The curves end where ε is reached.
        self.assertLessEqual(rec["curve"]["errors"][-1], eps * (1 + 1e-3))
        self.assertEqual(rec["curve"]["evaluations"][-1], rec["evaluations"])
      self.assertTrue(math.isfinite(r["final_max_curvature"]))
      self.assertGreater(r["seconds_to_eps"], 0.0)
    targets = {t["name"]: t for t in self.results["targets"]}
    ratios = {
      k: v
      for name in (
        "adaptive_vs_oracle_kappa_ge_1e3",
        "adaptive_vs_oracle_kappa_below_1e3",
      )
      for k, v in targets[name]["per_run"].items()
    }
    self.assertEqual(
      sorted(ratios.values()), sorted(r["ratio_to_oracle"] for r in runs)
    )
    self.assertTrue(targets["adaptive_finite"]["passed"])

  def test_state_bytes(self):
    opts = self.results["timing"]["problems"][0]["optimizers"]
    self.assertFalse(opts["fractal"]["per_parameter_state"])
    self.assertTrue(opts["heavy_ball"]["per_parameter_state"])
    # The adaptive optimiser keeps two parameter-sized vectors and scalars.
    dim = self.results["timing"]["problems"][0]["dim"]
    adaptive = opts["adaptive"]["state_bytes"]
    self.assertBetween(adaptive, 2 * 4 * dim, 2 * 4 * dim + 256)


class PiecesTest(parameterized.TestCase):
  @parameterized.parameters(6, 64, 100, 127)
  def test_orders_are_permutations(self, num_steps):
    for name in experiments.ORDERS:
      order = experiments.step_order(name, num_steps, seed=0)
      self.assertEqual(sorted(order.tolist()), list(range(num_steps)), name)
    np.testing.assert_array_equal(
      experiments.step_order("smallest_first", num_steps, 0),
      np.arange(num_steps)[::-1],
    )

  def test_filtered_equals_fractal_for_powers_of_two(self):
    np.testing.assert_array_equal(
      experiments.step_order("filtered", 64, 0), fractal_optax.fractal_order(64)
    )

  def test_predicted_num_steps(self):
    t = experiments.predicted_num_steps(1e4, 1e-6)
    self.assertLessEqual(
      fractal_optax.chebyshev_error_bound(t, 1e-4, 1.0), 1e-6
    )
    self.assertGreater(
      fractal_optax.chebyshev_error_bound(t - 1, 1e-4, 1.0), 1e-6
    )

  @parameterized.parameters((1, 10), (4, 10), (40, 10), (64, 10))
  def test_smallest_sufficient(self, start, expected):
    found = experiments.smallest_sufficient(
      lambda t: 0.5**t, 1e-3, start=start, limit=64
    )
    self.assertEqual(found, expected)
    self.assertIsNone(
      experiments.smallest_sufficient(
        lambda t: 0.5**t, 1e-30, start=start, limit=64
      )
    )

  @parameterized.parameters(
    ({"target_kappa": 5.0}, "target_kappa"),
    ({"timing_steps": (1, 2, 3)}, "timing_steps"),
    ({"orders_dtypes": ("float16",)}, "orders_dtypes"),
    ({"cycle_lengths": ()}, "cycle_lengths"),
    ({"noise_kappa": 1.0}, "noise_kappa=1.0"),
    ({"adaptive_kappas": (1e2, 1.0)}, "adaptive_kappas"),
    ({"adaptive_guesses": (0.0,)}, "adaptive_guesses"),
  )
  def test_config_check(self, change, message):
    with self.assertRaisesRegex(ValueError, message):
      dataclasses.replace(configs.PRESETS["quick"], **change)

  def test_bad_input(self):
    with self.assertRaisesRegex(ValueError, "name='sideways'"):
      experiments.step_order("sideways", 8, 0)


if __name__ == "__main__":
  absltest.main()
