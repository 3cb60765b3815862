"""ResNet-18 at batch 8192 with a repeated fractal schedule (paper's Figure 6).

Modules: ``models`` (ResNet-18, CIFAR variant, Flax NNX), ``augment``
(on-device crops and flips), ``parallel`` (data-parallel mesh and sharding),
``data`` (loading and per-step batches), ``configs`` (presets), ``train``
(one resumable run with ``fractal_optax``), ``experiment`` (edge-of-stability
sweep, constant vs fractal), ``throughput`` (images/s, fractal vs constant
rate), ``report`` (tables, figure) and ``main`` (the command line);
``gpu.sh`` runs the whole thing on one accelerator.
"""
