"""Curvature estimation: ``fractal_optax.estimate_curvature`` against eigsh.

``python -m benchmarks.curvature``. Modules: ``main`` (the command line),
``configs`` (presets), ``experiment`` (problems, both methods,
``run(config, workdir)``) and ``report`` (the table).
"""
