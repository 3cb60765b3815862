"""``python -m benchmarks.order_stability``: see its ``main`` module."""

from benchmarks.order_stability import main

if __name__ == "__main__":
  main.main()
