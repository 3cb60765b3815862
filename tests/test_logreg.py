"""Tests for benchmarks/logreg: one step on tiny data, analysis, --quick."""

import json
import math
import os
import tempfile

from absl.testing import absltest
import chex
import jax.numpy as jnp
import numpy as np
import optax

import fractal_optax
from benchmarks import harness
from benchmarks import input_pipeline
from benchmarks.logreg import configs
from benchmarks.logreg import main as logreg_main
from benchmarks.logreg import sweep
from benchmarks.logreg import train


def _tiny_dataset(n=12, seed=0):
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, size=(n, 28, 28, 1), dtype=np.uint8)
  labels = (np.arange(n) % 10).astype(np.int32)
  return input_pipeline.Dataset(images, labels, images[:4], labels[:4],
                                num_classes=10, name="tiny")


class OneStepTest(chex.TestCase):

  def test_one_gd_step_matches_closed_form(self):
    ds = _tiny_dataset()
    problem = train.build_problem(ds, l2=0.5)
    x = np.asarray(problem.data[0], np.float64)
    onehot = np.eye(10)[ds.train_labels]
    # At zero parameters the softmax is uniform: f0 = log 10, and the
    # gradient is X^T (1/10 - Y) / n for the kernel, mean(1/10 - Y) for b.
    self.assertAlmostEqual(float(problem.evaluate(problem.params)["loss"]),
                           math.log(10), places=5)
    lr = 0.3
    method = train.Method("gd", "GD", optax.sgd(lr), train._constant(lr), {})
    state = {"params": problem.params,
             "opt_state": method.tx.init(problem.params)}
    state, metrics = train.make_chunk_fn(problem, method)(state, 0, 1)
    chex.assert_shape(metrics["loss"], (1,))
    np.testing.assert_allclose(metrics["loss"], [math.log(10)], rtol=1e-6)
    np.testing.assert_allclose(metrics["learning_rate"], [lr])
    params = state["params"]["linear"]
    np.testing.assert_allclose(
        params["kernel"][...], -lr * x.T @ (0.1 - onehot) / len(x),
        rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(params["bias"][...],
                               -lr * (0.1 - onehot).mean(0), atol=1e-6)

  def test_bound_cycle_length_is_smallest(self):
    m, M, eps = 0.01, 4.0, 1e-4
    t = train.bound_cycle_length(m, M, eps)
    bound = lambda k: fractal_optax.chebyshev_error_bound(k, m, M)
    self.assertLessEqual(bound(t) ** 2, eps)
    self.assertGreater(bound(t - 1) ** 2, eps)
    self.assertEqual(train.short_cycle_length(400.0), 8)

  def test_analyse(self):
    f_star = 1.0
    # Relative gaps 1, .5, 2, 1e-5 (hit at t=3), 1e-3, 1e-6 (stays from 5).
    losses = f_star + np.array([1, 0.5, 2, 1e-5, 1e-3, 1e-6])
    stats = train.analyse(losses, f_star, 1e-4)
    self.assertEqual(stats["steps_to_epsilon"], 3)
    self.assertEqual(stats["steps_to_epsilon_stay"], 5)
    self.assertAlmostEqual(stats["fraction_loss_increasing"], 1 / 3)
    self.assertAlmostEqual(stats["largest_suboptimality_increase"], 4.0)
    # Up to the noise floor (t = 5): steps 2 and 4 of 5 increased the loss.
    self.assertAlmostEqual(stats["fraction_loss_increasing_to_floor"], 0.4)
    self.assertFalse(stats["diverged"])
    stats = train.analyse(f_star + np.array([1, 3, np.nan]), f_star, 1e-4)
    self.assertTrue(stats["diverged"])
    self.assertIsNone(stats["steps_to_epsilon"])


class QuickRunTest(absltest.TestCase):

  def test_quick_end_to_end(self):
    with tempfile.TemporaryDirectory() as workdir:
      summary = logreg_main.main(["--quick", "--workdir", workdir])
      with open(os.path.join(workdir, "summary.json")) as f:
        on_disk = json.load(f)
      self.assertEqual(on_disk["best_constant"], summary["best_constant"])
      config = configs.get_config("quick")
      n = config.num_steps
      names = set(on_disk["methods"])
      self.assertTrue({"gd", "heavy_ball", "nesterov", "fractal",
                       "fractal_short"} <= names, names)
      for name in names:
        records = harness.read_metrics(
            os.path.join(workdir, "runs", name, harness.METRICS_FILE))
        self.assertEqual([r["step"] for r in records], list(range(n + 1)))
        losses = np.array([r["loss"] for r in records])
        self.assertTrue(np.isfinite(losses).all(), name)
        self.assertTrue(all("learning_rate" in r for r in records[:n]))
        evaluated = [r["step"] for r in records if "test_accuracy" in r]
        self.assertEqual(evaluated,
                         list(range(0, n, config.eval_every)) + [n])
        self.assertGreater(records[-1]["test_accuracy"], 0.5)
        # The summary is computed from these files.
        stats = train.analyse(losses, on_disk["f_star"], config.epsilon)
        self.assertEqual(stats["steps_to_epsilon"],
                         on_disk["methods"][name]["steps_to_epsilon"])
      # The fractal run logged the library's schedule.
      records = harness.read_metrics(
          os.path.join(workdir, "runs", "fractal", harness.METRICS_FILE))
      curv = on_disk["curvature"]
      expected = fractal_optax.fractal_chebyshev_schedule(
          on_disk["bound_cycle"], curv["min_curvature"],
          curv["max_curvature"])(jnp.arange(n))
      np.testing.assert_allclose([r["learning_rate"] for r in records[:n]],
                                 expected, rtol=1e-6)
      self.assertGreater(curv["kappa"], 1)
      for name in ("results.md", "figure5.png"):
        self.assertGreater(os.path.getsize(os.path.join(workdir, name)), 100)
      with open(os.path.join(workdir, "results.md")) as f:
        self.assertIn("Nesterov", f.read())

  def test_quick_sweep(self):
    with tempfile.TemporaryDirectory() as workdir:
      logreg_main.main(["--quick", "--workdir", workdir, "--set", "mode=sweep",
                        "sweep_l2=0.1", "sweep_cycles=4", "sweep_steps=40"])
      with open(os.path.join(workdir, sweep.SWEEP_FILE)) as f:
        summary = json.load(f)
      (row,) = summary["rows"]
      self.assertEqual(row["l2"], 0.1)
      self.assertIn("fractal_4", row["runs"])
      self.assertIn(f"fractal_{row['bound_cycle']}", row["runs"])
      self.assertTrue({"constant_1", "constant_2", "heavy_ball",
                       "nesterov"} <= set(row["runs"]))
      with open(os.path.join(workdir, "sweep.md")) as f:
        table = f.read()
      self.assertIn("| 0.1 |", table)
      self.assertTrue(os.path.isfile(os.path.join(workdir, "sweep.png")))


class SweepRunnerTest(chex.TestCase):

  def test_vmapped_rows_match_single_optax_runs(self):
    problem = train.build_problem(_tiny_dataset(), l2=0.1)
    m, M = 0.1, 5.0
    schedule = fractal_optax.fractal_chebyshev_schedule(4, m, M)
    rows = jnp.stack([jnp.full(6, 0.2), schedule(jnp.arange(6))])
    batched = sweep.gd_losses(problem, rows)
    chex.assert_shape(batched, (2, 7))
    for row, tx, lr in ((0, optax.sgd(0.2), train._constant(0.2)),
                        (1, fractal_optax.fractal_sgd(4, m, M), schedule)):
      single = sweep.method_losses(
          problem, train.Method("x", "x", tx, lr, {}), 6)
      np.testing.assert_allclose(batched[row], single, rtol=2e-5)


if __name__ == "__main__":
  absltest.main()
