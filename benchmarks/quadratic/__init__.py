"""The paper's theory on convex quadratics: the project's main benchmark.

``python -m benchmarks.quadratic`` (``--quick`` for the CI-sized run,
``--workdir DIR``, default ``results/quadratic/``). Modules: ``main`` (the
command line), ``configs`` (presets), ``experiment`` (the parts, the targets,
``run(config, workdir)``), ``problems`` (quadratics with a prescribed
spectrum), ``simulation`` (jitted ``lax.scan`` runs, timing) and ``report``.
"""
