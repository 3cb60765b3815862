"""``python -m benchmarks.curvature``: see ``benchmarks.curvature.main``."""

from benchmarks.curvature import main

if __name__ == "__main__":
  main.main()
