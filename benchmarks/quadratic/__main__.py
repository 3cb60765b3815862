"""``python -m benchmarks.quadratic``: see ``benchmarks.quadratic.main``."""

from benchmarks.quadratic import main

if __name__ == "__main__":
  main.main()
