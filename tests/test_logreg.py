"""Tests for benchmarks/logreg: one step, analysis, --quick runs, resume."""

import dataclasses
import json
import math
import os
import tempfile
from unittest import mock

from absl.testing import absltest
import chex
import jax.numpy as jnp
import numpy as np
import optax

from benchmarks import input_pipeline
from benchmarks import metrics
from benchmarks.logreg import configs
from benchmarks.logreg import main as logreg_main
from benchmarks.logreg import models
from benchmarks.logreg import sweep
from benchmarks.logreg import train
import fractal_optax


def _tiny_dataset(n=12, seed=0):
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, size=(n, 28, 28, 1), dtype=np.uint8)
  labels = (np.arange(n) % 10).astype(np.int32)
  return input_pipeline.Dataset(
    images, labels, images[:4], labels[:4], num_classes=10, name="tiny"
  )


def _read(path):
  with open(path) as f:
    return f.read()


def _run_full(tmp, args):
  """Runs ``args`` into ``tmp/full``; returns it and ``tmp/cut``."""
  full = os.path.join(tmp, "full")
  logreg_main.main([*args, "--workdir", full])
  return full, os.path.join(tmp, "cut")


class OneStepTest(chex.TestCase):
  def test_one_gd_step_matches_closed_form(self):
    ds = _tiny_dataset()
    problem = models.build_problem(ds, l2=0.5)
    x = np.asarray(problem.data[0], np.float64)
    onehot = np.eye(10)[ds.train_labels]
    # At zero parameters the softmax is uniform: f0 = log 10, and the
    # gradient is X^T (1/10 - Y) / n for the kernel, mean(1/10 - Y) for b.
    self.assertAlmostEqual(
      float(problem.evaluate(problem.params)["loss"]), math.log(10), places=5
    )
    lr = 0.3
    method = train.Method(
      "gd", "GD", optax.sgd(lr), train._constant_rate(lr), {}
    )
    state = {
      "params": problem.params,
      "opt_state": method.tx.init(problem.params),
    }
    state, out = train.make_chunk_fn(problem, method)(state, 0, 1)
    chex.assert_shape(out["loss"], (1,))
    np.testing.assert_allclose(out["loss"], [math.log(10)], rtol=1e-6)
    np.testing.assert_allclose(out["learning_rate"], [lr])
    np.testing.assert_array_equal(out["evaluations"], [1])
    params = state["params"]["linear"]
    np.testing.assert_allclose(
      params["kernel"][...],
      -lr * x.T @ (0.1 - onehot) / len(x),
      rtol=1e-4,
      atol=1e-6,
    )
    np.testing.assert_allclose(
      params["bias"][...], -lr * (0.1 - onehot).mean(0), atol=1e-6
    )

  def test_method_with_extra_args_and_own_evaluation_count(self):
    # optax.lbfgs needs value, grad and value_fn: the extension point of a
    # method such as adaptive_fractal_sgd; its cost comes from its state.
    problem = models.build_problem(_tiny_dataset(), l2=0.5)
    evals = lambda state, t: 3 * state[0].count  # Read from the state.
    method = train.Method(
      "lbfgs",
      "L-BFGS",
      optax.lbfgs(),
      lambda state, t: jnp.float32(1.0),
      {},
      evals,
    )
    state = {
      "params": problem.params,
      "opt_state": method.tx.init(problem.params),
    }
    _, out = train.make_chunk_fn(problem, method)(state, 0, 5)
    self.assertLess(out["loss"][-1], out["loss"][0])
    np.testing.assert_array_equal(out["evaluations"], [3, 6, 9, 12, 15])

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

  def test_config_checks(self):
    quick = configs.get_config("quick")
    for key, value in (
      ("l2", 0.0),
      ("mode", "scan"),
      ("sweep_cycles", (4, 0)),
      ("max_curvature", "exact"),
      ("epsilon", 1.0),
    ):
      with self.assertRaisesRegex(ValueError, key):
        dataclasses.replace(quick, **{key: value})


