"""``benchmarks.order_stability``: ratios, summary, and resuming the scan."""

import json
import os
import tempfile

from absl.testing import absltest
import numpy as np

from benchmarks.order_stability import configs
from benchmarks.order_stability import experiment
from benchmarks.order_stability import main as order_main
import fractal_optax

_CONFIG = configs.Config(
  max_t=12,
  kappas=(10.0, 1e3),
  baseline_every=5,
  baseline_at=(8,),
  refine_cases=2,
  chunk_size=4,
  progress=False,
)
_SET = [
  "--set",
  "max_t=12",
  "kappas=10,1e3",
  "baseline_every=5",
  "baseline_at=8",
  "refine_cases=2",
  "chunk_size=4",
  "progress=false",
]


def _files(workdir):
  with open(os.path.join(workdir, "order_stability.json")) as f:
    result = json.load(f)
  for key in ("seconds", "environment", "command"):
    result["summary"].pop(key)
  with open(os.path.join(workdir, "order_stability.md")) as f:
    return result, f.read()


class OrderStabilityTest(absltest.TestCase):
  def setUp(self):
    super().setUp()
    self._tmp = tempfile.TemporaryDirectory()
    self.tmp = self._tmp.name
    self.scan_chunk = experiment.scan_chunk

  def tearDown(self):
    experiment.scan_chunk = self.scan_chunk
    self._tmp.cleanup()
    super().tearDown()

  def test_block_ratio(self):
    # A power of two's fractal order sits on the floor; the sorted order of a
    # large κ amplifies far above it.
    order = np.asarray(fractal_optax.fractal_order(16))
    self.assertAlmostEqual(experiment.block_ratio(order, 1e3, 2), 1.0, places=6)
    self.assertGreater(experiment.block_ratio(np.arange(16), 1e3, 2), 10.0)

  def test_rows_and_summary(self):
    summary = order_main.main([*_SET, "--workdir", self.tmp])
    result, text = _files(self.tmp)
    rows = result["rows"]
    self.assertEqual([r["T"] for r in rows], list(range(1, 13)))
    self.assertEqual([r["T"] for r in rows if "filtered_10" in r], [5, 8, 10])
    self.assertLess(summary["fractal_worst_ratio"], 2.6)
    self.assertAlmostEqual(summary["power_of_two_worst_ratio"], 1.0, places=6)
    self.assertEqual(len(summary["worst_cases_refined"]), 2)
    self.assertIn("| fractal_order (this library) |", text)
    self.assertNotIn("units", os.listdir(self.tmp))
    with open(os.path.join(self.tmp, "order_stability.png"), "rb") as f:
      self.assertEqual(f.read(4), b"\x89PNG")

  def test_resume(self):
    fresh = os.path.join(self.tmp, "fresh")
    experiment.run(_CONFIG, fresh)
    calls = []

    def failing(lo, hi, config):
      if len(calls) == 2:
        raise KeyboardInterrupt
      calls.append(lo)
      return self.scan_chunk(lo, hi, config)

    resumed = os.path.join(self.tmp, "resumed")
    experiment.scan_chunk = failing
    with self.assertRaises(KeyboardInterrupt):
      experiment.run(_CONFIG, resumed)
    self.assertLen(os.listdir(os.path.join(resumed, "units")), 2)
    with self.assertRaisesRegex(ValueError, "max_t"):
      experiment.run(configs.Config(max_t=13), resumed)
    calls.clear()
    experiment.scan_chunk = lambda *a: calls.append(a[0]) or self.scan_chunk(*a)
    experiment.run(_CONFIG, resumed)
    self.assertEqual(calls, [9])  # only the unfinished chunk T = 9 … 12
    self.assertEqual(_files(resumed), _files(fresh))

  def test_without_baseline(self):
    summary = experiment.run(
      configs.Config(
        max_t=3,
        kappas=(10.0,),
        baseline_at=(9,),
        refine_cases=1,
        progress=False,
      ),
      self.tmp,
    )
    self.assertTrue(np.isnan(summary["filtered_worst_ratio"]))

  def test_bad_config(self):
    with self.assertRaisesRegex(ValueError, "max_t=0"):
      configs.Config(max_t=0)
    with self.assertRaisesRegex(ValueError, "kappas"):
      configs.Config(kappas=(1.0,))
    with self.assertRaises(SystemExit):
      order_main.main(["--max-t", "64"])


if __name__ == "__main__":
  absltest.main()
