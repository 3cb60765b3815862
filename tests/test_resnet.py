"""Tests for benchmarks/resnet: model, augmentation, training path, resume.

Networks are tiny (width 1/16, 16x16 synthetic images) and every training
test uses the same program, so the train step compiles once per process; the
4-device comparison runs in a subprocess (the device count is fixed when JAX
starts).
"""

import dataclasses
import json
import os
import subprocess
import sys
import tempfile
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import fractal_optax
from benchmarks import harness
from benchmarks import input_pipeline
from benchmarks.resnet import augment
from benchmarks.resnet import configs
from benchmarks.resnet import experiment
from benchmarks.resnet import main as resnet_main
from benchmarks.resnet import models
from benchmarks.resnet import parallel
from benchmarks.resnet import train

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_dataset(num_train=64, num_test=24, size=16, seed=0):
  """Random 16x16 grayscale images with labels, as a ``Dataset``."""
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (num_train + num_test, size, size, 1),
                        np.uint8)
  labels = rng.integers(0, 10, num_train + num_test).astype(np.int32)
  return input_pipeline.Dataset(images[:num_train], labels[:num_train],
                                images[num_train:], labels[num_train:],
                                num_classes=10, name="fashion_mnist")


# One program for every training test below (see train._ProgramKey).
TINY = dataclasses.replace(
    configs.SMOKE, dataset="fashion_mnist", batch_size=16, eval_batch_size=16,
    num_steps=2, log_every=1, checkpoint_every=1, progress=False)


class ModelTest(parameterized.TestCase):

  def test_resnet18_parameter_count(self):
    # kuangliu/pytorch-cifar's ResNet18: 11,173,962 trainable parameters.
    rgb = nnx.eval_shape(lambda: models.resnet18(num_classes=10,
                                                 in_channels=3))
    self.assertEqual(models.count_params(rgb), 11_173_962)
    gray = nnx.eval_shape(lambda: models.resnet18(num_classes=10,
                                                  in_channels=1))
    # Only the stem's 3x3 kernel changes: 2 * 9 * 64 fewer weights.
    self.assertEqual(models.count_params(gray), 11_173_962 - 2 * 9 * 64)
    # BatchNorm running statistics are not parameters.
    stats = nnx.state(rgb, nnx.BatchStat)
    self.assertEqual(sum(x.size for x in jax.tree.leaves(stats)), 9_600)

  @parameterized.named_parameters(
      ("fashion_mnist", 1, 28, jnp.float32),
      ("cifar10", 3, 32, jnp.float32),
      ("cifar10_bf16", 3, 32, jnp.bfloat16),
  )
  def test_output_shapes_and_dtypes(self, channels, size, dtype):

    def forward():
      model = models.ResNet(num_classes=10, in_channels=channels,
                            width_multiplier=1 / 16, dtype=dtype,
                            rngs=nnx.Rngs(0))
      logits = model(jnp.zeros((3, size, size, channels)), train=True)
      return logits, nnx.state(model, nnx.Param)

    logits, params = nnx.eval_shape(forward)
    chex.assert_shape(logits, (3, 10))
    self.assertEqual(logits.dtype, jnp.float32)
    for leaf in jax.tree.leaves(params):
      self.assertEqual(leaf.dtype, jnp.float32)  # f32 params, any compute.

  def test_width_multiplier(self):
    small = nnx.eval_shape(lambda: models.resnet18(width_multiplier=1 / 16))
    self.assertEqual(small.head.in_features, 32)
    self.assertEqual(small.stem_conv.out_features, 4)

  def test_bad_arguments(self):
    with self.assertRaisesRegex(ValueError, "in_channels"):
      models.ResNet(in_channels=2, rngs=nnx.Rngs(0))
    with self.assertRaisesRegex(ValueError, "width_multiplier"):
      models.ResNet(width_multiplier=0.0, rngs=nnx.Rngs(0))


