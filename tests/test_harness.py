"""Tests for benchmarks/harness.py: configs, metrics, summary, resume."""

import dataclasses
import json
import os
import tempfile

from absl.testing import absltest
from absl.testing import parameterized
import chex
import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import harness


@dataclasses.dataclass(frozen=True)
class _Config:
  num_steps: int = 10
  learning_rate: float = 0.1
  dataset: str = "mnist5k"
  data_dir: str | None = None
  progress: bool = True
  lambdas: tuple[float, ...] = (1e-2, 3e-3)


_PRESETS = {"default": _Config(), "quick": _Config(num_steps=3)}


class ConfigTest(parameterized.TestCase):

  def test_overrides_are_typed_by_default(self):
    config = harness.apply_overrides(
        _Config(), ["num_steps=1e3", "learning_rate=2", "progress=false",
                    "lambdas=1e-1,1e-4,5", "data_dir=/tmp/x", "dataset=mnist"])
    self.assertEqual(config.num_steps, 1000)
    self.assertIsInstance(config.num_steps, int)
    self.assertEqual(config.learning_rate, 2.0)
    self.assertIsInstance(config.learning_rate, float)
    self.assertIs(config.progress, False)
    self.assertEqual(config.lambdas, (0.1, 1e-4, 5.0))
    self.assertEqual(config.data_dir, "/tmp/x")
    self.assertEqual(_Config().num_steps, 10)  # The preset is untouched.

  @parameterized.named_parameters(
      ("unknown_key", "num_stepz=3", "Unknown config key 'num_stepz'"),
      ("no_equals", "num_steps", "key=value"),
      ("bad_int", "num_steps=1.5", "expected an integer"),
      ("bad_bool", "progress=maybe", "expected a boolean"),
      ("bad_float", "learning_rate=fast", "expected a number"),
  )
  def test_bad_overrides(self, override, message):
    with self.assertRaisesRegex(ValueError, message):
      harness.apply_overrides(_Config(), [override])

  def test_cli_preset_shortcuts_and_sets(self):
    seen = {}

    def train(config, workdir):
      seen.update(config=config, workdir=workdir)
      return "done"

    out = harness.main(
        ["--quick", "--data-dir", "/d", "--set", "learning_rate=0.5",
         "lambdas=1", "--workdir", "/w"], description="t", presets=_PRESETS,
        train_and_evaluate=train, default_workdir="results/t")
    self.assertEqual(out, "done")
    self.assertEqual(seen["workdir"], "/w")
    self.assertEqual(seen["config"], _Config(
        num_steps=3, learning_rate=0.5, data_dir="/d", lambdas=(1.0,)))

  def test_default_workdir_names_the_preset(self):
    workdir = harness.main(["--quick"], description="t", presets=_PRESETS,
                           train_and_evaluate=lambda c, w: w,
                           default_workdir="results/t/{preset}")
    self.assertEqual(workdir, "results/t/quick")

  def test_cli_unknown_key_exits(self):
    with self.assertRaises(SystemExit):
      harness.main(["--set", "nope=1"], description="t", presets=_PRESETS,
                   train_and_evaluate=lambda c, w: None, default_workdir="r")

  def test_workdir_config_mismatch(self):
    with tempfile.TemporaryDirectory() as d:
      harness.check_workdir_config(d, _Config())
      os.makedirs(os.path.join(d, "run", harness.CHECKPOINT_DIR, "5"))
      harness.check_workdir_config(d, _Config(progress=False))  # Ignored key.
      with self.assertRaisesRegex(ValueError, "different config.*num_steps"):
        harness.check_workdir_config(d, _Config(num_steps=11))


class FilesTest(absltest.TestCase):

  def test_metrics_writer_and_reader(self):
    with tempfile.TemporaryDirectory() as d:
      path = os.path.join(d, "metrics.jsonl")
      with harness.MetricsWriter(path) as w:
        w.write(0, loss=np.float32(2.5), learning_rate=0.1)
        n = w.write_chunk(1, {"loss": jnp.array([1.0, np.nan]),
                              "learning_rate": np.array([0.2, 0.3])},
                          extra={2: {"accuracy": 0.5}})
      self.assertEqual(n, 2)
      records = harness.read_metrics(path)
      self.assertEqual([r["step"] for r in records], [0, 1, 2])
      self.assertEqual(records[2]["accuracy"], 0.5)
      self.assertTrue(np.isnan(records[2]["loss"]))
      steps, values = harness.metrics_arrays(records, "accuracy")
      np.testing.assert_array_equal(steps, [2])
      # Resume at step 2 keeps steps 0-1 and drops a cut-short last line.
      with open(path, "a") as f:
        f.write('{"step": 3, "lo')
      with self.assertRaisesRegex(ValueError, "line 4"):
        harness.read_metrics(path)
      harness.MetricsWriter(path, resume_step=2).close()
      self.assertEqual([r["step"] for r in harness.read_metrics(path)], [0, 1])

  def test_interrupted_summary_is_never_half_written(self):
    with tempfile.TemporaryDirectory() as d:
      harness.write_summary(d, {"a": 1})
      with self.assertRaises(TypeError):  # Fails midway through json.dump.
        harness.write_summary(d, {"b": 2, "c": object()})
      with open(os.path.join(d, harness.SUMMARY_FILE)) as f:
        self.assertEqual(json.load(f), {"a": 1})
      self.assertEqual(sorted(os.listdir(d)), [harness.SUMMARY_FILE])


