"""Sphinx configuration of the fractal_optax documentation (optax's setup).

Build with ``python -m sphinx -W -b html docs docs/_build/html``. Notebooks
are rendered by myst-nb from the outputs committed in ``notebooks/`` (no
execution at build time); benchmark results are included from the files the
benchmark commands write.
"""

import pathlib
import shutil
import sys

_DOCS = pathlib.Path(__file__).resolve().parent
_ROOT = _DOCS.parent
sys.path.insert(0, str(_ROOT))

import fractal_optax  # noqa: E402 (after the sys.path entry above)

project = "fractal_optax"
author = "fractal_optax authors"
copyright = "2026, fractal_optax authors"
version = release = fractal_optax.__version__

extensions = [
  "sphinx.ext.autodoc",
  "sphinx.ext.autosummary",
  "sphinx.ext.napoleon",
  "sphinx.ext.mathjax",
  "sphinx.ext.viewcode",
  "sphinx.ext.intersphinx",
  "myst_nb",
]

source_suffix = {
  ".rst": "restructuredtext",
  ".md": "myst-nb",
  ".ipynb": "myst-nb",
}
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
templates_path = []

autosummary_generate = True
autodoc_typehints = "description"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True
add_module_names = False

intersphinx_mapping = {}

myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # Render the outputs committed with the notebooks.
suppress_warnings = ["mystnb.unknown_mime_type", "myst.header"]

html_theme = "furo"
html_title = f"fractal_optax {release}"

# The notebooks live in notebooks/ (jupytext pairs, outputs committed); Sphinx
# reads sources only below docs/, so copy the .ipynb files in at build time.
_NB_OUT = _DOCS / "notebooks"
if _NB_OUT.exists():
  shutil.rmtree(_NB_OUT)
_NB_OUT.mkdir()
for _nb in sorted((_ROOT / "notebooks").glob("*.ipynb")):
  shutil.copy(_nb, _NB_OUT / _nb.name)
del _nb
