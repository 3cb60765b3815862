"""Tests of the resume mechanism: resume.Store, resume.claim, train_loop,
and the atomic files and metrics they rely on."""

import dataclasses
import json
import os
import re
import tempfile

from absl.testing import absltest
import chex
import jax
import jax.numpy as jnp
import numpy as np

from benchmarks import cli
from benchmarks import files
from benchmarks import metrics
from benchmarks import reporting
from benchmarks import resume
from benchmarks import train_loop


@dataclasses.dataclass(frozen=True)
class _Config:
  num_steps: int = 10
  learning_rate: float = 0.1
  dataset: str = "mnist5k"
  data_dir: str | None = None
  progress: bool = True
  lambdas: tuple[float, ...] = (1e-2, 3e-3)


_CALLS = []


def _unit(x):
  """A deterministic unit with arrays, tuples and non-finite numbers."""
  _CALLS.append(x)
  return {
    "x": x,
    "square": np.float32(x) ** 2,
    "row": np.arange(3) * x,
    "pair": (x, float("inf")),
    "nan": float("nan"),
  }


def _sweep(workdir, config, kill_at=None):
  """A resumable sweep over config.lambdas; writes sweep.json at the end."""
  store = resume.Store(workdir, config)
  rows = []
  for i, lam in enumerate(config.lambdas):
    if i == kill_at:
      raise KeyboardInterrupt("simulated kill")
    rows.append(store.compute(f"lambda={lam:g}", lambda lam=lam: _unit(lam)))
  files.write_json(os.path.join(workdir, "sweep.json"), {"rows": rows})
  store.clear()
  return rows


