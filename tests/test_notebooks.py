"""Checks the notebooks in notebooks/: jupytext pairs, self-contained, runnable.

Each notebook is a jupytext pair: ``NN_name.py`` (``py:percent``) is the
source, ``NN_name.ipynb`` carries the outputs of a complete run. Here:

* both files of a pair hold the same cells (jupytext reads both);
* the committed ``.ipynb`` carries a full-size run's outputs (top to bottom in
  one kernel, no errors, its figures) and stays small;
* a notebook imports only ``fractal_optax`` and public packages: no
  ``benchmarks``, no ``sys.path`` edits;
* each notebook runs without error in a fresh ``python3`` kernel started in
  an empty directory, with ``FRACTAL_OPTAX_NOTEBOOK_QUICK=1`` (CI size).

To regenerate a committed notebook after editing its ``.py``::

  jupytext --to ipynb notebooks/NN_name.py
  jupyter execute --inplace notebooks/NN_name.ipynb
"""

import ast
import os
import pathlib
import tempfile
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import jupytext
import nbclient
import nbformat

_ROOT = pathlib.Path(__file__).resolve().parent.parent
_NOTEBOOK_DIR = _ROOT / "notebooks"
_NAMES = sorted(path.stem for path in _NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))
_QUICK_ENV = "FRACTAL_OPTAX_NOTEBOOK_QUICK"
_MAX_BYTES = 1_500_000
_CELL_TIMEOUT_S = 600
# Top-level modules a notebook may import: the library, the packages of the
# `notebooks` extra and the standard library modules in use.
_ALLOWED_IMPORTS = frozenset(
  {
    "fractal_optax",
    "jax",
    "optax",
    "flax",
    "numpy",
    "matplotlib",
    "IPython",
    "os",
    "math",
    "functools",
    "gzip",
    "importlib",
  }
)


def _cells(notebook: nbformat.NotebookNode) -> list[tuple[str, str]]:
  return [(c.cell_type, c.source) for c in notebook.cells]


def _read_ipynb(name: str) -> nbformat.NotebookNode:
  return nbformat.read(_NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)


class NotebooksTest(parameterized.TestCase):
  def test_every_notebook_is_a_pair(self):
    self.assertEqual(
      _NAMES, ["01_schedule", "02_quadratics", "03_deep_learning"]
    )
    self.assertEqual(
      sorted(p.stem for p in _NOTEBOOK_DIR.glob("*.ipynb")), _NAMES
    )
    self.assertFalse((_NOTEBOOK_DIR / "build_notebooks.py").exists())
    config = (_NOTEBOOK_DIR / "jupytext.toml").read_text()
    self.assertIn('formats = "ipynb,py:percent"', config)

  @parameterized.parameters(*_NAMES)
  def test_py_and_ipynb_hold_the_same_cells(self, name):
    source = jupytext.read(_NOTEBOOK_DIR / f"{name}.py")
    committed = jupytext.read(_NOTEBOOK_DIR / f"{name}.ipynb")
    self.assertEqual(
      _cells(committed),
      _cells(source),
      msg=f"{name}.ipynb differs from {name}.py: run `jupytext --to ipynb "
      f"notebooks/{name}.py`, execute it and commit both.",
    )
    self.assertEqual(
      jupytext.read(_NOTEBOOK_DIR / f"{name}.py").metadata["jupytext"][
        "formats"
      ],
      "ipynb,py:percent",
    )

  @parameterized.parameters(*_NAMES)
  def test_committed_copy_carries_a_complete_run(self, name):
    path = _NOTEBOOK_DIR / f"{name}.ipynb"
    self.assertLess(path.stat().st_size, _MAX_BYTES)
    nb = _read_ipynb(name)
    nbformat.validate(nb)
    self.assertEqual(nb.metadata.kernelspec.name, "python3")
    code = [c for c in nb.cells if c.cell_type == "code"]
    self.assertEqual(code[0].metadata.get("tags"), ["parameters"])
    self.assertIn(_QUICK_ENV, code[0].source)
    self.assertEqual(
      [c.execution_count for c in code],
      list(range(1, len(code) + 1)),
      msg="not executed top to bottom in one kernel",
    )
    outputs = [o for c in code for o in c.outputs]
    self.assertEmpty([o for o in outputs if o.output_type == "error"])
    first_output = "".join(o.get("text", "") for o in code[0].outputs)
    self.assertIn(
      "QUICK = False", first_output, msg="committed with the CI-sized settings"
    )
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    self.assertGreaterEqual(len(figures), 3)

  @parameterized.parameters(*_NAMES)
  def test_imports_only_the_library_and_public_packages(self, name):
    source = (_NOTEBOOK_DIR / f"{name}.py").read_text()
    self.assertNotIn("sys.path", source)
    self.assertNotIn("PYTHONPATH", source)
    tree = ast.parse(source)  # magics are comments in py:percent
    imported = set()
    for node in ast.walk(tree):
      if isinstance(node, ast.Import):
        imported |= {alias.name.split(".")[0] for alias in node.names}
      elif isinstance(node, ast.ImportFrom):
        self.assertEqual(node.level, 0, msg="relative import")
        imported.add(node.module.split(".")[0])
    self.assertIn("fractal_optax", imported)
    self.assertEmpty(imported - _ALLOWED_IMPORTS)

  @parameterized.parameters(*_NAMES)
  def test_executes_in_quick_mode_in_a_fresh_kernel(self, name):
    nb = jupytext.read(_NOTEBOOK_DIR / f"{name}.py")
    nb.metadata["kernelspec"] = {
      "name": "python3",
      "language": "python",
      "display_name": "Python 3",
    }
    env = {_QUICK_ENV: "1", "PYTHONPATH": ""}
    # An empty working directory: nothing of the repository is importable
    # but the installed package.
    with tempfile.TemporaryDirectory() as cwd, mock.patch.dict(os.environ, env):
      client = nbclient.NotebookClient(
        nb,
        timeout=_CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": cwd}},
      )
      # Raises nbclient.exceptions.CellExecutionError (with the traceback)
      # if a cell fails.
      client.execute()
    code = [c for c in nb.cells if c.cell_type == "code"]
    self.assertTrue(all(c.execution_count for c in code))
    self.assertEmpty(
      [o for c in code for o in c.outputs if o.output_type == "error"]
    )
    first_output = "".join(o.get("text", "") for o in code[0].outputs)
    self.assertIn("QUICK = True", first_output)


if __name__ == "__main__":
  absltest.main()
