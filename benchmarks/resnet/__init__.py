"""ResNet-18 at batch 8192 with a repeated fractal schedule (paper's Figure 6).

Modules: ``models`` (ResNet-18, CIFAR variant, Flax NNX), ``augment``
(on-device crops and flips), ``parallel`` (data-parallel mesh and sharding),
``configs`` (presets), ``train`` (``train_and_evaluate``: one resumable run),
``experiment`` (edge-of-stability sweep, constant vs fractal, figure),
``throughput`` (images/s, fractal vs constant rate) and ``main`` (the command
line); ``gpu.sh`` runs the whole thing on one accelerator.
"""
