"""How close ``fractal_order`` stays to the stability floor, for every T.

``python -m benchmarks.order_stability``. Modules: ``main`` (the command
line), ``configs`` (presets), ``experiment`` (the resumable scan,
``run(config, workdir)``) and ``report`` (table and figure).
"""
