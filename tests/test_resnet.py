"""Tests for benchmarks/resnet: model, augmentation, optimiser, runs, resume.

Networks are tiny (width 1/16, 16x16 synthetic images) and every training
test uses the same program (rates live in the optimiser state), so the train
step compiles once per process. Multi-device and multi-process runs are in
``tests/test_multiprocess.py``.
"""

import dataclasses
import os
import subprocess
import sys
import tempfile
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import chex
from flax import nnx
import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import files
from benchmarks import metrics
from benchmarks import train_loop
from benchmarks.resnet import augment
from benchmarks.resnet import configs
from benchmarks.resnet import experiment
from benchmarks.resnet import models
from benchmarks.resnet import throughput
from benchmarks.resnet import train
import fractal_optax

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_dataset(num_train=64, num_test=24, size=16, seed=0):
  """Random 16x16 grayscale images with labels, as a ``Dataset``."""
  from benchmarks import input_pipeline

  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (num_train + num_test, size, size, 1), np.uint8)
  labels = rng.integers(0, 10, num_train + num_test).astype(np.int32)
  return input_pipeline.Dataset(
    images[:num_train],
    labels[:num_train],
    images[num_train:],
    labels[num_train:],
    num_classes=10,
    name="fashion_mnist",
  )


# One program for every training test below (see train._PROGRAM_FIELDS).
TINY = dataclasses.replace(
  configs.SMOKE,
  dataset="fashion_mnist",
  batch_size=16,
  eval_batch_size=16,
  num_steps=2,
  log_every=1,
  checkpoint_every=1,
  progress=False,
)


def count_params(model):
  return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))


class ModelTest(parameterized.TestCase):
  def test_resnet18_parameter_count(self):
    # kuangliu/pytorch-cifar's ResNet18: 11,173,962 trainable parameters.
    rgb = nnx.eval_shape(lambda: models.ResNet(rngs=nnx.Rngs(0)))
    self.assertEqual(count_params(rgb), 11_173_962)
    gray = nnx.eval_shape(
      lambda: models.ResNet(in_channels=1, rngs=nnx.Rngs(0))
    )
    # Only the stem's 3x3 kernel changes: 2 * 9 * 64 fewer weights.
    self.assertEqual(count_params(gray), 11_173_962 - 2 * 9 * 64)
    stats = nnx.state(rgb, nnx.BatchStat)  # Not parameters.
    self.assertEqual(sum(x.size for x in jax.tree.leaves(stats)), 9_600)
    small = nnx.eval_shape(
      lambda: models.ResNet(width_multiplier=1 / 16, rngs=nnx.Rngs(0))
    )
    self.assertEqual(small.head.in_features, 32)
    self.assertEqual(small.stem.conv.out_features, 4)

  @parameterized.named_parameters(
    ("fashion_mnist", 1, 28, jnp.float32),
    ("cifar10_bf16", 3, 32, jnp.bfloat16),
  )
  def test_output_shapes_and_dtypes(self, channels, size, dtype):

    def forward():
      model = models.ResNet(
        num_classes=10,
        in_channels=channels,
        width_multiplier=1 / 16,
        dtype=dtype,
        rngs=nnx.Rngs(0),
      )
      logits = model(jnp.zeros((3, size, size, channels)), train=True)
      return logits, nnx.state(model, nnx.Param)

    logits, params = nnx.eval_shape(forward)
    chex.assert_shape(logits, (3, 10))
    self.assertEqual(logits.dtype, jnp.float32)
    for leaf in jax.tree.leaves(params):
      self.assertEqual(leaf.dtype, jnp.float32)  # f32 params, any compute.

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, "in_channels"):
      models.ResNet(in_channels=2, rngs=nnx.Rngs(0))
    with self.assertRaisesRegex(ValueError, "width_multiplier"):
      models.ResNet(width_multiplier=0.0, rngs=nnx.Rngs(0))