class AugmentTest(chex.TestCase):

  def test_random_crop_is_a_shifted_window(self):
    image = np.arange(6 * 6, dtype=np.float32).reshape(1, 6, 6, 1) + 1
    images = np.repeat(image, 16, axis=0)
    out = np.asarray(augment.random_crop(jnp.asarray(images),
                                         jax.random.key(1), 2))
    padded = np.pad(images[0], ((2, 2), (2, 2), (0, 0)))
    windows = {(dy, dx) for dy in range(5) for dx in range(5)
               if np.array_equal(out[0], padded[dy:dy + 6, dx:dx + 6])}
    self.assertLen(windows, 1)
    # Each image gets its own offset.
    self.assertGreater(len({o.tobytes() for o in out}), 1)

  def test_flip_and_determinism(self):
    images = jnp.asarray(np.random.default_rng(0).integers(
        0, 256, (64, 4, 4, 1), np.uint8))
    key = jax.random.key(3)
    a = augment.preprocess(images, key, mean=(0.5,), std=(0.25,), padding=1,
                           flip=True)
    b = augment.preprocess(images, key, mean=(0.5,), std=(0.25,), padding=1,
                           flip=True)
    chex.assert_trees_all_equal(a, b)
    flipped = augment.random_flip(images, key)
    same = np.all(np.asarray(flipped) == np.asarray(images), axis=(1, 2, 3))
    mirrored = np.all(np.asarray(flipped) == np.asarray(images)[:, :, ::-1],
                      axis=(1, 2, 3))
    self.assertTrue(np.all(same | mirrored))
    self.assertTrue(10 < mirrored.sum() < 54)
    plain = augment.preprocess(images, None, mean=(0.5,), std=(0.25,),
                               padding=1, flip=True)
    chex.assert_trees_all_close(
        plain, (images.astype(jnp.float32) / 255 - 0.5) / 0.25)


class ScheduleTest(absltest.TestCase):

  def test_multipliers(self):
    fractal = dataclasses.replace(TINY, schedule="fractal",
                                  fractal_normalization="mean")
    mult = train.lr_multipliers(fractal)
    self.assertAlmostEqual(float(mult.mean()), 1.0, places=5)
    raw = np.asarray(fractal_optax.fractal_chebyshev_schedule(
        8, 0.1, 1.0)(jnp.arange(8)))
    np.testing.assert_allclose(mult, raw / raw.mean(), rtol=1e-6)
    self.assertEqual(int(np.argmax(mult)), 0)  # Largest step first.
    minimum = train.lr_multipliers(
        dataclasses.replace(fractal, fractal_normalization="min"))
    np.testing.assert_allclose(minimum, raw, rtol=1e-6)
    # PAPER.md's example, m = 0.1, M = 1, T = 8, in the order taken.
    np.testing.assert_allclose(
        minimum, [9.204152, 1.008722, 2.163522, 1.567913, 5.687031,
                  1.082062, 3.333407, 1.249990], rtol=1e-5)
    np.testing.assert_array_equal(train.lr_multipliers(TINY), np.ones(8))

  def test_injected_learning_rate_follows_the_cycle(self):
    config = dataclasses.replace(TINY, schedule="fractal", learning_rate=0.3)
    tx = train.make_optimizer(config)
    params = {"w": jnp.ones(3)}
    state = tx.init(params)
    mult = train.lr_multipliers(config)
    for step in range(10):
      lr = train.injected_learning_rate(state, jnp.int32(step))
      self.assertAlmostEqual(float(lr), 0.3 * mult[step % 8], places=6)
      updates, state = tx.update({"w": jnp.ones(3)}, state, params)
      np.testing.assert_allclose(updates["w"], -float(lr), rtol=1e-6)

  def test_bad_config(self):
    for field, value in (("schedule", "cosine"), ("batch_size", 0),
                         ("fractal_kappa", 1.0), ("dtype", "float16")):
      with self.assertRaisesRegex(ValueError, field):
        train.check_config(dataclasses.replace(TINY, **{field: value}))
    with self.assertRaisesRegex(ValueError, "distributed"):
      parallel.maybe_initialize_distributed("maybe")
    with self.assertRaisesRegex(ValueError, "batch_size"):
      parallel.check_batch_size(0, parallel.make_mesh())


