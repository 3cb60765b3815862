"""Runs every notebook in notebooks/ top to bottom and checks the committed copies.

The notebooks are written by ``notebooks/build_notebooks.py`` and committed
with their outputs. Here each committed notebook is executed in a fresh
``python3`` kernel with ``FRACTAL_OPTAX_NOTEBOOK_QUICK=1`` (CI-sized knobs,
about a minute for all three on 2 cores) and must not raise; its cells must be
the ones the generator writes, and the committed copy must carry the outputs
of a complete run (figures included) and stay small.
"""

import importlib.util
import pathlib

from absl.testing import absltest
from absl.testing import parameterized
import nbformat

_ROOT = pathlib.Path(__file__).resolve().parent.parent
_NOTEBOOK_DIR = _ROOT / "notebooks"
_NAMES = sorted(path.stem for path in _NOTEBOOK_DIR.glob("*.ipynb"))
_MAX_BYTES = 1_500_000
_CELL_TIMEOUT_S = 600


def _load_builder():
  """Imports notebooks/build_notebooks.py (not a package) as a module."""
  spec = importlib.util.spec_from_file_location(
      "build_notebooks", _NOTEBOOK_DIR / "build_notebooks.py")
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


_BUILDER = _load_builder()


def _read(name: str) -> nbformat.NotebookNode:
  return nbformat.read(_NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)


class NotebooksTest(parameterized.TestCase):

  def test_every_generated_notebook_is_committed(self):
    self.assertEqual(_NAMES, sorted(_BUILDER.NOTEBOOKS))
    self.assertLen(_NAMES, 3)

  @parameterized.parameters(*_NAMES)
  def test_committed_cells_are_the_generated_ones(self, name):
    committed, generated = _read(name), _BUILDER.build(name)
    self.assertEqual(
        [(c.cell_type, c.source) for c in committed.cells],
        [(c.cell_type, c.source) for c in generated.cells],
        msg=f"{name}.ipynb differs from build_notebooks.py: run "
        "`python notebooks/build_notebooks.py` and commit the result.")

  @parameterized.parameters(*_NAMES)
  def test_committed_copy_carries_a_complete_run(self, name):
    path = _NOTEBOOK_DIR / f"{name}.ipynb"
    self.assertLess(path.stat().st_size, _MAX_BYTES)
    nb = _read(name)
    nbformat.validate(nb)
    self.assertEqual(nb.metadata.kernelspec.name, "python3")
    code = [c for c in nb.cells if c.cell_type == "code"]
    self.assertEqual(code[0].metadata.get("tags"), ["parameters"])
    self.assertIn(_BUILDER.QUICK_ENV, code[0].source)
    self.assertEqual([c.execution_count for c in code],
                     list(range(1, len(code) + 1)),
                     msg="not executed top to bottom in one kernel")
    outputs = [o for c in code for o in c.outputs]
    self.assertEmpty([o for o in outputs if o.output_type == "error"])
    first_output = "".join(o.get("text", "") for o in code[0].outputs)
    self.assertIn("QUICK = False", first_output,
                  msg="committed with the CI-sized settings")
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    self.assertGreaterEqual(len(figures), 3)

  @parameterized.parameters(*_NAMES)
  def test_executes_without_error(self, name):
    nb = _read(name)
    for cell in nb.cells:
      if cell.cell_type == "code":
        cell.outputs, cell.execution_count = [], None
    # Raises nbclient.exceptions.CellExecutionError (with the traceback) if a
    # cell fails.
    _BUILDER.execute(nb, quick=True, timeout=_CELL_TIMEOUT_S)
    code = [c for c in nb.cells if c.cell_type == "code"]
    self.assertTrue(all(c.execution_count for c in code))
    self.assertEmpty([o for c in code for o in c.outputs
                      if o.output_type == "error"])


if __name__ == "__main__":
  absltest.main()
