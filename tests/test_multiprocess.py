"""Two CPU processes on localhost train like one process over four devices.

Launched as on several hosts (``JAX_COORDINATOR_ADDRESS`` on 127.0.0.1 with
a free port, ``JAX_NUM_PROCESSES``, ``JAX_PROCESS_ID``; ``distributed=auto``),
gloo CPU collectives, two virtual devices per process: a few train steps of
the tiny ResNet must give the parameters of one process over four devices
(and, up to the order of float32 sums, of one device), and only process 0
may write result files (orbax writes each process's part of a checkpoint).
Every child has a hard deadline; only the children started here are killed.
"""

import dataclasses
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

from absl.testing import absltest
import jax
import numpy as np

from benchmarks.resnet import parallel
from benchmarks.resnet import train
from tests.test_resnet import TINY
from tests.test_resnet import tiny_dataset

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEADLINE_S = 600  # A bound for loaded machines; compiling dominates.
CONFIG = dict(
  num_steps=2,
  checkpoint_every=1,
  learning_rate=0.05,
  measure_loss_increase=False,
)  # Stable: rounding stays small.

_CHILD = r"""
import builtins, dataclasses, json, os, sys
import jax
import numpy as np
root, workdir, out = sys.argv[1:4]
jax.config.update("jax_cpu_collectives_implementation", "gloo")
sys.path.insert(0, root)
from tests.test_multiprocess import CONFIG
from tests.test_resnet import TINY, tiny_dataset
from benchmarks.resnet import train

writes = []  # Result files this process writes (orbax's own protocol aside).
inside = lambda p: (os.path.abspath(os.fsdecode(p)).startswith(workdir)
                    and "/checkpoints/" not in os.fsdecode(p))
real_open, real_os_open, real_replace = builtins.open, os.open, os.replace
def logged_open(file, mode="r", *args, **kwargs):
  if isinstance(file, (str, bytes, os.PathLike)) and set(mode) & set("wax+") \
      and inside(file):
    writes.append(os.fspath(file))
  return real_open(file, mode, *args, **kwargs)
def logged_os_open(path, flags, *args, **kwargs):
  if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and inside(path):
    writes.append(os.fsdecode(path))
  return real_os_open(path, flags, *args, **kwargs)
def logged_replace(src, dst, *args, **kwargs):
  if inside(dst):
    writes.append(os.fsdecode(dst))
  return real_replace(src, dst, *args, **kwargs)
builtins.open, os.open, os.replace = logged_open, logged_os_open, logged_replace
# distributed=auto: initialises from JAX_COORDINATOR_ADDRESS & co, as the CLI.
config = dataclasses.replace(TINY, distributed="auto", **CONFIG)
state, summary = train.train(config, workdir, dataset=tiny_dataset())
builtins.open, os.open, os.replace = real_open, real_os_open, real_replace
leaves = jax.tree.leaves((state["params"], state["batch_stats"]))
np.savez(out, *[np.asarray(x.addressable_shards[0].data) for x in leaves])
print(json.dumps({"writes": sorted(set(writes)),
                  "devices": jax.device_count(),
                  "local_devices": jax.local_device_count(),
                  "processes": jax.process_count(),
                  "test_accuracy": summary.get("test_accuracy")}))
"""


def _free_port() -> int:
  with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _env(num_devices: int, **launch: str) -> dict[str, str]:
  env = {
    k: v
    for k, v in os.environ.items()
    if k
    not in (
      "JAX_COORDINATOR_ADDRESS",
      "JAX_NUM_PROCESSES",
      "JAX_PROCESS_ID",
      "XLA_FLAGS",
      "SLURM_NTASKS",
      "OMPI_COMM_WORLD_SIZE",
      "PMI_SIZE",
    )
  }
  env.update(
    launch,
    JAX_PLATFORMS="cpu",
    PYTHONPATH=REPO_ROOT,
    XLA_FLAGS=(f"--xla_force_host_platform_device_count={num_devices}"),
  )
  return env


def _load(path: str) -> list[np.ndarray]:
  with np.load(path) as f:
    return [f[f"arr_{i}"] for i in range(len(f.files))]


class MultiProcessTest(absltest.TestCase):
  def test_two_processes_match_one_process_on_four_devices(self):
    with tempfile.TemporaryDirectory() as root:
      root = os.path.realpath(root)
      address = f"127.0.0.1:{_free_port()}"
      jobs = {
        name: (
          "multi",
          _env(
            2,
            JAX_COORDINATOR_ADDRESS=address,
            JAX_NUM_PROCESSES="2",
            JAX_PROCESS_ID=pid,
          ),
        )
        for name, pid in (("p0", "0"), ("p1", "1"))
      }
      jobs["single"] = ("single", _env(4))
      children = {}
      try:
        for name, (workdir, env) in jobs.items():
          children[name] = subprocess.Popen(
            [
              sys.executable,
              "-c",
              _CHILD,
              REPO_ROOT,
              os.path.join(root, workdir),
              os.path.join(root, name + ".npz"),
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
          )
        start = time.monotonic()
        # Meanwhile, the same run on this process's single device.
        one_state, _ = train.train(
          dataclasses.replace(TINY, **CONFIG),
          os.path.join(root, "one"),
          dataset=tiny_dataset(),
          mesh=parallel.make_mesh(),
        )
        outputs = {}
        for name, child in children.items():
          left = max(1.0, DEADLINE_S - (time.monotonic() - start))
          stdout, stderr = child.communicate(timeout=left)
          self.assertEqual(child.returncode, 0, f"{name}: {stderr[-3000:]}")
          outputs[name] = json.loads(stdout.strip().splitlines()[-1])
      finally:
        for child in children.values():
          if child.poll() is None:
            child.kill()
          child.wait()
      for name in ("p0", "p1"):
        self.assertEqual(outputs[name]["devices"], 4)
        self.assertEqual(outputs[name]["local_devices"], 2)
        self.assertEqual(outputs[name]["processes"], 2)
      self.assertEqual(outputs["single"]["local_devices"], 4)
      # Only process 0 writes: config, metrics, summary.
      self.assertEqual(outputs["p1"]["writes"], [])
      written = {os.path.basename(p) for p in outputs["p0"]["writes"]}
      self.assertLessEqual(
        {"config.json", "metrics.jsonl", "summary.json"}, written
      )
      for name in ("config.json", "metrics.jsonl", "summary.json"):
        self.assertTrue(os.path.isfile(os.path.join(root, "multi", name)))
      p0, p1, single = (
        _load(os.path.join(root, n + ".npz")) for n in ("p0", "p1", "single")
      )
      for a, b, c in zip(p0, p1, single, strict=True):
        np.testing.assert_array_equal(a, b)  # Replicated on both processes.
        np.testing.assert_allclose(a, c, rtol=0, atol=1e-5)
      one = jax.tree.leaves((one_state["params"], one_state["batch_stats"]))
      for a, b in zip(single, one, strict=True):
        # Same global batch, BatchNorm over all of it: equal up to the order
        # of float32 reductions.
        np.testing.assert_allclose(a, np.asarray(b), rtol=0, atol=1e-4)


if __name__ == "__main__":
  absltest.main()
