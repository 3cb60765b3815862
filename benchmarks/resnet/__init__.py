"""ResNet-18 at batch 8192 with a repeated fractal schedule (paper's Fig. 6).

``python -m benchmarks.resnet``; ``gpu.sh`` runs it all on one accelerator.
"""