def _quadratic_chunk(fail_at=None):
  """A jitted chunk of GD steps on f(w) = 0.5 * |w|^2 * c (deterministic)."""

  @jax.jit
  def scan(state, steps):
    def body(s, t):
      loss = 0.5 * jnp.sum(s["w"] ** 2 * s["c"])
      lr = 0.5 / (1.0 + t.astype(jnp.float32))
      return {"w": s["w"] - lr * s["c"] * s["w"], "c": s["c"]}, (loss, lr)
    state, (loss, lr) = jax.lax.scan(body, state, steps)
    return state, {"loss": loss, "learning_rate": lr}

  def chunk_fn(state, start, n):
    if fail_at is not None and start >= fail_at:
      raise KeyboardInterrupt("simulated kill")
    return scan(state, jnp.arange(start, start + n))

  return chunk_fn


def _evaluate(state):
  return {"norm": jnp.linalg.norm(state["w"])}


class LoopTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    self.state = {"w": jnp.arange(1.0, 5.0), "c": jnp.array([1.0, 2, 3, 0.5])}

  def _run(self, workdir, **kwargs):
    chunk_fn = kwargs.pop("chunk_fn", _quadratic_chunk())
    return harness.run_loop(self.state, chunk_fn, num_steps=10,
                            workdir=workdir, checkpoint_every=4,
                            eval_fn=_evaluate, eval_every=3, progress=False,
                            **kwargs)

  def test_resume_reproduces_uninterrupted_run(self):
    with tempfile.TemporaryDirectory() as d:
      full_dir, cut_dir = os.path.join(d, "full"), os.path.join(d, "cut")
      full = self._run(full_dir)
      harness.write_summary(cut_dir, {"stale": True})
      with self.assertRaises(KeyboardInterrupt):
        self._run(cut_dir, chunk_fn=_quadratic_chunk(fail_at=6))
      # Killed after step 6 was written but before its checkpoint (at 8):
      # no summary, and the metrics run ahead of the checkpoint at step 4.
      self.assertFalse(os.path.exists(os.path.join(cut_dir, "summary.json")))
      cut_metrics = os.path.join(cut_dir, harness.METRICS_FILE)
      self.assertEqual(harness.read_metrics(cut_metrics)[-1]["step"], 5)
      with open(cut_metrics, "a") as f:
        f.write('{"step": 6, "loss"')  # A line cut short by the kill.
      resumed = self._run(cut_dir)
      chex.assert_trees_all_close(resumed, full, rtol=0, atol=0)
      with open(os.path.join(full_dir, harness.METRICS_FILE)) as f:
        expected = f.read()
      with open(cut_metrics) as f:
        self.assertEqual(f.read(), expected)
      records = harness.read_metrics(cut_metrics)
      self.assertEqual([r["step"] for r in records], list(range(11)))
      self.assertEqual([r["step"] for r in records if "norm" in r],
                       [0, 3, 6, 9, 10])
      self.assertNotIn("loss", records[-1])
      # A finished run restarted restores its last checkpoint and runs nothing.
      again = self._run(full_dir, chunk_fn=_quadratic_chunk(fail_at=0))
      chex.assert_trees_all_close(again, full, rtol=0, atol=0)
      with open(os.path.join(full_dir, harness.METRICS_FILE)) as f:
        self.assertEqual(f.read(), expected)

  def test_per_step_adapter_matches_chunks(self):
    chunked = _quadratic_chunk()

    def step_fn(state, step):
      state, metrics = chunked(state, step, 1)
      return state, {k: v[0] for k, v in metrics.items()}

    a, ma = chunked(self.state, 0, 5)
    b, mb = harness.per_step(step_fn)(self.state, 0, 5)
    chex.assert_trees_all_close((a, dict(ma)), (b, mb))

  def test_figure_is_written(self):
    with tempfile.TemporaryDirectory() as d:
      path = os.path.join(d, "fig.png")
      steps = np.arange(5)
      harness.plot_loss_and_lr(
          path, {"a": (steps, [1, 0.1, 0.5, 0.0, np.nan])},
          {"a": (steps, [1, 2, 1, 2, 1])}, lr_reference=1.5,
          marks={"a": [2]}, title="t")
      with open(path, "rb") as f:
        self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")


if __name__ == "__main__":
  absltest.main()
