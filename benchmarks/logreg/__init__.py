"""Multinomial logistic regression on MNIST: the paper's Figure 5.

Run ``python -m benchmarks.logreg.main --help`` (see ``README.md``).
"""
