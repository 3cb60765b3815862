"""Multinomial logistic regression on MNIST: the paper's Figure 5.

``python -m benchmarks.logreg --help``. Modules: ``main`` (the command line),
``configs`` (presets), ``models`` (model and objective), ``train`` (one
comparison), ``sweep`` (the lambda x T map), ``report`` (tables, figures).
"""