class StoreTest(absltest.TestCase):
  def test_killed_sweep_reuses_finished_units_and_ends_identical(self):
    config = _Config(lambdas=(1.0, 2.0, 3.0))
    with tempfile.TemporaryDirectory() as d:
      full, cut = os.path.join(d, "full"), os.path.join(d, "cut")
      _CALLS.clear()
      expected = _sweep(full, config)
      self.assertEqual(_CALLS, [1.0, 2.0, 3.0])
      _CALLS.clear()
      with self.assertRaises(KeyboardInterrupt):
        _sweep(cut, config, kill_at=2)
      self.assertEqual(
        sorted(os.listdir(os.path.join(cut, "units"))),
        ["lambda=1.json", "lambda=2.json"],
      )
      self.assertFalse(os.path.exists(os.path.join(cut, "sweep.json")))
      _CALLS.clear()
      resumed = _sweep(cut, config)
      self.assertEqual(_CALLS, [3.0])  # Units 1 and 2 were reused.
      self.assertEqual(repr(resumed), repr(expected))
      with (
        open(os.path.join(full, "sweep.json")) as f,
        open(os.path.join(cut, "sweep.json")) as g,
      ):
        self.assertEqual(f.read(), g.read())
      self.assertTrue(np.isnan(resumed[0]["nan"]))
      self.assertEqual(resumed[1]["pair"], [2.0, float("inf")])
      self.assertFalse(os.path.exists(os.path.join(cut, "units")))

  def test_workdir_with_another_config_is_refused(self):
    with tempfile.TemporaryDirectory() as d:
      with self.assertRaises(KeyboardInterrupt):
        _sweep(d, _Config(lambdas=(1.0, 2.0)), kill_at=1)
      resume.Store(d, _Config(lambdas=(1.0, 2.0), progress=False))  # Ignored.
      with self.assertRaisesRegex(
        ValueError, "different config.*lambdas.*--workdir"
      ):
        _sweep(d, _Config(lambdas=(1.0, 5.0)))
      # A finished run leaves no units: any config may use the folder then.
      _sweep(d, _Config(lambdas=(1.0, 2.0)))
      _sweep(d, _Config(lambdas=(7.0,)))

  def test_claim_refuses_checkpoints_of_another_config(self):
    with tempfile.TemporaryDirectory() as d:
      resume.claim(d, _Config())
      os.makedirs(os.path.join(d, "run", resume.CHECKPOINT_DIR, "5"))
      resume.claim(d, _Config(progress=False))  # Ignored key.
      with self.assertRaisesRegex(ValueError, "different config.*num_steps"):
        resume.claim(d, _Config(num_steps=11))

  def test_a_finished_run_of_another_config_is_replaced_not_refused(self):
    # Finished training runs keep their checkpoints beside the summary
    # written last (runs/x: the workdir's summary; seed_0: its own). A new
    # config took them for unfinished work and was refused; now the stale
    # summary and checkpoints go, so the new run cannot resume from them.
    with tempfile.TemporaryDirectory() as d:
      resume.claim(d, _Config())
      stale = [
        os.path.join(d, "runs", "x", resume.CHECKPOINT_DIR, "5"),
        os.path.join(d, "seed_0", resume.CHECKPOINT_DIR, "5"),
      ]
      for path in stale:
        os.makedirs(path)
      files.write_summary(d, {"num_steps": 10})
      files.write_summary(os.path.join(d, "seed_0"), {"num_steps": 10})
      resume.claim(d, _Config(num_steps=11))
      self.assertFalse(os.path.exists(os.path.join(d, files.SUMMARY_FILE)))
      for path in stale:
        self.assertFalse(os.path.exists(os.path.dirname(path)), path)
      config = files.read_json(os.path.join(d, resume.CONFIG_FILE))
      self.assertEqual(config["num_steps"], 11)

  def test_a_conflict_names_the_unfinished_paths_and_exits_2(self):
    with tempfile.TemporaryDirectory() as d:
      resume.claim(d, _Config())
      unfinished = os.path.join(d, "seed_1", resume.CHECKPOINT_DIR)
      os.makedirs(os.path.join(unfinished, "5"))
      finished = os.path.join(d, "seed_0", resume.CHECKPOINT_DIR)
      os.makedirs(os.path.join(finished, "5"))
      files.write_summary(os.path.join(d, "seed_0"), {})
      with self.assertRaisesRegex(
        resume.WorkdirConflict, "num_steps.*" + re.escape(unfinished)
      ):
        resume.claim(d, _Config(num_steps=11))
      self.assertTrue(os.path.exists(finished))  # Refused: nothing deleted.

      def run(config, workdir):
        resume.claim(workdir, config)

      with self.assertRaises(SystemExit) as exit_:
        cli.main(
          ["--workdir", d, "--set", "num_steps=12"],
          description="",
          presets={"default": _Config()},
          run=run,
          default_workdir=d,
        )
      self.assertEqual(exit_.exception.code, 2)

  def test_finished_reads_back_only_a_summary_of_the_same_config(self):
    with tempfile.TemporaryDirectory() as d:
      resume.claim(d, _Config())
      self.assertIsNone(resume.finished(d, _Config()))  # No summary yet.
      files.write_summary(d, {"loss": 0.5, "pair": (1, float("inf"))})
      self.assertEqual(
        resume.finished(d, _Config(progress=False)),  # Ignored key.
        {"loss": 0.5, "pair": [1, float("inf")]},
      )
      self.assertIsNone(resume.finished(d, _Config(num_steps=11)))

  def test_bad_unit_name(self):
    with tempfile.TemporaryDirectory() as d:
      with self.assertRaisesRegex(ValueError, "unit='a/b'"):
        resume.Store(d, _Config()).compute("a/b", lambda: 1)


