"""``python -m benchmarks.resnet``: see ``benchmarks.resnet.main``."""

from benchmarks.resnet import main

if __name__ == "__main__":
  main.main()