class QuickRunTest(absltest.TestCase):
  def test_quick_end_to_end(self):
    with tempfile.TemporaryDirectory() as workdir:
      summary = logreg_main.main(["--quick", "--workdir", workdir])
      with open(os.path.join(workdir, "summary.json")) as f:
        on_disk = json.load(f)
      self.assertEqual(on_disk["best_constant"], summary["best_constant"])
      self.assertEqual(
        on_disk["command"],
        f"python -m benchmarks.logreg --quick --workdir {workdir}",
      )
      config = configs.get_config("quick")
      n = config.num_steps
      names = set(on_disk["methods"])
      self.assertTrue(
        {"gd", "heavy_ball", "nesterov", "fractal", "fractal_short", "adaptive"}
        <= names,
        names,
      )
      for name in names:
        records = metrics.read_metrics(
          os.path.join(workdir, "runs", name, metrics.METRICS_FILE)
        )
        self.assertEqual([r["step"] for r in records], list(range(n + 1)))
        losses = np.array([r["loss"] for r in records])
        self.assertTrue(np.isfinite(losses).all(), name)
        self.assertTrue(all("learning_rate" in r for r in records[:n]))
        evaluated = [r["step"] for r in records if "test_accuracy" in r]
        self.assertEqual(evaluated, list(range(0, n, config.eval_every)) + [n])
        self.assertGreater(records[-1]["test_accuracy"], 0.5)
        # The summary is computed from these files.
        stats = train.analyse(losses, on_disk["f_star"], config.epsilon)
        self.assertEqual(
          stats["steps_to_epsilon"],
          on_disk["methods"][name]["steps_to_epsilon"],
        )
      # The adaptive method: finite, and it counts its HVPs (the Lanczos
      # measurement of M at the start, one per cycle), so it reports more
      # gradient evaluations than steps; the others one per step.
      records = metrics.read_metrics(
        os.path.join(workdir, "runs", "adaptive", metrics.METRICS_FILE)
      )
      steps, evals = metrics.metrics_arrays(records, "evaluations")
      self.assertTrue(np.isfinite(evals).all())
      self.assertTrue((evals > steps + 1).all(), evals[:5])
      self.assertTrue((np.diff(evals) >= 1).all())
      adaptive = on_disk["methods"]["adaptive"]
      self.assertFalse(adaptive["diverged"])
      self.assertGreater(adaptive["final_evaluations"], n)
      self.assertGreater(adaptive["max_curvature"], 0)
      self.assertIn(
        "adaptive fractal", _read(os.path.join(workdir, "results.md"))
      )
      nesterov = on_disk["methods"]["nesterov"]
      self.assertEqual(
        nesterov["evaluations_to_epsilon"], nesterov["steps_to_epsilon"]
      )
      self.assertGreater(nesterov["seconds_to_epsilon"], 0)
      records = metrics.read_metrics(
        os.path.join(workdir, "runs", "fractal", metrics.METRICS_FILE)
      )
      curv = on_disk["curvature"]
      expected = fractal_optax.fractal_chebyshev_schedule(
        on_disk["bound_cycle"], curv["min_curvature"], curv["max_curvature"]
      )(jnp.arange(n))
      np.testing.assert_allclose(
        [r["learning_rate"] for r in records[:n]], expected, rtol=1e-6
      )
      self.assertGreater(curv["kappa"], 1)
      for name in ("results.md", "figure5.png"):
        self.assertGreater(os.path.getsize(os.path.join(workdir, name)), 100)
      self.assertIn("Nesterov", _read(os.path.join(workdir, "results.md")))
      self.assertFalse(os.path.exists(os.path.join(workdir, "units")))

  # Wall times differ from run to run: a fixed one, so the files compare.
  @mock.patch.object(
    train, "time_to_target", lambda *_: {"seconds": 1.0, "steps": 0}
  )
  def test_interrupted_compare_resumes_to_the_same_files(self):
    args = [
      "--quick",
      "--set",
      "num_steps=40",
      "constant_grid=1",
      "checkpoint_every=20",
      "eval_every=20",
    ]
    with tempfile.TemporaryDirectory() as tmp:
      full, cut = _run_full(tmp, args)
      make_chunk_fn, calls, fail_at = train.make_chunk_fn, [], [4]

      def failing(problem, method):
        chunk_fn = make_chunk_fn(problem, method)

        def run(state, start, n):
          calls.append((method.name, start))
          if len(calls) == fail_at[0]:  # heavy_ball's second chunk.
            raise KeyboardInterrupt
          return chunk_fn(state, start, n)

        return run

      with mock.patch.object(train, "make_chunk_fn", failing):
        with self.assertRaises(KeyboardInterrupt):
          logreg_main.main([*args, "--workdir", cut])
      self.assertFalse(os.path.exists(os.path.join(cut, "summary.json")))
      calls.clear()
      fail_at[0] = -1
      with (
        mock.patch.object(train, "make_chunk_fn", failing),
        mock.patch.object(train, "reference_optimum") as lbfgs,
      ):
        logreg_main.main([*args, "--workdir", cut])
      lbfgs.assert_not_called()  # The set-up unit was reused.
      self.assertEqual(calls[0], ("heavy_ball", 20))  # Finished runs skipped.
      self.assertEqual(
        _read(os.path.join(full, "results.md")),
        _read(os.path.join(cut, "results.md")),
      )
      for name in os.listdir(os.path.join(full, "runs")):
        path = os.path.join("runs", name, metrics.METRICS_FILE)
        self.assertEqual(
          _read(os.path.join(full, path)), _read(os.path.join(cut, path)), name
        )

  @mock.patch.object(
    train, "time_to_target", lambda *_: {"seconds": 1.0, "steps": 0}
  )
  def test_interrupted_sweep_resumes_to_the_same_files(self):
    args = [
      "--quick",
      "--set",
      "mode=sweep",
      "sweep_l2=0.1,0.03",
      "sweep_cycles=4",
      "sweep_steps=40",
      "adaptive_seeds=0,0",
    ]
    with tempfile.TemporaryDirectory() as tmp:
      full, cut = _run_full(tmp, args)
      summary = json.loads(_read(os.path.join(full, sweep.SWEEP_FILE)))
      row = summary["rows"][0]
      self.assertEqual(row["l2"], 0.1)
      self.assertIn("fractal_4", row["runs"])
      self.assertIn(f"fractal_{row['bound_cycle']}", row["runs"])
      self.assertTrue(
        {"constant_1", "constant_2", "heavy_ball", "nesterov", "adaptive"}
        <= set(row["runs"])
      )
      adaptive = row["runs"]["adaptive"]
      self.assertGreater(adaptive["final_evaluations"], 40)  # sweep_steps.
      if adaptive["steps_to_epsilon"] is not None:
        self.assertGreater(
          adaptive["evaluations_to_epsilon"], adaptive["steps_to_epsilon"]
        )
      # The extra seeds' counts come from a second path; seed 0 again gives
      # the table's count (reached at lambda = 0.1 within the 40 steps).
      self.assertIsNotNone(adaptive["evaluations_to_epsilon"])
      self.assertEqual(
        adaptive["evaluations_by_seed"],
        [adaptive["evaluations_to_epsilon"]] * 2,
      )
      markdown = _read(os.path.join(full, "sweep.md"))
      self.assertIn("| 0.1 |", markdown)
      self.assertIn("adaptive, seeds 0, 0: mean (min–max)", markdown)
      self.assertTrue(os.path.isfile(os.path.join(full, "sweep.png")))

      sweep_one, computed = sweep.sweep_one, []

      def failing(config, dataset, l2, store):
        computed.append(l2)
        if l2 == 0.03 and len(computed) == 2:
          raise KeyboardInterrupt
        return sweep_one(config, dataset, l2, store)

      with mock.patch.object(sweep, "sweep_one", failing):
        with self.assertRaises(KeyboardInterrupt):
          logreg_main.main([*args, "--workdir", cut])
        self.assertFalse(os.path.exists(os.path.join(cut, sweep.SWEEP_FILE)))
        logreg_main.main([*args, "--workdir", cut])
      self.assertEqual(computed, [0.1, 0.03, 0.03])
      self.assertEqual(
        _read(os.path.join(full, "sweep.md")),
        _read(os.path.join(cut, "sweep.md")),
      )
      resumed = json.loads(_read(os.path.join(cut, sweep.SWEEP_FILE)))
      strip = lambda rows: [
        {**r, "seconds": 0, "lbfgs": {**r["lbfgs"], "seconds": 0}} for r in rows
      ]
      self.assertEqual(strip(summary["rows"]), strip(resumed["rows"]))


class SweepRunnerTest(chex.TestCase):
  def test_vmapped_rows_match_single_optax_runs(self):
    problem = models.build_problem(_tiny_dataset(), l2=0.1)
    m, M = 0.1, 5.0
    schedule = fractal_optax.fractal_chebyshev_schedule(4, m, M)
    rows = jnp.stack([jnp.full(6, 0.2), schedule(jnp.arange(6))])
    batched = sweep.gd_losses(problem, rows)
    chex.assert_shape(batched, (2, 7))
    for row, tx, lr in (
      (0, optax.sgd(0.2), train._constant_rate(0.2)),
      (1, fractal_optax.fractal_sgd(4, m, M), lambda _, t: schedule(t)),
    ):
      single, logs = sweep.method_losses(
        problem, train.Method("x", "x", tx, lr, {}), 6
      )
      np.testing.assert_array_equal(logs["evaluations"], np.arange(1, 7))
      np.testing.assert_allclose(batched[row], single, rtol=2e-5)


if __name__ == "__main__":
  absltest.main()
