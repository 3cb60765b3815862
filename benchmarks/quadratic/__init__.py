"""The paper's theory on convex quadratics: the project's main benchmark.

Run ``python -m benchmarks.quadratic`` (``--quick`` for the CI-sized run,
``--out DIR`` for the output directory, default ``results/quadratic/``).
Modules: ``configs`` (presets), ``problems`` (quadratics with a prescribed
spectrum), ``optimizers`` (the compared optax optimisers, the silver
schedule), ``simulation`` (jitted ``lax.scan`` runs and timing),
``experiments`` (the four experiments and the targets), ``report`` (JSON,
Markdown, figures) and ``main`` (the command line).
"""
