"""Smoke test of ``benchmarks.curvature`` on tiny float32 problems.

One run, in-process, through the command line into a temporary directory;
the tests check the files and the claims a row makes about itself: ours
matches eigsh's accuracy with no more products, the reported count is the
fewest (bisection over the leading blocks), and the safe bounds bracket the
known extreme eigenvalues.
"""

import json
import os
import tempfile
from unittest import mock

from absl.testing import absltest
import jax
import numpy as np

from benchmarks.curvature import configs
from benchmarks.curvature import experiment
from benchmarks.curvature import main as curvature_main

_ARGS = [
  "--quick",
  "--set",
  "sizes=40",
  "mlp_inputs=3",
  "mlp_hidden=4",
  "mlp_samples=16",
  "dtype=float32",
]


class QuickRunTest(absltest.TestCase):
  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    cls._tmp = tempfile.TemporaryDirectory()
    cls.out = cls._tmp.name
    cls.returned = curvature_main.main(_ARGS + ["--workdir", cls.out])
    with open(os.path.join(cls.out, "curvature.json")) as f:
      cls.results = json.load(f)

  @classmethod
  def tearDownClass(cls):
    cls._tmp.cleanup()
    super().tearDownClass()

  def test_files(self):
    self.assertEqual(
      [r["problem"] for r in self.results["rows"]], ["quadratic_40", "mlp_41"]
    )
    self.assertEqual(self.results["config"]["tol"], 1e-4)
    with open(os.path.join(self.out, "curvature.md")) as f:
      text = f.read()
    self.assertTrue(text.startswith("`python -m benchmarks.curvature --quick"))
    self.assertIn("| quadratic_40 | float32 |", text)

  def test_a_killed_run_resumes_at_the_unfinished_problem(self):
    real, calls = experiment.benchmark_problem, []

    def killed_at_mlp(problem, config):
      calls.append(problem["name"])
      if problem["name"].startswith("mlp"):
        raise KeyboardInterrupt("simulated kill")
      return real(problem, config)

    with tempfile.TemporaryDirectory() as d:
      args = _ARGS + ["--workdir", d, "--set", "progress=false"]
      with mock.patch.object(experiment, "benchmark_problem", killed_at_mlp):
        with self.assertRaises(KeyboardInterrupt):
          curvature_main.main(args)
      self.assertEqual(
        os.listdir(os.path.join(d, "units")), ["quadratic_n=40.json"]
      )
      self.assertFalse(os.path.exists(os.path.join(d, "curvature.json")))
      calls.clear()
      with mock.patch.object(
        experiment,
        "benchmark_problem",
        lambda p, c: calls.append(p["name"]) or real(p, c),
      ):
        result = curvature_main.main(args)
      self.assertEqual(calls, ["mlp_41"])  # The quadratic's row was reused.
      self.assertEqual(
        [r["problem"] for r in result["rows"]], ["quadratic_40", "mlp_41"]
      )
      self.assertFalse(os.path.exists(os.path.join(d, "units")))

  def test_rows(self):
    eps = float(np.finfo(np.float32).eps)
    for row in self.results["rows"]:
      with self.subTest(row["problem"]):
        match, k = row["ours_hvps_to_match"], row["eigsh_hvps"]
        self.assertIsNotNone(match)
        self.assertLessEqual(match, k)
        self.assertAlmostEqual(row["hvp_ratio"], match / k)
        floor = 10 * eps * abs(row["lambda_max"])
        for end in ("max", "min"):
          truth = row[f"lambda_{end}"]
          allowed = max(row[f"eigsh_err_{end}"] * abs(truth), floor)
          self.assertLessEqual(
            row[f"ours_err_{end}_at_match"] * abs(truth), allowed * (1 + 1e-6)
          )
        self.assertTrue(row["safe_brackets"])
        self.assertGreaterEqual(row["safe_max_over_lambda_max"], 1.0)
    self.assertEqual(
      self.results["rows"][1]["safe_min_source"], "max_condition_number"
    )  # the MLP is non-convex

  def test_match_is_fewest(self):
    config = configs.PRESETS["quick"]
    row = self.results["rows"][0]
    problem = experiment.quadratic_problem(
      40, config.__class__(sizes=(40,), dtype="float32")
    )
    key = jax.random.key(config.seed)
    est = experiment.run_ours(problem, row["ours_hvps_to_match"] - 1, key)[2]
    floor = 10 * float(np.finfo(np.float32).eps) * row["lambda_max"]
    missed = [
      abs(est.max_ritz_value - row["lambda_max"])
      > max(row["eigsh_err_max"] * row["lambda_max"], floor),
      abs(est.min_ritz_value - row["lambda_min"])
      > max(row["eigsh_err_min"] * row["lambda_min"], floor),
    ]
    self.assertTrue(any(missed))

  def test_bad_config(self):
    with self.assertRaisesRegex(ValueError, "dtype=.float16."):
      configs.Config(dtype="float16")
    with self.assertRaisesRegex(ValueError, "sizes"):
      configs.Config(sizes=(3,))
    with self.assertRaises(SystemExit):
      curvature_main.main(["--set", "tol=0", "--workdir", self.out])


if __name__ == "__main__":
  absltest.main()