class AugmentTest(chex.TestCase):
  def test_random_crop_is_a_shifted_window(self):
    image = np.arange(6 * 6, dtype=np.float32).reshape(1, 6, 6, 1) + 1
    images = np.repeat(image, 16, axis=0)
    out = np.asarray(
      augment.random_crop(jnp.asarray(images), jax.random.key(1), 2)
    )
    padded = np.pad(images[0], ((2, 2), (2, 2), (0, 0)))
    windows = {
      (dy, dx)
      for dy in range(5)
      for dx in range(5)
      if np.array_equal(out[0], padded[dy : dy + 6, dx : dx + 6])
    }
    self.assertLen(windows, 1)
    self.assertGreater(len({o.tobytes() for o in out}), 1)  # Own offsets.

  def test_flip_and_determinism(self):
    images = jnp.asarray(
      np.random.default_rng(0).integers(0, 256, (64, 4, 4, 1), np.uint8)
    )
    key = jax.random.key(3)
    kwargs = dict(mean=(0.5,), std=(0.25,), padding=1, flip=True)
    chex.assert_trees_all_equal(
      augment.preprocess(images, key, **kwargs),
      augment.preprocess(images, key, **kwargs),
    )
    flipped = np.asarray(augment.random_flip(images, key))
    same = np.all(flipped == np.asarray(images), axis=(1, 2, 3))
    mirrored = np.all(flipped == np.asarray(images)[:, :, ::-1], axis=(1, 2, 3))
    self.assertTrue(np.all(same | mirrored))
    self.assertTrue(10 < mirrored.sum() < 54)
    chex.assert_trees_all_close(
      augment.preprocess(images, None, **kwargs),
      (images.astype(jnp.float32) / 255 - 0.5) / 0.25,
    )


class OptimizerTest(absltest.TestCase):
  def test_multipliers_are_the_librarys_steps(self):
    fractal = dataclasses.replace(TINY, schedule="fractal")
    raw = np.asarray(fractal_optax.fractal_chebyshev_step_sizes(8, 0.1, 1.0))
    # PAPER.md's example, m = 0.1, M = 1, T = 8, in the order taken.
    np.testing.assert_allclose(
      train.multipliers(fractal),
      [
        9.204152,
        1.008722,
        2.163522,
        1.567913,
        5.687031,
        1.082062,
        3.333407,
        1.249990,
      ],
      rtol=1e-5,
    )
    mean = train.multipliers(
      dataclasses.replace(fractal, fractal_normalization="mean")
    )
    np.testing.assert_allclose(mean, raw / raw.mean(), rtol=1e-6)
    self.assertAlmostEqual(float(mean.mean()), 1.0, places=5)
    np.testing.assert_array_equal(train.multipliers(TINY), np.ones(8))

  def test_updates_follow_the_cycle_in_one_program(self):
    params = {"w": jnp.ones(3)}
    grads = {"w": jnp.ones(3)}
    fractal = dataclasses.replace(TINY, schedule="fractal", learning_rate=0.3)
    tx = train.make_optimizer(fractal)

    @jax.jit
    def update(state):
      return tx.update(grads, state, params)

    for config in (fractal, dataclasses.replace(TINY, learning_rate=0.7)):
      state = tx.init(params)
      # The constant run's state, put into the same optimiser.
      state.hyperparams.update(
        {k: jnp.float32(v) for k, v in train.rate_hyperparams(config).items()}
      )
      expected = config.learning_rate * train.multipliers(config)
      for step in range(10):
        updates, state = update(state)
        np.testing.assert_allclose(updates["w"], -expected[step % 8], rtol=1e-6)
    self.assertEqual(update._cache_size(), 1)

  def test_momentum_and_weight_decay_only_when_asked(self):
    params = {"w": jnp.ones(2)}
    leaves = lambda c: len(
      jax.tree.leaves(train.make_optimizer(c).init(params))
    )
    plain = leaves(TINY)  # count, inner count, m, M, scale: no trace.
    self.assertEqual(leaves(dataclasses.replace(TINY, momentum=0.9)), plain + 1)
    decayed = train.make_optimizer(dataclasses.replace(TINY, weight_decay=0.1))
    updates, _ = decayed.update(
      {"w": jnp.zeros(2)}, decayed.init(params), params
    )
    np.testing.assert_allclose(updates["w"], -0.1 * TINY.learning_rate)
    self.assertLen(throughput.optimizers(TINY), 2)

  def test_bad_config(self):
    for field, value in (
      ("schedule", "cosine"),
      ("batch_size", 0),
      ("fractal_kappa", 1.0),
      ("dtype", "float16"),
      ("momentum", 1.0),
      ("mode", "sweep"),
    ):
      with self.assertRaisesRegex(ValueError, field):
        dataclasses.replace(TINY, **{field: value})
    with self.assertRaisesRegex(ValueError, "nesterov"):
      dataclasses.replace(TINY, nesterov=True)
    with self.assertRaisesRegex(ValueError, "adaptive.*weight_decay=0.1"):
      dataclasses.replace(TINY, schedule="adaptive", weight_decay=0.1)
    with self.assertRaisesRegex(ValueError, "seeds"):
      dataclasses.replace(TINY, seeds=())

  def test_aggregate_over_seeds(self):
    runs = [
      {"seed": 0, "loss": 1.0, "ok": True, "name": "a"},
      {"seed": 1, "loss": 3.0, "ok": False, "name": "a"},
    ]
    out = experiment.aggregate(runs)
    self.assertEqual(
      (out["loss"], out["loss_std"], out["loss_min"], out["loss_max"]),
      (2.0, 1.0, 1.0, 3.0),
    )
    self.assertEqual(
      (out["ok"], out["name"], out["seeds"]), (True, "a", [0, 1])
    )


