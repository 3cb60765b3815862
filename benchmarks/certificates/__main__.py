"""``python -m benchmarks.certificates``: see its ``main`` module."""

from benchmarks.certificates import main

if __name__ == "__main__":
  main.main()