class FilesTest(absltest.TestCase):
  def test_metrics_writer_and_reader(self):
    with tempfile.TemporaryDirectory() as d:
      path = os.path.join(d, "metrics.jsonl")
      with metrics.MetricsWriter(path) as w:
        w.write(0, loss=np.float32(2.5), learning_rate=0.1)
        n = w.write_chunk(
          1,
          {
            "loss": jnp.array([1.0, np.nan]),
            "learning_rate": np.array([0.2, 0.3]),
          },
          extra={2: {"accuracy": 0.5}},
        )
      self.assertEqual(n, 2)
      records = metrics.read_metrics(path)
      self.assertEqual([r["step"] for r in records], [0, 1, 2])
      self.assertEqual(records[2]["accuracy"], 0.5)
      self.assertTrue(np.isnan(records[2]["loss"]))
      steps, values = metrics.metrics_arrays(records, "accuracy")
      np.testing.assert_array_equal(steps, [2])
      # Resume at step 2 keeps steps 0-1 and drops a cut-short last line.
      with open(path, "a") as f:
        f.write('{"step": 3, "lo')
      with self.assertRaisesRegex(ValueError, "line 4"):
        metrics.read_metrics(path)
      metrics.MetricsWriter(path, resume_step=2).close()
      self.assertEqual([r["step"] for r in metrics.read_metrics(path)], [0, 1])

  def test_interrupted_summary_is_never_half_written(self):
    with tempfile.TemporaryDirectory() as d:
      files.write_summary(d, {"a": 1})
      with self.assertRaises(TypeError):  # Fails midway through json.dump.
        files.write_summary(d, {"b": 2, "c": object()})
      with open(os.path.join(d, files.SUMMARY_FILE)) as f:
        self.assertEqual(json.load(f), {"a": 1})
      self.assertEqual(sorted(os.listdir(d)), [files.SUMMARY_FILE])


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
    return train_loop.run_loop(
      self.state,
      chunk_fn,
      num_steps=10,
      workdir=workdir,
      checkpoint_every=4,
      eval_fn=_evaluate,
      eval_every=3,
      progress=False,
      **kwargs,
    )

  def test_resume_reproduces_uninterrupted_run(self):
    with tempfile.TemporaryDirectory() as d:
      full_dir, cut_dir = os.path.join(d, "full"), os.path.join(d, "cut")
      full = self._run(full_dir)
      files.write_summary(cut_dir, {"stale": True})
      with self.assertRaises(KeyboardInterrupt):
        self._run(cut_dir, chunk_fn=_quadratic_chunk(fail_at=6))
      # Killed after step 6 was written but before its checkpoint (at 8):
      # no summary, and the metrics run ahead of the checkpoint at step 4.
      self.assertFalse(os.path.exists(os.path.join(cut_dir, "summary.json")))
      cut_metrics = os.path.join(cut_dir, metrics.METRICS_FILE)
      self.assertEqual(metrics.read_metrics(cut_metrics)[-1]["step"], 5)
      with open(cut_metrics, "a") as f:
        f.write('{"step": 6, "loss"')  # A line cut short by the kill.
      resumed = self._run(cut_dir)
      chex.assert_trees_all_close(resumed, full, rtol=0, atol=0)
      with open(os.path.join(full_dir, metrics.METRICS_FILE)) as f:
        expected = f.read()
      with open(cut_metrics) as f:
        self.assertEqual(f.read(), expected)
      records = metrics.read_metrics(cut_metrics)
      self.assertEqual([r["step"] for r in records], list(range(11)))
      self.assertEqual(
        [r["step"] for r in records if "norm" in r], [0, 3, 6, 9, 10]
      )
      self.assertNotIn("loss", records[-1])
      # A finished run restarted restores its last checkpoint and runs nothing.
      again = self._run(full_dir, chunk_fn=_quadratic_chunk(fail_at=0))
      chex.assert_trees_all_close(again, full, rtol=0, atol=0)
      with open(os.path.join(full_dir, metrics.METRICS_FILE)) as f:
        self.assertEqual(f.read(), expected)

  def test_per_step_adapter_matches_chunks(self):
    chunked = _quadratic_chunk()

    def step_fn(state, step):
      state, metrics = chunked(state, step, 1)
      return state, {k: v[0] for k, v in metrics.items()}

    a, ma = chunked(self.state, 0, 5)
    b, mb = train_loop.per_step(step_fn)(self.state, 0, 5)
    chex.assert_trees_all_close((a, dict(ma)), (b, mb))

  def test_figure_is_written(self):
    with tempfile.TemporaryDirectory() as d:
      path = os.path.join(d, "fig.png")
      steps = np.arange(5)
      reporting.plot_loss_and_lr(
        path,
        {"a": (steps, [1, 0.1, 0.5, 0.0, np.nan])},
        {"a": (steps, [1, 2, 1, 2, 1])},
        lr_reference=1.5,
        marks={"a": [2]},
        title="t",
      )
      with open(path, "rb") as f:
        self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")


if __name__ == "__main__":
  absltest.main()
