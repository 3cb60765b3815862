"""Deprecated re-export of the shared benchmark modules (until all are ported).

Use ``benchmarks.cli``, ``config``, ``files``, ``metrics``, ``resume``,
``train_loop`` and ``reporting`` instead. Deleted once nothing imports it.
"""

from benchmarks.cli import build_parser, config_from_args
from benchmarks.cli import main as _main
from benchmarks.config import apply_overrides, parse_value
from benchmarks.config import to_dict as config_to_dict
from benchmarks.files import SUMMARY_FILE, remove_summary, write_summary
from benchmarks.metrics import METRICS_FILE, MetricsWriter
from benchmarks.metrics import metrics_arrays, read_metrics
from benchmarks.reporting import plot_loss_and_lr
from benchmarks.resume import CHECKPOINT_DIR, CONFIG_FILE
from benchmarks.resume import claim as check_workdir_config
from benchmarks.train_loop import ChunkFn, Checkpointer, StepFn
from benchmarks.train_loop import per_step, run_loop


def main(argv, *, description, presets, train_and_evaluate, default_workdir):
  """``cli.main`` with the old keyword ``train_and_evaluate``."""
  return _main(argv, description=description, presets=presets,
               run=train_and_evaluate, default_workdir=default_workdir)