def _read(workdir):
  """Every result file under ``workdir``, by relative path (no checkpoints)."""
  out = {}
  for root, dirs, names in os.walk(workdir):
    dirs[:] = [d for d in dirs if d != "checkpoints"]
    for name in names:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        out[os.path.relpath(path, workdir)] = f.read()
  return out


class TrainTest(absltest.TestCase):
  def test_two_step_smoke_run(self):
    with tempfile.TemporaryDirectory() as workdir:
      summary = train.train_and_evaluate(TINY, workdir, dataset=tiny_dataset())
      records = metrics.read_metrics(os.path.join(workdir, "metrics.jsonl"))
      self.assertEqual([r["step"] for r in records], [0, 1, 2])
      for r in records[:2]:
        self.assertTrue(np.isfinite(r["loss"]) and np.isfinite(r["loss_after"]))
        self.assertAlmostEqual(r["learning_rate"], TINY.learning_rate)
        self.assertIsInstance(r["loss_increased"], bool)
      self.assertBetween(records[-1]["test_accuracy"], 0.0, 1.0)
      self.assertEqual(
        files.read_json(os.path.join(workdir, "summary.json"))["num_steps"], 2
      )
      self.assertIn("test_accuracy", summary)

  def test_experiment_killed_and_resumed_ends_with_the_same_files(self):
    config = dataclasses.replace(
      TINY,
      sweep_learning_rates=(0.05, 0.5),
      sweep_steps=2,
      stable_loss_ratio=10.0,
      num_steps=5,
      checkpoint_every=2,
      seeds=(0,),  # Several seeds: test_aggregate_over_seeds.
    )
    data = tiny_dataset()
    misses = train._programs.cache_info().misses
    with tempfile.TemporaryDirectory() as root:
      whole, cut = os.path.join(root, "whole"), os.path.join(root, "cut")
      summary = experiment.run_experiment(config, whole, dataset=data)
      self.assertLen(summary["sweep"], 2)
      self.assertEqual(summary["max_stable_learning_rate"], 0.5)
      # The fractal peak exceeds the largest stable constant rate.
      self.assertGreater(summary["fractal"]["peak_over_stable"], 1.0)
      self.assertLen(summary["per_seed"]["adaptive"], len(config.seeds))
      self.assertEqual(summary["adaptive"]["seeds"], list(config.seeds))
      adaptive = summary["per_seed"]["adaptive"][0]
      self.assertTrue(adaptive["all_finite"])
      self.assertGreater(adaptive["evaluations"], config.num_steps)  # HVPs.
      self.assertBetween(adaptive["fraction_steps_above_2_over_M"], 0.0, 1.0)
      self.assertIn("verdict", summary)
      original = metrics.MetricsWriter.write_chunk

      def killed(self, start_step, chunk, extra=None):
        n = original(self, start_step, chunk, extra)
        if start_step == 3 and "fractal" in self.path:
          raise KeyboardInterrupt  # Step 3 written, checkpoint 4 not yet.
        return n

      with mock.patch.object(metrics.MetricsWriter, "write_chunk", killed):
        with self.assertRaises(KeyboardInterrupt):
          experiment.run_experiment(config, cut, dataset=data)
      self.assertFalse(os.path.exists(os.path.join(cut, "summary.json")))
      # The sweep and the constant runs (one per seed) were finished.
      self.assertLen(
        os.listdir(os.path.join(cut, "units")), 2 + len(config.seeds)
      )
      with mock.patch.object(
        train, "train_and_evaluate", wraps=train.train_and_evaluate
      ) as runs:
        experiment.run_experiment(config, cut, dataset=data)
      self.assertEqual(  # Finished units were reused.
        [(c.args[0].schedule, c.args[0].seed) for c in runs.call_args_list],
        [(n, seed) for n in ("fractal", "adaptive") for seed in config.seeds],
      )
      self.assertEqual(
        train_loop.Checkpointer(
          os.path.join(cut, "fractal", "seed_0", "checkpoints")
        ).latest_step(),
        5,
      )
      a, b = _read(whole), _read(cut)
      self.assertEqual(sorted(a), sorted(b))
      self.assertNotIn("units", "".join(a))  # Cleared at the end.
      for name in a:
        if name.endswith("summary.json"):
          drop = ("wall_time_s_this_invocation", "environment")
          a[name], b[name] = (
            {
              k: v
              for k, v in files.read_json(os.path.join(d, name)).items()
              if k not in drop
            }
            for d in (whole, cut)
          )
        self.assertEqual(a[name], b[name], name)
      # Rerun when finished: no run trains again, and every run's files
      # (their wall times too) stay as they were.
      before = _read(whole)
      with mock.patch.object(train, "train", wraps=train.train) as trained:
        experiment.run_experiment(config, whole, dataset=data)
      trained.assert_not_called()
      after = _read(whole)
      self.assertEqual(sorted(before), sorted(after))
      for name in before:
        if os.sep in name:  # A run's file (the experiment's own are redone).
          self.assertEqual(before[name], after[name], name)
    # Sweep, constant and fractal runs of every seed in both experiments:
    # one program; the adaptive runs: one more.
    self.assertLessEqual(train._programs.cache_info().misses - misses, 2)

  def test_throughput_run(self):
    config = dataclasses.replace(
      TINY,
      mode="throughput",
      batch_size=8,
      image_size=8,
      throughput_repeats=2,
      throughput_steps=1,
      matmul_size=32,
    )
    with tempfile.TemporaryDirectory() as workdir:
      summary = throughput.run(config, workdir)
      self.assertGreater(summary["ratio_fractal_over_constant"], 0)
      self.assertLen(summary["ratio_per_repeat"], 2)
      with open(os.path.join(workdir, "results.md")) as f:
        self.assertIn("Throughput ratio fractal / constant", f.read())

  def test_command_lines(self):
    for module in ("benchmarks.resnet", "benchmarks.resnet.main"):
      result = subprocess.run(
        [
          sys.executable,
          "-m",
          module,
          "--preset",
          "quick",
          "--print-config",
          "--set",
          "num_steps=7",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
      )
      self.assertEqual(result.returncode, 0, result.stderr)
      self.assertIn('"num_steps": 7', result.stdout)
    result = subprocess.run(
      [sys.executable, "-m", "benchmarks.resnet", "--set", "momentum=1"],
      cwd=REPO_ROOT,
      capture_output=True,
      text=True,
      timeout=120,
      check=False,
    )
    self.assertEqual(result.returncode, 2)
    self.assertIn(
      "momentum must lie in [0, 1), got momentum=1.0", result.stderr
    )


if __name__ == "__main__":
  absltest.main()
