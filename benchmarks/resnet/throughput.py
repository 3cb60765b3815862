"""Images per second of the ResNet train step: fractal vs constant rate.

Two optimisers, the same jitted data-parallel train step (forward, backward,
update; no extra forward for loss-increase tracking):

* ``fractal``: ``fractal_optax.fractal_sgd(T, 1/kappa, 1, scale=...)``, the
  repeated fractal Chebyshev cycle (a table lookup by step count);
* ``constant``: ``optax.sgd(learning_rate)``.

Both are compiled first (lowering and compile times reported apart), warmed
up, then timed in interleaved repeats (order alternating), each repeat
``throughput_steps`` steps on one device-resident batch ended by
``block_until_ready``. Reported: images/s per repeat, best and median, and
the ratio fractal/constant of the best repeats (the ``timeit`` convention:
other load on the machine only ever adds time; the median of the paired
per-repeat ratios is reported too). The target is >= 0.99: the schedule
costs nothing measurable. The chip's reference
rate is an ``n x n x n`` matrix product in the compute dtype; the train
step's rate is XLA's FLOP count (``cost_analysis``) over the measured step
time, and their quotient is the fraction of the chip's measured matmul rate
that the train step reaches.

The images are random ``uint8`` of the dataset's shape (throughput does not
depend on their values).

Example::

  python -m benchmarks.resnet.main --preset throughput --workdir \\
      results/resnet_throughput
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

import jax
import numpy as np
import optax
from flax import nnx

import fractal_optax
from benchmarks import harness
from benchmarks import io_utils
from benchmarks.resnet import parallel
from benchmarks.resnet import train
from benchmarks.resnet.configs import Config

IMAGE_SHAPES = {
    "fashion_mnist": (28, 28, 1),
    "mnist": (28, 28, 1),
    "mnist5k": (28, 28, 1),
    "cifar10": (32, 32, 3),
}


def optimizers(config: Config) -> dict[str, optax.GradientTransformation]:
  """The two optimisers compared, with the same mean learning rate."""
  mult = train.lr_multipliers(
      Config(schedule="fractal", fractal_num_steps=config.fractal_num_steps,
             fractal_kappa=config.fractal_kappa,
             fractal_normalization="min"))
  # Scale so that the fractal cycle's mean rate is config.learning_rate.
  scale = config.learning_rate / float(np.mean(mult))
  momentum = config.momentum or None
  return {
      "fractal": fractal_optax.fractal_sgd(
          config.fractal_num_steps, 1.0 / config.fractal_kappa, 1.0,
          scale=scale, momentum=momentum, nesterov=config.nesterov),
      "constant": optax.sgd(config.learning_rate, momentum=momentum,
                            nesterov=config.nesterov),
  }


def _flops(compiled: Any) -> float | None:
  try:
    cost = compiled.cost_analysis()
  except Exception:  # pylint: disable=broad-except
    return None
  if isinstance(cost, (list, tuple)):
    cost = cost[0] if cost else None
  if not cost or "flops" not in cost:
    return None
  flops = float(cost["flops"])
  return flops if flops > 0 else None


def matmul_rate(n: int, dtype: Any, repeats: int = 10) -> float:
  """Measured FLOP/s of an ``n x n x n`` matrix product in ``dtype``."""
  key_a, key_b = jax.random.split(jax.random.key(0))
  a = jax.random.normal(key_a, (n, n), dtype)
  b = jax.random.normal(key_b, (n, n), dtype)
  matmul = jax.jit(lambda x, y: x @ y)
  jax.block_until_ready(matmul(a, b))
  jax.block_until_ready(matmul(a, b))
  best = float("inf")
  for _ in range(3):
    start = time.perf_counter()
    outs = [matmul(a, b) for _ in range(repeats)]
    jax.block_until_ready(outs)
    best = min(best, time.perf_counter() - start)
  return 2.0 * n**3 * repeats / best


def run_throughput(config: Config, workdir: str) -> dict[str, Any]:
  """Measures and writes ``workdir/summary.json``; returns the summary."""
  train.check_config(config)
  if config.throughput_repeats < 1 or config.throughput_steps < 1:
    raise ValueError(
        "throughput_repeats and throughput_steps must be >= 1, got "
        f"{config.throughput_repeats=}, {config.throughput_steps=}")
  if config.dataset not in IMAGE_SHAPES:
    raise ValueError(f"dataset must be one of {tuple(IMAGE_SHAPES)}, got "
                     f"{config.dataset=}")
  parallel.maybe_initialize_distributed(config.distributed)
  mesh = parallel.make_mesh()
  parallel.check_batch_size(config.batch_size, mesh)
  harness.remove_summary(workdir)
  shape = IMAGE_SHAPES[config.dataset]
  if config.image_size:
    shape = (config.image_size, config.image_size, shape[-1])
  num_classes = 10
  rng = np.random.default_rng(config.seed)
  rows = parallel.process_rows(mesh, config.batch_size)
  images = rng.integers(0, 256, (config.batch_size,) + shape, np.uint8)
  labels = rng.integers(0, num_classes, (config.batch_size,), np.int32)
  x, y = parallel.global_batch(mesh, images[rows], labels[rows])

  abstract = nnx.eval_shape(
      lambda: train.build_model(config, shape[-1], num_classes))
  graphdef, _, _ = nnx.split(abstract, nnx.Param, nnx.BatchStat)
  preprocess = train.make_preprocess(
      config.dataset, train.crop_padding(config, shape[0]),
      train.use_flip(config))
  rep, data = parallel.replicated(mesh), parallel.batch_sharding(mesh)

  states, steps, compile_info = {}, {}, {}
  for name, tx in optimizers(config).items():
    step = train.make_train_step(graphdef, tx, preprocess=preprocess,
                                 seed=config.seed,
                                 measure_loss_increase=False)
    states[name] = train.init_state(config, tx, shape[-1], num_classes, mesh)
    jitted = jax.jit(step, in_shardings=(rep, data, data),
                     out_shardings=(rep, rep), donate_argnums=0)
    t0 = time.perf_counter()
    lowered = jitted.lower(states[name], x, y)
    t1 = time.perf_counter()
    steps[name] = lowered.compile()
    t2 = time.perf_counter()
    compile_info[name] = {"lower_s": t1 - t0, "compile_s": t2 - t1,
                          "flops_per_step": _flops(steps[name])}
    for _ in range(2):  # warm-up
      states[name], metrics = steps[name](states[name], x, y)
    jax.block_until_ready((states[name], metrics))

  names = list(steps)
  timings = {name: [] for name in names}
  for r in range(config.throughput_repeats):
    for name in (names if r % 2 == 0 else names[::-1]):
      start = time.perf_counter()
      for _ in range(config.throughput_steps):
        states[name], metrics = steps[name](states[name], x, y)
      jax.block_until_ready((states[name], metrics))
      timings[name].append(time.perf_counter() - start)

  images_per_s = {n: [config.batch_size * config.throughput_steps / t
                      for t in ts] for n, ts in timings.items()}
  paired = [f / c for f, c in zip(images_per_s["fractal"],
                                  images_per_s["constant"])]
  median = {n: statistics.median(v) for n, v in images_per_s.items()}
  best = {n: max(v) for n, v in images_per_s.items()}
  dtype = train._DTYPES[config.dtype]  # pylint: disable=protected-access
  ref = matmul_rate(config.matmul_size, dtype)
  result = {}
  for name in names:
    flops = compile_info[name]["flops_per_step"]
    step_s = config.batch_size / best[name]
    result[name] = {
        "images_per_s_best": best[name],
        "images_per_s_median": median[name],
        "images_per_s": images_per_s[name],
        "step_time_s_best": step_s,
        "step_time_s_median": config.batch_size / median[name],
        **compile_info[name],
        "achieved_flops_per_s": flops / step_s if flops else None,
        "fraction_of_matmul_rate": flops / step_s / ref if flops else None,
    }
  ratio = best["fractal"] / best["constant"]
  summary = {
      "ratio_fractal_over_constant": ratio,
      "ratio_median_of_paired_repeats": statistics.median(paired),
      "ratio_per_repeat": paired,
      "ratio_target": 0.99,
      "meets_target": ratio >= 0.99,
      **result,
      "matmul_reference": {"n": config.matmul_size, "dtype": config.dtype,
                           "flops_per_s": ref},
      "batch_size": config.batch_size,
      "width_multiplier": config.width_multiplier,
      "dtype": config.dtype,
      "image_shape": list(shape),
      "repeats": config.throughput_repeats,
      "steps_per_repeat": config.throughput_steps,
      "config": harness.config_to_dict(config),
      "environment": io_utils.environment(),
  }
  harness.write_summary(workdir, summary)
  io_utils.write_text(os.path.join(workdir, "results.md"), markdown(summary))
  print(f"images/s (best of {config.throughput_repeats}) fractal "
        f"{best['fractal']:.1f}, constant {best['constant']:.1f}, ratio "
        f"{ratio:.4f} (median of paired repeats "
        f"{summary['ratio_median_of_paired_repeats']:.4f}); compile "
        f"{compile_info['fractal']['compile_s']:.1f} s / "
        f"{compile_info['constant']['compile_s']:.1f} s")
  return summary


def markdown(summary: dict[str, Any]) -> str:
  """The throughput table: fractal against constant, same run."""
  env = summary["environment"]
  rows = []
  for name in ("fractal", "constant"):
    r = summary[name]
    rows.append({
        "learning rate": {
            "fractal": f"fractal_sgd (T = "
                       f"{summary['config']['fractal_num_steps']}, repeated)",
            "constant": "optax.sgd (constant)"}[name],
        "images/s (best)": r["images_per_s_best"],
        "images/s (median)": r["images_per_s_median"],
        "compile s": r.get("compile_s"),
        "fraction of matmul rate": r.get("fraction_of_matmul_rate"),
    })
  head = (f"Batch {summary['batch_size']}, width ×"
          f"{summary['width_multiplier']:g}, {summary['dtype']}, images "
          f"{summary['image_shape']}, {summary['repeats']} interleaved repeats"
          f" of {summary['steps_per_repeat']} steps on {env['backend']} "
          f"({', '.join(sorted(set(env['devices'])))}), jax {env['jax']}.\n\n")
  tail = (f"\nThroughput ratio fractal / constant: "
          f"**{summary['ratio_fractal_over_constant']:.4f}** (best repeats; "
          f"median of paired repeats "
          f"{summary['ratio_median_of_paired_repeats']:.4f}; target ≥ "
          f"{summary['ratio_target']}).\n")
  return head + io_utils.markdown_table(
      rows, ["learning rate", "images/s (best)", "images/s (median)",
             "compile s", "fraction of matmul rate"]) + tail
