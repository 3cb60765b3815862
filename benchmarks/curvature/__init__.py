"""Curvature estimation: ``fractal_optax.estimate_curvature`` against eigsh."""