class TrainTest(absltest.TestCase):

  def test_two_step_smoke_run(self):
    with tempfile.TemporaryDirectory() as workdir:
      summary = train.train_and_evaluate(TINY, workdir,
                                         dataset=tiny_dataset())
      records = harness.read_metrics(os.path.join(workdir, "metrics.jsonl"))
      self.assertEqual([r["step"] for r in records], [0, 1, 2])
      for r in records[:2]:
        self.assertTrue(np.isfinite(r["loss"]) and np.isfinite(r["loss_after"]))
        self.assertEqual(r["learning_rate"], TINY.learning_rate)
        self.assertIsInstance(r["loss_increased"], bool)
      self.assertBetween(records[-1]["test_accuracy"], 0.0, 1.0)
      with open(os.path.join(workdir, "summary.json")) as f:
        self.assertEqual(json.load(f)["num_steps"], 2)
      self.assertIn("test_accuracy", summary)

  def test_resume_after_interruption_matches_uninterrupted_run(self):
    config = dataclasses.replace(TINY, num_steps=5, checkpoint_every=2,
                                 schedule="fractal")
    data = tiny_dataset()
    with tempfile.TemporaryDirectory() as root:
      whole, cut = os.path.join(root, "whole"), os.path.join(root, "cut")
      train.train_and_evaluate(config, whole, dataset=data)
      original = harness.MetricsWriter.write_chunk

      def killed_at_step_3(self, start_step, metrics, extra=None):
        n = original(self, start_step, metrics, extra)
        if start_step == 3:  # Step 3 written, its checkpoint (4) not yet.
          raise KeyboardInterrupt
        return n

      with mock.patch.object(harness.MetricsWriter, "write_chunk",
                             killed_at_step_3):
        with self.assertRaises(KeyboardInterrupt):
          train.train_and_evaluate(config, cut, dataset=data)
      self.assertFalse(os.path.exists(os.path.join(cut, "summary.json")))
      train.train_and_evaluate(config, cut, dataset=data)  # Resumes at 2.
      read = lambda d: harness.read_metrics(os.path.join(d, "metrics.jsonl"))
      self.assertEqual(read(cut), read(whole))  # Bitwise-equal metrics.
      ckpt = lambda d: harness.Checkpointer(os.path.join(d, "checkpoints"))
      a, b = ckpt(whole), ckpt(cut)
      self.assertEqual(a.latest_step(), 5)
      self.assertEqual(b.latest_step(), 5)
      a.close()
      b.close()

  def test_experiment_end_to_end(self):
    config = dataclasses.replace(TINY, sweep_learning_rates=(0.05, 0.5),
                                 sweep_steps=2, stable_loss_ratio=10.0)
    with tempfile.TemporaryDirectory() as workdir:
      summary = experiment.run_experiment(config, workdir,
                                          dataset=tiny_dataset())
      for name in ("summary.json", "results.md", "figure.png"):
        self.assertTrue(os.path.isfile(os.path.join(workdir, name)), name)
      self.assertLen(summary["sweep"], 2)
      self.assertEqual(summary["max_stable_learning_rate"], 0.5)
      # The fractal peak exceeds the largest stable constant rate.
      self.assertGreater(summary["fractal"]["peak_over_stable"], 1.0)
      self.assertIn("verdict", summary)

  def test_cli_print_config(self):
    config = resnet_main.main(["--preset", "quick", "--print-config",
                               "--set", "num_steps=7"])
    self.assertIsNone(config)


_SHARDED_SCRIPT = r"""
import dataclasses, json, sys
import jax, numpy as np
sys.path.insert(0, {root!r})
from tests.test_resnet import TINY, tiny_dataset
from benchmarks.resnet import parallel, train
assert jax.device_count() == 4, jax.devices()
data = tiny_dataset()
config = dataclasses.replace(TINY, measure_loss_increase=False)
out = {{}}
for name, devices in (("one", jax.devices()[:1]), ("four", jax.devices())):
  mesh = parallel.make_mesh(devices)
  state, train_step, _, sampler = train.setup(config, data, mesh)
  images, labels = sampler.batch(0)
  out[name + "_shards"] = len(images.addressable_shards)
  state, metrics = train_step(state, images, labels)
  out[name] = jax.device_get((state["params"], state["batch_stats"],
                              metrics))
diff = jax.tree.map(lambda a, b: float(np.max(np.abs(
    np.asarray(a, np.float64) - np.asarray(b, np.float64)))),
    out["one"], out["four"])
print(json.dumps({{"max_diff": max(jax.tree.leaves(diff)),
                   "one_shards": out["one_shards"],
                   "four_shards": out["four_shards"],
                   "loss": float(out["four"][2]["loss"])}}))
"""


class ShardedTest(absltest.TestCase):

  def test_four_device_step_matches_single_device_step(self):
    env = dict(os.environ)
    env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                        " --xla_force_host_platform_device_count=4").strip()
    env["JAX_PLATFORMS"] = "cpu"
    result = subprocess.run(
        [sys.executable, "-c", _SHARDED_SCRIPT.format(root=REPO_ROOT)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600,
        check=False)
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    report = json.loads(result.stdout.strip().splitlines()[-1])
    self.assertEqual(report["one_shards"], 1)
    self.assertEqual(report["four_shards"], 4)
    self.assertTrue(np.isfinite(report["loss"]))
    # Same global batch, BatchNorm over the whole batch: equal up to the
    # order of float32 reductions.
    self.assertLess(report["max_diff"], 1e-4)


if __name__ == "__main__":
  absltest.main()
