"""Images per second of the ResNet train step: fractal vs constant rate.

``train.jit_steps`` with ``train.make_optimizer`` (mean rate
``learning_rate``) and with ``optax.sgd(learning_rate)``, compiled, warmed
up, timed in interleaved repeats on one random ``uint8`` batch: images/s,
the ratio fractal/constant of the best repeats (target >= 0.99) and the
fraction of the chip's measured ``n x n x n`` matmul rate reached.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from typing import Any

import jax
import numpy as np
import optax

from benchmarks import config as config_lib
from benchmarks import files
from benchmarks.resnet import parallel
from benchmarks.resnet import report
from benchmarks.resnet import train
from benchmarks.resnet.configs import Config

IMAGE_SHAPES = {
  "fashion_mnist": (28, 28, 1),
  "mnist": (28, 28, 1),
  "mnist5k": (28, 28, 1),
  "cifar10": (32, 32, 3),
}
NUM_CLASSES = 10


def optimizers(config: Config) -> dict[str, optax.GradientTransformation]:
  """The two optimisers compared, with the same mean learning rate."""
  constant = optax.sgd(
    config.learning_rate,
    momentum=config.momentum or None,
    nesterov=config.nesterov,
  )
  if config.weight_decay:
    constant = optax.chain(
      optax.add_decayed_weights(config.weight_decay), constant
    )
  return {
    "fractal": train.make_optimizer(
      dataclasses.replace(
        config, schedule="fractal", fractal_normalization="mean"
      )
    ),
    "constant": constant,
  }


def _flops(compiled: Any) -> float | None:
  try:  # Backends without (or with an empty) cost analysis: None.
    cost = compiled.cost_analysis()
    flops = float(
      (cost[0] if isinstance(cost, (list, tuple)) else cost)["flops"]
    )
  except Exception:  # pylint: disable=broad-except
    return None
  return flops if flops > 0 else None


def matmul_rate(n: int, dtype: Any, repeats: int = 10) -> float:
  """Measured FLOP/s of an ``n x n x n`` matrix product in ``dtype``."""
  a, b = jax.random.normal(jax.random.key(0), (2, n, n), dtype)
  matmul = jax.jit(lambda x, y: x @ y)
  jax.block_until_ready((matmul(a, b), matmul(a, b)))
  best = float("inf")
  for _ in range(3):
    start = time.perf_counter()
    jax.block_until_ready([matmul(a, b) for _ in range(repeats)])
    best = min(best, time.perf_counter() - start)
  return 2.0 * n**3 * repeats / best


def run(config: Config, workdir: str, *, command: str = "") -> dict[str, Any]:
  """Measures; writes ``summary.json`` (with ``command``, the command line)
  and ``results.md``; the summary."""
  parallel.maybe_initialize_distributed(config.distributed)
  mesh = parallel.make_mesh()
  files.remove_summary(workdir)
  shape = IMAGE_SHAPES[config.dataset]
  if config.image_size:
    shape = (config.image_size, config.image_size, shape[-1])
  rng = np.random.default_rng(config.seed)
  rows = parallel.process_rows(mesh, config.batch_size)
  images = rng.integers(0, 256, (config.batch_size,) + shape, np.uint8)
  labels = rng.integers(0, NUM_CLASSES, (config.batch_size,), np.int32)
  x, y = parallel.global_batch(mesh, images[rows], labels[rows])
  program = dataclasses.replace(config, measure_loss_increase=False)

  states, steps, compile_info = {}, {}, {}
  for name, tx in optimizers(config).items():
    jitted, _ = train.jit_steps(program, tx, shape, NUM_CLASSES, mesh)
    states[name] = train.init_state(config, tx, shape[-1], NUM_CLASSES, mesh)
    t0 = time.perf_counter()
    lowered = jitted.lower(states[name], x, y)
    t1 = time.perf_counter()
    steps[name] = lowered.compile()
    compile_info[name] = {
      "lower_s": t1 - t0,
      "compile_s": time.perf_counter() - t1,
      "flops_per_step": _flops(steps[name]),
    }
    for _ in range(2):  # Warm-up.
      states[name], metrics = steps[name](states[name], x, y)
    jax.block_until_ready((states[name], metrics))

  timings = {name: [] for name in steps}
  for r in range(config.throughput_repeats):
    for name in list(steps) if r % 2 == 0 else list(steps)[::-1]:
      start = time.perf_counter()
      for _ in range(config.throughput_steps):
        states[name], metrics = steps[name](states[name], x, y)
      jax.block_until_ready((states[name], metrics))
      timings[name].append(time.perf_counter() - start)

  rates = {
    n: [config.batch_size * config.throughput_steps / t for t in ts]
    for n, ts in timings.items()
  }
  best = {n: max(v) for n, v in rates.items()}
  ref = matmul_rate(config.matmul_size, train.DTYPES[config.dtype])
  paired = [
    f / c for f, c in zip(rates["fractal"], rates["constant"], strict=True)
  ]
  summary = {
    "command": command,
    "ratio_fractal_over_constant": best["fractal"] / best["constant"],
    "ratio_median_of_paired_repeats": statistics.median(paired),
    "ratio_per_repeat": paired,
    "ratio_target": 0.99,
  }
  summary["meets_target"] = summary["ratio_fractal_over_constant"] >= 0.99
  for name in steps:
    flops, step_s = (
      compile_info[name]["flops_per_step"],
      (config.batch_size / best[name]),
    )
    median = statistics.median(rates[name])
    summary[name] = {
      "images_per_s_best": best[name],
      "images_per_s_median": median,
      "images_per_s": rates[name],
      "step_time_s_best": step_s,
      "step_time_s_median": config.batch_size / median,
      **compile_info[name],
      "achieved_flops_per_s": flops / step_s if flops else None,
      "fraction_of_matmul_rate": flops / step_s / ref if flops else None,
    }
  summary.update(
    matmul_reference={
      "n": config.matmul_size,
      "dtype": config.dtype,
      "flops_per_s": ref,
    },
    batch_size=config.batch_size,
    width_multiplier=config.width_multiplier,
    dtype=config.dtype,
    image_shape=list(shape),
    repeats=config.throughput_repeats,
    steps_per_repeat=config.throughput_steps,
    config=config_lib.to_dict(config),
    environment=files.environment(),
  )
  files.write_summary(workdir, summary)
  table = report.throughput_table(summary)
  files.write_text(os.path.join(workdir, report.TABLE_FILE), table)
  print(table)
  return summary
